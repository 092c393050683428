//! What makes a run's numbers trustworthy: a stopped and resumed run ends exactly as an
//! uninterrupted one; resuming or fine-tuning with other options is refused with the
//! differences named; held-out test cases are never trained on unless asked, and never scored
//! when they were; CT statistics come from the run's training cases only.

use super::{EpochRecord, RunInfo, Subset, TrainEvent, TrainOptions, TrainingConfig, train};
use crate::data::{PhantomModality, PhantomOptions, Splits, write_phantom_task};
use crate::model::{ModelConfig, OutputKind};
use burn::backend::{Autodiff, Flex};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The run tests' tiny network with a softmax over dataset.json's three labels. No dropout:
/// burn's backend RNG (which `B::seed` seeds per epoch) is one per process, so tests training in
/// parallel would draw from each other's stream. Augmentation, whose stream is the run's own, is
/// on in [`options`] and must be reproduced on resume.
fn tiny_model() -> ModelConfig {
    ModelConfig {
        output: OutputKind::Softmax,
        out_channels: 3,
        ..super::run_tests::tiny_model()
    }
}

fn phantom_task(dir: &Path, modality: PhantomModality) -> PathBuf {
    let task = dir.join("task");
    write_phantom_task(
        &task,
        &PhantomOptions {
            training_cases: 8,
            test_cases: 0,
            size: [20, 20, 12],
            modality,
            ..PhantomOptions::default()
        },
    )
    .expect("task");
    task
}

fn options(task: &Path, out: PathBuf) -> TrainOptions {
    TrainOptions {
        model: tiny_model(),
        training: TrainingConfig {
            epochs: 4,
            batch_size: 2,
            augment: true,
            seed: 7,
            ..TrainingConfig::default()
        },
        data: task.to_path_buf(),
        fold: 0,
        subset: Subset::All,
        out,
        resume: false,
        init_from: None,
        label_overrides: BTreeMap::new(),
        allow_test_cases: false,
    }
}

fn run(
    options: &TrainOptions,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<(), String> {
    train::<Autodiff<Flex>>(options, &Default::default(), stop, on_event)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn history(run: &Path) -> Vec<EpochRecord> {
    serde_json::from_str(&std::fs::read_to_string(run.join("history.json")).expect("history")).expect("json")
}

/// Every tensor of a safetensors file by name (the file's byte layout may differ between two
/// saves of the same values).
fn tensors(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let file = safetensors::SafeTensors::deserialize(bytes).expect("safetensors");
    file.tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect()
}

fn read_run(run: &Path) -> RunInfo {
    serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).expect("run.json")).expect("json")
}

#[test]
fn a_stopped_and_resumed_run_ends_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = phantom_task(dir.path(), PhantomModality::Ct);
    let straight = options(&task, dir.path().join("straight"));
    run(&straight, &AtomicBool::new(false), &mut |_| {}).expect("trains");

    // Stopped in the middle of epoch 3 (after its first step), then resumed.
    let interrupted = options(&task, dir.path().join("interrupted"));
    let stop = AtomicBool::new(false);
    run(&interrupted, &stop, &mut |event| {
        if let TrainEvent::Progress {
            epoch: 3, step: 1, ..
        } = event
        {
            stop.store(true, Ordering::Relaxed);
        }
    })
    .expect("stops cleanly");
    assert_eq!(
        history(&interrupted.out).len(),
        2,
        "two whole epochs before the stop"
    );
    run(
        &TrainOptions {
            resume: true,
            ..interrupted.clone()
        },
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect("resumes");

    let (a, b) = (history(&straight.out), history(&interrupted.out));
    assert_eq!(a.len(), 4);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.epoch, y.epoch);
        for (u, v) in [
            (x.train_loss, y.train_loss),
            (x.val_dice, y.val_dice),
            (x.learning_rate, y.learning_rate),
        ] {
            assert!(
                (u - v).abs() <= 1e-6 * u.abs().max(1.0),
                "epoch {}: {u} vs {v}",
                x.epoch
            );
        }
    }
    for folder in ["last", "best"] {
        let weights = |run: &Path| {
            std::fs::read(run.join(folder).join(crate::checkpoint::WEIGHTS_FILE)).expect("weights")
        };
        let (x, y) = (weights(&straight.out), weights(&interrupted.out));
        let (x, y) = (tensors(&x), tensors(&y));
        assert!(
            !x.is_empty() && x == y,
            "{folder}/ weights differ after stop and resume"
        );
    }
}

#[test]
fn resuming_or_fine_tuning_with_other_options_is_refused_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = phantom_task(dir.path(), PhantomModality::Mri { channels: 1 });
    let mut first = options(&task, dir.path().join("run"));
    first.training.epochs = 1;
    run(&first, &AtomicBool::new(false), &mut |_| {}).expect("trains");

    let mut other_fold = first.clone();
    other_fold.fold = 1;
    other_fold.resume = true;
    let message = run(&other_fold, &AtomicBool::new(false), &mut |_| {}).expect_err("another fold");
    assert!(message.contains("fold: 0 → 1"), "{message}");
    let mut deeper = first.clone();
    deeper.resume = true;
    deeper.model.decoder_depth = 2;
    let message = run(&deeper, &AtomicBool::new(false), &mut |_| {}).expect_err("another depth");
    assert!(message.contains("decoder_depth: 1 → 2"), "{message}");
    assert_eq!(
        read_run(&first.out).model.decoder_depth,
        1,
        "run.json is not overwritten"
    );

    // Fine-tuning a checkpoint as another network is refused too, before any weight is read.
    let tuned = TrainOptions {
        init_from: Some(first.out.join("best")),
        out: dir.path().join("tuned"),
        model: ModelConfig {
            embed_dim: 24,
            ..tiny_model()
        },
        ..first.clone()
    };
    let message = run(&tuned, &AtomicBool::new(false), &mut |_| {}).expect_err("another width");
    assert!(message.contains("embed_dim: 16 → 24"), "{message}");
}

