//! The metrics panel: Dice, Jaccard, HD95, NSD, sensitivity and specificity of the prediction
//! against the ground truth, per class, for the case on screen and (on request) for every case
//! of the task; exported as CSV. Surface distances take seconds on a big CT, so every
//! computation runs on its own thread and the panel shows a spinner meanwhile.

use crate::io::source::Source;
use crate::viewer::case_view::CaseView;
use eframe::egui;
use engine::metrics::{CaseMetrics, ClassMetrics, DEFAULT_TOLERANCE_MM, LabelScheme, score_case};
use engine::volume::{Volume, read_nifti};
use std::collections::BTreeMap;
use std::sync::{Arc, mpsc};

/// What the metrics of the case on screen were computed from: a new load or an edit of the
/// label makes them stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsKey {
    /// The case load.
    pub ticket: u64,
    /// The label's edit generation.
    pub generation: u64,
}

/// One row of the all-cases table: a case and its metrics, or why there are none.
pub type CaseResult = (String, Result<CaseMetrics, String>);

/// The panel's state.
#[derive(Default)]
pub struct MetricsPanel {
    /// Metrics of the case on screen, with what they were computed from.
    pub current: Option<(MetricsKey, Result<CaseMetrics, String>)>,
    pending: Option<(MetricsKey, mpsc::Receiver<Result<CaseMetrics, String>>)>,
    /// Every case with a ground truth and a prediction, in task order.
    pub all: Vec<CaseResult>,
    /// Cases still to come from the all-cases job.
    pub all_remaining: usize,
    all_job: Option<mpsc::Receiver<CaseResult>>,
}

impl MetricsPanel {
    /// Drops the all-cases table and any job still filling it (predictions changed).
    pub fn forget_all(&mut self) {
        self.all.clear();
        self.all_job = None;
        self.all_remaining = 0;
    }

    /// The metrics of the case on screen, when they are up to date with it.
    pub fn current_for(&self, view: &CaseView) -> Option<&CaseMetrics> {
        match &self.current {
            Some((key, Ok(metrics)))
                if key.ticket == view.ticket && key.generation == view.edit.generation =>
            {
                Some(metrics)
            }
            _ => None,
        }
    }

    /// Whether a computation is running.
    pub fn is_busy(&self) -> bool {
        self.pending.is_some() || self.all_job.is_some()
    }

    /// Collects finished work and starts the metrics of `view` when they are missing or stale.
    /// At most one current-case computation runs at a time; a stale one finishes first.
    pub fn update(&mut self, view: Option<&CaseView>, wake: impl Fn() + Send + 'static) {
        if let Some((key, receiver)) = &self.pending {
            match receiver.try_recv() {
                Ok(result) => {
                    self.current = Some((*key, result));
                    self.pending = None;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.current = Some((*key, Err("the metrics thread stopped".into())));
                    self.pending = None;
                }
            }
        }
        if let Some(receiver) = &self.all_job {
            loop {
                match receiver.try_recv() {
                    Ok(row) => {
                        self.all.push(row);
                        self.all_remaining = self.all_remaining.saturating_sub(1);
                    }
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        self.all_job = None;
                        self.all_remaining = 0;
                        break;
                    }
                }
            }
        }
        let Some(view) = view else {
            self.current = None;
            return;
        };
        let (Some(truth), Some(prediction)) = (&view.case.ground_truth, &view.case.prediction) else {
            self.current = None;
            return;
        };
        let key = MetricsKey {
            ticket: view.ticket,
            generation: view.edit.generation,
        };
        let up_to_date = self.current.as_ref().is_some_and(|(k, _)| *k == key);
        if up_to_date || self.pending.is_some() || view.edit.is_painting() {
            return;
        }
        let (truth, prediction) = (Arc::clone(truth), Arc::clone(prediction));
        let scheme = view.case.scheme.clone();
        self.pending = Some((
            key,
            spawn("metrics", wake, move || metrics_of(&prediction, &truth, &scheme)),
        ));
    }

    /// Starts computing every case of `source` that has a ground truth and a prediction, from
    /// the files in their own geometry (a corrected label counts as the ground truth).
    pub fn compute_all(&mut self, source: &Source, wake: impl Fn() + Send + 'static) {
        let cases: Vec<_> = source
            .cases
            .iter()
            .filter_map(|c| Some((c.id.clone(), c.label_shown()?.clone(), c.prediction.clone()?)))
            .collect();
        self.all.clear();
        self.all_remaining = cases.len();
        let (sender, receiver) = mpsc::sync_channel(cases.len().max(1));
        let spawned = std::thread::Builder::new()
            .name("metrics-all".into())
            .spawn(move || {
                for (id, truth, prediction) in cases {
                    let result = (|| -> anyhow::Result<CaseMetrics> {
                        let scheme = crate::io::loader::prediction_scheme(Some(&prediction));
                        let truth = read_nifti(&truth)?.volume.select_channel(0);
                        let prediction = read_nifti(&prediction)?.volume.select_channel(0);
                        Ok(score_case(&prediction, &truth, &scheme, DEFAULT_TOLERANCE_MM)?)
                    })()
                    .map_err(|e| format!("{e:#}"));
                    if sender.send((id, result)).is_err() {
                        return; // the panel went away or asked again
                    }
                    wake();
                }
            });
        match spawned {
            Ok(_) => self.all_job = Some(receiver),
            Err(error) => {
                self.all_remaining = 0;
                self.all
                    .push(("all cases".into(), Err(format!("cannot start a thread: {error}"))));
            }
        }
    }
}

