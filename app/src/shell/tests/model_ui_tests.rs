//! UI tests of the model tabs, driving the real app and the real worker (CPU, the tiny
//! `demo-cpu` preset): start a run, stop it, resume it; the predictions written for every case
//! when it ends; metrics of the case on screen and of all cases, as CSV; activation maps over
//! the views and side by side; fine-tuning on a corrected case and the Dice before and after.

use crate::model::training::{CaseChoice, DeviceRequest, Job, RunState};
use crate::shell::tests::support::Fixture;
use crate::shell::{Command, Studio, Tab};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use std::time::Duration;

/// Longest a training run, a prediction pass or a capture may take in a test.
const JOB_TIMEOUT: Duration = Duration::from_secs(600);

fn open_task(cases: usize) -> anyhow::Result<Fixture> {
    crate::shell::tests::support::open_phantom_task(cases, 0, [24, 20, 12], [1500.0, 1000.0])
}

/// Steps frames until `done` holds, for at most [`JOB_TIMEOUT`].
fn wait_until(
    harness: &mut Harness<'static, Studio>,
    what: &str,
    done: impl Fn(&Studio) -> bool,
) -> anyhow::Result<()> {
    crate::shell::tests::support::wait_until(harness, JOB_TIMEOUT, what, done)
}

/// Clicks the widget labelled `label`, then steps until the command it sent has been drawn.
fn click(harness: &mut Harness<'static, Studio>, label: &str) {
    harness.get_by_label(label).click();
    crate::shell::tests::support::frames(harness, 3);
}

/// Trains the demo-cpu preset for one epoch on the CPU and waits for the predictions after it.
fn train_one_epoch(harness: &mut Harness<'static, Studio>) -> anyhow::Result<()> {
    {
        let studio = harness.state_mut();
        studio.jobs.choices.epochs = 1;
        studio.jobs.choices.device = DeviceRequest::Cpu;
        studio.apply(Command::Model(crate::model::panels::ModelCommand::StartTraining));
    }
    wait_until(harness, "training and predictions", |s| {
        idle(s) && s.jobs.run.as_ref().is_some_and(|r| r.state != RunState::Running)
    })?;
    let state = harness.state().jobs.run.as_ref().map(|r| r.state.clone());
    anyhow::ensure!(
        state == Some(RunState::Finished),
        "run ended {state:?}: {:?}",
        harness.state().notice
    );
    Ok(())
}

fn idle(studio: &Studio) -> bool {
    studio.jobs.job.is_none() && !studio.is_busy()
}

