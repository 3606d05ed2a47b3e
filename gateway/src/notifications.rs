//! `POST /_outpost/notifications`: S3 event notifications from an origin that is not an
//! Outpost store, so it has no change feed (MinIO, Ceph RGW and others post them to a webhook).
//! Each object event drops every cached entry of that bucket and key, as a feed event does.
//!
//! ```text
//!  Authorization: TOKEN | Bearer TOKEN      (edge.notification_token; none: the endpoint is off)
//!  {"Records": [{"eventName": "ObjectCreated:Put",            MinIO: "s3:ObjectCreated:Put"
//!                "s3": {"bucket": {"name": "site"},
//!                       "object": {"key": "red+flower.jpg"}}}]}   URL-encoded, `+` a space
//!  200 {"applied": 1, "ignored": 0, "id": "…"}
//! ```
//!
//! A record that names an object applies (created, removed, ACL, tagging, restore, lifecycle
//! expiry: anything that may change what a read answers), except reads (`ObjectAccessed:*`,
//! which the edge's own fills cause at a MinIO that reports them); a bucket created or
//! removed drops the bucket's entries and CORS rules, as the feed's bucket events do. Records
//! that name neither, or whose key does not decode, are ignored, and counted. The S3 face serves every bucket of the edge's origins, so no bucket is foreign.
//! Other fields (MinIO's top-level `EventName` and `Key`, AWS's `sequencer`) are not read.

use std::collections::{HashMap, HashSet};

use outpost_store::error::{Code, Error};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::edge::Edge;

/// Largest notification body. AWS caps a message at 64 KiB; MinIO and Ceph send one record a
/// message; room for batches of a few hundred.
pub const MAX_BODY: usize = 1 << 20;

#[derive(Deserialize)]
struct Notification {
    /// Absent in AWS's `s3:TestEvent`.
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: Option<Entity>,
}

#[derive(Deserialize)]
struct Entity {
    bucket: Option<Named>,
    object: Option<ObjectRef>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct ObjectRef {
    key: String,
}

/// What one record makes stale.
#[derive(Debug, PartialEq, Eq)]
enum Stale {
    Object {
        bucket: String,
        key: String,
    },
    /// A bucket created or removed (MinIO's `s3:BucketCreated`, `s3:BucketRemoved`):
    /// everything of it, as for the feed's bucket events (a cached `NoSuchBucket` included).
    Bucket(String),
}

impl Record {
    /// What this record makes stale, if anything.
    fn stale(&self) -> Option<Stale> {
        let name = self
            .event_name
            .strip_prefix("s3:")
            .unwrap_or(&self.event_name);
        // `ObjectCreated:Put`, `BucketCreated` (MinIO's bucket events have no second part).
        let kind = name.split(':').next().unwrap_or_default();
        if kind == "ObjectAccessed" {
            return None;
        }
        let s3 = self.s3.as_ref()?;
        let bucket = s3.bucket.as_ref()?.name.clone();
        if bucket.is_empty() {
            return None;
        }
        if kind == "BucketCreated" || kind == "BucketRemoved" {
            return Some(Stale::Bucket(bucket));
        }
        let key = decode_key(&s3.object.as_ref()?.key)?;
        (!key.is_empty()).then_some(Stale::Object { bucket, key })
    }
}

/// An event's object key: URL-encoded, with `+` for a space (as AWS documents and MinIO sends).
fn decode_key(encoded: &str) -> Option<String> {
    let spaced = encoded.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|k| k.into_owned())
}

/// Whether `Authorization` carries `token`, as it is or after `Bearer ` (MinIO sends its
/// `auth_token` exactly as configured). Compared in constant time.
fn authorized(headers: &http::HeaderMap, token: &str) -> bool {
    let Some(given) = headers.get(http::header::AUTHORIZATION) else {
        return false;
    };
    let given = given.as_bytes();
    let bare = given.strip_prefix(b"Bearer ").unwrap_or(given);
    bool::from(bare.ct_eq(token.as_bytes()))
}

