//! The edit session of the case on screen: brush strokes, fill between slices, "start from
//! prediction", undo and redo, and which views must draw their slice again.
//!
//! The editable label is the case's ground-truth layer itself (`LoadedCase::ground_truth`), a
//! chunked copy-on-write label: a stroke writes in place, and copies only the chunks it touches
//! while a snapshot (metrics, save) still shares them, never the whole label. It is created as
//! zeros when the case has none. The file on disk is untouched until the user saves.

use crate::annotation::brush::{BrushSettings, PaintRule};
use crate::annotation::pending::{PendingEdit, fill_changes, replacement_changes};
use crate::common::label::{Label, LabelVoxel};
use crate::common::slice_geometry::Axis;
use crate::io::loader::LoadedCase;
use engine::edit::{BrushShape, Canvas, EditError, StepRecorder, UndoStack, VoxelBox, brush_offsets};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A stroke being painted: what it changed so far and where the pointer was.
struct Stroke {
    recorder: StepRecorder<LabelVoxel>,
    last: [usize; 3],
    offsets: Vec<[i64; 3]>,
    /// How far the brush reaches from its centre along each axis, in voxels.
    reach: [usize; 3],
    rule: PaintRule,
}

/// Edits of one case and their history.
#[derive(Default)]
pub struct EditSession {
    /// Undo and redo history.
    pub undo: UndoStack<LabelVoxel>,
    stroke: Option<Stroke>,
    /// Counts every change (edit, undo, redo); the label is unsaved when it differs from
    /// [`EditSession::saved_generation`].
    pub generation: u64,
    /// The generation last written by a save (or loaded from disk).
    pub saved_generation: u64,
    /// The generation last written by an autosave.
    pub autosaved_generation: u64,
    /// Per view ([`Axis::ALL`] order): bumped when a change touches the slice it shows. Part of
    /// the texture key, so only affected views upload their texture again.
    pub view_generation: [u64; 3],
    /// Slices each label was painted on, by `(normal axis, label)`: where fill between slices
    /// interpolates.
    drawn: BTreeMap<(usize, u32), BTreeSet<usize>>,
}

/// The editable label of a case, created as zeros on the image grid when there is none.
pub fn label_mut(case: &mut LoadedCase) -> &mut Label {
    let shape = case.image.shape();
    case.ground_truth.get_or_insert_with(|| Label::zeros(shape))
}

impl EditSession {
    /// Whether there are changes no save has written.
    pub fn is_dirty(&self) -> bool {
        self.generation != self.saved_generation
    }

    /// Whether a stroke is under way.
    pub fn is_painting(&self) -> bool {
        self.stroke.is_some()
    }

    /// Records that voxels in `bounds` changed; views showing one of them draw again.
    fn touch(&mut self, bounds: VoxelBox, crosshair: [usize; 3]) {
        self.generation += 1;
        for axis in Axis::ALL {
            let normal = axis.normal();
            if (bounds[0][normal]..=bounds[1][normal]).contains(&crosshair[normal]) {
                self.view_generation[axis.index()] += 1;
            }
        }
    }

    /// Every view draws again (a whole-volume change).
    fn touch_all(&mut self) {
        self.generation += 1;
        for generation in &mut self.view_generation {
            *generation += 1;
        }
    }

    /// Paints from the last pointer position of the stroke (or starts one) to `voxel`, with the
    /// active tool, on the view of `axis`. Does nothing while navigating.
    ///
    /// # Errors
    /// The brush is larger than `engine::edit::MAX_BRUSH_VOXELS` allows at this spacing.
    pub fn paint_to(
        &mut self,
        case: &mut LoadedCase,
        brush: &BrushSettings,
        axis: Axis,
        voxel: [usize; 3],
        crosshair: [usize; 3],
    ) -> Result<(), EditError> {
        let stroke = match &mut self.stroke {
            Some(stroke) => stroke,
            None => {
                let Some(rule) = brush.rule() else { return Ok(()) };
                let spacing = case.image.spacing_mm();
                let offsets = brush_offsets(spacing, brush.radius_mm, brush.shape, axis.normal())?;
                let reach = [0, 1, 2].map(|a| {
                    if brush.shape == BrushShape::Disc && a == axis.normal() {
                        0
                    } else {
                        (brush.radius_mm / spacing[a].max(f64::MIN_POSITIVE)) as usize
                    }
                });
                self.stroke.insert(Stroke {
                    recorder: StepRecorder::default(),
                    last: voxel,
                    offsets,
                    reach,
                    rule,
                })
            }
        };
        if stroke.rule.value > 0 {
            case.label_values.insert(stroke.rule.value);
            let normal = axis.normal();
            let (low, high) = (
                stroke.last[normal].min(voxel[normal]),
                stroke.last[normal].max(voxel[normal]),
            );
            self.drawn
                .entry((normal, stroke.rule.value))
                .or_default()
                .extend(low..=high);
        }
        let from = stroke.last;
        let image = Arc::clone(&case.image);
        let label = label_mut(case);
        let shape = label.shape();
        let mut canvas = Canvas {
            label,
            image: image.voxels(),
            shape,
        };
        let changed_before = stroke.recorder.len();
        canvas.line(from, voxel, &stroke.offsets, &stroke.rule, &mut stroke.recorder);
        stroke.last = voxel;
        if stroke.recorder.len() == changed_before {
            return Ok(());
        }
        // The segment's box grown by the brush's reach.
        let reach = stroke.reach;
        let segment = [0, 1, 2].map(|a| {
            let (low, high) = (from[a].min(voxel[a]), from[a].max(voxel[a]));
            (low.saturating_sub(reach[a]), (high + reach[a]).min(shape[a] - 1))
        });
        let bounds = [segment.map(|s| s.0), segment.map(|s| s.1)];
        self.touch(bounds, crosshair);
        Ok(())
    }

