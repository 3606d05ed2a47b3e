//! Multipart uploads: each part is its own blob; completing an upload commits an object whose
//! segments are those part blobs, so no data is copied, however large the object.
//!
//! An upload id is `<initiation ms, 12 hex digits><24 random alphanumerics>`: unguessable, URL
//! safe, and sorting ids sorts uploads of a key by initiation time (ListMultipartUploads order).

use std::ops::Bound;

use md5::{Digest as _, Md5};
use rand::Rng as _;
use redb::ReadableTable;
use sha2::Sha256;

use super::checksum::{self, ChecksumValue};
use super::codec;
use super::error::{Error, Invalid, Kind, Result, What};
use super::index::{
    self, BUCKETS, COMPLETED, CompletedRecord, ObjectRecord, PARTS, PartRecord, Segment, UPLOADS,
    UploadRecord,
};
use super::objects::{check_key, detached};
use super::{
    ByteStream, ChecksumAlgorithm, ChecksumType, CompletedPart, CompletedUpload, Inner,
    ListPartsQuery, ListUploadsQuery, ObjectHeaders, PartInfo, PartSummary, StoredChecksum,
    UploadInfo, Verify, WriteCondition,
};

/// Smallest size of every part but the last (S3's limit): EntityTooSmall at completion.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// Highest part number S3 accepts.
pub const MAX_PART_NUMBER: u32 = 10_000;

fn new_upload_id(now_ms: u64) -> String {
    let random: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{now_ms:012x}{random}")
}

fn no_such_upload() -> Error {
    Error::not_found(What::Upload)
}

