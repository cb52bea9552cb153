//! Durability helpers, in one place: a file's contents are on disk only after an fsync
//! of the file, and its name (creation, rename, removal) only after an fsync of the
//! directory that holds it. Every metadata file the broker writes goes through
//! [`write_atomic`], so a crash leaves either the old or the new contents, never a
//! torn or empty file.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Makes the directory's entries (files created, renamed or removed in it) durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir.display(), e))
}

/// The directory holding `path` (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces `path`'s contents atomically and durably: write a temp file beside it,
/// fsync it, rename it over `path`, fsync the directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = Path::new(&tmp_name);
    let written = File::create(tmp).and_then(|mut f| {
        f.write_all(contents)?;
        f.sync_all()
    });
    written.map_err(|e| Error::io(tmp.display(), e))?;
    fs::rename(tmp, path).map_err(|e| Error::io(path.display(), e))?;
    fsync_dir(parent(path))
}

/// Creates a directory (and missing parents) and makes the new entry durable.
pub fn create_dir_all(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir.display(), e))?;
    fsync_dir(parent(dir))
}

/// Removes a file if present, and makes the removal durable.
pub fn remove_file(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => fsync_dir(parent(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path.display(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("producer-id-block");
        write_atomic(&p, b"1000").unwrap();
        write_atomic(&p, b"2000").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "2000");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        remove_file(&p).unwrap();
        remove_file(&p).unwrap();
        assert!(!p.exists());
        let nested = dir.path().join("a/b");
        create_dir_all(&nested).unwrap();
        assert!(nested.is_dir());
        assert!(write_atomic(&dir.path().join("missing/x"), b"").is_err());
    }
}
