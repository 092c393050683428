//! The metrics panel: Dice, Jaccard, HD95, NSD, sensitivity and specificity of the prediction
//! against the ground truth, per class, for the case on screen and (on request) for every case
//! of the task; exported as CSV. Surface distances take seconds on a big CT, so every
//! computation runs on its own thread and the panel shows a spinner meanwhile.

use crate::common::label::{Label, label_to_volume};
use crate::io::source::Source;
use crate::viewer::case_view::CaseView;
use eframe::egui;
use engine::metrics::{
    CaseMetrics, DEFAULT_TOLERANCE_MM, LabelScheme, LabelStatistics, class_values, column_means,
    label_statistics, score_case,
};
use engine::volume::{Volume, read_nifti};
use std::collections::BTreeMap;
use std::sync::mpsc;

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
    /// Label statistics of the case on screen, with what they were computed from.
    pub statistics: Option<(MetricsKey, StatisticsResult)>,
    statistics_pending: Option<(MetricsKey, mpsc::Receiver<StatisticsResult>)>,
}

/// The label statistics of a case, per layer, or why there are none.
pub type StatisticsResult = Result<Vec<LayerStatistics>, String>;

/// The statistics of every label of one layer (ground truth, corrected label or prediction).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerStatistics {
    /// "ground truth", "corrected" or "prediction".
    pub layer: &'static str,
    /// One row per label present, ascending.
    pub labels: Vec<LabelStatistics>,
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
    pub fn update(&mut self, view: Option<&CaseView>, wake: impl Fn() + Send + Clone + 'static) {
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
        self.update_statistics(view, &wake);
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
        // Copy-on-write snapshots: a stroke while the metrics run copies only the chunks it
        // touches, never the whole label on the UI thread.
        let (truth, prediction) = (truth.clone(), prediction.clone());
        let geometry = view.case.image.geometry();
        let scheme = view.case.scheme.clone();
        let work = move || {
            let as_volume = |label: &Label| {
                label_to_volume(label, &geometry)
                    .ok_or_else(|| "the label is not on the scan's grid".to_string())
            };
            let volumes = (as_volume(&truth), as_volume(&prediction));
            // Let go of the snapshots before the long part: later strokes then copy nothing.
            drop((truth, prediction));
            let (truth, prediction) = (volumes.0?, volumes.1?);
            metrics_of(&prediction, &truth, &scheme)
        };
        self.pending = Some((key, spawn("metrics", wake, work)));
    }

    /// Collects finished label statistics and starts those of `view` when missing or stale.
    fn update_statistics(&mut self, view: Option<&CaseView>, wake: &(impl Fn() + Send + Clone + 'static)) {
        if let Some((key, receiver)) = &self.statistics_pending {
            match receiver.try_recv() {
                Ok(result) => {
                    self.statistics = Some((*key, result));
                    self.statistics_pending = None;
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.statistics = Some((*key, Err("the statistics thread stopped".into())));
                    self.statistics_pending = None;
                }
            }
        }
        let Some(view) = view else {
            self.statistics = None;
            return;
        };
        let key = MetricsKey {
            ticket: view.ticket,
            generation: view.edit.generation,
        };
        let up_to_date = self.statistics.as_ref().is_some_and(|(k, _)| *k == key);
        if up_to_date || self.statistics_pending.is_some() || view.edit.is_painting() {
            return;
        }
        let truth_layer = if view.case.corrected {
            "corrected"
        } else {
            "ground truth"
        };
        // Copy-on-write snapshots, as for the metrics.
        let layers: Vec<(&'static str, Label)> = [
            (truth_layer, view.case.ground_truth.clone()),
            ("prediction", view.case.prediction.clone()),
        ]
        .into_iter()
        .filter_map(|(name, label)| Some((name, label?)))
        .collect();
        let image = std::sync::Arc::clone(&view.case.image);
        let work = move || {
            let geometry = image.geometry();
            layers
                .into_iter()
                .map(|(layer, label)| {
                    let volume = label_to_volume(&label, &geometry)
                        .ok_or_else(|| format!("the {layer} is not on the scan's grid"))?;
                    drop(label);
                    let labels = label_statistics(&volume, &image, 0).map_err(|e| format!("{layer}: {e}"))?;
                    Ok(LayerStatistics { layer, labels })
                })
                .collect()
        };
        self.statistics_pending = Some((key, spawn("label-statistics", wake.clone(), work)));
    }

    /// The label statistics of the case on screen, when they are up to date with it.
    pub fn statistics_for(&self, view: &CaseView) -> Option<&[LayerStatistics]> {
        match &self.statistics {
            Some((key, Ok(layers)))
                if key.ticket == view.ticket && key.generation == view.edit.generation =>
            {
                Some(layers)
            }
            _ => None,
        }
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

/// Column headers, in the order of `engine::metrics::class_values`.
pub const COLUMNS: [&str; 6] = ["Dice", "Jaccard", "HD95 mm", "NSD", "Sens.", "Spec."];

fn format_value(value: Option<f64>, column: usize) -> String {
    match value {
        None => "—".into(),
        Some(v) if COLUMNS[column].ends_with("mm") => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
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

/// Column headers of the label statistics.
pub const STATISTICS_COLUMNS: [&str; 8] = [
    "Layer",
    "Label",
    "Voxels",
    "Volume mL",
    "Mean",
    "SD",
    "Min",
    "Max",
];

/// The label statistics of the case on screen: voxels, volume and intensity inside, per layer.
fn statistics_ui(
    ui: &mut egui::Ui,
    panel: &MetricsPanel,
    view: &CaseView,
    label_names: &BTreeMap<u32, String>,
) {
    if view.case.ground_truth.is_none() && view.case.prediction.is_none() {
        return;
    }
    ui.separator();
    ui.heading("Label statistics");
    match &panel.statistics {
        Some((key, Ok(layers))) if key.ticket == view.ticket => {
            egui::Grid::new("label-statistics")
                .striped(true)
                .num_columns(STATISTICS_COLUMNS.len())
                .show(ui, |ui| {
                    for column in STATISTICS_COLUMNS {
                        ui.strong(column);
                    }
                    ui.end_row();
                    for layer in layers {
                        for row in statistics_rows(layer, label_names) {
                            for cell in row {
                                ui.monospace(cell);
                            }
                            ui.end_row();
                        }
                    }
                });
            let non_finite: u64 = layers.iter().flat_map(|l| &l.labels).map(|l| l.non_finite).sum();
            if non_finite > 0 {
                ui.weak(format!(
                    "{non_finite} voxel(s) with a NaN or infinite intensity are left out of mean, SD, min and max"
                ));
            }
            ui.weak("SD is the sample SD (n − 1); volume from the scan's voxel size.");
        }
        Some((key, Err(message))) if key.ticket == view.ticket => {
            ui.colored_label(ui.visuals().error_fg_color, message);
        }
        _ => {}
    }
    if panel.statistics_for(view).is_none() {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("computing…");
        });
    }
}

/// The rows of one layer's statistics as text, in [`STATISTICS_COLUMNS`] order.
pub fn statistics_rows(layer: &LayerStatistics, label_names: &BTreeMap<u32, String>) -> Vec<[String; 8]> {
    let number = |value: Option<f64>| value.map_or_else(|| "—".to_string(), |v| format!("{v:.1}"));
    layer
        .labels
        .iter()
        .map(|label| {
            let name = label_names
                .get(&label.label)
                .map_or_else(|| label.label.to_string(), |n| format!("{} {n}", label.label));
            [
                layer.layer.to_string(),
                name,
                label.voxels.to_string(),
                format!("{:.3}", label.volume_ml),
                number(label.mean),
                number(label.sd),
                number(label.min),
                number(label.max),
            ]
        })
        .collect()
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
    if let Some(view) = view {
        statistics_ui(ui, panel, view, label_names);
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
