//! S3 operations we do not implement, by sub-resource and method, with their AWS names: they
//! route to [`Endpoint::Unsupported`](super::Endpoint::Unsupported), so metrics and logs show
//! what clients ask for, and the answer (NotImplemented) names the operation.
//!
//! Routing one of these to a plain listing or a plain object read would answer a question the
//! client did not ask. A sub-resource listed here with a method it has no row for is refused as
//! an unknown operation.

/// (sub-resource, method, operation) on a bucket: sub-resources of which no operation is
/// served. (PutBucketVersioning is routed beside GetBucketVersioning.)
const BUCKET: &[(&str, &str, &str)] = &[
    ("accelerate", "GET", "GetBucketAccelerateConfiguration"),
    ("accelerate", "PUT", "PutBucketAccelerateConfiguration"),
    ("analytics", "GET", "GetBucketAnalyticsConfiguration"),
    ("analytics", "PUT", "PutBucketAnalyticsConfiguration"),
    ("analytics", "DELETE", "DeleteBucketAnalyticsConfiguration"),
    ("encryption", "GET", "GetBucketEncryption"),
    ("encryption", "PUT", "PutBucketEncryption"),
    ("encryption", "DELETE", "DeleteBucketEncryption"),
    (
        "intelligent-tiering",
        "GET",
        "GetBucketIntelligentTieringConfiguration",
    ),
    (
        "intelligent-tiering",
        "PUT",
        "PutBucketIntelligentTieringConfiguration",
    ),
    (
        "intelligent-tiering",
        "DELETE",
        "DeleteBucketIntelligentTieringConfiguration",
    ),
    ("inventory", "GET", "GetBucketInventoryConfiguration"),
    ("inventory", "PUT", "PutBucketInventoryConfiguration"),
    ("inventory", "DELETE", "DeleteBucketInventoryConfiguration"),
    ("lifecycle", "GET", "GetBucketLifecycleConfiguration"),
    ("lifecycle", "PUT", "PutBucketLifecycleConfiguration"),
    ("lifecycle", "DELETE", "DeleteBucketLifecycle"),
    ("logging", "GET", "GetBucketLogging"),
    ("logging", "PUT", "PutBucketLogging"),
    (
        "metadataTable",
        "GET",
        "GetBucketMetadataTableConfiguration",
    ),
    (
        "metadataTable",
        "POST",
        "CreateBucketMetadataTableConfiguration",
    ),
    (
        "metadataTable",
        "DELETE",
        "DeleteBucketMetadataTableConfiguration",
    ),
    ("metrics", "GET", "GetBucketMetricsConfiguration"),
    ("metrics", "PUT", "PutBucketMetricsConfiguration"),
    ("metrics", "DELETE", "DeleteBucketMetricsConfiguration"),
    ("notification", "GET", "GetBucketNotificationConfiguration"),
    ("notification", "PUT", "PutBucketNotificationConfiguration"),
    ("object-lock", "GET", "GetObjectLockConfiguration"),
    ("object-lock", "PUT", "PutObjectLockConfiguration"),
    ("ownershipControls", "GET", "GetBucketOwnershipControls"),
    ("ownershipControls", "PUT", "PutBucketOwnershipControls"),
    (
        "ownershipControls",
        "DELETE",
        "DeleteBucketOwnershipControls",
    ),
    ("replication", "GET", "GetBucketReplication"),
    ("replication", "PUT", "PutBucketReplication"),
    ("replication", "DELETE", "DeleteBucketReplication"),
    ("requestPayment", "GET", "GetBucketRequestPayment"),
    ("requestPayment", "PUT", "PutBucketRequestPayment"),
    ("tagging", "GET", "GetBucketTagging"),
    ("tagging", "PUT", "PutBucketTagging"),
    ("tagging", "DELETE", "DeleteBucketTagging"),
];

/// Configurations of which a bucket holds several, by `id`: a GET without one lists them.
const LISTED: &[(&str, &str)] = &[
    ("analytics", "ListBucketAnalyticsConfigurations"),
    (
        "intelligent-tiering",
        "ListBucketIntelligentTieringConfigurations",
    ),
    ("inventory", "ListBucketInventoryConfigurations"),
    ("metrics", "ListBucketMetricsConfigurations"),
];

/// (sub-resource, method, operation) on an object.
const OBJECT: &[(&str, &str, &str)] = &[
    ("tagging", "GET", "GetObjectTagging"),
    ("tagging", "PUT", "PutObjectTagging"),
    ("tagging", "DELETE", "DeleteObjectTagging"),
    ("retention", "GET", "GetObjectRetention"),
    ("retention", "PUT", "PutObjectRetention"),
    ("legal-hold", "GET", "GetObjectLegalHold"),
    ("legal-hold", "PUT", "PutObjectLegalHold"),
    ("torrent", "GET", "GetObjectTorrent"),
    ("restore", "POST", "RestoreObject"),
    ("select", "POST", "SelectObjectContent"),
];

/// What [`bucket`] and [`object`] find.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Found {
    /// No unsupported sub-resource in the query.
    None,
    /// The AWS name of the operation asked for.
    Operation(&'static str),
    /// An unsupported sub-resource with a method no operation of it uses.
    Unknown,
}

pub(super) fn bucket(method: &str, has: impl Fn(&str) -> bool) -> Found {
    if method == "GET"
        && let Some((_, name)) = LISTED.iter().find(|(sub, _)| has(sub))
        && !has("id")
    {
        return Found::Operation(name);
    }
    find(BUCKET, method, has)
}

pub(super) fn object(method: &str, has: impl Fn(&str) -> bool) -> Found {
    find(OBJECT, method, has)
}

fn find(table: &[(&str, &str, &'static str)], method: &str, has: impl Fn(&str) -> bool) -> Found {
    let mut asked = false;
    for (sub, m, name) in table {
        if has(sub) {
            if *m == method {
                return Found::Operation(name);
            }
            asked = true;
        }
    }
    if asked { Found::Unknown } else { Found::None }
}
