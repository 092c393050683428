//! Metrics checked against values computed another way: an O(n²) brute force over surfels found
//! by a direct per-corner loop, closed forms (concentric spheres, hand-counted overlaps) and the
//! empty-mask policy of DESIGN.md §5. The comparison with the `surface-distance` package itself
//! is in `tests/tests/metrics_fixtures.rs`.

use super::*;
use crate::rng::Rng;
use crate::volume::{Affine, Geometry, Volume};

/// Surfels of a mask found directly: every corner of the full grid, neighbours looked up one by
/// one, outside the volume counting as background. Returns (corner index, area) per surfel.
fn brute_force_surfels(mask: &[bool], shape: [usize; 3], spacing: [f64; 3]) -> Vec<([isize; 3], f64)> {
    let areas = surfel_area_table(spacing);
    let inside = |x: isize, y: isize, z: isize| -> bool {
        let n = shape.map(|v| v as isize);
        x >= 0
            && y >= 0
            && z >= 0
            && x < n[0]
            && y < n[1]
            && z < n[2]
            && mask[((z * n[1] + y) * n[0] + x) as usize]
    };
    let mut surfels = Vec::new();
    for k in 0..=shape[2] as isize {
        for j in 0..=shape[1] as isize {
            for i in 0..=shape[0] as isize {
                let mut code = 0u8;
                for a in 0..2 {
                    for b in 0..2 {
                        for c in 0..2 {
                            if inside(i - 1 + a as isize, j - 1 + b as isize, k - 1 + c as isize) {
                                code |= neighbour_bit(a, b, c);
                            }
                        }
                    }
                }
                if code != 0 && code != 255 {
                    surfels.push(([i, j, k], areas[code as usize]));
                }
            }
        }
    }
    surfels
}

/// For each surfel of `from`, the distance to the nearest surfel of `to`; sorted with areas.
/// Squares are summed x, y, z, as scipy does, so equal nearest distances are equal bit for bit.
fn brute_force_distances(
    from: &[([isize; 3], f64)],
    to: &[([isize; 3], f64)],
    spacing: [f64; 3],
) -> Vec<(f64, f64)> {
    let mut pairs: Vec<(f64, f64)> = from
        .iter()
        .map(|(p, area)| {
            let nearest = to
                .iter()
                .map(|(q, _)| {
                    let d = |a: usize| (p[a] - q[a]) as f64 * spacing[a];
                    ((d(0) * d(0) + d(1) * d(1)) + d(2) * d(2)).sqrt()
                })
                .fold(f64::INFINITY, f64::min);
            (nearest, *area)
        })
        .collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    pairs
}

fn random_blob(rng: &mut Rng, shape: [usize; 3], density: f64) -> Vec<bool> {
    (0..shape.iter().product::<usize>())
        .map(|_| rng.uniform() < density)
        .collect()
}

#[test]
fn surface_distances_match_brute_force_on_random_masks() {
    let mut rng = Rng::new(11);
    for trial in 0..12 {
        let shape = [4 + trial % 4, 5 + trial % 3, 3 + trial % 5];
        let spacing = [0.8, 1.25, 2.5];
        let ground_truth = random_blob(&mut rng, shape, 0.35);
        let prediction = random_blob(&mut rng, shape, 0.25);
        let fast = compute_surface_distances(&ground_truth, &prediction, shape, spacing);
        let gt_surfels = brute_force_surfels(&ground_truth, shape, spacing);
        let pred_surfels = brute_force_surfels(&prediction, shape, spacing);
        for (fast_distances, fast_areas, expected) in [
            (
                &fast.distances_gt_to_pred_mm,
                &fast.surfel_areas_gt_mm2,
                brute_force_distances(&gt_surfels, &pred_surfels, spacing),
            ),
            (
                &fast.distances_pred_to_gt_mm,
                &fast.surfel_areas_pred_mm2,
                brute_force_distances(&pred_surfels, &gt_surfels, spacing),
            ),
        ] {
            assert_eq!(
                fast_distances.len(),
                expected.len(),
                "trial {trial}: surfel count"
            );
            for (i, (d, a)) in expected.iter().enumerate() {
                // Tolerance: the brute force sums squares in a different order.
                assert!(
                    (fast_distances[i] - d).abs() <= 1e-12 * d.max(1.0),
                    "trial {trial} #{i}: {} vs {d}",
                    fast_distances[i]
                );
                assert_eq!(fast_areas[i], *a, "trial {trial} #{i}: area");
            }
        }
    }
}

