//! A child process for the `kill -9` tests (`tests/tests/kill9_writers.rs`): it replaces one file
//! again and again through the engine's writers — the ones the app saves a label, autosaves an
//! edit session and saves `reviews.json` with, and the preprocessing cache — until it is killed.
//! It prints `ready` once the first version is complete, so the test never kills it before
//! there is something to keep.
//!
//! `writer-under-test label|autosave|reviews TARGET SCAN` or `writer-under-test cache TASK OUT`.
//! Generation `g` of a label has every voxel `1 + g % 2`; of the reviews, `task` =
//! `"generation g"` and `REVIEW_CASES + g % 2` cases; of the cache, a model grid of
//! `CACHE_GRIDS[g % 2]`. A reader can therefore tell a complete version from a mixed one.

use engine::data::{PreprocessOptions, ReviewSheet, ReviewState, open_task, preprocess_task};
use engine::volume::{read_nifti, write_u8_label_like};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Cases in an even generation of the reviews (odd ones have one more).
pub const REVIEW_CASES: usize = 400;
/// The two model grids the cache alternates between.
pub const CACHE_GRIDS: [[usize; 3]; 2] = [[16, 16, 8], [8, 8, 4]];

fn write_label(target: &Path, scan: &Path, generation: u64) -> Result<(), String> {
    let image = read_nifti(scan).map_err(|e| e.to_string())?;
    let shape = image.volume.shape();
    let value = 1 + (generation % 2) as u8;
    let voxels = vec![value; shape.iter().product()];
    if let Some(folder) = target.parent() {
        std::fs::create_dir_all(folder).map_err(|e| e.to_string())?;
    }
    write_u8_label_like(
        target,
        shape,
        &image.header.world_from_voxel_mm(),
        &voxels,
        &image.header,
    )
    .map_err(|e| e.to_string())
}

fn write_reviews(target: &Path, generation: u64) -> Result<(), String> {
    let mut sheet = ReviewSheet::new(format!("generation {generation}"));
    for case in 0..REVIEW_CASES + (generation % 2) as usize {
        let review = sheet.review_mut(&format!("case_{case:04}"));
        review.state = ReviewState::NeedsCorrection;
        review.comment = format!("generation {generation}: leak into the liver, slices 3–5");
    }
    sheet.save(target).map_err(|e| e.to_string())
}

fn write_cache(task: &Path, out: &Path, generation: u64) -> Result<(), String> {
    let task = open_task(task).map_err(|e| e.to_string())?;
    let options = PreprocessOptions {
        size: CACHE_GRIDS[(generation % 2) as usize],
        channels: None,
    };
    preprocess_task(&task, out, &options).map_err(|e| e.to_string())?;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [kind, target, extra] = args.as_slice() else {
        let _ = writeln!(
            std::io::stderr(),
            "usage: writer-under-test label|autosave|reviews TARGET SCAN | cache TASK OUT"
        );
        return ExitCode::FAILURE;
    };
    let (target, extra) = (Path::new(target), Path::new(extra));
    for generation in 0u64.. {
        let written = match kind.as_str() {
            "label" | "autosave" => write_label(target, extra, generation),
            "reviews" => write_reviews(target, generation),
            "cache" => write_cache(target, extra, generation),
            other => Err(format!("unknown kind {other}")),
        };
        if let Err(error) = written {
            let _ = writeln!(std::io::stderr(), "{kind}: {error}");
            return ExitCode::FAILURE;
        }
        if generation == 0 {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "ready");
            let _ = out.flush();
        }
    }
    ExitCode::SUCCESS
}
