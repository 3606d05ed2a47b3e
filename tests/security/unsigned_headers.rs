//! Hole 1: unsigned `x-amz-*` headers were honoured. The holder of a presigned PUT URL added an
//! unsigned `x-amz-copy-source` and the upload became a CopyObject of a private object into a
//! key they could read. AWS refuses any `x-amz-*` header that is not signed (403 AccessDenied,
//! "There were headers present in the request which were not signed"); so do the store and
//! the edge, in header and presigned forms alike.

use std::time::Duration;

use crate::common::*;

const PAYROLL: &[u8] = b"name,salary\nalice,1000000\n";

/// A store with a private `secret/payroll.csv` in `bucket`, and an edge in front of it.
async fn setup() -> (EdgePair, aws_sdk_s3::Client, String) {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let bucket = pair.store.bucket(&s3, "unsigned").await;
    put_bytes(&s3, &bucket, "secret/payroll.csv", PAYROLL).await;
    (pair, s3, bucket)
}

fn assert_not_signed(r: &raw::RawResponse, header: &str) {
    r.assert_error(403, "AccessDenied");
    assert_eq!(
        r.xml("Message").as_deref(),
        Some("There were headers present in the request which were not signed"),
        "{}",
        r.text()
    );
    assert_eq!(
        r.xml("HeadersNotSigned").as_deref(),
        Some(header),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn presigned_put_with_an_added_copy_source_is_refused() {
    let (pair, s3, bucket) = setup().await;
    for server in [&pair.store, &pair.edge] {
        let r = RawRequest::new("PUT", &format!("/{bucket}/uploads/avatar.png"))
            .presign(server, &SignOpts::default(), Duration::from_secs(600))
            .header(
                "x-amz-copy-source",
                &format!("/{bucket}/secret/payroll.csv"),
            )
            .body(Vec::new())
            .send(server)
            .await;
        assert_not_signed(&r, "x-amz-copy-source");
        let missing = s3
            .head_object()
            .bucket(&bucket)
            .key("uploads/avatar.png")
            .send()
            .await;
        assert_sdk_err(missing, 404, "NotFound");
    }
    // The URL still does what it was made for.
    let r = RawRequest::new("PUT", &format!("/{bucket}/uploads/avatar.png"))
        .presign(&pair.edge, &SignOpts::default(), Duration::from_secs(600))
        .body(b"png".to_vec())
        .send(&pair.edge)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        object_bytes(&s3, &bucket, "uploads/avatar.png").await,
        b"png"
    );
}

#[tokio::test]
async fn unsigned_metadata_is_refused_not_stored() {
    let (pair, s3, bucket) = setup().await;
    for server in [&pair.store, &pair.edge] {
        // Presigned form.
        let r = RawRequest::new("PUT", &format!("/{bucket}/meta.txt"))
            .presign(server, &SignOpts::default(), Duration::from_secs(600))
            .header("x-amz-meta-owner", "mallory")
            .body(b"x".to_vec())
            .send(server)
            .await;
        assert_not_signed(&r, "x-amz-meta-owner");
        // Header form: signed, then a header added (and another with mixed case).
        let r = RawRequest::new("PUT", &format!("/{bucket}/meta.txt"))
            .body(b"x".to_vec())
            .sign(server)
            .header("X-Amz-Meta-Owner", "mallory")
            .header("x-amz-acl", "public-read")
            .send(server)
            .await;
        assert_not_signed(&r, "x-amz-acl, x-amz-meta-owner");
        let missing = s3
            .head_object()
            .bucket(&bucket)
            .key("meta.txt")
            .send()
            .await;
        assert_sdk_err(missing, 404, "NotFound");
    }
    // Signed metadata is stored as before.
    let r = RawRequest::new("PUT", &format!("/{bucket}/meta.txt"))
        .header("x-amz-meta-owner", "alice")
        .body(b"x".to_vec())
        .sign(&pair.edge)
        .send(&pair.edge)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key("meta.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata()
            .and_then(|m| m.get("owner"))
            .map(String::as_str),
        Some("alice")
    );
}

#[tokio::test]
async fn a_presigned_get_with_an_added_header_reads_nothing() {
    let (pair, _s3, bucket) = setup().await;
    for server in [&pair.store, &pair.edge] {
        // The GET URL is for a public file; the forged header asks for another object's bytes
        // by way of a copy-source-like header the store must never act on unsigned.
        let r = RawRequest::new("GET", &format!("/{bucket}/secret/payroll.csv"))
            .presign(server, &SignOpts::default(), Duration::from_secs(600))
            .header("x-amz-request-payer", "requester")
            .send(server)
            .await;
        assert_not_signed(&r, "x-amz-request-payer");
        assert!(!r.text().contains("alice"));
        // Without the extra header the URL works.
        let r = RawRequest::new("GET", &format!("/{bucket}/secret/payroll.csv"))
            .presign(server, &SignOpts::default(), Duration::from_secs(600))
            .send(server)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.body, PAYROLL);
    }
}
