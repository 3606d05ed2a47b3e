//! Reads: Range (plain, open-ended, suffix, unsatisfiable), partNumber, conditional GET/HEAD
//! (304/412 and S3's precedence rules), response-* overrides, versionId=null.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart};

use crate::common::*;

#[tokio::test]
async fn single_ranges() {
    let (store, s3, b) = TestStore::with_bucket("range").await;
    let data = random_bytes(1000, 10);
    put_bytes(&s3, &b, "r", data.clone()).await;

    let cases: [(&str, std::ops::Range<usize>); 6] = [
        ("bytes=0-9", 0..10),
        ("bytes=990-", 990..1000),
        ("bytes=-25", 975..1000),
        ("bytes=500-499999", 500..1000),
        ("bytes=0-0", 0..1),
        ("bytes=-5000", 0..1000),
    ];
    for (range, want) in cases {
        let got = s3
            .get_object()
            .bucket(&b)
            .key("r")
            .range(range)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{range}: {e:?}"));
        assert_eq!(
            got.content_range(),
            Some(format!("bytes {}-{}/1000", want.start, want.end - 1).as_str()),
            "Content-Range for {range}"
        );
        assert_eq!(
            got.content_length(),
            Some(want.len() as i64),
            "Content-Length for {range}"
        );
        assert_eq!(
            read_body(got.body).await,
            data[want.clone()],
            "body for {range}"
        );
    }
    // Raw: 206 status and Accept-Ranges.
    let r = RawRequest::new("GET", &format!("/{b}/r"))
        .header("range", "bytes=10-19")
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[10..20]);
    let r = RawRequest::new("GET", &format!("/{b}/r"))
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.header("accept-ranges"), Some("bytes"));

    // Unsatisfiable: 416 InvalidRange with the size in Content-Range.
    for range in ["bytes=1000-", "bytes=5000-6000"] {
        let r = RawRequest::new("GET", &format!("/{b}/r"))
            .header("range", range)
            .sign(&store)
            .send(&store)
            .await;
        r.assert_error(416, "InvalidRange");
        assert_eq!(r.header("content-range"), Some("bytes */1000"), "{range}");
    }
    let (status, code) = sdk_err(
        s3.get_object()
            .bucket(&b)
            .key("r")
            .range("bytes=2000-")
            .send()
            .await,
    );
    assert_eq!((status, code.as_str()), (416, "InvalidRange"));

    // A syntactically invalid or multi-range header is ignored: the whole object, 200.
    let r = RawRequest::new("GET", &format!("/{b}/r"))
        .header("range", "bytes=0-1,5-6")
        .sign(&store)
        .send(&store)
        .await;
    assert!(
        r.status == 200 && r.body == data,
        "multi-range falls back to the full object, got {}",
        r.status
    );
}

#[tokio::test]
async fn ranged_get_never_carries_the_full_object_checksum() {
    let (store, s3, b) = TestStore::with_bucket("rangecks").await;
    let data = random_bytes(4096, 11);
    s3.put_object()
        .bucket(&b)
        .key("c")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(body(data.clone()))
        .send()
        .await
        .unwrap();
    let r = RawRequest::new("GET", &format!("/{b}/c"))
        .header("range", "bytes=0-99")
        .header("x-amz-checksum-mode", "ENABLED")
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 206);
    assert!(
        r.header("x-amz-checksum-crc32").is_none(),
        "full-object checksum sent on a ranged GET"
    );
    // The SDK validates what it gets: a ranged read with checksum mode works.
    let got = s3
        .get_object()
        .bucket(&b)
        .key("c")
        .range("bytes=100-199")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(read_body(got.body).await, data[100..200]);
}

