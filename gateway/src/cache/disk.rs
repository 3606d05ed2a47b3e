//! Disk tier: body slices of large objects, one file per slice, weighed in bytes. The tier
//! survives a restart (SIGKILL included) together with the heads of its entries
//! ([`super::records`]): at start it keeps the slices of the heads restored there and removes
//! everything else (slices of no restored head, of a length their head does not give, names
//! it does not make, staging files a crash left).
//!
//! A slice is written through the store's durable-write helper (staging file, fsync, rename;
//! the directory is not synced), so a file under a slice's name is whole; its name carries the CRC32C of its bytes, and a
//! slice kept from an earlier run is read whole and checked against it once before any of it
//! is served: bytes damaged on disk are a miss (and the file goes), never an answer.
//!
//! The tier shares its filesystem with the upload spool (and whatever else is there), so the
//! configured capacity is only an upper bound: it takes at most half of the space that was
//! free at start-up (counting what it kept as free), and writes no slice that would leave
//! less than [`DiskTier::keep_free`] free, so the spool keeps room to take parts.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use outpost_store::engine::checksum::{ChecksumAlgorithm, checksum};
use outpost_store::engine::durable::{self, StagedFile};
use outpost_store::engine::space;

use super::SliceId;

/// A slice on disk.
struct Stored {
    len: u64,
    /// CRC32C of its bytes, also in its file name.
    crc: u32,
    /// Its bytes were written, or read and checked, by this run.
    checked: AtomicBool,
}

/// Called with the version of a slice dropped for room ([`super::records`] lets its head go).
pub type OnEvicted = Box<dyn Fn(u64) + Send + Sync>;

pub struct DiskTier {
    dir: PathBuf,
    /// Slice → what is on disk; evicting an entry deletes its file.
    index: moka::future::Cache<SliceId, Arc<Stored>>,
    /// Free bytes a slice write must leave on the filesystem.
    keep_free: u64,
}

impl DiskTier {
    /// A tier of at most `capacity` bytes (less on a small filesystem, see the module doc)
    /// that leaves room for a spool of up to `spool_bytes`, cut in slices of `slice_bytes`.
    /// It keeps the slices on disk of the bodies `restored` names (version → body size) and
    /// returns the versions it kept slices of. `evictions` counts slices dropped for room,
    /// each also told to `on_evicted`.
    pub fn open(
        cache_dir: &Path,
        (capacity, spool_bytes, slice_bytes): (u64, u64, u64),
        restored: &HashMap<u64, u64>,
        evictions: prometheus_client::metrics::counter::Counter,
        on_evicted: OnEvicted,
    ) -> std::io::Result<(DiskTier, HashSet<u64>)> {
        let dir = cache_dir.join("slices");
        durable::create_dir_all(&dir)?;
        let kept = kept_slices(&dir, slice_bytes, restored)?;
        let kept_bytes: u64 = kept.iter().map(|(_, s)| s.len).sum();
        let free = space::available(&dir)?;
        let (capacity, keep_free) = Self::budget(capacity, spool_bytes, free + kept_bytes);
        tracing::info!(
            capacity,
            keep_free,
            free,
            kept = kept.len(),
            kept_bytes,
            "disk cache tier sized to its filesystem"
        );
        let files = dir.clone();
        let index = moka::future::Cache::builder()
            .max_capacity(capacity)
            .weigher(|_, s: &Arc<Stored>| u32::try_from(s.len).unwrap_or(u32::MAX))
            .eviction_listener(move |id: Arc<SliceId>, s: Arc<Stored>, cause| {
                // A replaced entry's file has just been rewritten under the same name.
                if cause != moka::notification::RemovalCause::Replaced {
                    let _ = std::fs::remove_file(slice_path(&files, &id, s.crc));
                }
                if cause == moka::notification::RemovalCause::Size {
                    evictions.inc();
                    on_evicted(id.version);
                }
            })
            .build();
        let versions = kept.iter().map(|(id, _)| id.version).collect();
        // Start-up only, before anything else uses the tier: nothing to wait for but moka.
        futures::executor::block_on(async {
            for (id, stored) in kept {
                index.insert(id, Arc::new(stored)).await;
            }
        });
        let tier = DiskTier {
            dir,
            index,
            keep_free,
        };
        Ok((tier, versions))
    }

    /// (capacity, keep_free) for a tier configured to `capacity` on a filesystem with `free`
    /// bytes: at most half of `free`, and slices are written only while a quarter of `free`
    /// (or the whole spool budget, if smaller) stays free.
    pub fn budget(capacity: u64, spool_bytes: u64, free: u64) -> (u64, u64) {
        (capacity.min(free / 2), spool_bytes.min(free / 4))
    }

