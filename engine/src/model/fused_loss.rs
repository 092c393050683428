//! The segmentation loss of training (0.5 · cross-entropy or BCE + 0.5 · soft Dice, in token
//! space) and its gradient with respect to the logits, in two parallel passes over the voxels.
//!
//! Written with burn's ops the loss is some twenty element-wise passes forward and as many
//! backward over `batch · channels · voxels` values, each on one thread in burn-flex: on demo-cpu
//! at batch 4 (3 channels of 262 144 voxels) the largest serial part of a training step (issue 11's
//! profile). Here the CPU backend computes the value and every channel's gradient at once; under
//! autodiff the gradient is attached to the logits as a precomputed one
//! ([`super::EngineBackend::fused_segmentation_loss`]). [`crate::train::segmentation_loss_tokens`]
//! keeps the written-out version for the other backends, and the tests hold the two together.

use super::config::OutputKind;
use rayon::prelude::*;
use std::ops::Range;

/// Smoothing of the soft Dice ratio (keeps empty masks finite).
pub const DICE_SMOOTH: f64 = 1.0;
/// Weight of the overlap term; the voxel-wise term gets 1 − this.
pub const DICE_WEIGHT: f64 = 0.5;

/// Voxels per parallel task (within one sample).
const VOXELS_PER_TASK: usize = 1 << 14;

/// Which loss, and whether its gradient is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossSpec {
    /// Sigmoid (BCE + Dice per channel) or softmax (cross-entropy + Dice) over the channels.
    pub output: OutputKind,
    /// Whether a softmax output's background channel (0) counts in the Dice term.
    pub dice_background: bool,
    /// Whether to compute the gradient with respect to every channel's logits.
    pub gradient: bool,
}

impl LossSpec {
    /// Whether channel 0 is left out of the Dice term (softmax over several channels only).
    fn skips_background(&self, channels: usize) -> bool {
        self.output == OutputKind::Softmax && !self.dice_background && channels > 1
    }
}

/// The loss value and, when asked for, one gradient per channel shaped like its logits.
#[derive(Debug, Clone, PartialEq)]
pub struct HostLoss {
    /// The loss value.
    pub loss: f64,
    /// ∂loss/∂logits per channel (when asked for).
    pub gradients: Option<Vec<Vec<f32>>>,
}

/// Per-sample sums of one task: the voxel term and, per channel, Σp·t, Σp and Σt.
#[derive(Debug, Clone)]
struct Sums {
    sample: usize,
    voxel_term: f64,
    overlap: Vec<f64>,
    predicted: Vec<f64>,
    target: Vec<f64>,
}

impl Sums {
    fn new(sample: usize, channels: usize) -> Self {
        Sums {
            sample,
            voxel_term: 0.0,
            overlap: vec![0.0; channels],
            predicted: vec![0.0; channels],
            target: vec![0.0; channels],
        }
    }
}

/// Consecutive ranges covering `batch` samples of `per_sample` voxels, none crossing a sample.
fn tasks(batch: usize, per_sample: usize) -> Vec<(usize, Range<usize>)> {
    let mut out = Vec::new();
    for sample in 0..batch {
        let base = sample * per_sample;
        let mut start = 0;
        while start < per_sample {
            let end = (start + VOXELS_PER_TASK).min(per_sample);
            out.push((sample, base + start..base + end));
            start = end;
        }
    }
    out
}

/// Splits `values` into the consecutive `ranges` (which must cover it from 0, in order).
fn split_ranges<'a>(mut values: &'a mut [f32], ranges: &[(usize, Range<usize>)]) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(ranges.len());
    for (_, range) in ranges {
        let (head, tail) = values.split_at_mut(range.len());
        out.push(head);
        values = tail;
    }
    out
}

/// Voxels handled together: the loops over one block vectorise (the channels are an outer loop).
const BLOCK: usize = 64;

/// The per-voxel quantities of one block of at most [`BLOCK`] voxels.
struct Block {
    /// Probabilities per channel (softmax over the channels, or each channel's sigmoid).
    p: Vec<[f32; BLOCK]>,
    /// Softmax: the channel maximum per voxel.
    max: [f32; BLOCK],
    /// Softmax: `ln Σ exp(z − max)` per voxel.
    log_sum: [f32; BLOCK],
    /// The voxel term of each voxel (cross-entropy, or BCE summed over the channels).
    voxel: [f32; BLOCK],
}

