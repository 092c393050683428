//! The worker end to end on the CPU: train in the background, stop within a step with a usable
//! checkpoint, resume, then predict.

use super::*;
use crate::data::{PhantomOptions, write_phantom_task};
use crate::model::{LlmConfig, ModelConfig};
use crate::train::{Subset, TrainingConfig};
use std::time::Duration;

/// A model small enough that an epoch takes well under a second.
fn tiny_model() -> ModelConfig {
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

/// Waits for an event matching `want`, failing after a generous timeout.
fn wait_for(worker: &Worker, mut want: impl FnMut(&Event) -> bool) -> Event {
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    while std::time::Instant::now() < deadline {
        if let Some(event) = worker.recv_timeout(Duration::from_millis(200)) {
            if let Event::Failed(message) = &event {
                panic!("worker failed: {message}");
            }
            if want(&event) {
                return event;
            }
        }
    }
    panic!("no matching event before the deadline");
}

#[test]
fn train_stop_resume_and_predict_through_the_worker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task");
    write_phantom_task(
        &task,
        &PhantomOptions {
            training_cases: 12,
            test_cases: 1,
            size: [24, 24, 12],
            ..PhantomOptions::default()
        },
    )
    .expect("task");
    let run = dir.path().join("run");
    let options = TrainOptions {
        model: tiny_model(),
        training: TrainingConfig {
            epochs: 50,
            batch_size: 2,
            ..TrainingConfig::default()
        },
        data: task.clone(),
        fold: 0,
        subset: Subset::All,
        out: run.clone(),
        resume: false,
        init_from: None,
        label_overrides: Default::default(),
        allow_test_cases: false,
    };
    let wakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = wakes.clone();
    let worker = Worker::spawn(DeviceKind::Cpu, move || {
        counter.fetch_add(1, Ordering::Relaxed);
    })
    .expect("spawns");
    worker
        .send(Command::StartTraining(Box::new(options.clone())))
        .expect("sent");
    // Let one epoch finish (so best/ exists), then stop in the middle of the next.
    wait_for(&worker, |e| {
        matches!(e, Event::Training(TrainEvent::Epoch { epoch: 1, .. }))
    });
    wait_for(&worker, |e| {
        matches!(e, Event::Training(TrainEvent::Progress { epoch: 2, .. }))
    });
    worker.stop();
    let done = wait_for(&worker, |e| matches!(e, Event::TrainingDone(_)));
    let Event::TrainingDone(summary) = done else {
        unreachable!()
    };
    assert!(summary.stopped, "stopped long before 50 epochs");
    assert!(summary.epochs_completed < 50);
    assert!(run.join("last/state.json").is_file() && run.join("last/model.safetensors").is_file());
    assert!(wakes.load(Ordering::Relaxed) > 0, "the waker was called");

    // Resume to a total of `completed + 1` epochs: exactly one more epoch runs.
    let target = summary.epochs_completed + 1;
    let resumed = TrainOptions {
        resume: true,
        training: TrainingConfig {
            epochs: target,
            ..options.training.clone()
        },
        ..options
    };
    worker
        .send(Command::StartTraining(Box::new(resumed)))
        .expect("sent");
    let started = wait_for(&worker, |e| {
        matches!(e, Event::Training(TrainEvent::Started { .. }))
    });
    assert!(
        matches!(started, Event::Training(TrainEvent::Started { first_epoch, .. }) if first_epoch == target)
    );
    let Event::TrainingDone(summary) = wait_for(&worker, |e| matches!(e, Event::TrainingDone(_))) else {
        unreachable!()
    };
    assert!(!summary.stopped);
    assert_eq!(summary.epochs_completed, target);
    assert_eq!(summary.history.len(), target, "history carried across the resume");

    let scan = task.join("imagesTr/phantom_000.nii.gz");
    worker
        .send(Command::Predict {
            checkpoint: run.join("best"),
            input: scan.clone(),
        })
        .expect("sent");
    let Event::Predicted {
        prediction,
        llm_weights,
        ..
    } = wait_for(&worker, |e| matches!(e, Event::Predicted { .. }))
    else {
        unreachable!()
    };
    assert_eq!(
        prediction.label.shape(),
        read_nifti(&scan).expect("scan").volume.shape()
    );
    assert_eq!(llm_weights, crate::weights::RANDOM_WEIGHTS);
}

