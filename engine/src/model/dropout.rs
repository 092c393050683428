//! Dropout that can also sample at inference (Monte-Carlo dropout, Gal & Ghahramani 2016).
//!
//! burn's `Dropout` applies only under an autodiff backend. The ViT blocks use this one instead:
//! while training it behaves exactly as burn's does; with `at_inference` set it keeps sampling
//! masks on a plain backend, so repeated predictions of one scan differ where the model is unsure.
//! It holds no tensors: checkpoints are unchanged.

use burn::module::Module;
use burn::tensor::{Distribution, Tensor, backend::Backend};

/// Zeroes each element with probability `prob` and scales the rest by `1 / (1 − prob)`, while
/// training or, with `at_inference`, always.
#[derive(Module, Clone, Debug)]
pub struct Dropout {
    /// The probability of zeroing an element.
    pub prob: f64,
    /// Sample masks at inference too (Monte-Carlo dropout).
    pub at_inference: bool,
}

impl Dropout {
    /// Dropout with probability `prob` (0 ≤ prob < 1), inactive at inference.
    ///
    /// # Panics
    /// `prob` outside 0 ≤ prob < 1 (the model's config is validated before this).
    pub fn new(prob: f64) -> Self {
        assert!(
            (0.0..1.0).contains(&prob),
            "dropout probability {prob} is not in [0, 1)"
        );
        Self {
            prob,
            at_inference: false,
        }
    }

    /// The probability to apply now on `device`: `prob` while training (autodiff on) or when
    /// sampling at inference, else 0.
    pub fn rate_now<B: Backend>(&self, device: &B::Device) -> f64 {
        if self.prob > 0.0 && (self.at_inference || B::ad_enabled(device)) {
            self.prob
        } else {
            0.0
        }
    }

    /// Applies the dropout (see [`Dropout::rate_now`]).
    ///
    /// # Shapes
    /// - input: any → the same
    pub fn forward<B: Backend, const D: usize>(&self, input: Tensor<B, D>) -> Tensor<B, D> {
        let prob = self.rate_now::<B>(&input.device());
        if prob == 0.0 {
            return input;
        }
        let keep = 1.0 - prob;
        let mask = input.random_like(Distribution::Bernoulli(keep));
        (input * mask).mul_scalar(1.0 / keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type CpuBackend = Flex;
    type TrainBackend = Autodiff<Flex>;

    fn ones<B: Backend>(device: &B::Device) -> Tensor<B, 2> {
        Tensor::ones([200, 200], device)
    }

    #[test]
    fn inactive_at_inference_unless_asked() {
        let device = Default::default();
        let x = ones::<CpuBackend>(&device);
        let out = Dropout::new(0.3).forward(x.clone());
        assert_eq!(
            out.to_data(),
            x.to_data(),
            "a plain backend without sampling is the identity"
        );
        let none = Dropout {
            prob: 0.0,
            at_inference: true,
        };
        assert_eq!(
            none.forward(x.clone()).to_data(),
            x.to_data(),
            "probability 0 is the identity"
        );
    }

    /// 40,000 ones through p = 0.3: the zeroed fraction is binomial (SD √(p(1−p)/n) = 0.0023, so
    /// 5 SD = 0.0115), every survivor is exactly 1/0.7, and the mean stays ≈ 1.
    fn check_sampled(values: &[f32]) {
        let n = values.len() as f64;
        let zeros = values.iter().filter(|v| **v == 0.0).count() as f64;
        assert!((zeros / n - 0.3).abs() < 0.0115, "zeroed fraction {}", zeros / n);
        let scale = 1.0 / 0.7f32;
        for v in values.iter().filter(|v| **v != 0.0) {
            assert!((v - scale).abs() < 1e-6, "survivor {v}, expected {scale}");
        }
        let mean = values.iter().map(|v| f64::from(*v)).sum::<f64>() / n;
        assert!((mean - 1.0).abs() < 0.0115 / 0.7, "mean {mean}");
    }

    #[test]
    fn sampling_at_inference_zeroes_the_stated_fraction_and_rescales() {
        let device = Default::default();
        let dropout = Dropout {
            prob: 0.3,
            at_inference: true,
        };
        let sample = || {
            dropout
                .forward(ones::<CpuBackend>(&device))
                .into_data()
                .to_vec::<f32>()
                .expect("f32 data")
        };
        let (a, b) = (sample(), sample());
        check_sampled(&a);
        assert_ne!(a, b, "two samples draw two masks");
    }

    #[test]
    fn training_samples_as_burns_dropout_does() {
        let device = Default::default();
        let out = Dropout::new(0.3).forward(ones::<TrainBackend>(&device));
        check_sampled(&out.into_data().to_vec::<f32>().expect("f32 data"));
    }
}
