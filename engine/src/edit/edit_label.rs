//! [`EditLabel`]: a label as the editors hold it, one byte per voxel while every label number
//! fits (nearly every task), two bytes when a task has more than 255 labels.

use super::EditError;
use super::chunked::ChunkedLabel;
use super::label::{LabelValue, LabelVoxels};

/// A label volume in chunked copy-on-write storage, `u8` or `u16` per voxel. Voxels read and
/// write as `u16` label numbers ([`LabelVoxels<u16>`]); writing a number above 255 into a `u8`
/// label widens it to `u16` first (a whole-volume copy, once).
#[derive(Debug, Clone, PartialEq)]
pub enum EditLabel {
    /// Label numbers 0–255.
    U8(ChunkedLabel<u8>),
    /// Label numbers 0–65 535.
    U16(ChunkedLabel<u16>),
}

impl EditLabel {
    /// Background everywhere, one byte per voxel.
    pub fn zeros(shape: [usize; 3]) -> Self {
        Self::U8(ChunkedLabel::zeros(shape))
    }

    /// The label of voxel values as stored in a file (`f32` after scaling; each rounds to the
    /// nearest label, negatives and NaN are background): `u8` when every label number fits,
    /// else `u16`.
    ///
    /// # Errors
    /// [`EditError::ShapeMismatch`] for a wrong voxel count; [`EditError::TooManyLabels`] when a
    /// label number exceeds 65 535.
    pub fn from_values(shape: [usize; 3], values: &[f32]) -> Result<Self, EditError> {
        let highest = values.iter().map(|v| v.label()).max().unwrap_or(0);
        if highest <= u8::MAX_LABEL {
            ChunkedLabel::from_values(shape, values).map(Self::U8)
        } else {
            ChunkedLabel::from_values(shape, values).map(Self::U16)
        }
    }

    /// Voxels along x, y, z.
    pub fn shape(&self) -> [usize; 3] {
        match self {
            Self::U8(label) => label.shape(),
            Self::U16(label) => label.shape(),
        }
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    /// Whether the label has no voxels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The largest label number the storage holds: 255 or 65 535.
    pub fn max_label(&self) -> u32 {
        match self {
            Self::U8(_) => u8::MAX_LABEL,
            Self::U16(_) => u16::MAX_LABEL,
        }
    }

    /// The label number at `[x, y, z]`, `None` outside.
    pub fn at(&self, voxel: [usize; 3]) -> Option<u16> {
        match self {
            Self::U8(label) => label.at(voxel).map(u16::from),
            Self::U16(label) => label.at(voxel),
        }
    }

    /// Every label number in flat order (x fastest).
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        let (narrow, wide) = match self {
            Self::U8(label) => (Some(label.iter().map(u16::from)), None),
            Self::U16(label) => (None, Some(label.iter())),
        };
        narrow.into_iter().flatten().chain(wide.into_iter().flatten())
    }

    /// Every label number in flat order (x fastest), copied.
    pub fn to_vec(&self) -> Vec<u16> {
        match self {
            Self::U8(label) => label.iter().map(u16::from).collect(),
            Self::U16(label) => label.to_vec(),
        }
    }

    /// The label numbers as `f32` in flat order, as a `Volume` or a NIfTI writer wants them.
    pub fn to_f32(&self) -> Vec<f32> {
        match self {
            Self::U8(label) => label.to_f32(),
            Self::U16(label) => label.to_f32(),
        }
    }

    /// The label numbers present, background (0) left out.
    pub fn label_numbers(&self) -> std::collections::BTreeSet<u32> {
        let mut present = vec![false; self.max_label() as usize + 1];
        match self {
            Self::U8(label) => label.iter().for_each(|v| present[usize::from(v)] = true),
            Self::U16(label) => label.iter().for_each(|v| present[usize::from(v)] = true),
        }
        (1..present.len())
            .filter(|&v| present[v])
            .map(|v| v as u32)
            .collect()
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> usize {
        match self {
            Self::U8(label) => label.chunk_count(),
            Self::U16(label) => label.chunk_count(),
        }
    }

    /// Whether chunk `chunk` is the very same memory in `self` and `other` (not copied yet);
    /// never across storage widths.
    pub fn shares_chunk(&self, other: &Self, chunk: usize) -> bool {
        match (self, other) {
            (Self::U8(a), Self::U8(b)) => a.shares_chunk(b, chunk),
            (Self::U16(a), Self::U16(b)) => a.shares_chunk(b, chunk),
            _ => false,
        }
    }

    /// Storage two bytes per voxel, same label numbers (a whole-volume copy for a `u8` label).
    pub fn widen(&mut self) {
        if let Self::U8(label) = self {
            let shape = label.shape();
            let mut wide = ChunkedLabel::<u16>::zeros(shape);
            for (index, value) in label.iter().enumerate() {
                if value != 0 {
                    wide.set_voxel(index, u16::from(value));
                }
            }
            *self = Self::U16(wide);
        }
    }
}

impl LabelVoxels<u16> for EditLabel {
    fn voxel_count(&self) -> usize {
        self.len()
    }

