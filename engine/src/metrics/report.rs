//! One metrics report for every caller (the app's export and, in time, `mvl eval`): a CSV row
//! per case and class, the same rows as JSON, and the means the tables show.

use super::{CaseMetrics, ClassMetrics};
use std::collections::BTreeMap;

/// The CSV header: case, label, name, the six metrics, voxel counts and the NSD tolerance.
pub const REPORT_CSV_HEADER: &str = "case,label,name,dice,jaccard,hd95_mm,nsd,sensitivity,specificity,\
prediction_voxels,ground_truth_voxels,nsd_tolerance_mm";

/// The six metrics of a class: Dice, Jaccard, HD95 (mm), NSD, sensitivity, specificity.
pub fn class_values(class: &ClassMetrics) -> [Option<f64>; 6] {
    [
        class.dice,
        class.jaccard,
        class.hd95_mm,
        class.nsd,
        class.sensitivity,
        class.specificity,
    ]
}

/// The report as CSV: one row per case and class; undefined values are empty fields, and label
/// names come from `label_names` (dataset.json), empty when unknown.
pub fn report_csv(rows: &[(String, &CaseMetrics)], label_names: &BTreeMap<u32, String>) -> String {
    let mut csv = format!("{REPORT_CSV_HEADER}\n");
    for (case, metrics) in rows {
        for class in &metrics.classes {
            let values: Vec<String> = class_values(class)
                .iter()
                .map(|v| v.map(|v| format!("{v}")).unwrap_or_default())
                .collect();
            let name = label_names.get(&class.label).cloned().unwrap_or_default();
            csv.push_str(&format!(
                "{},{},{},{},{},{},{}\n",
                csv_field(case),
                class.label,
                csv_field(&name),
                values.join(","),
                class.prediction_voxels,
                class.ground_truth_voxels,
                metrics.tolerance_mm
            ));
        }
    }
    csv
}

/// One case of the JSON report.
#[derive(serde::Serialize)]
struct JsonCase<'a> {
    case: &'a str,
    #[serde(flatten)]
    metrics: &'a CaseMetrics,
}

/// The report as JSON: an array of cases, each with its id and every field of its metrics.
///
/// # Errors
/// Only if serde_json fails to format (it does not for these types).
pub fn report_json(rows: &[(String, &CaseMetrics)]) -> serde_json::Result<String> {
    let cases: Vec<JsonCase<'_>> = rows
        .iter()
        .map(|(case, metrics)| JsonCase { case, metrics })
        .collect();
    serde_json::to_string_pretty(&cases)
}

/// Quotes a field that holds a comma, quote or line break.
pub(crate) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Mean of each of the six metrics over the classes of every case (undefined values and classes
/// absent from both prediction and ground truth left out).
pub fn column_means(rows: &[&CaseMetrics]) -> [Option<f64>; 6] {
    let mut means = [None; 6];
    for (column, mean) in means.iter_mut().enumerate() {
        let values: Vec<f64> = rows
            .iter()
            .flat_map(|m| &m.classes)
            .filter(|c| !c.both_empty)
            .filter_map(|c| class_values(c)[column])
            .collect();
        if !values.is_empty() {
            *mean = Some(values.iter().sum::<f64>() / values.len() as f64);
        }
    }
    means
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{DEFAULT_TOLERANCE_MM, LabelScheme, score_case};
    use crate::volume::{Affine, Volume};

    /// Every label as it is.
    const AS_IS: LabelScheme = LabelScheme::Classes(Vec::new());

    fn cube(shape: [usize; 3], from: usize, to: usize) -> Volume {
        let [nx, ny, nz] = shape;
        let mut voxels = vec![0.0f32; nx * ny * nz];
        for z in from..to {
            for y in from..to {
                for x in from..to {
                    voxels[x + nx * (y + ny * z)] = 1.0;
                }
            }
        }
        Volume::new(shape, 1, voxels, Affine::identity()).expect("volume")
    }

    fn metrics_of(prediction: &Volume, truth: &Volume, scheme: &LabelScheme) -> CaseMetrics {
        score_case(prediction, truth, scheme, DEFAULT_TOLERANCE_MM).expect("metrics")
    }

    #[test]
    fn csv_rows_hold_the_values_of_each_class() {
        // A 4³ cube predicted as the 3³ cube in its corner: Dice = 2·27/(27+64) by hand.
        let truth = cube([8, 8, 8], 2, 6);
        let prediction = cube([8, 8, 8], 2, 5);
        let metrics = metrics_of(&prediction, &truth, &AS_IS);
        let names = BTreeMap::from([(1, "organ, big".to_string())]);
        let csv = report_csv(&[("case_1".into(), &metrics)], &names);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 2, "{csv}");
        assert_eq!(lines[0].split(',').count(), 12);
        assert!(lines[1].starts_with("case_1,1,\"organ, big\","), "{csv}");
        let after_name = lines[1].split("\",").nth(1).expect("fields");
        let fields: Vec<&str> = after_name.split(',').collect();
        let dice: f64 = fields[0].parse().expect("dice");
        assert!((dice - 54.0 / 91.0).abs() < 1e-9, "dice {dice}");
        let jaccard: f64 = fields[1].parse().expect("jaccard");
        assert!((jaccard - 27.0 / 64.0).abs() < 1e-9, "jaccard {jaccard}");
        let sensitivity: f64 = fields[4].parse().expect("sensitivity");
        assert!((sensitivity - 27.0 / 64.0).abs() < 1e-9);
        assert_eq!(fields[6], "27");
        assert_eq!(fields[7], "64");
        // The JSON holds the same case and Dice.
        let json: serde_json::Value =
            serde_json::from_str(&report_json(&[("case_1".into(), &metrics)]).expect("json"))
                .expect("parses");
        assert_eq!(json[0]["case"], "case_1");
        let json_dice = json[0]["classes"][0]["dice"].as_f64().expect("dice");
        assert!((json_dice - 54.0 / 91.0).abs() < 1e-9);
    }

    #[test]
    fn means_leave_undefined_values_out() {
        let truth = cube([8, 8, 8], 2, 6);
        let perfect = metrics_of(&truth, &truth, &AS_IS);
        // The 4³ cube shifted by one voxel on each axis: overlap 3³, 37 false positives among
        // 512 − 64 = 448 true negatives and false positives.
        let shifted = metrics_of(&cube([8, 8, 8], 3, 7), &truth, &AS_IS);
        // Label 1 absent from both: flagged, and even its specificity (1) stays out of the means.
        let one_class = LabelScheme::first_classes(1);
        let empty = metrics_of(&cube([8, 8, 8], 0, 0), &cube([8, 8, 8], 0, 0), &one_class);
        assert!(empty.classes.len() == 1 && empty.classes[0].both_empty);
        let means = column_means(&[&perfect, &shifted, &empty]);
        let dice = (1.0 + 54.0 / 128.0) / 2.0;
        assert!(means[0].is_some_and(|m| (m - dice).abs() < 1e-9), "{means:?}");
        let specificity = (1.0 + 411.0 / 448.0) / 2.0;
        assert!(
            means[5].is_some_and(|m| (m - specificity).abs() < 1e-9),
            "{means:?}"
        );
        assert_eq!(column_means(&[]), [None; 6]);
    }
}
