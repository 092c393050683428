//! The window icon, embedded from `assets/icon.png` (written by `tools/make_icon.py`).

use eframe::egui::IconData;

/// The PNG as committed.
const ICON_PNG: &[u8] = include_bytes!("../../../assets/icon.png");

/// The window icon as RGBA pixels.
///
/// # Errors
/// The embedded PNG does not decode to 8-bit RGBA (a broken asset; the window then opens
/// without an icon).
pub fn window_icon() -> Result<IconData, String> {
    decode_rgba(ICON_PNG)
}

/// Decodes an 8-bit RGBA PNG.
fn decode_rgba(bytes: &[u8]) -> Result<IconData, String> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("the icon does not decode: {e}"))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| "the icon is too large".to_string())?;
    let mut rgba = vec![0; size];
    let info = reader
        .next_frame(&mut rgba)
        .map_err(|e| format!("the icon does not decode: {e}"))?;
    if info.color_type != png::ColorType::Rgba || info.bit_depth != png::BitDepth::Eight {
        return Err(format!(
            "the icon is {:?} {:?}, not 8-bit RGBA",
            info.color_type, info.bit_depth
        ));
    }
    rgba.truncate(info.buffer_size());
    Ok(IconData {
        rgba,
        width: info.width,
        height: info.height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_icon_is_64_pixels_square_with_a_transparent_corner_and_an_opaque_centre() {
        let icon = window_icon().expect("the committed icon decodes");
        assert_eq!((icon.width, icon.height), (64, 64));
        assert_eq!(icon.rgba.len(), 64 * 64 * 4);
        let alpha = |x: usize, y: usize| icon.rgba[(y * 64 + x) * 4 + 3];
        // tools/make_icon.py: outside the body ellipse is transparent, inside opaque.
        assert_eq!(alpha(0, 0), 0);
        assert_eq!(alpha(32, 32), 255);
        assert!(decode_rgba(b"not a png").is_err());
    }
}
