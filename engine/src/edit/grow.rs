//! Seeded region growing: from a clicked voxel, every voxel connected to it through voxels whose
//! intensity lies in a window (ITK's `ConnectedThresholdImageFilter`), face-connected: 6
//! neighbours in 3-D, 4 within one slice in 2-D. The caller writes the result as one undoable
//! step, under its paint rule.

use super::EditError;

/// Where a region may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrowExtent {
    /// Only within the seed's slice across this axis (0 = x, 1 = y, 2 = z).
    Slice {
        /// The axis normal to the slice.
        normal: usize,
    },
    /// Through the whole volume.
    Volume,
}

/// One region-growing request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GrowRequest {
    /// The seed voxel.
    pub seed: [usize; 3],
    /// Lowest intensity taken (inclusive).
    pub low: f32,
    /// Highest intensity taken (inclusive).
    pub high: f32,
    /// 2-D or 3-D.
    pub extent: GrowExtent,
}

/// What region growing refuses, each with what to do instead.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GrowError {
    /// The seed lies outside the grid.
    #[error("the seed {seed:?} lies outside the scan's grid {shape:?}")]
    SeedOutside {
        /// The seed.
        seed: [usize; 3],
        /// The grid.
        shape: [usize; 3],
    },
    /// The seed's own intensity is outside the window, so nothing can grow.
    #[error(
        "the seed's intensity {value} lies outside the window {low} to {high}; click inside the \
         structure or widen the window"
    )]
    SeedOutsideWindow {
        /// The seed's intensity.
        value: f32,
        /// The window's low end.
        low: f32,
        /// The window's high end.
        high: f32,
    },
    /// The image does not have the voxel count of the grid, or the request is malformed.
    #[error(transparent)]
    Edit(#[from] EditError),
}

/// How many voxels are taken between two looks at `stop`.
const STOP_CHECK_INTERVAL: usize = 1 << 16;

/// The flat indices (x fastest, ascending) of the region grown from `request.seed` through the
/// voxels of `image` (of `shape`) whose intensity lies in `[low, high]` (NaN never does).
/// `stop` is asked now and then; when it answers true, growing ends with
/// [`EditError::Cancelled`].
///
/// # Errors
/// The image does not fit `shape`, the seed is outside it or its intensity outside the window,
/// or `stop` asked to stop.
pub fn grow_region(
    image: &[f32],
    shape: [usize; 3],
    request: &GrowRequest,
    stop: &dyn Fn() -> bool,
) -> Result<Vec<usize>, GrowError> {
    let [nx, ny, nz] = shape;
    let count = nx * ny * nz;
    if image.len() != count {
        return Err(EditError::ShapeMismatch {
            label: count,
            image: image.len(),
            shape,
            expected: count,
        }
        .into());
    }
    let seed = request.seed;
    if (0..3).any(|a| seed[a] >= shape[a]) {
        return Err(GrowError::SeedOutside { seed, shape });
    }
    let (low, high) = (request.low, request.high);
    let inside = |value: f32| low <= value && value <= high;
    let start = seed[0] + nx * (seed[1] + ny * seed[2]);
    if !inside(image[start]) {
        return Err(GrowError::SeedOutsideWindow {
            value: image[start],
            low,
            high,
        });
    }
    let fixed = match request.extent {
        GrowExtent::Slice { normal } if normal < 3 => Some(normal),
        GrowExtent::Slice { .. } => return Err(GrowError::SeedOutside { seed, shape }),
        GrowExtent::Volume => None,
    };
    let mut taken = vec![false; count];
    taken[start] = true;
    let mut stack = vec![start];
    let mut region = Vec::new();
    let strides = [1, nx, nx * ny];
    while let Some(index) = stack.pop() {
        region.push(index);
        if region.len() % STOP_CHECK_INTERVAL == 0 && stop() {
            return Err(EditError::Cancelled.into());
        }
        let voxel = [index % nx, index / nx % ny, index / (nx * ny)];
        for axis in (0..3).filter(|a| Some(*a) != fixed) {
            let below = (voxel[axis] > 0).then(|| index - strides[axis]);
            let above = (voxel[axis] + 1 < shape[axis]).then(|| index + strides[axis]);
            for neighbour in [below, above].into_iter().flatten() {
                if !taken[neighbour] && inside(image[neighbour]) {
                    taken[neighbour] = true;
                    stack.push(neighbour);
                }
            }
        }
    }
    region.sort_unstable();
    Ok(region)
}

#[cfg(test)]
#[path = "grow_tests.rs"]
mod tests;
