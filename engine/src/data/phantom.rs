//! The phantom generator: writes a complete MSD-layout task of synthetic abdominal scans — a body
//! with a fat layer, a lobed organ (label 1) holding lesions (label 2), a spine and a kidney as
//! distractors — on anisotropic, rotated (non-identity) grids, with noise and a smooth bias field.
//! Deterministic per seed: it is the demo data and the test data of the whole project.

use super::{DataError, create_dir, write_json_atomically};
use crate::rng::Rng;
use crate::volume::{
    Affine, DataType, Geometry, NiftiHeader, Volume, WriteOptions, write_label_like, write_nifti,
};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// Which kind of scan to synthesise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhantomModality {
    /// CT in Hounsfield units, one channel.
    Ct,
    /// Multi-contrast MRI with this many channels on the 4th axis.
    Mri {
        /// Number of contrasts (channels).
        channels: usize,
    },
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct PhantomOptions {
    /// Labelled cases (imagesTr + labelsTr).
    pub training_cases: usize,
    /// Unlabelled cases (imagesTs).
    pub test_cases: usize,
    /// Seed: the same seed writes the same files.
    pub seed: u64,
    /// Voxels along x, y, z.
    pub size: [usize; 3],
    /// CT or multi-channel MRI.
    pub modality: PhantomModality,
    /// Range of lesion radii in mm, in-plane (lesions are flattened cranio-caudally in the
    /// ratio of the fields of view, like the rest of the anatomy).
    pub lesion_radius_mm: (f64, f64),
}

impl Default for PhantomOptions {
    fn default() -> Self {
        Self {
            training_cases: 20,
            test_cases: 4,
            seed: 0,
            size: [96, 96, 40],
            modality: PhantomModality::Ct,
            lesion_radius_mm: LESION_RADIUS_MM,
        }
    }
}

/// In-plane field of view in mm (an adult abdomen fits).
const FIELD_OF_VIEW_XY_MM: f64 = 320.0;
/// Cranio-caudal field of view in mm.
const FIELD_OF_VIEW_Z_MM: f64 = 220.0;
/// Default lesion radius range in mm, in-plane: 2–4 cm lesions (common for liver metastases),
/// 3–4 voxels in radius on the demo preset's 48³ model grid, so that a 3-minute CPU model can
/// learn their outline rather than guess a blob.
pub const LESION_RADIUS_MM: (f64, f64) = (20.0, 28.0);
/// Hounsfield units of the tissues.
const AIR_HU: f64 = -1000.0;
const FAT_HU: f64 = -90.0;
const SOFT_TISSUE_HU: f64 = 40.0;
const BONE_HU: f64 = 500.0;
const KIDNEY_HU: f64 = 150.0;

/// One synthetic patient's anatomy, in normalised body coordinates: world millimetres relative to
/// the field-of-view centre divided by half the field of view.
struct Anatomy {
    organ_centre: [f64; 3],
    organ_radii: [f64; 3],
    organ_lobes: [(f64, f64); 2],
    lesions: Vec<([f64; 3], f64)>,
    organ_hu: f64,
    lesion_hu: Vec<f64>,
    kidney_centre: [f64; 3],
    noise_hu: f64,
    bias: [(f64, [f64; 3]); 2],
}

