//! What lets the disk tier survive a restart: the head of every response whose body is on
//! disk, and where each followed origin's change feed stood, kept beside the slices.
//!
//! ```text
//!   <cache_dir>/heads/<version>        one JSON record per disk-tier entry (its cache key
//!                                      and head), written whole or not at all (`durable`)
//!   <cache_dir>/slices/...             the bodies (disk.rs)
//!   <cache_dir>/feed/<origin>.json     a followed origin's store id, last applied sequence
//!                                      and the time before which its entries must be
//!                                      revalidated (feed.rs)
//! ```
//!
//! The rules that keep a restarted edge from serving what changed while it ran:
//! - A record goes as soon as its entry does (an event of the feed, a purge, a newer version):
//!   [`Records::forget`] has removed the files when it returns, so before the follower reads
//!   its next line; and a feed position is saved only after the heads directory is synced.
//!   A saved position thus never vouches for a record that an event up to it dropped.
//!   Replaying events after a saved position is harmless: an event drops only what is older.
//! - A record is staged, then committed under the lock [`Records::forget`] takes, and only
//!   if its entry is still current: in the memory tier, no change of its object told by the
//!   feed since, no purge since it was stored (the cache drops what an event names before it
//!   forgets the records). A fill that raced a change leaves nothing behind.
//! - At start, a record that does not parse, names another version than its file, was cut
//!   in slices of another size, or has no slice left on disk goes, slices with it; of two
//!   records of one key the older goes.
//!
//! The slices of a forgotten entry are left to the disk tier's eviction, as in memory; a
//! restart removes them (they belong to no record).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderName, HeaderValue, StatusCode};
use outpost_store::engine::durable::{self, StagedFile};
use serde::{Deserialize, Serialize};

use super::policy::Freshness;
use super::{Head, key};

/// Records and feed positions are read at start up to this size; anything larger is garbage.
const MAX_RECORD: u64 = 1 << 20;
const FILE_MODE: u32 = 0o600;

/// A record held: where its entry is, in the order [`Records::forget`] looks them up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    bucket: String,
    object: String,
    cache_key: String,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    version: u64,
    seq: u64,
    received: SystemTime,
}

impl Held {
    fn of(head: &Head) -> Held {
        Held {
            version: head.version,
            seq: head.seq(),
            received: head.freshness.received,
        }
    }
}

/// The heads of the disk tier's entries, on disk (see the module documentation).
pub struct Records {
    heads: PathBuf,
    feed: PathBuf,
    slice_bytes: u64,
    /// Held briefly, never across I/O but the unlinks of what it drops.
    held: std::sync::Mutex<BTreeMap<Place, Held>>,
    /// Versions the disk tier dropped slices of for room: their records go at the next write
    /// (an entry partly evicted is not worth restoring).
    evicted: Arc<std::sync::Mutex<HashSet<u64>>>,
}

/// A followed origin's place in its change feed, as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedPosition {
    pub url: String,
    pub store_id: String,
    /// The last sequence number applied.
    pub last: u64,
    /// Entries from this origin received before this time (ms since the epoch) must be
    /// revalidated before their next use (0: none): a resync outlives a restart.
    #[serde(default)]
    pub revalidate_before_ms: u64,
}

/// A head as a record holds it.
#[derive(Serialize, Deserialize)]
struct Record {
    key: String,
    status: u16,
    headers: Vec<(String, String)>,
    size: u64,
    version: u64,
    slice_bytes: u64,
    received_ms: u64,
    initial_age_ms: u64,
    ttl_ms: u64,
    stale_while_revalidate_ms: u64,
    stale_if_error_ms: u64,
}

