//! The activation-map panel's state: two model slots (A, e.g. ViT-Baseline, and B, e.g.
//! MedVisionLlama), the layer shown (V_E(X), VD1, LLM, VD2, V_D(Q), probability, attention of
//! a block and head), the channel reduction, colour map and opacity, and the captured maps.
//! Maps arrive from the worker in the scan's own geometry and are reoriented to the viewer's
//! RAS+ grid once per slot and layer, on a background thread: the layer shows when that is done.

use crate::viewer::render::Heat;
use engine::infer::{ActivationMap, Colormap, Reduction};
use engine::volume::{Volume, reorient_to_canonical};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

/// A map on the viewer's grid with its value range.
type Prepared = (Arc<Volume>, f32, f32);
/// Called when a prepared map is ready.
type Waker = Arc<dyn Fn() + Send + Sync>;

/// Maps captured for one model.
#[derive(Clone)]
pub struct CapturedMaps {
    /// The scan they were captured on.
    pub scan: PathBuf,
    /// The checkpoint.
    pub checkpoint: PathBuf,
    /// Every map, in the scan's geometry.
    pub maps: Arc<Vec<ActivationMap>>,
    /// Maps shown so far, on the viewer's grid with their value range, by stem.
    shown: HashMap<String, Prepared>,
    /// Stems whose preparation failed (never tried again for this capture).
    unavailable: HashSet<String>,
    /// Tells a prepared map from one of an earlier capture in the same slot.
    id: u64,
}

/// The panel's state.
pub struct ActivationsPanel {
    /// Checkpoints of model A and model B (B optional).
    pub models: [Option<PathBuf>; 2],
    /// File stem of the layer shown: "ve", "vd1", "llm", "vd2", "vd", "probability", "attention…".
    pub layer: String,
    /// Block and head of the attention map.
    pub attention: (usize, usize),
    /// Channel reduction.
    pub reduction: Reduction,
    /// Colour map.
    pub colormap: Colormap,
    /// Blend of the map over the slice, 0–1.
    pub opacity: f32,
    /// Draw the map over the views.
    pub visible: bool,
    /// Show model A and model B side by side in the active view.
    pub side_by_side: bool,
    /// Captured maps of A and B.
    pub captured: [Option<CapturedMaps>; 2],
    /// Bumped whenever what the views draw changes (part of their texture key).
    pub generation: u64,
    /// Why the last capture failed.
    pub error: Option<String>,
    /// Captures sent or still to send: `(slot, checkpoint, scan)`; the front one is in flight.
    queue: VecDeque<(usize, PathBuf, PathBuf)>,
    in_flight: bool,
    /// Maps being reoriented, by `(slot, stem)`: the capture's id and the thread's answer.
    preparing: HashMap<(usize, String), (u64, mpsc::Receiver<Prepared>)>,
    /// Captures received so far (ids).
    received_count: u64,
    /// Wakes the UI when a map is ready.
    waker: Option<Waker>,
}

impl Default for ActivationsPanel {
    fn default() -> Self {
        Self {
            models: [None, None],
            layer: "llm".into(),
            attention: (0, 0),
            reduction: Reduction::L2,
            colormap: Colormap::Inferno,
            opacity: 0.6,
            visible: true,
            side_by_side: false,
            captured: [None, None],
            generation: 0,
            error: None,
            queue: VecDeque::new(),
            in_flight: false,
            preparing: HashMap::new(),
            received_count: 0,
            waker: None,
        }
    }
}

/// The layers offered, as `(stem, name)`; the attention map's stem depends on block and head.
pub fn layer_choices(attention: (usize, usize)) -> Vec<(String, String)> {
    let mut layers: Vec<(String, String)> = [
        ("ve", "V_E(X)"),
        ("vd1", "VD1"),
        ("llm", "LLM"),
        ("vd2", "VD2"),
        ("vd", "V_D(Q)"),
        ("probability", "probability"),
    ]
    .into_iter()
    .map(|(stem, name)| (stem.to_string(), name.to_string()))
    .collect();
    let (block, head) = attention;
    layers.push((
        format!("attention_b{block}_h{head}"),
        format!("attention b{block} h{head}"),
    ));
    layers
}

impl ActivationsPanel {
    /// Queues captures of `scan` for the models set (A first); returns the first to send.
    pub fn start_capture(&mut self, scan: &Path) -> Option<(PathBuf, PathBuf, (usize, usize), Reduction)> {
        self.queue = self
            .models
            .iter()
            .enumerate()
            .filter_map(|(slot, model)| Some((slot, model.clone()?, scan.to_path_buf())))
            .collect();
        self.error = None;
        self.in_flight = false;
        self.next_capture()
    }

    /// The next capture to send, if one is waiting and none is in flight.
    pub fn next_capture(&mut self) -> Option<(PathBuf, PathBuf, (usize, usize), Reduction)> {
        if self.in_flight {
            return None;
        }
        let (_, checkpoint, scan) = self.queue.front()?.clone();
        self.in_flight = true;
        Some((checkpoint, scan, self.attention, self.reduction))
    }

