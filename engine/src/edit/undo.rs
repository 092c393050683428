//! Undo and redo of label edits. A step stores only the voxels it changed (flat index, old and
//! new value) and their bounding box, never a copy of the volume; the oldest steps are dropped
//! once the stack holds more than its byte budget. Never saved: history lives as long as the
//! edit session.

use super::label::{LabelValue, LabelVoxels};
use std::collections::VecDeque;

/// One changed voxel: its flat index in the label (x fastest) and its value before and after.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change<L: LabelValue> {
    /// Flat index into the label's voxels.
    pub index: u32,
    /// Value before the edit.
    pub old: L,
    /// Value after the edit.
    pub new: L,
}

/// Bytes one [`Change`] costs in the stack (8 for `u8` and `u16` labels, 12 for `f32`).
pub const fn change_bytes<L: LabelValue>() -> usize {
    std::mem::size_of::<Change<L>>()
}

/// Inclusive voxel bounding box `[min, max]` of an edit.
pub type VoxelBox = [[usize; 3]; 2];

/// Grows `bounds` to include `voxel`.
pub fn include(bounds: &mut Option<VoxelBox>, voxel: [usize; 3]) {
    match bounds {
        None => *bounds = Some([voxel, voxel]),
        Some([low, high]) => {
            for axis in 0..3 {
                low[axis] = low[axis].min(voxel[axis]);
                high[axis] = high[axis].max(voxel[axis]);
            }
        }
    }
}

/// One undoable operation (a brush stroke, a fill, "start from prediction").
#[derive(Debug, Clone, PartialEq)]
pub struct EditStep<L: LabelValue> {
    /// What it was, for the UI ("brush stroke", "fill between slices", …).
    pub name: &'static str,
    /// The voxels it changed, each at most once.
    pub changes: Vec<Change<L>>,
    /// Bounding box of the changed voxels.
    pub bounds: VoxelBox,
}

impl<L: LabelValue> EditStep<L> {
    /// Memory this step holds.
    pub fn bytes(&self) -> usize {
        self.changes.len() * change_bytes::<L>()
    }
}

/// Default memory for undo history: 50 full-slice edits of a 512 × 512 scan fit many times over.
pub const DEFAULT_UNDO_BUDGET_BYTES: usize = 256 << 20;

/// The undo and redo history of one label.
#[derive(Debug, Clone)]
pub struct UndoStack<L: LabelValue> {
    done: VecDeque<EditStep<L>>,
    undone: Vec<EditStep<L>>,
    budget_bytes: usize,
}

impl<L: LabelValue> Default for UndoStack<L> {
    fn default() -> Self {
        Self::with_budget(DEFAULT_UNDO_BUDGET_BYTES)
    }
}

impl<L: LabelValue> UndoStack<L> {
    /// An empty history holding at most `budget_bytes` of changes (the newest step is always
    /// kept, even when it alone is larger).
    pub fn with_budget(budget_bytes: usize) -> Self {
        Self {
            done: VecDeque::new(),
            undone: Vec::new(),
            budget_bytes,
        }
    }

    /// Records a step that was just applied; forgets the redo history and, beyond the budget,
    /// the oldest steps. Empty steps are ignored.
    pub fn push(&mut self, step: EditStep<L>) {
        if step.changes.is_empty() {
            return;
        }
        self.undone.clear();
        self.done.push_back(step);
        while self.done.len() > 1 && self.bytes() > self.budget_bytes {
            self.done.pop_front();
        }
    }

    /// Memory held by all steps, undone ones included.
    pub fn bytes(&self) -> usize {
        self.done.iter().chain(&self.undone).map(EditStep::bytes).sum()
    }

    /// Steps that can be undone.
    pub fn undo_len(&self) -> usize {
        self.done.len()
    }

    /// Steps that can be redone.
    pub fn redo_len(&self) -> usize {
        self.undone.len()
    }

    /// Name of the step [`UndoStack::undo`] would take back.
    pub fn undo_name(&self) -> Option<&'static str> {
        self.done.back().map(|s| s.name)
    }

    /// Name of the step [`UndoStack::redo`] would apply again.
    pub fn redo_name(&self) -> Option<&'static str> {
        self.undone.last().map(|s| s.name)
    }

    /// Takes back the newest step on `voxels`; returns its bounding box.
    pub fn undo<V: LabelVoxels<L> + ?Sized>(&mut self, voxels: &mut V) -> Option<VoxelBox> {
        let step = self.done.pop_back()?;
        // Backwards, so a voxel changed twice (never by our editors, but cheap to honour) ends old.
        for change in step.changes.iter().rev() {
            voxels.set_voxel(change.index as usize, change.old);
        }
        let bounds = step.bounds;
        self.undone.push(step);
        Some(bounds)
    }

    /// Applies the last undone step again; returns its bounding box.
    pub fn redo<V: LabelVoxels<L> + ?Sized>(&mut self, voxels: &mut V) -> Option<VoxelBox> {
        let step = self.undone.pop()?;
        for change in &step.changes {
            voxels.set_voxel(change.index as usize, change.new);
        }
        let bounds = step.bounds;
        self.done.push_back(step);
        Some(bounds)
    }

    /// Forgets everything (a new label was loaded).
    pub fn clear(&mut self) {
        self.done.clear();
        self.undone.clear();
    }
}

