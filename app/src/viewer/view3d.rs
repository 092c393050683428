//! The 3D view in the fourth quadrant: the surfaces of the label (ground truth or corrected) and
//! of the prediction, each label in its legend colour, lit and smooth. Drag rotates, the wheel
//! zooms, right-drag pans, "Reset" goes back to the front view; the crosshair is marked, and a
//! click on a surface moves the crosshair there.
//!
//! Surfaces are extracted by the engine (`engine::mesh`) on the view's own thread, so the planes
//! never wait for them. On eframe's wgpu renderer the same thread uploads them to the GPU and
//! each frame draws them with a paint callback ([`crate::viewer::surface_gpu`]); a click and the
//! crosshair's marker are answered by casting rays on the thread. On glow the thread draws the
//! picture with the CPU rasteriser of [`crate::viewer::surface_render`] instead. After an edit
//! only the label's surfaces are made again, once the stroke has ended.

use crate::common::label::Label;
use crate::viewer::case_view::CaseView;
use crate::viewer::command::ViewCommand;
use crate::viewer::render::OverlaySettings;
use crate::viewer::surface_gpu::{DrawUniforms, GpuMesh, SurfaceCallback};
use crate::viewer::surface_render::{
    BACKGROUND, Camera, Projection, Rendered, Scene, hidden_by, pick_by_ray, render,
};
use eframe::egui::{
    self, Align, Align2, Color32, FontId, Layout, Rect, Sense, Stroke, UiBuilder, pos2, vec2,
};
use eframe::egui_wgpu;
use engine::mesh::{Mesh, SurfaceOptions, label_surface};
use engine::volume::Affine;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

/// Radians per point dragged.
const ROTATE_PER_POINT: f64 = 0.01;
/// Zoom factor per wheel line.
const ZOOM_PER_LINE: f64 = 1.15;
/// Triangles per surface drawn by a software renderer (Mesa's lavapipe, or the CPU rasteriser
/// on glow): a larger surface is drawn clustered to this many (`cargo bench -p app --bench
/// view3d`: 2.7 M triangles of a 512 × 512 × 400 organ and its lesions become 133 k, drawn at
/// 46–55 frames/s by lavapipe on two cores, where the full surfaces take 5–6). On wgpu, clicks
/// and the crosshair marker use the full surface (ray casts); on the CPU, the drawn picture's
/// depth.
pub const SOFTWARE_TRIANGLES: usize = 90_000;
/// Zoom limits.
const ZOOM_RANGE: (f64, f64) = (0.2, 20.0);
/// The largest picture side drawn, pixels (a bigger view is drawn at this size and stretched).
const MAX_SIDE: usize = 1024;
const MARKER_COLOUR: Color32 = Color32::from_rgb(240, 220, 60);

/// The two surface layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SurfaceLayer {
    /// The ground truth, or the user's corrected label.
    Label = 0,
    /// The model's prediction.
    Prediction = 1,
}

/// What the view's thread is asked to do.
enum Request {
    /// Make the surfaces of every label in `label` (none: the layer is empty).
    Extract {
        layer: SurfaceLayer,
        version: u64,
        label: Option<Label>,
        world_from_voxel: Affine,
        cancel: Arc<AtomicBool>,
    },
    /// Draw these labels' surfaces of these layers, in these colours.
    Draw {
        projection: Projection,
        size: [usize; 2],
        labels: Vec<(SurfaceLayer, u32, Color32)>,
    },
    /// Find the surface point under a pixel (the picture is drawn on the GPU).
    Pick {
        projection: Projection,
        pixel: [f64; 2],
        labels: Vec<(SurfaceLayer, u32)>,
        reach: f64,
    },
    /// Find whether a surface hides the crosshair (the picture is drawn on the GPU).
    Occlusion(OcclusionKey),
}

/// What the crosshair marker's visibility depends on.
#[derive(Clone, PartialEq)]
struct OcclusionKey {
    projection: Projection,
    /// The crosshair, world millimetres.
    point: [f64; 3],
    labels: Vec<(SurfaceLayer, u32)>,
    versions: [u64; 2],
}

