//! Object operations: the glue between the index and the blobs for PUT, GET, DELETE, LIST.
//!
//! Every write follows the same order: new blob (durable) → one index transaction (checks and
//! commit) → delete the blobs the commit made unreachable. The commit and the cleanup run in a
//! detached task ([`detached`]) so a request cancelled mid-commit cannot leave a committed
//! object whose blob was deleted, or skip deleting a replaced blob.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::try_join_all;

use super::blobs::Blobs;
use super::changes::{self, Change};
use super::codec;
use super::error::{Error, Invalid, Kind, Result, What};
use super::index::{self, BUCKETS, INLINE, OBJECTS, ObjectRecord, Segment};
use super::{
    ByteStream, ChecksumType, Inner, ListPage, ListQuery, ObjectHeaders, ObjectInfo, PutOptions,
    StoredChecksum, Verify, WriteCondition,
};

/// Longest key S3 accepts, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

/// Segments opened before the stream starts. An open local file stays readable after its blob
/// is deleted, so a read that pins its segments survives a concurrent overwrite; beyond this
/// many, segments are opened as the stream reaches them (bounding descriptors per read).
const EAGER_SEGMENTS: usize = 16;

/// Bodies up to this size are kept in the index (the `inline_bodies` table) instead of a blob
/// file: the commit that makes the index entry durable makes the body durable too, so a small
/// PUT costs no file creation, no file or directory fsync, and its share of one group commit
/// (on the ext4 here, creating the staging file alone was ~45 % of a 4 KiB PUT's CPU, mostly
/// the inode allocator). 64 KiB keeps index pages few per object; MinIO inlines up to 128 KiB
/// in its metadata for the same reason. A GET reads the row and the body in one transaction.
pub const INLINE_MAX: usize = 64 << 10;

/// How often a read retries when the version it looked up was replaced before its blobs
/// could be opened.
const READ_ATTEMPTS: usize = 3;

pub(super) fn check_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::msg(
            Kind::Invalid(Invalid::EmptyKey),
            "The object key is empty.",
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(Error::invalid(Invalid::KeyTooLong));
    }
    Ok(())
}

/// Runs `fut` to completion on its own task even if the caller stops waiting.
pub(super) async fn detached<T, F>(fut: F) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    tokio::spawn(fut).await?
}

pub(super) async fn put(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    opts: PutOptions,
    body: ByteStream,
    verify: Verify,
) -> Result<ObjectInfo> {
    check_key(key)?;
    let b = bucket.to_owned();
    // Fail before reading the body if the bucket is absent; checked again at commit.
    inner
        .index
        .read(move |txn| index::require_bucket(&txn.open_table(BUCKETS)?, &b).map(drop))
        .await?;
    let written = inner
        .blobs
        .write(
            body,
            opts.checksum,
            inner.cfg.max_object_size,
            verify,
            INLINE_MAX,
        )
        .await?;
    let digests = &written.digests;
    let record = ObjectRecord {
        size: digests.size,
        etag: hex::encode(digests.md5),
        last_modified_ms: codec::now_ms(),
        headers: opts.headers,
        checksum: digests.checksum.as_ref().map(|c| StoredChecksum {
            algorithm: c.algorithm,
            value: c.to_base64(),
            kind: ChecksumType::FullObject,
        }),
        parts: Vec::new(),
        segments: written
            .blob
            .iter()
            .map(|g| Segment {
                blob: g.id().to_owned(),
                len: digests.size,
            })
            .collect(),
        inline: written.inline.is_some(),
        seq: 0, // given at commit
    };
    let mut info = record.info(key);
    let inner = Arc::clone(inner);
    let (b, k) = (bucket.to_owned(), key.to_owned());
    let condition = opts.condition;
    let body = written.inline;
    detached(async move {
        let committed = inner
            .index
            .write_grouped(move |txn| {
                index::commit_object(txn, &b, &k, &record, body.as_deref(), &condition)
            })
            .await;
        match committed {
            Ok((replaced, seq)) => {
                info.seq = seq;
                if let Some(guard) = written.blob {
                    guard.keep();
                }
                let unreachable = replaced.map(|r| r.blobs()).unwrap_or_default();
                inner.blobs.delete_all(unreachable).await;
                Ok(info)
            }
            Err(e) => {
                if let Some(guard) = written.blob {
                    guard.discard().await;
                }
                Err(e)
            }
        }
    })
    .await
}

