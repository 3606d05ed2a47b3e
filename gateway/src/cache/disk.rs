//! Disk tier: body slices of large objects, one file per slice, weighed in bytes. The tier is
//! a cache, not a store: it is emptied at start-up and files are written without fsync; what
//! survives a crash is simply refetched.
//!
//! The tier shares its filesystem with the upload spool (and whatever else is there), so the
//! configured capacity is only an upper bound: it takes at most half of the space that was
//! free at start-up, and writes no slice that would leave less than [`DiskTier::keep_free`]
//! free, so the spool keeps room to take parts.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use outpost_store::engine::space;

use super::SliceId;

pub struct DiskTier {
    dir: PathBuf,
    /// Slice → its length; evicting an entry deletes its file.
    index: moka::future::Cache<SliceId, u64>,
    /// Free bytes a slice write must leave on the filesystem.
    keep_free: u64,
}

impl DiskTier {
    /// A tier of at most `capacity` bytes (less on a small filesystem, see the module doc)
    /// that leaves room for a spool of up to `spool_bytes`. `evictions` counts slices dropped
    /// for room.
    pub fn open(
        dir: &Path,
        capacity: u64,
        spool_bytes: u64,
        evictions: prometheus_client::metrics::counter::Counter,
    ) -> std::io::Result<DiskTier> {
        let dir = dir.join("slices");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        let free = space::available(&dir)?;
        let (capacity, keep_free) = Self::budget(capacity, spool_bytes, free);
        tracing::info!(
            capacity,
            keep_free,
            free,
            "disk cache tier sized to its filesystem"
        );
        let files = dir.clone();
        let index = moka::future::Cache::builder()
            .max_capacity(capacity)
            .weigher(|_, len: &u64| u32::try_from(*len).unwrap_or(u32::MAX))
            .eviction_listener(move |id: std::sync::Arc<SliceId>, _, cause| {
                // A replaced entry's file has just been rewritten under the same name.
                if cause != moka::notification::RemovalCause::Replaced {
                    let _ = std::fs::remove_file(slice_path(&files, &id));
                }
                if cause == moka::notification::RemovalCause::Size {
                    evictions.inc();
                }
            })
            .build();
        Ok(DiskTier {
            dir,
            index,
            keep_free,
        })
    }

    /// (capacity, keep_free) for a tier configured to `capacity` on a filesystem with `free`
    /// bytes: at most half of `free`, and slices are written only while a quarter of `free`
    /// (or the whole spool budget, if smaller) stays free.
    pub fn budget(capacity: u64, spool_bytes: u64, free: u64) -> (u64, u64) {
        (capacity.min(free / 2), spool_bytes.min(free / 4))
    }

    /// Up to `len` bytes of the slice from `offset`: a reader reads what it sends next, not
    /// the whole slice (a thousand readers of one large object would each read it all).
    pub async fn get(&self, id: SliceId, offset: u64, len: usize) -> Option<Bytes> {
        self.index.get(&id).await?;
        let path = slice_path(&self.dir, &id);
        // The file can vanish between the lookup and the read (evicted meanwhile): a miss.
        tokio::task::spawn_blocking(move || -> std::io::Result<Bytes> {
            use std::io::{Read, Seek, SeekFrom};
            let mut file = std::fs::File::open(path)?;
            file.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::with_capacity(len);
            file.take(len as u64).read_to_end(&mut buf)?;
            Ok(Bytes::from(buf))
        })
        .await
        .ok()?
        .ok()
        .filter(|b| !b.is_empty())
    }

    /// Stores the slice; false when it was not (no room on the filesystem, or a failed
    /// write), so the caller can keep it elsewhere.
    pub async fn insert(&self, id: SliceId, data: Bytes) -> bool {
        let path = slice_path(&self.dir, &id);
        let dir = self.dir.clone();
        let len = data.len() as u64;
        let keep_free = self.keep_free;
        // Written under a temporary name and renamed, so a reader never sees half a slice.
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
            if !space::has_room(&dir, len + keep_free) {
                return Ok(false);
            }
            let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
            std::io::Write::write_all(&mut tmp, &data)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(true)
        })
        .await;
        match written {
            Ok(Ok(true)) => {
                self.index.insert(id, len).await;
                return true;
            }
            Ok(Ok(false)) => tracing::debug!("disk cache: no room left on its filesystem"),
            Ok(Err(e)) => tracing::warn!(error = %e, "disk cache write failed"),
            Err(e) => tracing::warn!(error = %e, "disk cache write task failed"),
        }
        false
    }

    pub fn contains(&self, id: SliceId) -> bool {
        self.index.contains_key(&id)
    }

    pub fn weighted_size(&self) -> u64 {
        self.index.weighted_size()
    }

    pub fn entry_count(&self) -> u64 {
        self.index.entry_count()
    }
}

fn slice_path(dir: &Path, id: &SliceId) -> PathBuf {
    dir.join(format!("{:016x}-{}", id.version, id.index))
}

#[cfg(test)]
mod tests {
    use super::DiskTier;

    #[test]
    fn budget_is_bounded_by_the_filesystem_and_the_setting() {
        const MIB: u64 = 1 << 20;
        // The reported case: a 10 GiB default on an 82 MiB filesystem.
        assert_eq!(
            DiskTier::budget(10 << 30, 10 << 30, 82 * MIB),
            (41 * MIB, 82 * MIB / 4)
        );
        // A large disk: the setting and the spool budget decide.
        assert_eq!(DiskTier::budget(10 << 30, MIB, 1 << 40), (10 << 30, MIB));
    }
}
