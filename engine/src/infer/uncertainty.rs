//! Prediction with an uncertainty map and a per-case score, from several predictions of one
//! scan: under test-time mirroring (nnU-Net's test-time augmentation) the prepared scan is flipped
//! along every combination of axes, each mirrored input is predicted and its probabilities flipped
//! back; under Monte-Carlo dropout (Gal & Ghahramani 2016) the scan is predicted several times
//! with the ViT blocks' dropout sampling a new mask each time. The mean probabilities give the
//! label. The voxel's uncertainty is the normalised entropy of the mean: for a softmax,
//! `−Σ p̄_c ln p̄_c / ln C`; for sigmoid channels, the largest binary entropy `/ ln 2` among
//! them. Both lie in 0 (every prediction is certain and agrees) … 1 (even odds).
//!
//! The case's score is the mean uncertainty over the voxels of the model grid that at least one
//! of the predictions labels foreground (0 when none does): where the model considers the
//! structure, not the empty background that would dilute it. A clinician reviews the cases of
//! highest score first.

use super::{InferError, Prediction, labels_from_probabilities, model_grid_probabilities, model_input};
use crate::checkpoint::PreprocessingSpec;
use crate::model::{EngineBackend, MedVisionLlama, ModelConfig, OutputKind};
use crate::volume::{Interpolation, Volume, resample};
use std::path::{Path, PathBuf};

/// How the predictions behind an uncertainty map are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UncertaintyMethod {
    /// The scan as it is and flipped along each axis alone: 4 predictions.
    EachAxis,
    /// Every combination of flips along the three axes: 8 predictions (nnU-Net's default).
    AllAxes,
    /// The scan as it is, predicted [`MC_DROPOUT_SAMPLES`] times with dropout sampling (the
    /// model must have been trained with dropout).
    McDropout,
}

/// How many predictions Monte-Carlo dropout makes.
pub const MC_DROPOUT_SAMPLES: usize = 8;

impl UncertaintyMethod {
    /// Every choice, in the order menus show them.
    pub const ALL: [UncertaintyMethod; 3] = [
        UncertaintyMethod::EachAxis,
        UncertaintyMethod::AllAxes,
        UncertaintyMethod::McDropout,
    ];

    /// The flips of the predictions, each as "flip x, flip y, flip z"; the first is the scan as it
    /// is. Monte-Carlo dropout predicts the scan as it is every time.
    pub fn flips(self) -> Vec<[bool; 3]> {
        match self {
            UncertaintyMethod::EachAxis => vec![
                [false, false, false],
                [true, false, false],
                [false, true, false],
                [false, false, true],
            ],
            UncertaintyMethod::AllAxes => (0..8u8)
                .map(|bits| [bits & 1 != 0, bits & 2 != 0, bits & 4 != 0])
                .collect(),
            UncertaintyMethod::McDropout => vec![[false; 3]; MC_DROPOUT_SAMPLES],
        }
    }

    /// Parses "all-axes", "each-axis" or "mc-dropout" (the command line's spelling).
    ///
    /// # Errors
    /// Any other text, with the choices.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "all-axes" => Ok(UncertaintyMethod::AllAxes),
            "each-axis" => Ok(UncertaintyMethod::EachAxis),
            "mc-dropout" => Ok(UncertaintyMethod::McDropout),
            other => Err(format!(
                "unknown uncertainty method {other:?}: use all-axes (mirroring, 8 predictions), each-axis (mirroring, 4) or mc-dropout (Monte-Carlo dropout, {MC_DROPOUT_SAMPLES})"
            )),
        }
    }

    /// A short name for menus.
    pub fn label(self) -> &'static str {
        match self {
            UncertaintyMethod::EachAxis => "mirroring, 4 predictions",
            UncertaintyMethod::AllAxes => "mirroring, 8 predictions",
            UncertaintyMethod::McDropout => "Monte-Carlo dropout, 8 predictions",
        }
    }

    /// The name shown in reports and written in `uncertainty.json`.
    pub fn describe(self) -> String {
        let how = match self {
            UncertaintyMethod::McDropout => "Monte-Carlo dropout",
            _ => "test-time mirroring",
        };
        format!(
            "{how}, {} predictions: normalised entropy of the mean probabilities",
            self.flips().len()
        )
    }

    /// Whether a model of `config` can be used with this method: Monte-Carlo dropout needs
    /// dropout in the ViT blocks.
    ///
    /// # Errors
    /// The reason, with what to do instead.
    pub fn check(self, config: &ModelConfig) -> Result<(), InferError> {
        if self == UncertaintyMethod::McDropout && config.dropout <= 0.0 {
            return Err(InferError::Incompatible(format!(
                "Monte-Carlo dropout needs a model trained with dropout, and this one has dropout = {} in its config: every prediction would be the same. Choose test-time mirroring (all-axes or each-axis), or train with dropout > 0 (the paper's presets use 0.2)",
                config.dropout
            )));
        }
        Ok(())
    }
}

