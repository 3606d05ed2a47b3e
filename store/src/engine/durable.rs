//! Making names durable on local disk. An fsync of a file makes its bytes durable, not its
//! name: the directory entry is durable only once the directory itself is fsynced (POSIX; ext4
//! and XFS usually persist more, a power cut on a strict filesystem does not). So every
//! directory the engine creates, and every file it names, needs its parent synced before the
//! index may rely on it (tests/powerloss.rs cuts the power on such a filesystem).
//!
//! Every file the store and the edge must not lose or see half written goes through
//! [`StagedFile`] (streaming: create, write chunks, commit) or its one-shot forms
//! [`write_new`] / [`write_replace`].

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// fsyncs a directory: the creates, renames and unlinks in it so far survive a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// `create_dir_all`, then syncs the parent of every directory it created, so the whole path
/// survives a power cut (a fresh `--data` dir would otherwise vanish with all it holds).
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    std::fs::create_dir_all(dir)?;
    for created in missing {
        if let Some(parent) = created.parent() {
            sync_dir(if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            })?;
        }
    }
    Ok(())
}

/// A file being written that becomes visible whole or not at all: the staging half of every
/// durable write (blobs, the credentials file, and any spool that keeps data across a crash).
///
/// Contract:
/// - [`StagedFile::create_in`] makes a staging file (a name [`is_staging`] recognises) in the
///   directory the final file will live in, so the final rename never crosses filesystems.
/// - Bytes written (`Write`, any number of chunks) go to the staging file only; nothing is
///   visible under the final name meanwhile.
/// - [`StagedFile::commit`] (or [`StagedFile::commit_new`]) fsyncs the file, renames it to
///   its final name and fsyncs the directory: once it returns Ok, the whole file survives a
///   power cut under that name. If it fails, the final name still holds what it held before.
/// - Dropped without a commit (an error, a panic, a cancelled task), the staging file is
///   removed. A crash leaves it behind instead; start-up sweeps remove names [`is_staging`]
///   recognises.
///
/// All of it is blocking I/O: from async code run it on the blocking pool.
pub struct StagedFile {
    tmp: tempfile::NamedTempFile,
    dir: PathBuf,
}

/// Staging files are `.<random>.tmp`: hidden, and never a name the engine gives a final file.
const STAGING_PREFIX: &str = ".";
const STAGING_SUFFIX: &str = ".tmp";

/// Whether `name` is a staging file a crash may have left (see [`StagedFile`]).
pub fn is_staging(name: &str) -> bool {
    name.len() > STAGING_PREFIX.len() + STAGING_SUFFIX.len()
        && name.starts_with(STAGING_PREFIX)
        && name.ends_with(STAGING_SUFFIX)
}

impl StagedFile {
    /// A new, empty staging file in `dir` with `mode` permissions.
    pub fn create_in(dir: &Path, mode: u32) -> io::Result<StagedFile> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let tmp = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .suffix(STAGING_SUFFIX)
            .permissions(std::fs::Permissions::from_mode(mode))
            .tempfile_in(dir)?;
        Ok(StagedFile {
            tmp,
            dir: dir.to_owned(),
        })
    }

    /// The open staging file, e.g. to start flushing it early (`sync_data` on a clone of it):
    /// the fsync at commit then finds little left to write.
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// Makes the file durable under `path` (in the staging directory), replacing any file
    /// there.
    pub fn commit(self, path: &Path) -> io::Result<()> {
        self.finish(path, persist, true)
    }

    /// As [`StagedFile::commit`], but leaves the directory's sync to the caller: the whole
    /// file is under `path` once this returns (a crash of the process keeps it), and survives
    /// a power cut once the caller has synced the directory ([`sync_dir`]). For a rename that
    /// must be quick (under a lock): sync [`StagedFile::file`] before, this then finds
    /// nothing left to write.
    pub fn rename_into(self, path: &Path) -> io::Result<()> {
        self.finish(path, persist, false)
    }

    /// As [`StagedFile::commit`], but fails with `AlreadyExists` (and removes the staging
    /// file) if `path` exists: a file that must be created once, never overwritten.
    pub fn commit_new(self, path: &Path) -> io::Result<()> {
        let persist_new = |tmp: tempfile::NamedTempFile, path: &Path| {
            tmp.persist_noclobber(path).map(drop).map_err(|e| e.error)
        };
        self.finish(path, persist_new, true)
    }

    fn finish(
        self,
        path: &Path,
        rename: impl FnOnce(tempfile::NamedTempFile, &Path) -> io::Result<()>,
        sync_name: bool,
    ) -> io::Result<()> {
        if path
            .parent()
            .is_some_and(|p| !p.as_os_str().is_empty() && p != self.dir)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a staged file commits into the directory it was staged in",
            ));
        }
        self.tmp.as_file().sync_all()?;
        // On failure persist hands the file back inside the error, which drops (removes) it.
        rename(self.tmp, path)?;
        match sync_name {
            true => sync_dir(&self.dir),
            false => Ok(()),
        }
    }
}

fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> io::Result<()> {
    tmp.persist(path).map(drop).map_err(|e| e.error)
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tmp.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.tmp.flush()
    }
}

/// Writes a new file at `path` with `mode` permissions, whole or not at all (a
/// [`StagedFile`] committed with [`StagedFile::commit_new`]): `AlreadyExists` if `path`
/// exists, and then nothing changes.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut staged = StagedFile::create_in(dir, mode)?;
    staged.write_all(bytes)?;
    staged.commit_new(path)
}

/// Writes `path` with `mode` permissions whole or not at all, replacing what it held.
pub fn write_replace(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut staged = StagedFile::create_in(dir, mode)?;
    staged.write_all(bytes)?;
    staged.commit(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_staged_file_is_invisible_until_committed_then_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, b"old").unwrap();
        let mut staged = StagedFile::create_in(dir.path(), 0o644).unwrap();
        for chunk in [&b"new "[..], b"content", b" in chunks"] {
            staged.write_all(chunk).unwrap();
            // No partial file under the final name, whatever was written so far.
            assert_eq!(std::fs::read(&path).unwrap(), b"old");
        }
        assert_eq!(names(dir.path()).len(), 2);
        assert!(names(dir.path()).iter().any(|n| is_staging(n)));
        staged.commit(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new content in chunks");
        assert_eq!(
            names(dir.path()),
            ["blob"],
            "the staging file became the file"
        );
    }

    #[test]
    fn the_guard_removes_the_staging_file_on_drop_and_on_error() {
        let dir = tempfile::tempdir().unwrap();
        // Dropped without a commit (a cancelled write): gone, and the final name never appears.
        let mut staged = StagedFile::create_in(dir.path(), 0o600).unwrap();
        staged.write_all(b"half a body").unwrap();
        drop(staged);
        assert!(names(dir.path()).is_empty());
        // A commit that fails (the final name is taken): the staging file is gone too.
        let path = dir.path().join("once");
        std::fs::write(&path, b"first").unwrap();
        let mut staged = StagedFile::create_in(dir.path(), 0o600).unwrap();
        staged.write_all(b"second").unwrap();
        let e = staged.commit_new(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(names(dir.path()), ["once"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        // A commit into another directory is refused, and cleans up as well.
        let other = dir.path().join("sub");
        std::fs::create_dir(&other).unwrap();
        let staged = StagedFile::create_in(dir.path(), 0o600).unwrap();
        let e = staged.commit(&other.join("x")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(names(dir.path()), ["once", "sub"]);
        assert!(names(&other).is_empty());
    }

    #[test]
    fn staging_names() {
        assert!(is_staging(".a1b2c3.tmp"));
        assert!(!is_staging(".tmp"));
        assert!(!is_staging("0123456789abcdef0123456789abcdef"));
        assert!(!is_staging("credentials.toml"));
    }

    #[test]
    fn a_file_renamed_into_place_is_whole_and_its_staging_name_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record");
        let mut staged = StagedFile::create_in(dir.path(), 0o600).unwrap();
        staged.write_all(b"whole").unwrap();
        staged.file().sync_all().unwrap();
        staged.rename_into(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
        assert_eq!(names(dir.path()), ["record"]);
    }

    #[test]
    fn write_replace_swaps_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_replace(&path, b"one", 0o600).unwrap();
        write_replace(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["f"]);
    }

    #[test]
    fn a_new_file_is_written_whole_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/secret");
        create_dir_all(path.parent().unwrap()).unwrap();
        write_new(&path, b"one", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = write_new(&path, b"two", 0o600).unwrap_err();
        assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        let leftovers = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }
}
