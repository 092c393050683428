//! One view's own state: zoom, pan, wheel remainder and its texture cache, plus the pure
//! mappings between screen positions and slice pixels that the views use.

use crate::common::slice_geometry::Axis;
use crate::viewer::render::{OverlaySettings, Window};
use eframe::egui::{self, ColorImage, Pos2, Rect, TextureHandle, TextureId, TextureOptions, Vec2, vec2};

/// Wheel distance in points that counts as one line (one slice).
const POINTS_PER_LINE: f32 = 50.0;
/// Lines a page-wise wheel event counts as.
const LINES_PER_PAGE: f32 = 10.0;

/// Everything a slice texture is made from: it is uploaded again only when this changes.
#[derive(Debug, Clone, PartialEq)]
pub struct TextureKey {
    /// The case load it belongs to.
    pub ticket: u64,
    /// The plane.
    pub axis: Axis,
    /// The slice index along the plane's normal.
    pub slice: usize,
    /// The scan's channel shown.
    pub channel: usize,
    /// The display window.
    pub window: Window,
    /// The overlay settings.
    pub overlays: OverlaySettings,
    /// The edit generation of the label in this view (bumped when an edit touches its slice).
    pub label_generation: u64,
    /// The activation map's display generation, when one is drawn.
    pub heat_generation: Option<u64>,
}

/// One view's zoom, pan and cached texture.
pub struct PlaneView {
    /// 1 fits the slice in the view.
    pub zoom: f32,
    /// Offset of the slice's centre from the view's centre, in points.
    pub pan: Vec2,
    /// Wheel movement not yet turned into whole slices.
    pub(crate) scroll_lines: f32,
    texture: Option<(TextureKey, TextureHandle)>,
    /// How many times the texture was (re)uploaded: tests check the cache with it.
    pub uploads: u64,
    /// Where the image area was drawn last frame.
    pub last_rect: Option<Rect>,
}

impl Default for PlaneView {
    fn default() -> Self {
        Self {
            zoom: 1.0,
            pan: Vec2::ZERO,
            scroll_lines: 0.0,
            texture: None,
            uploads: 0,
            last_rect: None,
        }
    }
}

impl PlaneView {
    /// The texture for `key`, rendered and uploaded only when the key differs from last time.
    pub fn texture(
        &mut self,
        ctx: &egui::Context,
        name: &str,
        key: TextureKey,
        render: impl FnOnce() -> ColorImage,
    ) -> TextureId {
        if let Some((cached, handle)) = &mut self.texture {
            if *cached != key {
                handle.set(render(), TextureOptions::NEAREST);
                *cached = key;
                self.uploads += 1;
            }
            return handle.id();
        }
        let handle = ctx.load_texture(name, render(), TextureOptions::NEAREST);
        let id = handle.id();
        self.texture = Some((key, handle));
        self.uploads += 1;
        id
    }
}

/// Height of each view's header (name, slice number, buttons), points.
const HEADER_HEIGHT: f32 = 22.0;

/// A view's rectangle split into its header strip and the area below it.
pub fn header_and_area(rect: Rect) -> (Rect, Rect) {
    let header = Rect::from_min_size(rect.min, vec2(rect.width(), HEADER_HEIGHT));
    let area = Rect::from_min_max(egui::pos2(rect.min.x, header.max.y), rect.max);
    (header, area)
}

/// Wheel movement this frame in lines: `(plain, with Ctrl)`.
pub fn wheel_lines(ui: &egui::Ui) -> (f32, f32) {
    ui.input(|input| {
        let mut lines = (0.0, 0.0);
        for event in &input.events {
            if let egui::Event::MouseWheel {
                unit,
                delta,
                modifiers,
                ..
            } = event
            {
                let amount = match unit {
                    egui::MouseWheelUnit::Point => delta.y / POINTS_PER_LINE,
                    egui::MouseWheelUnit::Line => delta.y,
                    egui::MouseWheelUnit::Page => delta.y * LINES_PER_PAGE,
                };
                if modifiers.command || modifiers.ctrl {
                    lines.1 += amount;
                } else {
                    lines.0 += amount;
                }
            }
        }
        lines
    })
}

/// `index + steps`, kept inside `0..count`.
pub fn step_index(index: usize, steps: i64, count: usize) -> usize {
    let last = count.saturating_sub(1) as i64;
    (index as i64 + steps).clamp(0, last) as usize
}

/// Screen position of the centre of slice pixel `pixel` when the slice fills `image_rect`.
pub fn pixel_centre(image_rect: Rect, [columns, rows]: [usize; 2], pixel: [usize; 2]) -> Pos2 {
    image_rect.min
        + vec2(
            (pixel[0] as f32 + 0.5) / columns.max(1) as f32 * image_rect.width(),
            (pixel[1] as f32 + 0.5) / rows.max(1) as f32 * image_rect.height(),
        )
}

/// The slice pixel under a screen position, when it is on the slice.
pub fn pixel_under(image_rect: Rect, [columns, rows]: [usize; 2], pos: Pos2) -> Option<[usize; 2]> {
    if !image_rect.contains(pos) || image_rect.width() <= 0.0 || image_rect.height() <= 0.0 {
        return None;
    }
    let u = (pos.x - image_rect.min.x) / image_rect.width();
    let v = (pos.y - image_rect.min.y) / image_rect.height();
    let column = ((u * columns as f32) as usize).min(columns.checked_sub(1)?);
    let row = ((v * rows as f32) as usize).min(rows.checked_sub(1)?);
    Some([column, row])
}

#[cfg(test)]
mod tests {
    use super::*;
    use eframe::egui::pos2;

    #[test]
    fn screen_positions_map_to_pixels_and_back() {
        let image_rect = Rect::from_min_size(pos2(10.0, 20.0), vec2(100.0, 50.0));
        assert_eq!(pixel_under(image_rect, [10, 5], pos2(10.0, 20.0)), Some([0, 0]));
        assert_eq!(pixel_under(image_rect, [10, 5], pos2(109.9, 69.9)), Some([9, 4]));
        assert_eq!(pixel_under(image_rect, [10, 5], pos2(9.0, 20.0)), None);
        assert_eq!(pixel_centre(image_rect, [10, 5], [0, 0]), pos2(15.0, 25.0));
        let centre = pixel_centre(image_rect, [10, 5], [7, 3]);
        assert_eq!(pixel_under(image_rect, [10, 5], centre), Some([7, 3]));
    }

    #[test]
    fn slice_steps_stop_at_the_ends() {
        assert_eq!(step_index(3, 2, 10), 5);
        assert_eq!(step_index(3, -5, 10), 0);
        assert_eq!(step_index(8, 5, 10), 9);
        assert_eq!(step_index(0, 1, 0), 0);
    }
}
