//! Authentication: SigV4 header (SDK), presigned URLs (SDK presigning, expiry, the 7-day cap,
//! tampering), SigV2 presigned GET, aws-chunked signed streaming with chunk signatures we compute
//! (and a tampered chunk), signed and unsigned trailers, UNSIGNED-PAYLOAD, chunked transfer
//! without Content-Length, Expect: 100-continue, clock skew, wrong key, wrong secret.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumMode;

use crate::common::raw::{Chunked, Payload, crc32_b64, signed_chunked, unsigned_trailer};
use crate::common::*;

#[tokio::test]
async fn presigned_get_and_put_from_the_sdk() {
    let (_store, s3, b) = TestStore::with_bucket("presign").await;
    let http = reqwest::Client::new();

    // Presigned PUT, used by a plain HTTP client.
    let put = s3
        .put_object()
        .bucket(&b)
        .key("up/loaded file.txt")
        .content_type("text/plain")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    let mut req = http.put(put.uri()).body("uploaded via presigned PUT");
    for (k, v) in put.headers() {
        req = req.header(k, v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "presigned PUT: {}",
        resp.text().await.unwrap()
    );

    // Presigned GET.
    let get = s3
        .get_object()
        .bucket(&b)
        .key("up/loaded file.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    let resp = http.get(get.uri()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers().get("content-type").unwrap(), "text/plain");
    assert_eq!(
        resp.bytes().await.unwrap().as_ref(),
        b"uploaded via presigned PUT"
    );

    // Presigned HEAD.
    let head = s3
        .head_object()
        .bucket(&b)
        .key("up/loaded file.txt")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .unwrap();
    let resp = http.head(head.uri()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // A presigned GET URL does not authorise a different key or method.
    let other = get.uri().replace("loaded%20file.txt", "other.txt");
    let r = http.get(&other).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403, "tampered presigned URL");
    let text = r.text().await.unwrap();
    assert!(
        text.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{text}"
    );
    let r = http.delete(get.uri()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403, "presigned GET used for DELETE");
    s3.head_object()
        .bucket(&b)
        .key("up/loaded file.txt")
        .send()
        .await
        .expect("object not deleted");
}

#[tokio::test]
async fn expired_presigned_url_is_rejected() {
    let (store, s3, b) = TestStore::with_bucket("expired").await;
    put_bytes(&s3, &b, "k", "x").await;
    let cfg = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(2 * 3600))
        .expires_in(Duration::from_secs(60))
        .build()
        .unwrap();
    let get = s3
        .get_object()
        .bucket(&b)
        .key("k")
        .presigned(cfg)
        .await
        .unwrap();
    let path = get.uri().split_once(&store.addr).unwrap().1.to_string();
    let r = RawRequest::new("GET", &path).send(&store).await;
    r.assert_error(403, "AccessDenied");
    assert!(
        r.xml("Message")
            .unwrap_or_default()
            .to_lowercase()
            .contains("expired"),
        "message says expired: {}",
        r.text()
    );
}

#[tokio::test]
async fn presign_longer_than_seven_days_is_rejected() {
    let (store, s3, b) = TestStore::with_bucket("sevendays").await;
    put_bytes(&s3, &b, "k", "x").await;
    let ok = RawRequest::new("GET", &format!("/{b}/k")).presign(
        &store,
        &SignOpts::default(),
        Duration::from_secs(7 * 24 * 3600),
    );
    let r = ok.send(&store).await;
    assert_eq!(r.status, 200, "exactly 7 days is allowed: {}", r.text());
    let long = RawRequest::new("GET", &format!("/{b}/k")).presign(
        &store,
        &SignOpts::default(),
        Duration::from_secs(7 * 24 * 3600 + 1),
    );
    let r = long.send(&store).await;
    r.assert_error(400, "AuthorizationQueryParametersError");
}

#[tokio::test]
async fn sigv2_presigned_get() {
    let (store, s3, b) = TestStore::with_bucket("sigv2").await;
    put_bytes(&s3, &b, "file.txt", "v2 presigned").await;
    let url = |expires: u64, secret: &str| {
        let sts = format!("GET\n\n\n{expires}\n/{b}/file.txt");
        let sig = hash::b64(&hash::hmac_sha1(secret.as_bytes(), sts.as_bytes()));
        format!(
            "/{b}/file.txt?AWSAccessKeyId={}&Expires={expires}&Signature={}",
            enc_query(ACCESS_KEY),
            enc_query(&sig)
        )
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = RawRequest::new("GET", &url(now + 600, SECRET_KEY))
        .send(&store)
        .await;
    assert_eq!(
        r.status,
        200,
        "SigV2 presigned GET (aws-cli v1 `presign`): {}",
        r.text()
    );
    assert_eq!(r.body, b"v2 presigned");
    let r = RawRequest::new("GET", &url(now - 60, SECRET_KEY))
        .send(&store)
        .await;
    r.assert_error(403, "AccessDenied");
    let r = RawRequest::new("GET", &url(now + 600, "wrong-secret"))
        .send(&store)
        .await;
    r.assert_error(403, "SignatureDoesNotMatch");
    // SigV2 signs every x-amz-* header: one added to the URL's request breaks it.
    let r = RawRequest::new("GET", &url(now + 600, SECRET_KEY))
        .header("x-amz-copy-source", &format!("/{b}/other"))
        .send(&store)
        .await;
    r.assert_error(403, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn signed_aws_chunked_streaming_upload() {
    let (store, s3, b) = TestStore::with_bucket("chunked").await;
    for (i, (len, chunk)) in [
        (200_000usize, 64 * 1024usize),
        (65_536, 65_536),
        (1, 8192),
        (0, 8192),
    ]
    .into_iter()
    .enumerate()
    {
        let data = random_bytes(len, 50 + i as u64);
        let key = format!("streamed-{i}");
        let c = Chunked {
            chunk_size: chunk,
            ..Default::default()
        };
        let r = signed_chunked(
            &store,
            RawRequest::new("PUT", &format!("/{b}/{key}")),
            &data,
            &c,
            &SignOpts::default(),
        )
        .send(&store)
        .await;
        assert_eq!(
            r.status,
            200,
            "signed streaming PUT of {len} bytes: {}",
            r.text()
        );
        assert_eq!(
            r.header("etag"),
            Some(etag_of(&data).as_str()),
            "ETag is the MD5 of the decoded body"
        );
        let g = s3.get_object().bucket(&b).key(&key).send().await.unwrap();
        assert_eq!(g.content_length(), Some(len as i64));
        assert!(
            read_body(g.body).await == data,
            "decoded body stored, no chunk framing"
        );
    }
    // Over HTTP Transfer-Encoding: chunked, no Content-Length.
    let data = random_bytes(100_000, 60);
    let c = Chunked {
        chunk_size: 30_000,
        transfer_chunked: true,
        ..Default::default()
    };
    let r = signed_chunked(
        &store,
        RawRequest::new("PUT", &format!("/{b}/te")),
        &data,
        &c,
        &SignOpts::default(),
    )
    .send(&store)
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(object_bytes(&s3, &b, "te").await == data);
}

#[tokio::test]
async fn tampered_chunk_is_rejected_and_nothing_is_stored() {
    let (store, s3, b) = TestStore::with_bucket("tamper").await;
    let data = random_bytes(150_000, 61);
    for tamper in [0, 1, 2] {
        let key = format!("t{tamper}");
        let c = Chunked {
            chunk_size: 64 * 1024,
            tamper_chunk: Some(tamper),
            ..Default::default()
        };
        let r = signed_chunked(
            &store,
            RawRequest::new("PUT", &format!("/{b}/{key}")),
            &data,
            &c,
            &SignOpts::default(),
        )
        .send(&store)
        .await;
        r.assert_error(403, "SignatureDoesNotMatch");
        assert_sdk_err(
            s3.head_object().bucket(&b).key(&key).send().await,
            404,
            "NotFound",
        );
    }
    // A tampered overwrite leaves the old object in place.
    put_bytes(&s3, &b, "keep", "old").await;
    let c = Chunked {
        chunk_size: 64 * 1024,
        tamper_chunk: Some(2),
        ..Default::default()
    };
    let r = signed_chunked(
        &store,
        RawRequest::new("PUT", &format!("/{b}/keep")),
        &data,
        &c,
        &SignOpts::default(),
    )
    .send(&store)
    .await;
    r.assert_error(403, "SignatureDoesNotMatch");
    let got = object_bytes(&s3, &b, "keep").await;
    assert_eq!(got, b"old");
}

#[tokio::test]
async fn signed_streaming_with_signed_trailer() {
    let (store, s3, b) = TestStore::with_bucket("sigtrailer").await;
    let data = random_bytes(90_000, 62);
    let c = Chunked {
        chunk_size: 32 * 1024,
        trailer: Some(("x-amz-checksum-crc32".into(), crc32_b64(&data))),
        ..Default::default()
    };
    let r = signed_chunked(
        &store,
        RawRequest::new("PUT", &format!("/{b}/ok")),
        &data,
        &c,
        &SignOpts::default(),
    )
    .send(&store)
    .await;
    assert_eq!(
        r.status,
        200,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: {}",
        r.text()
    );
    let r = RawRequest::new("HEAD", &format!("/{b}/ok"))
        .header("x-amz-checksum-mode", "ENABLED")
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(
        r.header("x-amz-checksum-crc32"),
        Some(crc32_b64(&data).as_str()),
        "trailer checksum stored"
    );

    // Wrong trailer value: BadDigest, nothing stored.
    let c = Chunked {
        chunk_size: 32 * 1024,
        trailer: Some(("x-amz-checksum-crc32".into(), crc32_b64(b"other"))),
        ..Default::default()
    };
    let r = signed_chunked(
        &store,
        RawRequest::new("PUT", &format!("/{b}/bad")),
        &data,
        &c,
        &SignOpts::default(),
    )
    .send(&store)
    .await;
    r.assert_error(400, "BadDigest");
    assert_sdk_err(
        s3.head_object().bucket(&b).key("bad").send().await,
        404,
        "NotFound",
    );
}

#[tokio::test]
async fn sdk_streaming_body_upload_uses_aws_chunked_with_trailer() {
    // Over plain http the Rust SDK signs a streaming body chunk by chunk and appends a CRC32
    // trailer (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER).
    let (_store, s3, b) = TestStore::with_bucket("sdkstream").await;
    let data = random_bytes(3 * MIB + 5, 63);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &data).unwrap();
    let put = s3
        .put_object()
        .bucket(&b)
        .key("from-file")
        .content_encoding("gzip")
        .body(ByteStream::from_path(file.path()).await.unwrap())
        .send()
        .await
        .expect("SDK streaming upload");
    assert_eq!(put.e_tag(), Some(etag_of(&data).as_str()));
    assert_eq!(put.checksum_crc32(), Some(crc32_b64(&data).as_str()));
    let g = s3
        .get_object()
        .bucket(&b)
        .key("from-file")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(
        g.content_encoding(),
        Some("gzip"),
        "aws-chunked stripped from Content-Encoding"
    );
    assert_eq!(g.checksum_crc32(), Some(crc32_b64(&data).as_str()));
    assert!(read_body(g.body).await == data);
}

#[tokio::test]
async fn unsigned_payload_trailer_with_crc32() {
    let (store, s3, b) = TestStore::with_bucket("trailer").await;
    // The exact example from the design notes.
    let data = b"hello world\n".to_vec();
    for (i, transfer_chunked) in [false, true].into_iter().enumerate() {
        let key = format!("t{i}");
        let c = Chunked {
            chunk_size: 64 * 1024,
            trailer: Some(("x-amz-checksum-crc32".into(), crc32_b64(&data))),
            transfer_chunked,
            ..Default::default()
        };
        // Signed like every x-amz-* header a real SDK sends.
        let req = unsigned_trailer(
            &store,
            RawRequest::new("PUT", &format!("/{b}/{key}"))
                .header("x-amz-sdk-checksum-algorithm", "CRC32"),
            &data,
            &c,
            &SignOpts::default(),
        );
        let r = req.send(&store).await;
        assert_eq!(
            r.status,
            200,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER (transfer-chunked: {transfer_chunked}): {}",
            r.text()
        );
        let g = s3
            .get_object()
            .bucket(&b)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(g.checksum_crc32(), Some(crc32_b64(&data).as_str()));
        assert_eq!(g.content_length(), Some(data.len() as i64));
        assert_eq!(read_body(g.body).await, data);
    }
    // Several chunks.
    let big = random_bytes(200_000, 64);
    let c = Chunked {
        chunk_size: 65_536,
        trailer: Some(("x-amz-checksum-crc32".into(), crc32_b64(&big))),
        ..Default::default()
    };
    let r = unsigned_trailer(
        &store,
        RawRequest::new("PUT", &format!("/{b}/big")),
        &big,
        &c,
        &SignOpts::default(),
    )
    .send(&store)
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(object_bytes(&s3, &b, "big").await == big);
}

#[tokio::test]
async fn unsigned_trailer_with_wrong_checksum_stores_nothing() {
    let (store, s3, b) = TestStore::with_bucket("badtrailer").await;
    let data = random_bytes(100_000, 65);
    let c = Chunked {
        chunk_size: 65_536,
        trailer: Some(("x-amz-checksum-crc32".into(), crc32_b64(b"not the data"))),
        ..Default::default()
    };
    let r = unsigned_trailer(
        &store,
        RawRequest::new("PUT", &format!("/{b}/k")),
        &data,
        &c,
        &SignOpts::default(),
    )
    .send(&store)
    .await;
    r.assert_error(400, "BadDigest");
    assert_sdk_err(
        s3.head_object().bucket(&b).key("k").send().await,
        404,
        "NotFound",
    );
    // Overwrite attempt keeps the old object.
    put_bytes(&s3, &b, "keep", "old").await;
    let r = unsigned_trailer(
        &store,
        RawRequest::new("PUT", &format!("/{b}/keep")),
        &data,
        &c,
        &SignOpts::default(),
    )
    .send(&store)
    .await;
    r.assert_error(400, "BadDigest");
    assert_eq!(object_bytes(&s3, &b, "keep").await, b"old");
}

#[tokio::test]
async fn unsigned_trailer_still_checks_the_header_signature() {
    let (store, s3, b) = TestStore::with_bucket("trailersig").await;
    let data = b"would-be anonymous upload".to_vec();
    let c = Chunked {
        chunk_size: 1024,
        trailer: Some(("x-amz-checksum-crc32".into(), crc32_b64(&data))),
        ..Default::default()
    };
    let bad = SignOpts::default().keys(ACCESS_KEY, "not-the-secret");
    let r = unsigned_trailer(
        &store,
        RawRequest::new("PUT", &format!("/{b}/k")),
        &data,
        &c,
        &bad,
    )
    .send(&store)
    .await;
    r.assert_error(403, "SignatureDoesNotMatch");
    // And with no Authorization at all.
    let mut req = unsigned_trailer(
        &store,
        RawRequest::new("PUT", &format!("/{b}/k")),
        &data,
        &c,
        &SignOpts::default(),
    );
    req.headers.retain(|(k, _)| k != "authorization");
    let r = req.send(&store).await;
    r.assert_error(403, "AccessDenied");
    assert_sdk_err(
        s3.head_object().bucket(&b).key("k").send().await,
        404,
        "NotFound",
    );
}

#[tokio::test]
async fn unsigned_payload_and_chunked_transfer_without_content_length() {
    let (store, s3, b) = TestStore::with_bucket("unsigned").await;
    let data = random_bytes(50_000, 66);

    // rclone: UNSIGNED-PAYLOAD with Content-Length.
    let (req, _) = RawRequest::new("PUT", &format!("/{b}/unsigned"))
        .body(data.clone())
        .sign_with(&store, &SignOpts::default().payload(Payload::Unsigned));
    let r = req.send(&store).await;
    assert_eq!(r.status, 200, "UNSIGNED-PAYLOAD: {}", r.text());
    assert!(object_bytes(&s3, &b, "unsigned").await == data);

    // Transfer-Encoding: chunked, no Content-Length, UNSIGNED-PAYLOAD.
    let pieces: Vec<Vec<u8>> = data.chunks(7000).map(|c| c.to_vec()).collect();
    let (req, _) = RawRequest::new("PUT", &format!("/{b}/te-unsigned"))
        .chunked_body(pieces.clone())
        .sign_with(&store, &SignOpts::default().payload(Payload::Unsigned));
    let r = req.send(&store).await;
    assert_eq!(r.status, 200, "chunked transfer, unsigned: {}", r.text());
    assert!(object_bytes(&s3, &b, "te-unsigned").await == data);

    // Transfer-Encoding: chunked with a hex x-amz-content-sha256 of the whole body.
    let r = RawRequest::new("PUT", &format!("/{b}/te-signed"))
        .chunked_body(pieces.clone())
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(
        r.status,
        200,
        "chunked transfer, hashed payload: {}",
        r.text()
    );
    assert_eq!(r.header("etag"), Some(etag_of(&data).as_str()));

    // Expect: 100-continue (what boto3 and aws-cli send).
    let r = RawRequest::new("PUT", &format!("/{b}/expect"))
        .header("expect", "100-continue")
        .body(data.clone())
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "Expect: 100-continue: {}", r.text());
    assert!(object_bytes(&s3, &b, "expect").await == data);
}

#[tokio::test]
async fn clock_skew_is_request_time_too_skewed() {
    let (store, _s3, b) = TestStore::with_bucket("skew").await;
    for skew in [-(20 * 60i64), 20 * 60] {
        let t = if skew < 0 {
            SystemTime::now() - Duration::from_secs(-skew as u64)
        } else {
            SystemTime::now() + Duration::from_secs(skew as u64)
        };
        let (req, _) = RawRequest::new("GET", &format!("/{b}?list-type=2"))
            .sign_with(&store, &SignOpts::default().time(t));
        let r = req.send(&store).await;
        r.assert_error(403, "RequestTimeTooSkewed");
    }
    // Within 15 minutes is fine.
    let t = SystemTime::now() - Duration::from_secs(10 * 60);
    let (req, _) = RawRequest::new("GET", &format!("/{b}?list-type=2"))
        .sign_with(&store, &SignOpts::default().time(t));
    assert_eq!(
        req.send(&store).await.status,
        200,
        "10 minutes of skew is within tolerance"
    );
}

#[tokio::test]
async fn wrong_access_key_and_wrong_secret() {
    let (store, s3, b) = TestStore::with_bucket("wrongkey").await;

    let (req, _) = RawRequest::new("GET", &format!("/{b}?list-type=2")).sign_with(
        &store,
        &SignOpts::default().keys("AKIDOESNOTEXIST00000", SECRET_KEY),
    );
    req.send(&store)
        .await
        .assert_error(403, "InvalidAccessKeyId");
    let (req, _) = RawRequest::new("GET", &format!("/{b}?list-type=2")).sign_with(
        &store,
        &SignOpts::default().keys(ACCESS_KEY, "wrong secret"),
    );
    let r = req.send(&store).await;
    r.assert_error(403, "SignatureDoesNotMatch");

    // The SDK sees the same codes.
    let bad_key = client_for(&store.url, "AKIDOESNOTEXIST00000", SECRET_KEY);
    assert_sdk_err(
        bad_key.list_objects_v2().bucket(&b).send().await,
        403,
        "InvalidAccessKeyId",
    );
    let bad_secret = client_for(&store.url, ACCESS_KEY, "wrong secret");
    assert_sdk_err(
        bad_secret.list_objects_v2().bucket(&b).send().await,
        403,
        "SignatureDoesNotMatch",
    );
    assert_sdk_err(
        bad_secret
            .put_object()
            .bucket(&b)
            .key("x")
            .body(body("x"))
            .send()
            .await,
        403,
        "SignatureDoesNotMatch",
    );
    assert_sdk_err(
        s3.head_object().bucket(&b).key("x").send().await,
        404,
        "NotFound",
    );

    // A header changed after signing.
    let req = RawRequest::new("PUT", &format!("/{b}/meta"))
        .header("x-amz-meta-a", "signed")
        .body("x")
        .sign(&store);
    let r = req.header("x-amz-meta-a", "changed").send(&store).await;
    r.assert_error(403, "SignatureDoesNotMatch");
    // A body changed after signing (hex payload hash no longer matches).
    let mut req = RawRequest::new("PUT", &format!("/{b}/body"))
        .body("original")
        .sign(&store);
    req.body = crate::common::raw::Body::Bytes(b"modified".to_vec());
    let r = req.send(&store).await;
    assert!(
        (r.status == 400 && r.code() == "XAmzContentSHA256Mismatch")
            || (r.status == 403 && r.code() == "SignatureDoesNotMatch"),
        "modified body: {} {}",
        r.status,
        r.text()
    );
    assert_sdk_err(
        s3.head_object().bucket(&b).key("body").send().await,
        404,
        "NotFound",
    );
    // Signed for another region.
    let opts = SignOpts {
        region: "eu-west-1".into(),
        ..SignOpts::default()
    };
    let (req, _) = RawRequest::new("GET", &format!("/{b}?list-type=2")).sign_with(&store, &opts);
    let r = req.send(&store).await;
    assert!(
        r.status == 400 || r.status == 403,
        "wrong region: {}",
        r.status
    );
    assert_eq!(r.code(), "AuthorizationHeaderMalformed", "{}", r.text());
    // A garbage Authorization header.
    let r = RawRequest::new("GET", &format!("/{b}?list-type=2"))
        .header("authorization", "AWS4-HMAC-SHA256 garbage")
        .header("x-amz-date", "20250101T000000Z")
        .send(&store)
        .await;
    assert!(
        r.status == 400 || r.status == 403,
        "garbage Authorization: {}",
        r.status
    );
    r.assert_error_shape();
}
