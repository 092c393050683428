//! The segmentation loss: 0.5 · BCE (or cross-entropy) + 0.5 · soft Dice, both differentiable.
//! (The official code's Dice term is thresholded and gives no gradient; DESIGN.md §5.)

use crate::model::{EngineBackend, LossSpec, OutputKind};
use burn::tensor::{Tensor, TensorPrimitive, activation, backend::Backend};

pub use crate::model::fused_loss::{DICE_SMOOTH, DICE_WEIGHT};

/// Flattens `[batch, channels, z, y, x]` to `[batch, channels, voxels]`.
fn flatten<B: Backend>(x: Tensor<B, 5>) -> Tensor<B, 3> {
    let [batch, channels, z, y, w] = x.dims();
    x.reshape([batch, channels, z * y * w])
}

/// Soft Dice loss per sample and channel, averaged: `1 − (2Σpt + s) / (Σp + Σt + s)`.
///
/// # Shapes
/// - probabilities, target: `[batch, channels, z, y, x]` → `[1]`
pub fn soft_dice_loss<B: Backend>(probabilities: Tensor<B, 5>, target: Tensor<B, 5>) -> Tensor<B, 1> {
    let (p, t) = (flatten(probabilities), flatten(target));
    let intersection = (p.clone() * t.clone()).sum_dim(2);
    let total = p.sum_dim(2) + t.sum_dim(2);
    let dice = (intersection.mul_scalar(2.0).add_scalar(DICE_SMOOTH)) / total.add_scalar(DICE_SMOOTH);
    dice.mean().neg().add_scalar(1.0)
}

/// Binary cross-entropy from logits, numerically stable:
/// `max(z, 0) − z·t + ln(1 + e^{−|z|})`, averaged over every voxel.
///
/// # Shapes
/// - logits, target: `[batch, 1, z, y, x]` → `[1]`
pub fn bce_with_logits<B: Backend>(logits: Tensor<B, 5>, target: Tensor<B, 5>) -> Tensor<B, 1> {
    let positive = logits.clone().clamp_min(0.0);
    let log_term = logits.clone().abs().neg().exp().add_scalar(1.0).log();
    (positive - logits * target + log_term).mean()
}

/// Cross-entropy of softmax logits against one-hot targets, averaged over voxels.
///
/// # Shapes
/// - logits, one_hot: `[batch, classes, z, y, x]` → `[1]`
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 5>, one_hot: Tensor<B, 5>) -> Tensor<B, 1> {
    let [batch, _, z, y, x] = logits.dims();
    let voxels = (batch * z * y * x) as f64;
    (activation::log_softmax(logits, 1) * one_hot)
        .sum()
        .neg()
        .div_scalar(voxels)
}

/// The training loss for an output kind.
///
/// # Shapes
/// - logits, target: `[batch, channels, z, y, x]` → `[1]`
pub fn segmentation_loss<B: Backend>(
    logits: Tensor<B, 5>,
    target: Tensor<B, 5>,
    output: OutputKind,
) -> Tensor<B, 1> {
    match output {
        OutputKind::Sigmoid => {
            let dice = soft_dice_loss(activation::sigmoid(logits.clone()), target.clone());
            bce_with_logits(logits, target).mul_scalar(1.0 - DICE_WEIGHT) + dice.mul_scalar(DICE_WEIGHT)
        }
        OutputKind::Softmax => {
            let dice = soft_dice_loss(activation::softmax(logits.clone(), 1), target.clone());
            cross_entropy(logits, target).mul_scalar(1.0 - DICE_WEIGHT) + dice.mul_scalar(DICE_WEIGHT)
        }
    }
}

/// Soft Dice per sample of one channel in token space: `(2Σpt + s) / (Σp + Σt + s)`.
///
/// # Shapes
/// - probabilities, target: `[batch, tokens, patch³]` → `[batch]`
fn dice_per_sample<B: Backend>(probabilities: Tensor<B, 3>, target: Tensor<B, 3>) -> Tensor<B, 1> {
    let [batch, _, _] = probabilities.dims();
    let intersection = (probabilities.clone() * target.clone()).sum_dim(2).sum_dim(1);
    let total = probabilities.sum_dim(2).sum_dim(1) + target.sum_dim(2).sum_dim(1);
    ((intersection.mul_scalar(2.0).add_scalar(DICE_SMOOTH)) / total.add_scalar(DICE_SMOOTH)).reshape([batch])
}

