//! Label volumes as chunks of whole z-slices, each chunk behind an `Arc`: cloning a label (a
//! snapshot for the metrics or the writer thread) copies only the chunk pointers, and a later
//! edit copies only the chunks it touches (`Arc::make_mut`), never the whole label.
//!
//! A chunk holds [`CHUNK_SLICES`] z-slices, so every row of every slice view (axial, coronal or
//! sagittal) lies inside one chunk and one z-slice: readers take [`ChunkedLabel::z_slice`] and
//! index within it, with no per-voxel chunk lookup.

use super::EditError;
use super::label::{LabelValue, LabelVoxels};
use std::sync::Arc;

/// z-slices per chunk: 4 slices of a 512 × 512 scan are 1 MiB of `u8`, so a stroke on one slice
/// copies at most that while a snapshot is held elsewhere, and a 400-slice label has 100 chunks.
pub const CHUNK_SLICES: usize = 4;

/// A label volume of `shape` (x fastest), stored as chunks of [`CHUNK_SLICES`] z-slices.
/// `Clone` is cheap and gives an independent copy-on-write snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkedLabel<L: LabelValue> {
    shape: [usize; 3],
    /// Voxels per z-slice.
    slice_len: usize,
    chunks: Vec<Arc<Vec<L>>>,
}

impl<L: LabelValue> ChunkedLabel<L> {
    /// Background everywhere.
    pub fn zeros(shape: [usize; 3]) -> Self {
        let slice_len = shape[0] * shape[1];
        let chunks = (0..shape[2].div_ceil(CHUNK_SLICES))
            .map(|chunk| {
                let slices = CHUNK_SLICES.min(shape[2] - chunk * CHUNK_SLICES);
                Arc::new(vec![L::default(); slices * slice_len])
            })
            .collect();
        Self {
            shape,
            slice_len,
            chunks,
        }
    }

    /// The label holding `voxels` (x fastest).
    ///
    /// # Errors
    /// [`EditError::ShapeMismatch`] when `voxels` does not hold `shape`'s voxel count.
    pub fn from_voxels(shape: [usize; 3], voxels: &[L]) -> Result<Self, EditError> {
        Self::from_fn(shape, voxels.len(), |index| Ok(voxels[index]))
    }

    /// The label of voxel values as stored in a file (`f32` after scaling): each rounds to the
    /// nearest label; negatives and NaN are background.
    ///
    /// # Errors
    /// [`EditError::ShapeMismatch`] for a wrong voxel count; [`EditError::TooManyLabels`] when a
    /// value exceeds what `L` holds (say, label 300 in a `u8` label).
    pub fn from_values(shape: [usize; 3], values: &[f32]) -> Result<Self, EditError> {
        Self::from_fn(shape, values.len(), |index| {
            let label = values[index].label();
            if label > L::MAX_LABEL {
                return Err(EditError::TooManyLabels {
                    label,
                    max: L::MAX_LABEL,
                });
            }
            Ok(L::from_label(label))
        })
    }

    fn from_fn(
        shape: [usize; 3],
        count: usize,
        value_at: impl Fn(usize) -> Result<L, EditError>,
    ) -> Result<Self, EditError> {
        let expected: usize = shape.iter().product();
        if count != expected {
            return Err(EditError::ShapeMismatch {
                label: count,
                image: expected,
                shape,
                expected,
            });
        }
        let mut label = Self::zeros(shape);
        let chunk_len = CHUNK_SLICES * label.slice_len;
        for (number, chunk) in label.chunks.iter_mut().enumerate() {
            let start = number * chunk_len;
            let voxels = Arc::make_mut(chunk);
            for (offset, voxel) in voxels.iter_mut().enumerate() {
                *voxel = value_at(start + offset)?;
            }
        }
        Ok(label)
    }

    /// Voxels along x, y, z.
    pub fn shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the label has no voxels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// z-slice `z` (x fastest), empty past the end.
    #[inline]
    pub fn z_slice(&self, z: usize) -> &[L] {
        match self.chunks.get(z / CHUNK_SLICES) {
            Some(chunk) => {
                let start = (z % CHUNK_SLICES) * self.slice_len;
                chunk.get(start..start + self.slice_len).unwrap_or(&[])
            }
            None => &[],
        }
    }

    /// The voxel at `[x, y, z]`, `None` outside.
    pub fn at(&self, [x, y, z]: [usize; 3]) -> Option<L> {
        if x >= self.shape[0] || y >= self.shape[1] {
            return None;
        }
        self.z_slice(z).get(y * self.shape[0] + x).copied()
    }

