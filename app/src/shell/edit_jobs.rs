//! Whole-label edits on a background thread: "start from prediction", restoring an autosave,
//! fill between slices, island removal and region growing. The thread works on shared (`Arc`)
//! volumes and drops them before it answers, so applying the sparse result never copies the
//! label; painting waits meanwhile.

use super::{Notice, Studio};
use crate::annotation::brush::PaintRule;
use crate::annotation::pending::{
    PendingEdit, fill_changes, grow_changes, island_changes, replacement_changes,
};
use crate::common::label::label_from_volume;
use crate::common::slice_geometry::Axis;
use crate::io::label_io::read_label_canonical;
use engine::edit::{GrowExtent, GrowRequest, IslandRule};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

/// What the edit thread answers: the edit and the message to show, or why not.
type EditAnswer = Result<(PendingEdit, String), String>;
/// The work the edit thread does.
type EditWork = Box<dyn FnOnce() -> EditAnswer + Send>;

/// A whole-label edit under way.
pub(super) struct EditJob {
    /// What it is, for "wait for …" messages.
    pub what: &'static str,
    /// The load ticket of the case it was started on.
    ticket: u64,
    /// The edit and the message to show, or why not.
    receiver: mpsc::Receiver<EditAnswer>,
    /// Set by Cancel: the thread drops its answer instead of sending it.
    cancelled: Arc<AtomicBool>,
}

/// A whole-label edit the user asked for.
pub(super) enum EditJobKind {
    /// Copy the prediction into the label.
    StartFromPrediction,
    /// Load the autosave at this path.
    RestoreAutosave(PathBuf),
    /// Fill the brush's label between its drawn slices across `axis`.
    FillBetween(Axis, PaintRule),
    /// Remove islands of this label.
    RemoveIslands(u32, IslandRule),
    /// Grow a region from a seed and write it under the rule.
    Grow(GrowRequest, PaintRule),
}

impl Studio {
    /// Starts a whole-label edit of the case on screen on the `edit` thread.
    pub(super) fn start_edit_job(&mut self, kind: EditJobKind) {
        if let Some(job) = &self.edit_job {
            self.notice = Some(Notice::Error(format!("wait: {} is under way", job.what)));
            return;
        }
        let Some(view) = &mut self.view else { return };
        view.edit.end_stroke();
        let label = view.case.ground_truth.clone();
        let image = Arc::clone(&view.case.image);
        let cancelled = Arc::new(AtomicBool::new(false));
        let (what, work): (&'static str, EditWork) = match kind {
            EditJobKind::StartFromPrediction => {
                let Some(prediction) = view.case.prediction.clone() else {
                    self.notice = Some(Notice::Error("this case has no prediction to start from".into()));
                    return;
                };
                let work = move || {
                    let pending = replacement_changes(label.as_ref(), &prediction, "start from prediction")?;
                    let message = format!(
                        "prediction copied into the label ({} voxels changed)",
                        pending.len()
                    );
                    Ok((pending, message))
                };
                ("start from prediction", Box::new(work))
            }
            EditJobKind::RestoreAutosave(path) => {
                let work = move || {
                    let restored = read_label_canonical(&path, image.shape())
                        .map_err(|e| format!("autosave not restored: {e:#}"))?;
                    let restored = label_from_volume(&restored)
                        .map_err(|e| format!("autosave not restored: {}: {e}", path.display()))?;
                    let pending = replacement_changes(label.as_ref(), &restored, "restore autosave")
                        .map_err(|e| format!("autosave not restored: {e}"))?;
                    Ok((pending, format!("edit session restored from {}", path.display())))
                };
                ("restoring the autosave", Box::new(work))
            }
            EditJobKind::FillBetween(axis, rule) => {
                let drawn = view.edit.drawn_slices(axis.normal(), rule.value);
                // Cancel stops the fill itself, between slices, not only its answer.
                let stop = Arc::clone(&cancelled);
                let work = move || {
                    let stop = || stop.load(Ordering::Relaxed);
                    let pending = fill_changes(label, &image, axis.normal(), &drawn, &rule, &stop)
                        .map_err(|e| format!("nothing filled: {e}"))?;
                    let message = format!(
                        "filled {} voxels of label {} between its {} slices",
                        pending.len(),
                        rule.value,
                        axis.name().to_lowercase()
                    );
                    Ok((pending, message))
                };
                ("fill between slices", Box::new(work))
            }
            EditJobKind::RemoveIslands(value, rule) => {
                let work = move || {
                    let pending = island_changes(label, &image, value, rule)
                        .map_err(|e| format!("no island removed: {e}"))?;
                    let message = format!(
                        "{} voxels of label {value} removed ({})",
                        pending.len(),
                        pending.name
                    );
                    Ok((pending, message))
                };
                ("island removal", Box::new(work))
            }
            EditJobKind::Grow(request, rule) => {
                let stop = Arc::clone(&cancelled);
                let work = move || {
                    let stop = || stop.load(Ordering::Relaxed);
                    let pending = grow_changes(label, &image, &request, &rule, &stop)
                        .map_err(|e| format!("no region grown: {e}"))?;
                    let message = format!(
                        "{} voxels set to label {} (grown {} within {} to {})",
                        pending.len(),
                        rule.value,
                        match request.extent {
                            GrowExtent::Volume => "in 3-D",
                            GrowExtent::Slice { .. } => "in the slice",
                        },
                        request.low,
                        request.high
                    );
                    Ok((pending, message))
                };
                ("region growing", Box::new(work))
            }
        };
        let (sender, receiver) = mpsc::sync_channel(1);
        let waker = self.ctx.clone();
        let flag = Arc::clone(&cancelled);
        let spawned = std::thread::Builder::new().name("edit".into()).spawn(move || {
            if flag.load(Ordering::Relaxed) {
                return;
            }
            // `work` owns the label snapshot and drops it when it returns, before the answer.
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .unwrap_or_else(|_| Err(format!("{what} failed unexpectedly; please report this")));
            if !flag.load(Ordering::Relaxed) {
                let _ = sender.send(answer);
                waker.request_repaint();
            }
        });
        match spawned {
            Ok(_) => {
                self.edit_job = Some(EditJob {
                    what,
                    ticket: view.ticket,
                    receiver,
                    cancelled,
                })
            }
            Err(error) => self.notice = Some(Notice::Error(format!("cannot start {what}: {error}"))),
        }
    }

