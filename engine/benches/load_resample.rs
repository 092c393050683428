//! Benchmark: load a 512×512×300 int16 `.nii.gz` CT and resample it to the 128³ model grid.
//!
//! `cargo bench -p engine --bench load_resample [-- FILE]`. Without FILE a synthetic CT is
//! written once to `target/bench-data/ct_512x512x300.nii.gz`. Prints one JSON object; compare
//! with `python3 engine/benches/reference/load_resample.py FILE` (nibabel + scipy.ndimage.zoom).

use engine::volume::{
    Affine, DataType, Geometry, Interpolation, Volume, WriteOptions, model_grid, read_nifti, resample,
    write_nifti,
};
use std::path::PathBuf;
use std::time::Instant;

const SHAPE: [usize; 3] = [512, 512, 300];
const MODEL_GRID: [usize; 3] = [128, 128, 128];
const REPEATS: usize = 3;

fn synthetic_ct(path: &std::path::Path) -> anyhow::Result<()> {
    let geometry = Geometry {
        shape: SHAPE,
        world_from_voxel: Affine::from_parts(
            [[-0.7, 0.0, 0.0], [0.0, -0.7, 0.0], [0.0, 0.0, 1.5]],
            [179.0, 179.0, -450.0],
        ),
    };
    // A body-like ellipse with smooth texture: compresses like real CT, not like zeros.
    let volume = Volume::from_fn(&geometry, |x, y, z| {
        let (u, v) = (x as f32 / 256.0 - 1.0, y as f32 / 256.0 - 1.0);
        if u * u / 0.8 + v * v / 0.5 > 1.0 {
            -1000.0 + ((x * 7 + y * 13 + z) % 17) as f32
        } else {
            40.0 + 60.0 * (u * 9.0).sin() * (v * 7.0 + z as f32 * 0.05).cos()
                + ((x * 31 + y * 17 + z * 7) % 23) as f32
        }
    });
    std::fs::create_dir_all(path.parent().unwrap_or(std::path::Path::new(".")))?;
    write_nifti(path, &volume, None, WriteOptions::new(DataType::I16))?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let file = match std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        Some(path) => PathBuf::from(path),
        None => {
            let path =
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data/ct_512x512x300.nii.gz");
            if !path.exists() {
                synthetic_ct(&path)?;
            }
            path
        }
    };
    let mut load_ms = Vec::new();
    let mut resample_ms = Vec::new();
    for _ in 0..REPEATS {
        let started = Instant::now();
        let image = read_nifti(&file)?;
        let loaded = Instant::now();
        let grid = model_grid(&image.volume.geometry(), MODEL_GRID);
        let out = resample(&image.volume, &grid, Interpolation::Linear, 0.0);
        let done = Instant::now();
        std::hint::black_box(out);
        load_ms.push((loaded - started).as_secs_f64() * 1e3);
        resample_ms.push((done - loaded).as_secs_f64() * 1e3);
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
    let report = serde_json::json!({
        "file": file,
        "threads": rayon::current_num_threads(),
        "load_ms": best(&load_ms),
        "resample_ms": best(&resample_ms),
        "total_ms": best(&load_ms.iter().zip(&resample_ms).map(|(a, b)| a + b).collect::<Vec<_>>()),
        "repeats": REPEATS,
    });
    let mut stdout = std::io::stdout().lock();
    std::io::Write::write_all(&mut stdout, format!("{report:#}\n").as_bytes())?;
    Ok(())
}
