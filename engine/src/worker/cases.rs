//! `Command::PredictCases`: one checkpoint, many scans. Each predicted label is written in its
//! scan's geometry (as `mvl predict` writes it) and scored against the case's ground truth, as
//! is the file it replaces, so the app can show what a retrained model changed.

use super::{CaseJob, Emitter, Event, panic_message, scan_spec};
use crate::checkpoint::{LoadedCheckpoint, load_checkpoint};
use crate::device::BackendJob;
use crate::infer;
use crate::metrics::{CaseMetrics, DEFAULT_TOLERANCE_MM, case_metrics};
use crate::volume::{Volume, read_nifti, write_label_like};
use burn::tensor::backend::Backend;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// The job: the worker's stop flag and emitter, and what to predict.
pub(super) struct CasesJob<'a> {
    pub checkpoint: PathBuf,
    pub cases: Vec<CaseJob>,
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
    fn run<B: Backend>(self, device: B::Device) -> Self::Output {
        let total = self.cases.len();
        let loaded =
            guarded(|| load_checkpoint::<B>(&self.checkpoint, None, &device).map_err(|e| e.to_string()));
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
        let mut written = 0;
        for (index, case) in self.cases.iter().enumerate() {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(Event::PredictionsDone {
                    written,
                    stopped: true,
                });
            }
            match guarded(|| predict_case(&loaded, case, &device)) {
                Ok((before, after)) => {
                    written += 1;
                    self.emitter.emit(Event::CasePredicted {
                        id: case.id.clone(),
                        output: case.output.clone(),
                        before,
                        after,
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

/// Predicts one case and writes its label; returns the metrics of the previous file and of the
/// new label against the ground truth. Only the scan, the prediction and the write can fail it:
/// a ground truth or previous file that cannot be read or compared just leaves its metrics out.
fn predict_case<B: Backend>(
    loaded: &LoadedCheckpoint<B>,
    case: &CaseJob,
    device: &B::Device,
) -> Result<(Option<CaseMetrics>, Option<CaseMetrics>), String> {
    let image = read_nifti(&case.image).map_err(|e| e.to_string())?;
    let ground_truth = case
        .ground_truth
        .as_deref()
        .and_then(|path| read_nifti(path).ok());
    let score = |label: &Volume| {
        ground_truth
            .as_ref()
            .and_then(|truth| case_metrics(label, &truth.volume, DEFAULT_TOLERANCE_MM).ok())
    };
    let before = match &ground_truth {
        Some(_) if case.output.is_file() => read_nifti(&case.output).ok().and_then(|old| score(&old.volume)),
        _ => None,
    };
    let spec = scan_spec(loaded, &image.volume);
    let prediction = infer::predict(&loaded.model, &loaded.config, &spec, &image.volume, device)
        .map_err(|e| format!("{}: {e}", case.image.display()))?;
    if let Some(folder) = case.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .map_err(|e| format!("{}: cannot create the folder: {e}", folder.display()))?;
    }
    write_label_like(&case.output, &prediction.label, &image.header).map_err(|e| e.to_string())?;
    Ok((before, score(&prediction.label)))
}