/// Runs `work` on a named thread; its answer comes back over the returned channel.
fn spawn<T: Send + 'static>(
    name: &str,
    wake: impl Fn() + Send + 'static,
    work: impl FnOnce() -> T + Send + 'static,
) -> mpsc::Receiver<T> {
    let (sender, receiver) = mpsc::sync_channel(1);
    // A thread that cannot start drops the sender: the caller sees "disconnected".
    let _ = std::thread::Builder::new().name(name.into()).spawn(move || {
        let _ = sender.send(work());
        wake();
    });
    receiver
}

/// Column headers, in the order of [`class_values`].
pub const COLUMNS: [&str; 6] = ["Dice", "Jaccard", "HD95 mm", "NSD", "Sens.", "Spec."];

/// The six metrics of a class in [`COLUMNS`] order.
pub fn class_values(class: &ClassMetrics) -> [Option<f64>; 6] {
    [
        class.dice,
        class.jaccard,
        class.hd95_mm,
        class.nsd,
        class.sensitivity,
        class.specificity,
    ]
}

fn format_value(value: Option<f64>, column: usize) -> String {
    match value {
        None => "—".into(),
        Some(v) if COLUMNS[column].ends_with("mm") => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// The metrics as CSV: one row per case and class; undefined values are empty.
pub fn metrics_csv(rows: &[(String, &CaseMetrics)], label_names: &BTreeMap<u32, String>) -> String {
    let mut csv = String::from(
        "case,label,name,dice,jaccard,hd95_mm,nsd,sensitivity,specificity,prediction_voxels,ground_truth_voxels,nsd_tolerance_mm\n",
    );
    for (case, metrics) in rows {
        for class in &metrics.classes {
            let values: Vec<String> = class_values(class)
                .iter()
                .map(|v| v.map(|v| format!("{v}")).unwrap_or_default())
                .collect();
            let name = label_names.get(&class.label).cloned().unwrap_or_default();
            csv.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                csv_field(case),
                class.label,
                csv_field(&name),
                values.join(","),
                class.prediction_voxels,
                class.ground_truth_voxels,
                metrics.tolerance_mm
            ));
        }
    }
    csv
}

/// Quotes a field that holds a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Mean of each column over the classes of every case (undefined values and classes absent
/// from both prediction and ground truth left out).
pub fn column_means(rows: &[&CaseMetrics]) -> [Option<f64>; 6] {
    let mut means = [None; 6];
    for (column, mean) in means.iter_mut().enumerate() {
        let values: Vec<f64> = rows
            .iter()
            .flat_map(|m| &m.classes)
            .filter(|c| !c.both_empty)
            .filter_map(|c| class_values(c)[column])
            .collect();
        if !values.is_empty() {
            *mean = Some(values.iter().sum::<f64>() / values.len() as f64);
        }
    }
    means
}

