//! The training recipe end to end on phantoms: a step budget on a fixed seed must reach a stated
//! validation Dice (the recipe learns), and a learning rate set to diverge must roll the run
//! back to its last good state with a lower rate, saying so in the events and in history.json.

use super::{EpochRecord, Subset, TrainEvent, TrainOptions, TrainingConfig, train};
use crate::data::{PhantomOptions, write_phantom_task};
use crate::model::{LlmConfig, ModelConfig, OutputKind};
use burn::backend::{Autodiff, Flex};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// A demo-shaped MedVisionLlama small enough for a debug-build test: 24³ in 4³ patches
/// (216 tokens), softmax over background, organ and lesion.
fn small_model() -> ModelConfig {
    ModelConfig {
        name: "recipe-test".into(),
        image_size: [24, 24, 24],
        patch_size: 4,
        out_channels: 3,
        output: OutputKind::Softmax,
        embed_dim: 32,
        decoder_depth: 2,
        num_heads: 4,
        mlp_dim: 64,
        dropout: 0.0,
        llm: LlmConfig {
            hidden: 64,
            heads: 4,
            kv_heads: 2,
            intermediate: 128,
            layer: 0,
            ..LlmConfig::default()
        },
        ..ModelConfig::default()
    }
}

fn phantom_task(dir: &Path, cases: usize) -> std::path::PathBuf {
    let task = dir.join("task");
    write_phantom_task(
        &task,
        &PhantomOptions {
            training_cases: cases,
            test_cases: 0,
            size: [48, 48, 20],
            ..PhantomOptions::default()
        },
    )
    .expect("phantoms");
    task
}

fn options(task: std::path::PathBuf, out: std::path::PathBuf, training: TrainingConfig) -> TrainOptions {
    TrainOptions {
        model: small_model(),
        training,
        data: task,
        fold: 0,
        subset: Subset::All,
        out,
        resume: false,
        init_from: None,
        label_overrides: BTreeMap::new(),
        allow_test_cases: false,
    }
}

fn history(run: &Path) -> Vec<EpochRecord> {
    serde_json::from_str(&std::fs::read_to_string(run.join("history.json")).expect("history.json"))
        .expect("history parses")
}

/// The organ's validation Dice the step budget below must beat. An untrained network (or the
/// old recipe, which learned "background everywhere") scores 0 here.
const ORGAN_DICE_AFTER_BUDGET: f64 = 0.4;

#[test]
fn the_recipe_learns_the_organ_within_a_step_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = phantom_task(dir.path(), 10);
    let run = dir.path().join("run");
    let training = TrainingConfig {
        epochs: 60,
        batch_size: 2,
        learning_rate: 3e-3,
        seed: 1,
        ..TrainingConfig::default()
    };
    let summary = train::<Autodiff<Flex>>(
        &options(task, run.clone(), training),
        &Default::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect("trains");
    let best_organ = history(&run)
        .iter()
        .filter_map(|r| r.val_dice_per_class.first().copied())
        .fold(0.0, f64::max);
    eprintln!("best organ validation Dice {best_organ}");
    assert!(
        best_organ > ORGAN_DICE_AFTER_BUDGET,
        "organ validation Dice {best_organ} after {} epochs; the recipe must beat {ORGAN_DICE_AFTER_BUDGET}",
        summary.epochs_completed
    );
}

#[test]
fn a_diverging_learning_rate_rolls_back_with_a_lower_rate_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = phantom_task(dir.path(), 6);
    let run = dir.path().join("run");
    let training = TrainingConfig {
        epochs: 3,
        batch_size: 1,
        // Adam moves every weight by about the learning rate per step: 30 wrecks the network
        // at once; 30 × 0.01² = 0.003 trains.
        learning_rate: 30.0,
        warmup_fraction: 0.0,
        rollback_lr_factor: 0.01,
        max_rollbacks: 4,
        ..TrainingConfig::default()
    };
    let mut rollbacks = Vec::new();
    let summary = train::<Autodiff<Flex>>(
        &options(task, run.clone(), training),
        &Default::default(),
        &AtomicBool::new(false),
        &mut |event| {
            if let TrainEvent::RolledBack {
                to_epoch, lr_scale, ..
            } = event
            {
                rollbacks.push((to_epoch, lr_scale));
            }
        },
    )
    .expect("recovers after rolling back");
    assert!(!rollbacks.is_empty(), "no rollback happened");
    assert_eq!(
        rollbacks[0],
        (0, 0.01),
        "the first rollback goes back to the start at × 0.01"
    );
    let history = history(&run);
    let noted: Vec<&EpochRecord> = history.iter().filter(|r| r.rolled_back.is_some()).collect();
    assert_eq!(
        noted.len(),
        rollbacks.len(),
        "history.json notes every rollback: {history:?}"
    );
    assert!(
        noted[0]
            .rolled_back
            .as_deref()
            .is_some_and(|n| n.contains("back to epoch 0"))
    );
    let good: Vec<&EpochRecord> = history.iter().filter(|r| r.rolled_back.is_none()).collect();
    assert_eq!(good.len(), 3, "every epoch ends up trained once: {history:?}");
    assert_eq!(summary.epochs_completed, 3);
    assert!(
        good.iter()
            .all(|r| r.train_loss.is_finite() && r.learning_rate <= 30.0 * 0.01)
    );
}

#[test]
fn a_run_that_keeps_diverging_stops_with_an_error_that_says_what_to_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = phantom_task(dir.path(), 6);
    let training = TrainingConfig {
        epochs: 2,
        batch_size: 1,
        learning_rate: 1e4,
        warmup_fraction: 0.0,
        rollback_lr_factor: 1.0,
        max_rollbacks: 2,
        ..TrainingConfig::default()
    };
    let message = train::<Autodiff<Flex>>(
        &options(task, dir.path().join("run"), training),
        &Default::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect_err("gives up")
    .to_string();
    assert!(
        message.contains("diverged") && message.contains("lower learning_rate"),
        "{message}"
    );
}

#[test]
fn a_run_stopped_in_its_first_epoch_resumes() {
    // Stopped before any validation, last/state.json holds best Dice −∞ (null in JSON).
    let dir = tempfile::tempdir().expect("tempdir");
    let task = phantom_task(dir.path(), 6);
    let run = dir.path().join("run");
    let training = TrainingConfig {
        epochs: 1,
        batch_size: 1,
        ..TrainingConfig::default()
    };
    let mut options = options(task, run.clone(), training);
    let stopped = train::<Autodiff<Flex>>(&options, &Default::default(), &AtomicBool::new(true), &mut |_| {})
        .expect("stops after one step");
    assert!(stopped.stopped && stopped.epochs_completed == 0);
    options.resume = true;
    let resumed = train::<Autodiff<Flex>>(
        &options,
        &Default::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect("resumes from last/");
    assert_eq!(resumed.epochs_completed, 1);
    assert!(!resumed.stopped);
}
