//! The one way a prediction is scored against its ground truth, used by training validation,
//! `mvl eval`, the worker's before/after table and the app's Metrics tab alike.
//!
//! A model with one sigmoid channel predicts the merged foreground (the official code): its
//! ground truth is merged too and the class is reported as label 1, "foreground". Every class a
//! model can predict is reported for every case; a class absent from both the prediction and
//! the ground truth is flagged `both_empty` (Dice undefined) and left out of every mean.

use super::{CaseMetrics, MetricsError, both_empty_class, case_metrics};
use crate::volume::Volume;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Which labels a prediction holds, and so how its ground truth is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelScheme {
    /// Label 1 is every foreground label of the ground truth merged.
    MergedForeground,
    /// These foreground labels, as the ground truth numbers them.
    Classes(Vec<u32>),
}

/// The name of the merged class.
pub const MERGED_FOREGROUND_NAME: &str = "foreground";
/// The file beside a folder of predictions that records their scheme.
pub const SCHEME_FILE: &str = "labels.json";

impl LabelScheme {
    /// Foreground labels 1..=`count`.
    pub fn first_classes(count: usize) -> Self {
        LabelScheme::Classes((1..=count as u32).collect())
    }

    /// The foreground labels reported for every case.
    pub fn labels(&self) -> Vec<u32> {
        match self {
            LabelScheme::MergedForeground => vec![1],
            LabelScheme::Classes(labels) => labels.clone(),
        }
    }

    /// A label's name: "foreground" for the merged class, else the task's name for it.
    pub fn name(&self, label: u32, task_names: &BTreeMap<u32, String>) -> String {
        match self {
            LabelScheme::MergedForeground => MERGED_FOREGROUND_NAME.to_string(),
            LabelScheme::Classes(_) => task_names
                .get(&label)
                .cloned()
                .unwrap_or_else(|| format!("label {label}")),
        }
    }

    /// A label value as this scheme scores it (merged into 1 for the merged foreground), in the
    /// ground truth and the prediction alike.
    pub fn scored_label(&self, value: u32) -> u32 {
        match self {
            LabelScheme::MergedForeground => u32::from(value > 0),
            LabelScheme::Classes(_) => value,
        }
    }