#[test]
fn a_bad_command_is_reported_not_fatal() {
    let worker = Worker::spawn(DeviceKind::Cpu, || {}).expect("spawns");
    worker
        .send(Command::Predict {
            checkpoint: "/nonexistent/run/best".into(),
            input: "/nonexistent/scan.nii.gz".into(),
        })
        .expect("sent");
    let event = worker.recv_timeout(Duration::from_secs(60)).expect("an answer");
    let Event::Failed(message) = event else {
        panic!("expected a failure, got {event:?}")
    };
    assert!(message.contains("/nonexistent/run/best"), "{message}");
    // Still alive afterwards.
    worker
        .send(Command::Predict {
            checkpoint: "/nonexistent/again".into(),
            input: "/x.nii".into(),
        })
        .expect("sent");
    assert!(matches!(
        worker.recv_timeout(Duration::from_secs(60)),
        Some(Event::Failed(_))
    ));
}

/// Events of one `PredictCases` job, up to and including `PredictionsDone`.
fn prediction_job_events(worker: &Worker) -> Vec<Event> {
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    let mut events = Vec::new();
    while std::time::Instant::now() < deadline {
        if let Some(event) = worker.recv_timeout(Duration::from_millis(200)) {
            let done = matches!(event, Event::PredictionsDone { .. });
            events.push(event);
            if done {
                return events;
            }
        }
    }
    panic!("no PredictionsDone before the deadline; got {events:?}");
}

