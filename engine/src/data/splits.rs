//! Seeded splits: a held-out test set, k folds over the rest, and nested few-shot subsets of each
//! fold's training cases, written to `splits.json`.

use super::{DataError, write_json_atomically};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// File name of the splits beside a task.
pub const SPLITS_FILE: &str = "splits.json";

/// How to split.
#[derive(Debug, Clone)]
pub struct SplitOptions {
    /// Number of cross-validation folds.
    pub folds: usize,
    /// Fraction of cases held out as the test set before folding (paper: 0.1).
    pub test_fraction: f64,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Few-shot subsets as fractions of each fold's training cases (e.g. 0.1, 0.3).
    pub few_shot_fractions: Vec<f64>,
    /// Few-shot subsets of a fixed number of cases.
    pub few_shot_counts: Vec<usize>,
}

impl Default for SplitOptions {
    fn default() -> Self {
        Self {
            folds: 5,
            test_fraction: 0.1,
            seed: 0,
            few_shot_fractions: vec![0.1, 0.3],
            few_shot_counts: Vec::new(),
        }
    }
}

/// One cross-validation fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fold {
    /// Training case ids.
    pub train: Vec<String>,
    /// Validation case ids.
    pub val: Vec<String>,
}

/// A few-shot training subset of one fold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FewShotSubset {
    /// The fold it is drawn from.
    pub fold: usize,
    /// "10%" or "5 cases".
    pub name: String,
    /// Its training case ids (validation stays the fold's).
    pub train: Vec<String>,
}

/// How large a few-shot subset is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FewShotSize {
    /// A fraction of the fold's training cases, rounded up (at least one case).
    Fraction(f64),
    /// A number of cases (at most the fold's training cases).
    Cases(usize),
}

impl FewShotSize {
    /// The subset's name in splits.json: "10%" or "5 cases".
    pub fn name(&self) -> String {
        match self {
            FewShotSize::Fraction(f) => format!("{}%", (f * 100.0).round()),
            FewShotSize::Cases(n) => format!("{n} cases"),
        }
    }
}

/// The few-shot subset of `fold` (number `fold_index`) drawn with the split seed: a prefix of
/// one fixed order per fold, so smaller subsets are nested in larger ones.
pub fn few_shot_subset(fold: &Fold, fold_index: usize, split_seed: u64, size: FewShotSize) -> FewShotSubset {
    let mut order = fold.train.clone();
    Rng::new(split_seed ^ (0x5EED_0000 + fold_index as u64)).shuffle(&mut order);
    let count = match size {
        FewShotSize::Fraction(f) => (f * order.len() as f64).ceil() as usize,
        FewShotSize::Cases(n) => n,
    }
    .clamp(1, order.len().max(1));
    FewShotSubset {
        fold: fold_index,
        name: size.name(),
        train: order.into_iter().take(count).collect(),
    }
}

/// The content of `splits.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Splits {
    /// Shuffle seed.
    pub seed: u64,
    /// Held-out fraction requested.
    pub test_fraction: f64,
    /// Held-out test case ids (never used for training or model selection).
    pub test: Vec<String>,
    /// Cross-validation folds over the remaining cases.
    pub folds: Vec<Fold>,
    /// Nested few-shot subsets: for each fold, smaller fractions are subsets of larger ones.
    pub few_shot: Vec<FewShotSubset>,
}

impl Splits {
    /// Writes `splits.json` atomically.
    pub fn save(&self, path: &Path) -> Result<(), DataError> {
        write_json_atomically(path, self)
    }

    /// Reads `splits.json`.
    pub fn load(path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io("cannot read", path, e))?;
        Self::parse(&text, path)
    }

    /// Parses the text of a `splits.json` (`path` only names it in messages).
    pub fn parse(text: &str, path: &Path) -> Result<Self, DataError> {
        serde_json::from_str(text).map_err(|e| DataError::BadFile {
            path: path.to_path_buf(),
            reason: format!("not a splits file ({e}); make one with `mvl splits`"),
        })
    }
}

