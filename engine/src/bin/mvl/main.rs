//! `mvl`: the MedVisionLlama Studio command line (see `engine::cli`).

fn main() -> std::process::ExitCode {
    engine::device::configure_compute_threads();
    engine::cli::run(std::env::args_os(), &mut engine::cli::Output::stdout())
}
