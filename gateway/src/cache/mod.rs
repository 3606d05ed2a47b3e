//! The edge cache: response heads and body slices in two tiers, filled by collapsed origin
//! requests.
//!
//! A cached response is a [`Head`] (status, headers, size, freshness) under its cache key, and
//! its body cut into fixed-size slices keyed by the head's `version`. Small bodies (one slice)
//! live in memory; larger ones on disk, slice by slice, so a ranged read of a large object
//! needs only the slices it covers. A refreshed object gets a new version, so slices of two
//! versions never mix.
//!
//! - [`object`]: what a request looks up (cache key + the origin request that fills it).
//! - [`outcome`]: what the cache did for a request, and why an answer was not stored.
//! - [`policy`]: pure freshness rules (time is a parameter).
//! - [`key`]: cache keys.
//! - [`disk`]: the disk tier. The memory tier is two moka caches right here.
//! - [`records`]: the heads of the disk tier's entries and the change feeds' positions, kept
//!   on disk so the disk tier survives a restart (the memory tier starts empty).
//! - [`collapse`]: fills in flight; concurrent misses share one origin request.
//! - [`read`]: serving a byte range from slices and fills.

pub mod collapse;
pub mod disk;
pub mod key;
pub mod object;
pub mod outcome;
pub mod policy;
pub mod read;
pub mod records;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::compress::Encoding;
use crate::config::EdgeConfig;
use crate::origin::OriginGroup;
use policy::Freshness;

/// One body slice of one version of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SliceId {
    pub version: u64,
    pub index: u64,
}

/// A stored response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    /// End-to-end headers as the origin sent them, without framing (`content-length`,
    /// `content-range`, `transfer-encoding`).
    pub headers: HeaderMap,
    /// Length of the full body.
    pub size: u64,
    pub freshness: Freshness,
    /// Names this body: slices are stored under it.
    pub version: u64,
}

impl Head {
    pub fn etag(&self) -> Option<&str> {
        self.headers.get(http::header::ETAG)?.to_str().ok()
    }

    /// The change feed's number of the commit that wrote this version, as the store said it
    /// (0: not said, an origin that is not an Outpost store).
    pub fn seq(&self) -> u64 {
        self.headers
            .get(outpost_store::s3::headers::SEQ_HEADER)
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0)
    }
}

/// The edge's notion of now. Cache logic reads time only from here, so end-to-end tests can
/// move it forward (`test_clock`) instead of sleeping through TTLs.
#[derive(Default)]
pub struct Clock {
    offset_secs: std::sync::atomic::AtomicU64,
}

impl Clock {
    pub fn now(&self) -> std::time::SystemTime {
        let offset = self.offset_secs.load(std::sync::atomic::Ordering::Relaxed);
        std::time::SystemTime::now() + std::time::Duration::from_secs(offset)
    }