/// What the thread answers.
enum Answer {
    /// A layer's surfaces are ready: the triangle count.
    Extracted {
        layer: SurfaceLayer,
        version: u64,
        triangles: usize,
        /// The surfaces on the GPU (wgpu renderer only).
        uploaded: Vec<(u32, Arc<GpuMesh>)>,
    },
    /// A layer's surfaces could not be made.
    Failed {
        layer: SurfaceLayer,
        version: u64,
        message: String,
    },
    /// A picture.
    Drawn(Box<Rendered>),
    /// The surface point under the pixel of a [`Request::Pick`], if any.
    Picked(Option<[f64; 3]>),
    /// Whether a surface hides the crosshair.
    Occluded(OcclusionKey, bool),
}

/// The surfaces the thread keeps, per layer: each label value with its mesh.
type LayerMeshes = Vec<(u32, Mesh)>;

/// The view's thread: extracts and draws, newest request first.
struct SurfaceThread {
    requests: mpsc::Sender<Request>,
    answers: mpsc::Receiver<Answer>,
}

impl SurfaceThread {
    /// The thread; with `device`, surfaces are uploaded to that GPU as they are made; with a
    /// `budget`, each is drawn with at most that many triangles.
    fn spawn(
        wake: impl Fn() + Send + 'static,
        device: Option<wgpu::Device>,
        budget: Option<usize>,
    ) -> Option<Self> {
        let (requests, inbox) = mpsc::channel::<Request>();
        let (outbox, answers) = mpsc::channel();
        std::thread::Builder::new()
            .name("surfaces".into())
            .spawn(move || {
                // The full surfaces (clicks, the marker) and the ones drawn.
                let mut meshes: [LayerMeshes; 2] = [Vec::new(), Vec::new()];
                let mut displayed: [LayerMeshes; 2] = [Vec::new(), Vec::new()];
                while let Ok(first) = inbox.recv() {
                    // Only the newest extraction of each layer and the newest picture matter.
                    let mut extracts: [Option<Request>; 2] = [None, None];
                    let (mut draw, mut pick, mut occlusion) = (None, None, None);
                    for request in std::iter::once(first).chain(inbox.try_iter()) {
                        match request {
                            Request::Extract { layer, .. } => extracts[layer as usize] = Some(request),
                            Request::Draw { .. } => draw = Some(request),
                            Request::Pick { .. } => pick = Some(request),
                            Request::Occlusion(key) => occlusion = Some(key),
                        }
                    }
                    for request in extracts.into_iter().flatten() {
                        let Request::Extract {
                            layer,
                            version,
                            label,
                            world_from_voxel,
                            cancel,
                        } = request
                        else {
                            continue;
                        };
                        let answer = match extract(label.as_ref(), &world_from_voxel, &cancel) {
                            Ok(made) => {
                                let triangles = made.iter().map(|(_, m)| m.triangles.len()).sum();
                                let voxel_mm = mean_voxel_size(&world_from_voxel);
                                let shown: LayerMeshes = made
                                    .iter()
                                    .map(|(value, mesh)| (*value, display_mesh(mesh, budget, voxel_mm)))
                                    .collect();
                                let uploaded = match &device {
                                    Some(device) => shown
                                        .iter()
                                        .filter_map(|(value, mesh)| {
                                            GpuMesh::upload(device, mesh).map(|m| (*value, Arc::new(m)))
                                        })
                                        .collect(),
                                    None => Vec::new(),
                                };
                                meshes[layer as usize] = made;
                                displayed[layer as usize] = shown;
                                Answer::Extracted {
                                    layer,
                                    version,
                                    triangles,
                                    uploaded,
                                }
                            }
                            Err(engine::mesh::MeshError::Cancelled) => continue,
                            Err(e) => Answer::Failed {
                                layer,
                                version,
                                message: e.to_string(),
                            },
                        };
                        if outbox.send(answer).is_err() {
                            return;
                        }
                    }
                    if let Some(Request::Draw {
                        projection,
                        size,
                        labels,
                    }) = draw
                    {
                        let shown: Vec<(&Mesh, Color32)> = labels
                            .iter()
                            .filter_map(|&(layer, value, colour)| {
                                let found = displayed[layer as usize].iter().find(|(v, _)| *v == value);
                                found.map(|(_, mesh)| (mesh, colour))
                            })
                            .collect();
                        let drawn = render(&shown, &projection, size);
                        if outbox.send(Answer::Drawn(Box::new(drawn))).is_err() {
                            return;
                        }
                    }
                    if let Some(Request::Pick {
                        projection,
                        pixel,
                        labels,
                        reach,
                    }) = pick
                    {
                        let shown = meshes_of(&meshes, &labels);
                        let picked = pick_by_ray(&shown, &projection, pixel[0], pixel[1], reach);
                        if outbox.send(Answer::Picked(picked)).is_err() {
                            return;
                        }
                    }
                    if let Some(key) = occlusion {
                        let shown = meshes_of(&meshes, &key.labels);
                        let hidden = hidden_by(&shown, &key.projection, key.point, MARKER_DEPTH_TOLERANCE);
                        if outbox.send(Answer::Occluded(key, hidden)).is_err() {
                            return;
                        }
                    }
                    wake();
                }
            })
            .ok()?;
        Some(Self { requests, answers })
    }
}

