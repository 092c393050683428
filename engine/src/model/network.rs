//! MedVisionLlama (Kumar et al., arXiv 2410.02458) and ViT-Baseline as one configurable
//! network. Reference implementation: the authors' PyTorch code (DESIGN.md §3 lists where it
//! differs from the paper's text; presets in `configs/` reproduce either).
//!
//! patch embedding → [+pos] → encoder blocks (V_E) → VD1 → Llama block (+ residual) → VD2 →
//! [+pos] → decoder blocks (V_D) → per-token linear head → un-patchify.

use super::attention::EngineBackend;
use super::bridge_mlp::BridgeMlp;
use super::config::{MapperKind, ModelConfig, OutputKind, PosEmbedPlace};
use super::init::{self, seed_for};
use super::layer_norm_block::LayerNormBlock;
use super::llama::LlamaBlock;
use super::lora::{FrozenLinear, lora_mapper};
use super::vit::{VitBlock, torch_linear};
use crate::weights::FrozenBlockWeights;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorPrimitive, activation, backend::Backend};

/// The factor the head's initial weight is scaled by when the output prior is set.
pub const HEAD_WEIGHT_SCALE: f64 = 0.1;

/// VD1 or VD2: a LoRA mapper or a plain linear layer.
#[derive(Module, Debug)]
pub struct Mapper<B: EngineBackend> {
    lora: Option<FrozenLinear<B>>,
    linear: Option<Linear<B>>,
}

impl<B: EngineBackend> Mapper<B> {
    fn new(config: &ModelConfig, d_in: usize, d_out: usize, seed: u64, device: &B::Device) -> Self {
        match config.mapper {
            MapperKind::Lora => Self {
                lora: Some(lora_mapper(
                    d_in,
                    d_out,
                    config.mapper_rank,
                    config.mapper_alpha,
                    seed,
                    device,
                )),
                linear: None,
            },
            MapperKind::Linear => Self {
                lora: None,
                linear: Some(torch_linear(d_in, d_out, seed, device)),
            },
        }
    }

    /// # Shapes
    /// - x: `[batch, tokens, in]` → `[batch, tokens, out]`
    fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        match (&self.lora, &self.linear) {
            (Some(lora), _) => lora.forward(x),
            (None, Some(linear)) => super::fused::linear(linear, x),
            (None, None) => x,
        }
    }

    fn frozen_count(&self) -> usize {
        self.lora.as_ref().map_or(0, |l| l.frozen_count())
    }
}

/// Which intermediate results a forward pass keeps (activation maps, DESIGN.md §6).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureRequest {
    /// Keep token features after V_E, VD1, the LLM, VD2 and V_D.
    pub features: bool,
    /// Keep the attention weights of (block, head); blocks count encoder first, then decoder.
    pub attention: Option<(usize, usize)>,
}

/// Intermediate results of one forward pass; each `[batch, tokens, channels]`.
#[derive(Debug, Clone)]
pub struct Captured<B: Backend> {
    /// After the patch embedding and the encoder blocks: V_E(X).
    pub encoder: Option<Tensor<B, 3>>,
    /// After VD1.
    pub vd1: Option<Tensor<B, 3>>,
    /// After the LLM block (and its residual).
    pub llm: Option<Tensor<B, 3>>,
    /// After VD2.
    pub vd2: Option<Tensor<B, 3>>,
    /// After the decoder blocks, before the head: V_D(Q).
    pub decoder: Option<Tensor<B, 3>>,
    /// Attention weights `[batch, query tokens, key tokens]` of the requested block and head.
    pub attention: Option<Tensor<B, 3>>,
}

impl<B: Backend> Default for Captured<B> {
    fn default() -> Self {
        Self {
            encoder: None,
            vd1: None,
            llm: None,
            vd2: None,
            decoder: None,
            attention: None,
        }
    }
}

/// The network.
#[derive(Module, Debug)]
pub struct MedVisionLlama<B: EngineBackend> {
    patch_embed: Linear<B>,
    pos_embed: Param<Tensor<B, 3>>,
    encoder: Vec<VitBlock<B>>,
    vd1: Option<Mapper<B>>,
    llm: Option<LlamaBlock<B>>,
    /// The BioGPT or BERT block when the preset swaps it in for Llama (§4.4.2). A field of its
    /// own rather than an enum with `llm`, so a Llama model's parameter names in checkpoints
    /// (`llm.q.adapter.a`, …) stay what they were.
    text_block: Option<LayerNormBlock<B>>,
    /// ViT-MLP's trainable MLP in place of the frozen block (§4.4.1).
    mlp: Option<BridgeMlp<B>>,
    vd2: Option<Mapper<B>>,
    decoder: Vec<VitBlock<B>>,
    head: Linear<B>,
    pos_at_input: bool,
    llm_residual: bool,
    patch: usize,
    out_channels: usize,
    softmax: bool,
}

