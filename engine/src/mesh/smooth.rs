//! Separable Gaussian smoothing of a 3-D field, zero outside the grid.

/// The kernel's half-width for standard deviation `sigma` (voxels): ⌈3σ⌉, 0 for no smoothing.
pub(super) fn kernel_radius(sigma: f64) -> usize {
    if sigma > 0.0 && sigma.is_finite() {
        (3.0 * sigma).ceil() as usize
    } else {
        0
    }
}

/// `field` (x fastest, `shape`) convolved with a normalised Gaussian of standard deviation
/// `sigma` voxels along each axis in turn, the kernel cut at ⌈3σ⌉; values outside the grid
/// count as 0. `sigma <= 0` returns the field unchanged.
pub fn gaussian_smooth(field: &[f32], shape: [usize; 3], sigma: f64) -> Vec<f32> {
    let radius = kernel_radius(sigma);
    if radius == 0 || field.len() != shape.iter().product::<usize>() {
        return field.to_vec();
    }
    let weights: Vec<f64> = (-(radius as isize)..=radius as isize)
        .map(|d| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let kernel: Vec<f32> = weights.iter().map(|w| (w / total) as f32).collect();
    let strides = [1, shape[0], shape[0] * shape[1]];
    let mut current = field.to_vec();
    for axis in 0..3 {
        let (n, stride) = (shape[axis], strides[axis]);
        let mut next = vec![0.0f32; current.len()];
        for (start, out) in next.iter_mut().enumerate() {
            let position = start / stride % n;
            let mut sum = 0.0f32;
            for (k, &w) in kernel.iter().enumerate() {
                let offset = k as isize - radius as isize;
                let p = position as isize + offset;
                if p >= 0 && (p as usize) < n {
                    sum += w * current[(start as isize + offset * stride as isize) as usize];
                }
            }
            *out = sum;
        }
        current = next;
    }
    current
}
