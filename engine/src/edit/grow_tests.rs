use super::*;
use crate::rng::Rng;
use std::collections::BTreeSet;

fn never() -> bool {
    false
}

/// The region by its definition, computed another way: start from the seed and add, pass after
/// pass over the whole grid, every in-window voxel with a face neighbour (in the allowed axes)
/// already in the region, until a pass adds nothing.
fn brute_force(image: &[f32], shape: [usize; 3], request: &GrowRequest) -> Vec<usize> {
    let [nx, ny, nz] = shape;
    let index = |x: usize, y: usize, z: usize| x + nx * (y + ny * z);
    let axes: Vec<usize> = match request.extent {
        GrowExtent::Slice { normal } => (0..3).filter(|a| *a != normal).collect(),
        GrowExtent::Volume => vec![0, 1, 2],
    };
    let mut region = BTreeSet::from([index(request.seed[0], request.seed[1], request.seed[2])]);
    loop {
        let mut added = false;
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let here = index(x, y, z);
                    let value = image[here];
                    if region.contains(&here) || !(request.low <= value && value <= request.high) {
                        continue;
                    }
                    let voxel = [x as i64, y as i64, z as i64];
                    let touches = axes.iter().any(|&axis| {
                        [-1i64, 1].iter().any(|step| {
                            let mut n = voxel;
                            n[axis] += step;
                            (0..3).all(|a| n[a] >= 0 && (n[a] as usize) < shape[a])
                                && region.contains(&index(n[0] as usize, n[1] as usize, n[2] as usize))
                        })
                    });
                    if touches {
                        region.insert(here);
                        added = true;
                    }
                }
            }
        }
        if !added {
            return region.into_iter().collect();
        }
    }
}

#[test]
fn the_grown_region_is_the_brute_force_fixpoint_on_random_images() {
    let mut rng = Rng::new(7);
    let mut nontrivial = 0;
    for trial in 0..60 {
        let shape = [3 + rng.below(6), 3 + rng.below(6), 2 + rng.below(5)];
        let count = shape.iter().product();
        // Coarse intensities so that windows take sizeable, winding regions.
        let image: Vec<f32> = (0..count).map(|_| rng.below(4) as f32).collect();
        let seed = std::array::from_fn(|a| rng.below(shape[a]));
        let seed_value = image[seed[0] + shape[0] * (seed[1] + shape[1] * seed[2])];
        let low = seed_value - rng.below(2) as f32;
        let high = seed_value + rng.below(2) as f32;
        let extent = if trial % 2 == 0 {
            GrowExtent::Volume
        } else {
            GrowExtent::Slice { normal: rng.below(3) }
        };
        let request = GrowRequest {
            seed,
            low,
            high,
            extent,
        };
        let grown = grow_region(&image, shape, &request, &never).expect("seed inside the window");
        let expected = brute_force(&image, shape, &request);
        assert_eq!(grown, expected, "trial {trial}: {request:?} on {shape:?}");
        if grown.len() > 3 && grown.len() < count {
            nontrivial += 1;
        }
    }
    // The comparison is between regions that are neither the seed alone nor everything.
    assert!(nontrivial >= 20, "only {nontrivial} non-trivial regions");
}

#[test]
fn a_bright_ball_grows_to_exactly_its_voxels_and_not_into_a_separate_one() {
    let shape = [24, 20, 16];
    let [nx, ny, nz] = shape;
    let inside_ball = |x: usize, y: usize, z: usize, centre: [f64; 3], radius: f64| {
        let d2 =
            (x as f64 - centre[0]).powi(2) + (y as f64 - centre[1]).powi(2) + (z as f64 - centre[2]).powi(2);
        d2 <= radius * radius
    };
    let (a, b) = ([7.0, 9.0, 8.0], [18.0, 9.0, 8.0]);
    let mut image = vec![0.0f32; nx * ny * nz];
    let mut ball_a = Vec::new();
    for z in 0..nz {
        for y in 0..ny {
            for x in 0..nx {
                let index = x + nx * (y + ny * z);
                if inside_ball(x, y, z, a, 4.5) {
                    image[index] = 100.0;
                    ball_a.push(index);
                } else if inside_ball(x, y, z, b, 3.5) {
                    image[index] = 100.0;
                }
            }
        }
    }
    let request = GrowRequest {
        seed: [7, 9, 8],
        low: 50.0,
        high: 150.0,
        extent: GrowExtent::Volume,
    };
    let grown = grow_region(&image, shape, &request, &never).expect("grows");
    assert_eq!(grown, ball_a);
    // In 2-D: the ball's cross-section at z = 8 only (a disc of radius 4.5).
    let request = GrowRequest {
        extent: GrowExtent::Slice { normal: 2 },
        ..request
    };
    let disc: Vec<usize> = ball_a.iter().copied().filter(|i| i / (nx * ny) == 8).collect();
    assert_eq!(grow_region(&image, shape, &request, &never).expect("grows"), disc);
    // The lattice points with x² + y² ≤ 4.5², counted apart (π·4.5² ≈ 63.6).
    assert_eq!(disc.len(), 69);
}

#[test]
fn nan_voxels_never_join_and_bad_requests_are_refused() {
    let shape = [4, 1, 1];
    let image = [1.0, f32::NAN, 1.0, 1.0];
    let request = GrowRequest {
        seed: [0, 0, 0],
        low: f32::NEG_INFINITY,
        high: f32::INFINITY,
        extent: GrowExtent::Volume,
    };
    assert_eq!(
        grow_region(&image, shape, &request, &never).expect("grows"),
        vec![0]
    );
    let outside = GrowRequest {
        seed: [4, 0, 0],
        ..request
    };
    assert!(matches!(
        grow_region(&image, shape, &outside, &never),
        Err(GrowError::SeedOutside { .. })
    ));
    let narrow = GrowRequest {
        low: 2.0,
        high: 3.0,
        ..request
    };
    let refused = grow_region(&image, shape, &narrow, &never).expect_err("seed outside window");
    assert!(refused.to_string().contains("widen the window"), "{refused}");
    assert!(grow_region(&image[..3], shape, &request, &never).is_err());
}

#[test]
fn growing_stops_when_asked() {
    let shape = [64, 64, 32];
    let image = vec![1.0f32; 64 * 64 * 32];
    let request = GrowRequest {
        seed: [0, 0, 0],
        low: 0.0,
        high: 2.0,
        extent: GrowExtent::Volume,
    };
    assert_eq!(
        grow_region(&image, shape, &request, &|| true),
        Err(GrowError::Edit(EditError::Cancelled))
    );
    assert_eq!(
        grow_region(&image, shape, &request, &never).map(|r| r.len()),
        Ok(image.len())
    );
}