/// The surface drawn for `mesh`: itself, or with a `budget`, clustered to at most that many
/// triangles (cells from the voxel size up).
pub fn display_mesh(mesh: &Mesh, budget: Option<usize>, voxel_mm: f64) -> Mesh {
    match budget {
        Some(budget) => mesh.simplified_to(budget, voxel_mm),
        None => mesh.clone(),
    }
}

/// The mean edge of a voxel, mm.
fn mean_voxel_size(world_from_voxel: &Affine) -> f64 {
    let axes = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    axes.iter()
        .map(|&e| world_from_voxel.distance_mm([0.0; 3], e))
        .sum::<f64>()
        / 3.0
}

/// The meshes of these labels of these layers that were made.
fn meshes_of<'a>(meshes: &'a [LayerMeshes; 2], labels: &[(SurfaceLayer, u32)]) -> Vec<&'a Mesh> {
    labels
        .iter()
        .filter_map(|&(layer, value)| {
            let found = meshes[layer as usize].iter().find(|(v, _)| *v == value);
            found.map(|(_, mesh)| mesh)
        })
        .collect()
}

/// The surfaces of every label value in `label`, in world millimetres.
fn extract(
    label: Option<&Label>,
    world_from_voxel: &Affine,
    cancel: &AtomicBool,
) -> Result<LayerMeshes, engine::mesh::MeshError> {
    let Some(label) = label else { return Ok(Vec::new()) };
    let mut made = Vec::new();
    for value in label.label_numbers().into_iter().filter(|&v| v != 0) {
        let shape = label.shape();
        let options = SurfaceOptions::default();
        if let Some(mesh) = label_surface(label, shape, value, world_from_voxel, &options, cancel)? {
            made.push((value, mesh));
        }
    }
    Ok(made)
}

/// What a layer's surfaces were made from: the case's load ticket and, for the label, its edit
/// generation.
type LayerSource = (u64, u64);

/// A layer's state.
#[derive(Default)]
struct LayerState {
    /// What the last extraction asked for was made from.
    requested: Option<LayerSource>,
    /// Its version number (answers of older ones are ignored).
    version: u64,
    /// The cancel switch of the extraction under way.
    cancel: Option<Arc<AtomicBool>>,
    /// Triangles of the surfaces made, or why none were; `None` while being made.
    made: Option<Result<usize, String>>,
    /// Version of the surfaces the thread holds.
    ready_version: u64,
    /// Those surfaces on the GPU (wgpu renderer only), per label value.
    uploaded: Vec<(u32, Arc<GpuMesh>)>,
}

/// Everything the picture depends on, to ask for a new one only when it changes.
#[derive(Clone, PartialEq)]
struct DrawKey {
    projection: Projection,
    size: [usize; 2],
    labels: Vec<(SurfaceLayer, u32, Color32)>,
    versions: [u64; 2],
}

