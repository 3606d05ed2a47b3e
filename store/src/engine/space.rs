//! Free space on the filesystem that holds the data. A full disk is a condition the store
//! reports (507 InsufficientStorage, health 503), not an internal error: see
//! [`crate::error::is_disk_full`] for how failures are told apart.

use std::path::Path;

/// Below this much free space the store reports itself not ready for writes and does not
/// try to reopen a failed index (reopening repairs the file, which writes).
pub const MIN_FREE_BYTES: u64 = 1 << 20;

/// Bytes an unprivileged writer can still use on the filesystem holding `path` (statvfs
/// `f_bavail × f_frsize`).
pub fn available(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Whether the filesystem holding `path` has at least `bytes` free. A filesystem that cannot
/// be asked counts as having room: the write itself will tell.
pub fn has_room(path: &Path, bytes: u64) -> bool {
    available(path).ok().is_none_or(|free| free >= bytes)
}
