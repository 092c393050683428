//! The trainable MLP of the ViT-MLP ablation (MedVisionLlama, arXiv 2410.02458, §4.4.1: "a
//! large multilayer perceptron incorporated into the original ViT-Baseline", parameter-matched
//! to MedVisionLlama). It sits where MedVisionLlama has its frozen block, between VD1 and VD2 and
//! inside the same residual, so the two models differ only in that block: `hidden →
//! intermediate → hidden` with exact GELU, every weight trained. The paper gives no more detail;
//! the widths come from `[model.llm] hidden` and `intermediate`.

use super::vit::torch_linear;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Tensor, activation, backend::Backend};

/// `fc2(gelu(fc1(x)))`, trainable.
#[derive(Module, Debug)]
pub struct BridgeMlp<B: Backend> {
    fc1: Linear<B>,
    fc2: Linear<B>,
}

impl<B: Backend> BridgeMlp<B> {
    /// PyTorch-default initialised layers (as `nn.Linear`).
    pub fn new(hidden: usize, intermediate: usize, seed: u64, device: &B::Device) -> Self {
        Self {
            fc1: torch_linear(hidden, intermediate, seed, device),
            fc2: torch_linear(intermediate, hidden, seed ^ 1, device),
        }
    }

    /// # Shapes
    /// - x: `[batch, tokens, hidden]` → `[batch, tokens, hidden]`
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.fc2.forward(activation::gelu(self.fc1.forward(x)))
    }
}
