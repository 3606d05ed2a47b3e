//! Making names durable on local disk. An fsync of a file makes its bytes durable, not its
//! name: the directory entry is durable only once the directory itself is fsynced (POSIX; ext4
//! and XFS usually persist more, a power cut on a strict filesystem does not). So every
//! directory the engine creates, and every file it names, needs its parent synced before the
//! index may rely on it (tests/powerloss.rs cuts the power on such a filesystem).

use std::fs::File;
use std::io;
use std::path::Path;

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