#[test]
fn train_stop_resume_then_every_case_is_predicted_and_measured() -> anyhow::Result<()> {
    let mut fixture = open_task(6)?;
    let harness = &mut fixture.harness;
    click(harness, "Training");
    {
        let choices = &mut harness.state_mut().jobs.choices;
        choices.epochs = 2;
        choices.device = DeviceRequest::Cpu;
    }
    click(harness, "Start training");
    assert!(
        harness.state().jobs.run.is_some(),
        "Start did nothing: {:?}",
        harness.state().notice
    );
    wait_until(harness, "the first training step", |s| {
        s.jobs
            .run
            .as_ref()
            .is_some_and(|r| r.position.is_some() || r.state != RunState::Running)
    })?;
    let state = harness.state().jobs.run.as_ref().map(|r| r.state.clone());
    assert_eq!(state, Some(RunState::Running), "{:?}", harness.state().notice);
    click(harness, "Stop");
    wait_until(harness, "the run to stop", idle)?;
    let run = harness
        .state()
        .jobs
        .run
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no run"))?;
    assert_eq!(run.state, RunState::Stopped);
    assert!(run.options.out.join("last").join("state.json").is_file());
    assert!(
        run.options
            .out
            .starts_with(fixture.task.path().join(".medvisionllama/runs")),
        "{}",
        run.options.out.display()
    );
    let steps_before = run.step_losses.len();
    assert!(steps_before >= 1);

    click(harness, "Resume");
    wait_until(harness, "the resumed run and its predictions", |s| {
        idle(s) && s.jobs.run.as_ref().is_some_and(|r| r.state != RunState::Running)
    })?;
    let studio = harness.state();
    let run = studio.jobs.run.clone().ok_or_else(|| anyhow::anyhow!("no run"))?;
    assert_eq!(run.state, RunState::Finished, "{:?}", studio.notice);
    assert_eq!(
        run.history.last().map(|p| p.epoch),
        Some(2),
        "resumed to the last epoch"
    );
    assert!(run.step_losses.len() > steps_before, "the curve carries on");
    assert_eq!(studio.jobs.checkpoint, Some(run.options.out.join("best")));
    // Every case was predicted into .medvisionllama/predictions/, with its Dice after (no earlier prediction).
    let source = studio
        .source
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no source"))?;
    assert_eq!(
        studio.jobs.outcomes.len(),
        source.cases.len(),
        "{:?}",
        studio.jobs.outcomes
    );
    for (case, outcome) in source.cases.iter().zip(&studio.jobs.outcomes) {
        assert_eq!(outcome.id, case.id);
        assert!(outcome.before.is_none() && outcome.after.is_some(), "{outcome:?}");
        let expected = fixture
            .task
            .path()
            .join(".medvisionllama/predictions")
            .join(format!("{}.nii.gz", case.id));
        assert_eq!(case.prediction.as_ref(), Some(&expected));
        assert!(expected.is_file());
    }

    // The case on screen was reloaded with its prediction; its Dice per class is the one counted
    // by hand from the files in the scan's own geometry, under the scheme the worker recorded,
    // and its mean is the worker's "after".
    click(harness, "Metrics");
    wait_until(harness, "the case's metrics", |s| s.metrics.current.is_some())?;
    let studio = harness.state();
    let view = studio.view.as_ref().ok_or_else(|| anyhow::anyhow!("no case"))?;
    let entry = source
        .cases
        .iter()
        .find(|c| c.id == view.case.id)
        .ok_or_else(|| anyhow::anyhow!("case on screen not in the task"))?;
    let (Some(truth_file), Some(prediction_file)) = (entry.label_shown(), entry.prediction.as_ref()) else {
        anyhow::bail!("the case lacks a ground truth or prediction");
    };
    let folder = prediction_file
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no folder"))?;
    let scheme = engine::metrics::LabelScheme::load_beside(folder)
        .ok_or_else(|| anyhow::anyhow!("no label scheme beside the predictions"))?;
    let truth = engine::volume::read_nifti(truth_file)?.volume;
    let predicted = engine::volume::read_nifti(prediction_file)?.volume;
    let counted: Vec<Option<f64>> = scheme
        .labels()
        .iter()
        .map(|label| {
            let (mut both, mut p, mut t) = (0u64, 0u64, 0u64);
            for (pv, tv) in predicted.voxels().iter().zip(truth.voxels()) {
                let in_p = scheme.scored_label(pv.round() as u32) == *label;
                let in_t = scheme.scored_label(tv.round() as u32) == *label;
                both += u64::from(in_p && in_t);
                p += u64::from(in_p);
                t += u64::from(in_t);
            }
            (p + t > 0).then(|| 2.0 * both as f64 / (p + t) as f64)
        })
        .collect();
    let shown = studio
        .metrics
        .current
        .as_ref()
        .and_then(|(_, r)| r.as_ref().ok())
        .ok_or_else(|| anyhow::anyhow!("no metrics shown"))?;
    let shown_dice: Vec<Option<f64>> = shown
        .classes
        .iter()
        .filter(|c| scheme.labels().contains(&c.label))
        .map(|c| c.dice)
        .collect();
    assert_eq!(
        shown_dice.len(),
        counted.len(),
        "every class of the scheme is listed"
    );
    for (got, want) in shown_dice.iter().zip(&counted) {
        assert!(
            got.zip(*want).is_some_and(|(g, w)| (g - w).abs() < 1e-12) || (got.is_none() && want.is_none()),
            "{shown_dice:?} vs counted {counted:?}"
        );
    }
    let defined: Vec<f64> = counted.iter().flatten().copied().collect();
    let outcome = studio
        .jobs
        .outcomes
        .iter()
        .find(|o| o.id == view.case.id)
        .ok_or_else(|| anyhow::anyhow!("no outcome"))?;
    if !defined.is_empty() {
        let mean = defined.iter().sum::<f64>() / defined.len() as f64;
        assert!(
            outcome.after.is_some_and(|a| (a - mean).abs() < 1e-12),
            "{outcome:?} vs {mean}"
        );
    }
    harness.get_by_label("Dice");
    harness.get_by_label("HD95 mm");

    click(harness, "Compute all");
    wait_until(harness, "all cases' metrics", |s| {
        !s.metrics.is_busy() && !s.metrics.all.is_empty()
    })?;
    assert_eq!(harness.state().metrics.all.len(), source.cases.len());
    assert!(harness.state().metrics.all.iter().all(|(_, r)| r.is_ok()));
    wait_until(harness, "the label statistics", |s| {
        s.view
            .as_ref()
            .is_some_and(|v| s.metrics.statistics_for(v).is_some())
    })?;
    let csv = fixture.task.path().join("metrics.csv");
    harness.state_mut().apply(Command::Model(
        crate::model::panels::ModelCommand::ExportMetricsCsv(csv.clone()),
    ));
    let text = std::fs::read_to_string(&csv)?;
    let rows = text.lines().skip(1).count();
    let classes: usize = harness
        .state()
        .metrics
        .all
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|m| m.classes.len())
        .sum();
    assert_eq!(rows, classes, "{text}");
    // The label statistics of the case on screen (ground truth and prediction) go beside it.
    let statistics = std::fs::read_to_string(fixture.task.path().join("metrics_label_statistics.csv"))?;
    let studio = harness.state();
    let view = studio.view.as_ref().ok_or_else(|| anyhow::anyhow!("no case"))?;
    let layers = studio
        .metrics
        .statistics_for(view)
        .ok_or_else(|| anyhow::anyhow!("statistics went stale"))?;
    assert_eq!(
        layers.iter().map(|l| l.layer).collect::<Vec<_>>(),
        ["ground truth", "prediction"]
    );
    let labels: usize = layers.iter().map(|l| l.labels.len()).sum();
    assert_eq!(statistics.lines().count(), 1 + labels, "{statistics}");
    assert!(statistics.starts_with(engine::metrics::LABEL_STATISTICS_CSV_HEADER));
    Ok(())
}