pub(super) async fn lookup(inner: &Inner, bucket: &str, key: &str) -> Result<ObjectRecord> {
    let (b, k) = (bucket.to_owned(), key.to_owned());
    inner
        .index
        .read(move |txn| index::lookup_object(txn, &b, &k))
        .await
}

/// The object and, when it is inline, its body, read in one transaction (so they match).
async fn lookup_with_body(
    inner: &Inner,
    bucket: &str,
    key: &str,
) -> Result<(ObjectRecord, Option<Bytes>)> {
    let (b, k) = (bucket.to_owned(), key.to_owned());
    inner
        .index
        .read(move |txn| {
            let record = index::lookup_object(txn, &b, &k)?;
            let body = index::inline_body(txn, &b, &k, &record)?;
            Ok((record, body))
        })
        .await
}

/// Reads the current version; if it is replaced between the lookup and opening its blobs,
/// looks up again (so the reader gets the newer version, never an error).
pub(super) async fn read(
    inner: &Inner,
    bucket: &str,
    key: &str,
    range: Option<Range<u64>>,
) -> Result<(ObjectInfo, ByteStream)> {
    let mut attempt = 1;
    loop {
        let (record, body) = lookup_with_body(inner, bucket, key).await?;
        match open_record(&inner.blobs, &record, body, range.clone()).await {
            Ok(stream) => return Ok((record.info(key), stream)),
            Err(e) if e.kind() == Kind::NotFound(What::Key) && attempt < READ_ATTEMPTS => {
                attempt += 1
            }
            Err(e) => return Err(e),
        }
    }
}

/// Reads the version `info` describes. The index row is looked up again and must still hold
/// the same content (same ETag and size; a header-only change keeps the bytes), else NoSuchKey.
pub(super) async fn read_version(
    inner: &Inner,
    bucket: &str,
    info: &ObjectInfo,
    range: Option<Range<u64>>,
) -> Result<ByteStream> {
    let mut attempt = 1;
    loop {
        let (record, body) = lookup_with_body(inner, bucket, &info.key).await?;
        if record.etag != info.etag || record.size != info.size {
            return Err(Error::msg(
                Kind::NotFound(What::Key),
                "The object was replaced while it was being read.",
            ));
        }
        match open_record(&inner.blobs, &record, body, range.clone()).await {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == Kind::NotFound(What::Key) && attempt < READ_ATTEMPTS => {
                attempt += 1
            }
            Err(e) => return Err(e),
        }
    }
}

/// Streams `range` of the object: from `inline` (its body, when kept in the index) or from
/// its segments.
async fn open_record(
    blobs: &Blobs,
    record: &ObjectRecord,
    inline: Option<Bytes>,
    range: Option<Range<u64>>,
) -> Result<ByteStream> {
    let range = match range {
        Some(r) => r.start.min(record.size)..r.end.min(record.size),
        None => 0..record.size,
    };
    if let Some(body) = inline {
        let (start, end) = (range.start as usize, range.end as usize);
        if end > body.len() || start > end {
            return Err(Error::internal(anyhow::anyhow!(
                "inline body shorter than its index entry"
            )));
        }
        return Ok(futures::stream::once(async move { Ok(body.slice(start..end)) }).boxed());
    }
    open_segments(blobs, &record.segments, range).await
}

