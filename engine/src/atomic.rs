//! Replacing a whole folder (a checkpoint) so that a crash or `kill -9` at any moment leaves
//! either the complete old folder or the complete new one under the name — or, for the instant
//! between two renames, no folder and the old one beside it, which [`recover_folder`] puts back.
//!
//! Single files are replaced with [`crate::volume::write_atomically`] (temporary file, fsync,
//! rename). A folder cannot be renamed over a non-empty folder, so a folder takes three steps:
//!
//! 1. the new contents are written into `NAME.partial` (each file fsynced, then the folder);
//! 2. `NAME` is renamed to `NAME.old`, and `NAME.partial` to `NAME` (the parent is fsynced);
//! 3. `NAME.old` is deleted.
//!
//! A reader that finds `NAME` therefore always finds a complete folder. Stale `NAME.partial`
//! folders are half-written by definition and are only ever deleted.

use std::path::{Path, PathBuf};

fn sibling(target: &Path, suffix: &str) -> PathBuf {
    let mut name = target.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    target.with_file_name(name)
}

/// Where a folder's new contents are written before they replace it.
pub fn partial_path(target: &Path) -> PathBuf {
    sibling(target, ".partial")
}

/// Where a folder's previous contents wait while the new ones are renamed in.
pub fn old_path(target: &Path) -> PathBuf {
    sibling(target, ".old")
}

/// Flushes a folder's entries (new names, renames) to disk.
pub fn sync_folder(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Replaces `target` with a folder filled by `write` (see the module documentation). `io_error`
/// turns a file-system failure on a path into the caller's error type.
pub fn replace_folder<E>(
    target: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
    io_error: impl Fn(&Path, std::io::Error) -> E,
) -> Result<(), E> {
    let partial = partial_path(target);
    let old = old_path(target);
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| io_error(&partial, e))?;
    }
    std::fs::create_dir_all(&partial).map_err(|e| io_error(&partial, e))?;
    write(&partial)?;
    sync_folder(&partial).map_err(|e| io_error(&partial, e))?;
    if target.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io_error(&old, e))?;
        }
        std::fs::rename(target, &old).map_err(|e| io_error(target, e))?;
    }
    std::fs::rename(&partial, target).map_err(|e| io_error(target, e))?;
    sync_folder(&parent).map_err(|e| io_error(&parent, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io_error(&old, e))?;
    }
    Ok(())
}

/// Puts a folder back after a crash between the two renames of [`replace_folder`] (`NAME`
/// missing, `NAME.old` complete) and deletes a half-written `NAME.partial`. Returns whether the
/// folder was restored.
pub fn recover_folder(target: &Path) -> std::io::Result<bool> {
    let partial = partial_path(target);
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    let old = old_path(target);
    if target.exists() || !old.is_dir() {
        return Ok(false);
    }
    std::fs::rename(&old, target)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_marker(dir: &Path, text: &str) -> Result<(), String> {
        std::fs::write(dir.join("marker"), text).map_err(|e| e.to_string())
    }

    fn read_marker(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("marker")).unwrap_or_default()
    }

    #[test]
    fn a_failed_write_leaves_the_old_folder_whole() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let target = root.path().join("last");
        let to_string = |_: &Path, e: std::io::Error| e.to_string();
        replace_folder(&target, |dir| write_marker(dir, "one"), to_string).map_err(anyhow::Error::msg)?;
        let failed = replace_folder(
            &target,
            |dir| {
                write_marker(dir, "half")?;
                Err("disk full".to_string())
            },
            to_string,
        );
        assert_eq!(failed, Err("disk full".to_string()));
        assert_eq!(read_marker(&target), "one");
        replace_folder(&target, |dir| write_marker(dir, "two"), to_string).map_err(anyhow::Error::msg)?;
        assert_eq!(read_marker(&target), "two");
        assert!(!partial_path(&target).exists() && !old_path(&target).exists());
        Ok(())
    }

    #[test]
    fn a_crash_between_the_renames_is_recovered() -> anyhow::Result<()> {
        let root = tempfile::tempdir()?;
        let target = root.path().join("best");
        // The state a kill between step 2's renames leaves: only best.old and best.partial.
        std::fs::create_dir_all(old_path(&target))?;
        write_marker(&old_path(&target), "good").map_err(anyhow::Error::msg)?;
        std::fs::create_dir_all(partial_path(&target))?;
        assert!(recover_folder(&target)?);
        assert_eq!(read_marker(&target), "good");
        assert!(!partial_path(&target).exists());
        // Nothing to do the second time.
        assert!(!recover_folder(&target)?);
        Ok(())
    }

    #[test]
    fn a_failing_file_writer_leaves_the_old_file_and_no_temporary() -> anyhow::Result<()> {
        // The path every label, autosave, reviews.json and cache manifest is written through.
        let root = tempfile::tempdir()?;
        let path = root.path().join("reviews.json");
        std::fs::write(&path, "old")?;
        let result = crate::volume::write_atomically(&path, |w| {
            std::io::Write::write_all(w, b"new, half")?;
            Err(std::io::Error::other("injected failure"))
        });
        assert!(result.is_err());
        assert_eq!(std::fs::read_to_string(&path)?, "old");
        assert_eq!(
            std::fs::read_dir(root.path())?.count(),
            1,
            "the temporary file is removed"
        );
        Ok(())
    }
}