impl Records {
    /// Reads the records under `cache_dir` of bodies cut in slices of `slice_bytes`; returns
    /// them (cache key and head, one per key, the newest) for the disk tier to find their
    /// slices, then [`Records::keep`] to say which to keep. Removes what is not a record.
    pub fn open(
        cache_dir: &Path,
        slice_bytes: u64,
    ) -> std::io::Result<(Records, Vec<(String, Head)>)> {
        let heads = cache_dir.join("heads");
        let feed = cache_dir.join("feed");
        durable::create_dir_all(&heads)?;
        durable::create_dir_all(&feed)?;
        let mut newest: HashMap<String, Head> = HashMap::new();
        for entry in std::fs::read_dir(&heads)? {
            let path = entry?.path();
            let read = read_small(&path).and_then(|text| {
                let record: Record = serde_json::from_slice(&text).ok()?;
                let named = path.file_name()? == version_name(record.version).as_str();
                let cut = record.slice_bytes == slice_bytes && record.size > slice_bytes;
                (named && cut && key::parts(&record.key).is_some()).then_some(())?;
                Some((record.key.clone(), head_of(&record)?))
            });
            let Some((key, head)) = read else {
                remove(&path);
                continue;
            };
            match newest.get(&key) {
                Some(other) if other.freshness.received >= head.freshness.received => {
                    remove(&path);
                }
                _ => {
                    if let Some(older) = newest.insert(key, head) {
                        remove(&heads.join(version_name(older.version)));
                    }
                }
            }
        }
        let records = Records {
            heads,
            feed,
            slice_bytes,
            held: Default::default(),
            evicted: Default::default(),
        };
        Ok((records, newest.into_iter().collect()))
    }

    /// Keeps the records of `read` (from [`Records::open`]) whose versions are in `with_slices`
    /// and removes the others; returns the kept ones.
    pub fn keep(
        &mut self,
        read: Vec<(String, Head)>,
        with_slices: &HashSet<u64>,
    ) -> Vec<(String, Head)> {
        let mut kept = Vec::with_capacity(with_slices.len());
        for (key, head) in read {
            if !with_slices.contains(&head.version) {
                remove(&self.heads.join(version_name(head.version)));
                continue;
            }
            let place = place(&key).expect("records read have parts");
            let held = self.held.get_mut().expect("records lock");
            held.insert(place, Held::of(&head));
            kept.push((key, head));
        }
        kept
    }

    /// Writes the record of `head` under `key` (replacing the key's record of an older
    /// head) if `current` (asked under the lock [`Records::forget`] takes) says the entry
    /// still is. Blocking I/O: run it on the blocking pool.
    pub fn write(&self, key: &str, head: &Head, current: impl FnOnce() -> bool) {
        let Some(place) = place(key) else { return };
        let Some(text) = record_of(key, head, self.slice_bytes) else {
            return; // a header value that is not text: not kept across a restart
        };
        // Written and synced before the lock, renamed into place under it, its name synced
        // after: the lock is held for a rename.
        let staged = StagedFile::create_in(&self.heads, FILE_MODE).and_then(|mut staged| {
            staged.write_all(&text)?;
            staged.file().sync_all()?;
            Ok(staged)
        });
        let staged = match staged {
            Ok(staged) => staged,
            Err(e) => return tracing::warn!(error = %e, "disk cache: writing a head failed"),
        };
        let mut held = self.held.lock().expect("records lock");
        self.drop_evicted(&mut held);
        let new = Held::of(head);
        match held.get(&place).copied() {
            // A later head holds the key (of this body or another).
            Some(h) if h.received > new.received => {}
            _ if !current() => {}
            old => {
                // Named under the lock: a forget either finds it or ran before `current`
                // was asked (and then the entry is not current).
                let path = self.heads.join(version_name(new.version));
                if let Err(e) = staged.rename_into(&path) {
                    return tracing::warn!(error = %e, "disk cache: writing a head failed");
                }
                held.insert(place, new);
                if let Some(old) = old.filter(|h| h.version != new.version) {
                    unlink(&self.heads, [old.version]);
                }
                drop(held);
                // A name lost to a power cut is a record lost, never one kept too long: the
                // unlinks of forgotten ones are synced before a feed position is saved.
                let _ = durable::sync_dir(&self.heads);
            }
        }
    }

