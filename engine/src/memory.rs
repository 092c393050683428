//! The memory budget: how many bytes one decoded volume, or one size read from a config, may
//! claim. Every size taken from a file is checked against it *before* anything is allocated, so a
//! small file with a lying header is refused in microseconds instead of exhausting the machine.
//!
//! The budget is half of the memory the operating system reports as available
//! (`MemAvailable` in `/proc/meminfo`), never less than [`MIN_BUDGET_BYTES`]; where that figure
//! cannot be read (not Linux) it is [`FALLBACK_BUDGET_BYTES`]. It is overridden by the
//! environment variable [`BUDGET_ENV`] (`MVL_MAX_VOLUME_BYTES`, a byte count, optionally with a
//! `K`, `M`, `G` or `T` suffix in powers of 1024) or, in `mvl`, by `--max-volume-bytes`, which
//! wins over both.

use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that overrides the budget.
pub const BUDGET_ENV: &str = "MVL_MAX_VOLUME_BYTES";
/// The budget never drops below this, however little memory is free: small scans always open.
pub const MIN_BUDGET_BYTES: u64 = 512 << 20;
/// The budget where the available memory cannot be read.
pub const FALLBACK_BUDGET_BYTES: u64 = 4 << 30;
/// The share of the available memory one volume may take: half leaves room for the copies that
/// preprocessing and the model make.
const AVAILABLE_SHARE_DIVISOR: u64 = 2;

/// 0 means "no override set by the program".
static OVERRIDE_BYTES: AtomicU64 = AtomicU64::new(0);

/// Sets the budget for this process (the CLI's `--max-volume-bytes`); it wins over the
/// environment variable and the available memory.
pub fn set_budget_override(bytes: u64) {
    OVERRIDE_BYTES.store(bytes.max(1), Ordering::Relaxed);
}

/// Parses a byte count: digits, optionally followed by K, M, G or T (powers of 1024; a trailing
/// `B` or `iB` is accepted).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let upper = trimmed.to_ascii_uppercase();
    let without_b = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (digits, shift) = match without_b.chars().last() {
        Some('K') => (&without_b[..without_b.len() - 1], 10),
        Some('M') => (&without_b[..without_b.len() - 1], 20),
        Some('G') => (&without_b[..without_b.len() - 1], 30),
        Some('T') => (&without_b[..without_b.len() - 1], 40),
        _ => (without_b, 0),
    };
    let value: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("{trimmed:?} is not a byte count (e.g. 2000000000, 512M or 8G)"))?;
    value
        .checked_mul(1 << shift)
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("{trimmed:?} is zero or too large for a byte count"))
}

/// `MemAvailable` from `/proc/meminfo`, in bytes.
fn available_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Where the budget came from, for messages that tell the user how to change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetSource {
    /// `--max-volume-bytes` (or another program-set override).
    Override,
    /// The environment variable.
    Environment,
    /// Half the available memory.
    AvailableMemory,
    /// The fixed fallback.
    Fallback,
}

/// The budget in bytes and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Bytes one volume or one config-sized allocation may take.
    pub bytes: u64,
    /// Where the figure came from.
    pub source: BudgetSource,
}

impl Budget {
    /// A fixed budget (tests, and callers that know their limit).
    pub fn fixed(bytes: u64) -> Self {
        Self {
            bytes,
            source: BudgetSource::Override,
        }
    }

    /// A sentence saying what the limit is and how to change it.
    pub fn describe(&self) -> String {
        let origin = match self.source {
            BudgetSource::Override => "set by --max-volume-bytes".to_string(),
            BudgetSource::Environment => format!("set by {BUDGET_ENV}"),
            BudgetSource::AvailableMemory => "half the memory available now".to_string(),
            BudgetSource::Fallback => "the default where free memory cannot be read".to_string(),
        };
        format!(
            "the memory budget of {} ({origin}); raise it with {BUDGET_ENV}=BYTES or --max-volume-bytes BYTES if the machine has the memory",
            human_bytes(self.bytes)
        )
    }

    /// Refuses `bytes` when it exceeds the budget; `what` names the thing being allocated.
    pub fn check(&self, bytes: u64, what: &str) -> Result<(), String> {
        if bytes > self.bytes {
            return Err(format!(
                "{what} needs {}, more than {}",
                human_bytes(bytes),
                self.describe()
            ));
        }
        Ok(())
    }
}

/// The budget in force now: the program override, else the environment variable, else half the
/// available memory (at least [`MIN_BUDGET_BYTES`]), else [`FALLBACK_BUDGET_BYTES`].
///
/// An environment variable that does not parse is ignored rather than fatal here; `mvl` checks
/// it up front and reports it (see [`budget_from_environment`]).
pub fn budget() -> Budget {
    let set = OVERRIDE_BYTES.load(Ordering::Relaxed);
    if set > 0 {
        return Budget::fixed(set);
    }
    if let Some(Ok(bytes)) = budget_from_environment() {
        return Budget {
            bytes,
            source: BudgetSource::Environment,
        };
    }
    match available_memory_bytes() {
        Some(available) => Budget {
            bytes: (available / AVAILABLE_SHARE_DIVISOR).max(MIN_BUDGET_BYTES),
            source: BudgetSource::AvailableMemory,
        },
        None => Budget {
            bytes: FALLBACK_BUDGET_BYTES,
            source: BudgetSource::Fallback,
        },
    }
}

/// The environment variable's value, parsed; `None` when it is not set.
pub fn budget_from_environment() -> Option<Result<u64, String>> {
    let text = std::env::var(BUDGET_ENV).ok()?;
    Some(parse_bytes(&text).map_err(|e| format!("{BUDGET_ENV}: {e}")))
}

/// Bytes as a short human figure (`1.5 GiB`), exact for small counts.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {} ({bytes} bytes)", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_parse_with_binary_suffixes() {
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert_eq!(parse_bytes("512M"), Ok(512 * 1024 * 1024));
        assert_eq!(parse_bytes(" 8g "), Ok(8 * 1024 * 1024 * 1024));
        assert_eq!(parse_bytes("2GiB"), Ok(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_bytes("3KB"), Ok(3072));
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("99999999999T").is_err());
    }

    #[test]
    fn the_check_names_size_limit_and_remedy() {
        let budget = Budget::fixed(1 << 20);
        assert!(budget.check(1 << 20, "x").is_ok());
        let message = budget
            .check((1 << 20) + 1, "the volume")
            .err()
            .unwrap_or_default();
        assert!(
            message.contains("the volume needs 1.0 MiB (1048577 bytes)"),
            "{message}"
        );
        assert!(message.contains("budget of 1.0 MiB (1048576 bytes)"), "{message}");
        assert!(message.contains(BUDGET_ENV), "{message}");
    }

    #[test]
    fn the_machine_budget_is_at_least_the_floor() {
        // Whatever this machine has free, the budget never refuses a small scan (unless the
        // person running the tests set the budget themselves).
        if OVERRIDE_BYTES.load(Ordering::Relaxed) == 0 && budget_from_environment().is_none() {
            assert!(budget().bytes >= MIN_BUDGET_BYTES);
        }
    }
}
