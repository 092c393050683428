//! MedVisionLlama Studio: the desktop app. `medvisionllama-studio [PATH]` opens an MSD task
//! folder or a NIfTI scan; with no argument it opens the built-in demo task.

mod loader;
mod slice_view;
mod studio;

fn main() -> eframe::Result {
    let path = std::env::args_os().nth(1).map(std::path::PathBuf::from);
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("MedVisionLlama Studio")
            .with_inner_size([1100.0, 760.0]),
        ..Default::default()
    };
    eframe::run_native(
        "MedVisionLlama Studio",
        options,
        Box::new(move |cc| Ok(Box::new(studio::Studio::new(&cc.egui_ctx, path)))),
    )
}
