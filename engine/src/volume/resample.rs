//! Resampling a volume onto another grid in world space: trilinear for images, nearest for
//! labels. Works for any pair of affines (anisotropic, oblique, flipped).

use super::affine::Affine;
use super::{Geometry, Volume};
use rayon::prelude::*;

/// Positions closer than this (in voxels) to a voxel centre are treated as on it.
const GRID_SNAP_VOXELS: f64 = 1e-6;

/// How values between voxel centres are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Interpolation {
    /// Trilinear: for intensities and probabilities.
    Linear,
    /// Nearest voxel: for labels (never invents a label value).
    Nearest,
}

/// The grid of `size` voxels covering the same field of view as `source`: voxel edges coincide
/// with the source's outer voxel edges (scipy's `zoom(..., grid_mode=True)`), so the physical
/// extent and centre of the image are kept.
pub fn model_grid(source: &Geometry, size: [usize; 3]) -> Geometry {
    let mut linear = [[0.0; 3]; 3];
    let mut translation = [0.0; 3];
    for axis in 0..3 {
        let step = source.shape[axis] as f64 / size[axis] as f64;
        linear[axis][axis] = step;
        // Centre of target voxel 0 in source index units: half a target voxel from the edge at -0.5.
        translation[axis] = 0.5 * step - 0.5;
    }
    let source_from_target = Affine::from_parts(linear, translation);
    Geometry {
        shape: size,
        world_from_voxel: source.world_from_voxel.then_after(&source_from_target),
    }
}

/// Resamples every channel of `volume` onto `target`. Points that fall more than half a voxel
/// outside the source get `fill`; within that half-voxel border the edge value is used.
pub fn resample(volume: &Volume, target: &Geometry, interpolation: Interpolation, fill: f32) -> Volume {
    let source_from_world = match volume.world_from_voxel().inverse() {
        Some(inverse) => inverse,
        // Volumes are built from validated headers whose affines are invertible.
        None => return Volume::zeros(target),
    };
    let source_from_target = source_from_world.then_after(&target.world_from_voxel);
    let [tx, ty, tz] = target.shape;
    let channel_len = tx * ty * tz;
    let mut voxels = vec![0f32; channel_len * volume.channels()];
    for c in 0..volume.channels() {
        let source = volume.channel(c);
        voxels[c * channel_len..(c + 1) * channel_len]
            .par_chunks_mut(tx * ty)
            .enumerate()
            .for_each(|(z, slice)| {
                let sampler = Sampler {
                    data: source,
                    shape: volume.shape(),
                    fill,
                };
                for y in 0..ty {
                    let row = &mut slice[y * tx..(y + 1) * tx];
                    let start = source_from_target.apply([0.0, y as f64, z as f64]);
                    let step = [
                        source_from_target.0[0][0],
                        source_from_target.0[1][0],
                        source_from_target.0[2][0],
                    ];
                    for (x, out) in row.iter_mut().enumerate() {
                        let p = [
                            start[0] + step[0] * x as f64,
                            start[1] + step[1] * x as f64,
                            start[2] + step[2] * x as f64,
                        ];
                        *out = match interpolation {
                            Interpolation::Linear => sampler.linear(p),
                            Interpolation::Nearest => sampler.nearest(p),
                        };
                    }
                }
            });
    }
    match Volume::new(target.shape, volume.channels(), voxels, target.world_from_voxel) {
        Ok(v) => v,
        Err(_) => unreachable!("the output is allocated for the target shape"),
    }
}

/// `x.floor()` for `0 ≤ x < 2⁵³`, where truncation is the floor. On baseline x86-64 (no
/// SSE4.1) `f64::floor` and `f64::round` are library calls, and the training loop resamples
/// every sample's image and label each epoch through them (issue 11's profile of `mvl train`).
#[inline]
fn floor_non_negative(x: f64) -> f64 {
    (x as u64) as f64
}

/// `x.round()` (half away from zero) for `0 ≤ x < 2⁵³`, without the library call: the
/// fraction `x − floor(x)` is exact in f64 there.
#[inline]
fn round_non_negative(x: f64) -> f64 {
    let whole = floor_non_negative(x);
    if x - whole >= 0.5 { whole + 1.0 } else { whole }
}

/// Reads one channel at fractional voxel positions.
struct Sampler<'a> {
    data: &'a [f32],
    shape: [usize; 3],
    fill: f32,
}