/// [`segmentation_loss`] in token space: the same value, computed from one logits tensor per
/// output channel ([`crate::model::MedVisionLlama::forward_patches`]) against targets cut into
/// the same patches. Every sum runs over contiguous memory: no volume is reassembled and no
/// reduction crosses the channel axis of a 5-D tensor.
///
/// # Shapes
/// - logits, targets: channels × `[batch, tokens, patch³]` → `[1]`
pub fn segmentation_loss_tokens<B: EngineBackend>(
    logits: Vec<Tensor<B, 3>>,
    targets: Vec<Tensor<B, 3>>,
    output: OutputKind,
) -> Tensor<B, 1> {
    segmentation_loss_tokens_with(logits, targets, output, true)
}

/// [`segmentation_loss_tokens`], with the background channel of a softmax output left out of
/// the Dice term when `dice_background` is false (nnU-Net's choice: the soft Dice of the
/// background is ≈ 1 and only dilutes the small foreground classes' gradient).
///
/// # Shapes
/// - logits, targets: channels × `[batch, tokens, patch³]` → `[1]`
///
/// The CPU backend computes it in one fused kernel ([`crate::model::fused_loss`]); the other
/// backends write it out with burn's ops ([`segmentation_loss_tokens_with_ops`]).
pub fn segmentation_loss_tokens_with<B: EngineBackend>(
    logits: Vec<Tensor<B, 3>>,
    targets: Vec<Tensor<B, 3>>,
    output: OutputKind,
    dice_background: bool,
) -> Tensor<B, 1> {
    let spec = LossSpec {
        output,
        dice_background,
        gradient: false,
    };
    let primitives = |v: Vec<Tensor<B, 3>>| v.into_iter().map(|t| t.into_primitive().tensor()).collect();
    let tensors = |v: Vec<_>| {
        v.into_iter()
            .map(|p| Tensor::from_primitive(TensorPrimitive::Float(p)))
            .collect()
    };
    match B::fused_segmentation_loss(primitives(logits), primitives(targets), spec) {
        Ok(fused) => Tensor::from_primitive(TensorPrimitive::Float(fused.loss)),
        Err((logits, targets)) => {
            segmentation_loss_tokens_with_ops(tensors(logits), tensors(targets), output, dice_background)
        }
    }
}