#[test]
fn surfel_areas_of_a_voxel_and_a_box_match_closed_forms() {
    // One voxel: each of its 8 corner cells holds one corner triangle, normal (⅛, ⅛, ⅛) scaled
    // by the spacing: total 8 · ⅛ · √((sy·sz)² + (sx·sz)² + (sx·sy)²).
    let spacing: [f64; 3] = [0.8, 1.25, 2.5];
    let [sx, sy, sz] = spacing;
    let corner = ((sy * sz).powi(2) + (sx * sz).powi(2) + (sx * sy).powi(2)).sqrt();
    let single = compute_surface_distances(&[true], &[true], [1, 1, 1], spacing);
    let area: f64 = single.surfel_areas_gt_mm2.iter().sum();
    assert!((area - corner).abs() < 1e-12, "single voxel area {area}");
    // A box of n voxels per axis: flat face cells count sy·sz (etc.) each, edge cells along x
    // count ½·sx·√(sy² + sz²) (etc.), plus the 8 corners. (The marching-cubes surface cuts the
    // box's edges and corners, so this is less than the box's true area.)
    let shape = [7, 5, 4];
    let [nx, ny, nz] = shape.map(|n| n as f64 - 1.0);
    let faces = 2.0 * (ny * nz * sy * sz + nx * nz * sx * sz + nx * ny * sx * sy);
    let edges = 2.0 * (nx * sx * sy.hypot(sz) + ny * sy * sx.hypot(sz) + nz * sz * sx.hypot(sy));
    let expected = faces + edges + corner;
    let full = vec![true; 7 * 5 * 4];
    let surfaces = compute_surface_distances(&full, &full, shape, spacing);
    let area: f64 = surfaces.surfel_areas_gt_mm2.iter().sum();
    assert!(
        (area - expected).abs() < 1e-9 * expected,
        "box area {area} vs {expected}"
    );
    assert!(surfaces.distances_gt_to_pred_mm.iter().all(|d| *d == 0.0));
}

fn sphere_mask(shape: [usize; 3], spacing: [f64; 3], radius_mm: f64) -> Vec<bool> {
    let centre = [0, 1, 2].map(|a| (shape[a] as f64 - 1.0) * spacing[a] / 2.0);
    let mut mask = Vec::with_capacity(shape.iter().product());
    for z in 0..shape[2] {
        for y in 0..shape[1] {
            for x in 0..shape[0] {
                let p = [x, y, z];
                let r2: f64 = (0..3)
                    .map(|a| (p[a] as f64 * spacing[a] - centre[a]).powi(2))
                    .sum();
                mask.push(r2 <= radius_mm * radius_mm);
            }
        }
    }
    mask
}

fn label_volume(shape: [usize; 3], spacing: [f64; 3], mask_labels: &[(Vec<bool>, f32)]) -> Volume {
    let mut voxels = vec![0.0f32; shape.iter().product()];
    for (mask, label) in mask_labels {
        for (v, inside) in voxels.iter_mut().zip(mask) {
            if *inside {
                *v = *label;
            }
        }
    }
    Volume::new(shape, 1, voxels, Affine::from_diagonal(spacing)).expect("sizes match")
}

#[test]
fn concentric_spheres_give_the_difference_of_radii() {
    let (shape, spacing) = ([48, 48, 24], [0.9, 0.9, 1.6]);
    let (outer, inner) = (16.0, 11.0);
    let ground_truth = label_volume(shape, spacing, &[(sphere_mask(shape, spacing, outer), 1.0)]);
    let prediction = label_volume(shape, spacing, &[(sphere_mask(shape, spacing, inner), 1.0)]);
    let metrics = case_metrics(&prediction, &ground_truth, 1.0).expect("same grid");
    let class = &metrics.classes[0];
    // Each voxelised surface is within half a voxel diagonal of the true sphere.
    let half_diagonal = 0.5 * spacing.iter().map(|s| s * s).sum::<f64>().sqrt();
    let hd95 = class.hd95_mm.expect("defined");
    assert!(
        (hd95 - (outer - inner)).abs() <= 2.0 * half_diagonal,
        "HD95 {hd95}"
    );
    // No surfel is within 1 mm of the other surface; all are within 5 + 2·half-diagonal mm.
    assert_eq!(class.nsd, Some(0.0));
    let loose = case_metrics(&prediction, &ground_truth, outer - inner + 2.0 * half_diagonal).expect("ok");
    assert_eq!(loose.classes[0].nsd, Some(1.0));
    // Dice ≈ 2 r³ / (R³ + r³), sensitivity ≈ (r/R)³, specificity 1, to voxelisation accuracy.
    let ratio = (inner / outer).powi(3);
    let dice = class.dice.expect("defined");
    assert!((dice - 2.0 * ratio / (1.0 + ratio)).abs() < 0.03, "Dice {dice}");
    assert!((class.sensitivity.expect("defined") - ratio).abs() < 0.03);
    assert_eq!(class.specificity, Some(1.0));
}