impl Anatomy {
    fn sample(rng: &mut Rng, lesion_radius_mm: (f64, f64)) -> Self {
        let organ_centre = [
            rng.range(-0.35, -0.2),
            rng.range(-0.15, 0.05),
            rng.range(-0.1, 0.15),
        ];
        // Liver-sized: 10–13 cm across, 9–11 cm front to back, 10–13 cm cranio-caudally.
        let organ_radii = [rng.range(0.32, 0.4), rng.range(0.27, 0.34), rng.range(0.45, 0.6)];
        let organ_lobes = [
            (rng.range(0.05, 0.15), rng.range(0.0, std::f64::consts::TAU)),
            (rng.range(0.04, 0.12), rng.range(0.0, std::f64::consts::TAU)),
        ];
        let organ_hu = rng.range(95.0, 130.0);
        let mut anatomy = Anatomy {
            organ_centre,
            organ_radii,
            organ_lobes,
            lesions: Vec::new(),
            organ_hu,
            lesion_hu: Vec::new(),
            kidney_centre: [rng.range(0.25, 0.4), rng.range(0.15, 0.3), rng.range(-0.2, 0.1)],
            noise_hu: rng.range(8.0, 18.0),
            bias: [
                (
                    rng.range(0.03, 0.08),
                    [rng.range(1.0, 2.5), rng.range(1.0, 2.5), rng.range(0.5, 1.5)],
                ),
                (
                    rng.range(0.02, 0.05),
                    [rng.range(0.5, 1.5), rng.range(2.0, 3.0), rng.range(1.0, 2.0)],
                ),
            ],
        };
        let lesion_count = 1 + rng.below(3);
        let mut attempts = 0;
        while anatomy.lesions.len() < lesion_count && attempts < 1000 {
            attempts += 1;
            let half_field_mm = FIELD_OF_VIEW_XY_MM / 2.0;
            let radius = rng.range(
                lesion_radius_mm.0 / half_field_mm,
                lesion_radius_mm.1 / half_field_mm,
            );
            let centre = std::array::from_fn(|a| organ_centre[a] + organ_radii[a] * rng.range(-0.7, 0.7));
            // Keep lesions inside the organ so that label 2 is surrounded by label 1.
            if anatomy.organ_level(centre) < 0.55 {
                anatomy.lesions.push((centre, radius));
                anatomy.lesion_hu.push(organ_hu - rng.range(45.0, 75.0));
            }
        }
        anatomy
    }

    /// < 1 inside the organ: an ellipsoid whose radius is modulated by two angular lobes.
    fn organ_level(&self, p: [f64; 3]) -> f64 {
        let d: [f64; 3] = std::array::from_fn(|a| (p[a] - self.organ_centre[a]) / self.organ_radii[a]);
        let r2 = d[0] * d[0] + d[1] * d[1] + d[2] * d[2];
        let azimuth = d[1].atan2(d[0]);
        let elevation = d[2].atan2((d[0] * d[0] + d[1] * d[1]).sqrt());
        let modulation = 1.0
            + self.organ_lobes[0].0 * (2.0 * azimuth + self.organ_lobes[0].1).sin()
            + self.organ_lobes[1].0 * (3.0 * elevation + self.organ_lobes[1].1).cos();
        r2.sqrt() / modulation
    }

    /// The label and the noise-free tissue class at a point.
    fn tissue(&self, p: [f64; 3]) -> (u8, Tissue) {
        let body = (p[0] / 0.88).powi(2) + (p[1] / 0.68).powi(2);
        if body > 1.0 {
            return (0, Tissue::Air);
        }
        if self.organ_level(p) < 1.0 {
            for (index, (centre, radius)) in self.lesions.iter().enumerate() {
                let d2: f64 = (0..3).map(|a| (p[a] - centre[a]).powi(2)).sum();
                if d2 < radius * radius {
                    return (2, Tissue::Lesion(index));
                }
            }
            return (1, Tissue::Organ);
        }
        let spine = (p[0] / 0.09).powi(2) + ((p[1] + 0.45) / 0.09).powi(2);
        if spine < 1.0 {
            return (0, Tissue::Bone);
        }
        let kidney: f64 = (0..3)
            .map(|a| ((p[a] - self.kidney_centre[a]) / [0.1, 0.07, 0.2][a]).powi(2))
            .sum();
        if kidney < 1.0 {
            return (0, Tissue::Kidney);
        }
        if body > 0.8 {
            return (0, Tissue::Fat);
        }
        (0, Tissue::Muscle)
    }

    fn bias_at(&self, p: [f64; 3]) -> f64 {
        1.0 + self
            .bias
            .iter()
            .map(|(amplitude, k)| amplitude * (k[0] * p[0] + k[1] * p[1] + k[2] * p[2]).sin())
            .sum::<f64>()
    }
}