impl Sampler<'_> {
    /// Whether a position lies within half a voxel of the grid.
    fn inside(&self, p: [f64; 3]) -> bool {
        (0..3).all(|axis| p[axis] >= -0.5 && p[axis] <= self.shape[axis] as f64 - 0.5)
    }

    fn value(&self, x: usize, y: usize, z: usize) -> f32 {
        self.data[(z * self.shape[1] + y) * self.shape[0] + x]
    }

    fn nearest(&self, p: [f64; 3]) -> f32 {
        if !self.inside(p) {
            return self.fill;
        }
        // Inside, p ≥ −0.5: a negative position rounds to the first voxel.
        let index = |axis: usize| {
            let q = p[axis];
            let rounded = if q > 0.0 {
                round_non_negative(q) as usize
            } else {
                0
            };
            rounded.min(self.shape[axis] - 1)
        };
        self.value(index(0), index(1), index(2))
    }

    fn linear(&self, p: [f64; 3]) -> f32 {
        if !self.inside(p) {
            return self.fill;
        }
        // Lower corner and weight per axis, the coordinate clamped into [0, n-1].
        let corner = |axis: usize| {
            let n = self.shape[axis];
            let mut q = p[axis].clamp(0.0, (n - 1) as f64);
            // Positions a rounding error away from a voxel centre are that centre: identical
            // grids then resample exactly, with no 1e-16 contributions from neighbours.
            let nearest = round_non_negative(q);
            if (q - nearest).abs() < GRID_SNAP_VOXELS {
                q = nearest;
            }
            let low = (floor_non_negative(q) as usize).min(n.saturating_sub(2));
            let high = (low + 1).min(n - 1);
            (low, high, (q - low as f64) as f32)
        };
        let (x0, x1, wx) = corner(0);
        let (y0, y1, wy) = corner(1);
        let (z0, z1, wz) = corner(2);
        let lerp = |a: f32, b: f32, w: f32| a + (b - a) * w;
        let plane = |z: usize| {
            lerp(
                lerp(self.value(x0, y0, z), self.value(x1, y0, z), wx),
                lerp(self.value(x0, y1, z), self.value(x1, y1, z), wx),
                wy,
            )
        };
        lerp(plane(z0), plane(z1), wz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oblique_geometry(shape: [usize; 3]) -> Geometry {
        let (s, c) = (0.2f64.sin(), 0.2f64.cos());
        Geometry {
            shape,
            world_from_voxel: Affine::from_parts(
                [[-0.7 * c, 0.0, 3.0 * s], [0.0, 0.9, 0.0], [0.7 * s, 0.0, 3.0 * c]],
                [40.0, -25.0, 10.0],
            ),
        }
    }

    /// Against std's floor and round: every multiple of 1/1024 up to 4096 (halves and exact
    /// integers included), the neighbours one ulp either side of each half and integer, and
    /// large values up to 2⁵².
    #[test]
    fn call_free_floor_and_round_match_std_on_non_negative_values() {
        let mut values: Vec<f64> = (0..=4096 * 1024).map(|i| f64::from(i) / 1024.0).collect();
        for k in 0..=4096 {
            for base in [f64::from(k), f64::from(k) + 0.5] {
                values.extend([base.next_down().max(0.0), base, base.next_up()]);
            }
        }
        values.extend((30..53).map(|e| 2f64.powi(e) + 0.5));
        values.extend((30..53).map(|e| 2f64.powi(e) - 0.5));
        for x in values {
            assert_eq!(
                floor_non_negative(x).to_bits(),
                x.floor().to_bits(),
                "floor {x:e}"
            );
            assert_eq!(
                round_non_negative(x).to_bits(),
                x.round().to_bits(),
                "round {x:e}"
            );
        }
    }

    #[test]
    fn identity_resample_is_exact() {
        let geometry = oblique_geometry([7, 5, 4]);
        let volume = Volume::from_fn(&geometry, |x, y, z| {
            (x * x) as f32 - 3.0 * y as f32 + (z * 7) as f32
        });
        for interpolation in [Interpolation::Linear, Interpolation::Nearest] {
            let same = resample(&volume, &geometry, interpolation, -1.0);
            assert_eq!(same.voxels(), volume.voxels());
        }
    }

    #[test]
    fn linear_ramp_in_world_space_stays_a_ramp() {
        // f(world) = 2x - 0.5y + 3z + 1 is linear, so trilinear interpolation reproduces it exactly
        // at every target point that lies inside the source's voxel centres (tolerance: f32).
        let source_geometry = oblique_geometry([20, 18, 9]);
        let ramp = |w: [f64; 3]| 2.0 * w[0] - 0.5 * w[1] + 3.0 * w[2] + 1.0;
        let source = Volume::from_fn(&source_geometry, |x, y, z| {
            ramp(
                source_geometry
                    .world_from_voxel
                    .apply([x as f64, y as f64, z as f64]),
            ) as f32
        });
        let target = model_grid(&source_geometry, [8, 8, 8]);
        let resampled = resample(&source, &target, Interpolation::Linear, f32::NAN);
        let source_from_world = source_geometry.world_from_voxel.inverse().expect("invertible");
        let mut checked = 0;
        for z in 0..8 {
            for y in 0..8 {
                for x in 0..8 {
                    let world = target.world_from_voxel.apply([x as f64, y as f64, z as f64]);
                    let p = source_from_world.apply(world);
                    let interior =
                        (0..3).all(|a| p[a] >= 0.0 && p[a] <= (source_geometry.shape[a] - 1) as f64);
                    if interior {
                        let got = f64::from(resampled.at(x, y, z));
                        assert!((got - ramp(world)).abs() < 1e-3, "{got} vs {}", ramp(world));
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 300, "only {checked} interior points");
    }

    #[test]
    fn label_centre_of_mass_stays_put_under_anisotropic_resampling() {
        // A ball of radius 12 mm centred at a world point, on an anisotropic oblique grid,
        // resampled (nearest) to a coarser isotropic-index grid: its physical centre of mass moves
        // by less than half the largest target voxel.
        let source_geometry = oblique_geometry([60, 50, 16]);
        let centre_voxel = [31.3, 22.7, 8.2];
        let centre = source_geometry.world_from_voxel.apply(centre_voxel);
        let label = Volume::from_fn(&source_geometry, |x, y, z| {
            let w = source_geometry
                .world_from_voxel
                .apply([x as f64, y as f64, z as f64]);
            let d2: f64 = (0..3).map(|a| (w[a] - centre[a]).powi(2)).sum();
            if d2 <= 144.0 { 1.0 } else { 0.0 }
        });
        let centre_of_mass = |v: &Volume| {
            let mut sum = [0.0; 3];
            let mut count = 0.0;
            let [nx, ny, nz] = v.shape();
            for z in 0..nz {
                for y in 0..ny {
                    for x in 0..nx {
                        if v.at(x, y, z) > 0.5 {
                            let w = v.world_from_voxel().apply([x as f64, y as f64, z as f64]);
                            (0..3).for_each(|a| sum[a] += w[a]);
                            count += 1.0;
                        }
                    }
                }
            }
            sum.map(|s| s / count)
        };
        let before = centre_of_mass(&label);
        let target = model_grid(&source_geometry, [32, 32, 32]);
        let after = centre_of_mass(&resample(&label, &target, Interpolation::Nearest, 0.0));
        let largest_voxel = target.spacing_mm().into_iter().fold(0.0, f64::max);
        let shift: f64 = (0..3).map(|a| (after[a] - before[a]).powi(2)).sum::<f64>().sqrt();
        assert!(
            shift < 0.5 * largest_voxel,
            "centre moved {shift} mm (voxel {largest_voxel} mm)"
        );
        // And the discretised source centre is near the true centre.
        let source_shift: f64 = (0..3)
            .map(|a| (before[a] - centre[a]).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(source_shift < 0.5, "source centre off by {source_shift} mm");
    }

    #[test]
    fn model_grid_keeps_the_field_of_view() {
        let source = oblique_geometry([60, 50, 16]);
        let grid = model_grid(&source, [32, 32, 32]);
        // The outer corner of the outer voxel is the same world point on both grids.
        for corner in [[-0.5, -0.5, -0.5], [59.5, 49.5, 15.5]] {
            let target_corner = corner
                .iter()
                .zip([60.0, 50.0, 16.0])
                .map(|(c, n)| (c + 0.5) * 32.0 / n - 0.5)
                .collect::<Vec<_>>();
            let a = source.world_from_voxel.apply(corner);
            let b = grid
                .world_from_voxel
                .apply([target_corner[0], target_corner[1], target_corner[2]]);
            for axis in 0..3 {
                assert!((a[axis] - b[axis]).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn points_outside_get_the_fill_value() {
        let geometry = oblique_geometry([4, 4, 4]);
        let volume = Volume::from_fn(&geometry, |_, _, _| 5.0);
        let mut shifted = geometry;
        shifted.world_from_voxel.0[1][3] += 100.0; // 100 mm away along y
        let out = resample(&volume, &shifted, Interpolation::Linear, -7.0);
        assert!(out.voxels().iter().all(|v| *v == -7.0));
    }
}
