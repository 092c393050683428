//! Where the GPU backends keep compiled kernels and autotune results between runs.
//!
//! burn's CUDA and wgpu backends compile every kernel at run time (NVRTC, WGSL) and, with
//! `autotune`, compile and time several candidates for every matrix-product shape before picking
//! one. Measured on an H200 (docs/GPU.md): one NVRTC compile takes 0.6–1.4 s, and the first
//! inference forward of `official-code` at batch 4 compiled 266 kernels (200 of them matmul
//! candidates) in six minutes without finishing. cubecl can keep both the compiled kernels and
//! the autotune choices on disk, but keeps no compiled kernels by default and puts autotune
//! results in the `target/` folder of whatever Cargo project the process was started in. The
//! binaries call [`configure_kernel_caches`] first thing so that every run after the first on a
//! machine loads its kernels instead of compiling and tuning them again.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::cubecl::config::cache::CacheConfig;
use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};

/// Overrides the folder (an empty value turns the engine's choice off and leaves cubecl's).
pub const KERNEL_CACHE_ENV: &str = "MVL_KERNEL_CACHE";

/// The configuration files cubecl reads from the working folder or any folder above it; when
/// one is there, the user configured cubecl and the engine leaves it alone.
const CUBECL_CONFIG_FILES: [&str; 2] = ["cubecl.toml", "CubeCL.toml"];

/// burn's configuration files, which configure cubecl only through a `[cubecl]` table.
const BURN_CONFIG_FILES: [&str; 2] = ["burn.toml", "Burn.toml"];

/// What [`configure_kernel_caches`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelCaches {
    /// Compiled kernels and autotune results are kept in this folder.
    Folder(PathBuf),
    /// A cubecl configuration file (this one) decides.
    UserConfig(PathBuf),
    /// No folder could be chosen (no cache folder on this system, or the override is empty):
    /// cubecl's defaults apply: kernels are compiled again by every run, and autotune choices
    /// go to the `target/` of the Cargo project the process runs in, else the user's cache.
    CubeclDefaults,
}

impl KernelCaches {
    /// One line for logs and the device choice.
    pub fn describe(&self) -> String {
        match self {
            Self::Folder(dir) => format!(
                "GPU kernels are compiled and tuned on first use (minutes, once per machine) and kept in {}",
                dir.display()
            ),
            Self::UserConfig(file) => format!(
                "GPU kernels are compiled and tuned on first use; caching as {} says",
                file.display()
            ),
            Self::CubeclDefaults => {
                "GPU kernels are compiled on first use (minutes) and again by every run".into()
            }
        }
    }
}

static CONFIGURED: OnceLock<KernelCaches> = OnceLock::new();

/// Decides where kernels are cached: a cubecl configuration file in `working_dir` or above it
/// wins; then the override (`MVL_KERNEL_CACHE`; empty means "cubecl's defaults"); then
/// `medvisionllama-studio/kernels` under the user's cache folder.
pub fn plan_kernel_caches(
    working_dir: Option<&Path>,
    override_dir: Option<&str>,
    user_cache_dir: Option<&Path>,
) -> KernelCaches {
    if let Some(file) = working_dir.and_then(find_cubecl_config) {
        return KernelCaches::UserConfig(file);
    }
    match override_dir {
        Some("") => KernelCaches::CubeclDefaults,
        Some(dir) => KernelCaches::Folder(PathBuf::from(dir)),
        None => user_cache_dir.map_or(KernelCaches::CubeclDefaults, |dir| {
            KernelCaches::Folder(dir.join("medvisionllama-studio").join("kernels"))
        }),
    }
}

/// The cubecl configuration file cubecl itself would read: in `dir` or the nearest folder above
/// it, a `cubecl.toml`, or else a `burn.toml` with a `[cubecl]` table.
fn find_cubecl_config(dir: &Path) -> Option<PathBuf> {
    let configures_cubecl = |file: &Path| {
        std::fs::read_to_string(file)
            .is_ok_and(|text| text.lines().any(|l| l.trim_start().starts_with("[cubecl")))
    };
    dir.ancestors().find_map(|folder| {
        let own = CUBECL_CONFIG_FILES
            .iter()
            .map(|name| folder.join(name))
            .find(|f| f.is_file());
        own.or_else(|| {
            BURN_CONFIG_FILES
                .iter()
                .map(|name| folder.join(name))
                .find(|f| f.is_file() && configures_cubecl(f))
        })
    })
}

/// `plan`, unless its folder cannot be created (a read-only home, a file in the way): then
/// cubecl's defaults, so that a GPU run still works, only without the cache.
pub fn with_usable_folder(plan: KernelCaches) -> KernelCaches {
    match &plan {
        KernelCaches::Folder(dir) if std::fs::create_dir_all(dir).is_err() => KernelCaches::CubeclDefaults,
        _ => plan,
    }
}

/// The cubecl configuration that keeps compiled kernels (CUDA's PTX; the WGSL backend stores
/// none, checked on lavapipe) and autotune results in `dir`; everything else as cubecl's
/// defaults.
pub fn config_with_cache_folder(mut config: CubeClRuntimeConfig, dir: &Path) -> CubeClRuntimeConfig {
    config.compilation.cache = Some(CacheConfig::File(dir.to_path_buf()));
    config.autotune.cache = CacheConfig::File(dir.to_path_buf());
    config
}

