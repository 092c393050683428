//! Orientation: axis codes (RAS, LPS, …), the NIfTI quaternion of an affine, and exact
//! reorientation to the canonical RAS+ voxel order by permuting and flipping axes.

use super::Volume;
use super::affine::{Affine, determinant};

/// The NIfTI-1 quaternion representation of an affine (`nifti_mat44_to_quatern`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quaternion {
    /// Quaternion b.
    pub b: f64,
    /// Quaternion c.
    pub c: f64,
    /// Quaternion d.
    pub d: f64,
    /// +1, or -1 when the affine is a reflection (stored in pixdim[0]).
    pub qfac: f64,
    /// Voxel sizes (column norms).
    pub zooms: [f64; 3],
}

/// Converts an affine's rotation to a NIfTI quaternion, as nifti1_io's `nifti_mat44_to_quatern`.
/// Shears cannot be represented; the rotation part of the normalised columns is used.
pub fn quaternion_from_affine(affine: &Affine) -> Quaternion {
    let mut r = affine.linear();
    let zooms = affine.column_norms();
    for row in &mut r {
        for (col, value) in row.iter_mut().enumerate() {
            if zooms[col] > 0.0 {
                *value /= zooms[col];
            }
        }
    }
    let qfac = if determinant(&r) < 0.0 { -1.0 } else { 1.0 };
    if qfac < 0.0 {
        for row in &mut r {
            row[2] = -row[2];
        }
    }
    let trace = r[0][0] + r[1][1] + r[2][2] + 1.0;
    let (mut a, mut b, mut c, mut d);
    if trace > 0.5 {
        a = 0.5 * trace.sqrt();
        b = 0.25 * (r[2][1] - r[1][2]) / a;
        c = 0.25 * (r[0][2] - r[2][0]) / a;
        d = 0.25 * (r[1][0] - r[0][1]) / a;
    } else {
        let xd = 1.0 + r[0][0] - (r[1][1] + r[2][2]);
        let yd = 1.0 + r[1][1] - (r[0][0] + r[2][2]);
        let zd = 1.0 + r[2][2] - (r[0][0] + r[1][1]);
        if xd > 1.0 {
            b = 0.5 * xd.sqrt();
            c = 0.25 * (r[0][1] + r[1][0]) / b;
            d = 0.25 * (r[0][2] + r[2][0]) / b;
            a = 0.25 * (r[2][1] - r[1][2]) / b;
        } else if yd > 1.0 {
            c = 0.5 * yd.sqrt();
            b = 0.25 * (r[0][1] + r[1][0]) / c;
            d = 0.25 * (r[1][2] + r[2][1]) / c;
            a = 0.25 * (r[0][2] - r[2][0]) / c;
        } else {
            d = 0.5 * zd.sqrt();
            b = 0.25 * (r[0][2] + r[2][0]) / d;
            c = 0.25 * (r[1][2] + r[2][1]) / d;
            a = 0.25 * (r[1][0] - r[0][1]) / d;
        }
        if a < 0.0 {
            a = -a;
            b = -b;
            c = -c;
            d = -d;
        }
    }
    let _ = a;
    Quaternion { b, c, d, qfac, zooms }
}

/// For each voxel axis, the world axis (0 = x/R, 1 = y/A, 2 = z/S) it points along most, and
/// whether it points the positive way. Ties and oblique axes are resolved greedily, largest
/// component first, so no world axis is used twice (as nibabel's `io_orientation` does).
pub fn axis_codes(affine: &Affine) -> [(usize, bool); 3] {
    let linear = affine.linear();
    let norms = affine.column_norms();
    let mut used_world = [false; 3];
    let mut used_voxel = [false; 3];
    let mut result = [(0usize, true); 3];
    for _ in 0..3 {
        let mut best = (0usize, 0usize, -1.0f64);
        for world in (0..3).filter(|w| !used_world[*w]) {
            for voxel in (0..3).filter(|v| !used_voxel[*v]) {
                let weight = (linear[world][voxel] / norms[voxel].max(f64::MIN_POSITIVE)).abs();
                if weight > best.2 {
                    best = (world, voxel, weight);
                }
            }
        }
        let (world, voxel, _) = best;
        used_world[world] = true;
        used_voxel[voxel] = true;
        result[voxel] = (world, linear[world][voxel] >= 0.0);
    }
    result
}

/// Orientation letters, e.g. "RAS" or "LPS": the world direction each voxel axis increases
/// towards (nibabel's `aff2axcodes`).
pub fn orientation_string(affine: &Affine) -> String {
    const POSITIVE: [char; 3] = ['R', 'A', 'S'];
    const NEGATIVE: [char; 3] = ['L', 'P', 'I'];
    axis_codes(affine)
        .iter()
        .map(|(world, positive)| {
            if *positive {
                POSITIVE[*world]
            } else {
                NEGATIVE[*world]
            }
        })
        .collect()
}

