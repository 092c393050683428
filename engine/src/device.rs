//! Choosing the compute device: CUDA when the driver, NVRTC and the CUDA headers are present,
//! then a wgpu adapter (AMD, Intel, Apple GPUs through Vulkan or Metal, shaders in WGSL), else the
//! CPU backend, with the reason. burn panics when a CUDA or wgpu device is created without one,
//! so we look for the pieces first and never try blindly; a panic that still comes out of a GPU
//! backend is turned into a [`DeviceFault`] by [`guard`].
//!
//! The GPU backends are burn's fused ones (`fusion` and `autotune` are on in the workspace
//! `Cargo.toml`): [`Cuda`] and [`Wgpu`] below are `Fusion<CubeBackend<…>>`.

use std::path::{Path, PathBuf};

/// Where tensors are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// The CPU backend (burn-flex).
    Cpu,
    /// The first NVIDIA GPU (burn-cuda).
    Cuda,
    /// The best wgpu adapter (burn-wgpu, WGSL shaders; Vulkan on Linux and Windows, Metal on
    /// macOS).
    Wgpu,
}

impl DeviceKind {
    /// `cpu`, `cuda` or `wgpu`, as `--device` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Wgpu => "wgpu",
        }
    }
}

/// The fused CUDA backend (burn-cuda with `fusion` and `autotune`).
pub type Cuda<F = f32> = burn::backend::Cuda<F>;
/// The fused wgpu backend (burn-wgpu with `fusion` and `autotune`, WGSL shaders).
pub type Wgpu<F = f32> = burn::backend::Wgpu<F>;
/// The CPU backend.
pub type Cpu = burn::backend::Flex;

/// The precision of the frozen Llama block: `--dtype f32|bf16`. Everything trainable (weights,
/// gradients, Adam's moments) and everything outside the block is always f32.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floats everywhere.
    #[default]
    F32,
    /// The frozen block's weights and activations in bfloat16 (its matrix products run in
    /// bf16 on tensor cores); a cast at its input and output.
    Bf16,
}

impl Precision {
    /// `f32` or `bf16`, as the JSON reports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        }
    }

    /// Bytes per value of the frozen block.
    pub fn value_bytes(self) -> u64 {
        match self {
            Self::F32 => 4,
            Self::Bf16 => 2,
        }
    }

    /// Parses `f32` or `bf16`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "f32" | "fp32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            other => Err(format!("{other:?}: the dtype is f32 or bf16")),
        }
    }

    /// Puts a model's frozen block in this precision on backend `B`, or says why `B` cannot.
    pub fn apply<B: crate::model::EngineBackend>(
        self,
        model: crate::model::MedVisionLlama<B>,
        device: &B::Device,
    ) -> Result<crate::model::MedVisionLlama<B>, String> {
        match self {
            Self::F32 => Ok(model),
            Self::Bf16 if B::supports_dtype(device, burn::tensor::DType::BF16) => {
                Ok(model.with_frozen_dtype(burn::tensor::FloatDType::BF16))
            }
            Self::Bf16 => Err(format!(
                "--dtype bf16 is not available on {}: this backend has no bfloat16 (wgpu's WGSL shaders); use --dtype f32, or --device cuda or cpu",
                B::name(device)
            )),
        }
    }
}

/// The device chosen and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceChoice {
    /// The device.
    pub kind: DeviceKind,
    /// Why, for logs and the UI ("CUDA: driver 550.54, NVRTC in /usr/local/cuda" or "CPU: no
    /// NVIDIA driver (/proc/driver/nvidia/version missing)").
    pub reason: String,
}

/// Libraries the CUDA backend opens at run time.
const DRIVER_LIBRARY: &str = "libcuda.so";
const NVRTC_LIBRARY: &str = "libnvrtc.so";

