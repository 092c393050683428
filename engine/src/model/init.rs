//! Deterministic initialisation: values drawn from our seeded generator on the CPU, then moved
//! to the device. The same seed gives the same weights on every backend, which is what lets
//! checkpoints omit frozen random weights and regenerate them.

use crate::rng::Rng;
use burn::module::Param;
use burn::tensor::{Tensor, TensorData, backend::Backend};

/// Seeds for each named weight: a stable hash of the name mixed with the model seed.
pub fn seed_for(model_seed: u64, name: &str) -> u64 {
    // FNV-1a: stable across Rust versions (unlike `DefaultHasher`).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^ model_seed.rotate_left(17)
}

/// Uniform values in [-bound, bound).
pub fn uniform_values(seed: u64, count: usize, bound: f64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..count).map(|_| rng.range(-bound, bound) as f32).collect()
}

/// Normal values with the given standard deviation.
pub fn normal_values(seed: u64, count: usize, std: f64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..count).map(|_| (rng.normal() * std) as f32).collect()
}

/// A tensor from values and a shape.
pub fn tensor<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// A trainable parameter from values and a shape (marked as requiring a gradient).
pub fn param<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::from_tensor(tensor(values, shape, device))
}

/// PyTorch's default `nn.Linear` / `kaiming_uniform_(a=√5)` bound: 1/√fan_in.
pub fn torch_linear_bound(fan_in: usize) -> f64 {
    1.0 / (fan_in.max(1) as f64).sqrt()
}