impl Block {
    fn new(channels: usize) -> Self {
        Block {
            p: vec![[0.0; BLOCK]; channels],
            max: [0.0; BLOCK],
            log_sum: [0.0; BLOCK],
            voxel: [0.0; BLOCK],
        }
    }

    /// Fills the block from voxels `start..start + n` (n ≤ BLOCK). A NaN logit makes its voxel's
    /// probabilities and voxel term NaN.
    #[inline(always)]
    fn fill(&mut self, logits: &[&[f32]], targets: &[&[f32]], start: usize, n: usize, softmax: bool) {
        use super::fast_math::{exp, ln};
        let range = start..start + n;
        let voxel = &mut self.voxel[..n];
        voxel.fill(0.0);
        if softmax {
            let (max, log_sum) = (&mut self.max[..n], &mut self.log_sum[..n]);
            max.fill(f32::NEG_INFINITY);
            for z in logits {
                for (m, &z) in max.iter_mut().zip(&z[range.clone()]) {
                    *m = if z > *m { z } else { *m };
                }
            }
            // log_sum holds Σ exp(z − max) until it is turned into its logarithm.
            log_sum.fill(0.0);
            for (z, p) in logits.iter().zip(self.p.iter_mut()) {
                let values = p[..n].iter_mut().zip(&z[range.clone()]);
                for (((p, &z), &m), sum) in values.zip(&*max).zip(log_sum.iter_mut()) {
                    *p = exp(z - m);
                    *sum += *p;
                }
            }
            let mut inverse = [0.0_f32; BLOCK];
            for (inverse, sum) in inverse[..n].iter_mut().zip(log_sum.iter_mut()) {
                *inverse = 1.0 / *sum;
                *sum = ln(*sum);
            }
            // −ln p_c = ln Σ − (z_c − max), weighted by t_c.
            for ((z, t), p) in logits.iter().zip(targets).zip(self.p.iter_mut()) {
                let values = z[range.clone()].iter().zip(&t[range.clone()]);
                let per_voxel = voxel.iter_mut().zip(p[..n].iter_mut()).zip(values);
                for ((((v, p), (&z, &t)), &m), (&l, &inv)) in
                    per_voxel.zip(&*max).zip(log_sum.iter().zip(&inverse[..n]))
                {
                    *v += t * (l - (z - m));
                    *p *= inv;
                }
            }
        } else {
            for ((z, t), p) in logits.iter().zip(targets).zip(self.p.iter_mut()) {
                let values = z[range.clone()].iter().zip(&t[range.clone()]);
                for ((v, p), (&z, &t)) in voxel.iter_mut().zip(p[..n].iter_mut()).zip(values) {
                    // e = exp(−|z|) ≤ 1: the softplus and the sigmoid without overflow.
                    let e = exp(-z.abs());
                    let inverse = 1.0 / (1.0 + e);
                    *v += (if z > 0.0 { z } else { 0.0 }) - z * t + ln(1.0 + e);
                    let sigmoid = if z >= 0.0 { inverse } else { e * inverse };
                    // NaN in, NaN out (the comparison above would pick a branch).
                    *p = if z.is_nan() { z } else { sigmoid };
                }
            }
        }
    }
}

