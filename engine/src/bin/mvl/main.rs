//! `mvl`: the MedVisionLlama Studio command line (see `engine::cli`).

/// The allocator of the whole process: mimalloc keeps freed tensor buffers for reuse where glibc
/// unmaps them and the next step faults in zeroed pages again (issue 11's profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    engine::allocator::keep_freed_memory();
    engine::device::configure_compute_threads(0, false);
    engine::kernel_cache::configure_kernel_caches();
    engine::cli::run(std::env::args_os(), &mut engine::cli::Output::stdout())
}
