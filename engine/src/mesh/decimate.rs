//! Fewer triangles for display: vertex clustering (Rossignac and Borrel). Space is cut into
//! cubes of one size, every vertex inside a cube moves to the mean of the cube's vertices, and
//! triangles whose corners fall into fewer than three cubes disappear. A marching-tetrahedra
//! surface of a large organ has millions of triangles, several per pixel of the 3D view; a
//! software renderer (Mesa's lavapipe, or the app's CPU rasteriser) draws a clustered copy at an
//! interactive rate, while clicks and exports keep the full surface.

use super::{Mesh, with_area_weighted_normals};
use std::collections::{HashMap, HashSet};

impl Mesh {
    /// The mesh with its vertices clustered in cubes of `cell` mm (the mesh itself when `cell`
    /// is not positive or it is empty). Triangles keep their winding; duplicates (the same three
    /// clusters) are kept once; normals are recomputed from the new triangles.
    pub fn clustered(&self, cell: f64) -> Mesh {
        if cell.is_nan() || cell <= 0.0 || self.is_empty() {
            return self.clone();
        }
        let Some((low, _)) = self.bounds() else {
            return self.clone();
        };
        let mut cluster_of_key: HashMap<[i64; 3], u32> = HashMap::new();
        let mut sums: Vec<[f64; 3]> = Vec::new();
        let mut counts: Vec<u32> = Vec::new();
        let mut cluster_of_vertex: Vec<u32> = Vec::with_capacity(self.positions.len());
        for p in &self.positions {
            let key: [i64; 3] =
                std::array::from_fn(|a| ((f64::from(p[a]) - f64::from(low[a])) / cell).floor() as i64);
            let next = sums.len() as u32;
            let cluster = *cluster_of_key.entry(key).or_insert(next);
            if cluster == next {
                sums.push([0.0; 3]);
                counts.push(0);
            }
            let sum = &mut sums[cluster as usize];
            for a in 0..3 {
                sum[a] += f64::from(p[a]);
            }
            counts[cluster as usize] += 1;
            cluster_of_vertex.push(cluster);
        }
        // Triangles over three distinct clusters, once each; then only the clusters they use.
        let mut seen: HashSet<[u32; 3]> = HashSet::new();
        let mut kept: Vec<[u32; 3]> = Vec::new();
        for t in &self.triangles {
            let c = t.map(|i| cluster_of_vertex[i as usize]);
            if c[0] == c[1] || c[1] == c[2] || c[0] == c[2] {
                continue;
            }
            let mut key = c;
            key.sort_unstable();
            if seen.insert(key) {
                kept.push(c);
            }
        }
        let mut index_of_cluster: Vec<Option<u32>> = vec![None; sums.len()];
        let mut positions: Vec<[f64; 3]> = Vec::new();
        let triangles: Vec<[u32; 3]> = kept
            .iter()
            .map(|t| {
                t.map(|cluster| {
                    *index_of_cluster[cluster as usize].get_or_insert_with(|| {
                        let n = f64::from(counts[cluster as usize]);
                        positions.push(sums[cluster as usize].map(|s| s / n));
                        (positions.len() - 1) as u32
                    })
                })
            })
            .collect();
        with_area_weighted_normals(&positions, triangles)
    }

    /// The mesh with at most `max_triangles` triangles: itself when it has no more, else
    /// [`Self::clustered`] with the smallest cell (from `start_cell` mm, growing by a quarter each
    /// try) that gets under the bound.
    pub fn simplified_to(&self, max_triangles: usize, start_cell: f64) -> Mesh {
        if self.triangles.len() <= max_triangles || start_cell.is_nan() || start_cell <= 0.0 {
            return self.clone();
        }
        // Clustering in cells of size s leaves about (area / s²) triangles: start near the
        // cell that gives the bound.
        let ratio = (self.triangles.len() as f64 / max_triangles as f64).sqrt();
        let mut cell = start_cell * ratio * 0.5;
        loop {
            let coarse = self.clustered(cell);
            if coarse.triangles.len() <= max_triangles {
                return coarse;
            }
            cell *= 1.25;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Affine;
    use std::f64::consts::PI;
    use std::sync::atomic::AtomicBool;

    /// The 0 level of R − |p − c| on a 1 mm grid: a sphere within 1 % in area and volume.
    fn sphere(radius: f64) -> Mesh {
        let n = (2.0 * radius + 6.0).ceil() as usize;
        let centre = n as f64 / 2.0 - 0.3;
        let field = super::super::tests::sphere_field(n, radius, [centre; 3]);
        super::super::isosurface(&field, [n; 3], 0.0, &Affine::identity(), &AtomicBool::new(false))
            .expect("mesh")
    }

    #[test]
    fn clustering_a_sphere_keeps_its_shape_with_far_fewer_triangles() {
        // R = 20 mm in 3 mm cells: at least 6× fewer triangles; the area within 4 % and the
        // enclosed volume within 3 % of the closed forms; every vertex within a cell's
        // half-diagonal of the sphere; normals still radial.
        let radius = 20.0;
        let fine = sphere(radius);
        let coarse = fine.clustered(3.0);
        assert!(
            coarse.triangles.len() * 6 <= fine.triangles.len(),
            "{} → {} triangles",
            fine.triangles.len(),
            coarse.triangles.len()
        );
        let area = coarse.area_mm2();
        let volume = coarse.enclosed_volume_mm3();
        assert!(
            (area / (4.0 * PI * radius * radius) - 1.0).abs() < 0.04,
            "area {area}"
        );
        assert!(
            (volume / (4.0 / 3.0 * PI * radius.powi(3)) - 1.0).abs() < 0.03,
            "volume {volume}"
        );
        let centre = {
            let n = (2.0 * radius + 6.0).ceil();
            n / 2.0 - 0.3
        };
        for (p, normal) in coarse.positions.iter().zip(&coarse.normals) {
            let d: [f64; 3] = std::array::from_fn(|a| f64::from(p[a]) - centre);
            let r = d.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(
                (r - radius).abs() < 3.0 * 3f64.sqrt() / 2.0,
                "vertex at {r} mm from the centre"
            );
            let cos = (0..3).map(|a| f64::from(normal[a]) * d[a] / r).sum::<f64>();
            assert!(cos > 0.8, "normal {normal:?} at {p:?}");
        }
    }

    #[test]
    fn simplifying_obeys_the_bound_and_leaves_a_small_mesh_alone() {
        let fine = sphere(15.0);
        assert_eq!(fine.simplified_to(fine.triangles.len(), 1.0), fine);
        let bound = fine.triangles.len() / 10;
        let coarse = fine.simplified_to(bound, 1.0);
        assert!(
            coarse.triangles.len() <= bound,
            "{} > {bound}",
            coarse.triangles.len()
        );
        // Not coarser than needed: more than a quarter of the bound remains.
        assert!(
            coarse.triangles.len() * 4 > bound,
            "{} ≪ {bound}",
            coarse.triangles.len()
        );
        // A cell of zero or NaN changes nothing.
        assert_eq!(fine.clustered(0.0), fine);
        assert_eq!(fine.clustered(f64::NAN), fine);
    }
}