/// What the panel asks the app to do.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsRequest {
    /// Compute every case of the task.
    ComputeAll,
    /// Show the save dialog for the CSV.
    ExportCsv,
    /// Show this case.
    ShowCase(String),
}

fn table_ui(ui: &mut egui::Ui, id: &str, metrics: &CaseMetrics, label_names: &BTreeMap<u32, String>) {
    egui::Grid::new(id).striped(true).num_columns(7).show(ui, |ui| {
        ui.strong("Label");
        for column in COLUMNS {
            ui.strong(column);
        }
        ui.end_row();
        for class in &metrics.classes {
            let name = label_names
                .get(&class.label)
                .map_or_else(|| class.label.to_string(), |n| format!("{} {n}", class.label));
            crate::viewer::overlays::swatch_label_ui(
                ui,
                crate::viewer::render::label_colour(class.label),
                &name,
            );
            for (column, value) in class_values(class).into_iter().enumerate() {
                ui.monospace(format_value(value, column));
            }
            ui.end_row();
        }
    });
}

/// Draws the panel.
pub fn metrics_panel_ui(
    ui: &mut egui::Ui,
    panel: &MetricsPanel,
    view: Option<&CaseView>,
    label_names: &BTreeMap<u32, String>,
    requests: &mut Vec<MetricsRequest>,
) {
    ui.heading("This case");
    match view {
        None => {
            ui.weak("No case open.");
        }
        Some(view) if view.case.ground_truth.is_none() || view.case.prediction.is_none() => {
            ui.weak("Metrics need a ground truth and a prediction; this case lacks one.");
            ui.weak("Train a model (Training tab) to predict every case, or put predictions in the task's labelsPred/.");
        }
        Some(view) => {
            let stale = panel
                .current
                .as_ref()
                .is_none_or(|(key, _)| key.ticket != view.ticket || key.generation != view.edit.generation);
            match &panel.current {
                Some((key, Ok(metrics))) if key.ticket == view.ticket => {
                    table_ui(ui, "case-metrics", metrics, label_names);
                    ui.weak(format!(
                        "NSD tolerance {} mm; HD95 of an empty mask = image diagonal {:.0} mm",
                        metrics.tolerance_mm, metrics.diagonal_mm
                    ));
                }
                Some((key, Err(message))) if key.ticket == view.ticket => {
                    ui.colored_label(ui.visuals().error_fg_color, message);
                }
                _ => {}
            }
            if stale {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("computing…");
                });
            }
        }
    }
    ui.separator();
    ui.heading("All cases");
    ui.horizontal(|ui| {
        let running = panel.all_job.is_some();
        if ui
            .add_enabled(!running, egui::Button::new("Compute all"))
            .on_hover_text("Every case with a ground truth and a prediction, in the scans' own geometry")
            .clicked()
        {
            requests.push(MetricsRequest::ComputeAll);
        }
        let can_export = !panel.all.is_empty() || view.is_some_and(|v| panel.current_for(v).is_some());
        if ui
            .add_enabled(can_export, egui::Button::new("Export CSV…"))
            .on_hover_text("All cases when computed, else this case")
            .clicked()
        {
            requests.push(MetricsRequest::ExportCsv);
        }
        if running {
            ui.spinner();
            ui.label(format!("{} to go", panel.all_remaining));
        }
    });
    if panel.all.is_empty() {
        return;
    }
    let ok: Vec<&CaseMetrics> = panel.all.iter().filter_map(|(_, r)| r.as_ref().ok()).collect();
    let means = column_means(&ok);
    egui::ScrollArea::both()
        .id_salt("all-cases")
        .max_height(300.0)
        .show(ui, |ui| {
            egui::Grid::new("all-metrics")
                .striped(true)
                .num_columns(7)
                .show(ui, |ui| {
                    ui.strong("Case / label");
                    for column in COLUMNS {
                        ui.strong(column);
                    }
                    ui.end_row();
                    for (id, result) in &panel.all {
                        match result {
                            Ok(metrics) => {
                                for class in &metrics.classes {
                                    if ui.link(format!("{id} · {}", class.label)).clicked() {
                                        requests.push(MetricsRequest::ShowCase(id.clone()));
                                    }
                                    for (column, value) in class_values(class).into_iter().enumerate() {
                                        ui.monospace(format_value(value, column));
                                    }
                                    ui.end_row();
                                }
                            }
                            Err(message) => {
                                ui.label(id);
                                ui.colored_label(ui.visuals().error_fg_color, message);
                                ui.end_row();
                            }
                        }
                    }
                    ui.strong(format!("mean of {}", ok.len()));
                    for (column, value) in means.into_iter().enumerate() {
                        ui.strong(format_value(value, column));
                    }
                    ui.end_row();
                });
        });
}

