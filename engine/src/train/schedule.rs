//! The learning-rate schedule: a linear warm-up from 0, then a cosine decay to a floor
//! (Loshchilov & Hutter 2017, "SGDR"; the usual ViT recipe), or a constant rate after the warm-up.
//! Computed from the global step alone, so a resumed run continues on the same curve.

use serde::{Deserialize, Serialize};

/// What the learning rate does after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// Stays at the base rate (the official code).
    Constant,
    /// Half a cosine from the base rate down to `MIN_LR_FRACTION` of it at the last step.
    Cosine,
}

/// The cosine schedule ends at this fraction of the base rate rather than at 0, so the last
/// steps still move.
pub const MIN_LR_FRACTION: f64 = 0.02;

/// The learning rate of step `step` (0-based) of `total_steps`, with `warmup_steps` of linear
/// warm-up (step 0 gets `base / warmup_steps`, never 0).
pub fn learning_rate(
    schedule: Schedule,
    base: f64,
    step: usize,
    total_steps: usize,
    warmup_steps: usize,
) -> f64 {
    if step < warmup_steps {
        return base * (step + 1) as f64 / warmup_steps as f64;
    }
    match schedule {
        Schedule::Constant => base,
        Schedule::Cosine => {
            let decay_steps = total_steps.saturating_sub(warmup_steps).max(1);
            let progress = ((step - warmup_steps) as f64 / decay_steps as f64).min(1.0);
            let floor = base * MIN_LR_FRACTION;
            floor + (base - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warm_up_is_linear_then_cosine_reaches_the_floor() {
        let base = 2e-3;
        // Warm-up of 4 steps: base/4, base/2, 3base/4, base.
        for step in 0..4 {
            let want = base * (step + 1) as f64 / 4.0;
            assert!((learning_rate(Schedule::Cosine, base, step, 104, 4) - want).abs() < 1e-15);
        }
        // Right after the warm-up the cosine starts at the base rate.
        assert!((learning_rate(Schedule::Cosine, base, 4, 104, 4) - base).abs() < 1e-15);
        // Half-way through the decay: cos(π/2) = 0, so the middle of base and the floor.
        let floor = base * MIN_LR_FRACTION;
        let middle = learning_rate(Schedule::Cosine, base, 54, 104, 4);
        assert!((middle - (base + floor) / 2.0).abs() < 1e-12, "{middle}");
        // The end (and beyond, after a rollback adds steps) stays at the floor.
        assert!((learning_rate(Schedule::Cosine, base, 104, 104, 4) - floor).abs() < 1e-15);
        assert!((learning_rate(Schedule::Cosine, base, 500, 104, 4) - floor).abs() < 1e-15);
        assert_eq!(learning_rate(Schedule::Constant, base, 50, 104, 4), base);
    }

    #[test]
    fn no_warm_up_starts_at_the_base_rate() {
        assert_eq!(learning_rate(Schedule::Cosine, 1.0, 0, 10, 0), 1.0);
        assert_eq!(learning_rate(Schedule::Constant, 1.0, 0, 10, 0), 1.0);
    }
}