#[test]
fn overlap_metrics_match_hand_counts() {
    // 10 voxels in a row: ground truth label 1 on 0..6, prediction on 2..8.
    // TP = 4, FP = 2, FN = 2, TN = 2.
    let shape = [10, 1, 1];
    let gt: Vec<bool> = (0..10).map(|x| x < 6).collect();
    let pred: Vec<bool> = (0..10).map(|x| (2..8).contains(&x)).collect();
    let ground_truth = label_volume(shape, [1.0; 3], &[(gt, 1.0)]);
    let prediction = label_volume(shape, [1.0; 3], &[(pred, 1.0)]);
    let class = &case_metrics(&prediction, &ground_truth, 1.0).expect("ok").classes[0];
    assert_eq!(class.dice, Some(8.0 / 12.0));
    assert_eq!(class.jaccard, Some(4.0 / 8.0));
    assert_eq!(class.sensitivity, Some(4.0 / 6.0));
    assert_eq!(class.specificity, Some(2.0 / 4.0));
    // The end faces are 2 mm apart along x: HD95 = 2 mm.
    assert_eq!(class.hd95_mm, Some(2.0));
}

#[test]
fn empty_masks_follow_the_design_policy() {
    let (shape, spacing) = ([6, 5, 4], [0.5, 1.0, 3.0]);
    let block: Vec<bool> = (0..120).map(|i| i % 6 < 3 && i / 30 < 2).collect();
    // Label 1 only in the ground truth, label 2 only in the prediction.
    let ground_truth = label_volume(shape, spacing, &[(block.clone(), 1.0)]);
    let prediction = label_volume(shape, spacing, &[(block, 2.0)]);
    let metrics = case_metrics(&prediction, &ground_truth, 1.0).expect("ok");
    let diagonal = (3.0f64.powi(2) + 5.0f64.powi(2) + 12.0f64.powi(2)).sqrt();
    assert!((metrics.diagonal_mm - diagonal).abs() < 1e-12);
    let labels: Vec<u32> = metrics.classes.iter().map(|c| c.label).collect();
    assert_eq!(labels, [1, 2]);
    for class in &metrics.classes {
        assert_eq!(class.dice, Some(0.0));
        assert_eq!(class.jaccard, Some(0.0));
        assert_eq!(class.nsd, Some(0.0));
        assert_eq!(class.hd95_mm, Some(metrics.diagonal_mm));
        assert!(!class.both_empty);
    }
    assert_eq!(metrics.classes[0].sensitivity, Some(0.0));
    assert_eq!(metrics.classes[1].sensitivity, None, "no ground truth: undefined");
    let absent = both_empty_class(3);
    assert!(absent.both_empty && absent.dice.is_none() && absent.nsd.is_none());
    // Nothing but background: no classes at all.
    let empty = label_volume(shape, spacing, &[]);
    assert!(case_metrics(&empty, &empty, 1.0).expect("ok").classes.is_empty());
}

#[test]
fn mismatched_grids_and_non_labels_are_refused() {
    let geometry = Geometry {
        shape: [4, 4, 4],
        world_from_voxel: Affine::from_diagonal([1.0; 3]),
    };
    let labels = Volume::from_fn(&geometry, |x, _, _| (x % 2) as f32);
    let smaller = Volume::from_fn(
        &Geometry {
            shape: [4, 4, 3],
            ..geometry
        },
        |_, _, _| 1.0,
    );
    let message = case_metrics(&labels, &smaller, 1.0)
        .expect_err("shapes differ")
        .to_string();
    assert!(message.contains("shapes differ"), "{message}");
    let shifted = Volume::from_fn(
        &Geometry {
            world_from_voxel: Affine::from_parts(
                [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                [0.0, 0.01, 0.0],
            ),
            ..geometry
        },
        |_, _, _| 1.0,
    );
    assert!(
        case_metrics(&labels, &shifted, 1.0)
            .expect_err("affines differ")
            .to_string()
            .contains("affines differ")
    );
    let tiny_shift = Volume::from_fn(
        &Geometry {
            world_from_voxel: Affine::from_parts(
                [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
                [0.0, 0.0005, 0.0],
            ),
            ..geometry
        },
        |_, _, _| 1.0,
    );
    assert!(case_metrics(&labels, &tiny_shift, 1.0).is_ok());
    let probabilities = Volume::from_fn(&geometry, |_, _, _| 0.4);
    assert!(
        case_metrics(&probabilities, &labels, 1.0)
            .expect_err("not labels")
            .to_string()
            .contains("0.4")
    );
    assert!(case_metrics(&labels, &labels, -1.0).is_err());
}
