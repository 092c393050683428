//! Training with label overrides on a phantom task: the corrected label, not dataset.json's, is
//! what gets preprocessed and trained on, run.json records it, and dropping the override brings
//! the original label back into the cache.

use super::run::preprocess_cache;
use super::{RunInfo, Subset, TrainOptions, TrainingConfig, train};
use crate::data::{CORRECTED_FOLDER, PhantomOptions, PreprocessedTask, write_phantom_task};
use crate::model::{LlmConfig, ModelConfig};
use crate::volume::{Volume, read_nifti, write_label_like};
use burn::backend::{Autodiff, Flex};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;

const CASE: &str = "phantom_000";

pub(super) fn tiny_model() -> ModelConfig {
    ModelConfig {
        name: "tiny".into(),
        image_size: [16, 16, 16],
        patch_size: 4,
        embed_dim: 16,
        decoder_depth: 1,
        num_heads: 2,
        mlp_dim: 32,
        dropout: 0.0,
        llm: LlmConfig {
            hidden: 32,
            heads: 2,
            kv_heads: 1,
            intermediate: 48,
            ..LlmConfig::default()
        },
        ..ModelConfig::default()
    }
}

fn foreground_voxels(volume: &Volume) -> usize {
    volume.voxels().iter().filter(|v| **v > 0.0).count()
}

/// The model-grid label the preprocessing cache holds for `CASE`, and its source file.
fn cached_label(options: &TrainOptions) -> (Volume, Option<std::path::PathBuf>) {
    let cache = PreprocessedTask::open(&preprocess_cache(options)).expect("cache");
    let case = cache.cases.iter().find(|c| c.id == CASE).expect("cached case");
    let (_, label) = cache.load(case).expect("loads");
    (label.expect("a training label"), case.source_label.clone())
}

fn train_once(options: &TrainOptions) {
    train::<Autodiff<Flex>>(options, &Default::default(), &AtomicBool::new(false), &mut |_| {})
        .expect("trains");
}

fn read_run(run: &Path) -> RunInfo {
    serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).expect("run.json")).expect("json")
}

#[test]
fn label_overrides_replace_the_label_that_is_preprocessed_and_trained_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task");
    write_phantom_task(
        &task,
        &PhantomOptions {
            training_cases: 6,
            test_cases: 0,
            size: [24, 24, 12],
            ..PhantomOptions::default()
        },
    )
    .expect("task");
    let original = task.join(format!("labelsTr/{CASE}.nii.gz"));
    assert!(
        foreground_voxels(&read_nifti(&original).expect("label").volume) > 0,
        "the original label has an organ, so an empty correction is told apart from it"
    );
    // The "correction": the organ erased, in the scan's geometry.
    let scan = read_nifti(&task.join(format!("imagesTr/{CASE}.nii.gz"))).expect("scan");
    let corrected = task.join(CORRECTED_FOLDER).join(format!("{CASE}.nii.gz"));
    std::fs::create_dir_all(task.join(CORRECTED_FOLDER)).expect("folder");
    write_label_like(&corrected, &Volume::zeros(&scan.volume.geometry()), &scan.header).expect("write");

    let run = dir.path().join("run");
    let options = TrainOptions {
        model: tiny_model(),
        training: TrainingConfig {
            epochs: 1,
            batch_size: 1,
            augment: false,
            ..TrainingConfig::default()
        },
        data: task.clone(),
        fold: 0,
        subset: Subset::Ids(vec![CASE.into()]),
        out: run.clone(),
        resume: false,
        init_from: None,
        label_overrides: BTreeMap::from([(CASE.to_string(), corrected.clone())]),
        allow_test_cases: false,
    };
    // Preprocess without the override first, so the cache must notice the label changed.
    train_once(&TrainOptions {
        label_overrides: BTreeMap::new(),
        allow_test_cases: false,
        out: dir.path().join("run-original"),
        ..options.clone()
    });
    assert!(foreground_voxels(&cached_label(&options).0) > 0);

    train_once(&options);
    let (label, source) = cached_label(&options);
    assert_eq!(source.as_deref(), Some(corrected.as_path()));
    assert_eq!(
        foreground_voxels(&label),
        0,
        "trained on the corrected (empty) label"
    );
    let info = read_run(&run);
    assert_eq!(info.label_overrides, options.label_overrides);
    assert_eq!(info.train, vec![CASE.to_string()]);
    assert!(!info.val.is_empty() && !info.val.contains(&CASE.to_string()));

    // Without the override the original label is preprocessed again.
    train_once(&TrainOptions {
        label_overrides: BTreeMap::new(),
        allow_test_cases: false,
        out: dir.path().join("run-again"),
        ..options.clone()
    });
    let (label, source) = cached_label(&options);
    assert_eq!(source.as_deref(), Some(original.as_path()));
    assert!(foreground_voxels(&label) > 0);
}

