//! Evaluating a run on its validation or test cases, in millimetres in each scan's own geometry,
//! and comparing two runs case by case (the paper's Table 2).

use super::selection::untouched_test_cases;
use super::{RunInfo, TrainError};
use crate::checkpoint::load_checkpoint;
use crate::data::open_task;
use crate::infer::{label_scheme, predict};
use crate::metrics::{ClassMetrics, LabelScheme, mean_sd, paired_t_test, score_case, wilcoxon_signed_rank};
use crate::model::EngineBackend;
use crate::volume::read_nifti;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One case and class of an evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRow {
    /// Case id.
    pub case: String,
    /// Label value (1 = merged foreground for single-channel sigmoid models).
    pub class: u32,
    /// Both prediction and ground truth lack this class: Dice, Jaccard, HD95 and NSD are
    /// undefined and the row is left out of means.
    #[serde(default)]
    pub both_empty: bool,
    /// Dice (None when both masks are empty).
    pub dice: Option<f64>,
    /// Jaccard.
    pub jaccard: Option<f64>,
    /// Sensitivity.
    pub sensitivity: Option<f64>,
    /// Specificity.
    pub specificity: Option<f64>,
    /// HD95 in mm.
    pub hd95_mm: Option<f64>,
    /// NSD at the tolerance.
    pub nsd: Option<f64>,
}

/// `eval_<split>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// "val" or "test".
    pub split: String,
    /// NSD tolerance in mm.
    pub tolerance_mm: f64,
    /// LLM weights of the evaluated checkpoint.
    pub llm_weights: String,
    /// How predictions were scored: the merged foreground or these classes.
    #[serde(default = "default_scheme")]
    pub scheme: LabelScheme,
    /// The name of each reported label ("foreground" for the merged class).
    #[serde(default)]
    pub label_names: std::collections::BTreeMap<u32, String>,
    /// Held-out test cases the run trained on (`--allow-test-cases`), left out of this report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excluded: Vec<String>,
    /// Rows.
    pub rows: Vec<CaseRow>,
}

fn default_scheme() -> LabelScheme {
    LabelScheme::MergedForeground
}

/// The metric names, in table order.
pub const METRICS: [&str; 6] = ["dice", "jaccard", "sensitivity", "specificity", "hd95_mm", "nsd"];

impl CaseRow {
    fn from_class(case: &str, m: &ClassMetrics) -> Self {
        Self {
            case: case.into(),
            class: m.label,
            both_empty: m.both_empty,
            dice: m.dice,
            jaccard: m.jaccard,
            sensitivity: m.sensitivity,
            specificity: m.specificity,
            hd95_mm: m.hd95_mm,
            nsd: m.nsd,
        }
    }

    /// A metric by name.
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "dice" => self.dice,
            "jaccard" => self.jaccard,
            "sensitivity" => self.sensitivity,
            "specificity" => self.specificity,
            "hd95_mm" => self.hd95_mm,
            "nsd" => self.nsd,
            _ => None,
        }
    }
}

