//! What must match before a run continues from saved state: resuming needs the very run that
//! was saved (config, fold, cases, data), fine-tuning needs the same network. Differences are
//! listed field by field so the message says exactly what changed.

use super::{RunInfo, TrainError};
use crate::model::ModelConfig;
use serde_json::Value;

/// Model fields that may differ between a checkpoint and the run fine-tuning it: the name, the
/// dropout rate and where the LLM folder is (its weights are compared by fingerprint).
const FINE_TUNE_FREE: [&str; 3] = ["name", "dropout", "llm.checkpoint"];
/// How many differences a message lists.
const MAX_LISTED: usize = 8;

/// Every leaf that differs between `a` and `b`, as "path: a → b".
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                differences(
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                    &child,
                    out,
                );
            }
        }
        _ if a != b => out.push(format!("{path}: {} → {}", short(a), short(b))),
        _ => {}
    }
}

fn short(value: &Value) -> String {
    const MAX_CHARS: usize = 60;
    let text = value.to_string();
    if text.chars().count() > MAX_CHARS {
        format!("{}…", text.chars().take(MAX_CHARS).collect::<String>())
    } else {
        text
    }
}

fn to_value(value: &impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn listed(found: &[String]) -> String {
    let mut text = found
        .iter()
        .take(MAX_LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if found.len() > MAX_LISTED {
        text.push_str(&format!("; and {} more", found.len() - MAX_LISTED));
    }
    text
}

/// Refuses to resume (or overwrite) a run folder saved with other options.
pub(crate) fn check_same_run(
    saved: &RunInfo,
    now: &RunInfo,
    folder: &std::path::Path,
) -> Result<(), TrainError> {
    let mut found = Vec::new();
    differences(&to_value(saved), &to_value(now), "", &mut found);
    if found.is_empty() {
        return Ok(());
    }
    Err(TrainError::Invalid(format!(
        "{} holds a run with other options ({}); resume it with its own options, or train into another --out",
        folder.display(),
        listed(&found)
    )))
}

/// Refuses to fine-tune `checkpoint` as a network of another shape.
pub(crate) fn check_same_network(
    checkpoint: &ModelConfig,
    now: &ModelConfig,
    folder: &std::path::Path,
) -> Result<(), TrainError> {
    let strip = |config: &ModelConfig| {
        let mut value = to_value(config);
        for field in FINE_TUNE_FREE {
            let (parent, key) = field.rsplit_once('.').unwrap_or(("", field));
            let node = if parent.is_empty() {
                Some(&mut value)
            } else {
                value.pointer_mut(&format!("/{}", parent.replace('.', "/")))
            };
            if let Some(map) = node.and_then(Value::as_object_mut) {
                map.remove(key);
            }
        }
        value
    };
    let mut found = Vec::new();
    differences(&strip(checkpoint), &strip(now), "", &mut found);
    if found.is_empty() {
        return Ok(());
    }
    Err(TrainError::Invalid(format!(
        "{} is another network than this preset ({}); fine-tune with the preset it was trained with",
        folder.display(),
        listed(&found)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_listed_by_path() {
        let a = serde_json::json!({"fold": 0, "model": {"depth": 4, "name": "a"}, "ids": ["x"]});
        let b = serde_json::json!({"fold": 1, "model": {"depth": 6, "name": "a"}, "ids": ["x", "y"], "new": true});
        let mut found = Vec::new();
        differences(&a, &b, "", &mut found);
        assert_eq!(
            found,
            vec![
                "fold: 0 → 1".to_string(),
                "ids: [\"x\"] → [\"x\",\"y\"]".to_string(),
                "model.depth: 4 → 6".to_string(),
                "new: null → true".to_string(),
            ]
        );
    }

    #[test]
    fn fine_tuning_allows_only_the_name_dropout_and_llm_folder_to_differ() {
        let base = ModelConfig::default();
        let mut renamed = base.clone();
        renamed.name = "other".into();
        renamed.dropout = 0.3;
        renamed.llm.checkpoint = Some("/elsewhere".into());
        assert!(check_same_network(&base, &renamed, std::path::Path::new("ck")).is_ok());
        let mut deeper = base.clone();
        deeper.decoder_depth += 2;
        let message = check_same_network(&base, &deeper, std::path::Path::new("ck"))
            .expect_err("another depth")
            .to_string();
        assert!(
            message.contains("decoder_depth") && message.contains("ck"),
            "{message}"
        );
    }
}