/// Collects the changes of one operation while it writes into the label.
#[derive(Debug)]
pub struct StepRecorder<L: LabelValue> {
    changes: Vec<Change<L>>,
    bounds: Option<VoxelBox>,
}

impl<L: LabelValue> Default for StepRecorder<L> {
    fn default() -> Self {
        Self {
            changes: Vec::new(),
            bounds: None,
        }
    }
}

impl<L: LabelValue> StepRecorder<L> {
    /// Sets voxel `index` (at `voxel`) to `value`, remembering the old value when it differs.
    pub fn set<V: LabelVoxels<L> + ?Sized>(
        &mut self,
        voxels: &mut V,
        index: usize,
        voxel: [usize; 3],
        value: L,
    ) {
        // Read first: writing an unchanged voxel of chunked storage would copy its chunk.
        let Some(old) = voxels.voxel(index) else { return };
        if old == value {
            return;
        }
        voxels.set_voxel(index, value);
        self.changes.push(Change {
            index: index as u32,
            old,
            new: value,
        });
        include(&mut self.bounds, voxel);
    }

    /// Bounding box of what changed so far.
    pub fn bounds(&self) -> Option<VoxelBox> {
        self.bounds
    }

    /// Number of changed voxels so far.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The finished step, or `None` when nothing changed.
    pub fn finish(self, name: &'static str) -> Option<EditStep<L>> {
        let bounds = self.bounds?;
        Some(EditStep {
            name,
            changes: self.changes,
            bounds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator (xorshift) so the test needs no dependency.
    struct Random(u64);
    impl Random {
        fn next(&mut self, below: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % below as u64) as usize
        }
    }

    #[test]
    fn random_edits_undo_to_the_original_and_redo_to_the_final() {
        let shape = [7, 5, 4];
        let count: usize = shape.iter().product();
        let original: Vec<u8> = (0..count).map(|i| (i % 3) as u8).collect();
        let mut voxels = original.clone();
        let mut stack = UndoStack::default();
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for _ in 0..80 {
            let mut recorder = StepRecorder::default();
            let value = random.next(4) as u8;
            for _ in 0..random.next(12) {
                let index = random.next(count);
                let voxel = [index % 7, index / 7 % 5, index / 35];
                recorder.set(&mut voxels, index, voxel, value);
            }
            if let Some(step) = recorder.finish("random") {
                stack.push(step);
            }
        }
        let edited = voxels.clone();
        assert!(stack.undo_len() >= 50, "{} steps", stack.undo_len());
        while stack.undo(&mut voxels).is_some() {}
        assert_eq!(voxels, original);
        while stack.redo(&mut voxels).is_some() {}
        assert_eq!(voxels, edited);
        // Undo a few, edit: the redo history is gone.
        stack.undo(&mut voxels);
        let mut recorder = StepRecorder::default();
        recorder.set(&mut voxels, 0, [0, 0, 0], 9);
        stack.push(recorder.finish("one").expect("one voxel changed"));
        assert_eq!(stack.redo_len(), 0);
    }

    #[test]
    fn oldest_steps_are_dropped_beyond_the_budget() {
        let budget = 100 * change_bytes::<u8>();
        let mut stack = UndoStack::with_budget(budget);
        let mut voxels = vec![0u8; 1000];
        for step in 0..40 {
            let mut recorder = StepRecorder::default();
            for index in 0..30 {
                recorder.set(&mut voxels, index, [index, 0, 0], (step + 1) as u8);
            }
            stack.push(recorder.finish("stroke").expect("changed"));
            assert!(stack.bytes() <= budget, "{} bytes", stack.bytes());
        }
        // 30 changes per step: 3 steps fit in 100.
        assert_eq!(stack.undo_len(), 3);
        // Undoing all that is left restores the state before the oldest kept step (value 37).
        while stack.undo(&mut voxels).is_some() {}
        assert!(voxels[..30].iter().all(|v| *v == 37));
        // A single step larger than the budget is still kept, alone.
        let mut recorder = StepRecorder::default();
        for index in 0..500 {
            recorder.set(&mut voxels, index, [index, 0, 0], 255);
        }
        stack.push(recorder.finish("big").expect("changed"));
        assert_eq!(stack.undo_len(), 1);
    }

    #[test]
    fn unchanged_voxels_are_not_recorded_and_bounds_cover_changes() {
        let mut voxels = vec![1u8; 8];
        let mut recorder = StepRecorder::default();
        recorder.set(&mut voxels, 0, [0, 0, 0], 1);
        assert!(recorder.is_empty());
        recorder.set(&mut voxels, 3, [1, 1, 0], 2);
        recorder.set(&mut voxels, 6, [0, 1, 1], 2);
        assert_eq!(recorder.bounds(), Some([[0, 1, 0], [1, 1, 1]]));
        assert_eq!(recorder.len(), 2);
    }

    #[test]
    fn byte_labels_cost_eight_bytes_a_change() {
        // u32 index + two one-byte values, padded to the index's alignment.
        assert_eq!(change_bytes::<u8>(), 8);
        assert_eq!(change_bytes::<u16>(), 8);
        assert_eq!(change_bytes::<f32>(), 12);
    }
}