/// The 3D view's state.
pub struct View3dState {
    /// The camera.
    pub camera: Camera,
    /// Whether the 3D view is shown alone.
    pub maximised: bool,
    /// Draw the label's surfaces.
    pub show_label: bool,
    /// Draw the prediction's surfaces.
    pub show_prediction: bool,
    thread: Option<SurfaceThread>,
    layers: [LayerState; 2],
    asked: Option<DrawKey>,
    shown: Option<(Rendered, egui::TextureHandle)>,
    /// Where the picture was drawn last frame, points.
    pub last_rect: Option<Rect>,
    /// The GPU the surfaces are drawn on (eframe's wgpu renderer), or none (the CPU draws them).
    gpu: Option<wgpu::Device>,
    /// Triangles per drawn surface, for a software renderer.
    budget: Option<usize>,
    /// How the surfaces are drawn, and why.
    renderer_note: String,
    /// The crosshair marker's visibility last asked for, and the last answer.
    asked_occlusion: Option<OcclusionKey>,
    occluded: Option<(OcclusionKey, bool)>,
    /// The voxel a click on a surface picked, to move the crosshair to.
    picked: Option<[usize; 3]>,
}

impl Default for View3dState {
    fn default() -> Self {
        Self {
            camera: Camera::default(),
            maximised: false,
            show_label: true,
            show_prediction: true,
            thread: None,
            layers: [LayerState::default(), LayerState::default()],
            asked: None,
            shown: None,
            last_rect: None,
            gpu: None,
            budget: Some(SOFTWARE_TRIANGLES),
            renderer_note: "drawn on the CPU".into(),
            asked_occlusion: None,
            occluded: None,
            picked: None,
        }
    }
}

impl View3dState {
    /// Draws the surfaces with `render_state`'s GPU (eframe's wgpu renderer), or on the CPU
    /// without one; `note` says which and why (shown on the view's triangle count).
    pub fn set_renderer(&mut self, render_state: Option<&egui_wgpu::RenderState>, note: String) {
        match render_state {
            Some(render_state) => {
                crate::viewer::surface_gpu::install(render_state);
                self.gpu = Some(render_state.device.clone());
                // A real GPU draws every triangle; a software one (lavapipe) gets the budget.
                let software = render_state.adapter.get_info().device_type == wgpu::DeviceType::Cpu;
                self.budget = software.then_some(SOFTWARE_TRIANGLES);
            }
            None => {
                self.gpu = None;
                self.budget = Some(SOFTWARE_TRIANGLES);
            }
        }
        self.renderer_note = note;
        // Surfaces already made were not uploaded: make them again.
        self.thread = None;
        self.layers = [LayerState::default(), LayerState::default()];
    }

    /// Whether the surfaces are drawn on the GPU.
    pub fn on_gpu(&self) -> bool {
        self.gpu.is_some()
    }

    /// Whether every surface asked for has been made and the newest picture is on screen (tests
    /// wait for this).
    pub fn is_settled(&self) -> bool {
        let made = self.layers.iter().all(|l| l.made.is_some());
        if self.on_gpu() {
            return made;
        }
        let drawn = match (&self.asked, &self.shown) {
            (Some(asked), Some((shown, _))) => {
                asked.projection == shown.projection && asked.size == shown.image.size
            }
            (None, _) => true,
            (Some(_), None) => false,
        };
        made && drawn
    }

    /// The picture on screen and where it was drawn, if any.
    pub fn shown(&self) -> Option<&Rendered> {
        self.shown.as_ref().map(|(rendered, _)| rendered)
    }

    /// Triangles of each layer's surfaces (label, prediction), once made.
    pub fn triangles(&self) -> [Option<usize>; 2] {
        self.layers
            .each_ref()
            .map(|l| l.made.as_ref().and_then(|m| m.as_ref().ok().copied()))
    }

