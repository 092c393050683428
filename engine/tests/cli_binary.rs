//! The real `mvl` executable: exit codes, standard output and error messages as a user sees them.

use std::process::Command;

fn mvl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mvl"))
}

#[test]
fn demo_data_then_info_json_through_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let task = dir.path().join("task");
    let status = mvl()
        .args([
            "demo-data",
            "--cases",
            "2",
            "--test-cases",
            "0",
            "--size",
            "16,16,8",
            "--out",
        ])
        .arg(&task)
        .status()
        .expect("runs");
    assert!(status.success());
    let output = mvl()
        .arg("info")
        .arg(task.join("labelsTr/phantom_000.nii.gz"))
        .arg("--json")
        .output()
        .expect("runs");
    assert!(output.status.success());
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).expect("stdout is one JSON object");
    assert_eq!(info["shape"], serde_json::json!([16, 16, 8]));
    assert_eq!(info["datatype"], "uint8");
    assert_eq!(info["min"], 0.0);
    assert_eq!(info["max"], 2.0);
}

#[test]
fn errors_go_to_stderr_with_the_file_name_and_a_failure_code() {
    let output = mvl()
        .args(["info", "/nonexistent/scan.nii.gz"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/scan.nii.gz"), "{stderr}");
}