#[test]
fn predict_cases_writes_labels_scores_them_and_goes_past_a_bad_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task");
    write_phantom_task(
        &task,
        &PhantomOptions {
            training_cases: 2,
            test_cases: 0,
            size: [24, 24, 12],
            ..PhantomOptions::default()
        },
    )
    .expect("task");
    let config = tiny_model();
    let weights = crate::checkpoint::llm_weights_for(&config).expect("no LLM folder needed");
    let model = crate::model::MedVisionLlama::<burn::backend::Flex>::new(
        &config,
        weights.clone(),
        &Default::default(),
    );
    let checkpoint = dir.path().join("checkpoint");
    crate::checkpoint::save_checkpoint(
        &checkpoint,
        &model,
        &config,
        &crate::checkpoint::fresh_meta(&config, weights.as_ref()),
    )
    .expect("checkpoint");
    let broken = dir.path().join("broken.nii.gz");
    std::fs::write(&broken, b"not a scan").expect("write");
    let predictions = task.join("labelsPred");
    let job = |id: &str, image: PathBuf| CaseJob {
        id: id.into(),
        image,
        ground_truth: Some(task.join(format!("labelsTr/{id}.nii.gz"))),
        output: predictions.join(format!("{id}.nii.gz")),
    };
    // phantom_001's ground truth is unreadable: its prediction is written, and the reason it is
    // not scored is reported with it.
    let unreadable_truth = dir.path().join("truth_001.nii.gz");
    std::fs::write(&unreadable_truth, b"not a label").expect("write");
    let cases = vec![
        job("phantom_000", task.join("imagesTr/phantom_000.nii.gz")),
        job("broken", broken),
        CaseJob {
            ground_truth: Some(unreadable_truth),
            ..job("phantom_001", task.join("imagesTr/phantom_001.nii.gz"))
        },
    ];
    // The waker runs on the worker thread right after each event: once armed, it requests a stop
    // as soon as the first case is reported, which makes the stop test deterministic.
    let stop_flag: Arc<std::sync::OnceLock<Arc<AtomicBool>>> = Arc::default();
    let armed = Arc::new(AtomicBool::new(false));
    let (waker_flag, waker_armed) = (stop_flag.clone(), armed.clone());
    let worker = Worker::spawn(DeviceKind::Cpu, move || {
        if waker_armed.load(Ordering::Relaxed)
            && let Some(flag) = waker_flag.get()
        {
            flag.store(true, Ordering::Relaxed);
        }
    })
    .expect("spawns");
    stop_flag.set(worker.stop.clone()).expect("set once");
    let run_with = |worker: &Worker, uncertainty| {
        worker
            .send(Command::PredictCases {
                checkpoint: checkpoint.clone(),
                cases: cases.clone(),
                uncertainty,
            })
            .expect("sent");
        prediction_job_events(worker)
    };
    let run = |worker: &Worker| run_with(worker, None);

    let first = run(&worker);
    assert_eq!(first.len(), 4, "{first:?}");
    let Event::Failed(message) = &first[1] else {
        panic!("the broken scan fails alone: {first:?}")
    };
    assert!(message.contains("broken.nii.gz"), "{message}");
    assert!(matches!(
        first[3],
        Event::PredictionsDone {
            written: 2,
            stopped: false
        }
    ));
    let mut first_after = Vec::new();
    for (event, done) in [(&first[0], 1), (&first[2], 3)] {
        let Event::CasePredicted {
            id,
            output,
            before,
            after,
            scoring_problem,
            done: reported_done,
            total,
            uncertainty,
        } = event
        else {
            panic!("expected CasePredicted, got {event:?}")
        };
        assert_eq!((*reported_done, *total), (done, 3));
        assert_eq!(*uncertainty, None, "not asked for");
        assert!(before.is_none(), "no earlier file for {id}");
        if id == "phantom_000" {
            assert!(
                after.is_some() && scoring_problem.is_none(),
                "scored: {scoring_problem:?}"
            );
            // One sigmoid channel: the merged foreground, always reported.
            let classes: Vec<u32> = after
                .iter()
                .flat_map(|m| m.classes.iter().map(|c| c.label))
                .collect();
            assert_eq!(classes, vec![1]);
        } else {
            assert!(after.is_none(), "an unreadable ground truth is not scored");
            let problem = scoring_problem.as_deref().unwrap_or_default();
            assert!(problem.contains("truth_001.nii.gz"), "{problem:?}");
        }
        let scan = read_nifti(&task.join(format!("imagesTr/{id}.nii.gz"))).expect("scan");
        let written = read_nifti(output).expect("the label reads back");
        assert_eq!(written.volume.shape(), scan.volume.shape());
        assert_eq!(written.volume.channels(), 1);
        assert!(
            written
                .volume
                .world_from_voxel()
                .max_abs_diff(scan.volume.world_from_voxel())
                < 1e-6
        );
        first_after.push(after.clone());
    }

    assert_eq!(
        crate::metrics::LabelScheme::load_beside(&predictions),
        Some(crate::metrics::LabelScheme::MergedForeground),
        "the scheme is recorded beside the predictions"
    );
    assert!(!crate::infer::UncertaintyScores::path(&predictions).exists());
    // The second job under test-time mirroring: a score per case, recorded, and a map each.
    let second = run_with(&worker, Some(crate::infer::UncertaintyMethod::EachAxis));
    let recorded = crate::infer::UncertaintyScores::load(&predictions).expect("uncertainty.json");
    let mut scored = 0;
    for event in &second {
        if let Event::CasePredicted {
            id,
            output,
            uncertainty,
            ..
        } = event
        {
            let score = uncertainty.expect("a score when asked for");
            assert!((0.0..=1.0).contains(&score), "{score}");
            // Through JSON and back: serde_json's parser may differ in the last bit.
            let written = recorded.scores.get(id).copied().unwrap_or(f64::NAN);
            assert!(
                (written - score).abs() < 1e-12,
                "{id}: {written} recorded, {score} reported"
            );
            let map = read_nifti(&crate::infer::uncertainty_map_path(output)).expect("the map");
            let scan = read_nifti(&task.join(format!("imagesTr/{id}.nii.gz"))).expect("scan");
            assert_eq!(map.volume.shape(), scan.volume.shape());
            scored += 1;
        }
    }
    assert_eq!(scored, 2);
    let second_before: Vec<_> = second
        .iter()
        .filter_map(|e| match e {
            Event::CasePredicted { before, .. } => Some(before.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        second_before, first_after,
        "the files written first are scored as `before`"
    );

    armed.store(true, Ordering::Relaxed);
    let stopped = run(&worker);
    assert!(
        matches!(
            stopped.last(),
            Some(Event::PredictionsDone {
                written: 1,
                stopped: true
            })
        ),
        "{stopped:?}"
    );
    // The stopped job re-predicted phantom_000 without uncertainty: its earlier score and map
    // are gone, phantom_001's (not re-predicted) stay.
    let recorded = crate::infer::UncertaintyScores::load(&predictions).expect("uncertainty.json");
    assert!(!recorded.scores.contains_key("phantom_000"), "{recorded:?}");
    assert!(recorded.scores.contains_key("phantom_001"), "{recorded:?}");
    let map_of = |id: &str| crate::infer::uncertainty_map_path(&predictions.join(format!("{id}.nii.gz")));
    assert!(!map_of("phantom_000").exists());
    assert!(map_of("phantom_001").is_file());
}
