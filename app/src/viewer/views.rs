//! The three linked planes: axial, coronal and sagittal views sharing one crosshair, any one of
//! them maximised. Mouse: click sets the crosshair, wheel scrolls slices, Ctrl+wheel zooms,
//! drag pans, right-drag changes window/level, double-click maximises. Each view's texture is
//! cached by the inputs it was made from and uploaded again only when they change.

use crate::annotation::brush::{BrushSettings, Tool};
use crate::common::slice_geometry::{Axis, pixel_of_voxel, slice_size, slice_size_mm, voxel_at_pixel};
use crate::viewer::case_view::CaseView;
use crate::viewer::command::ViewCommand;
use crate::viewer::plane::{PlaneView, TextureKey, pixel_centre, pixel_under, step_index, wheel_lines};
use crate::viewer::render::{Heat, MIN_WINDOW_WIDTH, OverlaySettings, SliceLayers, render_slice};
use crate::viewer::ruler::draw_ruler;
pub use crate::viewer::view_info::HoverInfo;
use crate::viewer::view_info::{colour_bar, hover_info};
use crate::viewer::view3d::{View3dState, view3d_ui};
use eframe::egui::{
    self, Align, Align2, Color32, FontId, Layout, PointerButton, Pos2, Rect, Sense, Stroke, UiBuilder, Vec2,
    pos2, vec2,
};

/// Gap between views.
const GAP: f32 = 3.0;
/// Zoom factor per wheel line with Ctrl held.
const ZOOM_PER_LINE: f32 = 1.15;
/// Zoom limits (1 = the slice fits the view).
const ZOOM_RANGE: (f32, f32) = (0.25, 32.0);
/// Right-dragging this many points changes the window by its own width.
const WINDOW_DRAG_POINTS: f32 = 300.0;
const CROSSHAIR_COLOUR: Color32 = Color32::from_rgba_premultiplied(200, 200, 60, 180);
const LETTER_COLOUR: Color32 = Color32::from_rgb(250, 220, 120);
const LETTER_SIZE: f32 = 15.0;

/// The state of the three views.
#[derive(Default)]
pub struct ViewsState {
    /// Axial, coronal and sagittal, in [`Axis::ALL`] order.
    pub planes: [PlaneView; 3],
    /// The view shown alone, if any.
    pub maximised: Option<Axis>,
    /// The view keys act on and PNG export takes (the last one hovered or clicked).
    pub active: Axis,
    /// What the pointer is over this frame.
    pub hover: Option<HoverInfo>,
    /// The right-hand view of the side-by-side comparison (zoom and pan follow the left one).
    pub compare: PlaneView,
    /// The 3D view in the fourth quadrant.
    pub view3d: View3dState,
}

/// Activation maps to draw: model A's over the views, and model B's beside A's when compared.
#[derive(Default)]
pub struct HeatLayers {
    /// Maps of model A and model B on the viewer's grid.
    pub maps: [Option<Heat>; 2],
    /// Names of the two models, for the headers.
    pub names: [String; 2],
    /// Show A and B side by side in the active view.
    pub side_by_side: bool,
    /// Bumped when anything drawn changes.
    pub generation: u64,
}

impl ViewsState {
    /// Zooms the view of `axis` by `steps` steps of the wheel's factor, within the zoom limits.
    pub fn zoom_view(&mut self, axis: Axis, steps: i32) {
        let plane = &mut self.planes[axis.index()];
        plane.zoom = (plane.zoom * ZOOM_PER_LINE.powi(steps)).clamp(ZOOM_RANGE.0, ZOOM_RANGE.1);
    }

    /// Fits every view again (zoom 1, no pan).
    pub fn reset_zoom(&mut self) {
        for plane in &mut self.planes {
            plane.zoom = 1.0;
            plane.pan = Vec2::ZERO;
        }
    }
}