    /// Asks for the surfaces of the case on screen when they changed, and takes the answers.
    fn update(&mut self, ctx: &egui::Context, view: &CaseView) {
        if self.thread.is_none() {
            let waker = ctx.clone();
            self.thread =
                SurfaceThread::spawn(move || waker.request_repaint(), self.gpu.clone(), self.budget);
        }
        let Some(thread) = &self.thread else { return };
        let affine = *view.case.image.world_from_voxel();
        let sources = [(view.ticket, view.edit.generation), (view.ticket, 0)];
        let labels = [&view.case.ground_truth, &view.case.prediction];
        for (index, layer) in [SurfaceLayer::Label, SurfaceLayer::Prediction]
            .into_iter()
            .enumerate()
        {
            let state = &mut self.layers[index];
            // A stroke under way is not a finished edit: wait for its end.
            let waiting = layer == SurfaceLayer::Label && view.edit.is_painting();
            if state.requested == Some(sources[index]) || waiting {
                continue;
            }
            if let Some(cancel) = &state.cancel {
                cancel.store(true, Ordering::Relaxed);
            }
            let cancel = Arc::new(AtomicBool::new(false));
            state.version += 1;
            state.requested = Some(sources[index]);
            state.cancel = Some(Arc::clone(&cancel));
            state.made = None;
            let request = Request::Extract {
                layer,
                version: state.version,
                label: labels[index].clone(),
                world_from_voxel: affine,
                cancel,
            };
            if thread.requests.send(request).is_err() {
                state.made = Some(Err("the 3D view's thread stopped".into()));
            }
        }
        while let Ok(answer) = thread.answers.try_recv() {
            match answer {
                Answer::Extracted {
                    layer,
                    version,
                    triangles,
                    uploaded,
                } => {
                    let state = &mut self.layers[layer as usize];
                    if version == state.version {
                        state.made = Some(Ok(triangles));
                        state.ready_version = version;
                        state.uploaded = uploaded;
                    }
                }
                Answer::Failed {
                    layer,
                    version,
                    message,
                } => {
                    let state = &mut self.layers[layer as usize];
                    if version == state.version {
                        state.made = Some(Err(message));
                        state.ready_version = version;
                        state.uploaded = Vec::new();
                    }
                }
                Answer::Drawn(rendered) => {
                    let texture =
                        ctx.load_texture("view3d", rendered.image.clone(), egui::TextureOptions::LINEAR);
                    self.shown = Some((*rendered, texture));
                }
                Answer::Picked(point) => self.picked = point.and_then(|p| voxel_at(view, p)),
                Answer::Occluded(key, hidden) => self.occluded = Some((key, hidden)),
            }
        }
    }

    /// Asks whether a surface hides the crosshair when anything that decides it changed.
    fn ask_for_occlusion(&mut self, key: OcclusionKey) {
        if self.asked_occlusion.as_ref() == Some(&key) {
            return;
        }
        let Some(thread) = &self.thread else { return };
        if thread.requests.send(Request::Occlusion(key.clone())).is_ok() {
            self.asked_occlusion = Some(key);
        }
    }

    /// This frame's draws for the GPU: each shown label's uploaded surfaces with its block.
    fn gpu_draws(
        &self,
        labels: &[(SurfaceLayer, u32, Color32)],
        projection: &Projection,
        size: [usize; 2],
        depth_half_range: f64,
    ) -> Vec<(Arc<GpuMesh>, DrawUniforms)> {
        labels
            .iter()
            .filter_map(|&(layer, value, colour)| {
                let uploaded = &self.layers[layer as usize].uploaded;
                let (_, mesh) = uploaded.iter().find(|(v, _)| *v == value)?;
                let block = DrawUniforms::new(projection, size, depth_half_range, colour);
                Some((Arc::clone(mesh), block))
            })
            .collect()
    }

    /// Asks for a picture when anything it depends on changed.
    fn ask_for_picture(&mut self, key: DrawKey) {
        if self.asked.as_ref() == Some(&key) {
            return;
        }
        let Some(thread) = &self.thread else { return };
        let request = Request::Draw {
            projection: key.projection,
            size: key.size,
            labels: key.labels.clone(),
        };
        if thread.requests.send(request).is_ok() {
            self.asked = Some(key);
        }
    }
}

