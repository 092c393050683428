//! The activation-map panel's state: two model slots (A, e.g. ViT-Baseline, and B, e.g.
//! MedVisionLlama), the layer shown (V_E(X), VD1, LLM, VD2, V_D(Q), probability, attention of
//! a block and head), the channel reduction, colour map and opacity, and the captured maps.
//! Maps arrive from the worker in the scan's own geometry and are reoriented to the viewer's
//! RAS+ grid once per slot and layer.

use crate::viewer::render::Heat;
use engine::infer::{ActivationMap, Colormap, Reduction};
use engine::volume::{Volume, reorient_to_canonical};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
    shown: std::collections::HashMap<String, (Arc<Volume>, f32, f32)>,
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
        self.captured[slot] = Some(CapturedMaps {
            scan: scan.to_path_buf(),
            checkpoint,
            maps,
            shown: Default::default(),
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
        self.queue.clear();
        self.in_flight = false;
        self.generation += 1;
    }

    /// The map of `slot` for the shown layer on the viewer's grid, reoriented on first use.
    /// `None` when nothing was captured, the layer is missing or the shape is not `shape`.
    pub fn heat(&mut self, slot: usize, shape: [usize; 3]) -> Option<Heat> {
        if !self.visible {
            return None;
        }
        let layer = self.layer.clone();
        let captured = self.captured.get_mut(slot)?.as_mut()?;
        if !captured.shown.contains_key(&layer) {
            // Once per layer and model: a big map takes a moment to reorient.
            let map = captured.maps.iter().find(|m| m.stem == layer)?;
            let volume = reorient_to_canonical(&map.volume);
            let stats = volume.stats();
            captured.shown.insert(
                layer.clone(),
                (Arc::new(volume), stats.min as f32, stats.max as f32),
            );
        }
        let (volume, low, high) = captured.shown.get(&layer)?;
        (volume.shape() == shape).then(|| Heat {
            volume: Arc::clone(volume),
            low: *low,
            high: *high,
            colormap: self.colormap,
            opacity: self.opacity,
        })
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
mod tests {
    use super::*;
    use engine::volume::Affine;

    fn map(stem: &str, shape: [usize; 3], scale: f32) -> ActivationMap {
        let len = shape.iter().product::<usize>();
        ActivationMap {
            name: stem.to_uppercase(),
            stem: stem.into(),
            volume: Volume::new(
                shape,
                1,
                (0..len).map(|i| i as f32 * scale).collect(),
                Affine::identity(),
            )
            .expect("volume"),
        }
    }

    #[test]
    fn captures_fill_slots_in_order_and_heat_uses_the_layer_range() {
        let mut panel = ActivationsPanel {
            models: [Some("a/best".into()), Some("b/best".into())],
            ..ActivationsPanel::default()
        };
        let first = panel.start_capture(Path::new("scan.nii.gz"));
        assert_eq!(first.map(|f| f.0), Some(PathBuf::from("a/best")));
        assert!(panel.next_capture().is_none(), "one capture in flight at a time");
        let shape = [2, 3, 4];
        panel.received(
            Path::new("scan.nii.gz"),
            Arc::new(vec![map("llm", shape, 1.0), map("ve", shape, 2.0)]),
        );
        let second = panel.next_capture();
        assert_eq!(second.map(|f| f.0), Some(PathBuf::from("b/best")));
        panel.received(Path::new("scan.nii.gz"), Arc::new(vec![map("llm", shape, 3.0)]));
        assert!(!panel.is_capturing());

        let heat = panel.heat(0, shape).expect("slot A has the LLM map");
        assert_eq!((heat.low, heat.high), (0.0, 23.0));
        let heat = panel.heat(1, shape).expect("slot B has the LLM map");
        assert_eq!((heat.low, heat.high), (0.0, 69.0));
        panel.layer = "ve".into();
        assert_eq!(panel.heat(0, shape).map(|h| h.high), Some(46.0));
        assert!(panel.heat(1, shape).is_none(), "slot B has no V_E map");
        assert!(panel.heat(0, [4, 3, 2]).is_none(), "another grid is not drawn");
        panel.visible = false;
        assert!(panel.heat(0, shape).is_none());
        assert_eq!(panel.model_name(0), "a");
    }

    #[test]
    fn maps_of_a_case_left_behind_are_not_kept() {
        let mut panel = ActivationsPanel {
            models: [Some("a/best".into()), Some("b/best".into())],
            ..ActivationsPanel::default()
        };
        assert!(panel.start_capture(Path::new("case_a.nii")).is_some());
        panel.clear(); // the user opened another case while A's capture ran
        panel.received(
            Path::new("case_a.nii"),
            Arc::new(vec![map("llm", [1, 1, 1], 1.0)]),
        );
        assert!(panel.captured.iter().all(Option::is_none));
        assert!(
            panel.next_capture().is_none(),
            "model B is not captured on the old case"
        );
    }

    #[test]
    fn a_failed_capture_drops_the_rest() {
        let mut panel = ActivationsPanel {
            models: [Some("a/best".into()), Some("b/best".into())],
            ..ActivationsPanel::default()
        };
        assert!(panel.start_capture(Path::new("s.nii")).is_some());
        panel.failed("out of memory".into());
        assert!(!panel.is_capturing() && panel.next_capture().is_none());
        assert_eq!(panel.error.as_deref(), Some("out of memory"));
    }
}
