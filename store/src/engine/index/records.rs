//! The rows of the index's tables, as JSON values (`#[serde(default)]`: a field added later
//! reads old rows), and the time and codec helpers they use.

use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use crate::engine::codec::from_ms;
use crate::engine::{
    BucketSettings, ChecksumAlgorithm, ChecksumType, ObjectHeaders, ObjectInfo, PartInfo,
    PartSummary, StoredChecksum, UploadInfo,
};
use crate::secret::SecretKey;

/// The tables (see the picture in `index/mod.rs`).
pub(in crate::engine) const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets");
pub(in crate::engine) const OBJECTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("objects");
pub(in crate::engine) const UPLOADS: TableDefinition<(&str, &str, &str), &[u8]> =
    TableDefinition::new("uploads");
pub(in crate::engine) const PARTS: TableDefinition<(&str, u32), &[u8]> =
    TableDefinition::new("parts");
pub(in crate::engine) const COMPLETED: TableDefinition<&str, &[u8]> =
    TableDefinition::new("completed_uploads");
pub(in crate::engine) const INLINE: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("inline_bodies");
pub(in crate::engine) const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
pub(in crate::engine) const GRANTS: TableDefinition<(&str, &str), &[u8]> =
    TableDefinition::new("grants");

/// A bucket row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BucketRecord {
    pub created_ms: u64,
    #[serde(default)]
    pub settings: BucketSettings,
    /// The access key id of the key that created the bucket (None: the root key, or a bucket
    /// older than keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// An access key row, under its name. The secret is kept as it was generated: SigV4 needs it
/// to check a signature (a hash would not do).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub access_key_id: String,
    pub secret: SecretKey,
    #[serde(default)]
    pub edge: bool,
    /// May create buckets (and then owns them).
    #[serde(default)]
    pub create_bucket: bool,
    pub created_ms: u64,
}

/// A run of object bytes held by one blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub blob: String,
    pub len: u64,
}

/// An object row. Segments hold the bytes in order; an empty object has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ObjectRecord {
    pub size: u64,
    pub etag: String,
    pub last_modified_ms: u64,
    pub headers: ObjectHeaders,
    pub checksum: Option<StoredChecksum>,
    pub parts: Vec<PartSummary>,
    pub segments: Vec<Segment>,
    /// The body is in the `inline_bodies` table under the same (bucket, key), not in blobs
    /// (a small single-part object: see `objects::INLINE_MAX`); `segments` is empty.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub inline: bool,
    /// The change log's number of the commit that wrote this version (0: written before the
    /// log existed); GET and HEAD say it (`x-outpost-seq`), so an edge told of a later change
    /// knows which of its entries predate it.
    pub seq: u64,
}

impl ObjectRecord {
    pub fn info(&self, key: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.to_owned(),
            size: self.size,
            etag: self.etag.clone(),
            last_modified: from_ms(self.last_modified_ms),
            headers: self.headers.clone(),
            checksum: self.checksum.clone(),
            parts: self.parts.clone(),
            seq: self.seq,
        }
    }

    pub fn blobs(&self) -> Vec<String> {
        self.segments.iter().map(|s| s.blob.clone()).collect()
    }
}

/// A multipart upload row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadRecord {
    pub initiated_ms: u64,
    #[serde(default)]
    pub headers: ObjectHeaders,
    #[serde(default)]
    pub checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
}

impl UploadRecord {
    pub fn info(&self, bucket: &str, key: &str, upload_id: &str) -> UploadInfo {
        UploadInfo {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            initiated: from_ms(self.initiated_ms),
            headers: self.headers.clone(),
            checksum: self.checksum,
        }
    }
}

/// A completed upload's row, written in the transaction that completed it and kept for
/// [`super::multipart::COMPLETED_RETENTION`], so a retried CompleteMultipartUpload (a client
/// whose first answer was lost) gets the same answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompletedRecord {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    pub etag: String,
    #[serde(default)]
    pub checksum: Option<StoredChecksum>,
    /// Hex SHA-256 of the parts list the completion named (see `multipart::parts_digest`).
    pub parts_digest: String,
    pub completed_ms: u64,
}

/// An uploaded part row. `blob` is None for an empty part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRecord {
    pub size: u64,
    pub etag: String,
    #[serde(default)]
    pub checksum: Option<String>,
    pub last_modified_ms: u64,
    #[serde(default)]
    pub blob: Option<String>,
}

impl PartRecord {
    pub fn info(&self, part_number: u32) -> PartInfo {
        PartInfo {
            part_number,
            size: self.size,
            etag: self.etag.clone(),
            last_modified: from_ms(self.last_modified_ms),
            checksum: self.checksum.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::codec::decode;

    #[test]
    fn records_tolerate_missing_fields() {
        let r: ObjectRecord = decode(br#"{"size":3,"etag":"x"}"#).unwrap();
        assert_eq!(r.size, 3);
        assert!(r.segments.is_empty());
        let b: BucketRecord = decode(br#"{"created_ms":5}"#).unwrap();
        assert_eq!(b.settings, BucketSettings::default());
    }
}