/// The sphere around the scan's box, in world millimetres.
pub fn scene_of(view: &CaseView) -> Scene {
    let image = &view.case.image;
    let affine = image.world_from_voxel();
    let last = image.shape().map(|n| n.saturating_sub(1) as f64);
    let centre = affine.apply(last.map(|v| v / 2.0));
    let radius = affine.distance_mm([0.0; 3], last) / 2.0;
    Scene {
        centre,
        radius: radius.max(1.0),
    }
}

/// The voxel nearest world point `p`, if it lies within the grid.
fn voxel_at(view: &CaseView, p: [f64; 3]) -> Option<[usize; 3]> {
    let inverse = view.case.image.world_from_voxel().inverse()?;
    let v = inverse.apply(p);
    let shape = view.case.image.shape();
    let mut voxel = [0; 3];
    for a in 0..3 {
        let rounded = v[a].round();
        // A surface lies up to half a voxel (and the smoothing's reach) outside its voxels.
        let clamped = rounded.clamp(0.0, shape[a].saturating_sub(1) as f64);
        if (rounded - clamped).abs() > 2.0 {
            return None;
        }
        voxel[a] = clamped as usize;
    }
    Some(voxel)
}

/// Draws the 3D view in `rect` and handles its mouse input.
pub fn view3d_ui(
    ui: &mut egui::Ui,
    rect: Rect,
    state: &mut View3dState,
    view: &CaseView,
    overlays: &OverlaySettings,
    commands: &mut Vec<ViewCommand>,
) {
    state.update(ui.ctx(), view);
    let (header, area) = crate::viewer::plane::header_and_area(rect);
    ui.scope_builder(
        UiBuilder::new()
            .max_rect(header)
            .layout(Layout::left_to_right(Align::Center)),
        |ui| {
            if ui
                .selectable_label(state.maximised, "3D")
                .on_hover_text("Show the 3D view alone, or all views again (double-click it, or 4)")
                .clicked()
            {
                commands.push(ViewCommand::ToggleMaximise3d);
            }
            ui.checkbox(&mut state.show_label, "Label")
                .on_hover_text("Surfaces of the ground truth (or the corrected label)");
            ui.checkbox(&mut state.show_prediction, "Prediction");
            if ui
                .small_button("Reset")
                .on_hover_text("Front view, whole scan")
                .clicked()
            {
                state.camera = Camera::default();
            }
            match state.layers.each_ref().map(|l| l.made.clone()) {
                [Some(Err(e)), _] | [_, Some(Err(e))] => {
                    ui.colored_label(Color32::LIGHT_RED, "no surfaces")
                        .on_hover_text(e);
                }
                [None, _] | [_, None] => {
                    ui.spinner();
                    ui.weak("making surfaces…");
                }
                [Some(Ok(a)), Some(Ok(b))] => {
                    ui.weak(format!("{} triangles", a + b))
                        .on_hover_text(format!("Surfaces drawn with {}", state.renderer_note));
                }
            }
        },
    );
    let response = ui.interact(area, ui.scope_id().with("view3d"), Sense::click_and_drag());
    state.last_rect = Some(area);
    if let Some(voxel) = state.picked.take() {
        commands.push(ViewCommand::SetCrosshair(voxel));
    }
    let ppp = ui.ctx().pixels_per_point();
    if response.dragged_by(egui::PointerButton::Primary) {
        let delta = response.drag_delta();
        state.camera.yaw += f64::from(delta.x) * ROTATE_PER_POINT;
        state.camera.pitch = (state.camera.pitch + f64::from(delta.y) * ROTATE_PER_POINT)
            .clamp(-std::f64::consts::FRAC_PI_2, std::f64::consts::FRAC_PI_2);
    }
    // The GPU draws at the screen's resolution; the CPU at most MAX_SIDE pixels across.
    let size = if state.on_gpu() {
        [area.width() * ppp, area.height() * ppp].map(|v| v.round().max(1.0) as usize)
    } else {
        picture_size(area, ppp)
    };
    // Pixels of the picture per point on screen.
    let pixels_per_point = size[0] as f32 / area.width().max(1.0);
    if response.dragged_by(egui::PointerButton::Secondary) {
        let delta = response.drag_delta() * pixels_per_point;
        state.camera.pan[0] += f64::from(delta.x);
        state.camera.pan[1] += f64::from(delta.y);
    }
    if response.hovered() {
        let (plain, with_ctrl) = crate::viewer::plane::wheel_lines(ui);
        let lines = plain + with_ctrl;
        if lines != 0.0 {
            state.camera.zoom =
                (state.camera.zoom * ZOOM_PER_LINE.powf(f64::from(lines))).clamp(ZOOM_RANGE.0, ZOOM_RANGE.1);
        }
    }
    let scene = scene_of(view);
    // Surfaces reach a little beyond the scan's box (the smoothing): depth covers more.
    let depth_half_range = 1.5 * scene.radius + 10.0;
    let projection = Projection::new(&state.camera, &scene, size);
    let labels = shown_labels(state, view, overlays);
    let drawn: Vec<(SurfaceLayer, u32)> = labels.iter().map(|&(layer, value, _)| (layer, value)).collect();
    if response.double_clicked() {
        commands.push(ViewCommand::ToggleMaximise3d);
    } else if response.clicked()
        && let Some(pointer) = response.interact_pointer_pos()
    {
        let at = (pointer - area.min) * pixels_per_point;
        if at.x >= 0.0 && at.y >= 0.0 {
            if state.on_gpu() {
                // Answered by the thread; the crosshair moves when the answer comes.
                if let Some(thread) = &state.thread {
                    let _ = thread.requests.send(Request::Pick {
                        projection,
                        pixel: [f64::from(at.x), f64::from(at.y)],
                        labels: drawn.clone(),
                        reach: depth_half_range,
                    });
                }
            } else if let Some(shown) = state.shown() {
                let picked = shown.pick(at.x as usize, at.y as usize);
                if let Some(voxel) = picked.and_then(|p| voxel_at(view, p)) {
                    commands.push(ViewCommand::SetCrosshair(voxel));
                }
            }
        }
    }
    let versions = state.layers.each_ref().map(|l| l.ready_version);
    let painter = ui.painter_at(area);
    painter.rect_filled(area, 0.0, BACKGROUND);
    let crosshair = view
        .case
        .image
        .world_from_voxel()
        .apply(view.crosshair.map(|v| v as f64));
    if state.on_gpu() {
        let draws = state.gpu_draws(&labels, &projection, size, depth_half_range);
        painter.add(egui_wgpu::Callback::new_paint_callback(
            area,
            SurfaceCallback { draws },
        ));
        let key = OcclusionKey {
            projection,
            point: crosshair,
            labels: drawn,
            versions,
        };
        // Until the thread answers, the last answer (the marker does not flicker while rotating).
        let hidden = state.occluded.as_ref().is_some_and(|(_, hidden)| *hidden);
        state.ask_for_occlusion(key);
        marker(&painter, area, &projection, crosshair, pixels_per_point, hidden);
    } else {
        state.ask_for_picture(DrawKey {
            projection,
            size,
            labels,
            versions,
        });
        if let Some((shown, texture)) = &state.shown {
            painter.image(
                texture.id(),
                area,
                Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
                Color32::WHITE,
            );
            let hidden = hidden_in_picture(shown, crosshair);
            marker(
                &painter,
                area,
                &shown.projection,
                crosshair,
                pixels_per_point,
                hidden,
            );
        }
    }
    let [x, y, z] = view.crosshair;
    painter.text(
        area.left_bottom() + vec2(6.0, -6.0),
        Align2::LEFT_BOTTOM,
        format!(
            "Case {} · crosshair ({x}, {y}, {z}) · window {:.0} / level {:.0}",
            view.case.id, view.window.width, view.window.level
        ),
        FontId::proportional(11.0),
        Color32::from_gray(170),
    );
    if response.hovered() {
        response.on_hover_text(
            "Drag: rotate · wheel: zoom · right-drag: pan · click a surface: move the crosshair there",
        );
    }
}

