//! Loading off the UI thread. One named `loader` thread takes commands (open a task or a scan,
//! load a case) over a bounded channel and answers with events, waking the UI through the waker
//! closure it was given. Volumes travel as `Arc`.

use crate::io::source::{OpenRequest, Source, open};
use crate::viewer::render::{Window, percentile_window};
use engine::metrics::{AFFINE_TOLERANCE_MM, LabelScheme};
use engine::volume::{Affine, Geometry, NiftiHeader, Volume, read_nifti, read_scan, reorient_to_canonical};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;

/// A case ready to show: volumes reoriented to RAS+, on one grid.
#[derive(Debug, Clone)]
pub struct LoadedCase {
    /// Case id.
    pub id: String,
    /// The scan, channel 0.
    pub image: Arc<Volume>,
    /// The ground-truth label, when present and on the image's grid.
    pub ground_truth: Option<Arc<Volume>>,
    /// The predicted label, when present and on the image's grid.
    pub prediction: Option<Arc<Volume>>,
    /// Whether the scan is CT (decides the default window).
    pub is_ct: bool,
    /// The 1st–99th percentile window.
    pub auto_window: Window,
    /// Where the crosshair starts: the centre of the labelled region, else of the volume.
    pub focus: [usize; 3],
    /// Whether the ground-truth layer holds the user's corrected label rather than the task's.
    pub corrected: bool,
    /// Label values present in the ground truth or prediction.
    pub label_values: BTreeSet<u32>,
    /// Problems that did not stop loading (e.g. a label on another grid), to show once.
    pub warnings: Vec<String>,
    /// The scan's header as stored: edited labels are written with it.
    pub scan_header: NiftiHeader,
    /// The scan's own grid (before reorientation to RAS+): edited labels are mapped back to it.
    pub scan_grid: Geometry,
    /// How the prediction is scored against the ground truth (recorded beside predictions the
    /// app's models wrote; every label as it is otherwise).
    pub scheme: LabelScheme,
}

/// Work for the loader thread.
pub enum LoadCommand {
    /// Open a task or scan.
    Open(OpenRequest),
    /// Load case `index` of `source`; `ticket` comes back with the answer.
    LoadCase {
        /// The opened source.
        source: Arc<Source>,
        /// Index into `source.cases`.
        index: usize,
        /// Identifies the request, so stale answers can be dropped.
        ticket: u64,
    },
}

/// Answers from the loader thread; errors are messages ready to show.
pub enum LoadEvent {
    /// A source was opened, or could not be.
    Opened(Result<Arc<Source>, String>),
    /// A case was loaded, or could not be.
    CaseLoaded {
        /// The ticket of the request.
        ticket: u64,
        /// The case, or why not.
        result: Result<Box<LoadedCase>, String>,
    },
}

/// Commands that may wait for the loader at once; more is a sign of a stuck thread.
const COMMAND_CAPACITY: usize = 16;

/// Handle on the loader thread.
pub struct Loader {
    commands: mpsc::SyncSender<LoadCommand>,
    events: mpsc::Receiver<LoadEvent>,
}

impl Loader {
    /// Starts the `loader` thread; `wake` is called after every event it sends.
    pub fn spawn(wake: impl Fn() + Send + 'static) -> Self {
        let (commands, command_receiver) = mpsc::sync_channel::<LoadCommand>(COMMAND_CAPACITY);
        let (event_sender, events) = mpsc::sync_channel(COMMAND_CAPACITY);
        let spawned = std::thread::Builder::new()
            .name("loader".into())
            .spawn(move || run(&command_receiver, &event_sender, &wake));
        if let Err(error) = spawned {
            // The commands go nowhere; say why through the event channel instead.
            let (failed_sender, failed_events) = mpsc::sync_channel(1);
            let _ = failed_sender.send(LoadEvent::Opened(Err(format!(
                "cannot start the loading thread: {error}"
            ))));
            return Self {
                commands,
                events: failed_events,
            };
        }
        Self { commands, events }
    }