    /// Finishes the stroke under way: it becomes one undo step.
    pub fn end_stroke(&mut self) {
        if let Some(stroke) = self.stroke.take()
            && let Some(step) = stroke.recorder.finish("brush stroke")
        {
            self.undo.push(step);
        }
    }

    /// Takes back the newest step.
    pub fn undo(&mut self, case: &mut LoadedCase, crosshair: [usize; 3]) -> bool {
        self.end_stroke();
        let Some(label) = case.ground_truth.as_mut() else {
            return false;
        };
        match self.undo.undo(label) {
            Some(bounds) => {
                self.touch(bounds, crosshair);
                true
            }
            None => false,
        }
    }

    /// Applies the last undone step again.
    pub fn redo(&mut self, case: &mut LoadedCase, crosshair: [usize; 3]) -> bool {
        self.end_stroke();
        let Some(label) = case.ground_truth.as_mut() else {
            return false;
        };
        match self.undo.redo(label) {
            Some(bounds) => {
                self.touch(bounds, crosshair);
                true
            }
            None => false,
        }
    }

    /// Makes the label equal to `replacement` (same grid) as one undoable step named `name`.
    /// Returns how many voxels changed (0 when the grids differ). Whole-volume work: the app
    /// runs `replacement_changes` on a background thread and calls [`EditSession::apply_pending`].
    pub fn replace_label(&mut self, case: &mut LoadedCase, replacement: &Label, name: &'static str) -> usize {
        match replacement_changes(case.ground_truth.as_ref(), replacement, name) {
            Ok(pending) => self.apply_pending(case, pending),
            Err(_) => 0,
        }
    }

    /// Applies changes worked out elsewhere as one undo step; touches only the changed voxels.
    /// Returns how many voxels changed.
    pub fn apply_pending(&mut self, case: &mut LoadedCase, pending: PendingEdit) -> usize {
        self.end_stroke();
        let Some(step) = pending.step else { return 0 };
        case.label_values.extend(pending.label_values);
        let label = label_mut(case);
        let [nx, ny, _] = label.shape();
        let mut recorder = StepRecorder::default();
        for change in &step.changes {
            let index = change.index as usize;
            recorder.set(
                &mut *label,
                index,
                [index % nx, index / nx % ny, index / (nx * ny)],
                change.new,
            );
        }
        let changed = recorder.len();
        if let Some(step) = recorder.finish(pending.name) {
            self.undo.push(step);
            self.touch_all();
        }
        changed
    }

    /// The slices along `normal` that `label` was painted on.
    pub fn drawn_slices(&self, normal: usize, label: u32) -> Vec<usize> {
        self.drawn
            .get(&(normal, label))
            .map(|slices| slices.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Copies the prediction into the label (undoable). Returns how many voxels changed, or
    /// `None` when the case has no prediction.
    pub fn start_from_prediction(&mut self, case: &mut LoadedCase) -> Option<usize> {
        let prediction = case.prediction.clone()?;
        Some(self.replace_label(case, &prediction, "start from prediction"))
    }

    /// Interpolates the brush's label between the slices it was painted on in the view of
    /// `axis`, under the brush's paint-over and intensity rules. Returns how many voxels were
    /// filled.
    ///
    /// # Errors
    /// The label was not painted on two slices of this view with unlabelled slices between.
    pub fn fill_between(
        &mut self,
        case: &mut LoadedCase,
        brush: &BrushSettings,
        axis: Axis,
    ) -> Result<usize, EditError> {
        self.end_stroke();
        let rule = PaintRule {
            value: brush.label,
            selected_label: brush.label,
            paint_over: brush.paint_over,
            intensity_range: brush.intensity_range,
        };
        let drawn = self.drawn_slices(axis.normal(), brush.label);
        let pending = fill_changes(
            case.ground_truth.clone(),
            &case.image,
            axis.normal(),
            &drawn,
            &rule,
            &|| false,
        )?;
        Ok(self.apply_pending(case, pending))
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
