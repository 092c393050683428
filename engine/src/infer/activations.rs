//! Activation maps (DESIGN.md §6): token features after V_E(X), VD1, the LLM block, VD2 and
//! V_D(Q), reduced to one value per token, lifted from the token grid to the scan; plus the
//! output probability and the attention received by each token in a chosen block and head.
//!
//! Unlike the official code (whose maps come from untrained projection heads, and whose
//! "attention map" is the probability), these are the network's own activations and weights.

use super::{InferError, model_input, volume_tensor};
use crate::checkpoint::PreprocessingSpec;
use crate::model::EngineBackend;
use crate::model::{CaptureRequest, MedVisionLlama, ModelConfig, OutputKind};
use crate::volume::{Affine, Geometry, Interpolation, Volume, resample};
use burn::tensor::Tensor;

/// How a token's channels become one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reduction {
    /// Euclidean norm of the feature vector.
    L2,
    /// Mean of the features.
    Mean,
    /// Projection on the first principal component over the tokens.
    Pca,
}

/// Power-iteration steps for the first principal component; converges far within this on
/// feature matrices with a dominant direction, and the result is only displayed.
const PCA_ITERATIONS: usize = 64;

/// Reduces `[tokens, channels]` row-major features to one value per token.
pub fn reduce_tokens(features: &[f32], tokens: usize, channels: usize, reduction: Reduction) -> Vec<f32> {
    let row = |t: usize| &features[t * channels..(t + 1) * channels];
    match reduction {
        Reduction::L2 => (0..tokens)
            .map(|t| row(t).iter().map(|v| v * v).sum::<f32>().sqrt())
            .collect(),
        Reduction::Mean => (0..tokens)
            .map(|t| row(t).iter().sum::<f32>() / channels as f32)
            .collect(),
        Reduction::Pca => {
            let mean: Vec<f64> = (0..channels)
                .map(|c| {
                    (0..tokens)
                        .map(|t| f64::from(features[t * channels + c]))
                        .sum::<f64>()
                        / tokens as f64
                })
                .collect();
            let centred = |t: usize, c: usize| f64::from(features[t * channels + c]) - mean[c];
            // v ← Xᵀ(Xv), normalised: the covariance is never formed (channels may be 4096).
            let mut v: Vec<f64> = (0..channels).map(|c| 1.0 + (c % 7) as f64 * 0.01).collect();
            for _ in 0..PCA_ITERATIONS {
                let projected: Vec<f64> = (0..tokens)
                    .map(|t| (0..channels).map(|c| centred(t, c) * v[c]).sum())
                    .collect();
                let mut next = vec![0.0; channels];
                for (t, p) in projected.iter().enumerate() {
                    for (c, n) in next.iter_mut().enumerate() {
                        *n += centred(t, c) * p;
                    }
                }
                let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
                if norm < 1e-30 {
                    break;
                }
                v = next.into_iter().map(|x| x / norm).collect();
            }
            let scores: Vec<f64> = (0..tokens)
                .map(|t| (0..channels).map(|c| centred(t, c) * v[c]).sum())
                .collect();
            // A component's sign is arbitrary; orient it so that larger means larger feature norm.
            let norms = reduce_tokens(features, tokens, channels, Reduction::L2);
            let agreement: f64 = scores.iter().zip(&norms).map(|(s, n)| s * f64::from(*n)).sum();
            let sign = if agreement < 0.0 { -1.0 } else { 1.0 };
            scores.iter().map(|s| (s * sign) as f32).collect()
        }
    }
}

/// One map, on the scan's grid.
#[derive(Debug, Clone)]
pub struct ActivationMap {
    /// Display name: "V_E(X)", "VD1", "LLM", "VD2", "V_D(Q)", "probability", "attention b1 h0".
    pub name: String,
    /// File stem: "ve", "vd1", "llm", "vd2", "vd", "probability", "attention_b1_h0".
    pub stem: String,
    /// The map resampled onto the scan's grid and geometry.
    pub volume: Volume,
}

/// The geometry of the token grid: token (i, j, k) sits at the centre of its patch.
fn token_geometry(model_grid: &Geometry, patch: usize) -> Geometry {
    let p = patch as f64;
    let offset = (p - 1.0) / 2.0;
    let voxel_from_token = Affine::from_parts([[p, 0.0, 0.0], [0.0, p, 0.0], [0.0, 0.0, p]], [offset; 3]);
    Geometry {
        shape: model_grid.shape.map(|n| n / patch),
        world_from_voxel: model_grid.world_from_voxel.then_after(&voxel_from_token),
    }
}

fn features_of<B: EngineBackend>(tensor: Tensor<B, 3>) -> Result<(Vec<f32>, usize, usize), InferError> {
    let [_, tokens, channels] = tensor.dims();
    let values = tensor
        .into_data()
        .to_vec::<f32>()
        .map_err(|e| InferError::Device(format!("{e:?}")))?;
    Ok((values, tokens, channels))
}