#[derive(Debug, Clone, Copy)]
enum Tissue {
    Air,
    Fat,
    Muscle,
    Bone,
    Kidney,
    Organ,
    Lesion(usize),
}

impl Tissue {
    fn hounsfield(self, anatomy: &Anatomy) -> f64 {
        match self {
            Tissue::Air => AIR_HU,
            Tissue::Fat => FAT_HU,
            Tissue::Muscle => SOFT_TISSUE_HU,
            Tissue::Bone => BONE_HU,
            Tissue::Kidney => KIDNEY_HU,
            Tissue::Organ => anatomy.organ_hu,
            Tissue::Lesion(i) => anatomy.lesion_hu[i],
        }
    }

    /// MRI-like signal per contrast: tissues swap brightness between contrasts (T1/T2-like).
    fn mri_signal(self, channel: usize) -> f64 {
        const T1: [f64; 7] = [0.0, 900.0, 500.0, 200.0, 450.0, 600.0, 300.0];
        const T2: [f64; 7] = [0.0, 600.0, 350.0, 150.0, 700.0, 300.0, 800.0];
        let index = match self {
            Tissue::Air => 0,
            Tissue::Fat => 1,
            Tissue::Muscle => 2,
            Tissue::Bone => 3,
            Tissue::Kidney => 4,
            Tissue::Organ => 5,
            Tissue::Lesion(_) => 6,
        };
        if channel.is_multiple_of(2) {
            T1[index]
        } else {
            T2[index] * (1.0 + 0.1 * (channel / 2) as f64)
        }
    }
}

/// A random anisotropic, rotated, LPS-like grid covering the field of view.
fn sample_geometry(rng: &mut Rng, size: [usize; 3]) -> Geometry {
    let in_plane_mm = FIELD_OF_VIEW_XY_MM * rng.range(0.9, 1.1) / size[0].max(size[1]) as f64;
    let slice_mm = FIELD_OF_VIEW_Z_MM * rng.range(0.9, 1.1) / size[2] as f64;
    let angle = rng.range(-8.0, 8.0).to_radians();
    let (s, c) = (angle.sin(), angle.cos());
    // Voxel x points left, y posterior (as DICOM-derived scans), rotated in-plane by `angle`.
    let linear = [
        [-in_plane_mm * c, in_plane_mm * s, 0.0],
        [-in_plane_mm * s, -in_plane_mm * c, 0.0],
        [0.0, 0.0, slice_mm],
    ];
    let centre_world = [
        rng.range(-20.0, 20.0),
        rng.range(-30.0, 30.0),
        rng.range(-400.0, -100.0),
    ];
    let mut affine = Affine::from_parts(linear, [0.0; 3]);
    let centre_voxel = size.map(|n| (n as f64 - 1.0) / 2.0);
    let offset = affine.apply(centre_voxel);
    for axis in 0..3 {
        affine.0[axis][3] = centre_world[axis] - offset[axis];
    }
    Geometry {
        shape: size,
        world_from_voxel: affine,
    }
}

/// One generated case: image channels and label.
struct PhantomCase {
    image: Volume,
    label: Volume,
}

