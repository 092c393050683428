//! The process allocator's settings (the binaries declare mimalloc as their global allocator).
//!
//! mimalloc hands a freed span back to the system (a "purge") after a delay; a training step
//! frees and reallocates the same large tensor buffers every few milliseconds, and each purged
//! span comes back as freshly faulted, zeroed (transparent huge) pages. With the delay at 10 s the
//! buffers are reused for the whole run and go back to the system 10 s after it ends. Measured on
//! demo-cpu at batch 4 (`perf stat -e page-faults mvl bench …`): 11.7 k page faults with the
//! default, 0.7 k with 10 s (issue 11).

/// mimalloc's `mi_option_purge_delay` (the same index in its v2 and v3 option tables).
const PURGE_DELAY_OPTION: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with the process before it is returned to the system.
pub const PURGE_DELAY_MS: i64 = 10_000;

/// Sets mimalloc's purge delay to [`PURGE_DELAY_MS`]; call it first thing in `main`. An
/// explicit `MIMALLOC_PURGE_DELAY` in the environment wins.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_set` takes an option index and a value and touches only mimalloc's own
    // option table (an atomic store); an index it does not know is ignored with a warning.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY_OPTION, PURGE_DELAY_MS as _);
    }
}

/// mimalloc's current purge delay in milliseconds.
pub fn purge_delay_ms() -> i64 {
    #[allow(unsafe_code)]
    // SAFETY: reads mimalloc's option table for a valid index.
    let value = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY_OPTION) };
    value as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_set_where_mimalloc_reads_it() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            eprintln!("skipped: MIMALLOC_PURGE_DELAY is set in the environment");
            return;
        }
        // mimalloc's own default (10 ms in v2, 1000 ms in v3) is not 10 s: the call must move it.
        assert_ne!(purge_delay_ms(), PURGE_DELAY_MS);
        keep_freed_memory();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
    }
}