fn library_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    for root in cuda_roots() {
        dirs.push(root.join("lib64"));
        dirs.push(root.join("lib"));
        dirs.push(root.join("targets/x86_64-linux/lib"));
    }
    for system in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/nvidia/lib64",
        "/usr/local/nvidia/lib",
        "/lib/x86_64-linux-gnu",
    ] {
        dirs.push(PathBuf::from(system));
    }
    dirs
}

fn cuda_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = ["CUDA_PATH", "CUDA_HOME", "CUDA_ROOT"]
        .iter()
        .filter_map(|v| std::env::var_os(v).map(PathBuf::from))
        .collect();
    roots.push(PathBuf::from("/usr/local/cuda"));
    roots
}

/// Whether some file in `dir` starts with `prefix` (libcuda.so.1, libnvrtc.so.12, …).
fn has_library(dir: &Path, prefix: &str) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .any(|e| e.file_name().to_string_lossy().starts_with(prefix))
        })
        .unwrap_or(false)
}

/// Sizes the global thread pool the CPU backend computes on: the machine's cores less
/// `reserved_cores` (at least one thread), unless `RAYON_NUM_THREADS` says otherwise. With
/// `background`, the pool's threads run at a lower scheduling priority than the rest of the
/// process ([`BACKGROUND_NICENESS`]), and so does every thread that calls
/// [`enter_background_priority`] (the app's worker): the app computes on every core, and its
/// window still gets a core the moment it needs one. One compute thread against two on 2 cores:
/// demo-cpu bench train step 47 → 38 ms/sample, the demo `mvl train` 144.9 → 136.2 s
/// (docs/PERFORMANCE.md). Call once, first thing in `main`; later calls do nothing.
pub fn configure_compute_threads(reserved_cores: usize, background: bool) {
    BACKGROUND_COMPUTE.store(background, std::sync::atomic::Ordering::Relaxed);
    if std::env::var_os("RAYON_NUM_THREADS").is_some() && !background {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| cores.saturating_sub(reserved_cores).max(1));
    // An error means the pool already exists (a second call, or a test harness): keep it.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("compute-{i}"))
        .start_handler(move |_| {
            if background {
                enter_background_priority();
            }
        })
        .build_global();
}

/// The nice value of background compute threads: the kernel's scheduler gives a thread at nice
/// 0 about nine times the CPU share of one at nice 10 when both want to run.
pub const BACKGROUND_NICENESS: i32 = 10;

static BACKGROUND_COMPUTE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Lowers the calling thread to [`BACKGROUND_NICENESS`] when [`configure_compute_threads`] asked
/// for background compute (threads it creates afterwards inherit it); otherwise does nothing.
/// Returns whether the thread now runs at background priority.
pub fn enter_background_priority() -> bool {
    BACKGROUND_COMPUTE.load(std::sync::atomic::Ordering::Relaxed)
        && set_this_thread_niceness(BACKGROUND_NICENESS)
}

/// Sets the calling thread's nice value (Linux: nice is a per-thread attribute). Raising it needs
/// no privilege; lowering it back does. Elsewhere, does nothing and returns false.
#[cfg(target_os = "linux")]
pub fn set_this_thread_niceness(niceness: i32) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: setpriority(PRIO_PROCESS, 0, n) changes the scheduling priority of the calling
    // thread only; it takes plain integers and touches no memory of ours.
    let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, niceness) };
    result == 0
}

/// Sets the calling thread's nice value (Linux only; does nothing here).
#[cfg(not(target_os = "linux"))]
pub fn set_this_thread_niceness(_niceness: i32) -> bool {
    false
}