fn generate_case(seed: u64, options: &PhantomOptions) -> PhantomCase {
    let (size, modality) = (options.size, options.modality);
    let mut rng = Rng::new(seed);
    let geometry = sample_geometry(&mut rng, size);
    let anatomy = Anatomy::sample(&mut rng, options.lesion_radius_mm);
    let centre = geometry
        .world_from_voxel
        .apply(size.map(|n| (n as f64 - 1.0) / 2.0));
    let half_fov = [
        FIELD_OF_VIEW_XY_MM / 2.0,
        FIELD_OF_VIEW_XY_MM / 2.0,
        FIELD_OF_VIEW_Z_MM / 2.0,
    ];
    let [nx, ny, nz] = size;
    let channels = match modality {
        PhantomModality::Ct => 1,
        PhantomModality::Mri { channels } => channels.max(1),
    };
    let slice_len = nx * ny;
    // Each slice has its own generator so the parallel loop stays deterministic.
    let slices: Vec<(Vec<f32>, Vec<f32>)> = (0..nz)
        .into_par_iter()
        .map(|z| {
            let mut noise = Rng::new(seed ^ (0xA5A5_0000_0000 + z as u64));
            let mut image = vec![0f32; slice_len * channels];
            let mut label = vec![0f32; slice_len];
            for y in 0..ny {
                for x in 0..nx {
                    let world = geometry.world_from_voxel.apply([x as f64, y as f64, z as f64]);
                    let p: [f64; 3] = std::array::from_fn(|a| (world[a] - centre[a]) / half_fov[a]);
                    let (class, tissue) = anatomy.tissue(p);
                    let index = y * nx + x;
                    label[index] = f32::from(class);
                    let bias = anatomy.bias_at(p);
                    for c in 0..channels {
                        let value = match modality {
                            PhantomModality::Ct => {
                                let hu = tissue.hounsfield(&anatomy);
                                // The bias acts on attenuation (HU + 1000), as beam hardening does.
                                (hu + 1000.0) * bias - 1000.0 + anatomy.noise_hu * noise.normal()
                            }
                            PhantomModality::Mri { .. } => {
                                let signal = tissue.mri_signal(c) * bias;
                                // Magnitude images: Rician-like noise, zero stays near zero.
                                let noisy = signal + 0.5 * anatomy.noise_hu * noise.normal();
                                if signal == 0.0 { 0.0 } else { noisy.abs() }
                            }
                        };
                        image[c * slice_len + index] = value.round() as f32;
                    }
                }
            }
            (image, label)
        })
        .collect();
    let channel_len = slice_len * nz;
    let mut image = vec![0f32; channel_len * channels];
    let mut label = vec![0f32; channel_len];
    for (z, (slice_image, slice_label)) in slices.into_iter().enumerate() {
        label[z * slice_len..(z + 1) * slice_len].copy_from_slice(&slice_label);
        for c in 0..channels {
            image[c * channel_len + z * slice_len..c * channel_len + (z + 1) * slice_len]
                .copy_from_slice(&slice_image[c * slice_len..(c + 1) * slice_len]);
        }
    }
    let build = |voxels: Vec<f32>, channels: usize| match Volume::new(
        size,
        channels,
        voxels,
        geometry.world_from_voxel,
    ) {
        Ok(v) => v,
        Err(_) => unreachable!("allocated for this shape"),
    };
    PhantomCase {
        image: build(image, channels),
        label: build(label, 1),
    }
}

