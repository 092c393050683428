//! The one place the CLI writes its results: standard output for `mvl`, a buffer in tests.

use std::io::Write;

/// Where command results go.
pub struct Output {
    writer: Box<dyn Write>,
}

impl Output {
    /// Standard output.
    pub fn stdout() -> Self {
        Self {
            writer: Box::new(std::io::stdout()),
        }
    }

    /// Any writer (tests pass a shared buffer).
    pub fn to_writer(writer: Box<dyn Write>) -> Self {
        Self { writer }
    }

    /// Writes one line; a closed pipe (`mvl … | head`) is not an error worth reporting.
    pub fn line(&mut self, text: impl std::fmt::Display) {
        let _ = writeln!(self.writer, "{text}");
    }

    /// Writes a value as pretty JSON.
    pub fn json(&mut self, value: &impl serde::Serialize) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        self.line(text);
        Ok(())
    }
}
