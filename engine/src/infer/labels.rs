//! The one conversion of model outputs into labels, used by training validation (on logits in
//! token order) and by prediction (on probabilities in the scan's grid).
//!
//! - Sigmoid, one channel: label 1 (merged foreground) where the probability exceeds 0.5.
//! - Sigmoid, several channels (channel c is label c + 1): the most probable channel above 0.5,
//!   background where none is.
//! - Softmax: the most probable class (the lowest on a tie).

use crate::metrics::LabelScheme;
use crate::model::{ModelConfig, OutputKind};

/// Whether the values are logits or probabilities (the sigmoid threshold 0.5 is logit 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputScale {
    /// Pre-activation values.
    Logits,
    /// After sigmoid or softmax.
    Probabilities,
}

impl OutputScale {
    fn sigmoid_threshold(self) -> f32 {
        match self {
            OutputScale::Logits => 0.0,
            OutputScale::Probabilities => 0.5,
        }
    }
}

/// The label of every voxel from per-channel values (`channels[c][i]`, all the same length).
pub fn decode_labels(channels: &[&[f32]], output: OutputKind, scale: OutputScale) -> Vec<u32> {
    let len = channels.first().map_or(0, |c| c.len());
    let threshold = scale.sigmoid_threshold();
    (0..len)
        .map(|i| {
            let mut best: Option<(usize, f32)> = None;
            for (c, values) in channels.iter().enumerate() {
                let value = values[i];
                if best.is_none_or(|(_, b)| value > b) {
                    best = Some((c, value));
                }
            }
            match (output, best) {
                (_, None) => 0,
                (OutputKind::Softmax, Some((c, _))) => c as u32,
                (OutputKind::Sigmoid, Some((c, value))) if value > threshold => c as u32 + 1,
                (OutputKind::Sigmoid, Some(_)) => 0,
            }
        })
        .collect()
}

/// The labels a model's predictions hold.
pub fn label_scheme(config: &ModelConfig) -> LabelScheme {
    match (config.output, config.out_channels) {
        (OutputKind::Sigmoid, 1) => LabelScheme::MergedForeground,
        (OutputKind::Sigmoid, channels) => LabelScheme::first_classes(channels),
        (OutputKind::Softmax, channels) => LabelScheme::first_classes(channels.saturating_sub(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sigmoid(x: f32) -> f32 {
        1.0 / (1.0 + (-x).exp())
    }

    #[test]
    fn each_output_kind_decodes_by_its_rule() {
        // One sigmoid channel: p > 0.5.
        let single = [0.2f32, 0.5, 0.51, 0.9];
        assert_eq!(
            decode_labels(&[&single], OutputKind::Sigmoid, OutputScale::Probabilities),
            vec![0, 0, 1, 1]
        );
        // Two sigmoid channels: the larger above 0.5 wins; none above → background.
        let (a, b) = ([0.9f32, 0.6, 0.1, 0.4], [0.2f32, 0.7, 0.8, 0.45]);
        assert_eq!(
            decode_labels(&[&a, &b], OutputKind::Sigmoid, OutputScale::Probabilities),
            vec![1, 2, 2, 0]
        );
        // Softmax: argmax, the lowest class on a tie.
        let (c0, c1, c2) = ([0.5f32, 0.1, 0.3], [0.2f32, 0.1, 0.3], [0.3f32, 0.8, 0.4]);
        assert_eq!(
            decode_labels(&[&c0, &c1, &c2], OutputKind::Softmax, OutputScale::Probabilities),
            vec![0, 2, 2]
        );
        let (t0, t1) = ([0.5f32], [0.5f32]);
        assert_eq!(
            decode_labels(&[&t0, &t1], OutputKind::Softmax, OutputScale::Probabilities),
            vec![0]
        );
    }

    #[test]
    fn logits_and_probabilities_decode_alike() {
        let logits: Vec<Vec<f32>> = vec![vec![-3.0, 0.4, 2.0, -0.1], vec![1.0, 0.3, -2.0, -0.2]];
        let probabilities: Vec<Vec<f32>> = logits
            .iter()
            .map(|c| c.iter().map(|x| sigmoid(*x)).collect())
            .collect();
        let as_slices = |v: &[Vec<f32>]| v.iter().map(|c| c.to_vec()).collect::<Vec<_>>();
        let (l, p) = (as_slices(&logits), as_slices(&probabilities));
        let l: Vec<&[f32]> = l.iter().map(Vec::as_slice).collect();
        let p: Vec<&[f32]> = p.iter().map(Vec::as_slice).collect();
        assert_eq!(
            decode_labels(&l, OutputKind::Sigmoid, OutputScale::Logits),
            decode_labels(&p, OutputKind::Sigmoid, OutputScale::Probabilities)
        );
        assert_eq!(
            decode_labels(&l, OutputKind::Sigmoid, OutputScale::Logits),
            vec![2, 1, 1, 0]
        );
    }
}
