//! The application state and its frame-by-frame UI.

use crate::loader::{LoadedCase, spawn_load};
use crate::slice_view::{CT_SOFT_TISSUE, Window, axial_slice, label_colour};
use eframe::egui;
use std::path::PathBuf;
use std::sync::mpsc;

/// What the app is showing.
enum State {
    Loading(mpsc::Receiver<Result<LoadedCase, String>>),
    Ready(Box<Viewer>),
    Failed(String),
}

/// One case on screen and the settings of its view.
struct Viewer {
    case: LoadedCase,
    slice: usize,
    window: Window,
    overlay: bool,
    opacity: f32,
    texture: Option<(TextureKey, egui::TextureHandle)>,
}

/// Everything the slice texture depends on: it is uploaded again only when this changes.
#[derive(Clone, Copy, PartialEq)]
struct TextureKey {
    slice: usize,
    window: (u32, u32),
    overlay: bool,
    opacity: u32,
}

/// The app.
pub struct Studio {
    state: State,
}

impl Studio {
    /// Starts loading `path` (or the demo task) in the background.
    pub fn new(ctx: &egui::Context, path: Option<PathBuf>) -> Self {
        let waker = ctx.clone();
        Self {
            state: State::Loading(spawn_load(path, move || waker.request_repaint())),
        }
    }

    fn poll_loading(&mut self) {
        if let State::Loading(receiver) = &self.state {
            match receiver.try_recv() {
                Ok(Ok(case)) => {
                    let window = if case.is_ct {
                        CT_SOFT_TISSUE
                    } else {
                        let stats = case.image.stats();
                        Window {
                            width: (stats.max - stats.min).max(1.0) as f32,
                            level: ((stats.max + stats.min) / 2.0) as f32,
                        }
                    };
                    let slice = best_slice(&case);
                    self.state = State::Ready(Box::new(Viewer {
                        case,
                        slice,
                        window,
                        overlay: true,
                        opacity: 0.45,
                        texture: None,
                    }));
                }
                Ok(Err(message)) => self.state = State::Failed(message),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    self.state = State::Failed("the loading thread stopped without an answer".into());
                }
            }
        }
    }
}

/// The slice with the most labelled voxels (the middle one without a label).
fn best_slice(case: &LoadedCase) -> usize {
    let [nx, ny, nz] = case.image.shape();
    let Some(label) = &case.label else { return nz / 2 };
    let per_slice = |z: usize| {
        label.voxels()[z * nx * ny..(z + 1) * nx * ny]
            .iter()
            .filter(|v| **v > 0.0)
            .count()
    };
    (0..nz).max_by_key(|z| per_slice(*z)).unwrap_or(nz / 2)
}

impl eframe::App for Studio {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.poll_loading();
        match &mut self.state {
            State::Loading(_) => {
                egui::CentralPanel::default().show(ui, |ui| {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label("Opening… (the first launch writes the demo task)");
                    });
                });
            }
            State::Failed(message) => {
                egui::CentralPanel::default().show(ui, |ui| {
                    ui.heading("Could not open");
                    ui.label(message.as_str());
                });
            }
            State::Ready(viewer) => viewer.ui(ui),
        }
    }
}

impl Viewer {
    fn ui(&mut self, ui: &mut egui::Ui) {
        let depth = self.case.image.shape()[2];
        egui::Panel::left("controls").default_size(240.0).show(ui, |ui| {
            ui.heading(&self.case.id);
            ui.label(self.case.source.display().to_string());
            let spacing = self.case.image.spacing_mm();
            let [nx, ny, nz] = self.case.image.shape();
            ui.label(format!("{nx} × {ny} × {nz} voxels"));
            ui.label(format!(
                "{:.2} × {:.2} × {:.2} mm",
                spacing[0], spacing[1], spacing[2]
            ));
            ui.separator();
            ui.add(egui::Slider::new(&mut self.slice, 0..=depth.saturating_sub(1)).text("axial slice"));
            ui.add(egui::Slider::new(&mut self.window.width, 1.0..=4000.0).text("window"));
            ui.add(egui::Slider::new(&mut self.window.level, -1000.0..=3000.0).text("level"));
            if self.case.label.is_some() {
                ui.separator();
                ui.checkbox(&mut self.overlay, "ground truth overlay");
                ui.add(egui::Slider::new(&mut self.opacity, 0.0..=1.0).text("opacity"));
                for (value, name) in self.case.label_names.iter().filter(|(v, _)| *v > 0) {
                    ui.horizontal(|ui| {
                        let (rect, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
                        ui.painter().rect_filled(rect, 2.0, label_colour(*value));
                        ui.label(format!("{value}: {name}"));
                    });
                }
            }
        });
        egui::CentralPanel::default().show(ui, |ui| {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y);
            if ui.ui_contains_pointer() && scroll.abs() > 0.0 {
                let step = if scroll > 0.0 { 1 } else { -1 };
                self.slice = self
                    .slice
                    .saturating_add_signed(step)
                    .min(depth.saturating_sub(1));
            }
            let texture = self.texture(ui.ctx());
            let [nx, ny, _] = self.case.image.shape();
            let spacing = self.case.image.spacing_mm();
            // Physical aspect ratio: width and height in millimetres.
            let size_mm = egui::vec2((nx as f64 * spacing[0]) as f32, (ny as f64 * spacing[1]) as f32);
            let available = ui.available_size();
            let scale = (available.x / size_mm.x).min(available.y / size_mm.y);
            ui.centered_and_justified(|ui| ui.image((texture.id(), size_mm * scale)));
        });
    }

    fn texture(&mut self, ctx: &egui::Context) -> egui::TextureHandle {
        let key = TextureKey {
            slice: self.slice,
            window: (self.window.width.to_bits(), self.window.level.to_bits()),
            overlay: self.overlay,
            opacity: self.opacity.to_bits(),
        };
        if let Some((cached, handle)) = &self.texture
            && *cached == key
        {
            return handle.clone();
        }
        let label = if self.overlay {
            self.case.label.as_ref()
        } else {
            None
        };
        let image = axial_slice(&self.case.image, label, self.slice, self.window, self.opacity);
        let handle = ctx.load_texture("axial", image, egui::TextureOptions::LINEAR);
        self.texture = Some((key, handle.clone()));
        handle
    }
}
