//! Loading off the UI thread. One named `loader` thread takes commands (open a task or a scan,
//! load a case) over a bounded channel and answers with events, waking the UI through the waker
//! closure it was given. Volumes travel as `Arc`.

use crate::common::label::{Label, label_from_volume};
use crate::io::source::{OpenRequest, Source, open};
use crate::viewer::render::{Window, percentile_window};
use engine::metrics::{AFFINE_TOLERANCE_MM, LabelScheme};
use engine::volume::{
    Affine, Geometry, NiftiHeader, Volume, label_centroid, looks_like_ct, read_nifti, read_scan,
    reorient_to_canonical,
};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;

/// A case ready to show: volumes reoriented to RAS+, on one grid.
#[derive(Debug, Clone)]
pub struct LoadedCase {
    /// Case id.
    pub id: String,
    /// The channel of the scan on screen (see [`LoadedCase::show_channel`]).
    pub image: Arc<Volume>,
    /// Every channel of the scan, each reoriented like `image`.
    pub channels: Vec<Arc<Volume>>,
    /// Each channel's name: dataset.json's `modality`, else "channel N".
    pub channel_names: Vec<String>,
    /// Each channel's 1st–99th percentile window.
    pub auto_windows: Vec<Window>,
    /// The channel on screen.
    pub channel: usize,
    /// The ground-truth label, when present and on the image's grid (cloning it is a cheap
    /// copy-on-write snapshot).
    pub ground_truth: Option<Label>,
    /// The predicted label, when present and on the image's grid.
    pub prediction: Option<Label>,
    /// Whether the scan is CT (decides the default window).
    pub is_ct: bool,
    /// The 1st–99th percentile window of the channel on screen.
    pub auto_window: Window,
    /// Where the crosshair starts: the centre of the labelled region, else of the volume.
    pub focus: [usize; 3],
    /// Whether the ground-truth layer holds the user's corrected label rather than the task's.
    pub corrected: bool,
    /// Label values present in the ground truth or prediction.
    pub label_values: BTreeSet<u32>,
    /// The prediction's uncertainty map (0–1), when it was predicted under test-time mirroring.
    pub uncertainty: Option<Arc<Volume>>,
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
    // Every channel reoriented here, on the loader thread, so switching channels is instant.
    let channels: Vec<Arc<Volume>> = (0..image.channels().max(1))
        .map(|c| Arc::new(reorient_to_canonical(&image.select_channel(c))))
        .collect();
    let auto_windows: Vec<Window> = channels.iter().map(|c| percentile_window(c.voxels())).collect();
    let channel_names = (0..channels.len())
        .map(|c| {
            source
                .channel_names
                .get(&c)
                .map(|name| name.trim().to_string())
                .filter(|name| !name.is_empty())
                .unwrap_or_else(|| format!("channel {c}"))
        })
        .collect();
    let image = Arc::clone(&channels[0]);
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
                return Some(label);
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
    let label_paths = [entry.label_shown(), entry.prediction.as_ref()];
    let is_ct = source.is_ct.unwrap_or_else(|| looks_like_ct(&image));
    let focus = (ground_truth.as_ref().or(prediction.as_ref()))
        .and_then(|label| label_centroid(label.voxels(), label.shape()))
        .unwrap_or_else(|| image.shape().map(|n| n / 2));
    // Integer labels from here on; a label number the voxel type cannot hold is refused.
    let [ground_truth, prediction] =
        [(ground_truth, label_paths[0]), (prediction, label_paths[1])].map(|(label, path)| {
            let label = label?;
            match label_from_volume(&label) {
                Ok(label) => Some(label),
                Err(error) => {
                    let file = path.map(|p| p.display().to_string()).unwrap_or_default();
                    warnings.push(format!("{file}: not shown: {error}"));
                    None
                }
            }
        });
    let uncertainty = entry
        .prediction
        .as_deref()
        .map(engine::infer::uncertainty_map_path)
        .filter(|path| path.is_file())
        .and_then(|path| match read_nifti(&path) {
            Ok(map) => {
                let map = reorient_to_canonical(&map.volume.select_channel(0));
                if map.shape() == image.shape() {
                    Some(Arc::new(map))
                } else {
                    warnings.push(format!(
                        "{}: the uncertainty map has shape {:?} but the image has {:?}; not shown",
                        path.display(),
                        map.shape(),
                        image.shape()
                    ));
                    None
                }
            }
            Err(error) => {
                warnings.push(format!("uncertainty map not shown: {error}"));
                None
            }
        });
    let label_values: BTreeSet<u32> = ground_truth
        .iter()
        .chain(&prediction)
        .flat_map(Label::label_numbers)
        .collect();
    Ok(LoadedCase {
        id: entry.id.clone(),
        auto_window: auto_windows[0],
        image,
        channels,
        channel_names,
        auto_windows,
        channel: 0,
        ground_truth,
        prediction,
        is_ct,
        corrected,
        focus,
        label_values,
        uncertainty,
        warnings,
        scan_header,
        scan_grid,
        scheme: prediction_scheme(entry.prediction.as_deref()),
    })
}

impl LoadedCase {
    /// Shows channel `channel` (its volume becomes `image`, its window `auto_window`); false
    /// when the scan has no such channel.
    pub fn show_channel(&mut self, channel: usize) -> bool {
        let (Some(volume), Some(window)) = (self.channels.get(channel), self.auto_windows.get(channel))
        else {
            return false;
        };
        self.image = Arc::clone(volume);
        self.auto_window = *window;
        self.channel = channel;
        true
    }
}

/// The largest difference between two voxel-to-world affines, entry by entry (mm).
pub fn affine_difference_mm(a: &Affine, b: &Affine) -> f64 {
    (0..3)
        .flat_map(|row| (0..4).map(move |column| (row, column)))
        .map(|(row, column)| (a.0[row][column] - b.0[row][column]).abs())
        .fold(0.0, f64::max)
}

/// The label scheme of a prediction file ([`LabelScheme::of_prediction`]); with no prediction,
/// every label as it is.
pub fn prediction_scheme(prediction: Option<&std::path::Path>) -> LabelScheme {
    prediction.map_or(LabelScheme::Classes(Vec::new()), LabelScheme::of_prediction)
}

#[cfg(test)]
#[path = "loader_tests.rs"]
mod tests;
