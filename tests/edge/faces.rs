//! The edge's S3 face: signatures checked with the store's rules, public buckets open to
//! anonymous readers, other operations relayed to the origin and answered unchanged.

use crate::common::*;

#[tokio::test]
async fn the_edge_checks_signatures_like_the_store() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "sig").await;
    put_bytes(&s3, &b, "secret.txt", "s").await;
    // Cache it for signed readers first: anonymous ones must still be refused.
    let got = p
        .edge
        .client()
        .get_object()
        .bucket(&b)
        .key("secret.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(read_body(got.body).await, b"s");

    let r = RawRequest::new("GET", &format!("/{b}/secret.txt"))
        .send(&p.edge)
        .await;
    r.assert_error(403, "AccessDenied");
    let bad = client_for(&p.edge.url, ACCESS_KEY, "wrong secret");
    assert_sdk_err(
        bad.get_object().bucket(&b).key("secret.txt").send().await,
        403,
        "SignatureDoesNotMatch",
    );
    let unknown = client_for(&p.edge.url, "AKIDOESNOTEXIST00000", SECRET_KEY);
    assert_sdk_err(
        unknown
            .get_object()
            .bucket(&b)
            .key("secret.txt")
            .send()
            .await,
        403,
        "InvalidAccessKeyId",
    );
    let r = RawRequest::new("GET", &format!("/{b}/secret.txt"))
        .presign(
            &p.edge,
            &SignOpts::default(),
            std::time::Duration::from_secs(60),
        )
        .send(&p.edge)
        .await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"s"[..]),
        "presigned URL at the edge"
    );
}

#[tokio::test]
async fn public_buckets_are_served_to_anonymous_readers() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "pub").await;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/*"}}]}}"#
    );
    s3.put_bucket_policy()
        .bucket(&b)
        .policy(policy)
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(&b)
        .key("patch-1.2.bin")
        .cache_control("public, max-age=3600")
        .body(body("patch"))
        .send()
        .await
        .unwrap();
    for expected in ["Miss from outpost", "Hit from outpost"] {
        let r = RawRequest::new("GET", &format!("/{b}/patch-1.2.bin"))
            .send(&p.edge)
            .await;
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"patch"[..]),
            "{}",
            r.text()
        );
        assert_eq!(r.header("x-cache"), Some(expected));
    }
    // Anonymous writes are relayed and refused by the store.
    let r = RawRequest::new("PUT", &format!("/{b}/evil"))
        .body("x")
        .send(&p.edge)
        .await;
    r.assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn writes_and_listings_are_relayed_to_the_origin() {
    let p = EdgePair::start();
    let edge = p.edge.client();
    let b = unique_bucket("relay");
    edge.create_bucket()
        .bucket(&b)
        .send()
        .await
        .expect("CreateBucket through the edge");
    let data = random_bytes(3 * MIB + 7, 3);
    let put = edge
        .put_object()
        .bucket(&b)
        .key("dir/file.bin")
        .content_type("application/x-patch")
        .body(body(data.clone()))
        .send()
        .await
        .expect("PutObject through the edge");
    assert_eq!(put.e_tag(), Some(etag_of(&data).as_str()));

    // The object landed in the store, byte for byte.
    let got = p
        .store
        .client()
        .get_object()
        .bucket(&b)
        .key("dir/file.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("application/x-patch"));
    assert!(read_body(got.body).await == data);

    let list = edge
        .list_objects_v2()
        .bucket(&b)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(list.common_prefixes()[0].prefix(), Some("dir/"));

    // A write through the edge replaces the edge's cached copy at once.
    assert!(object_bytes(&edge, &b, "dir/file.bin").await == data);
    put_bytes(&edge, &b, "dir/file.bin", "v2").await;
    assert_eq!(object_bytes(&edge, &b, "dir/file.bin").await, b"v2");
    edge.delete_object()
        .bucket(&b)
        .key("dir/file.bin")
        .send()
        .await
        .unwrap();
    assert_sdk_err(
        edge.get_object()
            .bucket(&b)
            .key("dir/file.bin")
            .send()
            .await,
        404,
        "NoSuchKey",
    );

    // Errors come back as the store wrote them.
    assert_sdk_err(
        edge.delete_bucket()
            .bucket("no-such-bucket-here")
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
    edge.delete_bucket().bucket(&b).send().await.unwrap();
}

#[tokio::test]
async fn streamed_uploads_keep_their_checksums_through_the_edge() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "trailer").await;
    let data = random_bytes(200_000, 8);
    let c = raw::Chunked {
        chunk_size: 64 * 1024,
        trailer: Some(("x-amz-checksum-crc32".into(), raw::crc32_b64(&data))),
        ..Default::default()
    };
    // Signed chunks plus a signed CRC32 trailer, as the SDKs stream over plain http.
    let r = raw::signed_chunked(
        &p.edge,
        RawRequest::new("PUT", &format!("/{b}/ok")),
        &data,
        &c,
        &SignOpts::default(),
    )
    .send(&p.edge)
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let head = s3
        .head_object()
        .bucket(&b)
        .key("ok")
        .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.checksum_crc32(),
        Some(raw::crc32_b64(&data).as_str()),
        "the store verified and kept the trailer the edge relayed"
    );
    assert!(object_bytes(&s3, &b, "ok").await == data);

    // A wrong trailing checksum is refused, and nothing is stored.
    let bad = raw::Chunked {
        trailer: Some(("x-amz-checksum-crc32".into(), raw::crc32_b64(b"other"))),
        ..c
    };
    let r = raw::unsigned_trailer(
        &p.edge,
        RawRequest::new("PUT", &format!("/{b}/bad")),
        &data,
        &bad,
        &SignOpts::default(),
    )
    .send(&p.edge)
    .await;
    r.assert_error(400, "BadDigest");
    assert_sdk_err(
        s3.head_object().bucket(&b).key("bad").send().await,
        404,
        "NotFound",
    );
}

#[tokio::test]
async fn a_tampered_chunk_is_refused_at_the_edge() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "tamper").await;
    let data = random_bytes(150_000, 9);
    let c = raw::Chunked {
        chunk_size: 64 * 1024,
        tamper_chunk: Some(1),
        ..Default::default()
    };
    let r = raw::signed_chunked(
        &p.edge,
        RawRequest::new("PUT", &format!("/{b}/t")),
        &data,
        &c,
        &SignOpts::default(),
    )
    .send(&p.edge)
    .await;
    r.assert_error(403, "SignatureDoesNotMatch");
    assert_sdk_err(
        s3.head_object().bucket(&b).key("t").send().await,
        404,
        "NotFound",
    );
}