/// The labels to draw, each with its layer and colour (alpha: the label's own opacity from the
/// legend): the overlay switches, the view's own switches and the legend's hidden labels
/// respected; the prediction in a lighter tone.
fn shown_labels(
    state: &View3dState,
    view: &CaseView,
    overlays: &OverlaySettings,
) -> Vec<(SurfaceLayer, u32, Color32)> {
    let mut labels = Vec::new();
    if !overlays.enabled {
        return labels;
    }
    let layers = [
        (
            SurfaceLayer::Label,
            state.show_label && overlays.ground_truth.visible,
        ),
        (
            SurfaceLayer::Prediction,
            state.show_prediction && overlays.prediction.visible,
        ),
    ];
    for (layer, shown) in layers {
        if !shown {
            continue;
        }
        for &value in view
            .case
            .label_values
            .iter()
            .filter(|v| !overlays.hidden_labels.contains(v))
        {
            // The label's own opacity from the legend makes its surface translucent (to see a
            // lesion inside an organ); at 0 the surface is not drawn nor clicked.
            let opacity = overlays.label_own_opacity(value);
            if opacity <= 0.0 {
                continue;
            }
            let colour = overlays.label_colour(value);
            // The prediction in a lighter tone, so the two layers can be told apart.
            let colour = if layer == SurfaceLayer::Prediction {
                lighter(colour)
            } else {
                colour
            };
            let [r, g, b, _] = colour.to_array();
            let alpha = (opacity * 255.0).round() as u8;
            labels.push((layer, value, Color32::from_rgba_unmultiplied(r, g, b, alpha)));
        }
    }
    labels
}