    pub fn advance(&self, secs: u64) {
        self.offset_secs
            .fetch_add(secs, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Objects lately changed remembered at most ([`Cache::supersede`]), and for how long: longer
/// than any fill runs.
const SUPERSEDED_KEYS: u64 = 100_000;
const SUPERSEDED_FOR: std::time::Duration = std::time::Duration::from_secs(600);

pub struct Cache {
    pub clock: Clock,
    heads: moka::future::Cache<String, Arc<Head>>,
    memory: moka::future::Cache<SliceId, Bytes>,
    /// Compressed representations, by body version and encoding.
    variants: moka::future::Cache<(u64, Encoding), Bytes>,
    disk: disk::DiskTier,
    pub records: Arc<records::Records>,
    /// It started with entries kept from an earlier run.
    restored: bool,
    pub slice_bytes: u64,
    pub fills: collapse::Fills,
    /// Bodies dropped for room, by `tier` (`memory`, `disk`): one metric family.
    pub evictions: Family<Vec<(String, String)>, Counter>,
    /// Some origin group has entries marked for revalidation ([`Cache::mark_for_revalidation`]):
    /// until then a hit does not look.
    marked: std::sync::atomic::AtomicBool,
    /// The change feed's last number for a `bucket\nkey` lately changed at its store: a head
    /// of an older version (its `x-outpost-seq` below) is no longer stored, so a fill that
    /// raced the change cannot bring the old version back ([`Cache::supersede`]). Read
    /// without waiting, under the disk records' lock too.
    superseded: moka::sync::Cache<String, u64>,
    /// Purges so far: a head stored while one ran keeps no record on disk (the purge may
    /// have missed it; purges are rare).
    purges: Arc<std::sync::atomic::AtomicU64>,
}

impl Cache {
    pub fn open(config: &EdgeConfig) -> std::io::Result<Cache> {
        // Heads are small; a sixteenth of the memory budget holds a few hundred thousand.
        // Compressed variants get an eighth, bodies the rest.
        let head_budget = config.memory_cache_bytes / 16;
        let evictions = Family::<Vec<(String, String)>, Counter>::default();
        let tier = |name: &str| {
            evictions
                .get_or_create(&vec![("tier".to_owned(), name.to_owned())])
                .clone()
        };
        let (memory_evictions, disk_evictions) = (tier("memory"), tier("disk"));
        let variant_budget = config.memory_cache_bytes / 8;
        // The disk tier keeps the slices of the heads kept on disk, and they the heads of
        // the slices it kept.
        let (mut records, read) = records::Records::open(&config.cache_dir, config.slice_bytes)?;
        let sizes = read.iter().map(|(_, h)| (h.version, h.size)).collect();
        let evicted = records.eviction_sink();
        let (disk, with_slices) = disk::DiskTier::open(
            &config.cache_dir,
            (
                config.disk_cache_bytes,
                config.spool_bytes,
                config.slice_bytes,
            ),
            &sizes,
            disk_evictions,
            Box::new(evicted),
        )?;
        let restored = records.keep(read, &with_slices);
        let heads = moka::future::Cache::builder()
            .max_capacity(head_budget)
            .weigher(|k: &String, h: &Arc<Head>| head_weight(k, h))
            .support_invalidation_closures()
            .build();
        let restored_any = !restored.is_empty();
        if restored_any {
            tracing::info!(entries = restored.len(), "disk cache restored");
        }
        // Start-up only, before anything else uses the cache: nothing to wait for but moka.
        futures::executor::block_on(async {
            for (key, head) in restored {
                heads.insert(key, Arc::new(head)).await;
            }
        });
        Ok(Cache {
            clock: Clock::default(),
            heads,
            memory: moka::future::Cache::builder()
                .max_capacity(config.memory_cache_bytes - head_budget - variant_budget)
                .weigher(|_, b: &Bytes| u32::try_from(b.len()).unwrap_or(u32::MAX))
                .eviction_listener({
                    move |_, _, cause| {
                        if cause == moka::notification::RemovalCause::Size {
                            memory_evictions.inc();
                        }
                    }
                })
                .build(),
            variants: moka::future::Cache::builder()
                .max_capacity(variant_budget)
                .weigher(|_, b: &Bytes| u32::try_from(b.len()).unwrap_or(u32::MAX))
                .build(),
            disk,
            records: Arc::new(records),
            restored: restored_any,
            evictions,
            marked: Default::default(),
            superseded: moka::sync::Cache::builder()
                .max_capacity(SUPERSEDED_KEYS)
                .time_to_live(SUPERSEDED_FOR)
                .build(),
            purges: Default::default(),
            slice_bytes: config.slice_bytes,
            // A healthy fill goes no longer without news than its origins' timeouts allow.
            fills: collapse::Fills::new(std::time::Duration::from_secs(
                (config.origin_timeout_secs + config.origin_response_timeout_secs)
                    * config.origins.len().max(1) as u64
                    + config.origin_idle_timeout_secs,
            )),
        })
    }

    /// Whether it started with entries kept from an earlier run (`feed::start` then lets the
    /// followers catch up before the edge serves).
    pub fn restored(&self) -> bool {
        self.restored
    }

    pub async fn head(&self, key: &str) -> Option<Arc<Head>> {
        self.heads.get(key).await
    }

    pub async fn put_head(&self, key: &str, head: Arc<Head>) {
        let object = key::parts(key).map(|(_, bucket, object)| format!("{bucket}\n{object}"));
        if superseded(&self.superseded, object.as_deref(), &head) {
            return; // fetched before a change the feed told of
        }
        let purges = self.purges.load(std::sync::atomic::Ordering::Acquire);
        self.heads.insert(key.to_owned(), Arc::clone(&head)).await;
        if head.size > self.slice_bytes {
            // Its body goes to disk: so does its head, to outlive a restart, unless the
            // entry went meanwhile (its record would bring it back).
            let (records, heads, key) = (
                Arc::clone(&self.records),
                self.heads.clone(),
                key.to_owned(),
            );
            let (superseded_keys, purged) = (self.superseded.clone(), Arc::clone(&self.purges));
            tokio::task::spawn_blocking(move || {
                let current = || {
                    heads.contains_key(&key)
                        && !superseded(&superseded_keys, object.as_deref(), &head)
                        && purged.load(std::sync::atomic::Ordering::Acquire) == purges
                };
                records.write(&key, &head, current);
            });
        }
    }

    /// The object (`bucket`, `key`) changed at its store in the change feed's commit `seq`:
    /// every entry of it from before that commit goes (every face, namespace and variant),
    /// and none from before is stored any more; entries already as new stay (written through
    /// by this edge's own upload, say).
    pub async fn supersede(&self, bucket: &str, key: &str, seq: u64) {
        let name = format!("{bucket}\n{key}");
        let known = self.superseded.get(&name).unwrap_or(0);
        self.superseded.insert(name, known.max(seq));
        let (b, o) = (bucket.to_owned(), key.to_owned());
        self.heads
            .invalidate_entries_if(move |k, head| {
                head.seq() < seq && key::parts(k).is_some_and(|(_, kb, ko)| kb == b && ko == o)
            })
            .expect("invalidation closures are enabled");
        self.records
            .forget(Some((bucket, key)), |_, _, held| held < seq);
    }

    pub async fn remove_head(&self, key: &str) {
        self.heads.invalidate(key).await;
        if let Some((_, bucket, object)) = key::parts(key) {
            self.records
                .forget(Some((bucket, object)), |k, _, _| k == key);
        }
    }

    /// Up to `len` bytes from `offset` within a slice of a body of `size` bytes, from
    /// whichever tier holds it (see [`Cache::put_slice`]).
    pub async fn slice_part(
        &self,
        id: SliceId,
        size: u64,
        offset: u64,
        len: usize,
    ) -> Option<Bytes> {
        if size > self.slice_bytes
            && let Some(data) = self.disk.get(id, offset, len).await
        {
            return Some(data);
        }
        let data = self.memory.get(&id).await?;
        let from = usize::try_from(offset).ok().filter(|&f| f < data.len())?;
        Some(data.slice(from..data.len().min(from + len)))
    }

    /// The whole body of a one-slice (memory tier) response, if held.
    pub async fn whole_in_memory(&self, head: &Head) -> Option<Bytes> {
        if head.size > self.slice_bytes {
            return None;
        }
        let id = SliceId {
            version: head.version,
            index: 0,
        };
        self.memory
            .get(&id)
            .await
            .filter(|b| b.len() as u64 == head.size)
    }

    pub fn has_slice(&self, id: SliceId, size: u64) -> bool {
        (size > self.slice_bytes && self.disk.contains(id)) || self.memory.contains_key(&id)
    }

    /// Slices of small bodies go to memory, of large ones to disk. A slice the disk has no
    /// room for goes to memory too (bounded, least recently used out first): readers behind
    /// the fill that cut it then still find it instead of refetching slice after slice.
    pub async fn put_slice(&self, id: SliceId, size: u64, data: Bytes) {
        if size > self.slice_bytes && self.disk.insert(id, data.clone()).await {
            return;
        }
        self.memory.insert(id, data).await;
    }

    pub async fn variant(&self, version: u64, encoding: Encoding) -> Option<Bytes> {
        self.variants.get(&(version, encoding)).await
    }

    pub async fn put_variant(&self, version: u64, encoding: Encoding, data: Bytes) {
        self.variants.insert((version, encoding), data).await;
    }

    /// Drops every entry whose `bucket/key` matches one of `paths` (`prefix*` wildcards),
    /// and detaches matching fills in flight so later requests start afresh.
    pub fn invalidate(&self, paths: &[String]) {
        let paths = paths.to_vec();
        self.purge(move |_, b, o| path_matches(&paths, b, o));
    }

    /// Drops every entry whose (namespace, bucket, key) `matches` (every variant of it:
    /// its slices and compressed bodies belong to its head's version, unreachable once the
    /// head is gone), and detaches matching fills in flight so none stores what it fetched.
    pub fn purge(&self, matches: impl Fn(&str, &str, &str) -> bool + Send + Sync + 'static) {
        self.purges
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let matches = Arc::new(matches);
        let matcher = Arc::clone(&matches);
        self.heads
            .invalidate_entries_if(move |k, _| {
                key::parts(k).is_some_and(|(n, b, o)| matcher(n, b, o))
            })
            .expect("invalidation closures are enabled");
        self.records.forget(None, |k, _, _| {
            key::parts(k).is_some_and(|(n, b, o)| matches(n, b, o))
        });
        self.fills
            .invalidate(|k| key::parts(k).is_some_and(|(n, b, o)| matches(n, b, o)));
    }

    /// Marks every entry from `origins` stored until now as needing revalidation before its
    /// next use (a 304 keeps its body): what an edge does when it missed changes.
    pub fn mark_for_revalidation(&self, origins: &OriginGroup) {
        self.mark_received_before(origins, self.clock.now());
    }

    /// Marks every entry from `origins` received before `at` as needing revalidation (a
    /// mark made before a restart: `feed::start`).
    pub fn mark_received_before(&self, origins: &OriginGroup, at: std::time::SystemTime) {
        origins.revalidate_before(at);
        self.marked
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether `head` was marked ([`Cache::mark_for_revalidation`]) for the group `origins`,
    /// asked only once some group was.
    pub fn revalidation_marked(&self, head: &Head, origins: &OriginGroup) -> bool {
        self.marked.load(std::sync::atomic::Ordering::Acquire)
            && origins.must_revalidate(head.freshness.received)
    }

    /// (entries, bytes) per tier, for metrics.
    pub fn sizes(&self) -> [(u64, u64); 3] {
        [
            (self.heads.entry_count(), self.heads.weighted_size()),
            (self.memory.entry_count(), self.memory.weighted_size()),
            (self.disk.entry_count(), self.disk.weighted_size()),
        ]
    }
}

/// Whether `head` of `object` (`bucket\nkey`) is older than a change the feed told of.
fn superseded(known: &moka::sync::Cache<String, u64>, object: Option<&str>, head: &Head) -> bool {
    object
        .and_then(|o| known.get(o))
        .is_some_and(|seq| head.seq() < seq)
}

fn head_weight(key: &str, head: &Head) -> u32 {
    let headers: usize = head
        .headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    u32::try_from(key.len() + headers + 128).unwrap_or(u32::MAX)
}

/// Invalidation paths are `/bucket/key` (or `bucket/key`), exact or ending in `*`.
fn path_matches(paths: &[String], bucket: &str, key: &str) -> bool {
    let object = format!("/{bucket}/{key}");
    paths.iter().any(|p| {
        let p = if p.starts_with('/') {
            p.clone()
        } else {
            format!("/{p}")
        };
        match p.strip_suffix('*') {
            Some(prefix) => object.starts_with(prefix),
            None => object == p,
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn invalidation_paths() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(super::path_matches(&p(&["/b/k"]), "b", "k"));
        assert!(!super::path_matches(&p(&["/b/k"]), "b", "k2"));
        assert!(super::path_matches(&p(&["b/img/*"]), "b", "img/a.png"));
        assert!(super::path_matches(&p(&["/*"]), "any", "thing"));
        assert!(!super::path_matches(&p(&["/b/img/*"]), "b", "css/a"));
    }
}