impl<B: EngineBackend> MedVisionLlama<B> {
    /// Builds the network. For MedVisionLlama, `llm_weights` are the imported layer (Llama,
    /// BioGPT or BERT); `None` means random frozen weights of the config's architecture from its
    /// seed. The LLM width comes from the weights, and VD1/VD2 map to and from it.
    pub fn new(config: &ModelConfig, llm_weights: Option<FrozenBlockWeights>, device: &B::Device) -> Self {
        let seed = config.seed;
        let dim = config.embed_dim;
        let block = |name: String| {
            VitBlock::new(
                dim,
                config.num_heads,
                config.mlp_dim,
                config.dropout,
                seed_for(seed, &name),
                device,
            )
        };
        let (vd1, llm, text_block, vd2) = if config.has_llm() {
            let weights = llm_weights.unwrap_or_else(|| FrozenBlockWeights::random(&config.llm, seed));
            let hidden = weights.hidden();
            let (llm, text_block) = match weights {
                FrozenBlockWeights::Llama(w) => (Some(LlamaBlock::new(w, &config.llm, seed, device)), None),
                FrozenBlockWeights::LayerNorm(w) => {
                    (None, Some(LayerNormBlock::new(w, &config.llm, seed, device)))
                }
            };
            (
                Some(Mapper::new(config, dim, hidden, seed_for(seed, "vd1"), device)),
                llm,
                text_block,
                Some(Mapper::new(config, hidden, dim, seed_for(seed, "vd2"), device)),
            )
        } else if config.has_bridge() {
            let hidden = config.llm.hidden;
            (
                Some(Mapper::new(config, dim, hidden, seed_for(seed, "vd1"), device)),
                None,
                None,
                Some(Mapper::new(config, hidden, dim, seed_for(seed, "vd2"), device)),
            )
        } else {
            (None, None, None, None)
        };
        let mlp = (config.has_bridge() && !config.has_llm()).then(|| {
            BridgeMlp::new(
                config.llm.hidden,
                config.llm.intermediate,
                seed_for(seed, "mlp"),
                device,
            )
        });
        let out_features = config.patch_size.pow(3) * config.out_channels;
        Self {
            patch_embed: torch_linear(
                config.patch_features(),
                dim,
                seed_for(seed, "patch_embed"),
                device,
            ),
            pos_embed: init::param(
                init::normal_values(seed_for(seed, "pos_embed"), config.tokens() * dim, 1.0),
                [1, config.tokens(), dim],
                device,
            ),
            encoder: (0..config.encoder_depth)
                .map(|i| block(format!("encoder.{i}")))
                .collect(),
            vd1,
            llm,
            text_block,
            mlp,
            vd2,
            decoder: (0..config.decoder_depth)
                .map(|i| block(format!("decoder.{i}")))
                .collect(),
            head: torch_linear(dim, out_features, seed_for(seed, "head"), device),
            pos_at_input: config.pos_embed == PosEmbedPlace::Input,
            llm_residual: config.llm_residual,
            patch: config.patch_size,
            out_channels: config.out_channels,
            softmax: config.output == OutputKind::Softmax,
        }
    }

    /// Frozen values: the LLM block and the mappers' base weights.
    pub fn frozen_params(&self) -> usize {
        self.llm.as_ref().map_or(0, |l| l.frozen_count())
            + self.text_block.as_ref().map_or(0, |l| l.frozen_count())
            + self.vd1.as_ref().map_or(0, |m| m.frozen_count())
            + self.vd2.as_ref().map_or(0, |m| m.frozen_count())
    }

    /// Runs the frozen Llama block in `dtype` (its weights stored so, a cast at its input and
    /// output): `FloatDType::BF16` halves the block's memory and runs its matrix products in
    /// bfloat16, while every trainable weight, its gradient and Adam's state stay f32. A no-op
    /// for ViT-Baseline. The backend must support `dtype` (`Backend::supports_dtype`).
    pub fn with_frozen_dtype(mut self, dtype: burn::tensor::FloatDType) -> Self {
        self.llm = self.llm.map(|block| block.with_compute_dtype(dtype));
        self.text_block = self.text_block.map(|block| block.with_compute_dtype(dtype));
        self
    }

    /// The Llama block, if this is MedVisionLlama with a Llama block.
    pub fn llm(&self) -> Option<&LlamaBlock<B>> {
        self.llm.as_ref()
    }

    /// The BioGPT or BERT block, if one replaces the Llama block.
    pub fn text_block(&self) -> Option<&LayerNormBlock<B>> {
        self.text_block.as_ref()
    }