/// Computes every map for one scan. `attention` picks (block, head); blocks count the encoder
/// first. Capturing does not change the prediction (tested in the model).
pub fn activation_maps<B: EngineBackend>(
    model: &MedVisionLlama<B>,
    config: &ModelConfig,
    spec: &PreprocessingSpec,
    image: &Volume,
    attention: (usize, usize),
    reduction: Reduction,
    device: &B::Device,
) -> Result<Vec<ActivationMap>, InferError> {
    let blocks = config.encoder_depth + config.decoder_depth;
    if blocks > 0 && attention.0 >= blocks {
        return Err(InferError::Incompatible(format!(
            "block {} asked for; the model has {blocks} ViT blocks (0–{})",
            attention.0,
            blocks - 1
        )));
    }
    if attention.1 >= config.num_heads {
        return Err(InferError::Incompatible(format!(
            "head {} asked for; the blocks have {} heads",
            attention.1, config.num_heads
        )));
    }
    let input = model_input(image, config, spec)?;
    let request = CaptureRequest {
        features: true,
        attention: (blocks > 0).then_some(attention),
    };
    let (logits, captured) = model.forward_with_capture(volume_tensor::<B>(&input, device), request);
    let tokens_geometry = token_geometry(&input.geometry(), config.patch_size);
    let scan = image.geometry();
    let lift = |values: Vec<f32>| -> Result<Volume, InferError> {
        let volume = Volume::new(tokens_geometry.shape, 1, values, tokens_geometry.world_from_voxel)
            .map_err(|e| InferError::Device(e.to_string()))?;
        Ok(resample(&volume, &scan, Interpolation::Linear, 0.0))
    };
    let mut maps = Vec::new();
    let layers = [
        ("V_E(X)", "ve", captured.encoder),
        ("VD1", "vd1", captured.vd1),
        ("LLM", "llm", captured.llm),
        ("VD2", "vd2", captured.vd2),
        ("V_D(Q)", "vd", captured.decoder),
    ];
    for (name, stem, tensor) in layers {
        let Some(tensor) = tensor else { continue };
        let (values, tokens, channels) = features_of(tensor)?;
        maps.push(ActivationMap {
            name: name.into(),
            stem: stem.into(),
            volume: lift(reduce_tokens(&values, tokens, channels, reduction))?,
        });
    }
    let probabilities = super::tensor_volume(model.probabilities(logits), &input.geometry())?;
    let foreground: Vec<f32> = match config.output {
        OutputKind::Sigmoid => probabilities.channel(0).to_vec(),
        OutputKind::Softmax => probabilities
            .channel(0)
            .iter()
            .map(|background| 1.0 - background)
            .collect(),
    };
    let foreground = Volume::new(input.shape(), 1, foreground, *input.world_from_voxel())
        .map_err(|e| InferError::Device(e.to_string()))?;
    maps.push(ActivationMap {
        name: "probability".into(),
        stem: "probability".into(),
        volume: resample(&foreground, &scan, Interpolation::Linear, 0.0),
    });
    if let Some(weights) = captured.attention {
        let (values, tokens, _) = features_of(weights)?;
        // Attention received by each key token, averaged over the query tokens.
        let received: Vec<f32> = (0..tokens)
            .map(|k| (0..tokens).map(|q| values[q * tokens + k]).sum::<f32>() / tokens as f32)
            .collect();
        let (block, head) = attention;
        maps.push(ActivationMap {
            name: format!("attention b{block} h{head}"),
            stem: format!("attention_b{block}_h{head}"),
            volume: lift(received)?,
        });
    }
    Ok(maps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reductions_match_hand_computed_values() {
        // Three tokens, two channels: rows (3, 4), (0, 0), (-1, 1).
        let features = [3.0, 4.0, 0.0, 0.0, -1.0, 1.0];
        assert_eq!(
            reduce_tokens(&features, 3, 2, Reduction::L2),
            vec![5.0, 0.0, 2f32.sqrt()]
        );
        assert_eq!(
            reduce_tokens(&features, 3, 2, Reduction::Mean),
            vec![3.5, 0.0, 0.0]
        );
    }

    #[test]
    fn pca_recovers_a_planted_direction() {
        // Tokens t have features s_t·u + small noise with u = (1, 2, -2)/3: the first component
        // is ±u, so the scores are s_t up to sign and noise.
        let u = [1.0 / 3.0, 2.0 / 3.0, -2.0 / 3.0];
        let scores: Vec<f32> = (0..50).map(|t| (t as f32 - 25.0) / 5.0).collect();
        let noise = crate::model::init::normal_values(3, 150, 0.01);
        let features: Vec<f32> = (0..50)
            .flat_map(|t| {
                let s = scores[t];
                (0..3).map(move |c| s * u[c] as f32)
            })
            .zip(noise)
            .map(|(a, n)| a + n)
            .collect();
        let got = reduce_tokens(&features, 50, 3, Reduction::Pca);
        let mean = scores.iter().sum::<f32>() / 50.0;
        let dot: f32 = got.iter().zip(&scores).map(|(g, s)| g * (s - mean)).sum();
        let norm = (got.iter().map(|g| g * g).sum::<f32>()
            * scores.iter().map(|s| (s - mean).powi(2)).sum::<f32>())
        .sqrt();
        assert!((dot / norm).abs() > 0.999, "correlation {}", dot / norm);
    }

    #[test]
    fn token_centres_sit_at_patch_centres() {
        let grid = Geometry {
            shape: [8, 8, 8],
            world_from_voxel: Affine::from_diagonal([2.0, 2.0, 3.0]),
        };
        let tokens = token_geometry(&grid, 4);
        assert_eq!(tokens.shape, [2, 2, 2]);
        // Token 1 along x covers voxels 4..=7, centre 5.5 → 11 mm.
        assert_eq!(tokens.world_from_voxel.apply([1.0, 0.0, 0.0]), [11.0, 3.0, 4.5]);
    }
}