/// Evaluates `run/best` on the run's `split` ("val" or "test"): each case is predicted in its
/// scan's own geometry and scored against its ground truth by [`score_case`] under the model's
/// label scheme. Test cases the run trained on are left out (and listed in the report). Writes
/// `eval_<split>.json` and `.csv` in the run folder.
pub fn evaluate_run<B: EngineBackend>(
    run: &Path,
    split: &str,
    tolerance_mm: f64,
    device: &B::Device,
) -> Result<EvalReport, TrainError> {
    let info_path = run.join("run.json");
    let text = std::fs::read_to_string(&info_path).map_err(|e| TrainError::File {
        path: info_path.clone(),
        reason: format!("{e}; is this a run folder made by `mvl train`?"),
    })?;
    let info: RunInfo = serde_json::from_str(&text).map_err(|e| TrainError::File {
        path: info_path,
        reason: e.to_string(),
    })?;
    let (ids, excluded) = match split {
        "val" => (info.val.clone(), Vec::new()),
        "test" => untouched_test_cases(&info.test, &info.train),
        other => return Err(TrainError::Invalid(format!("split {other:?}: use val or test"))),
    };
    let loaded = load_checkpoint::<B>(&run.join("best"), None, device)?;
    let spec = loaded
        .meta
        .preprocessing
        .clone()
        .ok_or_else(|| TrainError::Invalid("the best checkpoint records no preprocessing".into()))?;
    let task = open_task(&info.task)?;
    let scheme = label_scheme(&loaded.config);
    let mut rows = Vec::new();
    let mut cases = Vec::new();
    for id in &ids {
        let case = task
            .case(id)
            .ok_or_else(|| TrainError::Invalid(format!("case {id} is not in {}", info.task.display())))?;
        let label_path = case
            .label
            .as_ref()
            .ok_or_else(|| TrainError::Invalid(format!("case {id} has no ground truth")))?;
        let image = read_nifti(&case.image)?;
        let truth = read_nifti(label_path)?.volume;
        let prediction = predict(&loaded.model, &loaded.config, &spec, &image.volume, device)?;
        let metrics = score_case(&prediction.label, &truth, &scheme, tolerance_mm)?;
        rows.extend(metrics.classes.iter().map(|m| CaseRow::from_class(id, m)));
        cases.push((id.clone(), metrics));
    }
    let report = EvalReport {
        split: split.into(),
        tolerance_mm,
        llm_weights: loaded.meta.llm_weights,
        label_names: scheme
            .labels()
            .into_iter()
            .map(|l| (l, scheme.name(l, &task.labels)))
            .collect(),
        scheme,
        excluded,
        rows,
    };
    let json = serde_json::to_vec_pretty(&report).map_err(|e| TrainError::Invalid(e.to_string()))?;
    let json_path = run.join(format!("eval_{split}.json"));
    crate::volume::write_atomically(&json_path, |w| std::io::Write::write_all(w, &json)).map_err(|e| {
        TrainError::File {
            path: json_path,
            reason: e.to_string(),
        }
    })?;
    // The same CSV as the app's Metrics tab exports.
    let case_rows: Vec<(String, &crate::metrics::CaseMetrics)> =
        cases.iter().map(|(id, metrics)| (id.clone(), metrics)).collect();
    let csv = crate::metrics::report_csv(&case_rows, &report.label_names);
    let csv_path = run.join(format!("eval_{split}.csv"));
    crate::volume::write_atomically(&csv_path, |w| std::io::Write::write_all(w, csv.as_bytes())).map_err(
        |e| TrainError::File {
            path: csv_path,
            reason: e.to_string(),
        },
    )?;
    Ok(report)
}

/// One line of the comparison table.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRow {
    /// Label value.
    pub class: u32,
    /// Metric name.
    pub metric: String,
    /// Cases where both runs are defined.
    pub cases: usize,
    /// Mean and SD of run A.
    pub a_mean: f64,
    /// SD of run A.
    pub a_sd: f64,
    /// Mean of run B.
    pub b_mean: f64,
    /// SD of run B.
    pub b_sd: f64,
    /// Paired two-tailed t-test p-value (None with fewer than 2 pairs or no variance).
    pub t_test_p: Option<f64>,
    /// Wilcoxon signed-rank p-value.
    pub wilcoxon_p: Option<f64>,
}

/// Pairs two evaluations by case and class and compares every metric.
pub fn compare_runs(a: &EvalReport, b: &EvalReport) -> Vec<CompareRow> {
    let mut classes: Vec<u32> = a.rows.iter().map(|r| r.class).collect();
    classes.sort_unstable();
    classes.dedup();
    let mut out = Vec::new();
    for class in classes {
        for metric in METRICS {
            let pairs: Vec<(f64, f64)> = a
                .rows
                .iter()
                .filter(|r| r.class == class)
                .filter_map(|ra| {
                    let rb = b.rows.iter().find(|rb| rb.case == ra.case && rb.class == class)?;
                    Some((ra.metric(metric)?, rb.metric(metric)?))
                })
                .collect();
            let (xa, xb): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
            let (ma, mb) = (mean_sd(&xa), mean_sd(&xb));
            out.push(CompareRow {
                class,
                metric: metric.into(),
                cases: pairs.len(),
                a_mean: ma.mean,
                a_sd: ma.sd,
                b_mean: mb.mean,
                b_sd: mb.sd,
                t_test_p: paired_t_test(&xa, &xb)
                    .ok()
                    .map(|t| t.p_value)
                    .filter(|p| p.is_finite()),
                wilcoxon_p: wilcoxon_signed_rank(&xa, &xb)
                    .ok()
                    .map(|w| w.p_value)
                    .filter(|p| p.is_finite()),
            });
        }
    }
    out
}