/// Reorders and flips the voxel axes so that they increase towards R, A and S (RAS+), as
/// nibabel's `as_closest_canonical`. Exact: no interpolation; the world position of every voxel
/// is unchanged, only its index.
pub fn reorient_to_canonical(volume: &Volume) -> Volume {
    let codes = axis_codes(volume.world_from_voxel());
    let old_shape = volume.shape();
    if codes == [(0, true), (1, true), (2, true)] {
        return volume.clone();
    }
    let mut new_shape = [0usize; 3];
    for (old_axis, (world, _)) in codes.iter().enumerate() {
        new_shape[*world] = old_shape[old_axis];
    }
    // old_from_new: old index j = flip ? (n_j - 1 - new[world_j]) : new[world_j].
    let mut linear = [[0.0; 3]; 3];
    let mut translation = [0.0; 3];
    for (old_axis, (world, positive)) in codes.iter().enumerate() {
        if *positive {
            linear[old_axis][*world] = 1.0;
        } else {
            linear[old_axis][*world] = -1.0;
            translation[old_axis] = (old_shape[old_axis] - 1) as f64;
        }
    }
    let old_from_new = Affine::from_parts(linear, translation);
    let world_from_new = volume.world_from_voxel().then_after(&old_from_new);
    let [nx, ny, nz] = new_shape;
    let channel_len = nx * ny * nz;
    let mut voxels = vec![0f32; channel_len * volume.channels()];
    // Strides of the old layout for each new axis, with the start offset for flipped axes.
    let old_strides = [1, old_shape[0], old_shape[0] * old_shape[1]];
    let mut stride_for_new = [0isize; 3];
    let mut start = 0isize;
    for (old_axis, (world, positive)) in codes.iter().enumerate() {
        let stride = old_strides[old_axis] as isize;
        if *positive {
            stride_for_new[*world] = stride;
        } else {
            stride_for_new[*world] = -stride;
            start += (old_shape[old_axis] as isize - 1) * stride;
        }
    }
    for c in 0..volume.channels() {
        let source = volume.channel(c);
        let target = &mut voxels[c * channel_len..(c + 1) * channel_len];
        let mut out = 0;
        for z in 0..nz as isize {
            for y in 0..ny as isize {
                let row = start + z * stride_for_new[2] + y * stride_for_new[1];
                for x in 0..nx as isize {
                    target[out] = source[(row + x * stride_for_new[0]) as usize];
                    out += 1;
                }
            }
        }
    }
    match Volume::new(new_shape, volume.channels(), voxels, world_from_new) {
        Ok(v) => v,
        // The permuted shape has the same voxel count by construction.
        Err(_) => unreachable!("reorientation preserves the voxel count"),
    }
}

