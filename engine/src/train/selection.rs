//! Which cases a run trains and validates on: a fold of splits.json, a few-shot part of it, or
//! exactly the cases a user names (e.g. the ones whose labels they corrected).

use super::TrainError;
use crate::data::{FewShotSize, Splits, few_shot_subset};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Which training cases of the fold are used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Subset {
    /// All of the fold's training cases.
    All,
    /// A fraction (few-shot), nested as in splits.json.
    Fraction(f64),
    /// A number of cases (few-shot).
    Cases(usize),
    /// Exactly these cases, which may be any training cases of the task (e.g. the ones whose
    /// labels a user corrected); validation is the fold's validation cases not among them.
    Ids(Vec<String>),
}

/// Training and validation case ids of a run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selection {
    /// Cases trained on.
    pub train: Vec<String>,
    /// Cases validated on (model selection).
    pub val: Vec<String>,
}

fn invalid(message: impl Into<String>) -> TrainError {
    TrainError::Invalid(message.into())
}

/// Selects the cases of `fold`. Few-shot subsets are the ones splits.json records for the fold
/// (or, for a size it does not list, drawn as it would draw them, with the split seed) and
/// validate on the fold's validation cases. `Subset::Ids` trains on exactly those cases, which
/// may be any of `task_training_ids` except the held-out test cases (unless `allow_test_cases`:
/// then the run records them and its test reports leave them out); it validates on the fold's
/// validation cases it does not train on, or, when none is left, on up to as many of the fold's
/// other training cases.
pub(crate) fn select_cases(
    splits: &Splits,
    fold: usize,
    subset: &Subset,
    allow_test_cases: bool,
    task_training_ids: &[String],
) -> Result<Selection, TrainError> {
    let fold_entry = splits.folds.get(fold).ok_or_else(|| {
        invalid(format!(
            "fold {fold} asked for; splits.json has {} folds",
            splits.folds.len()
        ))
    })?;
    let few_shot = |size: FewShotSize| {
        let name = size.name();
        splits
            .few_shot
            .iter()
            .find(|s| s.fold == fold && s.name == name)
            .cloned()
            .unwrap_or_else(|| few_shot_subset(fold_entry, fold, splits.seed, size))
            .train
    };
    let train = match subset {
        Subset::All => fold_entry.train.clone(),
        Subset::Fraction(f) if *f > 0.0 && *f <= 1.0 => few_shot(FewShotSize::Fraction(*f)),
        Subset::Fraction(f) => return Err(invalid(format!("fraction {f} must be in (0, 1]"))),
        Subset::Cases(n) => few_shot(FewShotSize::Cases(*n)),
        Subset::Ids(ids) => {
            let known: BTreeSet<&str> = task_training_ids.iter().map(String::as_str).collect();
            let unknown: Vec<&str> = ids
                .iter()
                .map(String::as_str)
                .filter(|id| !known.contains(id))
                .collect();
            if !unknown.is_empty() {
                return Err(invalid(format!(
                    "cases {unknown:?} are not training cases of the task (dataset.json \"training\"); pick training cases"
                )));
            }
            let held_out: Vec<&str> = ids
                .iter()
                .map(String::as_str)
                .filter(|id| splits.test.iter().any(|t| t == id))
                .collect();
            if !held_out.is_empty() && !allow_test_cases {
                return Err(invalid(format!(
                    "cases {held_out:?} belong to the held-out test set (splits.json \"test\"); training on them would leak into every test number. Leave them out, or pass --allow-test-cases to train on them anyway (test reports then leave them out)"
                )));
            }
            let mut seen = BTreeSet::new();
            ids.iter()
                .filter(|id| seen.insert(id.as_str()))
                .cloned()
                .collect()
        }
    };
    if train.is_empty() {
        return Err(invalid("no training cases selected"));
    }
    let val = match subset {
        Subset::Ids(_) => {
            let training: BTreeSet<&str> = train.iter().map(String::as_str).collect();
            let not_trained = |id: &&String| !training.contains(id.as_str());
            let val: Vec<String> = fold_entry.val.iter().filter(not_trained).cloned().collect();
            let val = if val.is_empty() {
                fold_entry
                    .train
                    .iter()
                    .filter(not_trained)
                    .take(fold_entry.val.len())
                    .cloned()
                    .collect()
            } else {
                val
            };
            if val.is_empty() {
                return Err(invalid(format!(
                    "no case of fold {fold} is left to validate on: all {} selected case(s) are the fold's cases; leave at least one case out",
                    train.len()
                )));
            }
            val
        }
        _ => fold_entry.val.clone(),
    };
    Ok(Selection { train, val })
}