/// Draws the views into the remaining space and handles their mouse input.
pub fn views_ui(
    ui: &mut egui::Ui,
    state: &mut ViewsState,
    view: &CaseView,
    overlays: &OverlaySettings,
    brush: &BrushSettings,
    heat: &HeatLayers,
    commands: &mut Vec<ViewCommand>,
) {
    let full = ui.available_rect_before_wrap();
    ui.allocate_rect(full, Sense::hover());
    state.hover = None;
    if view.edit.is_painting() && !ui.input(|i| i.pointer.primary_down()) {
        commands.push(ViewCommand::EndStroke);
    }
    let mut context = PlaneContext {
        overlays,
        brush,
        heat: heat.maps[0].as_ref(),
        heat_generation: heat.generation,
        title: None,
        slot: 0,
    };
    if heat.side_by_side
        && let (Some(a), Some(b)) = (&heat.maps[0], &heat.maps[1])
    {
        let axis = state.maximised.unwrap_or(state.active);
        let half = vec2((full.width() - GAP) / 2.0, full.height());
        let left = Rect::from_min_size(full.min, half);
        let right = Rect::from_min_size(full.min + vec2(half.x + GAP, 0.0), half);
        let main = axis.index();
        state.compare.zoom = state.planes[main].zoom;
        state.compare.pan = state.planes[main].pan;
        context.heat = Some(a);
        context.title = Some(&heat.names[0]);
        plane_ui(ui, left, axis, state, view, &context, commands);
        let (zoom, pan) = (state.planes[main].zoom, state.planes[main].pan);
        state.compare.zoom = zoom;
        state.compare.pan = pan;
        context.heat = Some(b);
        context.title = Some(&heat.names[1]);
        context.slot = 1;
        plane_ui(ui, right, axis, state, view, &context, commands);
        // Zooming or panning the right view moves the left one too.
        state.planes[main].zoom = state.compare.zoom;
        state.planes[main].pan = state.compare.pan;
        return;
    }
    if state.view3d.maximised {
        view3d_ui(ui, full, &mut state.view3d, view, overlays, commands);
        return;
    }
    if let Some(axis) = state.maximised {
        plane_ui(ui, full, axis, state, view, &context, commands);
        return;
    }
    let half = vec2((full.width() - GAP) / 2.0, (full.height() - GAP) / 2.0);
    let quadrant = |column: f32, row: f32| {
        Rect::from_min_size(
            full.min + vec2(column * (half.x + GAP), row * (half.y + GAP)),
            half,
        )
    };
    for (axis, rect) in
        Axis::ALL
            .into_iter()
            .zip([quadrant(0.0, 0.0), quadrant(1.0, 0.0), quadrant(0.0, 1.0)])
    {
        plane_ui(ui, rect, axis, state, view, &context, commands);
    }
    view3d_ui(
        ui,
        quadrant(1.0, 1.0),
        &mut state.view3d,
        view,
        overlays,
        commands,
    );
}

/// What every view draws with besides the case.
struct PlaneContext<'a> {
    overlays: &'a OverlaySettings,
    brush: &'a BrushSettings,
    heat: Option<&'a Heat>,
    heat_generation: u64,
    /// A model name shown in the header (side-by-side comparison).
    title: Option<&'a str>,
    /// 0: the axis's own view; 1: the comparison's right-hand view.
    slot: usize,
}