/// Finds the pieces the CUDA backend needs, or says which is missing.
pub fn detect_cuda() -> Result<String, String> {
    let version = std::fs::read_to_string("/proc/driver/nvidia/version")
        .map_err(|_| "no NVIDIA driver (/proc/driver/nvidia/version is missing)".to_string())?;
    let dirs = library_dirs();
    if !dirs.iter().any(|d| has_library(d, DRIVER_LIBRARY)) {
        return Err(format!("{DRIVER_LIBRARY} not found; install the NVIDIA driver"));
    }
    let Some(nvrtc_dir) = dirs.iter().find(|d| has_library(d, NVRTC_LIBRARY)) else {
        return Err(format!(
            "{NVRTC_LIBRARY} not found; install the CUDA toolkit (NVRTC) or set CUDA_PATH"
        ));
    };
    if !cuda_roots().iter().any(|r| r.join("include/cuda.h").is_file()) {
        return Err(
            "CUDA headers (include/cuda.h) not found; install the CUDA toolkit or set CUDA_PATH".into(),
        );
    }
    let driver = version.lines().next().unwrap_or("").trim().to_string();
    Ok(format!("{driver}; NVRTC in {}", nvrtc_dir.display()))
}

/// Picks the device: `requested` forces one (CUDA or a wgpu adapter still has to be present);
/// `None` prefers CUDA, then a hardware wgpu adapter, then the CPU. Software adapters (Mesa's
/// lavapipe, llvmpipe) are used only when asked for: they are slower than the CPU backend.
pub fn choose_device(requested: Option<DeviceKind>) -> Result<DeviceChoice, String> {
    let choice = |kind, reason: String| {
        // A GPU's first run compiles and tunes its kernels for minutes: say so, and where they
        // are kept.
        let reason = match kind {
            DeviceKind::Cpu => reason,
            DeviceKind::Cuda | DeviceKind::Wgpu => {
                format!("{reason}; {}", crate::kernel_cache::kernel_caches().describe())
            }
        };
        Ok(DeviceChoice { kind, reason })
    };
    match requested {
        Some(DeviceKind::Cpu) => choice(DeviceKind::Cpu, "CPU: requested".into()),
        Some(DeviceKind::Cuda) => match detect_cuda() {
            Ok(found) => choice(DeviceKind::Cuda, format!("CUDA: {found}")),
            Err(missing) => Err(format!("--device cuda asked for, but {missing}")),
        },
        Some(DeviceKind::Wgpu) => match detect_wgpu() {
            Ok(adapter) => choice(DeviceKind::Wgpu, format!("wgpu: {}", adapter.describe())),
            Err(missing) => Err(format!("--device wgpu asked for, but {missing}")),
        },
        None => {
            let no_cuda = match detect_cuda() {
                Ok(found) => return choice(DeviceKind::Cuda, format!("CUDA: {found}")),
                Err(missing) => missing,
            };
            match detect_wgpu() {
                Ok(adapter) if !adapter.software => choice(
                    DeviceKind::Wgpu,
                    format!("wgpu: {} (no CUDA: {no_cuda})", adapter.describe()),
                ),
                Ok(adapter) => choice(
                    DeviceKind::Cpu,
                    format!(
                        "CPU: {no_cuda}; the only wgpu adapter is {}, slower than the CPU backend (--device wgpu uses it anyway)",
                        adapter.describe()
                    ),
                ),
                Err(no_wgpu) => choice(DeviceKind::Cpu, format!("CPU: {no_cuda}; {no_wgpu}")),
            }
        }
    }
}

/// A wgpu adapter found by [`detect_wgpu`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WgpuAdapter {
    /// The driver's name for it ("AMD Radeon RX 7900", "llvmpipe (LLVM 15.0.6, 256 bits)").
    pub name: String,
    /// The graphics API it is reached through ("Vulkan", "Metal").
    pub api: String,
    /// A CPU (software) implementation.
    pub software: bool,
}

impl WgpuAdapter {
    /// "NAME (Vulkan, software)" for messages.
    pub fn describe(&self) -> String {
        let kind = if self.software { ", software" } else { "" };
        format!("{} ({}{kind})", self.name, self.api)
    }
}

