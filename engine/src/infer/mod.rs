//! Inference: a scan in, a prediction out in the scan's own grid and geometry; and activation
//! maps of V_E(X), VD1, the LLM block, VD2, V_D(Q), the probability and real attention weights.

use crate::model::EngineBackend;
mod activations;
mod colormap;
mod labels;
mod png_export;
mod uncertainty;

pub use activations::{ActivationMap, Reduction, activation_maps, reduce_tokens};
pub use colormap::{Colormap, colour, parse_rgb_table, round_to_u8};
pub use labels::{OutputScale, decode_labels, label_scheme};
pub use png_export::{SliceAxis, write_map_png};
pub use uncertainty::{
    UNCERTAINTY_FILE, UncertainPrediction, UncertaintyMethod, UncertaintyScores, flip_volume,
    predict_maybe_mirrored, predict_with_uncertainty, region_mean, uncertainty_map, uncertainty_map_path,
    voxel_uncertainty,
};

use crate::checkpoint::PreprocessingSpec;
use crate::data::{model_grid_input, normalise_channels, single_scan_ct_statistics};
use crate::model::{MedVisionLlama, ModelConfig, OutputKind};
use crate::volume::{Geometry, Interpolation, Modality, Volume, resample};
use burn::tensor::{Tensor, TensorData};

/// Problems a prediction can run into.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// The scan does not fit the model.
    #[error("{0}")]
    Incompatible(String),
    /// A tensor could not be read back from the device.
    #[error("reading results from the device failed: {0}")]
    Device(String),
}

/// How a scan is prepared when the checkpoint records no training preprocessing: the model's
/// grid, its first channels, CT if the scan reaches air (< -500) else MRI, statistics from the
/// scan itself.
pub fn default_spec(config: &ModelConfig, image: &Volume) -> PreprocessingSpec {
    let channels: Vec<usize> = (0..config.in_channels).collect();
    let is_ct = crate::volume::looks_like_ct(image);
    let modality = if is_ct { "CT" } else { "MRI" };
    PreprocessingSpec {
        size: config.image_size,
        ct_statistics: channels
            .iter()
            .map(|c| {
                is_ct
                    .then(|| single_scan_ct_statistics(image.channel((*c).min(image.channels() - 1))))
                    .flatten()
            })
            .collect(),
        modalities: vec![modality.to_string(); channels.len()],
        channels,
        labels: [(0, "background".to_string()), (1, "foreground".to_string())]
            .into_iter()
            .collect(),
    }
}

/// The scan prepared as the model expects it (model grid, normalised).
pub fn model_input(
    image: &Volume,
    config: &ModelConfig,
    spec: &PreprocessingSpec,
) -> Result<Volume, InferError> {
    if spec.channels.len() != config.in_channels {
        return Err(InferError::Incompatible(format!(
            "the model takes {} channel(s) but the preprocessing selects {:?}",
            config.in_channels, spec.channels
        )));
    }
    if let Some(missing) = spec.channels.iter().find(|c| **c >= image.channels()) {
        return Err(InferError::Incompatible(format!(
            "the model reads channel {missing}, but the scan has {} channel(s)",
            image.channels()
        )));
    }
    if spec.size != config.image_size {
        return Err(InferError::Incompatible(format!(
            "preprocessing grid {:?} differs from the model's image_size {:?}",
            spec.size, config.image_size
        )));
    }
    let mut volume = model_grid_input(image, &spec.channels, spec.size);
    normalise_channels(&mut volume, &spec.modalities, &spec.ct_statistics);
    Ok(volume)
}

/// A volume as a `[1, channels, z, y, x]` tensor.
pub fn volume_tensor<B: EngineBackend>(volume: &Volume, device: &B::Device) -> Tensor<B, 5> {
    let [nx, ny, nz] = volume.shape();
    Tensor::from_data(
        TensorData::new(volume.voxels().to_vec(), [1, volume.channels(), nz, ny, nx]),
        device,
    )
}

/// A `[1, channels, z, y, x]` tensor as a volume on `geometry`.
pub fn tensor_volume<B: EngineBackend>(
    tensor: Tensor<B, 5>,
    geometry: &Geometry,
) -> Result<Volume, InferError> {
    let [_, channels, _, _, _] = tensor.dims();
    let values = tensor
        .into_data()
        .to_vec::<f32>()
        .map_err(|e| InferError::Device(format!("{e:?}")))?;
    Volume::new(geometry.shape, channels, values, geometry.world_from_voxel)
        .map_err(|e| InferError::Device(e.to_string()))
}

/// Probabilities on the model grid for a prepared input.
pub fn model_grid_probabilities<B: EngineBackend>(
    model: &MedVisionLlama<B>,
    input: &Volume,
    device: &B::Device,
) -> Result<Volume, InferError> {
    let logits = model.forward(volume_tensor::<B>(input, device));
    tensor_volume(model.probabilities(logits), &input.geometry())
}

/// A prediction in the scan's own grid.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// Label values ([`decode_labels`]: merged foreground for one sigmoid channel).
    pub label: Volume,
    /// Per-channel probabilities.
    pub probabilities: Volume,
}

/// Turns probabilities into labels by [`decode_labels`]'s rules.
pub fn labels_from_probabilities(probabilities: &Volume, output: OutputKind) -> Volume {
    let len = probabilities.channel_len();
    let channels: Vec<&[f32]> = probabilities.voxels().chunks(len.max(1)).collect();
    let values = decode_labels(&channels, output, OutputScale::Probabilities);
    Volume::from_fn(&probabilities.geometry(), |x, y, z| {
        values[probabilities.index(x, y, z)] as f32
    })
}

/// Predicts a scan: prepare, run, resample the probabilities (trilinear) back onto the scan's
/// grid and geometry, then threshold or argmax there.
pub fn predict<B: EngineBackend>(
    model: &MedVisionLlama<B>,
    config: &ModelConfig,
    spec: &PreprocessingSpec,
    image: &Volume,
    device: &B::Device,
) -> Result<Prediction, InferError> {
    let input = model_input(image, config, spec)?;
    let model_probabilities = model_grid_probabilities(model, &input, device)?;
    let probabilities = resample(
        &model_probabilities,
        &image.geometry(),
        Interpolation::Linear,
        0.0,
    );
    let label = labels_from_probabilities(&probabilities, config.output);
    Ok(Prediction { label, probabilities })
}

/// Whether modality names describe CT.
pub fn is_ct(spec: &PreprocessingSpec) -> bool {
    spec.modalities
        .first()
        .is_some_and(|m| Modality::from_name(m) == Modality::Ct)
}
