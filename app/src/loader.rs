//! Loading off the UI thread: finds (or generates) the demo task, opens a task or a scan, and
//! hands back the first case reoriented for display. The UI is woken when the result is ready.

use engine::data::{self, PhantomOptions};
use engine::volume::{Volume, read_nifti, reorient_to_canonical};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

/// A scan ready to show: image and optional label, both RAS+.
pub struct LoadedCase {
    /// Where it came from, for the title bar.
    pub source: PathBuf,
    /// Case id.
    pub id: String,
    /// Image (channel 0 shown), RAS+.
    pub image: Volume,
    /// Label on the same grid, RAS+.
    pub label: Option<Volume>,
    /// Label value → name.
    pub label_names: Vec<(u32, String)>,
    /// Whether the first channel is CT (chooses the default window).
    pub is_ct: bool,
}

/// Phantoms written on first launch: enough to look through, quick to generate.
const DEMO_CASES: usize = 12;
const DEMO_TEST_CASES: usize = 2;

/// The folder the demo task lives in (`$XDG_DATA_HOME/medvisionllama-studio/demo-task`).
pub fn demo_task_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("medvisionllama-studio")
        .join("demo-task")
}

/// Starts loading on a named thread; `wake` is called once the result is in the channel.
pub fn spawn_load(
    path: Option<PathBuf>,
    wake: impl Fn() + Send + 'static,
) -> mpsc::Receiver<Result<LoadedCase, String>> {
    let (sender, receiver) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new().name("loader".into()).spawn(move || {
        let result = load(path).map_err(|e| format!("{e:#}"));
        let _ = sender.send(result);
        wake();
    });
    if let Err(error) = spawned {
        // Without a thread there is nothing to wait for: report it through the same channel.
        let (failed_sender, failed_receiver) = mpsc::sync_channel(1);
        let _ = failed_sender.send(Err(format!("cannot start the loading thread: {error}")));
        return failed_receiver;
    }
    receiver
}

fn load(path: Option<PathBuf>) -> anyhow::Result<LoadedCase> {
    let path = match path {
        Some(path) => path,
        None => ensure_demo_task()?,
    };
    if path.is_dir() {
        load_task(&path)
    } else {
        load_scan(&path)
    }
}

fn ensure_demo_task() -> anyhow::Result<PathBuf> {
    let dir = demo_task_dir();
    if !dir.join("dataset.json").is_file() {
        data::write_phantom_task(
            &dir,
            &PhantomOptions {
                training_cases: DEMO_CASES,
                test_cases: DEMO_TEST_CASES,
                ..PhantomOptions::default()
            },
        )?;
    }
    Ok(dir)
}

fn load_task(dir: &Path) -> anyhow::Result<LoadedCase> {
    let task = data::open_task(dir)?;
    let case = task
        .cases()
        .next()
        .ok_or_else(|| anyhow::anyhow!("{}: dataset.json lists no cases", dir.display()))?;
    let image = read_nifti(&case.image)?.volume;
    let label = match &case.label {
        Some(path) => Some(read_nifti(path)?.volume),
        None => None,
    };
    let is_ct = task
        .modalities
        .get(&0)
        .is_some_and(|m| m.eq_ignore_ascii_case("ct"));
    Ok(LoadedCase {
        source: dir.to_path_buf(),
        id: case.id.clone(),
        image: reorient_to_canonical(&image.select_channel(0)),
        label: label.map(|l| reorient_to_canonical(&l)),
        label_names: task.labels.into_iter().collect(),
        is_ct,
    })
}

fn load_scan(path: &Path) -> anyhow::Result<LoadedCase> {
    let image = read_nifti(path)?;
    let stats = image.volume.stats();
    Ok(LoadedCase {
        source: path.to_path_buf(),
        id: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        image: reorient_to_canonical(&image.volume.select_channel(0)),
        label: None,
        label_names: Vec::new(),
        // Hounsfield data reaches air at about -1000.
        is_ct: stats.min < -500.0,
    })
}
