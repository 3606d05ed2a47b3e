//! Reads and writes of rows inside a transaction the caller holds ([`super::Index::read`],
//! [`super::Index::write`]): buckets, objects and their inline bodies, listings, uploads.

use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::records::*;
use crate::engine::codec::{decode, encode, from_ms};
use crate::engine::error::{Error, Kind, Result, What};
use crate::engine::{BucketInfo, ListQuery, WriteCondition};

// ----- buckets -----

pub fn get_bucket(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<Option<BucketRecord>> {
    t.get(name)?.map(|v| decode(v.value())).transpose()
}

pub fn require_bucket(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<BucketRecord> {
    get_bucket(t, name)?.ok_or_else(|| Error::not_found(What::Bucket))
}

/// Inserts a new bucket row. AlreadyExists if the name is taken.
pub fn insert_new_bucket(txn: &WriteTransaction, name: &str, record: &BucketRecord) -> Result<()> {
    let mut buckets = txn.open_table(BUCKETS)?;
    if get_bucket(&buckets, name)?.is_some() {
        return Err(Error::new(Kind::AlreadyExists));
    }
    buckets.insert(name, encode(record)?.as_slice())?;
    Ok(())
}

pub fn bucket_info(name: &str, r: BucketRecord) -> BucketInfo {
    BucketInfo {
        name: name.to_owned(),
        created: from_ms(r.created_ms),
        settings: r.settings,
    }
}

// ----- objects -----

pub fn get_object(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRecord>> {
    t.get((bucket, key))?.map(|v| decode(v.value())).transpose()
}

/// The object, or NoSuchBucket / NoSuchKey.
pub fn lookup_object(txn: &ReadTransaction, bucket: &str, key: &str) -> Result<ObjectRecord> {
    match get_object(&txn.open_table(OBJECTS)?, bucket, key)? {
        Some(r) => Ok(r),
        None => {
            require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
            Err(Error::not_found(What::Key))
        }
    }
}

/// Does the bucket hold at least one object?
pub fn bucket_has_objects(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    bucket: &str,
) -> Result<bool> {
    let mut range = t.range::<(&str, &str)>((bucket, "")..)?;
    match range.next() {
        Some(entry) => Ok(entry?.0.value().0 == bucket),
        None => Ok(false),
    }
}

/// Checks a write precondition against the object currently stored (inside the transaction).
pub fn check_condition(current: Option<&ObjectRecord>, cond: &WriteCondition) -> Result<()> {
    if cond.if_none_match_any && current.is_some() {
        return Err(Error::new(Kind::Precondition));
    }
    if let Some(expected) = &cond.if_match {
        let Some(current) = current else {
            return Err(Error::not_found(What::Key));
        };
        let matches = expected.split(',').any(|e| {
            let e = e.trim().trim_matches('"');
            e == "*" || e == current.etag
        });
        if !matches {
            return Err(Error::new(Kind::Precondition));
        }
    }
    if let Some(current) = current {
        // Last-Modified is compared at the precision HTTP dates carry: whole seconds.
        let modified_differs = cond.if_match_last_modified.is_some_and(|t| {
            let secs = t
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            secs != current.last_modified_ms / 1000
        });
        if modified_differs || cond.if_match_size.is_some_and(|s| s != current.size) {
            return Err(Error::new(Kind::Precondition));
        }
    }
    Ok(())
}

/// Stores `record` at (bucket, key) if the bucket exists and `cond` holds, with `inline` as its
/// body when `record.inline` (the record replaced loses its inline body, if it had one), and
/// records the put in the change log; returns the record it replaced, whose blobs the caller
/// deletes after the commit, and the put's sequence number.
pub fn commit_object(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    record: &ObjectRecord,
    inline: Option<&[u8]>,
    cond: &WriteCondition,
) -> Result<(Option<ObjectRecord>, u64)> {
    require_bucket(&txn.open_table(BUCKETS)?, bucket)?;
    let mut objects = txn.open_table(OBJECTS)?;
    let current = get_object(&objects, bucket, key)?;
    check_condition(current.as_ref(), cond)?;
    let change = crate::engine::Change::put(bucket, key, &record.etag);
    let record = ObjectRecord {
        seq: crate::engine::changes::record(txn, change)?,
        ..record.clone()
    };
    objects.insert((bucket, key), encode(&record)?.as_slice())?;
    let mut bodies = txn.open_table(INLINE)?;
    match inline.filter(|_| record.inline) {
        Some(body) => drop(bodies.insert((bucket, key), body)?),
        None if current.as_ref().is_some_and(|c| c.inline) => drop(bodies.remove((bucket, key))?),
        None => {}
    }
    Ok((current, record.seq))
}

/// The inline body of the object `record` (as read in the same transaction); None when its
/// bytes are in blobs.
pub fn inline_body(
    txn: &ReadTransaction,
    bucket: &str,
    key: &str,
    record: &ObjectRecord,
) -> Result<Option<bytes::Bytes>> {
    if !record.inline {
        return Ok(None);
    }
    match txn.open_table(INLINE)?.get((bucket, key))? {
        Some(body) => Ok(Some(bytes::Bytes::copy_from_slice(body.value()))),
        None => Err(Error::internal(anyhow::anyhow!(
            "object {bucket}/{key} has no inline body"
        ))),
    }
}

/// One page of a bucket listing, plus how many index entries the scan touched.
#[derive(Debug, Default)]
pub struct Listing {
    pub objects: Vec<(String, ObjectRecord)>,
    pub common_prefixes: Vec<String>,
    pub is_truncated: bool,
    pub next_marker: Option<String>,
    /// Index entries read; a delimiter listing touches about one per group, not one per key.
    pub scanned: usize,
}

/// Lists `bucket` per `q` (see [`super::Engine::list_objects`]). When a key folds into a common
/// prefix the scan restarts at the prefix's successor, so a whole group costs one entry.
pub fn list_objects(
    t: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
    bucket: &str,
    q: &ListQuery,
) -> Result<Listing> {
    let mut out = Listing::default();
    if q.max_keys == 0 {
        return Ok(out);
    }
    let prefix = q.prefix.as_str();
    let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
    let after = q.start_after.as_deref();
    let mut from = match after {
        Some(a) if a >= prefix => Bound::Excluded(a.to_owned()),
        _ => Bound::Included(prefix.to_owned()),
    };
    let mut count = 0usize;
    'scan: loop {
        let lower = match &from {
            Bound::Included(s) => Bound::Included((bucket, s.as_str())),
            Bound::Excluded(s) => Bound::Excluded((bucket, s.as_str())),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut seek_to = None;
        for entry in t.range::<(&str, &str)>((lower, Bound::Unbounded))? {
            let (k, v) = entry?;
            out.scanned += 1;
            let (b, key) = k.value();
            if b != bucket || !key.starts_with(prefix) {
                break 'scan;
            }
            let group_end =
                delimiter.and_then(|d| Some(prefix.len() + key[prefix.len()..].find(d)? + d.len()));
            if let Some(end) = group_end {
                let common = &key[..end];
                // A group at or before the marker was returned on an earlier page.
                if after.is_none_or(|a| common > a) {
                    if count == q.max_keys {
                        out.is_truncated = true;
                        break 'scan;
                    }
                    out.common_prefixes.push(common.to_owned());
                    out.next_marker = Some(common.to_owned());
                    count += 1;
                }
                match successor(common) {
                    Some(next) => {
                        seek_to = Some(next);
                        break;
                    }
                    None => break 'scan,
                }
            }
            if count == q.max_keys {
                out.is_truncated = true;
                break 'scan;
            }
            out.objects.push((key.to_owned(), decode(v.value())?));
            out.next_marker = Some(key.to_owned());
            count += 1;
        }
        match seek_to {
            Some(next) => from = Bound::Included(next),
            None => break,
        }
    }
    Ok(out)
}

/// The smallest string greater than every string starting with `s`: `s` with its last char
/// replaced by the next code point (UTF-8 byte order is code point order), dropping trailing
/// chars that have no successor. None if there is no such string.
pub fn successor(s: &str) -> Option<String> {
    let mut out = s.to_owned();
    while let Some(c) = out.pop() {
        let mut next = c as u32 + 1;
        if next == 0xD800 {
            next = 0xE000; // skip the surrogate range, which no char may hold
        }
        if let Some(n) = char::from_u32(next) {
            out.push(n);
            return Some(out);
        }
    }
    None
}

// ----- uploads and parts -----

/// All part rows of an upload, in part-number order.
pub fn upload_parts(
    t: &impl ReadableTable<(&'static str, u32), &'static [u8]>,
    upload_id: &str,
) -> Result<Vec<(u32, PartRecord)>> {
    let mut parts = Vec::new();
    for entry in t.range::<(&str, u32)>((upload_id, 0)..=(upload_id, u32::MAX))? {
        let (k, v) = entry?;
        parts.push((k.value().1, decode(v.value())?));
    }
    Ok(parts)
}

/// Removes an upload row and all its parts; returns the parts' blobs for deletion after commit.
pub fn remove_upload(
    txn: &WriteTransaction,
    bucket: &str,
    key: &str,
    upload_id: &str,
) -> Result<Vec<String>> {
    txn.open_table(UPLOADS)?.remove((bucket, key, upload_id))?;
    let mut parts_table = txn.open_table(PARTS)?;
    let parts = upload_parts(&parts_table, upload_id)?;
    let mut blobs = Vec::new();
    for (n, part) in parts {
        parts_table.remove((upload_id, n))?;
        blobs.extend(part.blob);
    }
    Ok(blobs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_bounds_a_group() {
        assert_eq!(successor("a/").as_deref(), Some("a0"));
        assert_eq!(successor("é/").as_deref(), Some("é0"));
        assert_eq!(successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{10FFFF}"), None);
        // Every string starting with the group sorts below the successor, in byte order.
        let next = successor("a\u{7F}").unwrap();
        assert!("a\u{7F}\u{10FFFF}".as_bytes() < next.as_bytes());
    }

    #[test]
    fn conditions() {
        let rec = ObjectRecord {
            etag: "abc".into(),
            ..Default::default()
        };
        let none_match = WriteCondition {
            if_none_match_any: true,
            if_match: None,
            ..WriteCondition::default()
        };
        assert!(check_condition(None, &none_match).is_ok());
        assert_eq!(
            check_condition(Some(&rec), &none_match).unwrap_err().kind(),
            Kind::Precondition
        );
        let if_match = |e: &str| WriteCondition {
            if_none_match_any: false,
            if_match: Some(e.into()),
            ..WriteCondition::default()
        };
        assert_eq!(
            check_condition(None, &if_match("abc")).unwrap_err().kind(),
            Kind::NotFound(What::Key)
        );
        assert!(check_condition(Some(&rec), &if_match("abc")).is_ok());
        assert!(check_condition(Some(&rec), &if_match("\"abc\"")).is_ok());
        assert!(check_condition(Some(&rec), &if_match("*")).is_ok());
        assert_eq!(
            check_condition(Some(&rec), &if_match("xyz"))
                .unwrap_err()
                .kind(),
            Kind::Precondition
        );
    }
}