    /// Every voxel in flat order (x fastest).
    pub fn iter(&self) -> impl Iterator<Item = L> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.iter().copied())
    }

    /// A flat copy (x fastest).
    pub fn to_vec(&self) -> Vec<L> {
        let mut voxels = Vec::with_capacity(self.len());
        for chunk in &self.chunks {
            voxels.extend_from_slice(chunk);
        }
        voxels
    }

    /// The label numbers as `f32` in flat order, as a `Volume` or a NIfTI writer wants them.
    pub fn to_f32(&self) -> Vec<f32> {
        self.iter().map(|v| v.label() as f32).collect()
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Whether chunk `chunk` is the very same memory in `self` and `other` (not copied yet).
    pub fn shares_chunk(&self, other: &Self, chunk: usize) -> bool {
        match (self.chunks.get(chunk), other.chunks.get(chunk)) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The chunk and offset of flat index `index`.
    #[inline]
    fn locate(&self, index: usize) -> (usize, usize) {
        let chunk_len = CHUNK_SLICES * self.slice_len.max(1);
        (index / chunk_len, index % chunk_len)
    }
}

impl<L: LabelValue> LabelVoxels<L> for ChunkedLabel<L> {
    fn voxel_count(&self) -> usize {
        self.len()
    }

    fn voxel(&self, index: usize) -> Option<L> {
        let (chunk, offset) = self.locate(index);
        self.chunks.get(chunk)?.get(offset).copied()
    }

    /// Copies the chunk first when a snapshot still shares it.
    fn set_voxel(&mut self, index: usize, value: L) -> Option<L> {
        let (chunk, offset) = self.locate(index);
        let chunk = self.chunks.get_mut(chunk)?;
        if chunk.get(offset)? == &value {
            return Some(value);
        }
        let slot = Arc::make_mut(chunk).get_mut(offset)?;
        Some(std::mem::replace(slot, value))
    }
}

/// The voxel type a task with `max_label` as its largest label number needs: `"u8"` up to 255,
/// `"u16"` up to 65 535.
///
/// # Errors
/// [`EditError::TooManyLabels`] beyond `u16`.
pub fn label_type_for(max_label: u32) -> Result<&'static str, EditError> {
    if max_label <= u8::MAX_LABEL {
        Ok("u8")
    } else if max_label <= u16::MAX_LABEL {
        Ok("u16")
    } else {
        Err(EditError::TooManyLabels {
            label: max_label,
            max: u16::MAX_LABEL,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: [usize; 3] = [5, 3, 10];

    fn flat() -> Vec<u8> {
        (0..SHAPE.iter().product::<usize>())
            .map(|i| (i % 7) as u8)
            .collect()
    }

    #[test]
    fn flat_voxels_round_trip_and_index_like_a_flat_array() {
        let voxels = flat();
        let label = ChunkedLabel::from_voxels(SHAPE, &voxels).expect("right size");
        assert_eq!(label.to_vec(), voxels);
        // 10 slices in chunks of 4: 4 + 4 + 2.
        assert_eq!(label.chunk_count(), 3);
        for z in 0..SHAPE[2] {
            for y in 0..SHAPE[1] {
                for x in 0..SHAPE[0] {
                    let index = (z * SHAPE[1] + y) * SHAPE[0] + x;
                    assert_eq!(label.at([x, y, z]), Some(voxels[index]));
                    assert_eq!(label.voxel(index), Some(voxels[index]));
                    assert_eq!(label.z_slice(z)[y * SHAPE[0] + x], voxels[index]);
                }
            }
        }
        assert_eq!(label.at([5, 0, 0]), None);
        assert_eq!(label.voxel(voxels.len()), None);
        assert!(label.z_slice(10).is_empty());
        assert!(ChunkedLabel::<u8>::from_voxels(SHAPE, &voxels[1..]).is_err());
    }

    #[test]
    fn an_edit_copies_only_the_touched_chunk_and_leaves_the_snapshot_alone() {
        let mut label = ChunkedLabel::from_voxels(SHAPE, &flat()).expect("right size");
        let snapshot = label.clone();
        // Voxel (1, 2, 5) lies in chunk 1.
        let index = (5 * SHAPE[1] + 2) * SHAPE[0] + 1;
        let old = label.voxel(index);
        assert_eq!(label.set_voxel(index, 200), old);
        assert!(label.shares_chunk(&snapshot, 0));
        assert!(!label.shares_chunk(&snapshot, 1));
        assert!(label.shares_chunk(&snapshot, 2));
        assert_eq!(snapshot.to_vec(), flat());
        let mut expected = flat();
        expected[index] = 200;
        assert_eq!(label.to_vec(), expected);
        // Writing the value a voxel already holds copies nothing.
        let mut again = snapshot.clone();
        again.set_voxel(0, flat()[0]);
        assert!(again.shares_chunk(&snapshot, 0));
        assert_eq!(again.set_voxel(usize::MAX, 1), None);
    }

    #[test]
    fn file_values_round_and_labels_beyond_the_type_are_refused() {
        let shape = [2, 1, 1];
        let label = ChunkedLabel::<u8>::from_values(shape, &[2.4, -1.0]).expect("small labels");
        assert_eq!(label.to_vec(), vec![2, 0]);
        assert_eq!(label.to_f32(), vec![2.0, 0.0]);
        let error = ChunkedLabel::<u8>::from_values(shape, &[300.0, 0.0]).expect_err("300 > 255");
        assert_eq!(error, EditError::TooManyLabels { label: 300, max: 255 });
        assert!(error.to_string().contains("300"));
        let wide = ChunkedLabel::<u16>::from_values(shape, &[300.0, 0.0]).expect("u16 holds 300");
        assert_eq!(wide.to_vec(), vec![300, 0]);
        assert_eq!(label_type_for(255), Ok("u8"));
        assert_eq!(label_type_for(256), Ok("u16"));
        assert!(label_type_for(70_000).is_err());
    }
}