    /// The block between VD1 and VD2, whichever it is: the frozen Llama, BioGPT or BERT block,
    /// or ViT-MLP's trainable MLP.
    ///
    /// # Shapes
    /// - x: `[batch, tokens, hidden]` → `[batch, tokens, hidden]`
    fn bridge_block(&self, x: Tensor<B, 3>) -> Option<Tensor<B, 3>> {
        match (&self.llm, &self.text_block, &self.mlp) {
            (Some(llm), _, _) => Some(llm.forward(x)),
            (None, Some(block), _) => Some(block.forward(x)),
            (None, None, Some(mlp)) => Some(mlp.forward(x)),
            (None, None, None) => None,
        }
    }

    /// Trainable values (every `Param`; frozen weights are constants, not params).
    pub fn trainable_params(&self) -> usize {
        self.num_params()
    }

    /// Sets the output bias from class frequencies so that an untrained network predicts the
    /// training set's class balance instead of "0.5 everywhere" (Karpathy's "init well"; the
    /// focal-loss paper's prior initialisation, Lin et al. 2017). `priors` are the fractions of
    /// voxels of each output channel: background first for softmax (bias = ln p), each channel's
    /// foreground for sigmoid (bias = logit p). Fractions are clamped to [1e-4, 1 − 1e-4].
    /// The head's weight is scaled down by `HEAD_WEIGHT_SCALE` so the prior is what the first
    /// steps see; gradients grow it back where the data says so.
    pub fn with_output_prior(mut self, priors: &[f64]) -> Self {
        let voxels_per_channel = self.patch.pow(3);
        if priors.len() != self.out_channels {
            return self;
        }
        let bias: Vec<f32> = priors
            .iter()
            .flat_map(|p| {
                let p = p.clamp(1e-4, 1.0 - 1e-4);
                let value = if self.softmax {
                    p.ln()
                } else {
                    (p / (1.0 - p)).ln()
                };
                std::iter::repeat_n(value as f32, voxels_per_channel)
            })
            .collect();
        if let Some(old) = self.head.bias.take() {
            let device = old.val().device();
            let shape = [bias.len()];
            self.head.bias = Some(old.map(|_| {
                Tensor::<B, 1>::from_data(burn::tensor::TensorData::new(bias, shape), &device).require_grad()
            }));
        }
        self.head.weight = self.head.weight.clone().map(|w| {
            // Rebuilt from host values: a tensor computed from another is not a leaf, and only
            // leaves can be parameters.
            let (device, shape) = (w.device(), w.shape());
            let values: Vec<f32> = w
                .into_data()
                .to_vec::<f32>()
                .unwrap_or_default()
                .into_iter()
                .map(|v| v * HEAD_WEIGHT_SCALE as f32)
                .collect();
            Tensor::<B, 2>::from_data(burn::tensor::TensorData::new(values, shape), &device).require_grad()
        });
        self
    }

    /// The network with its ViT blocks' dropout sampling at inference (`on`) or not: Monte-Carlo
    /// dropout. A network built without dropout is unchanged.
    pub fn sampling_dropout(mut self, on: bool) -> Self {
        self.encoder = self.encoder.into_iter().map(|b| b.sampling_dropout(on)).collect();
        self.decoder = self.decoder.into_iter().map(|b| b.sampling_dropout(on)).collect();
        self
    }

    /// Logits.
    ///
    /// # Shapes
    /// - x: `[batch, in_channels, z, y, x]` → `[batch, out_channels, z, y, x]`
    pub fn forward(&self, x: Tensor<B, 5>) -> Tensor<B, 5> {
        self.forward_with_capture(x, CaptureRequest::default()).0
    }

    /// Probabilities: sigmoid, or softmax over the channel axis.
    ///
    /// # Shapes
    /// - x: `[batch, in_channels, z, y, x]` → `[batch, out_channels, z, y, x]`
    pub fn probabilities(&self, logits: Tensor<B, 5>) -> Tensor<B, 5> {
        if self.softmax {
            activation::softmax(logits, 1)
        } else {
            activation::sigmoid(logits)
        }
    }