#[tokio::test]
async fn part_number_reads() {
    let (store, s3, b) = TestStore::with_bucket("partnum").await;
    let p1 = random_bytes(5 * MIB, 12);
    let p2 = random_bytes(1000, 13);
    let id = &start_upload(&s3, &b, "mp").await;
    let mut parts = Vec::new();
    for (n, p) in [(1, &p1), (2, &p2)] {
        let out = s3
            .upload_part()
            .bucket(&b)
            .key("mp")
            .upload_id(id)
            .part_number(n)
            .body(body(p.clone()))
            .send()
            .await
            .unwrap();
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(&b)
        .key("mp")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let total = p1.len() + p2.len();

    let g = s3
        .get_object()
        .bucket(&b)
        .key("mp")
        .part_number(2)
        .send()
        .await
        .expect("partNumber=2");
    assert_eq!(g.parts_count(), Some(2));
    assert_eq!(
        g.content_range(),
        Some(format!("bytes {}-{}/{total}", p1.len(), total - 1).as_str())
    );
    assert_eq!(read_body(g.body).await, p2);
    let g = s3
        .get_object()
        .bucket(&b)
        .key("mp")
        .part_number(1)
        .send()
        .await
        .expect("partNumber=1");
    assert_eq!(g.content_length(), Some(p1.len() as i64));
    assert_eq!(read_body(g.body).await, p1);
    let h = s3
        .head_object()
        .bucket(&b)
        .key("mp")
        .part_number(1)
        .send()
        .await
        .expect("HEAD partNumber=1");
    assert_eq!(h.parts_count(), Some(2));
    assert_eq!(h.content_length(), Some(p1.len() as i64));

    let r = RawRequest::new("GET", &format!("/{b}/mp?partNumber=3"))
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(400, "InvalidPart");

    // A single-part object has exactly one part: the whole object.
    put_bytes(&s3, &b, "single", "whole").await;
    let g = s3
        .get_object()
        .bucket(&b)
        .key("single")
        .part_number(1)
        .send()
        .await
        .expect("partNumber=1 of a simple object");
    assert_eq!(read_body(g.body).await, b"whole");
    let r = RawRequest::new("GET", &format!("/{b}/single?partNumber=2"))
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(400, "InvalidPart");
}

#[tokio::test]
async fn conditional_get_and_head() {
    let (store, s3, b) = TestStore::with_bucket("cond").await;
    put_bytes(&s3, &b, "c", "conditional").await;
    let etag = etag_of(b"conditional");
    let lm = s3
        .head_object()
        .bucket(&b)
        .key("c")
        .send()
        .await
        .unwrap()
        .last_modified()
        .cloned()
        .unwrap();
    let lm_t = SystemTime::try_from(lm).unwrap();
    let before = httpdate(lm_t - Duration::from_secs(3600));
    let after = httpdate(lm_t + Duration::from_secs(3600));
    let at = httpdate(lm_t);

    let get = |hdrs: Vec<(&'static str, String)>| {
        let mut r = RawRequest::new("GET", &format!("/{b}/c"));
        for (k, v) in hdrs {
            r = r.header(k, &v);
        }
        let store = &store;
        async move { r.sign(store).send(store).await }
    };

    // If-Match
    assert_eq!(get(vec![("if-match", etag.clone())]).await.status, 200);
    assert_eq!(get(vec![("if-match", "*".into())]).await.status, 200);
    get(vec![("if-match", "\"0000\"".into())])
        .await
        .assert_error(412, "PreconditionFailed");
    // If-None-Match
    let r = get(vec![("if-none-match", etag.clone())]).await;
    assert_eq!(r.status, 304, "If-None-Match with the current ETag");
    assert!(r.body.is_empty(), "304 has no body");
    assert_eq!(
        r.header("etag"),
        Some(etag.as_str()),
        "304 carries the ETag"
    );
    assert_eq!(
        get(vec![("if-none-match", "\"other\"".into())])
            .await
            .status,
        200
    );
    // If-Modified-Since
    assert_eq!(
        get(vec![("if-modified-since", before.clone())])
            .await
            .status,
        200
    );
    assert_eq!(
        get(vec![("if-modified-since", after.clone())]).await.status,
        304
    );
    assert_eq!(
        get(vec![("if-modified-since", at.clone())]).await.status,
        304,
        "not modified since its own Last-Modified"
    );
    // If-Unmodified-Since
    assert_eq!(
        get(vec![("if-unmodified-since", after.clone())])
            .await
            .status,
        200
    );
    get(vec![("if-unmodified-since", before.clone())])
        .await
        .assert_error(412, "PreconditionFailed");
    // S3's precedence: If-Match true wins over If-Unmodified-Since false (200);
    // If-None-Match false wins over If-Modified-Since true (304).
    assert_eq!(
        get(vec![
            ("if-match", etag.clone()),
            ("if-unmodified-since", before.clone())
        ])
        .await
        .status,
        200
    );
    assert_eq!(
        get(vec![
            ("if-none-match", etag.clone()),
            ("if-modified-since", before.clone())
        ])
        .await
        .status,
        304
    );

    // HEAD answers the same statuses (no body).
    let head = |k: &'static str, v: String| {
        let r = RawRequest::new("HEAD", &format!("/{b}/c")).header(k, &v);
        let store = &store;
        async move { r.sign(store).send(store).await.status }
    };
    assert_eq!(head("if-none-match", etag.clone()).await, 304);
    assert_eq!(head("if-match", "\"nope\"".into()).await, 412);
    assert_eq!(head("if-modified-since", after.clone()).await, 304);
    assert_eq!(head("if-unmodified-since", before.clone()).await, 412);

    // Through the SDK.
    let past = DateTime::from(lm_t - Duration::from_secs(3600));
    assert_sdk_err(
        s3.get_object()
            .bucket(&b)
            .key("c")
            .if_match("\"zz\"")
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    assert_sdk_err(
        s3.get_object()
            .bucket(&b)
            .key("c")
            .if_unmodified_since(past)
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    let (status, _) = sdk_err(
        s3.get_object()
            .bucket(&b)
            .key("c")
            .if_none_match(&etag)
            .send()
            .await,
    );
    assert_eq!(status, 304);
    s3.get_object()
        .bucket(&b)
        .key("c")
        .if_match(&etag)
        .send()
        .await
        .expect("if-match current etag");
}

#[tokio::test]
async fn response_header_overrides() {
    let (_store, s3, b) = TestStore::with_bucket("override").await;
    s3.put_object()
        .bucket(&b)
        .key("o")
        .content_type("text/plain")
        .body(body("x"))
        .send()
        .await
        .unwrap();
    let g = s3
        .get_object()
        .bucket(&b)
        .key("o")
        .response_content_type("application/json")
        .response_content_disposition("attachment; filename=\"r.json\"")
        .response_cache_control("no-store")
        .response_content_language("fr")
        .response_content_encoding("identity")
        .response_expires(DateTime::from_secs(2_000_000_000))
        .send()
        .await
        .expect("GET with response-* overrides");
    assert_eq!(g.content_type(), Some("application/json"));
    assert_eq!(
        g.content_disposition(),
        Some("attachment; filename=\"r.json\"")
    );
    assert_eq!(g.cache_control(), Some("no-store"));
    assert_eq!(g.content_language(), Some("fr"));
    assert_eq!(g.content_encoding(), Some("identity"));
    assert_eq!(g.expires_string(), Some("Wed, 18 May 2033 03:33:20 GMT"));
    // The stored object is unchanged.
    let h = s3.head_object().bucket(&b).key("o").send().await.unwrap();
    assert_eq!(h.content_type(), Some("text/plain"));

    // On a presigned URL too (the common use).
    let presigned = s3
        .get_object()
        .bucket(&b)
        .key("o")
        .response_content_disposition("attachment; filename=\"dl.txt\"")
        .presigned(
            aws_sdk_s3::presigning::PresigningConfig::expires_in(Duration::from_secs(300)).unwrap(),
        )
        .await
        .unwrap();
    let resp = reqwest::get(presigned.uri()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers().get("content-disposition").unwrap(),
        "attachment; filename=\"dl.txt\""
    );
}

#[tokio::test]
async fn version_id_null_on_unversioned_bucket() {
    let (_store, s3, b) = TestStore::with_bucket("vnull").await;
    put_bytes(&s3, &b, "v", "versionless").await;
    let g = s3
        .get_object()
        .bucket(&b)
        .key("v")
        .version_id("null")
        .send()
        .await
        .expect("GET versionId=null");
    assert_eq!(read_body(g.body).await, b"versionless");
    s3.head_object()
        .bucket(&b)
        .key("v")
        .version_id("null")
        .send()
        .await
        .expect("HEAD versionId=null");
    // rclone HEADs versionId=null right after a multipart upload.
    let id = &start_upload(&s3, &b, "mp").await;
    let part = s3
        .upload_part()
        .bucket(&b)
        .key("mp")
        .upload_id(id)
        .part_number(1)
        .body(body("only part"))
        .send()
        .await
        .unwrap();
    s3.complete_multipart_upload()
        .bucket(&b)
        .key("mp")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let h = s3
        .head_object()
        .bucket(&b)
        .key("mp")
        .version_id("null")
        .send()
        .await
        .expect("HEAD versionId=null after multipart");
    assert_eq!(h.content_length(), Some(9));
    s3.delete_object()
        .bucket(&b)
        .key("v")
        .version_id("null")
        .send()
        .await
        .expect("DELETE versionId=null");
    assert_sdk_err(
        s3.head_object().bucket(&b).key("v").send().await,
        404,
        "NotFound",
    );
    // Some other version id does not exist.
    let (status, _) = sdk_err(
        s3.get_object()
            .bucket(&b)
            .key("mp")
            .version_id("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY")
            .send()
            .await,
    );
    assert!(
        status == 400 || status == 404,
        "unknown versionId: {status}"
    );
}