/// A prediction with its uncertainty.
#[derive(Debug, Clone)]
pub struct UncertainPrediction {
    /// Label and mean probabilities in the scan's grid.
    pub prediction: Prediction,
    /// The voxel uncertainty (0–1) in the scan's grid.
    pub uncertainty: Volume,
    /// The case's score (see the module's description).
    pub score: f64,
}

/// `volume` (every channel) mirrored along the axes marked in `flip`.
pub fn flip_volume(volume: &Volume, flip: [bool; 3]) -> Volume {
    let [nx, ny, nz] = volume.shape();
    let source = |x: usize, y: usize, z: usize| {
        let x = if flip[0] { nx - 1 - x } else { x };
        let y = if flip[1] { ny - 1 - y } else { y };
        let z = if flip[2] { nz - 1 - z } else { z };
        x + nx * (y + ny * z)
    };
    let len = volume.channel_len();
    let mut voxels = Vec::with_capacity(volume.voxels().len());
    for c in 0..volume.channels() {
        let channel = volume.channel(c);
        for z in 0..nz {
            for y in 0..ny {
                voxels.extend((0..nx).map(|x| channel[source(x, y, z)]));
            }
        }
    }
    debug_assert_eq!(voxels.len(), len * volume.channels());
    Volume::new(
        volume.shape(),
        volume.channels(),
        voxels,
        *volume.world_from_voxel(),
    )
    .expect("a flipped volume has the shape of the original")
}

/// The normalised entropy of one voxel's probabilities (see the module's description).
pub fn voxel_uncertainty(probabilities: &[f32], output: OutputKind) -> f32 {
    let plogp = |p: f64| if p > 0.0 { -p * p.ln() } else { 0.0 };
    match output {
        OutputKind::Softmax if probabilities.len() > 1 => {
            let entropy: f64 = probabilities.iter().map(|p| plogp(f64::from(*p))).sum();
            (entropy / (probabilities.len() as f64).ln()).clamp(0.0, 1.0) as f32
        }
        _ => probabilities
            .iter()
            .map(|p| {
                let p = f64::from(p.clamp(0.0, 1.0));
                ((plogp(p) + plogp(1.0 - p)) / std::f64::consts::LN_2) as f32
            })
            .fold(0.0, f32::max),
    }
}

/// The voxel uncertainty of every voxel of `probabilities` (one channel per output).
pub fn uncertainty_map(probabilities: &Volume, output: OutputKind) -> Volume {
    let len = probabilities.channel_len();
    let channels = probabilities.channels();
    let mut values = vec![0f32; channels];
    let map: Vec<f32> = (0..len)
        .map(|i| {
            for (c, value) in values.iter_mut().enumerate() {
                *value = probabilities.voxels()[c * len + i];
            }
            voxel_uncertainty(&values, output)
        })
        .collect();
    Volume::new(probabilities.shape(), 1, map, *probabilities.world_from_voxel())
        .expect("one channel of the probabilities' shape")
}

/// Predicts `image` with every prediction `method` makes, as [`super::predict`] does for one:
/// the mean probabilities resampled onto the scan's grid give the label, with the uncertainty
/// map (resampled the same way) and the case's score.
///
/// # Errors
/// The scan does not fit the model, the method does not suit the model (Monte-Carlo dropout
/// without dropout), or the device fails.
pub fn predict_with_uncertainty<B: EngineBackend>(
    model: &MedVisionLlama<B>,
    config: &ModelConfig,
    spec: &PreprocessingSpec,
    image: &Volume,
    method: UncertaintyMethod,
    device: &B::Device,
) -> Result<UncertainPrediction, InferError> {
    method.check(config)?;
    let input = model_input(image, config, spec)?;
    let sampling;
    let model = if method == UncertaintyMethod::McDropout {
        sampling = model.clone().sampling_dropout(true);
        &sampling
    } else {
        model
    };
    let flips = method.flips();
    let mut sum: Option<Vec<f32>> = None;
    let mut considered: Vec<bool> = vec![false; input.channel_len()];
    let mut geometry_probabilities = None;
    for flip in &flips {
        let mirrored = flip_volume(&input, *flip);
        let probabilities = flip_volume(&model_grid_probabilities(model, &mirrored, device)?, *flip);
        let labels = labels_from_probabilities(&probabilities, config.output);
        for (seen, label) in considered.iter_mut().zip(labels.voxels()) {
            *seen |= *label > 0.0;
        }
        match &mut sum {
            Some(sum) => sum
                .iter_mut()
                .zip(probabilities.voxels())
                .for_each(|(s, p)| *s += p),
            None => sum = Some(probabilities.voxels().to_vec()),
        }
        geometry_probabilities.get_or_insert(probabilities);
    }
    let template = geometry_probabilities.ok_or_else(|| InferError::Incompatible("no prediction".into()))?;
    let count = flips.len() as f32;
    let mean: Vec<f32> = sum.unwrap_or_default().into_iter().map(|s| s / count).collect();
    let mean = Volume::new(
        template.shape(),
        template.channels(),
        mean,
        *template.world_from_voxel(),
    )
    .map_err(|e| InferError::Device(e.to_string()))?;
    let model_uncertainty = uncertainty_map(&mean, config.output);
    let score = region_mean(model_uncertainty.voxels(), &considered);
    let probabilities = resample(&mean, &image.geometry(), Interpolation::Linear, 0.0);
    let label = labels_from_probabilities(&probabilities, config.output);
    let uncertainty = resample(&model_uncertainty, &image.geometry(), Interpolation::Linear, 0.0);
    Ok(UncertainPrediction {
        prediction: Prediction { label, probabilities },
        uncertainty,
        score,
    })
}

