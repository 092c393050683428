//! One frame of the app: menu bar, status line, case list, display controls, the three views and
//! the help window, then the commands they sent.

use crate::case_list::{ListStatus, case_list_ui};
use crate::controls::controls_ui;
use crate::metrics_panel::metrics_panel_ui;
use crate::model_ui::{ModelCommand, activations_panel_ui, training_panel_ui};
use crate::shortcuts::{help_window, read_shortcuts};
use crate::source::OpenRequest;
use crate::studio::Tab;
use crate::studio::{Command, Notice, Studio};
use crate::views::{HeatLayers, views_ui};
use eframe::egui;

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
        egui::CentralPanel::default().show(ui, |ui| match &mut self.view {
            Some(view) => {
                let shape = view.case.image.shape();
                let activations = &mut self.jobs.activations;
                let heat = HeatLayers {
                    maps: [
                        activations.heat(0, shape),
                        activations
                            .side_by_side
                            .then(|| activations.heat(1, shape))
                            .flatten(),
                    ],
                    names: [activations.model_name(0), activations.model_name(1)],
                    side_by_side: activations.side_by_side,
                    generation: activations.generation,
                };
                views_ui(
                    ui,
                    &mut self.views,
                    view,
                    &self.settings.overlays,
                    &self.edit.brush,
                    &heat,
                    &mut commands,
                );
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
        crate::annotation_ui::confirm_ui(ui.ctx(), self.edit.confirm.as_ref(), &mut commands);
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
                let Some(view) = &mut self.view else {
                    ui.weak("No case open.");
                    return;
                };
                if self.tab == Tab::Display {
                    controls_ui(
                        ui,
                        view,
                        &self.settings.window_presets,
                        &mut self.settings.overlays,
                        &label_names,
                        commands,
                    );
                } else {
                    let has_ground_truth_file = self
                        .selected
                        .and_then(|i| self.source.as_ref()?.cases.get(i)?.ground_truth.as_ref())
                        .is_some();
                    let context = crate::annotation_ui::PanelContext {
                        label_names: &label_names,
                        has_ground_truth_file,
                        writing: self.edit.is_writing(),
                    };
                    crate::annotation_ui::annotation_panel_ui(
                        ui,
                        view,
                        &mut self.edit.brush,
                        &context,
                        commands,
                    );
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
                activations_panel_ui(ui, &mut self.jobs, self.view.is_some(), commands);
            }
            Tab::Training => {
                let corrected = self
                    .source
                    .as_ref()
                    .map_or(0, |s| s.cases.iter().filter(|c| c.corrected.is_some()).count());
                training_panel_ui(ui, &mut self.jobs, corrected, commands);
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
                for axis in crate::slice_view::Axis::ALL {
                    if ui
                        .button(format!("Maximise {}", axis.name().to_lowercase()))
                        .clicked()
                    {
                        commands.push(Command::ToggleMaximise(axis));
                    }
                }
                if ui.button("All three views").clicked() {
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
        if let Some(sheet) = self.sheet_mut() {
            case_list_ui(ui, &source, sheet, &mut filter, &status, commands);
        }
        self.filter = filter;
    }
}
