//! Saving and autosaving the label through the writer thread, and what follows a finished
//! write (the corrected label becomes the case's, the review state, the step that waited).

use super::*;
use std::time::Duration;

impl Studio {
    pub(super) fn autosave_tick(&mut self, ctx: &egui::Context) {
        let Some(view) = &self.view else { return };
        let edit = &view.edit;
        if !edit.is_dirty() || edit.generation == edit.autosaved_generation {
            self.edit.autosave_due = None;
            return;
        }
        let now = Instant::now();
        let due = *self
            .edit
            .autosave_due
            .get_or_insert(now + Duration::from_secs(AUTOSAVE_INTERVAL_SECS));
        if now < due || self.edit.is_writing() || edit.is_painting() {
            ctx.request_repaint_after(due.saturating_duration_since(now).max(Duration::from_millis(100)));
            return;
        }
        self.edit.autosave_due = None;
        let path = self.source.as_ref().and_then(|s| autosave_path(s, &view.case.id));
        if let Some(path) = path {
            self.start_write(WriteKind::Autosave, path);
        }
    }

    /// Writes the current label to `path` on the writer thread (after the write under way).
    pub(super) fn start_write(&mut self, kind: WriteKind, path: PathBuf) {
        if self.edit.writer.is_some() {
            if kind == WriteKind::Save {
                self.edit.queued_save = Some(path);
            }
            return;
        }
        let Some(view) = &mut self.view else { return };
        view.edit.end_stroke();
        let Some(label) = view.case.ground_truth.clone() else {
            self.notice = Some(Notice::Error(
                "nothing to save: this case has no label yet; paint one first".into(),
            ));
            return;
        };
        let job = WriteJob {
            kind,
            case_id: view.case.id.clone(),
            path,
            generation: view.edit.generation,
            label,
            scan_grid: view.case.scan_grid,
            scan_header: view.case.scan_header.clone(),
        };
        let waker = self.ctx.clone();
        self.edit.writer = Some(crate::io::label_io::spawn_write(job, move || {
            waker.request_repaint()
        }));
    }

    pub(super) fn write_finished(&mut self, done: WriteDone) {
        let same_case = self.view.as_ref().is_some_and(|v| v.case.id == done.case_id);
        match (done.kind, done.result) {
            (WriteKind::Autosave, Ok(())) => {
                if let Some(view) = self.view.as_mut().filter(|_| same_case) {
                    view.edit.autosaved_generation = done.generation;
                }
            }
            (WriteKind::Save, Ok(())) => {
                if let Some(view) = self.view.as_mut().filter(|_| same_case) {
                    view.edit.saved_generation = done.generation;
                }
                self.remove_autosave(&done.case_id);
                // From now on the case opens with the label just saved.
                if let Some(source) = self.source.as_mut() {
                    let source = Arc::make_mut(source);
                    if let Some(entry) = source.cases.iter_mut().find(|c| c.id == done.case_id)
                        && entry.ground_truth.as_ref() != Some(&done.path)
                    {
                        entry.corrected = Some(done.path.clone());
                        // A DICOM series' label: say which series it is, beside it.
                        if let Some(note) = &entry.series
                            && let Err(error) = crate::io::label_io::note_series(&done.path, note)
                        {
                            self.notice = Some(Notice::Error(format!("{error:#}")));
                        }
                    }
                }
                if let Some(sheet) = self.sheet_mut() {
                    crate::review::sheet::set_state(sheet, &done.case_id, ReviewState::Corrected);
                }
                self.notice = Some(Notice::Info(format!("label saved to {}", done.path.display())));
                if let Some(after) = self.edit.after_save.take() {
                    self.carry_out(after);
                }
            }
            (kind, Err(message)) => {
                self.edit.after_save = None;
                let what = if kind == WriteKind::Save {
                    "not saved"
                } else {
                    "autosave failed"
                };
                self.notice = Some(Notice::Error(format!("label {what}: {message}")));
            }
        }
    }

    pub(super) fn remove_autosave(&self, case_id: &str) {
        if let Some(path) = self.source.as_ref().and_then(|s| autosave_path(s, case_id)) {
            // Absent already is fine; anything else only means it will be offered again.
            let _ = std::fs::remove_file(path);
        }
    }
}