/// [`super::predict`], or [`predict_with_uncertainty`] when a method is given: the
/// prediction, with the uncertainty map and score in that case.
///
/// # Errors
/// As the prediction's.
pub fn predict_maybe_mirrored<B: EngineBackend>(
    model: &MedVisionLlama<B>,
    config: &ModelConfig,
    spec: &PreprocessingSpec,
    image: &Volume,
    method: Option<UncertaintyMethod>,
    device: &B::Device,
) -> Result<(Prediction, Option<(Volume, f64)>), InferError> {
    match method {
        None => Ok((super::predict(model, config, spec, image, device)?, None)),
        Some(method) => {
            let result = predict_with_uncertainty(model, config, spec, image, method, device)?;
            Ok((result.prediction, Some((result.uncertainty, result.score))))
        }
    }
}

/// The mean of `values` where `inside` holds; 0 when it holds nowhere.
pub fn region_mean(values: &[f32], inside: &[bool]) -> f64 {
    let (sum, count) = values
        .iter()
        .zip(inside)
        .filter(|(_, inside)| **inside)
        .fold((0.0, 0usize), |(sum, count), (v, _)| {
            (sum + f64::from(*v), count + 1)
        });
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// Where the uncertainty map of the prediction at `prediction` is written: an `uncertainty`
/// folder beside it, under the same file name (so a folder of predictions holds labels only).
pub fn uncertainty_map_path(prediction: &Path) -> PathBuf {
    let folder = prediction.parent().unwrap_or(Path::new(""));
    let name = prediction.file_name().unwrap_or_default();
    folder.join("uncertainty").join(name)
}

/// The file beside a folder of predictions that records each case's uncertainty score.
pub const UNCERTAINTY_FILE: &str = "uncertainty.json";

/// Every case's uncertainty score in a folder of predictions, with how they were computed.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UncertaintyScores {
    /// How the scores were computed.
    pub method: String,
    /// Case id → score (0–1, higher is less certain).
    pub scores: std::collections::BTreeMap<String, f64>,
}

impl UncertaintyScores {
    /// The file of a predictions folder.
    pub fn path(folder: &Path) -> PathBuf {
        folder.join(UNCERTAINTY_FILE)
    }

    /// The scores recorded in `folder`; none when the file does not exist.
    ///
    /// # Errors
    /// The file exists but cannot be read or parsed (the message names it).
    pub fn load(folder: &Path) -> Result<Self, String> {
        let path = Self::path(folder);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                format!(
                    "{}: not an uncertainty file ({e}); delete it and predict again",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Records `score` for `case` in `folder`'s file (written atomically); a file of another
    /// method is started afresh.
    ///
    /// # Errors
    /// The file cannot be read or written.
    pub fn record(folder: &Path, method: &str, case: &str, score: f64) -> Result<(), String> {
        let mut scores = Self::load(folder).unwrap_or_default();
        if scores.method != method {
            scores = Self {
                method: method.to_string(),
                ..Self::default()
            };
        }
        scores.scores.insert(case.to_string(), score);
        let text = serde_json::to_string_pretty(&scores).map_err(|e| e.to_string())?;
        let path = Self::path(folder);
        crate::volume::write_atomically(&path, |w| std::io::Write::write_all(w, text.as_bytes()))
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))
    }
}

impl UncertaintyScores {
    /// Forgets `case`'s score in `folder`'s file (its prediction was replaced by one without
    /// uncertainty); nothing to do when the file or the score does not exist.
    ///
    /// # Errors
    /// The file cannot be read or written.
    pub fn forget(folder: &Path, case: &str) -> Result<(), String> {
        let mut scores = Self::load(folder)?;
        if scores.scores.remove(case).is_none() {
            return Ok(());
        }
        let text = serde_json::to_string_pretty(&scores).map_err(|e| e.to_string())?;
        let path = Self::path(folder);
        crate::volume::write_atomically(&path, |w| std::io::Write::write_all(w, text.as_bytes()))
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))
    }
}

#[cfg(test)]
#[path = "uncertainty_tests.rs"]
mod tests;