    /// Up to `len` bytes of the slice from `offset`: a reader reads what it sends next, not
    /// the whole slice (a thousand readers of one large object would each read it all), but
    /// for the first read of a slice kept from an earlier run, which checks it whole.
    pub async fn get(&self, id: SliceId, offset: u64, len: usize) -> Option<Bytes> {
        let stored = self.index.get(&id).await?;
        let path = slice_path(&self.dir, &id, stored.crc);
        let checking = Arc::clone(&stored);
        // The file can vanish between the lookup and the read (evicted meanwhile): a miss.
        let read = tokio::task::spawn_blocking(move || -> std::io::Result<Option<Bytes>> {
            use std::io::{Read, Seek, SeekFrom};
            if !checking.checked.load(Ordering::Acquire) {
                let all = std::fs::read(&path)?;
                if all.len() as u64 != checking.len || crc32c(&all) != checking.crc {
                    return Ok(None);
                }
                checking.checked.store(true, Ordering::Release);
                let all = Bytes::from(all);
                let from = usize::try_from(offset).unwrap_or(usize::MAX).min(all.len());
                return Ok(Some(all.slice(from..all.len().min(from + len))));
            }
            let mut file = std::fs::File::open(path)?;
            file.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::with_capacity(len);
            file.take(len as u64).read_to_end(&mut buf)?;
            Ok(Some(Bytes::from(buf)))
        })
        .await
        .ok()?
        .ok()?;
        if read.is_none() {
            tracing::warn!(
                version = id.version,
                index = id.index,
                "disk cache: a kept slice does not match its checksum; dropped"
            );
            self.index.invalidate(&id).await;
        }
        read.filter(|b| !b.is_empty())
    }

    /// Stores the slice; false when it was not (no room on the filesystem, or a failed
    /// write), so the caller can keep it elsewhere.
    pub async fn insert(&self, id: SliceId, data: Bytes) -> bool {
        let dir = self.dir.clone();
        let len = data.len() as u64;
        let keep_free = self.keep_free;
        // Whole or not at all under its name (see the module doc).
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<Option<u32>> {
            if !space::has_room(&dir, len + keep_free) {
                return Ok(None);
            }
            let crc = crc32c(&data);
            let mut staged = StagedFile::create_in(&dir, 0o600)?;
            staged.write_all(&data)?;
            // The directory is not synced for each slice (a cost on every fill): a power cut
            // may lose a slice's name, and the slice is fetched again; never half its bytes.
            staged.rename_into(&slice_path(&dir, &id, crc))?;
            Ok(Some(crc))
        })
        .await;
        match written {
            Ok(Ok(Some(crc))) => {
                let checked = AtomicBool::new(true);
                let stored = Stored { len, crc, checked };
                self.index.insert(id, Arc::new(stored)).await;
                return true;
            }
            Ok(Ok(None)) => tracing::debug!("disk cache: no room left on its filesystem"),
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

/// The slices in `dir` worth keeping: of a body `restored` names, whole by their length (their
/// bytes are checked at first read). Everything else in `dir` is removed.
fn kept_slices(
    dir: &Path,
    slice_bytes: u64,
    restored: &HashMap<u64, u64>,
) -> std::io::Result<Vec<(SliceId, Stored)>> {
    let mut kept = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let slice = name.to_str().and_then(parse_name).and_then(|(id, crc)| {
            let size = *restored.get(&id.version)?;
            let start = id.index.checked_mul(slice_bytes).filter(|&s| s < size)?;
            let len = slice_bytes.min(size - start);
            let on_disk = entry.metadata().ok().filter(|m| m.is_file())?.len();
            let checked = AtomicBool::new(false);
            (on_disk == len).then_some((id, Stored { len, crc, checked }))
        });
        match slice {
            Some(slice) => kept.push(slice),
            None => {
                if let Err(e) = std::fs::remove_file(entry.path()) {
                    tracing::warn!(path = %entry.path().display(), error = %e, "disk cache: cannot remove a stray file");
                }
            }
        }
    }
    Ok(kept)
}

fn crc32c(data: &[u8]) -> u32 {
    let raw = checksum(ChecksumAlgorithm::Crc32c, data).raw;
    u32::from_be_bytes(raw.try_into().expect("a CRC32C is four bytes"))
}

fn slice_path(dir: &Path, id: &SliceId, crc: u32) -> PathBuf {
    dir.join(format!("{:016x}-{}-{crc:08x}", id.version, id.index))
}

/// A slice file's name (`slice_path`) → its slice and CRC; None for any other name.
fn parse_name(name: &str) -> Option<(SliceId, u32)> {
    let mut parts = name.split('-');
    let (version, index, crc) = (parts.next()?, parts.next()?, parts.next()?);
    let id = SliceId {
        version: u64::from_str_radix(version, 16).ok()?,
        index: index.parse().ok()?,
    };
    let crc = u32::from_str_radix(crc, 16).ok()?;
    // Only the very name the tier gives (no sign, no other width or case).
    (parts.next().is_none() && slice_path(Path::new(""), &id, crc).as_os_str() == name)
        .then_some((id, crc))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLICE: u64 = 64 * 1024;

    fn open(dir: &Path, restored: &HashMap<u64, u64>) -> (DiskTier, HashSet<u64>) {
        let counter = Default::default();
        DiskTier::open(
            dir,
            (1 << 30, 1 << 20, SLICE),
            restored,
            counter,
            Box::new(|_| {}),
        )
        .unwrap()
    }

    fn slice(version: u64, index: u64) -> SliceId {
        SliceId { version, index }
    }

    #[tokio::test]
    async fn slices_of_restored_bodies_survive_a_restart_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let (tier, _) = open(dir.path(), &HashMap::new());
        let whole = Bytes::from(vec![7u8; SLICE as usize]);
        let tail = Bytes::from_static(b"tail");
        assert!(tier.insert(slice(1, 0), whole.clone()).await);
        assert!(tier.insert(slice(1, 1), tail.clone()).await);
        assert!(tier.insert(slice(2, 0), whole.clone()).await);
        assert!(tier.insert(slice(3, 0), whole.clone()).await);
        drop(tier);
        let slices = dir.path().join("slices");
        let path = |id: SliceId, data: &[u8]| slice_path(&slices, &id, crc32c(data));
        // Version 3 torn short; strays beside.
        std::fs::write(path(slice(3, 0), &whole), &whole[..100]).unwrap();
        std::fs::write(slices.join(".x1y2.tmp"), b"half").unwrap();
        std::fs::write(slices.join("notes"), b"x").unwrap();
        // 1 is a body of one slice and four bytes; 3's record says one slice.
        let restored = HashMap::from([(1, SLICE + 4), (3, SLICE)]);
        let (tier, kept) = open(dir.path(), &restored);
        assert_eq!(kept, HashSet::from([1]));
        assert_eq!(
            tier.get(slice(1, 0), 10, 5).await.unwrap(),
            whole.slice(10..15)
        );
        assert_eq!(tier.get(slice(1, 1), 0, 100).await.unwrap(), tail);
        assert!(
            tier.get(slice(2, 0), 0, 1).await.is_none(),
            "no record: gone"
        );
        assert!(tier.get(slice(3, 0), 0, 1).await.is_none(), "torn: gone");
        let mut left: Vec<_> = std::fs::read_dir(&slices)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        left.sort();
        let mut want = vec![path(slice(1, 0), &whole), path(slice(1, 1), &tail)];
        want.sort();
        assert_eq!(left, want);
    }