/// [`segmentation_loss_tokens_with`] written out with burn's ops (any backend).
///
/// # Shapes
/// - logits, targets: channels × `[batch, tokens, patch³]` → `[1]`
pub fn segmentation_loss_tokens_with_ops<B: Backend>(
    logits: Vec<Tensor<B, 3>>,
    targets: Vec<Tensor<B, 3>>,
    output: OutputKind,
    dice_background: bool,
) -> Tensor<B, 1> {
    let channels = logits.len().max(1) as f64;
    let skip_background = output == OutputKind::Softmax && !dice_background && logits.len() > 1;
    let dice_channels = if skip_background { channels - 1.0 } else { channels };
    let [batch, tokens, voxels] = logits[0].dims();
    let count = (batch * tokens * voxels) as f64;
    let device = logits[0].device();
    let add = |a: Option<Tensor<B, 1>>, b: Tensor<B, 1>| Some(a.map_or(b.clone(), |a| a + b));
    let (mut voxel_term, mut dice_sum) = (None, None);
    match output {
        OutputKind::Sigmoid => {
            for (z, t) in logits.into_iter().zip(targets) {
                let log_term = z.clone().abs().neg().exp().add_scalar(1.0).log();
                let bce = (z.clone().clamp_min(0.0) - z.clone() * t.clone() + log_term).sum();
                voxel_term = add(voxel_term, bce);
                dice_sum = add(dice_sum, dice_per_sample(activation::sigmoid(z), t).sum());
            }
        }
        OutputKind::Softmax => {
            // log-softmax over the channel list; the max only keeps exp finite (its gradient
            // cancels), so it is a constant.
            let max = logits
                .iter()
                .skip(1)
                .fold(logits[0].clone(), |m, l| m.max_pair(l.clone()))
                .detach();
            let shifted: Vec<Tensor<B, 3>> = logits.into_iter().map(|l| l - max.clone()).collect();
            let exps: Vec<Tensor<B, 3>> = shifted.iter().map(|s| s.clone().exp()).collect();
            let sum = exps.iter().skip(1).fold(exps[0].clone(), |a, e| a + e.clone());
            let log_sum = sum.clone().log();
            for (channel, ((s, e), t)) in shifted.into_iter().zip(exps).zip(targets).enumerate() {
                let nll = (t.clone() * (log_sum.clone() - s)).sum();
                voxel_term = add(voxel_term, nll);
                if channel > 0 || !skip_background {
                    dice_sum = add(dice_sum, dice_per_sample(e / sum.clone(), t).sum());
                }
            }
        }
    }
    let zero = || Tensor::<B, 1>::zeros([1], &device);
    let voxel_term = voxel_term.unwrap_or_else(zero).div_scalar(match output {
        OutputKind::Sigmoid => count * channels,
        OutputKind::Softmax => count,
    });
    let dice = dice_sum
        .unwrap_or_else(zero)
        .div_scalar(batch as f64 * dice_channels)
        .neg()
        .add_scalar(1.0);
    voxel_term.mul_scalar(1.0 - DICE_WEIGHT) + dice.mul_scalar(DICE_WEIGHT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::TensorData;

    type A = Autodiff<Flex>;

    fn tensor(values: &[f32], shape: [usize; 5]) -> Tensor<A, 5> {
        Tensor::from_data(TensorData::new(values.to_vec(), shape), &Default::default())
    }

    fn scalar(t: Tensor<A, 1>) -> f64 {
        f64::from(t.into_scalar())
    }

    #[test]
    fn losses_match_hand_computed_values() {
        let logits = [2.0f32, -1.0, 0.5, -3.0];
        let target = [1.0f32, 0.0, 0.0, 1.0];
        let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
        let bce: f64 = logits
            .iter()
            .zip(&target)
            .map(|(z, t)| {
                let p = sigmoid(f64::from(*z));
                -(f64::from(*t) * p.ln() + (1.0 - f64::from(*t)) * (1.0 - p).ln())
            })
            .sum::<f64>()
            / 4.0;
        let shape = [1, 1, 1, 2, 2];
        assert!((scalar(bce_with_logits(tensor(&logits, shape), tensor(&target, shape))) - bce).abs() < 1e-6);
        let p: Vec<f64> = logits.iter().map(|z| sigmoid(f64::from(*z))).collect();
        let inter: f64 = p.iter().zip(&target).map(|(p, t)| p * f64::from(*t)).sum();
        let total: f64 = p.iter().sum::<f64>() + 2.0;
        let dice = 1.0 - (2.0 * inter + DICE_SMOOTH) / (total + DICE_SMOOTH);
        let combined = 0.5 * bce + 0.5 * dice;
        let got = scalar(segmentation_loss(
            tensor(&logits, shape),
            tensor(&target, shape),
            OutputKind::Sigmoid,
        ));
        assert!((got - combined).abs() < 1e-6, "{got} vs {combined}");
    }

    #[test]
    fn dice_term_has_the_analytic_gradient() {
        // d/dp of 1 − (2Σpt + s)/(Σp + Σt + s) is −(2t(Σp + Σt + s) − (2Σpt + s)) / (Σp + Σt + s)².
        let p = [0.2f32, 0.7, 0.4];
        let t = [0.0f32, 1.0, 1.0];
        let probabilities = tensor(&p, [1, 1, 1, 1, 3]).require_grad();
        let loss = soft_dice_loss(probabilities.clone(), tensor(&t, [1, 1, 1, 1, 3]));
        let grads = loss.backward();
        let gradient = probabilities
            .grad(&grads)
            .expect("gradient")
            .into_data()
            .to_vec::<f32>()
            .expect("f32");
        let (sp, st) = (1.3f64, 2.0f64);
        let spt: f64 = p.iter().zip(&t).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum();
        let denominator = sp + st + DICE_SMOOTH;
        for (i, g) in gradient.iter().enumerate() {
            let want =
                -(2.0 * f64::from(t[i]) * denominator - (2.0 * spt + DICE_SMOOTH)) / denominator.powi(2);
            assert!((f64::from(*g) - want).abs() < 1e-5, "{i}: {g} vs {want}");
        }
    }

    /// Random logits and a random label volume in image layout and cut into token layout.
    fn both_layouts(output: OutputKind, channels: usize) -> (f64, f64) {
        let (image, token, _) = both_layouts_with(output, channels);
        (image, token)
    }

    /// Also returns the token-space loss without the background's Dice, and checks it against
    /// the image-space functions applied to the foreground channels only.
    fn both_layouts_with(output: OutputKind, channels: usize) -> (f64, f64, f64) {
        use crate::model::patches::{patchify_values, split_channels};
        let (batch, shape, patch) = (2, [4usize, 4, 8], 2);
        let voxels: usize = shape.iter().product();
        let logits: Vec<f32> = (0..batch * channels * voxels)
            .map(|i| ((i * 7919 % 613) as f32 / 100.0) - 3.0)
            .collect();
        let classes = if output == OutputKind::Softmax {
            channels
        } else {
            channels + 1
        };
        let mut target = vec![0f32; batch * channels * voxels];
        for b in 0..batch {
            for v in 0..voxels {
                let class = (v * 31 + b * 7) % classes;
                match output {
                    OutputKind::Softmax => target[(b * channels + class) * voxels + v] = 1.0,
                    OutputKind::Sigmoid if class > 0 => target[(b * channels + class - 1) * voxels + v] = 1.0,
                    OutputKind::Sigmoid => {}
                }
            }
        }
        let image = scalar(segmentation_loss(
            tensor(&logits, [batch, channels, shape[0], shape[1], shape[2]]),
            tensor(&target, [batch, channels, shape[0], shape[1], shape[2]]),
            output,
        ));
        let tokens = (shape[0] / patch) * (shape[1] / patch) * (shape[2] / patch);
        let cut = |values: &[f32]| -> Vec<Tensor<A, 3>> {
            let mut per_channel = vec![Vec::new(); channels];
            for sample in values.chunks(channels * voxels) {
                let patches = patchify_values(sample, channels, shape, patch);
                for (c, part) in split_channels(&patches, channels, patch.pow(3))
                    .into_iter()
                    .enumerate()
                {
                    per_channel[c].extend(part);
                }
            }
            per_channel
                .into_iter()
                .map(|v| {
                    Tensor::from_data(
                        TensorData::new(v, [batch, tokens, patch.pow(3)]),
                        &Default::default(),
                    )
                })
                .collect()
        };
        let token = scalar(segmentation_loss_tokens(cut(&logits), cut(&target), output));
        let without_background = scalar(segmentation_loss_tokens_with(
            cut(&logits),
            cut(&target),
            output,
            false,
        ));
        if output == OutputKind::Softmax {
            let shape5 = [batch, channels, shape[0], shape[1], shape[2]];
            let (l, t) = (tensor(&logits, shape5), tensor(&target, shape5));
            let foreground =
                |x: Tensor<A, 5>| x.slice([0..batch, 1..channels, 0..shape[0], 0..shape[1], 0..shape[2]]);
            let dice = scalar(soft_dice_loss(
                foreground(activation::softmax(l.clone(), 1)),
                foreground(t.clone()),
            ));
            let want = (1.0 - DICE_WEIGHT) * scalar(cross_entropy(l, t)) + DICE_WEIGHT * dice;
            assert!(
                (without_background - want).abs() < 1e-5,
                "{without_background} vs {want}"
            );
        }
        (image, token, without_background)
    }

    #[test]
    fn leaving_the_background_out_of_the_dice_term_changes_only_softmax_losses() {
        let (_, with_background, without) = both_layouts_with(OutputKind::Softmax, 3);
        assert!(
            (with_background - without).abs() > 1e-4,
            "the background's Dice was not left out"
        );
        let (_, sigmoid, sigmoid_without) = both_layouts_with(OutputKind::Sigmoid, 2);
        assert_eq!(
            sigmoid, sigmoid_without,
            "sigmoid outputs have no background channel"
        );
    }

    #[test]
    fn the_token_space_loss_equals_the_image_space_loss() {
        for (output, channels) in [
            (OutputKind::Softmax, 3),
            (OutputKind::Sigmoid, 1),
            (OutputKind::Sigmoid, 2),
        ] {
            let (image, token) = both_layouts(output, channels);
            assert!(
                (image - token).abs() < 1e-5,
                "{output:?} × {channels}: {image} vs {token}"
            );
        }
    }

    /// The CPU backend's fused loss under autodiff against the loss written out with burn's ops:
    /// the same value (1e-5) and the same gradient for every channel's logits (1e-6 absolute on
    /// gradients of order 1e-4), also when the loss is scaled (3 · loss) before backward.
    #[test]
    fn the_fused_loss_has_the_value_and_gradient_of_the_written_out_loss() {
        let (batch, tokens, voxels) = (2, 3, 40);
        for (output, channels, dice_background) in [
            (OutputKind::Softmax, 3, false),
            (OutputKind::Softmax, 2, true),
            (OutputKind::Sigmoid, 2, true),
        ] {
            let n = batch * tokens * voxels;
            let logits: Vec<Vec<f32>> = (0..channels)
                .map(|c| {
                    (0..n)
                        // + 0.005: no logit is exactly 0, where the written-out BCE's
                        // max(z, 0) and |z| take one-sided gradients (the fused one is exact).
                        .map(|i| (((i * 7919 + c * 131) % 613) as f32 / 100.0) - 2.995)
                        .collect()
                })
                .collect();
            let targets: Vec<Vec<f32>> = (0..channels)
                .map(|c| {
                    (0..n)
                        .map(|i| f32::from((i * 31 + i / 7) % channels == c))
                        .collect()
                })
                .collect();
            let make = |values: &[Vec<f32>]| -> Vec<Tensor<A, 3>> {
                values
                    .iter()
                    .map(|v| {
                        Tensor::from_data(
                            TensorData::new(v.clone(), [batch, tokens, voxels]),
                            &Default::default(),
                        )
                        .require_grad()
                    })
                    .collect()
            };
            let run = |fused: bool| -> (f64, Vec<Vec<f32>>) {
                let (l, t) = (make(&logits), make(&targets));
                let t: Vec<Tensor<A, 3>> = t.into_iter().map(|t| t.detach()).collect();
                let loss = match fused {
                    true => segmentation_loss_tokens_with(l.clone(), t, output, dice_background),
                    false => segmentation_loss_tokens_with_ops(l.clone(), t, output, dice_background),
                };
                let value = scalar(loss.clone());
                let grads = loss.mul_scalar(3.0).backward();
                let gradients = l
                    .iter()
                    .map(|l| {
                        l.grad(&grads)
                            .expect("gradient")
                            .into_data()
                            .to_vec::<f32>()
                            .expect("f32")
                    })
                    .collect();
                (value, gradients)
            };
            let (fused_value, fused_grads) = run(true);
            let (ops_value, ops_grads) = run(false);
            assert!(
                (fused_value - ops_value).abs() < 1e-5,
                "{output:?}: {fused_value} vs {ops_value}"
            );
            for (c, (f, o)) in fused_grads.iter().zip(&ops_grads).enumerate() {
                let largest = o.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
                assert!(
                    largest > 1e-5,
                    "{output:?} channel {c}: the written-out gradient is all ≈ 0"
                );
                for (i, (f, o)) in f.iter().zip(o).enumerate() {
                    assert!(
                        (f - o).abs() < 1e-6,
                        "{output:?} channel {c} voxel {i}: {f} vs {o}"
                    );
                }
            }
        }
    }

    #[test]
    fn cross_entropy_matches_hand_computation() {
        // Two classes at one voxel: logits (1, 3), class 1 → −ln(e³ / (e + e³)).
        let got = scalar(cross_entropy(
            tensor(&[1.0, 3.0], [1, 2, 1, 1, 1]),
            tensor(&[0.0, 1.0], [1, 2, 1, 1, 1]),
        ));
        let want = -(3f64.exp() / (1f64.exp() + 3f64.exp())).ln();
        assert!((got - want).abs() < 1e-6);
    }
}
