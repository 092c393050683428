//! The voxel types a label can be stored as, and [`LabelVoxels`]: what the edit code needs of
//! a label's storage (a flat slice or a [`super::chunked::ChunkedLabel`]).

/// A voxel of a label volume: a label number, 0 for background.
pub trait LabelValue: Copy + PartialEq + Default + std::fmt::Debug + Send + Sync + 'static {
    /// The largest label number the type holds.
    const MAX_LABEL: u32;

    /// The label number this voxel holds (0 = background).
    fn label(self) -> u32;

    /// The voxel holding label `label`, saturating at [`LabelValue::MAX_LABEL`].
    fn from_label(label: u32) -> Self;
}

impl LabelValue for u8 {
    const MAX_LABEL: u32 = u8::MAX as u32;

    fn label(self) -> u32 {
        u32::from(self)
    }

    fn from_label(label: u32) -> Self {
        label.min(Self::MAX_LABEL) as u8
    }
}

impl LabelValue for u16 {
    const MAX_LABEL: u32 = u16::MAX as u32;

    fn label(self) -> u32 {
        u32::from(self)
    }

    fn from_label(label: u32) -> Self {
        label.min(Self::MAX_LABEL) as u16
    }
}

/// Labels kept in a [`crate::volume::Volume`]: values round to the nearest label; anything below
/// 0.5 (negative, NaN) is background.
impl LabelValue for f32 {
    const MAX_LABEL: u32 = 1 << 24;

    fn label(self) -> u32 {
        if self >= 0.5 {
            (self.round() as u32).min(Self::MAX_LABEL)
        } else {
            0
        }
    }

    fn from_label(label: u32) -> Self {
        label.min(Self::MAX_LABEL) as f32
    }
}

/// Voxel access by flat index (x fastest): all the editors need, so they work on a flat slice
/// and on chunked copy-on-write storage alike.
pub trait LabelVoxels<L: LabelValue> {
    /// Number of voxels.
    fn voxel_count(&self) -> usize;

    /// The voxel at `index`, `None` past the end.
    fn voxel(&self, index: usize) -> Option<L>;

    /// Writes `value` at `index`; returns the old value, `None` (and writes nothing) past the end.
    fn set_voxel(&mut self, index: usize, value: L) -> Option<L>;
}

impl<L: LabelValue> LabelVoxels<L> for [L] {
    fn voxel_count(&self) -> usize {
        self.len()
    }

    fn voxel(&self, index: usize) -> Option<L> {
        self.get(index).copied()
    }

    fn set_voxel(&mut self, index: usize, value: L) -> Option<L> {
        self.get_mut(index).map(|slot| std::mem::replace(slot, value))
    }
}

impl<L: LabelValue> LabelVoxels<L> for Vec<L> {
    fn voxel_count(&self) -> usize {
        self.len()
    }

    fn voxel(&self, index: usize) -> Option<L> {
        self.get(index).copied()
    }

    fn set_voxel(&mut self, index: usize, value: L) -> Option<L> {
        self.as_mut_slice().set_voxel(index, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_saturate() {
        assert_eq!(u8::from_label(300), 255);
        assert_eq!(u16::from_label(300), 300);
        assert_eq!(u8::from_label(7).label(), 7);
        assert_eq!(2.4f32.label(), 2);
        assert_eq!(0.49f32.label(), 0);
        assert_eq!((-3.0f32).label(), 0);
        assert_eq!(f32::NAN.label(), 0);
    }
}
