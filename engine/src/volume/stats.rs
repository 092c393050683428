//! Intensity statistics computed in one pass over chunks of voxels, so that `mvl info` can
//! summarise a file while streaming it and never holds the volume.

/// Summary statistics of a volume's intensities.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct VoxelStats {
    /// Smallest finite value (NaN when no value is finite).
    pub min: f64,
    /// Largest finite value (NaN when no value is finite).
    pub max: f64,
    /// Mean of the finite values (NaN when no value is finite).
    pub mean: f64,
    /// How many voxels are NaN or ±∞.
    pub non_finite: u64,
}

/// Running minimum, maximum, sum and counts; chunks are pushed in any order and partial
/// accumulators merge (the sum is in f64, so the order changes the mean by rounding only).
#[derive(Debug, Clone, Copy)]
pub struct StatsAccumulator {
    min: f64,
    max: f64,
    sum: f64,
    finite: u64,
    non_finite: u64,
}

impl Default for StatsAccumulator {
    fn default() -> Self {
        Self {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum: 0.0,
            finite: 0,
            non_finite: 0,
        }
    }
}

impl StatsAccumulator {
    /// Adds a chunk of voxels.
    pub fn push(&mut self, voxels: &[f32]) {
        for v in voxels {
            if v.is_finite() {
                let v = f64::from(*v);
                self.min = self.min.min(v);
                self.max = self.max.max(v);
                self.sum += v;
                self.finite += 1;
            } else {
                self.non_finite += 1;
            }
        }
    }

    /// Combines two partial accumulators.
    pub fn merge(self, other: Self) -> Self {
        Self {
            min: self.min.min(other.min),
            max: self.max.max(other.max),
            sum: self.sum + other.sum,
            finite: self.finite + other.finite,
            non_finite: self.non_finite + other.non_finite,
        }
    }

    /// The statistics of everything pushed.
    pub fn finish(&self) -> VoxelStats {
        if self.finite == 0 {
            return VoxelStats {
                min: f64::NAN,
                max: f64::NAN,
                mean: f64::NAN,
                non_finite: self.non_finite,
            };
        }
        VoxelStats {
            min: self.min,
            max: self.max,
            mean: self.sum / self.finite as f64,
            non_finite: self.non_finite,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_statistics_match_hand_computed_values() {
        let mut whole = StatsAccumulator::default();
        whole.push(&[1.0, f32::NAN, -3.0]);
        let mut other = StatsAccumulator::default();
        other.push(&[f32::INFINITY, 8.0, f32::NEG_INFINITY]);
        let stats = whole.merge(other).finish();
        // Finite values 1, −3, 8: min −3, max 8, mean 2; three non-finite.
        assert_eq!(stats.min, -3.0);
        assert_eq!(stats.max, 8.0);
        assert_eq!(stats.mean, 2.0);
        assert_eq!(stats.non_finite, 3);
    }

    #[test]
    fn all_non_finite_gives_nan_summary_and_the_count() {
        let mut acc = StatsAccumulator::default();
        acc.push(&[f32::NAN; 4]);
        let stats = acc.finish();
        assert!(stats.min.is_nan() && stats.max.is_nan() && stats.mean.is_nan());
        assert_eq!(stats.non_finite, 4);
    }
}