#[test]
fn test_cases_are_not_trained_on_unless_asked_and_not_scored_when_they_were() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = phantom_task(dir.path(), PhantomModality::Mri { channels: 1 });
    let mut probe = options(&task, dir.path().join("probe"));
    probe.training.epochs = 1;
    run(&probe, &AtomicBool::new(false), &mut |_| {}).expect("trains");
    let splits = Splits::load(&task.join(crate::data::SPLITS_FILE)).expect("splits");
    let test_case = splits
        .test
        .first()
        .cloned()
        .expect("the split holds out a test case");
    let train_case = splits.folds[0].train[0].clone();

    let named = TrainOptions {
        subset: Subset::Ids(vec![train_case.clone(), test_case.clone()]),
        out: dir.path().join("named"),
        ..probe.clone()
    };
    let message = run(&named, &AtomicBool::new(false), &mut |_| {}).expect_err("a test case");
    assert!(
        message.contains(&test_case) && message.contains("--allow-test-cases"),
        "{message}"
    );

    let allowed = TrainOptions {
        allow_test_cases: true,
        ..named
    };
    run(&allowed, &AtomicBool::new(false), &mut |_| {}).expect("trains when allowed");
    assert_eq!(read_run(&allowed.out).trained_test_cases, vec![test_case.clone()]);
    let report =
        super::evaluate_run::<Flex>(&allowed.out, "test", 1.0, &Default::default()).expect("evaluates");
    assert_eq!(report.excluded, vec![test_case.clone()]);
    assert!(
        report.rows.iter().all(|r| r.case != test_case),
        "the trained-on case is not scored"
    );
    let scored: std::collections::BTreeSet<&str> = report.rows.iter().map(|r| r.case.as_str()).collect();
    assert_eq!(scored.len(), splits.test.len() - 1);
    // Softmax over dataset.json's labels: organ and lesion are each reported for every case.
    for case in &scored {
        let classes: Vec<u32> = report
            .rows
            .iter()
            .filter(|r| r.case == *case)
            .map(|r| r.class)
            .collect();
        assert_eq!(classes, vec![1, 2], "{case}");
    }
}

/// The CT statistics stored in the checkpoint are those of the run's training foreground,
/// computed here by brute force from the cached model-grid volumes (every foreground voxel:
/// these cases hold fewer than `CT_SAMPLES_PER_CASE`), not those of every labelled case.
#[test]
fn ct_statistics_come_from_the_training_cases_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = phantom_task(dir.path(), PhantomModality::Ct);
    let mut ct = options(&task, dir.path().join("run"));
    ct.training.epochs = 1;
    run(&ct, &AtomicBool::new(false), &mut |_| {}).expect("trains");
    let info = read_run(&ct.out);
    let cache = crate::data::PreprocessedTask::open(&super::run::preprocess_cache(&ct)).expect("cache");
    let foreground = |ids: &[String]| -> Vec<f64> {
        let mut values = Vec::new();
        for id in ids {
            let case = cache.cases.iter().find(|c| &c.id == id).expect("cached");
            let (image, label) = cache.load(case).expect("loads");
            let label = label.expect("label");
            assert!(label.voxels().iter().filter(|v| **v > 0.0).count() < crate::data::CT_SAMPLES_PER_CASE);
            for (v, l) in image.voxels().iter().zip(label.voxels()) {
                if *l > 0.0 {
                    values.push(f64::from(*v));
                }
            }
        }
        values
    };
    // numpy's linear percentile, written out.
    let percentile = |sorted: &[f64], q: f64| {
        let rank = q / 100.0 * (sorted.len() - 1) as f64;
        let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
        sorted[low] + (sorted[high] - sorted[low]) * (rank - low as f64)
    };
    let expected = |ids: &[String]| {
        let mut values = foreground(ids);
        values.sort_by(f64::total_cmp);
        let (low, high) = (percentile(&values, 0.5), percentile(&values, 99.5));
        let clipped: Vec<f64> = values.iter().map(|v| v.clamp(low, high)).collect();
        let mean = clipped.iter().sum::<f64>() / clipped.len() as f64;
        (low, high, mean)
    };
    let (meta_config, meta) =
        crate::checkpoint::read_checkpoint_config(&ct.out.join("best")).expect("checkpoint");
    assert_eq!(meta_config.in_channels, 1);
    let stored = meta.preprocessing.expect("spec").ct_statistics[0].expect("CT channel");
    let (low, high, mean) = expected(&info.train);
    for (got, want) in [
        (stored.clip_low, low),
        (stored.clip_high, high),
        (stored.mean, mean),
    ] {
        assert!((got - want).abs() < 1e-3, "{got} vs {want}");
    }
    let everyone: Vec<String> = cache
        .cases
        .iter()
        .filter(|c| c.label.is_some())
        .map(|c| c.id.clone())
        .collect();
    let (_, _, mean_of_all) = expected(&everyone);
    assert!(
        (stored.mean - mean_of_all).abs() > 1e-6,
        "the statistics of every case would differ: the check can tell them apart"
    );
}
