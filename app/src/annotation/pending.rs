//! Whole-label edits worked out away from the UI thread: "start from prediction", restoring an
//! autosave, fill between slices, island removal and region growing read or compute over the
//! whole volume, so the shell runs these functions on a background thread and the edit session applies only their sparse result.

use crate::annotation::brush::PaintRule;
use crate::common::label::{Label, LabelVoxel};
use engine::edit::{
    EditError, EditStep, GrowRequest, IslandRule, LabelValue, LabelVoxels, StepRecorder, fill_between_slices,
    grow_region, island_removals,
};
use engine::volume::Volume;
use std::collections::BTreeSet;

/// Label changes found off the UI thread, applied later as one undo step.
#[derive(Debug)]
pub struct PendingEdit {
    /// The undo step's name.
    pub name: &'static str,
    /// The voxels that change (index, old and new value); `None` when nothing does.
    pub step: Option<EditStep<LabelVoxel>>,
    /// Labels the new values hold.
    pub label_values: BTreeSet<u32>,
}

impl PendingEdit {
    /// How many voxels change.
    pub fn len(&self) -> usize {
        self.step.as_ref().map_or(0, |s| s.changes.len())
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The changes that make `label` (zeros when `None`) equal to `replacement`, on the same grid.
///
/// # Errors
/// The shapes differ.
pub fn replacement_changes(
    label: Option<&Label>,
    replacement: &Label,
    name: &'static str,
) -> Result<PendingEdit, String> {
    let shape = replacement.shape();
    if let Some(label) = label
        && label.shape() != shape
    {
        return Err(format!(
            "the new label has shape {shape:?} but the label being edited has {:?}",
            label.shape()
        ));
    }
    let [nx, ny, _] = shape;
    // A snapshot: the recorder's writes copy only the chunks that change, here, off the UI thread.
    let mut current = label.cloned().unwrap_or_else(|| Label::zeros(shape));
    let mut recorder = StepRecorder::default();
    let mut label_values = BTreeSet::new();
    for (index, value) in replacement.iter().enumerate() {
        if value.label() > 0 {
            label_values.insert(value.label());
        }
        recorder.set(
            &mut current,
            index,
            [index % nx, index / nx % ny, index / (nx * ny)],
            value,
        );
    }
    Ok(PendingEdit {
        name,
        step: recorder.finish(name),
        label_values,
    })
}

/// Fill between slices (see `engine::edit::fill_between_slices`) worked out on `label`, a
/// snapshot of the label being edited (zeros when `None`): only the chunks it fills are copied.
///
/// # Errors
/// What the engine refuses: nothing to fill, or grids that do not match; `Cancelled` when
/// `stop` said so (asked before each slice).
pub fn fill_changes(
    label: Option<Label>,
    image: &Volume,
    normal: usize,
    drawn_slices: &[usize],
    rule: &PaintRule,
    stop: &dyn Fn() -> bool,
) -> Result<PendingEdit, EditError> {
    let name = "fill between slices";
    let mut copy = label.unwrap_or_else(|| Label::zeros(image.shape()));
    let mut recorder = StepRecorder::default();
    fill_between_slices(
        &mut copy,
        image.channel(0),
        image.shape(),
        image.spacing_mm(),
        normal,
        drawn_slices,
        rule,
        &mut recorder,
        stop,
    )?;
    Ok(PendingEdit {
        name,
        step: recorder.finish(name),
        label_values: BTreeSet::from([rule.value]),
    })
}

/// Island removal (see `engine::edit::island_removals`) worked out on `label`, a snapshot of the
/// label being edited: the removed voxels become background, as one undoable step.
///
/// # Errors
/// The case has no label, or the label has no voxel of `value`.
pub fn island_changes(
    label: Option<Label>,
    image: &Volume,
    value: u32,
    rule: IslandRule,
) -> Result<PendingEdit, String> {
    let name = match rule {
        IslandRule::KeepLargest => "keep largest island",
        IslandRule::SmallerThanMl(_) => "remove small islands",
    };
    let mut copy = label.ok_or("this case has no label to clean up")?;
    let shape = copy.shape();
    if copy.shape() != image.shape() {
        return Err(format!(
            "the label has shape {shape:?} but the scan has {:?}",
            image.shape()
        ));
    }
    let voxel_ml = engine::volume::determinant(&image.world_from_voxel().linear()).abs() / 1000.0;
    if !copy.label_numbers().contains(&value) {
        return Err(format!("label {value} has no voxel in this case"));
    }
    let removed = island_removals(&copy, shape, value, voxel_ml, rule);
    let [nx, ny, _] = shape;
    let mut recorder = StepRecorder::default();
    for index in removed {
        recorder.set(
            &mut copy,
            index,
            [index % nx, index / nx % ny, index / (nx * ny)],
            0,
        );
    }
    Ok(PendingEdit {
        name,
        step: recorder.finish(name),
        label_values: BTreeSet::new(),
    })
}

/// Seeded region growing (see `engine::edit::grow_region`) on the scan's first channel, written
/// into `label` (zeros when `None`) under `rule` (a voxel another label holds is kept when the
/// rule paints over background only), as one undoable step.
///
/// # Errors
/// The label and the scan differ in shape, the seed is outside the window, or `stop` asked to
/// stop.
pub fn grow_changes(
    label: Option<Label>,
    image: &Volume,
    request: &GrowRequest,
    rule: &PaintRule,
    stop: &dyn Fn() -> bool,
) -> Result<PendingEdit, String> {
    let shape = image.shape();
    let mut copy = label.unwrap_or_else(|| Label::zeros(shape));
    if copy.shape() != shape {
        return Err(format!(
            "the label has shape {:?} but the scan has {shape:?}",
            copy.shape()
        ));
    }
    let intensities = image.channel(0);
    let region = grow_region(intensities, shape, request, stop).map_err(|e| e.to_string())?;
    if rule.value > LabelVoxel::MAX_LABEL {
        return Err(format!("label {} is larger than a label can hold", rule.value));
    }
    let value = LabelVoxel::from_label(rule.value);
    let [nx, ny, _] = shape;
    let mut recorder = StepRecorder::default();
    for index in region {
        let Some(current) = copy.voxel(index) else {
            continue;
        };
        if rule.allows(current, intensities[index]) {
            recorder.set(
                &mut copy,
                index,
                [index % nx, index / nx % ny, index / (nx * ny)],
                value,
            );
        }
    }
    let name = "grow region";
    Ok(PendingEdit {
        name,
        step: recorder.finish(name),
        label_values: BTreeSet::from([rule.value]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::volume::{Affine, Geometry};

    #[test]
    fn replacement_changes_are_exactly_the_differing_voxels() {
        let geometry = Geometry {
            shape: [5, 4, 3],
            world_from_voxel: Affine::identity(),
        };
        let as_label =
            |volume: &Volume| Label::from_values(volume.shape(), volume.voxels()).expect("fits in u16");
        let label = Volume::from_fn(&geometry, |x, y, _| if x < 2 && y < 2 { 1.0 } else { 0.0 });
        let replacement = Volume::from_fn(&geometry, |x, _, z| if x == 1 || z == 2 { 3.0 } else { 0.0 });
        let pending =
            replacement_changes(Some(&as_label(&label)), &as_label(&replacement), "test").expect("same grid");
        // Counted voxel by voxel.
        let differing = label
            .voxels()
            .iter()
            .zip(replacement.voxels())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(pending.len(), differing);
        assert_eq!(pending.label_values, BTreeSet::from([3]));
        // Against zeros (no label yet): every labelled voxel of the replacement.
        let from_nothing = replacement_changes(None, &as_label(&replacement), "test").expect("same grid");
        assert_eq!(
            from_nothing.len(),
            replacement.voxels().iter().filter(|v| **v > 0.0).count()
        );
        let other = Volume::zeros(&Geometry {
            shape: [4, 4, 3],
            ..geometry
        });
        assert!(replacement_changes(Some(&as_label(&other)), &as_label(&replacement), "test").is_err());
    }
}
