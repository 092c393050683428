//! The process's resident memory on Linux (`/proc/self/status`): the peak the CPU bench reports.

/// The process's peak resident set in bytes (Linux `VmHWM`); `None` elsewhere.
pub(super) fn peak_resident_bytes() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_status_kib(&status, "VmHWM:"))
}

/// Starts a new peak: resets the process's `VmHWM` to its current resident set (Linux ≥ 4.0,
/// `/proc/self/clear_refs`) and returns that resident set, the baseline of the peak to come.
/// `None` when the peak cannot be reset (then `VmHWM` still holds the peak since start).
pub(super) fn restart_peak_resident() -> Option<u64> {
    const RESET_PEAK_RESIDENT: &str = "5";
    std::fs::write("/proc/self/clear_refs", RESET_PEAK_RESIDENT).ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&status, "VmRSS:")
}

/// Reads a `Key:   123 kB` line of a `/proc/<pid>/status` text, in bytes.
fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_in_bytes() {
        let status = "Name:\tmvl\nVmPeak:\t  900 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(2048 * 1024));
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(1000 * 1024));
        assert_eq!(parse_status_kib("Name:\tmvl\n", "VmHWM:"), None);
        assert!(peak_resident_bytes().is_some_and(|bytes| bytes > 0));
    }

    #[test]
    fn a_restarted_peak_sees_a_new_allocation_and_not_an_old_one() {
        const MIB: u64 = 1 << 20;
        // An old peak: 256 MiB touched, then freed.
        drop(std::hint::black_box(vec![1u8; 256 * MIB as usize]));
        let Some(baseline) = restart_peak_resident() else {
            eprintln!("skipped: /proc/self/clear_refs cannot be written here");
            return;
        };
        let peak = peak_resident_bytes().expect("VmHWM");
        // Other test threads allocate too: allow them 128 MiB.
        assert!(
            peak < baseline + 128 * MIB,
            "the old 256 MiB peak survived the reset"
        );
        let block = std::hint::black_box(vec![1u8; 64 * MIB as usize]);
        let peak = peak_resident_bytes().expect("VmHWM");
        assert!(
            peak >= baseline + 60 * MIB,
            "a 64 MiB allocation was not seen: {peak} vs {baseline}"
        );
        drop(block);
    }
}