/// The graphics API burn-wgpu's default device uses (its `AutoGraphicsApi`): Metal on macOS,
/// Vulkan elsewhere. Adapters of other APIs would not be the one burn picks.
fn wgpu_backends() -> wgpu::Backends {
    if cfg!(target_os = "macos") {
        wgpu::Backends::METAL
    } else {
        wgpu::Backends::VULKAN
    }
}

/// Lists the adapters of the API burn-wgpu uses and returns the one its default device picks
/// (discrete, then integrated, then virtual or other, then software), or says why there is none.
/// Never panics: a missing Vulkan loader is an empty list, and a panic inside wgpu is caught.
pub fn detect_wgpu() -> Result<WgpuAdapter, String> {
    let listed = std::panic::catch_unwind(|| {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu_backends(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        burn::cubecl::future::block_on(instance.enumerate_adapters(wgpu_backends()))
            .into_iter()
            .map(|adapter| adapter.get_info())
            .collect::<Vec<_>>()
    })
    .map_err(|panic| format!("listing wgpu adapters failed: {}", panic_text(panic.as_ref())))?;
    let rank = |kind: wgpu::DeviceType| match kind {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu | wgpu::DeviceType::Other => 2,
        wgpu::DeviceType::Cpu => 3,
    };
    listed
        .into_iter()
        .min_by_key(|info| rank(info.device_type))
        .map(|info| WgpuAdapter {
            name: info.name,
            api: format!("{:?}", info.backend),
            software: info.device_type == wgpu::DeviceType::Cpu,
        })
        .ok_or_else(|| {
            let api = if cfg!(target_os = "macos") { "Metal" } else { "Vulkan" };
            format!("no wgpu adapter ({api}): install the GPU's {api} driver (Mesa's mesa-vulkan-drivers for a software one)")
        })
}

/// The text of a panic payload.
pub fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

/// What went wrong inside a GPU backend, as a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceFault {
    /// The device ran out of memory.
    #[error(
        "{device} ran out of memory ({detail}); use a smaller batch (--batch), --dtype bf16, another GPU or --device cpu"
    )]
    OutOfMemory {
        /// `cuda` or `wgpu`.
        device: &'static str,
        /// The backend's message.
        detail: String,
    },
    /// Anything else: a driver, compiler or kernel failure.
    #[error(
        "the {device} backend failed: {detail}; check the driver (docs/GPU.md), or run with --device cpu"
    )]
    Backend {
        /// `cpu`, `cuda` or `wgpu`.
        device: &'static str,
        /// The backend's message.
        detail: String,
    },
}

impl DeviceFault {
    /// Classifies a panic message of the backend on `kind`.
    pub fn from_panic(kind: DeviceKind, detail: String) -> Self {
        let lower = detail.to_ascii_lowercase();
        let out_of_memory = ["out of memory", "outofmemory", "out_of_memory"]
            .iter()
            .any(|needle| lower.contains(needle));
        if out_of_memory {
            Self::OutOfMemory {
                device: kind.name(),
                detail,
            }
        } else {
            Self::Backend {
                device: kind.name(),
                detail,
            }
        }
    }
}

/// Runs `work` (something that computes on `kind`) and turns a panic of the backend into a
/// [`DeviceFault`]: burn reports out-of-memory, driver and kernel-compilation failures of its GPU
/// backends by panicking. Training writes `RUN/last` after every epoch, so a run stopped this way
/// resumes with `--resume`.
pub fn guard<T>(kind: DeviceKind, work: impl FnOnce() -> T) -> Result<T, DeviceFault> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        .map_err(|panic| DeviceFault::from_panic(kind, panic_text(panic.as_ref())))
}

/// Work that runs on whichever backend was chosen; the backend is picked once, here.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// Runs on backend `B`.
    fn run<B: crate::model::EngineBackend>(self, device: B::Device) -> Self::Output;
}