/// Configures cubecl's kernel caches for this process, once, before any GPU device is created
/// (the binaries call it first thing). Later calls return the first decision. A GPU backend
/// already initialised keeps its configuration (cubecl reads it once).
pub fn configure_kernel_caches() -> &'static KernelCaches {
    CONFIGURED.get_or_init(|| {
        let working_dir = std::env::current_dir().ok();
        let override_dir = std::env::var(KERNEL_CACHE_ENV).ok();
        let plan = with_usable_folder(plan_kernel_caches(
            working_dir.as_deref(),
            override_dir.as_deref(),
            dirs::cache_dir().as_deref(),
        ));
        if let KernelCaches::Folder(dir) = &plan {
            let mut storage = CubeClRuntimeConfig::storage().lock();
            if storage.is_none() {
                // cubecl's own environment switches (CUBECL_DEBUG_LOG, CUBECL_AUTOTUNE_LEVEL)
                // still apply on top.
                let config = config_with_cache_folder(CubeClRuntimeConfig::default(), dir);
                *storage = Some(std::sync::Arc::new(config.override_from_env()));
            }
        }
        plan
    })
}

/// The decision of [`configure_kernel_caches`], or what cubecl does when it was never called
/// (library use, tests).
pub fn kernel_caches() -> KernelCaches {
    CONFIGURED.get().cloned().unwrap_or(KernelCaches::CubeclDefaults)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cubecl_file_in_the_working_folder_or_above_wins() {
        let root = tempfile::tempdir().expect("tempdir");
        let nested = root.path().join("a").join("b");
        std::fs::create_dir_all(&nested).expect("mkdir");
        std::fs::write(root.path().join("cubecl.toml"), "").expect("write");
        let plan = plan_kernel_caches(Some(&nested), Some("/elsewhere"), Some(Path::new("/cache")));
        assert_eq!(plan, KernelCaches::UserConfig(root.path().join("cubecl.toml")));
        // A burn.toml counts only with a [cubecl] table (cubecl reads nothing else from it).
        std::fs::remove_file(root.path().join("cubecl.toml")).expect("rm");
        std::fs::write(nested.join("burn.toml"), "[other]\nx = 1\n").expect("write");
        let plan = plan_kernel_caches(Some(&nested), None, Some(Path::new("/cache")));
        assert_eq!(
            plan,
            KernelCaches::Folder(PathBuf::from("/cache/medvisionllama-studio/kernels"))
        );
        std::fs::write(
            nested.join("burn.toml"),
            "[cubecl.autotune]\nlevel = \"minimal\"\n",
        )
        .expect("write");
        let plan = plan_kernel_caches(Some(&nested), None, Some(Path::new("/cache")));
        assert_eq!(plan, KernelCaches::UserConfig(nested.join("burn.toml")));
    }

    #[test]
    fn the_override_then_the_user_cache_folder_decide() {
        let empty = tempfile::tempdir().expect("tempdir");
        let cache = Path::new("/home/someone/.cache");
        assert_eq!(
            plan_kernel_caches(Some(empty.path()), Some("/fast/disk"), Some(cache)),
            KernelCaches::Folder(PathBuf::from("/fast/disk"))
        );
        assert_eq!(
            plan_kernel_caches(Some(empty.path()), Some(""), Some(cache)),
            KernelCaches::CubeclDefaults
        );
        assert_eq!(
            plan_kernel_caches(Some(empty.path()), None, Some(cache)),
            KernelCaches::Folder(PathBuf::from(
                "/home/someone/.cache/medvisionllama-studio/kernels"
            ))
        );
        assert_eq!(plan_kernel_caches(None, None, None), KernelCaches::CubeclDefaults);
    }

    #[test]
    fn a_folder_that_cannot_be_created_falls_back_to_cubecls_defaults() {
        let root = tempfile::tempdir().expect("tempdir");
        let file = root.path().join("a-file");
        std::fs::write(&file, "").expect("write");
        let blocked = KernelCaches::Folder(file.join("kernels"));
        assert_eq!(with_usable_folder(blocked), KernelCaches::CubeclDefaults);
        let fine = KernelCaches::Folder(root.path().join("cache").join("kernels"));
        assert_eq!(with_usable_folder(fine.clone()), fine);
        assert!(root.path().join("cache").join("kernels").is_dir());
    }

    #[test]
    fn the_folder_holds_both_the_compiled_kernels_and_the_autotune_results() {
        let dir = Path::new("/somewhere/kernels");
        let config = config_with_cache_folder(CubeClRuntimeConfig::default(), dir);
        // cubecl keeps no compiled kernels unless told to.
        assert!(CubeClRuntimeConfig::default().compilation.cache.is_none());
        match (&config.compilation.cache, &config.autotune.cache) {
            (Some(CacheConfig::File(a)), CacheConfig::File(b)) => {
                assert_eq!(a, dir);
                assert_eq!(b, dir);
            }
            other => panic!("caches not in {}: {other:?}", dir.display()),
        }
        assert_eq!(
            config.compilation.cache.as_ref().map(CacheConfig::root),
            Some(dir.to_path_buf())
        );
    }
}
