//! MedVisionLlama Studio: the desktop app.
//! `medvisionllama-studio [TASK_FOLDER | DICOM_FOLDER | SCAN.nii.gz [--label FILE] [--prediction FILE]]`;
//! with no argument it opens the built-in demo task.

use app::io::source::OpenRequest;
use app::shell::renderer::RendererChoice;

/// The allocator of the whole process: mimalloc keeps freed tensor buffers for reuse where glibc
/// unmaps them and the next step faults in zeroed pages again (issue 11's profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> eframe::Result {
    engine::allocator::keep_freed_memory();
    engine::device::configure_compute_threads(0, true);
    engine::kernel_cache::configure_kernel_caches();
    let request = match OpenRequest::from_args(std::env::args_os().skip(1)) {
        Ok(request) => request,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let choice = app::shell::renderer::choose();
    eprintln!("renderer: {}", choice.note);
    match run(&choice, request.clone()) {
        // wgpu found an adapter but could not draw into the window: start again on glow (eframe
        // keeps its event loop for this).
        Err(error) if choice.renderer == eframe::Renderer::Wgpu => {
            eprintln!("wgpu could not start ({error}); starting with glow");
            let glow = RendererChoice {
                renderer: eframe::Renderer::Glow,
                note: format!("glow, because wgpu could not start ({error}): the 3D view draws on the CPU"),
            };
            run(&glow, request)
        }
        result => result,
    }
}

/// Opens the window with `choice`'s renderer and runs the app until it closes.
fn run(choice: &RendererChoice, request: OpenRequest) -> eframe::Result {
    let mut viewport = eframe::egui::ViewportBuilder::default()
        .with_title("MedVisionLlama Studio")
        .with_inner_size([1280.0, 820.0]);
    match app::shell::icon::window_icon() {
        Ok(icon) => viewport = viewport.with_icon(std::sync::Arc::new(icon)),
        Err(message) => eprintln!("{message}; the window opens without an icon"),
    }
    let options = eframe::NativeOptions {
        viewport,
        renderer: choice.renderer,
        // The 3D view's surfaces hide each other through a depth buffer (wgpu only).
        depth_buffer: app::viewer::surface_gpu::DEPTH_BITS,
        ..Default::default()
    };
    let note = choice.note.clone();
    eframe::run_native(
        "MedVisionLlama Studio",
        options,
        Box::new(move |cc| {
            let mut studio = app::Studio::new(&cc.egui_ctx, cc.storage, request);
            studio.use_surface_renderer(cc.wgpu_render_state.as_ref(), note);
            Ok(Box::new(studio))
        }),
    )
}
