//! 4×4 homogeneous affine transforms between voxel indices and world millimetres.

use serde::{Deserialize, Serialize};

/// A 4×4 affine matrix, row-major, with last row `[0, 0, 0, 1]`.
///
/// Named by what it maps, e.g. `world_from_voxel`: `world = world_from_voxel.apply(voxel)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Affine(pub [[f64; 4]; 4]);

impl Default for Affine {
    fn default() -> Self {
        Self::identity()
    }
}

impl Affine {
    /// The identity transform.
    pub fn identity() -> Self {
        Self::from_diagonal([1.0, 1.0, 1.0])
    }

    /// A pure scaling.
    pub fn from_diagonal(scale: [f64; 3]) -> Self {
        let mut m = [[0.0; 4]; 4];
        for (axis, s) in scale.iter().enumerate() {
            m[axis][axis] = *s;
        }
        m[3][3] = 1.0;
        Self(m)
    }

    /// An affine with the given 3×3 linear part and translation.
    pub fn from_parts(linear: [[f64; 3]; 3], translation: [f64; 3]) -> Self {
        let mut m = [[0.0; 4]; 4];
        for row in 0..3 {
            m[row][..3].copy_from_slice(&linear[row]);
            m[row][3] = translation[row];
        }
        m[3][3] = 1.0;
        Self(m)
    }

    /// The 3×3 linear part.
    pub fn linear(&self) -> [[f64; 3]; 3] {
        let m = &self.0;
        [
            [m[0][0], m[0][1], m[0][2]],
            [m[1][0], m[1][1], m[1][2]],
            [m[2][0], m[2][1], m[2][2]],
        ]
    }

    /// The translation column.
    pub fn translation(&self) -> [f64; 3] {
        [self.0[0][3], self.0[1][3], self.0[2][3]]
    }

    /// Applies the transform to a point.
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let m = &self.0;
        let mut out = [0.0; 3];
        for (row, value) in out.iter_mut().enumerate() {
            *value = m[row][0] * p[0] + m[row][1] * p[1] + m[row][2] * p[2] + m[row][3];
        }
        out
    }

    /// The distance in mm between two voxel positions (the ruler's length): the length of their
    /// difference mapped through the linear part, so shears and oblique axes count.
    pub fn distance_mm(&self, a: [f64; 3], b: [f64; 3]) -> f64 {
        let (pa, pb) = (self.apply(a), self.apply(b));
        (0..3).map(|i| (pa[i] - pb[i]).powi(2)).sum::<f64>().sqrt()
    }

    /// Matrix product `self · rhs` (apply `rhs` first).
    pub fn then_after(&self, rhs: &Affine) -> Affine {
        let (a, b) = (&self.0, &rhs.0);
        let mut m = [[0.0; 4]; 4];
        for (i, row) in m.iter_mut().enumerate() {
            for (j, value) in row.iter_mut().enumerate() {
                *value = (0..4).map(|k| a[i][k] * b[k][j]).sum();
            }
        }
        Affine(m)
    }

    /// The inverse transform, or `None` when the linear part is singular.
    pub fn inverse(&self) -> Option<Affine> {
        let l = self.linear();
        let det = determinant(&l);
        if !det.is_finite() || det.abs() < 1e-12 {
            return None;
        }
        let cofactor =
            |r0: usize, r1: usize, c0: usize, c1: usize| l[r0][c0] * l[r1][c1] - l[r0][c1] * l[r1][c0];
        // Adjugate (transposed cofactor matrix) divided by the determinant.
        let inv = [
            [
                cofactor(1, 2, 1, 2) / det,
                -cofactor(0, 2, 1, 2) / det,
                cofactor(0, 1, 1, 2) / det,
            ],
            [
                -cofactor(1, 2, 0, 2) / det,
                cofactor(0, 2, 0, 2) / det,
                -cofactor(0, 1, 0, 2) / det,
            ],
            [
                cofactor(1, 2, 0, 1) / det,
                -cofactor(0, 2, 0, 1) / det,
                cofactor(0, 1, 0, 1) / det,
            ],
        ];
        let t = self.translation();
        let mut inv_t = [0.0; 3];
        for (row, value) in inv_t.iter_mut().enumerate() {
            *value = -(inv[row][0] * t[0] + inv[row][1] * t[1] + inv[row][2] * t[2]);
        }
        Some(Affine::from_parts(inv, inv_t))
    }

    /// The length in world units of one step along each voxel axis (the voxel spacing).
    pub fn column_norms(&self) -> [f64; 3] {
        let m = &self.0;
        let mut out = [0.0; 3];
        for (axis, value) in out.iter_mut().enumerate() {
            *value = (m[0][axis].powi(2) + m[1][axis].powi(2) + m[2][axis].powi(2)).sqrt();
        }
        out
    }

    /// Largest absolute element-wise difference to another affine.
    pub fn max_abs_diff(&self, other: &Affine) -> f64 {
        let mut worst = 0.0f64;
        for row in 0..4 {
            for col in 0..4 {
                worst = worst.max((self.0[row][col] - other.0[row][col]).abs());
            }
        }
        worst
    }
}