    /// Removes the records whose entries are `dropped` (given the cache key, the head's
    /// version and its change feed sequence). Only the object (`bucket`, `object`)'s
    /// records are looked at, if given (directly); every record otherwise.
    pub fn forget(&self, object: Option<(&str, &str)>, dropped: impl Fn(&str, u64, u64) -> bool) {
        let mut held = self.held.lock().expect("records lock");
        let matched =
            |(p, h): (&Place, &Held)| dropped(&p.cache_key, h.version, h.seq).then(|| p.clone());
        let places: Vec<Place> = match object {
            Some((bucket, object)) => {
                let from = Place {
                    bucket: bucket.to_owned(),
                    object: object.to_owned(),
                    cache_key: String::new(),
                };
                held.range(from..)
                    .take_while(|(p, _)| p.bucket == bucket && p.object == object)
                    .filter_map(matched)
                    .collect()
            }
            None => held.iter().filter_map(matched).collect(),
        };
        let gone: Vec<u64> = places
            .iter()
            .filter_map(|p| held.remove(p))
            .map(|h| h.version)
            .collect();
        unlink(&self.heads, gone);
    }

    /// What the disk tier calls with the version of a slice it dropped for room (from its
    /// eviction listener: the records' own lock is not waited for there).
    pub fn eviction_sink(&self) -> impl Fn(u64) + Send + Sync + 'static {
        let evicted = Arc::clone(&self.evicted);
        move |version| {
            evicted.lock().expect("evicted lock").insert(version);
        }
    }

    fn drop_evicted(&self, held: &mut BTreeMap<Place, Held>) {
        let evicted = std::mem::take(&mut *self.evicted.lock().expect("evicted lock"));
        if evicted.is_empty() {
            return;
        }
        held.retain(|_, h| !evicted.contains(&h.version));
        unlink(&self.heads, evicted);
    }

    /// The saved position of the origin at `url` in its change feed, if any (and readable).
    pub fn feed_position(&self, url: &str) -> Option<FeedPosition> {
        let path = self.feed.join(position_name(url));
        let saved: FeedPosition = serde_json::from_slice(&read_small(&path)?).ok()?;
        (saved.url == url).then_some(saved)
    }

    /// Saves `position` (see the module documentation for why the heads are synced first);
    /// false if it could not (logged).
    pub async fn save_feed_position(&self, position: &FeedPosition) -> bool {
        let text = serde_json::to_vec(position).expect("a position always serialises");
        let (heads, path) = (
            self.heads.clone(),
            self.feed.join(position_name(&position.url)),
        );
        let saved = tokio::task::spawn_blocking(move || {
            durable::sync_dir(&heads)?;
            durable::write_replace(&path, &text, FILE_MODE)
        })
        .await;
        let saved = matches!(saved, Ok(Ok(())));
        if !saved {
            tracing::warn!(url = %position.url, "disk cache: saving a feed position failed");
        }
        saved
    }
}

fn place(cache_key: &str) -> Option<Place> {
    let (_, bucket, object) = key::parts(cache_key)?;
    Some(Place {
        bucket: bucket.to_owned(),
        object: object.to_owned(),
        cache_key: cache_key.to_owned(),
    })
}

fn version_name(version: u64) -> String {
    format!("{version:016x}")
}

/// A file name for an origin URL: its letters and digits, and a hash of all of it.
fn position_name(url: &str) -> String {
    use sha2::Digest;
    let readable: String = url
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(64)
        .collect();
    let hash = hex::encode(&sha2::Sha256::digest(url.as_bytes())[..8]);
    format!("{readable}-{hash}.json")
}

fn read_small(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut text = Vec::new();
    let file = std::fs::File::open(path).ok()?;
    file.take(MAX_RECORD + 1).read_to_end(&mut text).ok()?;
    (text.len() as u64 <= MAX_RECORD).then_some(text)
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(path = %path.display(), error = %e, "disk cache: cannot remove a stray file");
    }
}

