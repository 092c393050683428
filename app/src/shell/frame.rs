//! One frame of the app: menu bar, status line, case list, display controls, the three views and
//! the help window, then the commands they sent.

use super::shortcuts::{help_window, read_shortcuts};
use super::{Command, Notice, Studio, Tab};
use crate::io::source::OpenRequest;
use crate::model::activations_panel::activations_panel_ui;
use crate::model::metrics_panel::metrics_panel_ui;
use crate::model::panels::{ModelCommand, training_panel_ui};
use crate::review::case_list::{ListStatus, case_list_ui};
use crate::viewer::command::ViewCommand;
use crate::viewer::controls::controls_ui;
use crate::viewer::render::Heat;
use crate::viewer::views::{HeatLayers, views_ui};
use eframe::egui;
use std::sync::Arc;

const SIDE_PANEL_WIDTH: f32 = 300.0;

impl Studio {
    /// Draws the whole app into `ui` and applies what the user asked for.
    pub fn frame_ui(&mut self, ui: &mut egui::Ui) {
        self.poll();
        self.edit_frame(ui.ctx());
        let mut commands = read_shortcuts(ui.ctx());
        egui::Panel::top("menu").show(ui, |ui| self.menu_ui(ui, &mut commands));
        egui::Panel::bottom("status").show(ui, |ui| self.status_ui(ui));
        egui::Panel::left("cases")
            .default_size(SIDE_PANEL_WIDTH)
            .show(ui, |ui| self.cases_ui(ui, &mut commands));
        if self.source.is_some() {
            egui::Panel::right("controls")
                .default_size(SIDE_PANEL_WIDTH)
                .show(ui, |ui| {
                    ui.horizontal_wrapped(|ui| {
                        for tab in Tab::ALL {
                            if ui.selectable_label(self.tab == tab, tab.name()).clicked() {
                                commands.push(Command::ShowTab(tab));
                            }
                        }
                    });
                    ui.separator();
                    egui::ScrollArea::vertical().show(ui, |ui| self.tab_ui(ui, &mut commands));
                });
        }
        let busy = self.is_busy();
        egui::CentralPanel::default().show(ui, |ui| match &self.view {
            Some(view) => {
                let shape = view.case.image.shape();
                let activations = &mut self.jobs.activations;
                // An activation map shown wins over the uncertainty layer.
                let uncertainty = view
                    .case
                    .uncertainty
                    .as_ref()
                    .filter(|_| self.settings.overlays.uncertainty)
                    .map(|map| Heat::uncertainty(Arc::clone(map)));
                let heat = HeatLayers {
                    maps: [
                        activations.heat(0, shape).or(uncertainty),
                        activations
                            .side_by_side
                            .then(|| activations.heat(1, shape))
                            .flatten(),
                    ],
                    names: [activations.model_name(0), activations.model_name(1)],
                    side_by_side: activations.side_by_side,
                    generation: activations.generation,
                };
                let mut requests = Vec::new();
                views_ui(
                    ui,
                    &mut self.views,
                    view,
                    &self.settings.overlays,
                    &self.edit.brush,
                    &heat,
                    &mut requests,
                );
                commands.extend(requests.into_iter().map(Command::View));
            }
            None if busy => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Opening… (the first launch writes the demo task)");
                });
            }
            None => {
                ui.heading("Nothing open");
                ui.label("Use File → Open task folder…, Open scan… or Open DICOM folder…");
            }
        });
        help_window(ui.ctx(), &mut self.show_help);
        super::edit::confirm_ui(ui.ctx(), self.edit.confirm.as_ref(), &mut commands);
        if !commands.is_empty() {
            // What the commands change is drawn in the next frame.
            ui.ctx().request_repaint();
        }
        for command in commands {
            self.apply(command);
        }
    }

    fn tab_ui(&mut self, ui: &mut egui::Ui, commands: &mut Vec<Command>) {
        let label_names = self
            .source
            .as_ref()
            .map(|s| s.label_names.clone())
            .unwrap_or_default();
        match self.tab {
            Tab::Display | Tab::Edit => {
                let Some(view) = &self.view else {
                    ui.weak("No case open.");
                    return;
                };
                if self.tab == Tab::Display {
                    let mut requests = Vec::new();
                    controls_ui(
                        ui,
                        view,
                        &self.settings.window_presets,
                        &self.settings.overlays,
                        &label_names,
                        &mut requests,
                    );
                    commands.extend(requests.into_iter().map(Command::View));
                } else {
                    let has_ground_truth_file = self
                        .selected
                        .and_then(|i| self.source.as_ref()?.cases.get(i)?.ground_truth.as_ref())
                        .is_some();
                    let context = crate::annotation::panel::PanelContext {
                        label_names: &label_names,
                        has_ground_truth_file,
                        writing: self.edit.is_writing(),
                        edit_job: self.edit_job.as_ref().map(|job| job.what),
                        overlays: &self.settings.overlays,
                    };
                    let mut requests = Vec::new();
                    crate::annotation::panel::annotation_panel_ui(
                        ui,
                        view,
                        &self.edit.brush,
                        &context,
                        &mut requests,
                    );
                    commands.extend(requests.into_iter().map(Command::Edit));
                }
            }
            Tab::Metrics => {
                let mut requests = Vec::new();
                metrics_panel_ui(ui, &self.metrics, self.view.as_ref(), &label_names, &mut requests);
                commands.extend(
                    requests
                        .into_iter()
                        .map(|r| Command::Model(ModelCommand::Metrics(r))),
                );
            }
            Tab::Activations => {
                let mut requests = Vec::new();
                activations_panel_ui(ui, &mut self.jobs, self.view.is_some(), &mut requests);
                commands.extend(requests.into_iter().map(Command::Model));
            }
            Tab::Training => {
                let corrected = self
                    .source
                    .as_ref()
                    .map_or(0, |s| s.cases.iter().filter(|c| c.corrected.is_some()).count());
                let mut requests = Vec::new();
                training_panel_ui(ui, &self.jobs, corrected, &mut requests);
                commands.extend(requests.into_iter().map(Command::Model));
            }
        }
    }

    fn menu_ui(&mut self, ui: &mut egui::Ui, commands: &mut Vec<Command>) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui.button("Open task folder…").clicked() {
                    commands.push(Command::PickTaskFolder);
                }
                if ui.button("Open scan…").clicked() {
                    commands.push(Command::PickScan);
                }
                if ui.button("Open DICOM folder…").clicked() {
                    commands.push(Command::PickDicomFolder);
                }
                if ui.button("Open demo task").clicked() {
                    commands.push(Command::Open(OpenRequest::default()));
                }
                ui.menu_button("Recent", |ui| {
                    if self.settings.recent.is_empty() {
                        ui.weak("nothing yet");
                    }
                    for request in &self.settings.recent {
                        if ui.button(request.title()).clicked() {
                            commands.push(Command::Open(request.clone()));
                        }
                    }
                });
                ui.separator();
                let export = ui.add_enabled(self.view.is_some(), egui::Button::new("Export view as PNG…"));
                if export.clicked() {
                    commands.push(Command::PickExportPath);
                }
                if ui.button("Quit").clicked() {
                    ui.send_viewport_cmd(egui::ViewportCommand::Close);
                }
            });
            ui.menu_button("View", |ui| {
                for axis in crate::common::slice_geometry::Axis::ALL {
                    if ui
                        .button(format!("Maximise {}", axis.name().to_lowercase()))
                        .clicked()
                    {
                        commands.push(Command::View(ViewCommand::ToggleMaximise(axis)));
                    }
                }
                if ui.button("Maximise 3D").clicked() {
                    commands.push(Command::View(ViewCommand::ToggleMaximise3d));
                }
                if ui.button("All views").clicked() {
                    commands.push(Command::ShowAllViews);
                }
                if ui.button("Reset zoom").clicked() {
                    commands.push(Command::ResetZoom);
                }
            });
            if ui.button("Help").clicked() {
                commands.push(Command::ToggleHelp);
            }
        });
    }

    fn status_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if let Some(hover) = &self.views.hover {
                let [x, y, z] = hover.voxel;
                let [wx, wy, wz] = hover.world_mm;
                let mut text = format!(
                    "voxel ({x}, {y}, {z})   world ({wx:.1}, {wy:.1}, {wz:.1}) mm   intensity {:.1}",
                    hover.intensity
                );
                if let Some(label) = hover.ground_truth {
                    text.push_str(&format!("   ground truth {label}"));
                }
                if let Some(label) = hover.prediction {
                    text.push_str(&format!("   prediction {label}"));
                }
                ui.monospace(text);
            } else if let Some(view) = &self.view {
                let [x, y, z] = view.crosshair;
                ui.monospace(format!("crosshair ({x}, {y}, {z})"));
            }
            ui.separator();
            match &self.notice {
                Some(Notice::Error(message)) => {
                    ui.colored_label(ui.visuals().error_fg_color, message);
                    if ui.small_button("Dismiss").clicked() {
                        self.notice = None;
                    }
                }
                Some(Notice::Info(message)) => {
                    ui.label(message);
                }
                None => {}
            }
        });
    }

    fn cases_ui(&mut self, ui: &mut egui::Ui, commands: &mut Vec<Command>) {
        let Some(source) = self.source.clone() else {
            if self.opening.is_some() {
                ui.spinner();
            }
            return;
        };
        let status = ListStatus {
            selected: self.selected,
            loading: self.loading_case.map(|(_, index)| index),
        };
        let mut filter = std::mem::take(&mut self.filter);
        let mut requests = Vec::new();
        if let Some(sheet) = self.sheet_mut() {
            case_list_ui(ui, &source, sheet, &mut filter, &status, &mut requests);
        }
        self.filter = filter;
        commands.extend(requests.into_iter().map(Command::Cases));
    }
}