    /// Queues a command; fails when the thread is gone or hopelessly behind.
    pub fn send(&self, command: LoadCommand) -> Result<(), String> {
        self.commands.try_send(command).map_err(|error| match error {
            mpsc::TrySendError::Full(_) => "the loader is busy; try again in a moment".to_string(),
            mpsc::TrySendError::Disconnected(_) => "the loading thread has stopped".to_string(),
        })
    }

    /// The next event, if one is waiting.
    ///
    /// # Errors
    /// The loading thread has gone: nothing it was asked for will arrive.
    pub fn try_event(&self) -> Result<Option<LoadEvent>, String> {
        match self.events.try_recv() {
            Ok(event) => Ok(Some(event)),
            Err(mpsc::TryRecvError::Empty) => Ok(None),
            Err(mpsc::TryRecvError::Disconnected) => Err("the loading thread has stopped".into()),
        }
    }
}

fn run(commands: &mpsc::Receiver<LoadCommand>, events: &mpsc::SyncSender<LoadEvent>, wake: &dyn Fn()) {
    while let Ok(first) = commands.recv() {
        // A reviewer flicking through cases queues many loads: only the newest one matters.
        let mut command = first;
        while let Ok(next) = commands.try_recv() {
            if let (LoadCommand::LoadCase { .. }, LoadCommand::LoadCase { .. }) = (&command, &next) {
                command = next;
            } else {
                handle(command, events);
                wake();
                command = next;
            }
        }
        handle(command, events);
        wake();
    }
}

fn handle(command: LoadCommand, events: &mpsc::SyncSender<LoadEvent>) {
    let event = match command {
        LoadCommand::Open(request) => LoadEvent::Opened(guarded(|| {
            open(&request).map(Arc::new).map_err(|e| format!("{e:#}"))
        })),
        LoadCommand::LoadCase {
            source,
            index,
            ticket,
        } => LoadEvent::CaseLoaded {
            ticket,
            result: guarded(|| {
                load_case(&source, index)
                    .map(Box::new)
                    .map_err(|e| format!("{e:#}"))
            }),
        },
    };
    // The UI has gone away when this fails: nothing left to tell.
    let _ = events.send(event);
}

/// Runs `work`, turning a panic (a bug, or a file that trips one in a decoder) into a message,
/// so the loader thread lives on and the UI never waits for an answer that cannot come.
fn guarded<T>(work: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|panic| {
        let reason = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown reason".into());
        Err(format!(
            "loading failed unexpectedly ({reason}); please report this with the file that caused it"
        ))
    })
}

/// Hounsfield data reaches air at about −1000; MRI intensities are never that negative.
const CT_AIR_THRESHOLD: f64 = -500.0;