/// Streams `range` of the concatenated segments, touching only the segments it overlaps.
pub(super) async fn open_segments(
    blobs: &Blobs,
    segments: &[Segment],
    range: Range<u64>,
) -> Result<ByteStream> {
    let mut pieces = Vec::new();
    let mut offset = 0u64;
    for seg in segments {
        let (start, end) = (offset, offset + seg.len);
        offset = end;
        let lo = start.max(range.start);
        let hi = end.min(range.end);
        if lo < hi {
            pieces.push((seg.blob.clone(), lo - start..hi - start));
        }
    }
    let lazy = pieces.split_off(pieces.len().min(EAGER_SEGMENTS));
    let opened = try_join_all(pieces.iter().map(|(id, r)| blobs.open(id, r.clone()))).await?;
    let blobs = blobs.clone();
    let rest = futures::stream::iter(lazy).then(move |(id, r)| {
        let blobs = blobs.clone();
        async move { blobs.open(&id, r).await }
    });
    let streams = futures::stream::iter(opened.into_iter().map(Ok)).chain(rest);
    Ok(futures::TryStreamExt::try_flatten(streams).boxed())
}

pub(super) async fn replace_headers(
    inner: &Arc<Inner>,
    bucket: &str,
    key: &str,
    headers: ObjectHeaders,
) -> Result<ObjectInfo> {
    let (b, k) = (bucket.to_owned(), key.to_owned());
    let record = inner
        .index
        .write(move |txn| {
            index::require_bucket(&txn.open_table(BUCKETS)?, &b)?;
            let mut objects = txn.open_table(OBJECTS)?;
            let mut record =
                index::get_object(&objects, &b, &k)?.ok_or_else(|| Error::not_found(What::Key))?;
            record.headers = headers;
            record.last_modified_ms = codec::now_ms();
            record.seq = changes::record(txn, Change::put(&b, &k, &record.etag))?;
            objects.insert((b.as_str(), k.as_str()), codec::encode(&record)?.as_slice())?;
            Ok(record)
        })
        .await?;
    Ok(record.info(key))
}

/// Deletes keys whose conditions hold in one transaction, then their blobs; each key's outcome.
pub(super) async fn delete(
    inner: &Arc<Inner>,
    bucket: &str,
    keys: Vec<(String, WriteCondition)>,
) -> Result<Vec<Result<()>>> {
    let inner = Arc::clone(inner);
    let b = bucket.to_owned();
    detached(async move {
        let (outcomes, blobs) = inner
            .index
            .write(move |txn| {
                index::require_bucket(&txn.open_table(BUCKETS)?, &b)?;
                let mut objects = txn.open_table(OBJECTS)?;
                let mut bodies = txn.open_table(INLINE)?;
                let (mut outcomes, mut blobs) = (Vec::new(), Vec::new());
                for (key, cond) in &keys {
                    let current = index::get_object(&objects, &b, key)?;
                    let outcome = index::check_condition(current.as_ref(), cond);
                    if let (Ok(()), Some(current)) = (&outcome, &current) {
                        objects.remove((b.as_str(), key.as_str()))?;
                        if current.inline {
                            bodies.remove((b.as_str(), key.as_str()))?;
                        }
                        blobs.extend(current.blobs());
                        changes::record(txn, Change::delete(&b, key))?;
                    }
                    outcomes.push(outcome);
                }
                Ok((outcomes, blobs))
            })
            .await?;
        inner.blobs.delete_all(blobs).await;
        Ok(outcomes)
    })
    .await
}

/// The listing and how many index entries it read (for tests of the seek behaviour).
pub(super) async fn list(
    inner: &Inner,
    bucket: &str,
    query: ListQuery,
) -> Result<(ListPage, usize)> {
    let b = bucket.to_owned();
    let listing = inner
        .index
        .read(move |txn| {
            index::require_bucket(&txn.open_table(BUCKETS)?, &b)?;
            index::list_objects(&txn.open_table(OBJECTS)?, &b, &query)
        })
        .await?;
    let page = ListPage {
        objects: listing
            .objects
            .iter()
            .map(|(key, record)| record.info(key))
            .collect(),
        common_prefixes: listing.common_prefixes,
        is_truncated: listing.is_truncated,
        next_marker: listing.next_marker,
    };
    Ok((page, listing.scanned))
}
