//! `Command::PredictCases`: one checkpoint, many scans. Each predicted label is written in its
//! scan's geometry (as `mvl predict` writes it) and scored against the case's ground truth, as
//! is the file it replaces, so the app can show what a retrained model changed. Scores use the
//! model's label scheme ([`score_case`]), which is recorded beside the predictions
//! ([`LabelScheme::save_beside`]) so the app's Metrics tab scores the files the same way.

use super::{CaseJob, Emitter, Event, panic_message, scan_spec};
use crate::checkpoint::{LoadedCheckpoint, load_checkpoint};
use crate::device::BackendJob;
use crate::infer;
use crate::metrics::{CaseMetrics, DEFAULT_TOLERANCE_MM, LabelScheme, score_case};
use crate::model::EngineBackend;
use crate::volume::{DataType, Volume, WriteOptions, read_nifti, write_label_like, write_nifti};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// The job: the worker's stop flag and emitter, and what to predict.
pub(super) struct CasesJob<'a> {
    pub checkpoint: PathBuf,
    pub cases: Vec<CaseJob>,
    pub uncertainty: Option<infer::UncertaintyMethod>,
    pub stop: &'a AtomicBool,
    pub emitter: &'a Emitter,
}

/// Runs `work`, turning a panic (burn panics on e.g. device out-of-memory) into an error so one
/// case cannot end the job.
fn guarded<T>(work: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        Err(format!(
            "the computation failed: {} (out of memory? try the CPU)",
            panic_message(panic.as_ref())
        ))
    })
}

impl BackendJob for CasesJob<'_> {
    type Output = Result<Event, String>;
    fn run<B: EngineBackend>(self, device: B::Device) -> Self::Output {
        let total = self.cases.len();
        let loaded = guarded(|| {
            let loaded = load_checkpoint::<B>(&self.checkpoint, None, &device).map_err(|e| e.to_string())?;
            // Refused once for the job rather than once per case.
            match self.uncertainty.map(|method| method.check(&loaded.config)) {
                Some(Err(e)) => Err(format!("{}: {e}", self.checkpoint.display())),
                _ => Ok(loaded),
            }
        });
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(message) => {
                // Still end with PredictionsDone: the app waits for it to close the job.
                self.emitter.emit(Event::Failed(message));
                return Ok(Event::PredictionsDone {
                    written: 0,
                    stopped: false,
                });
            }
        };
        let scheme = infer::label_scheme(&loaded.config);
        let mut written = 0;
        for (index, case) in self.cases.iter().enumerate() {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(Event::PredictionsDone {
                    written,
                    stopped: true,
                });
            }
            match guarded(|| predict_case(&loaded, &scheme, case, self.uncertainty, &device)) {
                Ok(scored) => {
                    written += 1;
                    self.emitter.emit(Event::CasePredicted {
                        id: case.id.clone(),
                        output: case.output.clone(),
                        before: scored.before,
                        after: scored.after,
                        scoring_problem: scored.problem,
                        uncertainty: scored.uncertainty,
                        done: index + 1,
                        total,
                    });
                }
                Err(message) => self
                    .emitter
                    .emit(Event::Failed(format!("case {}: {message}", case.id))),
            }
        }
        Ok(Event::PredictionsDone {
            written,
            stopped: false,
        })
    }
}

/// What one case's prediction scored.
struct Scored {
    before: Option<CaseMetrics>,
    after: Option<CaseMetrics>,
    problem: Option<String>,
    uncertainty: Option<f64>,
}

/// Predicts one case and writes its label (and the scheme file beside it); returns the metrics
/// of the previous file and of the new label against the ground truth. Only the scan, the
/// prediction and the write can fail it: a ground truth that cannot be read or compared is
/// reported in `problem`, a previous file that cannot be just has no `before`.
fn predict_case<B: EngineBackend>(
    loaded: &LoadedCheckpoint<B>,
    scheme: &LabelScheme,
    case: &CaseJob,
    method: Option<infer::UncertaintyMethod>,
    device: &B::Device,
) -> Result<Scored, String> {
    let image = read_nifti(&case.image).map_err(|e| e.to_string())?;
    let mut problem = None;
    let ground_truth = case.ground_truth.as_deref().and_then(|path| {
        read_nifti(path)
            .map_err(|e| problem = Some(format!("ground truth not scored: {e}")))
            .ok()
    });
    let score = |label: &Volume| {
        ground_truth
            .as_ref()
            .map(|truth| score_case(label, &truth.volume, scheme, DEFAULT_TOLERANCE_MM))
    };
    let before = match &ground_truth {
        Some(_) if case.output.is_file() => read_nifti(&case.output)
            .ok()
            .and_then(|old| score(&old.volume))
            .and_then(Result::ok),
        _ => None,
    };
    let spec = scan_spec(loaded, &image.volume);
    let (prediction, uncertain) = infer::predict_maybe_mirrored(
        &loaded.model,
        &loaded.config,
        &spec,
        &image.volume,
        method,
        device,
    )
    .map_err(|e| format!("{}: {e}", case.image.display()))?;
    let folder = case
        .output
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(folder)
        .map_err(|e| format!("{}: cannot create the folder: {e}", folder.display()))?;
    scheme
        .save_beside(folder)
        .map_err(|e| format!("{}: cannot record the label scheme: {e}", folder.display()))?;
    write_label_like(&case.output, &prediction.label, &image.header).map_err(|e| e.to_string())?;
    let uncertainty = match method.zip(uncertain) {
        None => {
            // A score and map of an earlier prediction would describe a file that is gone.
            let stale = infer::uncertainty_map_path(&case.output);
            if stale.is_file() {
                std::fs::remove_file(&stale)
                    .map_err(|e| format!("{}: cannot remove: {e}", stale.display()))?;
            }
            infer::UncertaintyScores::forget(folder, &case.id)?;
            None
        }
        Some((method, (map, score))) => {
            let path = infer::uncertainty_map_path(&case.output);
            if let Some(maps) = path.parent() {
                std::fs::create_dir_all(maps)
                    .map_err(|e| format!("{}: cannot create the folder: {e}", maps.display()))?;
            }
            write_nifti(&path, &map, Some(&image.header), WriteOptions::new(DataType::F32))
                .map_err(|e| e.to_string())?;
            infer::UncertaintyScores::record(folder, &method.describe(), &case.id, score)?;
            Some(score)
        }
    };
    let after = match score(&prediction.label) {
        Some(Ok(metrics)) => Some(metrics),
        Some(Err(e)) => {
            problem = Some(format!("ground truth not scored: {e}"));
            None
        }
        None => None,
    };
    Ok(Scored {
        before,
        after,
        problem,
        uncertainty,
    })
}