#[test]
fn activation_maps_show_over_the_views_and_side_by_side() -> anyhow::Result<()> {
    let mut fixture = open_task(6)?;
    let harness = &mut fixture.harness;
    train_one_epoch(harness)?;
    let checkpoint = harness
        .state()
        .jobs
        .checkpoint
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no model"))?;
    click(harness, "Activations");
    harness.state_mut().jobs.activations.models[1] = Some(checkpoint);
    click(harness, "Capture");
    wait_until(harness, "both captures", |s| {
        idle(s) && !s.jobs.activations.is_capturing() && s.jobs.job != Some(Job::Capturing)
    })?;
    let studio = harness.state_mut();
    assert_eq!(studio.jobs.activations.error, None);
    let shape = studio
        .view
        .as_ref()
        .map(|v| v.case.image.shape())
        .unwrap_or_default();
    for slot in 0..2 {
        let names: Vec<String> = studio.jobs.activations.captured[slot]
            .as_ref()
            .map(|c| c.maps.iter().map(|m| m.stem.clone()).collect())
            .unwrap_or_default();
        for stem in ["ve", "vd1", "llm", "vd2", "vd", "probability", "attention_b0_h0"] {
            assert!(
                names.iter().any(|n| n == stem),
                "slot {slot} lacks {stem}: {names:?}"
            );
        }
        // Reoriented on a background thread: start it, wait for its answer, then it shows.
        let _ = studio.jobs.activations.heat(slot, shape);
        studio.jobs.activations.finish_preparing();
        assert!(studio.jobs.activations.heat(slot, shape).is_some());
    }
    let active = studio.views.maximised.unwrap_or(studio.views.active).index();
    let uploads = studio.views.planes[active].uploads;
    click(harness, "A and B side by side (active view)");
    for _ in 0..3 {
        harness.step();
    }
    let studio = harness.state();
    assert!(
        studio.views.compare.last_rect.is_some(),
        "the right-hand view was drawn"
    );
    assert!(studio.views.compare.uploads >= 1);
    // The left-hand view now shows model A's map alone: drawn again, so uploaded again.
    assert!(
        studio.views.planes[active].uploads > uploads,
        "{} uploads before, {} after",
        uploads,
        studio.views.planes[active].uploads
    );
    Ok(())
}