    #[tokio::test]
    async fn a_kept_slice_damaged_on_disk_is_a_miss_never_an_answer() {
        let dir = tempfile::tempdir().unwrap();
        let (tier, _) = open(dir.path(), &HashMap::new());
        let data = Bytes::from(vec![1u8; SLICE as usize]);
        assert!(tier.insert(slice(1, 0), data.clone()).await);
        drop(tier);
        let file = slice_path(&dir.path().join("slices"), &slice(1, 0), crc32c(&data));
        // Same length, other bytes: only the checksum tells.
        std::fs::write(&file, vec![2u8; SLICE as usize]).unwrap();
        let (tier, kept) = open(dir.path(), &HashMap::from([(1, SLICE)]));
        assert_eq!(kept, HashSet::from([1]));
        assert!(tier.get(slice(1, 0), 0, 10).await.is_none());
        tier.index.run_pending_tasks().await;
        assert!(!file.exists(), "the damaged file goes");
        assert!(!tier.contains(slice(1, 0)));
    }

    #[test]
    fn slice_names_are_only_those_the_tier_gives() {
        let id = slice(0xabc, 3);
        let name = slice_path(Path::new(""), &id, 0xdead_beef);
        assert_eq!(name.to_str(), Some("0000000000000abc-3-deadbeef"));
        assert_eq!(
            parse_name("0000000000000abc-3-deadbeef"),
            Some((id, 0xdead_beef))
        );
        for bad in [
            "0000000000000abc-3",
            "0000000000000abc-+3-deadbeef",
            "0000000000000ABC-3-deadbeef",
            "abc-3-deadbeef",
            "0000000000000abc-3-deadbeef-1",
            ".0000000000000abc-3-deadbeef.tmp",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

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
