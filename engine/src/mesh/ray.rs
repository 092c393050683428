//! Where a ray first meets a mesh: the 3D view turns a click into the surface point under it,
//! and checks whether a surface hides the crosshair, without reading pixels back from the GPU.

use super::Mesh;
use crate::volume::vec3::{cross, dot, sub};

impl Mesh {
    /// The smallest `t > t_min` at which the ray `origin + t · direction` meets a triangle (from
    /// either side), or `None`. Möller and Trumbore's test in f64; a ray through an edge or a
    /// vertex counts as a hit. `direction` need not be a unit vector (`t` is in its units).
    pub fn first_hit(&self, origin: [f64; 3], direction: [f64; 3], t_min: f64) -> Option<f64> {
        let mut nearest: Option<f64> = None;
        for triangle in &self.triangles {
            let [a, b, c] = triangle.map(|i| self.positions[i as usize].map(f64::from));
            let Some(t) = hit_triangle(origin, direction, [a, b, c]) else {
                continue;
            };
            if t > t_min && nearest.is_none_or(|n| t < n) {
                nearest = Some(t);
            }
        }
        nearest
    }
}

/// The ray parameter where `origin + t · direction` crosses triangle `v`, if it does (any `t`).
fn hit_triangle(origin: [f64; 3], direction: [f64; 3], v: [[f64; 3]; 3]) -> Option<f64> {
    let e1 = sub(v[1], v[0]);
    let e2 = sub(v[2], v[0]);
    let p = cross(direction, e2);
    let det = dot(e1, p);
    // Parallel to the triangle's plane (relative to the sizes involved).
    let size = dot(e1, e1).sqrt() * dot(e2, e2).sqrt() * dot(direction, direction).sqrt();
    if det.abs() <= 1e-12 * size {
        return None;
    }
    let inverse = 1.0 / det;
    let s = sub(origin, v[0]);
    let u = dot(s, p) * inverse;
    if !(0.0..=1.0).contains(&u) {
        return None;
    }
    let q = cross(s, e1);
    let w = dot(direction, q) * inverse;
    if w < 0.0 || u + w > 1.0 {
        return None;
    }
    Some(dot(e2, q) * inverse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Affine;
    use std::sync::atomic::AtomicBool;

    fn one_triangle(v: [[f32; 3]; 3]) -> Mesh {
        Mesh {
            positions: v.to_vec(),
            normals: vec![[0.0, 0.0, 1.0]; 3],
            triangles: vec![[0, 1, 2]],
        }
    }

    #[test]
    fn a_ray_meets_a_triangle_where_the_plane_equation_says() {
        // Triangle in the plane z = 2; a ray from (0.2, 0.3, -1) along (0, 0, 2) meets it at
        // z = 2, i.e. t = 1.5; shifted outside the triangle it misses; parallel rays miss.
        let mesh = one_triangle([[0.0, 0.0, 2.0], [1.0, 0.0, 2.0], [0.0, 1.0, 2.0]]);
        let t = mesh
            .first_hit([0.2, 0.3, -1.0], [0.0, 0.0, 2.0], 0.0)
            .expect("hit");
        assert!((t - 1.5).abs() < 1e-12, "{t}");
        // From the other side, pointing back: the same point (both sides count).
        let t = mesh
            .first_hit([0.2, 0.3, 5.0], [0.0, 0.0, -1.0], 0.0)
            .expect("hit");
        assert!((t - 3.0).abs() < 1e-12, "{t}");
        assert_eq!(mesh.first_hit([0.6, 0.6, -1.0], [0.0, 0.0, 1.0], 0.0), None);
        assert_eq!(mesh.first_hit([0.2, 0.3, -1.0], [1.0, 0.0, 0.0], 0.0), None);
        // Behind the origin (t < t_min): no hit.
        assert_eq!(mesh.first_hit([0.2, 0.3, 3.0], [0.0, 0.0, 1.0], 0.0), None);
    }

    #[test]
    fn the_first_hit_on_a_box_matches_the_slab_method() {
        // An axis-aligned box [1, 3] × [2, 5] × [-1, 4] as 12 triangles; rays from random origins
        // outside it in random directions, against the slab method's entry distance.
        let (low, high) = ([1.0f64, 2.0, -1.0], [3.0f64, 5.0, 4.0]);
        let corner = |i: usize| -> [f32; 3] {
            std::array::from_fn(|a| {
                if i >> a & 1 == 1 {
                    high[a] as f32
                } else {
                    low[a] as f32
                }
            })
        };
        let faces = [
            [0, 2, 6, 4],
            [1, 3, 7, 5],
            [0, 1, 5, 4],
            [2, 3, 7, 6],
            [0, 1, 3, 2],
            [4, 5, 7, 6],
        ];
        let mut triangles = Vec::new();
        for f in faces {
            triangles.push([f[0], f[1], f[2]]);
            triangles.push([f[0], f[2], f[3]]);
        }
        let mesh = Mesh {
            positions: (0..8).map(corner).collect(),
            normals: vec![[0.0; 3]; 8],
            triangles,
        };
        let mut seed = 12_345u64;
        let mut uniform = move || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut hits, mut misses) = (0, 0);
        for _ in 0..2000 {
            let origin: [f64; 3] = std::array::from_fn(|_| uniform() * 16.0 - 6.0);
            if (0..3).all(|a| origin[a] >= low[a] && origin[a] <= high[a]) {
                continue;
            }
            // Aim near the box so that about half the rays hit.
            let target: [f64; 3] =
                std::array::from_fn(|a| low[a] - 1.5 + uniform() * (high[a] - low[a] + 3.0));
            let direction = sub(target, origin);
            let (mut enter, mut leave) = (f64::NEG_INFINITY, f64::INFINITY);
            for a in 0..3 {
                let (t1, t2) = (
                    (low[a] - origin[a]) / direction[a],
                    (high[a] - origin[a]) / direction[a],
                );
                enter = enter.max(t1.min(t2));
                leave = leave.min(t1.max(t2));
            }
            let expected = (enter <= leave && enter > 0.0).then_some(enter);
            let found = mesh.first_hit(origin, direction, 0.0);
            match (expected, found) {
                (Some(e), Some(f)) => {
                    assert!(
                        (e - f).abs() < 1e-9,
                        "origin {origin:?} direction {direction:?}: {e} vs {f}"
                    );
                    hits += 1;
                }
                (None, None) => misses += 1,
                // Grazing rays (entering through an edge within rounding) may go either way.
                (e, f) => assert!(
                    (enter - leave).abs() < 1e-9,
                    "origin {origin:?} direction {direction:?}: slab {e:?}, mesh {f:?}"
                ),
            }
        }
        assert!(hits > 300 && misses > 300, "{hits} hits, {misses} misses");
    }

    #[test]
    fn rays_towards_the_centre_of_a_meshed_sphere_meet_it_at_the_radius() {
        // The 0 level of R − |p − c| (R = 8) on a 24³ grid; rays from 30 voxels away towards the
        // centre meet the mesh R from the centre, within the chord error (< 0.05 voxel).
        let (n, radius, centre) = (24usize, 8.0f64, [11.4f64, 11.8, 12.1]);
        let field = super::super::tests::sphere_field(n, radius, centre);
        let mesh =
            super::super::isosurface(&field, [n; 3], 0.0, &Affine::identity(), &AtomicBool::new(false))
                .expect("mesh");
        for k in 0..50 {
            let (theta, phi) = (f64::from(k) * 0.7, f64::from(k) * 0.37 - 1.2);
            let unit = [phi.cos() * theta.cos(), phi.cos() * theta.sin(), phi.sin()];
            let origin: [f64; 3] = std::array::from_fn(|a| centre[a] + 30.0 * unit[a]);
            let t = mesh.first_hit(origin, unit.map(|u| -u), 0.0).expect("hit");
            assert!((t - (30.0 - radius)).abs() < 0.05, "direction {unit:?}: t {t}");
        }
    }
}