    /// Logits in token space, one tensor per output channel, from patches cut on the host
    /// ([`super::patches::patchify_values`]): what training and validation use, so the volume is
    /// never reassembled on the device. Channel c of token t holds the logits of that patch's
    /// voxels in patch order — the same values [`Self::forward`] places in the volume.
    ///
    /// # Shapes
    /// - patches: `[batch, tokens, in_channels · patch³]` → out_channels × `[batch, tokens, patch³]`
    pub fn forward_patches(&self, patches: Tensor<B, 3>) -> Vec<Tensor<B, 3>> {
        let mut captured = Captured::default();
        let tokens = self.body(
            super::fused::linear(&self.patch_embed, patches),
            CaptureRequest::default(),
            &mut captured,
        );
        let [_, features] = self.head.weight.val().dims();
        let voxels = features / self.out_channels.max(1);
        let weight = self.head.weight.val();
        let bias = self.head.bias.as_ref().map(|b| b.val());
        (0..self.out_channels)
            .map(|c| {
                let range = c * voxels..(c + 1) * voxels;
                let [dim, _] = weight.dims();
                super::fused::linear_with(
                    tokens.clone(),
                    weight.clone().slice([0..dim, range.clone()]),
                    bias.clone().map(|b| b.slice([range])),
                )
            })
            .collect()
    }

    /// Logits and the requested intermediate results.
    ///
    /// # Shapes
    /// - x: `[batch, in_channels, z, y, x]` → `[batch, out_channels, z, y, x]`
    pub fn forward_with_capture(
        &self,
        x: Tensor<B, 5>,
        request: CaptureRequest,
    ) -> (Tensor<B, 5>, Captured<B>) {
        let [batch, _, nz, ny, nx] = x.dims();
        let grid = [nz / self.patch, ny / self.patch, nx / self.patch];
        let mut captured = Captured::default();
        let tokens = self.body(
            super::fused::linear(&self.patch_embed, patchify(x, self.patch)),
            request,
            &mut captured,
        );
        let logits = unpatchify(
            super::fused::linear(&self.head, tokens),
            batch,
            self.out_channels,
            grid,
            self.patch,
        );
        (logits, captured)
    }

    /// Everything between the patch embedding and the head.
    ///
    /// # Shapes
    /// - tokens: `[batch, tokens, embed_dim]` → `[batch, tokens, embed_dim]`
    fn body(
        &self,
        tokens: Tensor<B, 3>,
        request: CaptureRequest,
        captured: &mut Captured<B>,
    ) -> Tensor<B, 3> {
        let keep = |t: &Tensor<B, 3>| request.features.then(|| t.clone());
        let mut tokens = tokens;
        if self.pos_at_input {
            tokens = tokens + self.pos_embed.val();
        }
        let mut block_index = 0;
        let mut run_block = |block: &VitBlock<B>, tokens: Tensor<B, 3>, captured: &mut Captured<B>| {
            let head = request
                .attention
                .and_then(|(b, h)| (b == block_index).then_some(h));
            let (out, weights) = block.forward(tokens, head);
            if weights.is_some() {
                captured.attention = weights;
            }
            block_index += 1;
            out
        };
        for block in &self.encoder {
            tokens = run_block(block, tokens, captured);
        }
        captured.encoder = keep(&tokens);
        if let (Some(vd1), Some(vd2)) = (&self.vd1, &self.vd2) {
            let mapped = vd1.forward(tokens);
            captured.vd1 = keep(&mapped);
            let block_out = self
                .bridge_block(mapped.clone())
                .unwrap_or_else(|| mapped.clone());
            let transformed = if self.llm_residual {
                block_out + mapped
            } else {
                block_out
            };
            captured.llm = keep(&transformed);
            tokens = vd2.forward(transformed);
            captured.vd2 = keep(&tokens);
        }
        if !self.pos_at_input {
            tokens = tokens + self.pos_embed.val();
        }
        for block in &self.decoder {
            tokens = run_block(block, tokens, captured);
        }
        captured.decoder = keep(&tokens);
        tokens
    }
}

/// Cuts a volume into raster-ordered cubic patches (token index `(z·gy + y)·gx + x`), each
/// flattened channel-first: the same as a Conv3d with kernel = stride = patch.
///
/// # Shapes
/// - x: `[batch, channels, z, y, x]` → `[batch, tokens, channels · patch³]`
pub fn patchify<B: EngineBackend>(x: Tensor<B, 5>, patch: usize) -> Tensor<B, 3> {
    Tensor::from_primitive(TensorPrimitive::Float(B::patchify(
        x.into_primitive().tensor(),
        patch,
    )))
}

/// The inverse of [`patchify`].
///
/// # Shapes
/// - tokens: `[batch, tokens, channels · patch³]` → `[batch, channels, z, y, x]`
pub fn unpatchify<B: EngineBackend>(
    tokens: Tensor<B, 3>,
    batch: usize,
    channels: usize,
    grid: [usize; 3],
    patch: usize,
) -> Tensor<B, 5> {
    let tokens = tokens.into_primitive().tensor();
    Tensor::from_primitive(TensorPrimitive::Float(B::unpatchify(
        tokens, batch, channels, grid, patch,
    )))
}