/// Reads case `index` of `source` and prepares it for display.
pub fn load_case(source: &Source, index: usize) -> anyhow::Result<LoadedCase> {
    let entry = source
        .cases
        .get(index)
        .ok_or_else(|| anyhow::anyhow!("case {index} does not exist in {}", source.name))?;
    let scan = read_scan(&entry.image, entry.series.as_ref().map(|s| s.series_uid.as_str()))?;
    let (scan_header, image) = (scan.header, scan.volume);
    let scan_grid = image.geometry();
    if image.shape().contains(&0) {
        anyhow::bail!(
            "{}: the image has no voxels (shape {:?})",
            entry.image.display(),
            image.shape()
        );
    }
    let mut warnings = Vec::new();
    // Counted by the engine here on the loader thread, never by the UI.
    let non_finite = image.stats().non_finite;
    if non_finite > 0 {
        warnings.push(format!(
            "{}: {non_finite} voxels are NaN or ±∞ (preprocessing sets them to the channel minimum)",
            entry.image.display()
        ));
    }
    let image = reorient_to_canonical(&image.select_channel(0));
    let mut read_label = |path: &Option<PathBuf>, what: &str| {
        let path = path.as_ref()?;
        match read_nifti(path) {
            Ok(label) => {
                let label = reorient_to_canonical(&label.volume.select_channel(0));
                if label.shape() != image.shape() {
                    warnings.push(format!(
                        "{}: {what} has shape {:?} but the image has {:?}; not shown",
                        path.display(),
                        label.shape(),
                        image.shape()
                    ));
                    return None;
                }
                let difference_mm = affine_difference_mm(label.world_from_voxel(), image.world_from_voxel());
                if difference_mm.is_nan() || difference_mm > AFFINE_TOLERANCE_MM {
                    warnings.push(format!(
                        "{}: the {what}'s voxel-to-world affine differs from the scan {}'s by up to \
                         {difference_mm:.4} mm (limit {AFFINE_TOLERANCE_MM} mm); not shown: resample \
                         the label onto the scan's grid",
                        path.display(),
                        entry.image.display()
                    ));
                    return None;
                }
                return Some(Arc::new(label));
            }
            Err(error) => warnings.push(format!("{what} not shown: {error}")),
        }
        None
    };
    let corrected = entry.corrected.is_some();
    let what = if corrected {
        "corrected label"
    } else {
        "ground truth"
    };
    let ground_truth = read_label(&entry.label_shown().cloned(), what);
    let prediction = read_label(&entry.prediction, "prediction");
    let is_ct = source
        .is_ct
        .unwrap_or_else(|| image.stats().min < CT_AIR_THRESHOLD);
    let mut label_values = BTreeSet::new();
    for label in ground_truth.iter().chain(&prediction) {
        label_values.extend(
            label
                .voxels()
                .iter()
                .filter(|v| **v >= 0.5)
                .map(|v| v.round() as u32),
        );
    }
    let focus = label_centre(ground_truth.as_deref().or(prediction.as_deref()))
        .unwrap_or_else(|| image.shape().map(|n| n / 2));
    Ok(LoadedCase {
        id: entry.id.clone(),
        auto_window: percentile_window(image.voxels()),
        image: Arc::new(image),
        ground_truth,
        prediction,
        is_ct,
        corrected,
        focus,
        label_values,
        warnings,
        scan_header,
        scan_grid,
        scheme: prediction_scheme(entry.prediction.as_deref()),
    })
}

/// The largest difference between two voxel-to-world affines, entry by entry (mm).
pub fn affine_difference_mm(a: &Affine, b: &Affine) -> f64 {
    (0..3)
        .flat_map(|row| (0..4).map(move |column| (row, column)))
        .map(|(row, column)| (a.0[row][column] - b.0[row][column]).abs())
        .fold(0.0, f64::max)
}

/// The label scheme of a prediction file: the one recorded in its folder, else every label as
/// it is.
pub fn prediction_scheme(prediction: Option<&std::path::Path>) -> LabelScheme {
    prediction
        .and_then(std::path::Path::parent)
        .and_then(LabelScheme::load_beside)
        .unwrap_or(LabelScheme::Classes(Vec::new()))
}