#[test]
fn an_override_for_a_case_outside_the_task_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task");
    write_phantom_task(
        &task,
        &PhantomOptions {
            training_cases: 6,
            test_cases: 0,
            size: [24, 24, 12],
            ..PhantomOptions::default()
        },
    )
    .expect("task");
    let stray = task.join(CORRECTED_FOLDER).join("stranger.nii.gz");
    std::fs::create_dir_all(task.join(CORRECTED_FOLDER)).expect("folder");
    std::fs::copy(task.join(format!("labelsTr/{CASE}.nii.gz")), &stray).expect("copy");
    let options = TrainOptions {
        model: tiny_model(),
        training: TrainingConfig {
            epochs: 1,
            batch_size: 1,
            ..TrainingConfig::default()
        },
        data: task,
        fold: 0,
        subset: Subset::Ids(vec![CASE.into()]),
        out: dir.path().join("run"),
        resume: false,
        init_from: None,
        label_overrides: BTreeMap::from([("stranger".to_string(), stray)]),
        allow_test_cases: false,
    };
    let message = train::<Autodiff<Flex>>(
        &options,
        &Default::default(),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect_err("refused")
    .to_string();
    assert!(
        message.contains("stranger") && message.contains("stranger.nii.gz"),
        "{message}"
    );
}

#[test]
fn a_bf16_frozen_block_trains_close_to_f32_and_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task");
    write_phantom_task(
        &task,
        &PhantomOptions {
            training_cases: 6,
            test_cases: 0,
            size: [24, 24, 12],
            ..PhantomOptions::default()
        },
    )
    .expect("task");
    let run = |dtype: crate::device::Precision| {
        let out = dir.path().join(dtype.as_str());
        let options = TrainOptions {
            model: tiny_model(),
            training: TrainingConfig {
                epochs: 2,
                batch_size: 2,
                augment: false,
                dtype,
                ..TrainingConfig::default()
            },
            data: task.clone(),
            fold: 0,
            subset: Subset::All,
            out: out.clone(),
            resume: false,
            init_from: None,
            label_overrides: BTreeMap::new(),
            allow_test_cases: false,
        };
        let summary = train::<Autodiff<Flex>>(
            &options,
            &Default::default(),
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .expect("trains");
        (summary, read_run(&out))
    };
    let (f32_run, f32_info) = run(crate::device::Precision::F32);
    let (bf16_run, bf16_info) = run(crate::device::Precision::Bf16);
    assert_eq!(f32_info.training.dtype, crate::device::Precision::F32);
    assert_eq!(bf16_info.training.dtype, crate::device::Precision::Bf16);
    for (a, b) in f32_run.history.iter().zip(&bf16_run.history) {
        // bf16 keeps 8 bits of mantissa in the frozen block: the loss moves, but only a little.
        assert!(b.train_loss.is_finite(), "epoch {}: {}", b.epoch, b.train_loss);
        assert!(
            (a.train_loss - b.train_loss).abs() < 0.02,
            "epoch {}: f32 {} vs bf16 {}",
            a.epoch,
            a.train_loss,
            b.train_loss
        );
    }
    // Same seed and data: any difference comes from the block's precision, so there is one.
    assert_ne!(
        f32_run.history[0].train_loss, bf16_run.history[0].train_loss,
        "the bf16 run computed exactly what the f32 run did: the block did not run in bf16"
    );
}