    /// Region growing from `seed`, clicked in the view across `axis`, with the brush's label,
    /// window (the display window when none is set yet, which then becomes the brush's) and
    /// paint-over rule.
    pub(super) fn start_grow(&mut self, axis: Axis, seed: [usize; 3]) {
        let Some(view) = &self.view else { return };
        let brush = &mut self.edit.brush;
        let (low, high) = *brush.grow_range.get_or_insert_with(|| {
            let window = view.window;
            (
                window.level - window.width / 2.0,
                window.level + window.width / 2.0,
            )
        });
        let request = GrowRequest {
            seed,
            low,
            high,
            extent: if brush.grow_in_3d {
                GrowExtent::Volume
            } else {
                GrowExtent::Slice {
                    normal: axis.normal(),
                }
            },
        };
        let rule = PaintRule {
            value: brush.label,
            selected_label: brush.label,
            paint_over: brush.paint_over,
            intensity_range: None,
        };
        self.start_edit_job(EditJobKind::Grow(request, rule));
    }

    /// Cancel: the UI stops waiting at once and the thread's answer, when it comes, is dropped;
    /// the label stays as it was.
    pub(super) fn cancel_edit_job(&mut self) {
        if let Some(job) = self.edit_job.take() {
            job.cancelled.store(true, Ordering::Relaxed);
            self.notice = Some(Notice::Info(format!(
                "{} cancelled; the label is unchanged",
                job.what
            )));
        }
    }

    /// Applies the answer of the edit thread, once it has come, to the case it was asked for.
    pub(super) fn poll_edit_job(&mut self) {
        let Some(job) = &self.edit_job else { return };
        let answer = match job.receiver.try_recv() {
            Ok(answer) => answer,
            Err(mpsc::TryRecvError::Empty) => return,
            Err(mpsc::TryRecvError::Disconnected) => Err(format!("{} stopped unexpectedly", job.what)),
        };
        let ticket = job.ticket;
        self.edit_job = None;
        match answer {
            Ok((pending, message)) => {
                let Some(view) = self.view.as_mut().filter(|v| v.ticket == ticket) else {
                    return; // another case is on screen now
                };
                view.edit.apply_pending(&mut view.case, pending);
                self.notice = Some(Notice::Info(message));
            }
            Err(message) => self.notice = Some(Notice::Error(message)),
        }
    }
}
