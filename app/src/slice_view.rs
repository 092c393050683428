//! Turning one axial slice of a RAS+ volume into an image: window/level to grey, label colours
//! blended on top, in radiological convention (patient right on screen left, anterior up).

use eframe::egui::{Color32, ColorImage};
use engine::volume::Volume;

/// A display window: intensities `level ± width/2` map to black..white.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Width of the intensity range shown.
    pub width: f32,
    /// Centre of the intensity range shown.
    pub level: f32,
}

/// CT soft-tissue window (W 400, L 40).
pub const CT_SOFT_TISSUE: Window = Window {
    width: 400.0,
    level: 40.0,
};

/// Colours of label values 1, 2, … (0 is transparent).
pub const LABEL_COLOURS: [Color32; 6] = [
    Color32::from_rgb(230, 60, 60),
    Color32::from_rgb(60, 200, 90),
    Color32::from_rgb(70, 120, 240),
    Color32::from_rgb(240, 200, 40),
    Color32::from_rgb(200, 80, 220),
    Color32::from_rgb(40, 210, 220),
];

/// The colour of a label value.
pub fn label_colour(value: u32) -> Color32 {
    LABEL_COLOURS[(value.saturating_sub(1) as usize) % LABEL_COLOURS.len()]
}

/// Renders axial slice `z` of a RAS+ `image`, with `label` blended at `opacity` when given.
pub fn axial_slice(
    image: &Volume,
    label: Option<&Volume>,
    z: usize,
    window: Window,
    opacity: f32,
) -> ColorImage {
    let [nx, ny, _] = image.shape();
    let low = window.level - window.width / 2.0;
    let scale = 255.0 / window.width.max(f32::EPSILON);
    let mut pixels = Vec::with_capacity(nx * ny);
    for row in 0..ny {
        let y = ny - 1 - row; // anterior (high y) at the top
        for column in 0..nx {
            let x = nx - 1 - column; // patient right (high x in RAS) on the left
            let grey = ((image.at(x, y, z) - low) * scale).clamp(0.0, 255.0) as u8;
            let mut colour = Color32::from_gray(grey);
            if let Some(label) = label {
                let value = label.at(x, y, z);
                if value > 0.0 {
                    colour = blend(colour, label_colour(value as u32), opacity);
                }
            }
            pixels.push(colour);
        }
    }
    ColorImage::new([nx, ny], pixels)
}

fn blend(under: Color32, over: Color32, opacity: f32) -> Color32 {
    let mix = |a: u8, b: u8| (f32::from(a) * (1.0 - opacity) + f32::from(b) * opacity).round() as u8;
    Color32::from_rgb(
        mix(under.r(), over.r()),
        mix(under.g(), over.g()),
        mix(under.b(), over.b()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::volume::{Affine, Geometry};

    #[test]
    fn window_maps_level_to_mid_grey_and_orientation_is_radiological() {
        let geometry = Geometry {
            shape: [3, 2, 1],
            world_from_voxel: Affine::identity(),
        };
        // Voxel (2, 1, 0) is the most right and anterior: top-left on screen.
        let image = Volume::from_fn(&geometry, |x, y, _| if (x, y) == (2, 1) { 40.0 } else { -1000.0 });
        let slice = axial_slice(&image, None, 0, CT_SOFT_TISSUE, 0.5);
        assert_eq!(slice.size, [3, 2]);
        assert_eq!(slice.pixels[0], Color32::from_gray(127));
        assert_eq!(slice.pixels[5], Color32::from_gray(0));
    }
}