    /// Whether captures are waiting or in flight.
    pub fn is_capturing(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Maps arrived for the capture in flight.
    pub fn received(&mut self, scan: &Path, maps: Arc<Vec<ActivationMap>>) {
        self.in_flight = false;
        let Some((slot, checkpoint, _)) = self.queue.pop_front() else {
            return;
        };
        self.received_count += 1;
        self.captured[slot] = Some(CapturedMaps {
            scan: scan.to_path_buf(),
            checkpoint,
            maps,
            shown: HashMap::new(),
            unavailable: HashSet::new(),
            id: self.received_count,
        });
        self.generation += 1;
    }

    /// The capture in flight failed: the rest are dropped.
    pub fn failed(&mut self, message: String) {
        self.abandon();
        self.error = Some(message);
    }

    /// Drops the captures waiting and in flight without an error of its own (the caller reports
    /// why, once).
    pub fn abandon(&mut self) {
        self.queue.clear();
        self.in_flight = false;
    }

    /// Forgets the maps and the captures still to come (another case was opened): a capture
    /// in flight is dropped when it arrives.
    pub fn clear(&mut self) {
        self.captured = [None, None];
        self.preparing.clear();
        self.queue.clear();
        self.in_flight = false;
        self.generation += 1;
    }

    /// Wakes the UI through `wake` when a map is ready to show.
    pub fn set_waker(&mut self, wake: impl Fn() + Send + Sync + 'static) {
        self.waker = Some(Arc::new(wake));
    }

    /// Whether maps are being reoriented.
    pub fn is_preparing(&self) -> bool {
        !self.preparing.is_empty()
    }

    /// The map of `slot` for the shown layer on the viewer's grid. `None` when nothing was
    /// captured, the layer is missing, the shape is not `shape`, or the map is still being
    /// reoriented: the first call starts that on a background thread.
    pub fn heat(&mut self, slot: usize, shape: [usize; 3]) -> Option<Heat> {
        if !self.visible {
            return None;
        }
        self.collect_prepared();
        let layer = self.layer.clone();
        let captured = self.captured.get(slot)?.as_ref()?;
        let Some((volume, low, high)) = captured.shown.get(&layer) else {
            self.prepare(slot, &layer);
            return None;
        };
        (volume.shape() == shape).then(|| Heat {
            volume: Arc::clone(volume),
            low: *low,
            high: *high,
            colormap: self.colormap,
            opacity: self.opacity,
        })
    }

    /// Starts reorienting `stem` of `slot` (once per capture and stem).
    fn prepare(&mut self, slot: usize, stem: &str) {
        let key = (slot, stem.to_string());
        let Some(captured) = self.captured.get(slot).and_then(Option::as_ref) else {
            return;
        };
        if self.preparing.contains_key(&key)
            || captured.unavailable.contains(stem)
            || !captured.maps.iter().any(|m| m.stem == stem)
        {
            return;
        }
        let (maps, id) = (Arc::clone(&captured.maps), captured.id);
        let (sender, receiver) = mpsc::sync_channel(1);
        let wake = self.waker.clone();
        let wanted = stem.to_string();
        let spawned = std::thread::Builder::new()
            .name("activations".into())
            .spawn(move || {
                let prepared = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let map = maps.iter().find(|m| m.stem == wanted)?;
                    let volume = reorient_to_canonical(&map.volume);
                    let stats = volume.stats();
                    Some((Arc::new(volume), stats.min as f32, stats.max as f32))
                }));
                // Nothing sent (a panic) reads as "unavailable" on the other side.
                if let Ok(Some(prepared)) = prepared {
                    let _ = sender.send(prepared);
                }
                if let Some(wake) = wake {
                    wake();
                }
            });
        if spawned.is_ok() {
            self.preparing.insert(key, (id, receiver));
        }
    }

    /// Takes the maps whose reorientation finished.
    fn collect_prepared(&mut self) {
        let mut finished = Vec::new();
        for (key, (id, receiver)) in &self.preparing {
            match receiver.try_recv() {
                Ok(prepared) => finished.push((key.clone(), *id, Some(prepared))),
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => finished.push((key.clone(), *id, None)),
            }
        }
        for (key, id, prepared) in finished {
            self.preparing.remove(&key);
            self.store(key, id, prepared);
        }
    }

    /// Keeps a prepared map (or notes that it failed) if its capture is still the slot's.
    fn store(&mut self, (slot, stem): (usize, String), id: u64, prepared: Option<Prepared>) {
        let Some(captured) = self.captured[slot].as_mut().filter(|c| c.id == id) else {
            return;
        };
        match prepared {
            Some(prepared) => {
                captured.shown.insert(stem, prepared);
                self.generation += 1;
            }
            None => {
                captured.unavailable.insert(stem);
            }
        }
    }

    /// Waits for every map being reoriented (tests: an event to wait on, not a sleep).
    #[cfg(test)]
    pub(crate) fn finish_preparing(&mut self) {
        for (key, (id, receiver)) in std::mem::take(&mut self.preparing) {
            let prepared = receiver.recv().ok();
            self.store(key, id, prepared);
        }
    }

    /// Name of a model slot for headers: its run folder.
    pub fn model_name(&self, slot: usize) -> String {
        self.models
            .get(slot)
            .and_then(|m| m.as_ref())
            .and_then(|m| m.parent().unwrap_or(m).file_name())
            .map_or_else(
                || format!("model {}", ["A", "B"][slot.min(1)]),
                |n| n.to_string_lossy().into_owned(),
            )
    }
}

#[cfg(test)]
#[path = "activations_tests.rs"]
mod tests;