/// Determinant of a 3×3 matrix.
pub fn determinant(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oblique() -> Affine {
        // A rotation about z by 30° with anisotropic scaling, a flip and a translation.
        let (s, c) = (30f64.to_radians().sin(), 30f64.to_radians().cos());
        Affine::from_parts(
            [[-0.8 * c, 0.8 * s, 0.0], [0.8 * s, 0.8 * c, 0.0], [0.0, 0.0, 2.5]],
            [100.0, -40.0, 12.5],
        )
    }

    #[test]
    fn inverse_composes_to_identity() {
        let a = oblique();
        let inv = a.inverse().expect("invertible");
        assert!(a.then_after(&inv).max_abs_diff(&Affine::identity()) < 1e-12);
        assert!(inv.then_after(&a).max_abs_diff(&Affine::identity()) < 1e-12);
        let p = [3.0, -7.0, 11.0];
        let back = inv.apply(a.apply(p));
        for axis in 0..3 {
            assert!((back[axis] - p[axis]).abs() < 1e-12);
        }
    }

    #[test]
    fn singular_has_no_inverse_and_norms_are_spacings() {
        assert!(Affine::from_diagonal([1.0, 0.0, 1.0]).inverse().is_none());
        let norms = oblique().column_norms();
        for (got, want) in norms.iter().zip([0.8, 0.8, 2.5]) {
            assert!((got - want).abs() < 1e-12);
        }
    }

    #[test]
    fn distance_mm_is_the_world_length_of_a_voxel_difference() {
        // Spacing 0.5 × 2 × 3 mm: (2, 1, 1) voxels apart is √(1² + 2² + 3²) mm.
        let scaled = Affine::from_diagonal([0.5, 2.0, 3.0]);
        assert!((scaled.distance_mm([0.0; 3], [2.0, 1.0, 1.0]) - 14f64.sqrt()).abs() < 1e-12);
        // A rotation by 30° about z with a translation keeps lengths: 5 voxels of 1 mm is 5 mm.
        let (sin, cos) = 30f64.to_radians().sin_cos();
        let rotated = Affine::from_parts(
            [[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]],
            [10.0, -4.0, 7.0],
        );
        assert!((rotated.distance_mm([1.0, 2.0, 3.0], [4.0, 6.0, 3.0]) - 5.0).abs() < 1e-12);
        // A shear: voxel (1, 0, 0) → (1, 0, 0) mm and (0, 1, 0) → (1, 1, 0) mm, so the step
        // (−1, 1, 0) maps to (0, 1, 0): 1 mm, though it is √2 voxels.
        let sheared = Affine::from_parts([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [0.0; 3]);
        assert!((sheared.distance_mm([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]) - 1.0).abs() < 1e-12);
    }
}
