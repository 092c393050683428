//! Which cases a run trains and validates on: a fold of splits.json, a few-shot part of it, or
//! exactly the cases a user names (e.g. the ones whose labels they corrected).

use super::TrainError;
use crate::data::Splits;
use crate::rng::Rng;
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

/// Selects the cases of `fold`. Few-shot subsets are drawn from the fold's training cases and
/// validate on the fold's validation cases. `Subset::Ids` trains on exactly those cases, which
/// may be any of `task_training_ids`; it validates on the fold's validation cases it does not
/// train on, or, when none is left, on up to as many of the fold's other training cases.
pub(crate) fn select_cases(
    splits: &Splits,
    fold: usize,
    subset: &Subset,
    seed: u64,
    task_training_ids: &[String],
) -> Result<Selection, TrainError> {
    let fold_entry = splits.folds.get(fold).ok_or_else(|| {
        invalid(format!(
            "fold {fold} asked for; splits.json has {} folds",
            splits.folds.len()
        ))
    })?;
    let mut order = fold_entry.train.clone();
    Rng::new(seed ^ (0x5EED_0000 + fold as u64)).shuffle(&mut order);
    let train = match subset {
        Subset::All => fold_entry.train.clone(),
        Subset::Fraction(f) if *f > 0.0 && *f <= 1.0 => {
            order[..((f * order.len() as f64).ceil() as usize).clamp(1, order.len())].to_vec()
        }
        Subset::Fraction(f) => return Err(invalid(format!("fraction {f} must be in (0, 1]"))),
        Subset::Cases(n) => order[..(*n).clamp(1, order.len())].to_vec(),
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
        select_cases(&splits(), 0, &subset, 0, &ids(&TASK))
    }

    #[test]
    fn named_cases_train_and_the_rest_of_the_fold_validates() {
        let chosen = select(Subset::Ids(ids(&["b", "w", "t", "b"]))).expect("valid");
        assert_eq!(
            chosen.train,
            ids(&["b", "w", "t"]),
            "any training case, once each"
        );
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
}