/// Training work: runs on the autodiff wrapper of the chosen backend.
pub trait AutodiffJob {
    /// What the job returns.
    type Output;
    /// Runs on backend `B`.
    fn run<B: crate::model::EngineAutodiffBackend>(self, device: B::Device) -> Self::Output;
}

/// The device burn-wgpu uses: its default one, the adapter [`detect_wgpu`] names.
pub fn wgpu_device() -> burn::backend::wgpu::WgpuDevice {
    burn::backend::wgpu::WgpuDevice::DefaultDevice
}

/// Runs `job` on the CPU backend or, when chosen (and so detected), on CUDA or wgpu.
pub fn dispatch<J: BackendJob>(kind: DeviceKind, job: J) -> J::Output {
    match kind {
        DeviceKind::Cpu => job.run::<Cpu>(Default::default()),
        DeviceKind::Cuda => job.run::<Cuda>(Default::default()),
        DeviceKind::Wgpu => job.run::<Wgpu>(wgpu_device()),
    }
}

/// Runs `job` on the autodiff wrapper of the CPU, CUDA or wgpu backend.
pub fn dispatch_autodiff<J: AutodiffJob>(kind: DeviceKind, job: J) -> J::Output {
    use burn::backend::Autodiff;
    match kind {
        DeviceKind::Cpu => job.run::<Autodiff<Cpu>>(Default::default()),
        DeviceKind::Cuda => job.run::<Autodiff<Cuda>>(Default::default()),
        DeviceKind::Wgpu => job.run::<Autodiff<Wgpu>>(wgpu_device()),
    }
}

/// Parses "cpu", "cuda" or "wgpu".
pub fn parse_device(text: &str) -> Result<DeviceKind, String> {
    match text.to_ascii_lowercase().as_str() {
        "cpu" => Ok(DeviceKind::Cpu),
        "cuda" | "gpu" => Ok(DeviceKind::Cuda),
        "wgpu" | "vulkan" | "metal" => Ok(DeviceKind::Wgpu),
        other => Err(format!("{other:?}: the device is cpu, cuda or wgpu")),
    }
}

#[cfg(test)]
#[path = "device_wgpu_tests.rs"]
mod wgpu_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_available_and_cuda_is_refused_or_found_without_panicking() {
        assert_eq!(
            choose_device(Some(DeviceKind::Cpu)).map(|c| c.kind),
            Ok(DeviceKind::Cpu)
        );
        match detect_cuda() {
            Ok(found) => assert_eq!(
                choose_device(None).map(|c| c.kind),
                Ok(DeviceKind::Cuda),
                "{found}"
            ),
            Err(missing) => {
                // Skipped on GPU machines; on this CPU-only machine the reason is reported.
                let error = choose_device(Some(DeviceKind::Cuda)).expect_err("no CUDA here");
                assert!(error.contains(&missing));
                let choice = choose_device(None).expect("falls back");
                assert_eq!(choice.kind, DeviceKind::Cpu);
                assert!(choice.reason.starts_with("CPU: "));
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_set_to_background_niceness_reads_so_in_proc_and_others_do_not() {
        // The kernel's own view (/proc/thread-self/stat, field 19) rather than our bookkeeping.
        fn niceness_of_this_thread() -> i64 {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
            // Fields after the command name, which is in parentheses and may hold spaces.
            let after = &stat[stat.rfind(')').expect("comm") + 2..];
            after
                .split_whitespace()
                .nth(16)
                .expect("field 19")
                .parse()
                .expect("number")
        }
        let before = niceness_of_this_thread();
        // 19 is the lowest priority there is (a test run under `nice -n 19` cannot go lower).
        let target = (before + 5).min(19);
        let lowered = std::thread::spawn(move || {
            assert!(set_this_thread_niceness(target as i32));
            niceness_of_this_thread()
        })
        .join()
        .expect("thread");
        assert_eq!(lowered, target);
        assert_eq!(
            niceness_of_this_thread(),
            before,
            "only the calling thread changes"
        );
    }
}