/// The metrics of a prediction against a ground truth on the same grid under the prediction's
/// label scheme, at the default NSD tolerance, with errors as messages.
pub fn metrics_of(prediction: &Volume, truth: &Volume, scheme: &LabelScheme) -> Result<CaseMetrics, String> {
    score_case(prediction, truth, scheme, DEFAULT_TOLERANCE_MM).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::volume::Affine;

    /// Every label as it is.
    const AS_IS: LabelScheme = LabelScheme::Classes(Vec::new());

    fn cube(shape: [usize; 3], from: usize, to: usize) -> Volume {
        let [nx, ny, nz] = shape;
        let mut voxels = vec![0.0f32; nx * ny * nz];
        for z in from..to {
            for y in from..to {
                for x in from..to {
                    voxels[x + nx * (y + ny * z)] = 1.0;
                }
            }
        }
        Volume::new(shape, 1, voxels, Affine::identity()).expect("volume")
    }

    #[test]
    fn csv_rows_hold_the_values_of_each_class() {
        // A 4³ cube predicted as the 3³ cube in its corner: Dice = 2·27/(27+64) by hand.
        let truth = cube([8, 8, 8], 2, 6);
        let prediction = cube([8, 8, 8], 2, 5);
        let metrics = metrics_of(&prediction, &truth, &AS_IS).expect("metrics");
        let names = BTreeMap::from([(1, "organ, big".to_string())]);
        let csv = metrics_csv(&[("case_1".into(), &metrics)], &names);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2, "{csv}");
        assert!(lines[1].starts_with("case_1,1,\"organ, big\","), "{csv}");
        let after_name = lines[1].split("\",").nth(1).expect("fields");
        let fields: Vec<&str> = after_name.split(',').collect();
        let dice: f64 = fields[0].parse().expect("dice");
        assert!((dice - 54.0 / 91.0).abs() < 1e-9, "dice {dice}");
        let jaccard: f64 = fields[1].parse().expect("jaccard");
        assert!((jaccard - 27.0 / 64.0).abs() < 1e-9, "jaccard {jaccard}");
        let sensitivity: f64 = fields[4].parse().expect("sensitivity");
        assert!((sensitivity - 27.0 / 64.0).abs() < 1e-9);
        assert_eq!(fields[6], "27");
        assert_eq!(fields[7], "64");
    }

    #[test]
    fn means_leave_undefined_values_out() {
        let truth = cube([8, 8, 8], 2, 6);
        let perfect = metrics_of(&truth, &truth, &AS_IS).expect("metrics");
        // The 4³ cube shifted by one voxel on each axis: overlap 3³, 37 false positives among
        // 512 − 64 = 448 true negatives and false positives.
        let shifted = metrics_of(&cube([8, 8, 8], 3, 7), &truth, &AS_IS).expect("metrics");
        // Label 1 absent from both: flagged, and even its specificity (1) stays out of the means.
        let one_class = LabelScheme::first_classes(1);
        let empty = metrics_of(&cube([8, 8, 8], 0, 0), &cube([8, 8, 8], 0, 0), &one_class).expect("metrics");
        assert!(empty.classes.len() == 1 && empty.classes[0].both_empty);
        let means = column_means(&[&perfect, &shifted, &empty]);
        let dice = (1.0 + 54.0 / 128.0) / 2.0;
        assert!(means[0].is_some_and(|m| (m - dice).abs() < 1e-9), "{means:?}");
        let specificity = (1.0 + 411.0 / 448.0) / 2.0;
        assert!(
            means[5].is_some_and(|m| (m - specificity).abs() < 1e-9),
            "{means:?}"
        );
        assert_eq!(column_means(&[]), [None; 6]);
    }
}