/// Writes a complete MSD task (dataset.json, imagesTr/, labelsTr/, imagesTs/) of phantoms into
/// `out`. Returns the paths of dataset.json.
pub fn write_phantom_task(out: &Path, options: &PhantomOptions) -> Result<PathBuf, DataError> {
    if options.size.iter().any(|n| *n < 8 || *n > 1024) {
        return Err(DataError::Invalid(format!(
            "phantom size {:?}: each dimension must be between 8 and 1024 voxels",
            options.size
        )));
    }
    for folder in ["imagesTr", "labelsTr", "imagesTs"] {
        create_dir(&out.join(folder))?;
    }
    let total = options.training_cases + options.test_cases;
    let name = |index: usize| format!("phantom_{index:03}");
    (0..total)
        .into_par_iter()
        .try_for_each(|index| -> Result<(), DataError> {
            // Mix the index in so neighbouring cases differ in every random draw.
            let seed = options
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(index as u64 + 1);
            let case = generate_case(seed, options);
            let mut header = NiftiHeader::default();
            header.set_affine(case.image.world_from_voxel());
            header.set_description("MedVisionLlama Studio phantom");
            let training = index < options.training_cases;
            let image_path = out
                .join(if training { "imagesTr" } else { "imagesTs" })
                .join(format!("{}.nii.gz", name(index)));
            write_nifti(
                &image_path,
                &case.image,
                Some(&header),
                WriteOptions::new(DataType::I16),
            )?;
            if training {
                let label_path = out.join("labelsTr").join(format!("{}.nii.gz", name(index)));
                write_label_like(&label_path, &case.label, &header)?;
            }
            Ok(())
        })?;
    let modality = match options.modality {
        PhantomModality::Ct => serde_json::json!({"0": "CT"}),
        PhantomModality::Mri { channels } => {
            let names = ["T1", "T2"];
            let map: serde_json::Map<String, serde_json::Value> = (0..channels.max(1))
                .map(|c| {
                    (
                        c.to_string(),
                        serde_json::Value::from(format!(
                            "{}{}",
                            names[c % 2],
                            if c >= 2 {
                                format!("_{}", c / 2)
                            } else {
                                String::new()
                            }
                        )),
                    )
                })
                .collect();
            serde_json::Value::Object(map)
        }
    };
    let dataset = serde_json::json!({
        "name": "Phantom",
        "description": "Synthetic abdominal phantoms: organ (1) with lesions (2). Generated by MedVisionLlama Studio.",
        "reference": "mvl demo-data",
        "licence": "CC0",
        "release": "1.0",
        "tensorImageSize": if options.modality == PhantomModality::Ct { "3D" } else { "4D" },
        "modality": modality,
        "labels": {"0": "background", "1": "organ", "2": "lesion"},
        "numTraining": options.training_cases,
        "numTest": options.test_cases,
        "training": (0..options.training_cases).map(|i| serde_json::json!({
            "image": format!("./imagesTr/{}.nii.gz", name(i)),
            "label": format!("./labelsTr/{}.nii.gz", name(i)),
        })).collect::<Vec<_>>(),
        "test": (options.training_cases..total).map(|i| format!("./imagesTs/{}.nii.gz", name(i))).collect::<Vec<_>>(),
        "seed": options.seed,
    });
    let json_path = out.join("dataset.json");
    write_json_atomically(&json_path, &dataset)?;
    Ok(json_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized(size: [usize; 3], modality: PhantomModality) -> PhantomOptions {
        PhantomOptions {
            size,
            modality,
            ..PhantomOptions::default()
        }
    }

    #[test]
    fn phantom_case_has_organ_lesion_and_realistic_intensities() {
        let case = generate_case(11, &sized([48, 48, 24], PhantomModality::Ct));
        let labels = case.label.voxels();
        let count = |v: f32| labels.iter().filter(|l| **l == v).count();
        assert!(count(1.0) > 500, "organ voxels {}", count(1.0));
        assert!(count(2.0) > 10, "lesion voxels {}", count(2.0));
        // The organ is brighter than its lesions on average (contrast the model must learn).
        let mean_of = |class: f32| {
            let values: Vec<f64> = labels
                .iter()
                .zip(case.image.voxels())
                .filter(|(l, _)| **l == class)
                .map(|(_, v)| f64::from(*v))
                .collect();
            values.iter().sum::<f64>() / values.len() as f64
        };
        assert!(mean_of(1.0) - mean_of(2.0) > 25.0);
        let stats = case.image.stats();
        assert!(stats.min < -900.0 && stats.max > 300.0, "{stats:?}");
        // Anisotropic and not axis-aligned.
        let spacing = case.image.spacing_mm();
        assert!(spacing[2] > 1.3 * spacing[0]);
        assert_ne!(*case.image.world_from_voxel(), Affine::from_diagonal(spacing));
    }

    #[test]
    fn same_seed_same_case_and_other_seed_differs() {
        let a = generate_case(5, &sized([16, 16, 8], PhantomModality::Mri { channels: 2 }));
        let b = generate_case(5, &sized([16, 16, 8], PhantomModality::Mri { channels: 2 }));
        let c = generate_case(6, &sized([16, 16, 8], PhantomModality::Mri { channels: 2 }));
        assert_eq!(a.image, b.image);
        assert_eq!(a.label, b.label);
        assert_ne!(a.image, c.image);
        assert_eq!(a.image.channels(), 2);
    }
}