/// The inverse of [`reorient_to_canonical`] for one channel of voxels of any type (a label of
/// `u8`, `u16` or `f32`): maps `canonical`, on the RAS+ grid that `reorient_to_canonical` makes
/// of `original`, back to `original`'s voxel order. Exact (indices only). `None` when
/// `canonical_shape` is not `original`'s shape reoriented, or `canonical` does not hold that
/// many voxels.
pub fn voxels_from_canonical<T: Copy>(
    canonical: &[T],
    canonical_shape: [usize; 3],
    original: &super::Geometry,
) -> Option<Vec<T>> {
    let codes = axis_codes(&original.world_from_voxel);
    let old_shape = original.shape;
    let mut expected = [0usize; 3];
    for (old_axis, (world, _)) in codes.iter().enumerate() {
        expected[*world] = old_shape[old_axis];
    }
    if canonical_shape != expected || canonical.len() != expected.iter().product::<usize>() {
        return None;
    }
    let [cx, cy, _] = expected;
    // For each old axis: the stride of its canonical axis, signed, and where it starts.
    let canonical_strides = [1isize, cx as isize, (cx * cy) as isize];
    let mut stride = [0isize; 3];
    let mut start = 0isize;
    for (old_axis, (world, positive)) in codes.iter().enumerate() {
        if *positive {
            stride[old_axis] = canonical_strides[*world];
        } else {
            stride[old_axis] = -canonical_strides[*world];
            start += (old_shape[old_axis] as isize - 1) * canonical_strides[*world];
        }
    }
    let [nx, ny, nz] = old_shape;
    let mut voxels = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz as isize {
        for j in 0..ny as isize {
            let row = start + k * stride[2] + j * stride[1];
            voxels.extend((0..nx as isize).map(|i| canonical[(row + i * stride[0]) as usize]));
        }
    }
    Some(voxels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Geometry;

    fn lps_oblique() -> Affine {
        // Orthogonal voxel axes: x → -y (P), y → -x (L), both rotated by 0.1 rad; z → +z (S).
        let angle = 0.1f64;
        Affine::from_parts(
            [
                [-0.8 * angle.sin(), -0.9 * angle.cos(), 0.0],
                [-0.8 * angle.cos(), 0.9 * angle.sin(), 0.0],
                [0.0, 0.0, 2.5],
            ],
            [50.0, 60.0, -20.0],
        )
    }

    #[test]
    fn axis_codes_name_the_dominant_directions() {
        assert_eq!(orientation_string(&Affine::identity()), "RAS");
        assert_eq!(
            orientation_string(&Affine::from_diagonal([-1.0, -1.0, 1.0])),
            "LPS"
        );
        assert_eq!(orientation_string(&lps_oblique()), "PLS");
    }

    #[test]
    fn canonical_reorientation_keeps_every_voxel_at_its_world_position() {
        let geometry = Geometry {
            shape: [4, 3, 2],
            world_from_voxel: lps_oblique(),
        };
        let volume = Volume::from_fn(&geometry, |x, y, z| (x + 10 * y + 100 * z) as f32);
        let canonical = reorient_to_canonical(&volume);
        assert_eq!(orientation_string(canonical.world_from_voxel()), "RAS");
        assert_eq!(canonical.shape(), [3, 4, 2]);
        // Brute force: for every old voxel, find the new voxel at the same world position.
        let new_from_world = canonical.world_from_voxel().inverse().expect("invertible");
        for z in 0..2 {
            for y in 0..3 {
                for x in 0..4 {
                    let world = volume.world_from_voxel().apply([x as f64, y as f64, z as f64]);
                    let index = new_from_world.apply(world);
                    let rounded = index.map(|v| v.round());
                    for axis in 0..3 {
                        assert!((index[axis] - rounded[axis]).abs() < 1e-9, "integer index");
                    }
                    let [i, j, k] = rounded.map(|v| v as usize);
                    assert_eq!(canonical.at(i, j, k), volume.at(x, y, z));
                }
            }
        }
    }

    #[test]
    fn quaternion_reproduces_rotation_and_reflection() {
        // Rebuild the rotation from (b, c, d) in f64 with the NIfTI formula and compare with the
        // normalised columns (third column times qfac). Includes a 180° case (a = 0).
        let half_turn = Affine::from_parts([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]], [0.0; 3]);
        for affine in [lps_oblique(), Affine::from_diagonal([-2.0, 3.0, -4.0]), half_turn] {
            let q = quaternion_from_affine(&affine);
            let (b, c, d) = (q.b, q.c, q.d);
            let a = (1.0 - (b * b + c * c + d * d)).max(0.0).sqrt();
            let rotation = [
                [
                    a * a + b * b - c * c - d * d,
                    2.0 * (b * c - a * d),
                    2.0 * (b * d + a * c),
                ],
                [
                    2.0 * (b * c + a * d),
                    a * a + c * c - b * b - d * d,
                    2.0 * (c * d - a * b),
                ],
                [
                    2.0 * (b * d - a * c),
                    2.0 * (c * d + a * b),
                    a * a + d * d - c * c - b * b,
                ],
            ];
            let linear = affine.linear();
            for row in 0..3 {
                for col in 0..3 {
                    let scale = q.zooms[col] * if col == 2 { q.qfac } else { 1.0 };
                    let want = linear[row][col];
                    let got = rotation[row][col] * scale;
                    assert!(
                        (got - want).abs() < 1e-9,
                        "{affine:?} [{row}][{col}] {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn voxels_from_canonical_undoes_the_reorientation_for_every_axis_order_and_flip() {
        // All 48 signed permutations of the axes, on a 4 × 3 × 2 volume of distinct values.
        let shape = [4, 3, 2];
        let voxels: Vec<f32> = (0..24).map(|i| i as f32).collect();
        let permutations = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
        for permutation in permutations {
            for signs in 0..8 {
                let mut linear = [[0.0; 3]; 3];
                for (voxel_axis, world) in permutation.iter().enumerate() {
                    let sign = if signs >> voxel_axis & 1 == 1 { -1.0 } else { 1.0 };
                    linear[*world][voxel_axis] = sign * (voxel_axis as f64 + 0.5);
                }
                let affine = Affine::from_parts(linear, [3.0, -7.0, 11.0]);
                let volume = Volume::new(shape, 1, voxels.clone(), affine).expect("volume");
                let canonical = reorient_to_canonical(&volume);
                let original = Geometry {
                    shape,
                    world_from_voxel: affine,
                };
                let labels: Vec<u8> = canonical.voxels().iter().map(|v| *v as u8).collect();
                let back = voxels_from_canonical(&labels, canonical.shape(), &original).expect("same grid");
                let expected: Vec<u8> = (0..24).collect();
                assert_eq!(back, expected, "permutation {permutation:?}, signs {signs:03b}");
            }
        }
        let identity = Geometry {
            shape,
            world_from_voxel: Affine::identity(),
        };
        assert!(voxels_from_canonical(&voxels, [3, 4, 2], &identity).is_none());
        assert!(voxels_from_canonical(&voxels[..23], shape, &identity).is_none());
    }
}