/// The test cases a report may use: the held-out ones minus any the run trained on.
pub(crate) fn untouched_test_cases(test: &[String], trained: &[String]) -> (Vec<String>, Vec<String>) {
    test.iter().cloned().partition(|id| !trained.contains(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Fold;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn splits() -> Splits {
        Splits {
            seed: 0,
            test_fraction: 0.2,
            test: ids(&["t"]),
            folds: vec![Fold {
                train: ids(&["a", "b", "c", "d"]),
                val: ids(&["v", "w"]),
            }],
            few_shot: Vec::new(),
        }
    }

    const TASK: [&str; 7] = ["a", "b", "c", "d", "v", "w", "t"];

    fn select(subset: Subset) -> Result<Selection, TrainError> {
        select_cases(&splits(), 0, &subset, false, &ids(&TASK))
    }

    #[test]
    fn named_cases_train_and_the_rest_of_the_fold_validates() {
        let chosen = select(Subset::Ids(ids(&["b", "w", "b"]))).expect("valid");
        assert_eq!(chosen.train, ids(&["b", "w"]), "any training case, once each");
        assert_eq!(chosen.val, ids(&["v"]), "the fold's val minus the chosen");
        let all_val = select(Subset::Ids(ids(&["v", "w", "a"]))).expect("valid");
        assert_eq!(
            all_val.val,
            ids(&["b", "c"]),
            "no val case left: the fold's other training cases, as many as it has val cases"
        );
        let everything = select(Subset::Ids(ids(&["a", "b", "c", "d", "v", "w"])));
        assert!(
            everything
                .expect_err("nothing left")
                .to_string()
                .contains("validate")
        );
    }

    #[test]
    fn unknown_named_cases_are_refused_by_name() {
        let message = select(Subset::Ids(ids(&["a", "nope", "also_nope"])))
            .expect_err("unknown")
            .to_string();
        assert!(
            message.contains("nope") && message.contains("also_nope"),
            "{message}"
        );
        assert!(!message.contains("\"a\""), "{message}");
        assert!(select(Subset::Ids(Vec::new())).is_err());
    }

    #[test]
    fn other_subsets_keep_the_fold_validation() {
        let all = select(Subset::All).expect("valid");
        assert_eq!(
            all,
            Selection {
                train: ids(&["a", "b", "c", "d"]),
                val: ids(&["v", "w"])
            }
        );
        let few = select(Subset::Cases(2)).expect("valid");
        assert_eq!(few.train.len(), 2);
        assert!(few.train.iter().all(|id| all.train.contains(id)));
        assert_eq!(few.val, all.val);
        assert!(select(Subset::Fraction(0.0)).is_err());
    }

    #[test]
    fn held_out_test_cases_are_refused_unless_allowed() {
        let message = select(Subset::Ids(ids(&["a", "t"])))
            .expect_err("t is a test case")
            .to_string();
        assert!(
            message.contains("\"t\"") && message.contains("--allow-test-cases"),
            "{message}"
        );
        let allowed = select_cases(&splits(), 0, &Subset::Ids(ids(&["a", "t"])), true, &ids(&TASK))
            .expect("allowed explicitly");
        assert_eq!(allowed.train, ids(&["a", "t"]));
        let (kept, excluded) = untouched_test_cases(&ids(&["t", "u"]), &allowed.train);
        assert_eq!((kept, excluded), (ids(&["u"]), ids(&["t"])));
    }

    #[test]
    fn few_shot_subsets_are_the_ones_splits_json_records() {
        // A recorded subset that no seed would draw in this order: it is used as it is.
        let mut recorded = splits();
        recorded.few_shot.push(crate::data::FewShotSubset {
            fold: 0,
            name: "50%".into(),
            train: ids(&["d", "a"]),
        });
        recorded.few_shot.push(crate::data::FewShotSubset {
            fold: 0,
            name: "1 cases".into(),
            train: ids(&["c"]),
        });
        let half = select_cases(&recorded, 0, &Subset::Fraction(0.5), false, &ids(&TASK)).expect("valid");
        assert_eq!(half.train, ids(&["d", "a"]));
        let one = select_cases(&recorded, 0, &Subset::Cases(1), false, &ids(&TASK)).expect("valid");
        assert_eq!(one.train, ids(&["c"]));
        // Not recorded: drawn with the split seed, as make_splits draws it (not the training seed).
        let mut reseeded = splits();
        reseeded.seed = 99;
        let drawn = select_cases(&reseeded, 0, &Subset::Cases(3), false, &ids(&TASK)).expect("valid");
        let made = crate::data::make_splits(
            &ids(&["a", "b", "c", "d", "v", "w"]),
            &crate::data::SplitOptions {
                folds: 2,
                test_fraction: 0.0,
                seed: 99,
                few_shot_fractions: Vec::new(),
                few_shot_counts: vec![3],
            },
        )
        .expect("splits");
        let fold = &made.folds[0];
        let expected = &made.few_shot[0].train;
        let from_selection = select_cases(
            &Splits {
                few_shot: Vec::new(),
                ..made.clone()
            },
            0,
            &Subset::Cases(3),
            false,
            &ids(&["a", "b", "c", "d", "v", "w"]),
        )
        .expect("valid");
        assert_eq!(&from_selection.train, expected, "fold {:?}", fold.train);
        assert_eq!(drawn.train.len(), 3);
    }
}