/// The loss of [`crate::train::segmentation_loss_tokens_with`] and its gradient.
///
/// # Shapes
/// - logits, targets: channels × `batch · tokens · patch³` values (sample-major)
///
/// # Panics
/// If the channels' lengths differ or are not a multiple of `batch`.
pub fn segmentation_loss(logits: &[&[f32]], targets: &[&[f32]], batch: usize, spec: LossSpec) -> HostLoss {
    let channels = logits.len();
    let len = logits.first().map_or(0, |l| l.len());
    assert!(
        channels > 0
            && targets.len() == channels
            && logits.iter().chain(targets).all(|v| v.len() == len)
            && batch > 0
            && len.is_multiple_of(batch),
        "fused loss: {channels} logit and {} target channels of unequal length or not {batch} samples",
        targets.len()
    );
    let per_sample = len / batch;
    let ranges = tasks(batch, per_sample);
    let softmax = spec.output == OutputKind::Softmax;

    // Pass 1: the voxel term and the Dice sums, per task, then per sample.
    let partial: Vec<Sums> = ranges
        .par_iter()
        .map(|(sample, range)| {
            let mut sums = Sums::new(*sample, channels);
            let mut block = Block::new(channels);
            for start in range.clone().step_by(BLOCK) {
                let n = BLOCK.min(range.end - start);
                block.fill(logits, targets, start, n, softmax);
                sums.voxel_term += block.voxel[..n].iter().map(|&v| f64::from(v)).sum::<f64>();
                for (c, (p, t)) in block.p.iter().zip(targets).enumerate() {
                    let (mut overlap, mut predicted, mut target) = (0.0_f32, 0.0_f32, 0.0_f32);
                    for (&p, &t) in p[..n].iter().zip(&t[start..start + n]) {
                        overlap += p * t;
                        predicted += p;
                        target += t;
                    }
                    sums.overlap[c] += f64::from(overlap);
                    sums.predicted[c] += f64::from(predicted);
                    sums.target[c] += f64::from(target);
                }
            }
            sums
        })
        .collect();
    let mut per_sample_sums: Vec<Sums> = (0..batch).map(|b| Sums::new(b, channels)).collect();
    for sums in &partial {
        let total = &mut per_sample_sums[sums.sample];
        total.voxel_term += sums.voxel_term;
        for c in 0..channels {
            total.overlap[c] += sums.overlap[c];
            total.predicted[c] += sums.predicted[c];
            total.target[c] += sums.target[c];
        }
    }

    let skip = spec.skips_background(channels);
    let in_dice = |c: usize| c > 0 || !skip;
    let dice_channels = (if skip { channels - 1 } else { channels }) as f64;
    let count = len as f64;
    let voxel_divisor = if softmax { count } else { count * channels as f64 };
    let voxel_term = per_sample_sums.iter().map(|s| s.voxel_term).sum::<f64>() / voxel_divisor;
    // Numerator and denominator of each (sample, channel)'s Dice ratio.
    let ratio: Vec<Vec<(f64, f64)>> = per_sample_sums
        .iter()
        .map(|s| {
            (0..channels)
                .map(|c| {
                    (
                        2.0 * s.overlap[c] + DICE_SMOOTH,
                        s.predicted[c] + s.target[c] + DICE_SMOOTH,
                    )
                })
                .collect()
        })
        .collect();
    let dice_sum: f64 = ratio
        .iter()
        .map(|r| {
            (0..channels)
                .filter(|&c| in_dice(c))
                .map(|c| r[c].0 / r[c].1)
                .sum::<f64>()
        })
        .sum();
    let dice = 1.0 - dice_sum / (batch as f64 * dice_channels);
    let loss = (1.0 - DICE_WEIGHT) * voxel_term + DICE_WEIGHT * dice;
    if !spec.gradient {
        return HostLoss {
            loss,
            gradients: None,
        };
    }

    // Pass 2: ∂loss/∂z per voxel and channel.
    let voxel_weight = ((1.0 - DICE_WEIGHT) / voxel_divisor) as f32;
    let dice_weight = (DICE_WEIGHT / (batch as f64 * dice_channels)) as f32;
    // ∂ratio/∂p = 2t/den − num/den² = t · two_over_den − num_over_den2 (0 outside the Dice term).
    let dice_terms: Vec<Vec<(f32, f32)>> = ratio
        .iter()
        .map(|r| {
            (0..channels)
                .map(|c| match in_dice(c) {
                    true => ((2.0 / r[c].1) as f32, (r[c].0 / (r[c].1 * r[c].1)) as f32),
                    false => (0.0, 0.0),
                })
                .collect()
        })
        .collect();
    let mut gradients: Vec<Vec<f32>> = (0..channels).map(|_| vec![0.0_f32; len]).collect();
    let mut per_task: Vec<Vec<&mut [f32]>> = ranges.iter().map(|_| Vec::with_capacity(channels)).collect();
    for gradient in gradients.iter_mut() {
        for (task, piece) in per_task.iter_mut().zip(split_ranges(gradient, &ranges)) {
            task.push(piece);
        }
    }
    per_task
        .into_par_iter()
        .zip(ranges.par_iter())
        .for_each(|(mut out, (sample, range))| {
            let terms = &dice_terms[*sample];
            let mut block = Block::new(channels);
            let mut a = vec![[0.0_f32; BLOCK]; channels];
            for start in range.clone().step_by(BLOCK) {
                let n = BLOCK.min(range.end - start);
                let offset = start - range.start;
                block.fill(logits, targets, start, n, softmax);
                // a_c = ∂ratio_c/∂p_c per voxel (0 for a channel outside the Dice term).
                for ((a, t), &(two_over_den, num_over_den2)) in a.iter_mut().zip(targets).zip(terms) {
                    for (a, &t) in a[..n].iter_mut().zip(&t[start..start + n]) {
                        *a = t * two_over_den - num_over_den2;
                    }
                }
                if softmax {
                    let (mut target_sum, mut weighted) = ([0.0_f32; BLOCK], [0.0_f32; BLOCK]);
                    for ((a, p), t) in a.iter().zip(&block.p).zip(targets) {
                        let per_voxel = target_sum[..n].iter_mut().zip(weighted[..n].iter_mut());
                        for ((s, w), ((&a, &p), &t)) in
                            per_voxel.zip(a[..n].iter().zip(&p[..n]).zip(&t[start..start + n]))
                        {
                            *s += t;
                            *w += a * p;
                        }
                    }
                    for (((out, a), p), t) in out.iter_mut().zip(&a).zip(&block.p).zip(targets) {
                        let values = a[..n].iter().zip(&p[..n]).zip(&t[start..start + n]);
                        let sums = target_sum[..n].iter().zip(&weighted[..n]);
                        for ((g, ((&a, &p), &t)), (&s, &w)) in
                            out[offset..offset + n].iter_mut().zip(values).zip(sums)
                        {
                            *g = voxel_weight * (p * s - t) - dice_weight * p * (a - w);
                        }
                    }
                } else {
                    for (((out, a), p), t) in out.iter_mut().zip(&a).zip(&block.p).zip(targets) {
                        let values = a[..n].iter().zip(&p[..n]).zip(&t[start..start + n]);
                        for (g, ((&a, &p), &t)) in out[offset..offset + n].iter_mut().zip(values) {
                            *g = voxel_weight * (p - t) - dice_weight * a * p * (1.0 - p);
                        }
                    }
                }
            }
        });
    HostLoss {
        loss,
        gradients: Some(gradients),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The loss written out in f64, voxel by voxel, as the docs of
    /// `train::segmentation_loss_tokens_with` define it.
    fn reference(logits: &[Vec<f32>], targets: &[Vec<f32>], batch: usize, spec: LossSpec) -> f64 {
        let channels = logits.len();
        let len = logits[0].len();
        let per_sample = len / batch;
        let softmax = spec.output == OutputKind::Softmax;
        let mut voxel = 0.0;
        let mut dice_sum = 0.0;
        let skip = spec.skips_background(channels);
        for b in 0..batch {
            let (mut i_pt, mut s_p, mut s_t) =
                (vec![0.0; channels], vec![0.0; channels], vec![0.0; channels]);
            for i in b * per_sample..(b + 1) * per_sample {
                let z: Vec<f64> = (0..channels).map(|c| f64::from(logits[c][i])).collect();
                let t: Vec<f64> = (0..channels).map(|c| f64::from(targets[c][i])).collect();
                let p: Vec<f64> = if softmax {
                    let sum: f64 = z.iter().map(|z| z.exp()).sum();
                    voxel += (0..channels)
                        .map(|c| -t[c] * (z[c].exp() / sum).ln())
                        .sum::<f64>();
                    z.iter().map(|z| z.exp() / sum).collect()
                } else {
                    let p: Vec<f64> = z.iter().map(|z| 1.0 / (1.0 + (-z).exp())).collect();
                    voxel += (0..channels)
                        .map(|c| -(t[c] * p[c].ln() + (1.0 - t[c]) * (1.0 - p[c]).ln()))
                        .sum::<f64>();
                    p
                };
                for c in 0..channels {
                    i_pt[c] += p[c] * t[c];
                    s_p[c] += p[c];
                    s_t[c] += t[c];
                }
            }
            for c in (0..channels).filter(|&c| c > 0 || !skip) {
                dice_sum += (2.0 * i_pt[c] + DICE_SMOOTH) / (s_p[c] + s_t[c] + DICE_SMOOTH);
            }
        }
        let dice_channels = (if skip { channels - 1 } else { channels }) as f64;
        let voxel = voxel
            / if softmax {
                len as f64
            } else {
                (len * channels) as f64
            };
        (1.0 - DICE_WEIGHT) * voxel + DICE_WEIGHT * (1.0 - dice_sum / (batch as f64 * dice_channels))
    }

    /// Deterministic values in [lo, hi).
    fn values(n: usize, lo: f32, hi: f32, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                lo + (hi - lo) * ((state >> 40) as f32 / (1u64 << 24) as f32)
            })
            .collect()
    }

    /// Logits in [−4, 4) and one-hot (softmax) or independent 0/1 (sigmoid) targets.
    fn case(channels: usize, len: usize, output: OutputKind) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
        let logits: Vec<Vec<f32>> = (0..channels)
            .map(|c| values(len, -4.0, 4.0, c as u64 + 1))
            .collect();
        let draw = values(len * channels, 0.0, 1.0, 99);
        let targets = (0..channels)
            .map(|c| {
                (0..len)
                    .map(|i| match output {
                        OutputKind::Softmax => f32::from((draw[i] * channels as f32) as usize == c),
                        OutputKind::Sigmoid => f32::from(draw[c * len + i] < 0.3),
                    })
                    .collect()
            })
            .collect();
        (logits, targets)
    }

    fn run(logits: &[Vec<f32>], targets: &[Vec<f32>], batch: usize, spec: LossSpec) -> HostLoss {
        let l: Vec<&[f32]> = logits.iter().map(|v| v.as_slice()).collect();
        let t: Vec<&[f32]> = targets.iter().map(|v| v.as_slice()).collect();
        segmentation_loss(&l, &t, batch, spec)
    }

    /// Every output kind and background choice, samples longer than one task (40 000 voxels):
    /// the value within 1e-5 of the f64 reference, and the gradient within 2 % of its central
    /// differences (step 1e-2 on the f64 reference) at a spread of voxels.
    #[test]
    fn value_and_gradient_agree_with_the_f64_loss_and_its_finite_differences() {
        let (batch, len) = (2, 2 * 40_000);
        for (output, channels, dice_background) in [
            (OutputKind::Softmax, 3, false),
            (OutputKind::Softmax, 3, true),
            (OutputKind::Sigmoid, 2, true),
            (OutputKind::Sigmoid, 1, true),
        ] {
            let spec = LossSpec {
                output,
                dice_background,
                gradient: true,
            };
            let (logits, targets) = case(channels, len, output);
            let got = run(&logits, &targets, batch, spec);
            let want = reference(&logits, &targets, batch, spec);
            assert!(
                (got.loss - want).abs() < 1e-5,
                "{output:?} {dice_background}: {} vs {want}",
                got.loss
            );
            let gradients = got.gradients.expect("asked for");
            // The gradient at one voxel is O(1/len): scale the finite difference by len so the
            // comparison is of O(1) numbers.
            let h = 1e-2;
            for c in 0..channels {
                for i in [0, 17, 39_999, 40_000, 65_537, len - 1] {
                    let mut plus = logits.clone();
                    plus[c][i] += h as f32;
                    let mut minus = logits.clone();
                    minus[c][i] -= h as f32;
                    let numeric = (reference(&plus, &targets, batch, spec)
                        - reference(&minus, &targets, batch, spec))
                        / (2.0 * h);
                    let analytic = f64::from(gradients[c][i]);
                    assert!(
                        (analytic - numeric).abs() * len as f64 <= 0.02 * (numeric.abs() * len as f64) + 1e-3,
                        "{output:?} {dice_background} channel {c} voxel {i}: {analytic} vs {numeric}"
                    );
                }
            }
        }
    }

    #[test]
    fn without_the_gradient_only_the_value_comes_back() {
        let (logits, targets) = case(2, 64, OutputKind::Softmax);
        let spec = LossSpec {
            output: OutputKind::Softmax,
            dice_background: true,
            gradient: false,
        };
        let got = run(&logits, &targets, 1, spec);
        assert!(got.gradients.is_none());
        assert!((got.loss - reference(&logits, &targets, 1, spec)).abs() < 1e-5);
    }
}