    fn voxel(&self, index: usize) -> Option<u16> {
        match self {
            Self::U8(label) => label.voxel(index).map(u16::from),
            Self::U16(label) => label.voxel(index),
        }
    }

    /// Widens a `u8` label first when `value` exceeds 255.
    fn set_voxel(&mut self, index: usize, value: u16) -> Option<u16> {
        if index >= self.len() {
            return None;
        }
        if let Self::U8(label) = self {
            match u8::try_from(value) {
                Ok(byte) => return label.set_voxel(index, byte).map(u16::from),
                Err(_) => self.widen(),
            }
        }
        match self {
            Self::U16(label) => label.set_voxel(index, value),
            Self::U8(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: [usize; 3] = [4, 3, 9];

    #[test]
    fn labels_up_to_255_take_one_byte_and_larger_ones_two() {
        let mut values = vec![0.0f32; 4 * 3 * 9];
        values[5] = 255.0;
        values[7] = 3.4;
        let small = EditLabel::from_values(SHAPE, &values).expect("fits");
        assert!(matches!(small, EditLabel::U8(_)));
        assert_eq!(small.max_label(), 255);
        assert_eq!(small.at([1, 1, 0]), Some(255));
        assert_eq!(small.at([3, 1, 0]), Some(3));
        values[100] = 300.0;
        let large = EditLabel::from_values(SHAPE, &values).expect("fits in u16");
        assert!(matches!(large, EditLabel::U16(_)));
        assert_eq!(large.iter().map(f32::from).collect::<Vec<_>>(), large.to_f32());
        assert_eq!(small.iter().count(), small.len());
        // Index 100 = x 0, y 1, z 8 on a 4×3 slice.
        assert_eq!(large.at([0, 1, 8]), Some(300));
        assert_eq!(
            large.to_f32(),
            values.iter().map(|v| v.round()).collect::<Vec<_>>()
        );
        assert_eq!(small.label_numbers(), [3, 255].into());
        assert_eq!(large.label_numbers(), [3, 255, 300].into());
        values[100] = 70_000.0;
        assert!(matches!(
            EditLabel::from_values(SHAPE, &values),
            Err(EditError::TooManyLabels {
                label: 70_000,
                max: 65_535
            })
        ));
        assert!(matches!(
            EditLabel::from_values(SHAPE, &values[1..]),
            Err(EditError::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn writing_a_label_above_255_widens_and_keeps_every_voxel() {
        let mut label = EditLabel::zeros(SHAPE);
        let mut reference = vec![0u16; label.len()];
        for index in (0..label.len()).step_by(5) {
            let value = (index % 7) as u16;
            assert_eq!(label.set_voxel(index, value), Some(0));
            reference[index] = value;
        }
        let snapshot = label.clone();
        assert!(matches!(label, EditLabel::U8(_)));
        // Voxel 10 holds 10 % 7 = 3.
        assert_eq!(label.set_voxel(10, 1000), Some(3));
        reference[10] = 1000;
        assert!(matches!(label, EditLabel::U16(_)));
        assert_eq!(label.to_vec(), reference);
        // The snapshot taken before is untouched and still one byte per voxel.
        assert!(matches!(snapshot, EditLabel::U8(_)));
        assert_eq!(snapshot.voxel(10), Some(3));
        assert!(!label.shares_chunk(&snapshot, 0));
        assert_eq!(label.set_voxel(label.len(), 1), None);
        assert_eq!(label.voxel(label.len()), None);
    }
}