#[test]
fn fine_tuning_on_a_corrected_case_repredicts_every_case_and_marks_the_trained_one() -> anyhow::Result<()> {
    let mut fixture = open_task(6)?;
    let harness = &mut fixture.harness;
    train_one_epoch(harness)?;
    // The user corrects phantom_000 (here: its ground truth saved as the correction) and reopens.
    let source = harness
        .state()
        .source
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no source"))?;
    let first = &source.cases[0];
    let corrected = fixture.task.path().join("labelsCorrected");
    std::fs::create_dir_all(&corrected)?;
    let truth = first
        .ground_truth
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no label"))?;
    std::fs::copy(&truth, corrected.join(format!("{}.nii.gz", first.id)))?;
    harness.state_mut().apply(Command::Open(source.request.clone()));
    wait_until(harness, "the task to reopen", |s| {
        !s.is_busy() && s.view.is_some()
    })?;
    let reopened = harness
        .state()
        .source
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no source"))?;
    assert!(reopened.cases[0].corrected.is_some());
    assert!(harness.state().view.as_ref().is_some_and(|v| v.case.corrected));
    assert!(
        harness.state().jobs.checkpoint.is_some(),
        "the newest run is the current model"
    );

    harness.state_mut().tab = Tab::Training;
    harness.step();
    {
        let choices = &mut harness.state_mut().jobs.choices;
        choices.cases = CaseChoice::Corrected;
        choices.fine_tune = true;
        choices.epochs = 1;
    }
    click(harness, "Start training");
    wait_until(harness, "fine-tuning and predictions", |s| {
        idle(s) && s.jobs.run.as_ref().is_some_and(|r| r.state != RunState::Running)
    })?;
    let studio = harness.state();
    let run = studio.jobs.run.clone().ok_or_else(|| anyhow::anyhow!("no run"))?;
    assert_eq!(run.state, RunState::Finished, "{:?}", studio.notice);
    assert_eq!(
        run.options
            .init_from
            .as_ref()
            .and_then(|p| p.parent())
            .map(|p| p.exists()),
        Some(true)
    );
    assert_eq!(run.options.label_overrides.len(), 1);
    // Every case was predicted again, the corrected one too: each has a Dice before (the first
    // model) and after, and only the corrected one is marked as trained on.
    let all: Vec<&String> = reopened.cases.iter().map(|c| &c.id).collect();
    let predicted: Vec<&String> = studio.jobs.outcomes.iter().map(|o| &o.id).collect();
    assert_eq!(predicted, all);
    assert!(
        studio
            .jobs
            .outcomes
            .iter()
            .all(|o| o.before.is_some() && o.after.is_some())
    );
    let trained_on: Vec<&String> = studio
        .jobs
        .outcomes
        .iter()
        .filter(|o| o.trained_on)
        .map(|o| &o.id)
        .collect();
    assert_eq!(trained_on, vec![&first.id]);
    harness.get_by_label("Dice before and after");
    harness.get_by_label("corrected, trained on");
    harness.get_by_label_contains("mean over 1 corrected cases (trained on)");
    Ok(())
}

