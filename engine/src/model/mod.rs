//! The networks: ViT-Baseline and MedVisionLlama as one configurable model, its building
//! blocks, and model statistics (parameters and FLOPs).

pub mod attention;
mod autodiff_linear;
mod autodiff_nodes;
mod bridge_mlp;
mod config;
mod config_limits;
mod cpu_kernels;
mod cpu_linear;
mod cpu_rows;
mod dropout;
mod fast_math;
pub mod fused;
pub mod fused_loss;
pub mod fused_ops;
pub mod init;
mod layer_norm_block;
mod llama;
mod lora;
mod network;
pub mod patches;
mod stats;
mod vit;

pub use attention::{EngineAutodiffBackend, EngineBackend, FusedLoss, LossInputs};
pub use bridge_mlp::BridgeMlp;
pub use config::{
    ConfigError, LAYER_NORM_BLOCK_PROJECTIONS, LLM_PROJECTIONS, LlmArchitecture, LlmConfig, MapperKind,
    ModelConfig, ModelKind, OutputKind, PosEmbedPlace,
};
pub use config_limits::{MAX_CHANNELS, MAX_DEPTH, MAX_IMAGE_EDGE, MAX_INTERMEDIATE, MAX_TOKENS, MAX_WIDTH};
pub use dropout::Dropout;
pub use fused_loss::LossSpec;
pub use layer_norm_block::{LayerNormBlock, layer_norm};
pub use llama::{LlamaBlock, rms_norm};
pub use lora::{FrozenLinear, LoraAdapter, lora_mapper};
pub use network::{CaptureRequest, Captured, Mapper, MedVisionLlama, patchify, unpatchify};
pub use stats::{ModelStats, model_stats};
pub use vit::{VitBlock, torch_linear};

#[cfg(test)]
mod attention_tests;
#[cfg(test)]
mod fused_ops_tests;
#[cfg(test)]
mod layer_norm_block_tests;
#[cfg(test)]
mod linear_tests;
#[cfg(test)]
pub(crate) mod llama_tests;
#[cfg(test)]
pub(crate) mod network_tests;
#[cfg(test)]
mod precision_tests;
