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
