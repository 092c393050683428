//! Choosing the compute device: CUDA when the driver, NVRTC and the CUDA headers are present,
//! else the CPU backend, with the reason. burn panics when a CUDA device is created without a
//! driver, so we look for the pieces first and never try blindly.

use std::path::{Path, PathBuf};

/// Where tensors are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    /// The CPU backend (burn-flex).
    Cpu,
    /// The first NVIDIA GPU (burn-cuda).
    Cuda,
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

/// Sizes the global thread pool the CPU backend computes on: one thread fewer than the machine
/// has cores (at least one), unless `RAYON_NUM_THREADS` says otherwise. On the 2-core machines the
/// demo targets, the tensor ops of this model are too small to gain from a second thread (the
/// pool's wake-ups cost as much: docs/PERFORMANCE.md), and the free core keeps the batch-preparing
/// thread and the app's window running. Call once, first thing in `main`; later calls do nothing.
pub fn configure_compute_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // An error means the pool already exists (a second call, or a test harness): keep it.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(cores.saturating_sub(1).max(1))
        .thread_name(|i| format!("compute-{i}"))
        .build_global();
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

/// Picks the device: `requested` forces one (CUDA still has to be present), `None` prefers CUDA.
pub fn choose_device(requested: Option<DeviceKind>) -> Result<DeviceChoice, String> {
    match (requested, detect_cuda()) {
        (Some(DeviceKind::Cpu), _) => Ok(DeviceChoice {
            kind: DeviceKind::Cpu,
            reason: "CPU: requested".into(),
        }),
        (_, Ok(found)) => Ok(DeviceChoice {
            kind: DeviceKind::Cuda,
            reason: format!("CUDA: {found}"),
        }),
        (Some(DeviceKind::Cuda), Err(missing)) => Err(format!("--device cuda asked for, but {missing}")),
        (None, Err(missing)) => Ok(DeviceChoice {
            kind: DeviceKind::Cpu,
            reason: format!("CPU: {missing}"),
        }),
    }
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

/// Runs `job` on the CPU backend or, when chosen (and so detected), on CUDA.
pub fn dispatch<J: BackendJob>(kind: DeviceKind, job: J) -> J::Output {
    match kind {
        DeviceKind::Cpu => job.run::<burn::backend::Flex>(Default::default()),
        DeviceKind::Cuda => job.run::<burn::backend::Cuda>(Default::default()),
    }
}

/// Runs `job` on the autodiff CPU backend or autodiff CUDA.
pub fn dispatch_autodiff<J: AutodiffJob>(kind: DeviceKind, job: J) -> J::Output {
    match kind {
        DeviceKind::Cpu => job.run::<burn::backend::Autodiff<burn::backend::Flex>>(Default::default()),
        DeviceKind::Cuda => job.run::<burn::backend::Autodiff<burn::backend::Cuda>>(Default::default()),
    }
}

/// Parses "cpu" or "cuda".
pub fn parse_device(text: &str) -> Result<DeviceKind, String> {
    match text.to_ascii_lowercase().as_str() {
        "cpu" => Ok(DeviceKind::Cpu),
        "cuda" | "gpu" => Ok(DeviceKind::Cuda),
        other => Err(format!("{other:?}: the device is cpu or cuda")),
    }
}

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
}