    /// The scheme recorded beside predictions in `folder` (written by [`LabelScheme::save_beside`]).
    pub fn load_beside(folder: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(folder.join(SCHEME_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// How a prediction file is scored: by the scheme recorded beside it, or, with none (a
    /// label from elsewhere), every label the files hold as it is.
    pub fn of_prediction(prediction: &Path) -> Self {
        prediction
            .parent()
            .map(|folder| {
                if folder.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    folder
                }
            })
            .and_then(Self::load_beside)
            .unwrap_or(LabelScheme::Classes(Vec::new()))
    }

    /// Records the scheme of the predictions in `folder`.
    pub fn save_beside(&self, folder: &Path) -> std::io::Result<PathBuf> {
        let path = folder.join(SCHEME_FILE);
        let text = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::volume::write_atomically(&path, |w| std::io::Write::write_all(w, &text))?;
        Ok(path)
    }
}

/// Dice from voxel counts: 2|P∩G| / (|P|+|G|), `None` when both masks are empty.
pub fn dice_from_counts(overlap: u64, predicted: u64, truth: u64) -> Option<f64> {
    (predicted + truth > 0).then(|| 2.0 * overlap as f64 / (predicted + truth) as f64)
}

/// Scores `prediction` against `ground_truth` under `scheme`: every metric of every scheme
/// label (both-empty ones flagged), plus any other label either volume holds.
pub fn score_case(
    prediction: &Volume,
    ground_truth: &Volume,
    scheme: &LabelScheme,
    tolerance_mm: f64,
) -> Result<CaseMetrics, MetricsError> {
    let mut metrics = match scheme {
        LabelScheme::MergedForeground => {
            let merge = |volume: &Volume| {
                let mut merged = volume.clone();
                merged
                    .voxels_mut()
                    .iter_mut()
                    .for_each(|v| *v = f32::from(u8::from(*v > 0.0)));
                merged
            };
            case_metrics(&merge(prediction), &merge(ground_truth), tolerance_mm)?
        }
        LabelScheme::Classes(_) => case_metrics(prediction, ground_truth, tolerance_mm)?,
    };
    for label in scheme.labels() {
        if !metrics.classes.iter().any(|c| c.label == label) {
            metrics.classes.push(both_empty_class(label));
        }
    }
    metrics.classes.sort_by_key(|c| c.label);
    Ok(metrics)
}

/// Dice of each scheme label from per-voxel predicted and true labels in the same voxel order
/// (any order: Dice does not depend on it). `None` where both masks are empty.
pub fn dice_per_label(predicted: &[u32], truth: &[u32], scheme: &LabelScheme) -> Vec<Option<f64>> {
    scheme
        .labels()
        .iter()
        .map(|label| {
            let (mut overlap, mut in_prediction, mut in_truth) = (0u64, 0u64, 0u64);
            for (p, t) in predicted.iter().zip(truth) {
                let (p, t) = (
                    scheme.scored_label(*p) == *label,
                    scheme.scored_label(*t) == *label,
                );
                overlap += u64::from(p && t);
                in_prediction += u64::from(p);
                in_truth += u64::from(t);
            }
            dice_from_counts(overlap, in_prediction, in_truth)
        })
        .collect()
}

/// The mean of each label's defined values over cases, and the mean of those means (labels
/// with no defined value are NaN and left out of the overall mean, which is NaN when none is).
pub fn mean_per_label(per_case: &[Vec<Option<f64>>], labels: usize) -> (Vec<f64>, f64) {
    let means: Vec<f64> = (0..labels)
        .map(|l| {
            let values: Vec<f64> = per_case
                .iter()
                .filter_map(|case| case.get(l).copied().flatten())
                .collect();
            if values.is_empty() {
                f64::NAN
            } else {
                values.iter().sum::<f64>() / values.len() as f64
            }
        })
        .collect();
    let defined: Vec<f64> = means.iter().copied().filter(|m| m.is_finite()).collect();
    let overall = if defined.is_empty() {
        f64::NAN
    } else {
        defined.iter().sum::<f64>() / defined.len() as f64
    };
    (means, overall)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::Affine;

    fn line(values: &[f32]) -> Volume {
        Volume::new([values.len(), 1, 1], 1, values.to_vec(), Affine::identity()).expect("shape")
    }

    #[test]
    fn a_binary_prediction_is_scored_against_the_merged_ground_truth() {
        // Truth: organ (1) on voxels 1-2, lesion (2) on 3. Prediction: foreground on 2-4.
        let truth = line(&[0.0, 1.0, 1.0, 2.0, 0.0, 0.0]);
        let prediction = line(&[0.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
        let merged = score_case(&prediction, &truth, &LabelScheme::MergedForeground, 1.0).expect("scores");
        assert_eq!(merged.classes.len(), 1);
        // Merged truth {1,2,3}, prediction {2,3,4}: overlap 2 → Dice 4/6.
        assert!((merged.classes[0].dice.expect("defined") - 4.0 / 6.0).abs() < 1e-12);
        // Scored as classes, the same prediction is label 1 only: overlap {2} → 2/5, lesion 0.
        let classes = score_case(&prediction, &truth, &LabelScheme::first_classes(2), 1.0).expect("scores");
        let dice: Vec<Option<f64>> = classes.classes.iter().map(|c| c.dice).collect();
        assert_eq!(dice, vec![Some(2.0 / 5.0), Some(0.0)]);
    }

    #[test]
    fn a_class_absent_from_both_is_flagged_and_left_out_of_means() {
        let truth = line(&[0.0, 1.0, 1.0, 0.0]);
        let prediction = line(&[0.0, 1.0, 0.0, 0.0]);
        let scored = score_case(&prediction, &truth, &LabelScheme::first_classes(2), 1.0).expect("scores");
        let lesion = &scored.classes[1];
        assert!(lesion.both_empty && lesion.dice.is_none() && lesion.label == 2);
        let per_case = vec![vec![Some(2.0 / 3.0), None], vec![Some(1.0), Some(0.5)]];
        let (means, overall) = mean_per_label(&per_case, 2);
        assert!((means[0] - 5.0 / 6.0).abs() < 1e-12 && (means[1] - 0.5).abs() < 1e-12);
        assert!((overall - (5.0 / 6.0 + 0.5) / 2.0).abs() < 1e-12);
        let (none, nan) = mean_per_label(&[vec![None]], 1);
        assert!(none[0].is_nan() && nan.is_nan());
    }

    #[test]
    fn dice_per_label_agrees_with_the_volume_scorer() {
        let truth = [0u32, 1, 1, 2, 2, 0, 1];
        let predicted = [0u32, 1, 2, 2, 0, 0, 1];
        let as_volume = |v: &[u32]| line(&v.iter().map(|x| *x as f32).collect::<Vec<_>>());
        for scheme in [LabelScheme::first_classes(3), LabelScheme::MergedForeground] {
            let from_labels = dice_per_label(&predicted, &truth, &scheme);
            let from_volumes: Vec<Option<f64>> =
                score_case(&as_volume(&predicted), &as_volume(&truth), &scheme, 1.0)
                    .expect("scores")
                    .classes
                    .iter()
                    .map(|c| c.dice)
                    .collect();
            assert_eq!(from_labels, from_volumes, "{scheme:?}");
        }
        // Hand count, classes: label 1 P{1,6} G{1,2,6} → 4/5; label 2 P{2,3} G{3,4} → 1/2; 3 empty.
        assert_eq!(
            dice_per_label(&predicted, &truth, &LabelScheme::first_classes(3)),
            vec![Some(0.8), Some(0.5), None]
        );
    }

    #[test]
    fn the_scheme_round_trips_beside_predictions() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(LabelScheme::load_beside(dir.path()), None);
        LabelScheme::MergedForeground
            .save_beside(dir.path())
            .expect("saves");
        assert_eq!(
            LabelScheme::load_beside(dir.path()),
            Some(LabelScheme::MergedForeground)
        );
    }
}
