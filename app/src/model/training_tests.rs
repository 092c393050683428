//! Tests of the training panel's state: progress over resumed epochs and mean Dice.

use super::*;
use engine::metrics::CaseMetrics;

#[test]
fn progress_counts_resumed_epochs_only() {
    let options = TrainOptions {
        model: crate::model::presets::Preset::named("demo-cpu")
            .expect("preset")
            .configs()
            .expect("configs")
            .0,
        training: engine::train::TrainingConfig::default(),
        data: PathBuf::new(),
        fold: 0,
        subset: Subset::All,
        out: PathBuf::new(),
        resume: true,
        init_from: None,
        label_overrides: BTreeMap::new(),
        allow_test_cases: false,
    };
    let mut run = RunView {
        options,
        preset: "demo-cpu".into(),
        state: RunState::Running,
        position: Some((6, 2, 4)),
        epochs: (5, 8),
        eta_secs: None,
        step_losses: Vec::new(),
        history: Vec::new(),
        llm_weights: String::new(),
        rollbacks: Vec::new(),
        cases: (4, 2),
    };
    // Epoch 5 done, half of epoch 6: 1.5 of 4 epochs.
    assert!((run.fraction() - 1.5 / 4.0).abs() < 1e-6);
    run.position = None;
    assert_eq!(run.fraction(), 0.0);
}

#[test]
fn mean_dice_skips_undefined_classes() {
    let class = |label, dice| engine::metrics::ClassMetrics {
        label,
        dice,
        jaccard: None,
        sensitivity: None,
        specificity: None,
        hd95_mm: None,
        nsd: None,
        both_empty: dice.is_none(),
        prediction_voxels: 0,
        ground_truth_voxels: 0,
    };
    let metrics = CaseMetrics {
        tolerance_mm: 1.0,
        diagonal_mm: 10.0,
        classes: vec![class(1, Some(0.5)), class(2, None), class(3, Some(0.9))],
    };
    assert!(mean_dice(&metrics).is_some_and(|d| (d - 0.7).abs() < 1e-12));
    let empty = CaseMetrics {
        classes: vec![class(1, None)],
        ..metrics
    };
    assert_eq!(mean_dice(&empty), None);
}