/// One notification request: its summary, or why it is refused. The token is checked before
/// the body is read.
pub async fn receive(
    edge: &Edge,
    parts: &http::request::Parts,
    body: axum::body::Body,
) -> Result<serde_json::Value, Error> {
    let Some(token) = &edge.config.notification_token else {
        return Err(Error::msg(
            Code::AccessDenied,
            "Event notifications are off at this edge.",
        ));
    };
    if !authorized(&parts.headers, token.expose()) {
        tracing::warn!("event notification refused: missing or wrong token");
        return Err(Error::new(Code::AccessDenied));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| Error::new(Code::EntityTooLarge))?;
    let malformed = |e: &dyn std::fmt::Display| {
        Error::msg(
            Code::MalformedJSON,
            format!("Expected an S3 event notification ({{\"Records\": [...]}}): {e}"),
        )
    };
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| malformed(&e))?;
    if !value.is_object() {
        return Err(malformed(&"not a JSON object"));
    }
    let notification = Notification::deserialize(value).map_err(|e| malformed(&e))?;
    Ok(apply(edge, &notification))
}

/// Drops what `notification` names, all at once; the summary answered.
fn apply(edge: &Edge, notification: &Notification) -> serde_json::Value {
    let mut buckets = HashSet::new();
    let mut objects: HashMap<String, HashSet<String>> = HashMap::new();
    let mut applied = 0;
    for stale in notification.records.iter().filter_map(Record::stale) {
        match stale {
            Stale::Object { bucket, key } => {
                objects.entry(bucket).or_default().insert(key);
            }
            Stale::Bucket(bucket) => {
                edge.cors.forget_bucket(&bucket);
                buckets.insert(bucket);
            }
        }
        applied += 1;
    }
    let ignored = notification.records.len() as u64 - applied;
    if applied > 0 {
        edge.cache.purge(move |_, bucket, key| {
            buckets.contains(bucket) || objects.get(bucket).is_some_and(|keys| keys.contains(key))
        });
    }
    // Counted once purged: whoever sees the count finds the entries gone.
    edge.metrics.notification_records(applied, ignored);
    tracing::info!(applied, ignored, "event notification applied");
    serde_json::json!({ "applied": applied, "ignored": ignored })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event: &str, bucket: &str, key: &str) -> Record {
        serde_json::from_value(serde_json::json!({
            "eventName": event,
            "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
        }))
        .unwrap()
    }

    #[test]
    fn records_name_what_they_make_stale() {
        let object = |b: &str, k: &str| {
            Some(Stale::Object {
                bucket: b.to_owned(),
                key: k.to_owned(),
            })
        };
        assert_eq!(
            record("ObjectCreated:Put", "b", "red+flower.jpg").stale(),
            object("b", "red flower.jpg")
        );
        assert_eq!(
            record("s3:ObjectRemoved:Delete", "b", "dir%2F%C3%A4+%2B.txt").stale(),
            object("b", "dir/ä +.txt")
        );
        assert_eq!(
            record("LifecycleExpiration:Delete", "b", "*").stale(),
            object("b", "*")
        );
        assert_eq!(record("s3:ObjectAccessed:Get", "b", "k").stale(), None);
        assert_eq!(record("ObjectCreated:Put", "", "k").stale(), None);
        assert_eq!(record("ObjectCreated:Put", "b", "").stale(), None);
        assert_eq!(record("ObjectCreated:Put", "b", "%FF").stale(), None);
        let bucket_event = |event: &str| -> Record {
            serde_json::from_value(serde_json::json!({
                "eventName": event, "s3": {"bucket": {"name": "b"}},
            }))
            .unwrap()
        };
        for event in [
            "s3:BucketCreated",
            "s3:BucketRemoved",
            "BucketRemoved:Delete",
        ] {
            assert_eq!(bucket_event(event).stale(), Some(Stale::Bucket("b".into())));
        }
        assert_eq!(
            bucket_event("s3:Replication:OperationFailedReplication").stale(),
            None
        );
    }

    #[test]
    fn the_token_is_taken_bare_or_as_a_bearer_token() {
        let with = |v: &str| {
            let mut h = http::HeaderMap::new();
            h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
            h
        };
        assert!(authorized(&with("s3cr3t"), "s3cr3t"));
        assert!(authorized(&with("Bearer s3cr3t"), "s3cr3t"));
        assert!(!authorized(&with("Bearer s3cr3"), "s3cr3t"));
        assert!(!authorized(&with("s3cr3t2"), "s3cr3t"));
        assert!(!authorized(&with("Basic s3cr3t"), "s3cr3t"));
        assert!(!authorized(&http::HeaderMap::new(), "s3cr3t"));
    }
}