#[test]
fn the_metrics_tab_shows_label_statistics_counted_from_the_label_file() -> anyhow::Result<()> {
    let mut fixture = open_task(2)?;
    let harness = &mut fixture.harness;
    click(harness, "Metrics");
    wait_until(harness, "the label statistics", |s| {
        s.view
            .as_ref()
            .is_some_and(|v| s.metrics.statistics_for(v).is_some())
    })?;
    harness.get_by_label("Label statistics");
    harness.get_by_label("Volume mL");
    let studio = harness.state();
    let view = studio.view.as_ref().ok_or_else(|| anyhow::anyhow!("no case"))?;
    let source = studio.source.as_ref().ok_or_else(|| anyhow::anyhow!("no task"))?;
    let entry = source
        .cases
        .iter()
        .find(|c| c.id == view.case.id)
        .ok_or_else(|| anyhow::anyhow!("case on screen not in the task"))?;
    let file = entry.label_shown().ok_or_else(|| anyhow::anyhow!("no label"))?;
    // Counted from the file in the scan's own geometry; the volume from its affine.
    let label = engine::volume::read_nifti(file)?.volume;
    let voxel_ml = engine::volume::determinant(&label.world_from_voxel().linear()).abs() / 1000.0;
    let mut counts = std::collections::BTreeMap::<u32, u64>::new();
    for value in label.voxels().iter().filter(|v| **v > 0.0) {
        *counts.entry(value.round() as u32).or_default() += 1;
    }
    let layers = studio
        .metrics
        .statistics_for(view)
        .ok_or_else(|| anyhow::anyhow!("statistics went stale"))?;
    let truth = layers
        .iter()
        .find(|l| l.layer == "ground truth")
        .ok_or_else(|| anyhow::anyhow!("no ground-truth layer: {layers:?}"))?;
    let shown: std::collections::BTreeMap<u32, u64> =
        truth.labels.iter().map(|l| (l.label, l.voxels)).collect();
    assert_eq!(shown, counts);
    assert!(counts.len() >= 2, "organ and lesion: {counts:?}");
    for row in &truth.labels {
        let expected = row.voxels as f64 * voxel_ml;
        assert!(
            (row.volume_ml - expected).abs() <= 1e-9 * expected,
            "{row:?} vs {expected} mL"
        );
        // The table shows the count as it is.
        harness
            .get_all_by_label(&row.voxels.to_string())
            .next()
            .ok_or_else(|| anyhow::anyhow!("{} voxels of label {} not shown", row.voxels, row.label))?;
    }
    Ok(())
}

#[test]
fn predictions_under_mirroring_give_scores_that_order_the_list_and_a_heat_layer() -> anyhow::Result<()> {
    let mut fixture = open_task(6)?;
    let harness = &mut fixture.harness;
    assert_eq!(
        harness.state().jobs.choices.uncertainty,
        Some(engine::infer::UncertaintyMethod::EachAxis),
        "on by default"
    );
    train_one_epoch(harness)?;
    // Every case has the score the worker recorded in uncertainty.json.
    let predictions = fixture.task.path().join(".medvisionllama/predictions");
    let recorded = engine::infer::UncertaintyScores::load(&predictions).map_err(anyhow::Error::msg)?;
    let source = harness
        .state()
        .source
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no source"))?;
    for case in &source.cases {
        let score = case
            .uncertainty
            .ok_or_else(|| anyhow::anyhow!("{} has no score", case.id))?;
        // Through JSON and back: serde_json's parser may differ in the last bit.
        let written = recorded.scores.get(&case.id).copied().unwrap_or(f64::NAN);
        assert!(
            (written - score).abs() < 1e-12,
            "{}: {written} vs {score}",
            case.id
        );
    }
    // Reopened from disk, the task finds the same scores.
    let reopened = crate::io::source::open(&source.request)?;
    for (again, case) in reopened.cases.iter().zip(&source.cases) {
        let (a, b) = (
            again.uncertainty.unwrap_or(f64::NAN),
            case.uncertainty.unwrap_or(f64::NAN),
        );
        assert!((a - b).abs() < 1e-12, "{}: {a} reopened, {b} before", case.id);
    }

    // "Least certain first" lists the cases by score, highest first.
    harness.state_mut().tab = Tab::Display;
    click(harness, "Least certain first");
    assert!(harness.state().filter.by_uncertainty);
    let sheet = harness
        .state()
        .reviews
        .get(&source.request.title())
        .cloned()
        .unwrap_or_default();
    let order = crate::review::case_list::visible_cases(&source, &sheet, &harness.state().filter);
    let mut expected: Vec<(f64, usize)> = source
        .cases
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.uncertainty.map(|s| (s, i)))
        .collect();
    expected.sort_by(|a, b| b.0.total_cmp(&a.0));
    assert_eq!(order, expected.iter().map(|(_, i)| *i).collect::<Vec<_>>());

    // The case on screen has its map; the overlay panel shows it as a heat layer.
    let has_map = |s: &Studio| s.view.as_ref().is_some_and(|v| v.case.uncertainty.is_some());
    wait_until(harness, "the case with its uncertainty map", |s| {
        idle(s) && has_map(s)
    })?;
    let uploads = harness.state().views.planes[0].uploads;
    click(harness, "Uncertainty (heat)");
    assert!(harness.state().settings.overlays.uncertainty);
    assert!(
        harness.state().views.planes[0].uploads > uploads,
        "the views were redrawn"
    );
    Ok(())
}