/// Splits case ids: sorted, shuffled with the seed, the first `round(test_fraction · n)` held out,
/// the rest dealt round-robin into folds (sizes differ by at most one).
pub fn make_splits(case_ids: &[String], options: &SplitOptions) -> Result<Splits, DataError> {
    if !(0.0..1.0).contains(&options.test_fraction) {
        return Err(DataError::Splits(format!(
            "test fraction {} must be in [0, 1)",
            options.test_fraction
        )));
    }
    let mut ids: Vec<String> = case_ids.to_vec();
    ids.sort();
    ids.dedup();
    let test_count = (options.test_fraction * ids.len() as f64).round() as usize;
    let remaining = ids.len() - test_count;
    if options.folds < 2 || options.folds > remaining {
        return Err(DataError::Splits(format!(
            "{} folds need at least 2 folds and one case per fold, but {remaining} cases remain after holding out {test_count} for testing",
            options.folds
        )));
    }
    for f in &options.few_shot_fractions {
        if !(*f > 0.0 && *f <= 1.0) {
            return Err(DataError::Splits(format!(
                "few-shot fraction {f} must be in (0, 1]"
            )));
        }
    }
    let mut rng = Rng::new(options.seed);
    rng.shuffle(&mut ids);
    let test: Vec<String> = ids[..test_count].to_vec();
    let pool = &ids[test_count..];
    let mut folds = Vec::with_capacity(options.folds);
    for k in 0..options.folds {
        let mut train = Vec::new();
        let mut val = Vec::new();
        for (i, id) in pool.iter().enumerate() {
            if i % options.folds == k {
                val.push(id.clone())
            } else {
                train.push(id.clone())
            }
        }
        folds.push(Fold { train, val });
    }
    let mut few_shot = Vec::new();
    for (k, fold) in folds.iter().enumerate() {
        for fraction in &options.few_shot_fractions {
            few_shot.push(few_shot_subset(
                fold,
                k,
                options.seed,
                FewShotSize::Fraction(*fraction),
            ));
        }
        for count in &options.few_shot_counts {
            few_shot.push(few_shot_subset(fold, k, options.seed, FewShotSize::Cases(*count)));
        }
    }
    Ok(Splits {
        seed: options.seed,
        test_fraction: options.test_fraction,
        test,
        folds,
        few_shot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("case_{i:02}")).collect()
    }

    #[test]
    fn folds_partition_the_non_test_cases_and_test_is_disjoint() {
        let splits = make_splits(&ids(43), &SplitOptions::default()).expect("splits");
        assert_eq!(splits.test.len(), 4); // round(4.3)
        let test: BTreeSet<_> = splits.test.iter().cloned().collect();
        let mut all_val = BTreeSet::new();
        for fold in &splits.folds {
            assert_eq!(fold.train.len() + fold.val.len(), 39);
            assert!(fold.val.len() == 7 || fold.val.len() == 8);
            for id in &fold.val {
                assert!(all_val.insert(id.clone()), "{id} validated twice");
                assert!(!fold.train.contains(id));
            }
            assert!(fold.train.iter().all(|id| !test.contains(id)));
        }
        assert_eq!(all_val.len(), 39);
        assert!(all_val.is_disjoint(&test));
    }

    #[test]
    fn seeded_and_nested() {
        let options = SplitOptions {
            few_shot_counts: vec![3],
            ..SplitOptions::default()
        };
        let a = make_splits(&ids(30), &options).expect("a");
        let b = make_splits(&ids(30).into_iter().rev().collect::<Vec<_>>(), &options).expect("b");
        assert_eq!(a, b, "order of input ids does not matter");
        let c = make_splits(
            &ids(30),
            &SplitOptions {
                seed: 1,
                ..options.clone()
            },
        )
        .expect("c");
        assert_ne!(a.test, c.test);
        let fold0: Vec<_> = a.few_shot.iter().filter(|s| s.fold == 0).collect();
        assert_eq!(fold0[0].name, "10%");
        assert_eq!(fold0[0].train.len(), 3); // ceil(0.1 · 21)
        assert_eq!(fold0[1].train.len(), 7); // ceil(0.3 · 21)
        assert!(fold0[0].train.iter().all(|id| fold0[1].train.contains(id)));
        assert!(fold0[1].train.iter().all(|id| a.folds[0].train.contains(id)));
        assert_eq!(fold0[2].name, "3 cases");
    }

    #[test]
    fn impossible_settings_are_refused() {
        assert!(make_splits(&ids(4), &SplitOptions::default()).is_err());
        assert!(
            make_splits(
                &ids(40),
                &SplitOptions {
                    test_fraction: 1.0,
                    ..SplitOptions::default()
                }
            )
            .is_err()
        );
        assert!(
            make_splits(
                &ids(40),
                &SplitOptions {
                    folds: 1,
                    ..SplitOptions::default()
                }
            )
            .is_err()
        );
    }
}