fn plane_ui(
    ui: &mut egui::Ui,
    rect: Rect,
    axis: Axis,
    state: &mut ViewsState,
    view: &CaseView,
    context: &PlaneContext<'_>,
    commands: &mut Vec<ViewCommand>,
) {
    let (overlays, brush) = (context.overlays, context.brush);
    let shape = view.case.image.shape();
    let normal = axis.normal();
    let (header, area) = crate::viewer::plane::header_and_area(rect);
    ui.scope_builder(
        UiBuilder::new()
            .max_rect(header)
            .layout(Layout::left_to_right(Align::Center)),
        |ui| {
            let maximised = state.maximised == Some(axis);
            let hint = "Show this view alone, or all three again (double-click the view, or 1/2/3)";
            if ui
                .selectable_label(maximised, axis.name())
                .on_hover_text(hint)
                .clicked()
            {
                commands.push(ViewCommand::ToggleMaximise(axis));
            }
            if let Some(title) = context.title {
                ui.strong(title);
            }
            ui.label(format!(
                "slice {} / {}",
                view.crosshair[normal] + 1,
                shape[normal]
            ));
            let plane = if context.slot == 0 {
                &mut state.planes[axis.index()]
            } else {
                &mut state.compare
            };
            if (plane.zoom != 1.0 || plane.pan != Vec2::ZERO)
                && ui
                    .small_button("Fit")
                    .on_hover_text("Reset zoom and pan")
                    .clicked()
            {
                plane.zoom = 1.0;
                plane.pan = Vec2::ZERO;
            }
        },
    );
    let response = ui.interact(
        area,
        ui.scope_id().with(("plane", axis, context.slot)),
        Sense::click_and_drag(),
    );
    let plane = if context.slot == 0 {
        &mut state.planes[axis.index()]
    } else {
        &mut state.compare
    };
    plane.last_rect = Some(area);

    let key = TextureKey {
        ticket: view.ticket,
        axis,
        slice: view.crosshair[normal],
        channel: view.case.channel,
        window: view.window,
        overlays: overlays.clone(),
        label_generation: view.edit.view_generation[axis.index()],
        heat_generation: context.heat.map(|_| context.heat_generation),
    };
    let layers = SliceLayers {
        image: &view.case.image,
        ground_truth: view.case.ground_truth.as_ref(),
        prediction: view.case.prediction.as_ref(),
        heat: context.heat,
    };
    let texture = plane.texture(ui.ctx(), axis.name(), key, || {
        render_slice(layers, axis, view.crosshair[normal], view.window, overlays)
    });

    let size_mm = slice_size_mm(shape, view.case.image.spacing_mm(), axis);
    let fit = (area.width() / size_mm[0]).min(area.height() / size_mm[1]);
    let fit = if fit.is_finite() && fit > 0.0 { fit } else { 1.0 };
    let image_rect = Rect::from_center_size(
        area.center() + plane.pan,
        vec2(size_mm[0], size_mm[1]) * fit * plane.zoom,
    );
    let pixels = slice_size(shape, axis);

    let painter = ui.painter_at(area);
    painter.rect_filled(area, 0.0, Color32::BLACK);
    let uv = Rect::from_min_max(Pos2::ZERO, pos2(1.0, 1.0));
    painter.image(texture, image_rect, uv, Color32::WHITE);
    let crosshair_pixel = pixel_of_voxel(shape, axis, view.crosshair);
    let centre = pixel_centre(image_rect, pixels, crosshair_pixel);
    let stroke = Stroke::new(1.0, CROSSHAIR_COLOUR);
    painter.line_segment(
        [pos2(centre.x, area.top()), pos2(centre.x, area.bottom())],
        stroke,
    );
    painter.line_segment(
        [pos2(area.left(), centre.y), pos2(area.right(), centre.y)],
        stroke,
    );
    let [left, right, top, bottom] = axis.orientation_letters();
    let font = FontId::proportional(LETTER_SIZE);
    let inset = 6.0;
    for (position, anchor, letter) in [
        (
            pos2(area.left() + inset, area.center().y),
            Align2::LEFT_CENTER,
            left,
        ),
        (
            pos2(area.right() - inset, area.center().y),
            Align2::RIGHT_CENTER,
            right,
        ),
        (pos2(area.center().x, area.top() + inset), Align2::CENTER_TOP, top),
        (
            pos2(area.center().x, area.bottom() - inset),
            Align2::CENTER_BOTTOM,
            bottom,
        ),
    ] {
        painter.text(position, anchor, letter, font.clone(), LETTER_COLOUR);
    }
    if let Some(heat) = context.heat {
        colour_bar(&painter, area, heat);
    }

    let pointer_pixel = response
        .hover_pos()
        .or(response.interact_pointer_pos())
        .and_then(|pos| pixel_under(image_rect, pixels, pos));
    if let Some(ruler) = &view.ruler {
        let length = ruler.length_mm(view.case.image.world_from_voxel());
        draw_ruler(
            &painter,
            ruler,
            length,
            shape,
            axis,
            view.crosshair[normal],
            image_rect,
        );
    }
    // With the brush or eraser, the primary button paints instead of moving and panning.
    let painting = brush.paints();
    if painting {
        if response.is_pointer_button_down_on()
            && ui.input(|i| i.pointer.primary_down())
            && let Some(pixel) = pointer_pixel
        {
            let voxel = voxel_at_pixel(shape, axis, view.crosshair[normal], pixel);
            commands.push(ViewCommand::Paint { axis, voxel });
            state.active = axis;
        }
        if let Some(pixel) = response
            .hover_pos()
            .and_then(|p| pixel_under(image_rect, pixels, p))
        {
            let points_per_mm = image_rect.width() / size_mm[0].max(f32::MIN_POSITIVE);
            let colour = match brush.tool {
                Tool::Eraser => Color32::WHITE,
                _ => overlays.label_colour(brush.label),
            };
            painter.circle_stroke(
                pixel_centre(image_rect, pixels, pixel),
                brush.radius_mm as f32 * points_per_mm,
                Stroke::new(1.5, colour),
            );
        }
    }
    if !painting
        && response.clicked()
        && let Some(pixel) = pointer_pixel
    {
        let voxel = voxel_at_pixel(shape, axis, view.crosshair[normal], pixel);
        commands.push(match brush.tool {
            Tool::Grow => ViewCommand::Grow { axis, voxel },
            Tool::Ruler => ViewCommand::RulerPoint { axis, voxel },
            _ => ViewCommand::SetCrosshair(voxel),
        });
    }
    if response.clicked() || response.dragged() {
        state.active = axis;
    }
    if response.double_clicked() && brush.tool == Tool::Navigate {
        commands.push(ViewCommand::ToggleMaximise(axis));
    }
    if (response.dragged_by(PointerButton::Primary) && !painting)
        || response.dragged_by(PointerButton::Middle)
    {
        plane.pan += response.drag_delta();
    }
    if response.dragged_by(PointerButton::Secondary) {
        let delta = response.drag_delta();
        let per_point = view.window.width.max(1.0) / WINDOW_DRAG_POINTS;
        let mut window = view.window;
        window.width = (window.width + delta.x * per_point).max(MIN_WINDOW_WIDTH);
        window.level -= delta.y * per_point;
        commands.push(ViewCommand::SetWindow(window));
    }
    if response.hovered() {
        state.active = axis;
        let (slice_lines, zoom_lines) = wheel_lines(ui);
        plane.scroll_lines += slice_lines;
        let steps = plane.scroll_lines.trunc();
        plane.scroll_lines -= steps;
        if steps != 0.0 {
            let mut crosshair = view.crosshair;
            crosshair[normal] = step_index(crosshair[normal], steps as i64, shape[normal]);
            commands.push(ViewCommand::SetCrosshair(crosshair));
        }
        if zoom_lines != 0.0
            && let Some(pointer) = response.hover_pos()
        {
            let old_zoom = plane.zoom;
            plane.zoom = (old_zoom * ZOOM_PER_LINE.powf(zoom_lines)).clamp(ZOOM_RANGE.0, ZOOM_RANGE.1);
            // Keep the point under the pointer where it is.
            let from_centre = pointer - area.center() - plane.pan;
            plane.pan += from_centre * (1.0 - plane.zoom / old_zoom);
        }
        if let Some(pixel) = pointer_pixel {
            state.hover = Some(hover_info(
                view,
                voxel_at_pixel(shape, axis, view.crosshair[normal], pixel),
            ));
        }
    }
}