/// The upload row, or NoSuchBucket / NoSuchUpload.
fn lookup_upload(
    txn: &redb::ReadTransaction,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<UploadRecord> {
    match txn.open_table(UPLOADS)?.get((bucket, key, upload_id))? {
        Some(v) => codec::decode(v.value()),
        None => {
            index::require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
            Err(no_such_upload())
        }
    }
}

pub(super) async fn create(
    inner: &Inner,
    bucket: &str,
    key: &str,
    headers: ObjectHeaders,
    checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
) -> Result<UploadInfo> {
    check_key(key)?;
    if matches!(checksum, Some((algorithm, ChecksumType::FullObject)) if !algorithm.is_crc()) {
        return Err(Error::msg(
            Kind::Invalid(Invalid::ChecksumAlgorithm),
            "The FULL_OBJECT checksum type needs a CRC checksum algorithm.",
        ));
    }
    let record = UploadRecord {
        initiated_ms: codec::now_ms(),
        headers,
        checksum,
    };
    let upload_id = new_upload_id(record.initiated_ms);
    let (b, k, id) = (bucket.to_owned(), key.to_owned(), upload_id.clone());
    let stored = record.clone();
    inner
        .index
        .write(move |txn| {
            index::require_bucket(&txn.open_table(BUCKETS)?, &b)?;
            txn.open_table(UPLOADS)?.insert(
                (b.as_str(), k.as_str(), id.as_str()),
                codec::encode(&stored)?.as_slice(),
            )?;
            Ok(())
        })
        .await?;
    Ok(record.info(bucket, key, &upload_id))
}

pub(super) async fn upload(
    inner: &Inner,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<UploadInfo> {
    let (b, k, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
    let record = inner
        .index
        .read(move |txn| lookup_upload(txn, &b, &k, &id))
        .await?;
    Ok(record.info(bucket, key, upload_id))
}

pub(super) async fn upload_part(
    inner: &std::sync::Arc<Inner>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    part_number: u32,
    body: ByteStream,
    verify: Verify,
) -> Result<PartInfo> {
    if !(1..=MAX_PART_NUMBER).contains(&part_number) {
        return Err(Error::msg(
            Kind::Invalid(Invalid::PartNumber),
            "Part number must be an integer between 1 and 10000, inclusive",
        ));
    }
    // Fail before reading the body if the upload is unknown; checked again at commit.
    let info = upload(inner, bucket, key, upload_id).await?;
    let algorithm = info.checksum.map(|(a, _)| a);
    let written = inner
        .blobs
        .write(body, algorithm, inner.cfg.max_object_size, verify, 0)
        .await?;
    let record = PartRecord {
        size: written.digests.size,
        etag: hex::encode(written.digests.md5),
        checksum: written.digests.checksum.as_ref().map(|c| c.to_base64()),
        last_modified_ms: codec::now_ms(),
        blob: written.blob.as_ref().map(|g| g.id().to_owned()),
    };
    let part = record.info(part_number);
    let inner = std::sync::Arc::clone(inner);
    let (b, k, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
    // Commit and cleanup run detached so a cancelled request cannot split them.
    detached(async move {
        let committed = inner
            .index
            .write_grouped(move |txn| {
                if txn
                    .open_table(UPLOADS)?
                    .get((b.as_str(), k.as_str(), id.as_str()))?
                    .is_none()
                {
                    return Err(no_such_upload());
                }
                let mut parts = txn.open_table(PARTS)?;
                let old = parts.insert(
                    (id.as_str(), part_number),
                    codec::encode(&record)?.as_slice(),
                )?;
                old.map(|v| codec::decode::<PartRecord>(v.value()))
                    .transpose()
            })
            .await;
        match committed {
            Ok(old) => {
                if let Some(guard) = written.blob {
                    guard.keep();
                }
                inner.blobs.delete_all(old.and_then(|p| p.blob)).await;
                Ok(part)
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

fn same_etag(listed: &str, stored: &str) -> bool {
    listed.trim().trim_matches('"').eq_ignore_ascii_case(stored)
}

/// Builds the object record from the listed parts, validating them (InvalidPart,
/// EntityTooSmall) against the stored rows.
fn assemble(
    upload: &UploadRecord,
    listed: &[CompletedPart],
    stored: &std::collections::BTreeMap<u32, PartRecord>,
) -> Result<ObjectRecord> {
    let mut chosen = Vec::with_capacity(listed.len());
    for part in listed {
        let row = stored
            .get(&part.part_number)
            .filter(|row| same_etag(&part.etag, &row.etag))
            .ok_or_else(|| {
                Error::msg(
                    Kind::Invalid(Invalid::PartMismatch),
                    format!(
                        "Part {} was not uploaded or its ETag does not match.",
                        part.part_number
                    ),
                )
            })?;
        // Clients list part checksums only if UploadPart echoed them; if listed, they must match.
        let listed_sum = part
            .checksum
            .as_deref()
            .filter(|_| upload.checksum.is_some());
        if listed_sum.is_some_and(|c| row.checksum.as_deref().map(str::trim) != Some(c.trim())) {
            return Err(Error::msg(
                Kind::Invalid(Invalid::PartMismatch),
                format!("The checksum of part {} does not match.", part.part_number),
            ));
        }
        chosen.push(row);
    }
    let all_but_last = &chosen[..chosen.len().saturating_sub(1)];
    if all_but_last.iter().any(|row| row.size < MIN_PART_SIZE) {
        return Err(Error::invalid(Invalid::PartTooSmall));
    }

    let mut md5s = Md5::new();
    for row in &chosen {
        let raw = hex::decode(&row.etag).map_err(Error::internal)?;
        md5s.update(&raw);
    }
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());

    let checksum = match upload.checksum {
        None => None,
        Some((algorithm, kind)) => {
            let values = chosen
                .iter()
                .map(|row| {
                    row.checksum
                        .as_deref()
                        .and_then(|v| ChecksumValue::from_base64(algorithm, v))
                        .ok_or_else(|| {
                            Error::msg(
                                Kind::Invalid(Invalid::PartMismatch),
                                "A part has no checksum.",
                            )
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            let value = match kind {
                ChecksumType::Composite => checksum::composite(algorithm, &values),
                ChecksumType::FullObject => {
                    let with_len: Vec<_> = values
                        .into_iter()
                        .zip(chosen.iter().map(|r| r.size))
                        .collect();
                    checksum::combine_full_object(algorithm, &with_len)
                        .ok_or_else(|| Error::invalid(Invalid::ChecksumAlgorithm))?
                        .to_base64()
                }
            };
            Some(StoredChecksum {
                algorithm,
                value,
                kind,
            })
        }
    };

    Ok(ObjectRecord {
        size: chosen.iter().map(|r| r.size).sum(),
        etag,
        last_modified_ms: codec::now_ms(),
        headers: upload.headers.clone(),
        checksum,
        parts: chosen
            .iter()
            .map(|r| PartSummary {
                size: r.size,
                etag: r.etag.clone(),
                checksum: r.checksum.clone(),
            })
            .collect(),
        segments: chosen
            .iter()
            .filter_map(|r| {
                r.blob.as_ref().map(|blob| Segment {
                    blob: blob.clone(),
                    len: r.size,
                })
            })
            .collect(),
        inline: false,
        seq: 0, // given at commit
    })
}

/// The whole-object checksum a client declared on Complete must be the one computed from the
/// parts (for COMPOSITE, without the `-N` part count).
fn check_declared(
    computed: Option<&StoredChecksum>,
    declared: Option<&ChecksumValue>,
) -> Result<()> {
    let Some(declared) = declared else {
        return Ok(());
    };
    let Some(computed) = computed.filter(|c| c.algorithm == declared.algorithm) else {
        return Err(Error::msg(
            Kind::Invalid(Invalid::ChecksumAlgorithm),
            format!(
                "The upload was not created with the {} checksum algorithm.",
                declared.algorithm.name()
            ),
        ));
    };
    let value = computed.value.split('-').next().unwrap_or("");
    if value != declared.to_base64() {
        return Err(Error::msg(
            Kind::Invalid(Invalid::ChecksumMismatch),
            format!(
                "The {} you specified did not match the calculated checksum.",
                declared.algorithm.name()
            ),
        ));
    }
    Ok(())
}

pub(super) async fn complete(
    inner: &std::sync::Arc<Inner>,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: Vec<CompletedPart>,
    condition: WriteCondition,
    expected: Option<ChecksumValue>,
) -> Result<CompletedUpload> {
    if parts.is_empty() {
        return Err(Error::msg(
            Kind::Invalid(Invalid::NoParts),
            "You must specify at least one part.",
        ));
    }
    if parts
        .windows(2)
        .any(|w| w[0].part_number >= w[1].part_number)
    {
        return Err(Error::invalid(Invalid::PartOrder));
    }
    let inner = std::sync::Arc::clone(inner);
    let (b, k, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
    let digest = parts_digest(&parts);
    detached(async move {
        let (done, unreachable) = inner
            .index
            .write(move |txn| {
                index::require_bucket(&txn.open_table(BUCKETS)?, &b)?;
                let upload: UploadRecord =
                    match txn
                        .open_table(UPLOADS)?
                        .get((b.as_str(), k.as_str(), id.as_str()))?
                    {
                        Some(v) => codec::decode(v.value())?,
                        None => {
                            let done = recorded_answer(txn, &b, &k, &id, &digest)?;
                            check_declared(done.checksum.as_ref(), expected.as_ref())?;
                            return Ok((done, Vec::new()));
                        }
                    };
                let stored: std::collections::BTreeMap<u32, PartRecord> =
                    index::upload_parts(&txn.open_table(PARTS)?, &id)?
                        .into_iter()
                        .collect();
                let record = assemble(&upload, &parts, &stored)?;
                check_declared(record.checksum.as_ref(), expected.as_ref())?;
                let (replaced, _) = index::commit_object(txn, &b, &k, &record, None, &condition)?;
                let kept: std::collections::HashSet<&str> =
                    record.segments.iter().map(|s| s.blob.as_str()).collect();
                let mut unreachable: Vec<String> = index::remove_upload(txn, &b, &k, &id)?
                    .into_iter()
                    .filter(|blob| !kept.contains(blob.as_str()))
                    .collect();
                unreachable.extend(replaced.iter().flat_map(|r| r.blobs()));
                let done = CompletedRecord {
                    bucket: b,
                    key: k,
                    size: record.size,
                    etag: record.etag,
                    checksum: record.checksum,
                    parts_digest: digest,
                    completed_ms: record.last_modified_ms,
                };
                txn.open_table(COMPLETED)?
                    .insert(id.as_str(), codec::encode(&done)?.as_slice())?;
                Ok((done, unreachable))
            })
            .await?;
        inner.blobs.delete_all(unreachable).await;
        Ok(done.answer())
    })
    .await
}

/// How long a completed upload keeps answering a retried CompleteMultipartUpload. AWS keeps
/// answering "for a while" without saying how long; a day covers any client's retries (and
/// a resumed transfer tool), and the rows are small. Rows past it are not answered, and the
/// stale-upload sweep removes them.
pub const COMPLETED_RETENTION: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Identifies a parts list: SHA-256 over each listed part's number, ETag (unquoted, lower
/// case) and checksum as listed, so a retry of the same request matches and any other list
/// does not.
fn parts_digest(parts: &[CompletedPart]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        let etag = p.etag.trim().trim_matches('"').to_ascii_lowercase();
        let checksum = p.checksum.as_deref().map(str::trim).unwrap_or("");
        h.update(format!("{} {etag} {checksum}\n", p.part_number));
    }
    hex::encode(h.finalize())
}

/// The answer a completed upload gave, if this request repeats it (same bucket, key and parts
/// list, within [`COMPLETED_RETENTION`]); NoSuchUpload otherwise.
fn recorded_answer(
    txn: &redb::WriteTransaction,
    bucket: &str,
    key: &str,
    upload_id: &str,
    digest: &str,
) -> Result<CompletedRecord> {
    let row: Option<CompletedRecord> = txn
        .open_table(COMPLETED)?
        .get(upload_id)?
        .map(|v| codec::decode(v.value()))
        .transpose()?;
    let now = codec::now_ms();
    row.filter(|r| {
        r.bucket == bucket
            && r.key == key
            && r.parts_digest == digest
            && now.saturating_sub(r.completed_ms) <= COMPLETED_RETENTION.as_millis() as u64
    })
    .ok_or_else(no_such_upload)
}

impl CompletedRecord {
    fn answer(self) -> CompletedUpload {
        CompletedUpload {
            key: self.key,
            size: self.size,
            etag: self.etag,
            checksum: self.checksum,
            completed: codec::from_ms(self.completed_ms),
        }
    }
}

/// Removes completed-upload rows older than [`COMPLETED_RETENTION`] (or, with `bucket`, every
/// row of that bucket: a deleted bucket's uploads answer nothing).
pub(super) fn forget_completed(
    txn: &redb::WriteTransaction,
    now_ms: u64,
    bucket: Option<&str>,
) -> Result<()> {
    let mut table = txn.open_table(COMPLETED)?;
    let mut gone = Vec::new();
    for entry in table.iter()? {
        let (id, v) = entry?;
        let row: CompletedRecord = codec::decode(v.value())?;
        let expired =
            now_ms.saturating_sub(row.completed_ms) > COMPLETED_RETENTION.as_millis() as u64;
        if expired || bucket == Some(row.bucket.as_str()) {
            gone.push(id.value().to_owned());
        }
    }
    for id in gone {
        table.remove(id.as_str())?;
    }
    Ok(())
}

pub(super) async fn abort(
    inner: &std::sync::Arc<Inner>,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<()> {
    let inner = std::sync::Arc::clone(inner);
    let (b, k, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
    detached(async move {
        let blobs = inner
            .index
            .write(move |txn| {
                if txn
                    .open_table(UPLOADS)?
                    .get((b.as_str(), k.as_str(), id.as_str()))?
                    .is_none()
                {
                    index::require_bucket(&txn.open_table(BUCKETS)?, &b)?;
                    return Err(no_such_upload());
                }
                index::remove_upload(txn, &b, &k, &id)
            })
            .await?;
        inner.blobs.delete_all(blobs).await;
        Ok(())
    })
    .await
}

pub(super) async fn list_parts(
    inner: &Inner,
    bucket: &str,
    key: &str,
    upload_id: &str,
    query: ListPartsQuery,
) -> Result<(UploadInfo, Vec<PartInfo>, bool)> {
    let (b, k, id) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
    inner
        .index
        .read(move |txn| {
            let upload = lookup_upload(txn, &b, &k, &id)?.info(&b, &k, &id);
            let mut parts = Vec::new();
            let mut truncated = false;
            if query.max_parts > 0 {
                let table = txn.open_table(PARTS)?;
                let lower = Bound::Excluded((id.as_str(), query.part_number_marker));
                let upper = Bound::Included((id.as_str(), u32::MAX));
                for entry in table.range::<(&str, u32)>((lower, upper))? {
                    if parts.len() == query.max_parts {
                        truncated = true;
                        break;
                    }
                    let (k, v) = entry?;
                    let row: PartRecord = codec::decode(v.value())?;
                    parts.push(row.info(k.value().1));
                }
            }
            Ok((upload, parts, truncated))
        })
        .await
}

pub(super) async fn list_uploads(
    inner: &Inner,
    bucket: &str,
    query: ListUploadsQuery,
) -> Result<(Vec<UploadInfo>, bool)> {
    let b = bucket.to_owned();
    inner
        .index
        .read(move |txn| {
            index::require_bucket(&txn.open_table(BUCKETS)?, &b)?;
            let mut out = Vec::new();
            if query.max_uploads == 0 {
                return Ok((out, false));
            }
            let prefix = query.prefix.as_str();
            // With only a key marker, uploads of that key are skipped (S3's key-marker rule);
            // with an upload-id marker too, later uploads of that key still follow.
            let (start_key, start_id, skip_key) = match query.key_marker.as_deref() {
                Some(km) if km >= prefix => match query.upload_id_marker.as_deref() {
                    Some(um) => (km, um, None),
                    None => (km, "", Some(km)),
                },
                _ => (prefix, "", None),
            };
            let lower = if start_id.is_empty() {
                Bound::Included((b.as_str(), start_key, ""))
            } else {
                Bound::Excluded((b.as_str(), start_key, start_id))
            };
            let table = txn.open_table(UPLOADS)?;
            let mut truncated = false;
            for entry in table.range::<(&str, &str, &str)>((lower, Bound::Unbounded))? {
                let (k, v) = entry?;
                let (ub, uk, uid) = k.value();
                if ub != b || !uk.starts_with(prefix) {
                    break;
                }
                if skip_key == Some(uk) {
                    continue;
                }
                if out.len() == query.max_uploads {
                    truncated = true;
                    break;
                }
                let row: UploadRecord = codec::decode(v.value())?;
                out.push(row.info(ub, uk, uid));
            }
            Ok((out, truncated))
        })
        .await
}

/// Removes every upload of `bucket` inside a delete-bucket transaction; returns their blobs.
pub(super) fn remove_bucket_uploads(
    txn: &redb::WriteTransaction,
    bucket: &str,
) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for entry in txn
        .open_table(UPLOADS)?
        .range::<(&str, &str, &str)>((bucket, "", "")..)?
    {
        let (k, _) = entry?;
        let (ub, uk, uid) = k.value();
        if ub != bucket {
            break;
        }
        ids.push((uk.to_owned(), uid.to_owned()));
    }
    let mut blobs = Vec::new();
    for (key, id) in ids {
        blobs.extend(index::remove_upload(txn, bucket, &key, &id)?);
    }
    forget_completed(txn, codec::now_ms(), Some(bucket))?;
    Ok(blobs)
}