/// The picture size for `area`, pixels, at most [`MAX_SIDE`] on the longer side.
fn picture_size(area: Rect, pixels_per_point: f32) -> [usize; 2] {
    let wanted = [area.width() * pixels_per_point, area.height() * pixels_per_point].map(|v| v.max(1.0));
    let shrink = (MAX_SIDE as f32 / wanted[0].max(wanted[1])).min(1.0);
    wanted.map(|v| (v * shrink).round().max(1.0) as usize)
}

/// Halfway to white.
fn lighter(colour: Color32) -> Color32 {
    let half = |c: u8| ((u16::from(c) + 255) / 2) as u8;
    Color32::from_rgb(half(colour.r()), half(colour.g()), half(colour.b()))
}

/// How far behind a surface the crosshair must lie to count as hidden, mm.
const MARKER_DEPTH_TOLERANCE: f64 = 1.0;

/// Whether the CPU picture's depth buffer shows a surface in front of world point `p`.
fn hidden_in_picture(shown: &Rendered, p: [f64; 3]) -> bool {
    let [px, py, depth] = shown.projection.project(p);
    let [width, height] = shown.image.size;
    let inside = px >= 0.0 && py >= 0.0 && (px as usize) < width && (py as usize) < height;
    let surface = inside.then(|| shown.depth[py as usize * width + px as usize]);
    surface.is_some_and(|d| f64::from(d) < depth - MARKER_DEPTH_TOLERANCE)
}

/// Marks the crosshair at world point `p`: a ring, thick where it is in front of the surfaces,
/// thin where a surface hides it.
fn marker(
    painter: &egui::Painter,
    area: Rect,
    projection: &Projection,
    p: [f64; 3],
    pixels_per_point: f32,
    hidden: bool,
) {
    let [px, py, _] = projection.project(p);
    let at = area.min + vec2(px as f32, py as f32) / pixels_per_point;
    if !area.contains(at) {
        return;
    }
    let stroke = Stroke::new(if hidden { 1.0 } else { 2.0 }, MARKER_COLOUR);
    painter.circle_stroke(at, 6.0, stroke);
    painter.line_segment([at - vec2(10.0, 0.0), at + vec2(10.0, 0.0)], stroke);
    painter.line_segment([at - vec2(0.0, 10.0), at + vec2(0.0, 10.0)], stroke);
}
