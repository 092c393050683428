//! What an operating-system error means for the user, and what to do about it: appended to the
//! messages of failed reads and writes, so "No space left on device" comes with the fix.

use std::io::{Error, ErrorKind};

/// `ENOSPC` and `EDQUOT` on Linux and macOS (for kinds older toolchains map to `Other`).
const DISK_FULL_CODES: [i32; 3] = [28, 122, 69];
/// `EROFS`.
const READ_ONLY_CODE: i32 = 30;

/// A short "; what to do" for `error`, or nothing when there is no better advice than its text.
pub fn hint(error: &Error) -> &'static str {
    let code = error.raw_os_error();
    match error.kind() {
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => DISK_FULL,
        _ if code.is_some_and(|c| DISK_FULL_CODES.contains(&c)) => DISK_FULL,
        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => NOT_WRITABLE,
        _ if code == Some(READ_ONLY_CODE) => NOT_WRITABLE,
        ErrorKind::NotFound => "; it was moved or deleted: put it back or choose another",
        ErrorKind::OutOfMemory => "; close other programs or lower the memory budget (--max-volume-bytes)",
        _ => "",
    }
}

const DISK_FULL: &str = "; the disk is full: free some space or choose a folder on another disk, \
                         then try again (the previous file, if any, is unchanged)";
const NOT_WRITABLE: &str = "; choose a folder you can write to";

/// `error`'s text followed by its [`hint`].
pub fn describe(error: &Error) -> String {
    format!("{error}{}", hint(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_full_and_missing_files_get_a_fix() {
        let full = Error::from_raw_os_error(28);
        assert!(describe(&full).contains("free some space"), "{}", describe(&full));
        let missing = Error::from(ErrorKind::NotFound);
        assert!(hint(&missing).contains("moved or deleted"));
        assert_eq!(hint(&Error::other("odd")), "");
    }
}
