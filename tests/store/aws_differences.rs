//! Places where the store answered differently from AWS, found with real clients.

use std::time::Duration;

use aws_sdk_s3::types::{ServerSideEncryption, TaggingDirective};

use crate::common::*;

/// Tagging, object lock and server-side encryption asked of a write were accepted and dropped:
/// the object lacked what the client was told it has. Until they are supported they are
/// refused, at every write that could carry them.
#[tokio::test]
async fn write_features_not_supported_are_refused_not_dropped() {
    let (_store, s3, b) = TestStore::with_bucket("unsupported").await;
    let tagged = s3
        .put_object()
        .bucket(&b)
        .key("k")
        .tagging("team=blue")
        .body(body("x"))
        .send()
        .await;
    assert_sdk_err(tagged, 501, "NotImplemented");
    let encrypted = s3
        .put_object()
        .bucket(&b)
        .key("k")
        .server_side_encryption(ServerSideEncryption::Aes256)
        .body(body("x"))
        .send()
        .await;
    assert_sdk_err(encrypted, 501, "NotImplemented");
    let upload = s3
        .create_multipart_upload()
        .bucket(&b)
        .key("k")
        .tagging("a=b")
        .send()
        .await;
    assert_sdk_err(upload, 501, "NotImplemented");
    assert_sdk_err(
        s3.head_object().bucket(&b).key("k").send().await,
        404,
        "NotFound",
    );

    put_bytes(&s3, &b, "src", b"source".to_vec()).await;
    let copy = s3
        .copy_object()
        .bucket(&b)
        .key("copy")
        .copy_source(format!("{b}/src"))
        .tagging_directive(TaggingDirective::Replace)
        .tagging("a=b")
        .send()
        .await;
    assert_sdk_err(copy, 501, "NotImplemented");
    // The default directive (COPY of no tags) is fine.
    s3.copy_object()
        .bucket(&b)
        .key("copy")
        .copy_source(format!("{b}/src"))
        .tagging_directive(TaggingDirective::Copy)
        .send()
        .await
        .expect("a copy that keeps the (absent) tags");
}

/// ListObjectsV2 with an empty `continuation-token=`: AWS treats it as absent.
#[tokio::test]
async fn an_empty_continuation_token_is_absent() {
    let (store, s3, b) = TestStore::with_bucket("emptytoken").await;
    put_bytes(&s3, &b, "a", b"x".to_vec()).await;
    let r = RawRequest::new("GET", &format!("/{b}?list-type=2&continuation-token="))
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.xml_all("Key"), ["a"]);
}

/// A presigned URL with a negative `X-Amz-Expires` (boto3 signs a negative ExpiresIn) expired
/// before it was made: 403 AccessDenied, as for any expired URL.
#[tokio::test]
async fn a_negative_presigned_expiry_is_expired() {
    let (store, s3, b) = TestStore::with_bucket("negexpiry").await;
    put_bytes(&s3, &b, "k", b"x".to_vec()).await;
    let mut req = RawRequest::new("GET", &format!("/{b}/k")).presign(
        &store,
        &SignOpts::default(),
        Duration::from_secs(600),
    );
    assert!(req.target.contains("X-Amz-Expires=600"));
    req.target = req.target.replace("X-Amz-Expires=600", "X-Amz-Expires=-60");
    let r = req.send(&store).await;
    r.assert_error(403, "AccessDenied");
    assert_eq!(r.xml("Message").as_deref(), Some("Request has expired"));
}