/// Removes the records of `versions` at once (a few small unlinks; see the module doc for
/// why not later).
fn unlink(heads: &Path, versions: impl IntoIterator<Item = u64>) {
    for version in versions {
        let _ = std::fs::remove_file(heads.join(version_name(version)));
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn record_of(key: &str, head: &Head, slice_bytes: u64) -> Option<Vec<u8>> {
    let f = &head.freshness;
    let headers = head
        .headers
        .iter()
        .map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect::<Option<_>>()?;
    let record = Record {
        key: key.to_owned(),
        status: head.status.as_u16(),
        headers,
        size: head.size,
        version: head.version,
        slice_bytes,
        received_ms: ms(f
            .received
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()),
        initial_age_ms: ms(f.initial_age),
        ttl_ms: ms(f.ttl),
        stale_while_revalidate_ms: ms(f.stale_while_revalidate),
        stale_if_error_ms: ms(f.stale_if_error),
    };
    Some(serde_json::to_vec(&record).expect("a record always serialises"))
}

fn head_of(r: &Record) -> Option<Head> {
    let mut headers = http::HeaderMap::with_capacity(r.headers.len());
    for (name, value) in &r.headers {
        headers.append(
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_str(value).ok()?,
        );
    }
    let at = |ms: u64| Duration::from_millis(ms);
    // A clock that went back (or a test clock moved on) must not make an entry younger than
    // it is: received in the future counts as received now.
    let received = (SystemTime::UNIX_EPOCH + at(r.received_ms)).min(SystemTime::now());
    Some(Head {
        status: StatusCode::from_u16(r.status).ok()?,
        headers,
        size: r.size,
        freshness: Freshness {
            received,
            initial_age: at(r.initial_age_ms),
            ttl: at(r.ttl_ms),
            stale_while_revalidate: at(r.stale_while_revalidate_ms),
            stale_if_error: at(r.stale_if_error_ms),
        },
        version: r.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SLICE: u64 = 64 * 1024;

    fn head(version: u64, seq: u64, received: SystemTime) -> Head {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::ETAG, "\"abc\"".parse().unwrap());
        headers.insert("x-outpost-seq", seq.to_string().parse().unwrap());
        headers.append("x-amz-meta-a", "one".parse().unwrap());
        headers.append("x-amz-meta-a", "two".parse().unwrap());
        Head {
            status: StatusCode::OK,
            headers,
            size: 3 * SLICE + 1,
            freshness: Freshness {
                received,
                initial_age: Duration::from_secs(5),
                ttl: Duration::from_secs(86400),
                stale_while_revalidate: Duration::ZERO,
                stale_if_error: Duration::from_secs(60),
            },
            version,
        }
    }

    fn key(object: &str) -> String {
        key::cache_key("s3", "b", object, None, &[])
    }

    fn names(dir: &Path) -> std::collections::BTreeSet<String> {
        let files = std::fs::read_dir(dir).unwrap();
        files
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    }

    /// Opens the records of `dir` as a restart would, every record having its slices.
    fn reopen(dir: &Path) -> Vec<(String, Head)> {
        let (mut records, read) = Records::open(dir, SLICE).unwrap();
        let all = read.iter().map(|(_, h)| h.version).collect();
        records.keep(read, &all)
    }

    #[tokio::test]
    async fn a_head_written_is_read_back_whole_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (records, _) = Records::open(dir.path(), SLICE).unwrap();
        let received = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let written = head(7, 3, received);
        records.write(&key("k"), &written, || true);
        drop(records);
        let restored = reopen(dir.path());
        assert_eq!(restored.len(), 1);
        let (k, h) = &restored[0];
        assert_eq!(k, &key("k"));
        assert_eq!(
            (h.status, h.size, h.version),
            (written.status, written.size, 7)
        );
        assert_eq!(
            h.headers, written.headers,
            "every header, repeated ones too"
        );
        assert_eq!(h.freshness, written.freshness);
        assert_eq!(h.seq(), 3);
    }

    #[tokio::test]
    async fn a_record_whose_entry_went_meanwhile_or_was_forgotten_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (records, _) = Records::open(dir.path(), SLICE).unwrap();
        let now = SystemTime::now();
        // The cache dropped the entry while its record was being written.
        records.write(&key("raced"), &head(1, 1, now), || false);
        records.write(&key("changed"), &head(2, 4, now), || true);
        records.write(&key("newer"), &head(3, 9, now), || true);
        records.write(&key("purged"), &head(4, 1, now), || true);
        // An event of commit 5 drops what is older.
        records.forget(Some(("b", "changed")), |_, _, seq| seq < 5);
        records.forget(Some(("b", "newer")), |_, _, seq| seq < 5);
        records.forget(None, |k, _, _| k == key("purged"));
        let heads = dir.path().join("heads");
        assert_eq!(names(&heads), [version_name(3)].into());
        // A newer version of a key replaces the older's record; an older one does not.
        records.write(
            &key("newer"),
            &head(5, 10, now + Duration::from_secs(1)),
            || true,
        );
        records.write(
            &key("newer"),
            &head(6, 8, now - Duration::from_secs(1)),
            || true,
        );
        assert_eq!(names(&heads), [version_name(5)].into());
        // A version whose slices were evicted for room goes at the next write.
        records.eviction_sink()(5);
        records.write(&key("other"), &head(8, 1, now), || true);
        assert_eq!(names(&heads), [version_name(8)].into());
        drop(records);
        let restored = reopen(dir.path());
        assert_eq!(restored.len(), 1);
        assert_eq!(restored[0].1.version, 8);
    }

    #[tokio::test]
    async fn garbage_records_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let (records, _) = Records::open(dir.path(), SLICE).unwrap();
        let now = SystemTime::now();
        records.write(&key("good"), &head(1, 1, now), || true);
        records.write(&key("torn"), &head(2, 1, now), || true);
        records.write(&key("renamed"), &head(3, 1, now), || true);
        records.write(&key("no slices"), &head(4, 1, now), || true);
        drop(records);
        let heads = dir.path().join("heads");
        let torn = heads.join(version_name(2));
        let text = std::fs::read(&torn).unwrap();
        std::fs::write(&torn, &text[..text.len() / 2]).unwrap();
        std::fs::rename(heads.join(version_name(3)), heads.join(version_name(33))).unwrap();
        std::fs::write(heads.join("notes.txt"), b"hello").unwrap();
        std::fs::write(heads.join(".a1b2.tmp"), b"{\"half\":").unwrap();
        std::fs::write(heads.join(version_name(9)), vec![b'{'; 3 << 20]).unwrap();
        let (mut records, read) = Records::open(dir.path(), SLICE).unwrap();
        assert_eq!(read.len(), 2, "good and no slices parse");
        let kept = records.keep(read, &HashSet::from([1]));
        assert_eq!(kept.len(), 1);
        assert_eq!(names(&heads), [version_name(1)].into());
        // Cut in slices of another size: nothing of it is kept.
        drop(records);
        let (_, read) = Records::open(dir.path(), 2 * SLICE).unwrap();
        assert!(read.is_empty());
        assert!(names(&heads).is_empty());
    }

    #[tokio::test]
    async fn a_feed_position_is_saved_and_read_back_for_its_origin_only() {
        let dir = tempfile::tempdir().unwrap();
        let (records, _) = Records::open(dir.path(), SLICE).unwrap();
        let url = "http://127.0.0.1:9000";
        assert_eq!(records.feed_position(url), None);
        let position = FeedPosition {
            url: url.into(),
            store_id: "s1".into(),
            last: 42,
            revalidate_before_ms: 7,
        };
        records.save_feed_position(&position).await;
        assert_eq!(records.feed_position(url), Some(position));
        assert_eq!(records.feed_position("http://127.0.0.1:9001"), None);
        let file = dir.path().join("feed").join(position_name(url));
        std::fs::write(&file, b"{\"url\":").unwrap();
        assert_eq!(records.feed_position(url), None, "garbage is no position");
    }
}
