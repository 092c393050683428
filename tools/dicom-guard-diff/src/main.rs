//! For each file given: the engine's DICOM length guard (`volume::dicom::lengths`, compiled in
//! from the engine's source) and, where the guard passes the file, dicom-rs's `open_file`, the
//! parser the guard protects. Run under a small address-space limit (`ulimit -v`, see run.sh), a
//! reservation dicom-rs makes far above the guard's 64 MiB fails with its "Could not reserve
//! memory" error instead of succeeding: each such file is printed as `GAP path: message`, a
//! file the guard should have refused. Prints nothing else.

#[path = "../../../engine/src/volume/dicom/lengths.rs"]
#[allow(dead_code)]
mod lengths;

use dicom_object::OpenFileOptions;

fn main() {
    for path in std::env::args().skip(1) {
        let Ok(bytes) = std::fs::read(&path) else {
            eprintln!("{path}: unreadable");
            continue;
        };
        if lengths::check_declared_lengths(&bytes).is_err() {
            continue;
        }
        if let Err(error) = OpenFileOptions::new().open_file(&path) {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            if message.contains("reserve memory") || message.contains("llocat") {
                println!("GAP {path}: {message}");
            }
        }
    }
}
