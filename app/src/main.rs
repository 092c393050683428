//! MedVisionLlama Studio: the desktop app.
//! `medvisionllama-studio [TASK_FOLDER | DICOM_FOLDER | SCAN.nii.gz [--label FILE] [--prediction FILE]]`;
//! with no argument it opens the built-in demo task.

use app::io::source::OpenRequest;

/// The allocator of the whole process: mimalloc keeps freed tensor buffers for reuse where glibc
/// unmaps them and the next step faults in zeroed pages again (issue 11's profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> eframe::Result {
    engine::allocator::keep_freed_memory();
    engine::device::configure_compute_threads(1);
    let request = match OpenRequest::from_args(std::env::args_os().skip(1)) {
        Ok(request) => request,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let mut viewport = eframe::egui::ViewportBuilder::default()
        .with_title("MedVisionLlama Studio")
        .with_inner_size([1280.0, 820.0]);
    match app::shell::icon::window_icon() {
        Ok(icon) => viewport = viewport.with_icon(std::sync::Arc::new(icon)),
        Err(message) => eprintln!("{message}; the window opens without an icon"),
    }
    let options = eframe::NativeOptions {
        viewport,
        ..Default::default()
    };
    eframe::run_native(
        "MedVisionLlama Studio",
        options,
        Box::new(move |cc| Ok(Box::new(app::Studio::new(&cc.egui_ctx, cc.storage, request)))),
    )
}
