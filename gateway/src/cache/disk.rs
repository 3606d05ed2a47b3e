//! Disk tier: body slices of large objects, one file per slice, weighed in bytes. The tier is
//! a cache, not a store: it is emptied at start-up and files are written without fsync; what
//! survives a crash is simply refetched.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::SliceId;

pub struct DiskTier {
    dir: PathBuf,
    /// Slice → its length; evicting an entry deletes its file.
    index: moka::future::Cache<SliceId, u64>,
}

impl DiskTier {
    /// `evictions` counts slices dropped for room.
    pub fn open(
        dir: &Path,
        capacity: u64,
        evictions: prometheus_client::metrics::counter::Counter,
    ) -> std::io::Result<DiskTier> {
        let dir = dir.join("slices");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
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
        Ok(DiskTier { dir, index })
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

    pub async fn insert(&self, id: SliceId, data: Bytes) {
        let path = slice_path(&self.dir, &id);
        let dir = self.dir.clone();
        let len = data.len() as u64;
        // Written under a temporary name and renamed, so a reader never sees half a slice.
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
            std::io::Write::write_all(&mut tmp, &data)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })
        .await;
        match written {
            Ok(Ok(())) => self.index.insert(id, len).await,
            Ok(Err(e)) => tracing::warn!(error = %e, "disk cache write failed"),
            Err(e) => tracing::warn!(error = %e, "disk cache write task failed"),
        }
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