/// The voxel at the mean position of the labelled voxels, when there are any.
fn label_centre(label: Option<&Volume>) -> Option<[usize; 3]> {
    let label = label?;
    let [nx, ny, _] = label.shape();
    let mut sum = [0.0f64; 3];
    let mut count = 0usize;
    for (index, _) in label.voxels().iter().enumerate().filter(|(_, v)| **v >= 0.5) {
        sum[0] += (index % nx) as f64;
        sum[1] += (index / nx % ny) as f64;
        sum[2] += (index / (nx * ny)) as f64;
        count += 1;
    }
    (count > 0).then(|| sum.map(|s| (s / count as f64).round() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::data::{self, PhantomOptions};

    #[test]
    fn task_cases_find_predictions_beside_the_task() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let options = PhantomOptions {
            training_cases: 2,
            test_cases: 1,
            size: [12, 12, 8],
            ..PhantomOptions::default()
        };
        data::write_phantom_task(dir.path(), &options)?;
        let source = open(&OpenRequest {
            path: Some(dir.path().to_path_buf()),
            ..OpenRequest::default()
        })?;
        assert_eq!(source.cases.len(), 3);
        assert!(source.cases.iter().all(|c| c.prediction.is_none()));
        // Use the first case's ground truth as its "prediction".
        let first = &source.cases[0];
        std::fs::create_dir_all(dir.path().join("labelsPred"))?;
        let ground_truth = first
            .ground_truth
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no label"))?;
        std::fs::copy(
            &ground_truth,
            dir.path().join("labelsPred").join(format!("{}.nii.gz", first.id)),
        )?;
        let source = open(&source.request)?;
        assert!(source.cases[0].prediction.is_some());
        let case = load_case(&source, 0)?;
        assert!(case.prediction.is_some() && case.ground_truth.is_some());
        assert!(case.is_ct);
        assert!(!case.label_values.is_empty());
        assert!(case.warnings.is_empty(), "{:?}", case.warnings);
        Ok(())
    }

    #[test]
    fn a_scan_with_non_finite_voxels_says_so() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("scan.nii.gz");
        let mut voxels = vec![1.0f32; 4 * 4 * 4];
        voxels[0] = f32::NAN;
        voxels[9] = f32::INFINITY;
        voxels[10] = f32::NEG_INFINITY;
        let volume = Volume::new([4, 4, 4], 1, voxels, engine::volume::Affine::identity())?;
        let options = engine::volume::WriteOptions::new(engine::volume::DataType::F32);
        engine::volume::write_nifti(&path, &volume, None, options)?;
        let source = open(&OpenRequest {
            path: Some(path),
            ..OpenRequest::default()
        })?;
        let case = load_case(&source, 0)?;
        assert!(
            case.warnings.iter().any(|w| w.contains("3 voxels are NaN or ±∞")),
            "{:?}",
            case.warnings
        );
        Ok(())
    }

    /// Writes a 6×5×4 scan and a label whose origin is moved by `shift_mm` along x; loads them.
    fn load_with_shifted_label(
        dir: &std::path::Path,
        shift_mm: f64,
    ) -> anyhow::Result<(LoadedCase, PathBuf, PathBuf)> {
        let (scan_path, label_path) = (dir.join("scan.nii.gz"), dir.join("label.nii.gz"));
        let scan_affine = engine::volume::Affine::from_diagonal([0.8, 0.8, 2.0]);
        let mut label_affine = scan_affine;
        label_affine.0[0][3] += shift_mm;
        let options = engine::volume::WriteOptions::new(engine::volume::DataType::F32);
        let scan = Volume::new([6, 5, 4], 1, vec![100.0; 120], scan_affine)?;
        engine::volume::write_nifti(&scan_path, &scan, None, options)?;
        let options = engine::volume::WriteOptions::new(engine::volume::DataType::U8);
        let label = Volume::new([6, 5, 4], 1, vec![1.0; 120], label_affine)?;
        engine::volume::write_nifti(&label_path, &label, None, options)?;
        let source = open(&OpenRequest {
            path: Some(scan_path.clone()),
            label: Some(label_path.clone()),
            prediction: None,
        })?;
        Ok((load_case(&source, 0)?, scan_path, label_path))
    }

    #[test]
    fn a_label_on_another_grid_is_refused_naming_both_files() -> anyhow::Result<()> {
        // 2 mm is far beyond the tolerance: refused, with both paths in the message.
        let dir = tempfile::tempdir()?;
        let (case, scan, label) = load_with_shifted_label(dir.path(), 2.0)?;
        assert!(case.ground_truth.is_none());
        let warning = case.warnings.join("; ");
        assert!(warning.contains(&label.display().to_string()), "{warning}");
        assert!(warning.contains(&scan.display().to_string()), "{warning}");
        assert!(warning.contains("2.0000 mm"), "{warning}");
        // A tenth of the tolerance is rounding, not another grid: shown, no warning.
        let (case, _, _) = load_with_shifted_label(dir.path(), AFFINE_TOLERANCE_MM / 10.0)?;
        assert!(case.ground_truth.is_some());
        assert!(case.warnings.is_empty(), "{:?}", case.warnings);
        Ok(())
    }

    #[test]
    fn a_panic_while_loading_becomes_a_message() {
        let answer: Result<(), String> = guarded(|| panic!("decoder bug"));
        let message = answer.expect_err("the panic is caught");
        assert!(message.contains("decoder bug"), "{message}");
        let fine: Result<u8, String> = guarded(|| Ok(3));
        assert_eq!(fine, Ok(3));
    }
}
