//! Integrity: the five flexible checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256) in headers,
//! stored and returned with checksum mode ENABLED; wrong values → BadDigest and nothing stored;
//! Content-MD5; x-amz-content-sha256 mismatch; multipart COMPOSITE and FULL_OBJECT checksums.
//! Expected values are computed independently in tests/common/hash.rs.

use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
};

use crate::common::raw::Payload;
use crate::common::*;

fn sdk_algo(a: Algo) -> ChecksumAlgorithm {
    match a {
        Algo::Crc32 => ChecksumAlgorithm::Crc32,
        Algo::Crc32c => ChecksumAlgorithm::Crc32C,
        Algo::Crc64nvme => ChecksumAlgorithm::Crc64Nvme,
        Algo::Sha1 => ChecksumAlgorithm::Sha1,
        Algo::Sha256 => ChecksumAlgorithm::Sha256,
    }
}

#[tokio::test]
async fn all_five_algorithms_round_trip_with_checksum_mode() {
    let (store, s3, b) = TestStore::with_bucket("cks").await;
    let data = random_bytes(300_000, 40);
    for algo in Algo::ALL {
        let key = format!("obj-{}", algo.name());
        let want = algo.b64(&data);
        let put = s3
            .put_object()
            .bucket(&b)
            .key(&key)
            .checksum_algorithm(sdk_algo(algo))
            .body(body(data.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", algo.name()));
        let echoed = match algo {
            Algo::Crc32 => put.checksum_crc32(),
            Algo::Crc32c => put.checksum_crc32_c(),
            Algo::Crc64nvme => put.checksum_crc64_nvme(),
            Algo::Sha1 => put.checksum_sha1(),
            Algo::Sha256 => put.checksum_sha256(),
        };
        assert_eq!(
            echoed,
            Some(want.as_str()),
            "PutObject echoes {}",
            algo.name()
        );

        // Raw GET and HEAD with x-amz-checksum-mode: ENABLED return the stored value.
        for method in ["GET", "HEAD"] {
            let r = RawRequest::new(method, &format!("/{b}/{key}"))
                .header("x-amz-checksum-mode", "ENABLED")
                .sign(&store)
                .send(&store)
                .await;
            assert_eq!(r.status, 200);
            assert_eq!(
                r.header(algo.header()),
                Some(want.as_str()),
                "{method} {} with checksum mode",
                algo.name()
            );
            if let Some(t) = r.header("x-amz-checksum-type") {
                assert_eq!(t, "FULL_OBJECT");
            }
        }
        // Without checksum mode it is not sent.
        let r = RawRequest::new("HEAD", &format!("/{b}/{key}"))
            .sign(&store)
            .send(&store)
            .await;
        assert!(
            r.header(algo.header()).is_none(),
            "checksum only with x-amz-checksum-mode: ENABLED"
        );

        // The SDK validates the returned checksum against the body it reads.
        let g = s3
            .get_object()
            .bucket(&b)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(read_body(g.body).await, data);
    }
}

#[tokio::test]
async fn explicit_checksum_values_verified_and_wrong_ones_are_bad_digest() {
    let (store, s3, b) = TestStore::with_bucket("badcks").await;
    let data = b"checksummed payload".to_vec();
    for algo in Algo::ALL {
        // Right value, sent as a plain header by a raw client.
        let key = format!("ok-{}", algo.name());
        let r = RawRequest::new("PUT", &format!("/{b}/{key}"))
            .header(algo.header(), &algo.b64(&data))
            .header("x-amz-sdk-checksum-algorithm", algo.name())
            .body(data.clone())
            .sign(&store)
            .send(&store)
            .await;
        assert_eq!(r.status, 200, "{}: {}", algo.name(), r.text());
        assert_eq!(
            r.header(algo.header()),
            Some(algo.b64(&data).as_str()),
            "PUT response echoes the checksum"
        );

        // Wrong value (the checksum of other bytes): BadDigest, nothing stored.
        let key = format!("bad-{}", algo.name());
        let r = RawRequest::new("PUT", &format!("/{b}/{key}"))
            .header(algo.header(), &algo.b64(b"other bytes"))
            .body(data.clone())
            .sign(&store)
            .send(&store)
            .await;
        r.assert_error(400, "BadDigest");
        assert_sdk_err(
            s3.head_object().bucket(&b).key(&key).send().await,
            404,
            "NotFound",
        );
    }
    // Through the SDK: a caller-supplied wrong CRC32.
    let r = s3
        .put_object()
        .bucket(&b)
        .key("sdk-bad")
        .checksum_crc32(Algo::Crc32.b64(b"nope"))
        .body(body(data.clone()))
        .send()
        .await;
    assert_sdk_err(r, 400, "BadDigest");
    // A wrong value does not replace an existing object.
    put_bytes(&s3, &b, "keep", "original").await;
    let r = s3
        .put_object()
        .bucket(&b)
        .key("keep")
        .checksum_sha256(Algo::Sha256.b64(b"nope"))
        .body(body("replacement"))
        .send()
        .await;
    assert_sdk_err(r, 400, "BadDigest");
    let got = object_bytes(&s3, &b, "keep").await;
    assert_eq!(got, b"original");
}

#[tokio::test]
async fn content_md5_is_verified() {
    let store = TestStore::start();
    let s3 = store.client_when_required();
    let b = store.bucket(&s3, "md5").await;
    let data = b"content md5 body".to_vec();
    s3.put_object()
        .bucket(&b)
        .key("ok")
        .content_md5(hash::b64(&hash::md5(&data)))
        .body(body(data.clone()))
        .send()
        .await
        .expect("right Content-MD5");
    assert_sdk_err(
        s3.put_object()
            .bucket(&b)
            .key("bad")
            .content_md5(hash::b64(&hash::md5(b"different")))
            .body(body(data.clone()))
            .send()
            .await,
        400,
        "BadDigest",
    );
    assert_sdk_err(
        s3.head_object().bucket(&b).key("bad").send().await,
        404,
        "NotFound",
    );
    // Not base64 of 16 bytes: InvalidDigest.
    let r = RawRequest::new("PUT", &format!("/{b}/invalid"))
        .header("content-md5", "not-an-md5")
        .body(data.clone())
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(400, "InvalidDigest");
    // On a part too.
    let up = s3
        .create_multipart_upload()
        .bucket(&b)
        .key("mp")
        .send()
        .await
        .unwrap();
    let r = s3
        .upload_part()
        .bucket(&b)
        .key("mp")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .content_md5(hash::b64(&hash::md5(b"different")))
        .body(body(data))
        .send()
        .await;
    assert_sdk_err(r, 400, "BadDigest");
}

#[tokio::test]
async fn x_amz_content_sha256_mismatch() {
    let (store, s3, b) = TestStore::with_bucket("sha256hdr").await;
    let claimed = hash::sha256_hex(b"what I said I would send");
    let r = RawRequest::new("PUT", &format!("/{b}/k"))
        .body("what I actually sent")
        .sign_with(
            &store,
            &SignOpts::default().payload(Payload::Literal(claimed)),
        )
        .0
        .send(&store)
        .await;
    r.assert_error(400, "XAmzContentSHA256Mismatch");
    assert_sdk_err(
        s3.head_object().bucket(&b).key("k").send().await,
        404,
        "NotFound",
    );
}

struct Mpu {
    parts: Vec<Vec<u8>>,
}

impl Mpu {
    fn new(seed: u64) -> Mpu {
        Mpu {
            parts: vec![
                random_bytes(5 * MIB, seed),
                random_bytes(5 * MIB, seed + 1),
                random_bytes(777, seed + 2),
            ],
        }
    }
    fn whole(&self) -> Vec<u8> {
        self.parts.concat()
    }
}

async fn multipart_with_checksum(
    s3: &aws_sdk_s3::Client,
    b: &str,
    key: &str,
    algo: Algo,
    kind: ChecksumType,
    mpu: &Mpu,
) -> aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput {
    let up = s3
        .create_multipart_upload()
        .bucket(b)
        .key(key)
        .checksum_algorithm(sdk_algo(algo))
        .checksum_type(kind.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("create {} {kind:?}: {e:?}", algo.name()));
    let id = up.upload_id().unwrap();
    let mut done = Vec::new();
    for (i, p) in mpu.parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(b)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .checksum_algorithm(sdk_algo(algo))
            .body(body(p.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("part {n} {}: {e:?}", algo.name()));
        let want = algo.b64(p);
        let (echo, part) = match algo {
            Algo::Crc32 => (
                out.checksum_crc32(),
                CompletedPart::builder().checksum_crc32(&want),
            ),
            Algo::Crc32c => (
                out.checksum_crc32_c(),
                CompletedPart::builder().checksum_crc32_c(&want),
            ),
            Algo::Crc64nvme => (
                out.checksum_crc64_nvme(),
                CompletedPart::builder().checksum_crc64_nvme(&want),
            ),
            Algo::Sha1 => (
                out.checksum_sha1(),
                CompletedPart::builder().checksum_sha1(&want),
            ),
            Algo::Sha256 => (
                out.checksum_sha256(),
                CompletedPart::builder().checksum_sha256(&want),
            ),
        };
        assert_eq!(
            echo,
            Some(want.as_str()),
            "UploadPart echoes the part checksum"
        );
        done.push(part.part_number(n).e_tag(out.e_tag().unwrap()).build());
    }
    s3.complete_multipart_upload()
        .bucket(b)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete {} {kind:?}: {e:?}", algo.name()))
}

#[tokio::test]
async fn multipart_composite_checksums() {
    let (store, s3, b) = TestStore::with_bucket("composite").await;
    let mpu = Mpu::new(41);
    for algo in [Algo::Crc32, Algo::Sha256] {
        let key = format!("composite-{}", algo.name());
        let done =
            multipart_with_checksum(&s3, &b, &key, algo, ChecksumType::Composite, &mpu).await;
        // COMPOSITE: checksum of the concatenated binary part checksums, "-N".
        let cat: Vec<u8> = mpu.parts.iter().flat_map(|p| algo.digest(p)).collect();
        let want = format!("{}-{}", algo.b64(&cat), mpu.parts.len());
        let got = match algo {
            Algo::Crc32 => done.checksum_crc32(),
            _ => done.checksum_sha256(),
        };
        assert_eq!(
            got,
            Some(want.as_str()),
            "Complete returns the composite {} checksum",
            algo.name()
        );
        assert_eq!(done.checksum_type(), Some(&ChecksumType::Composite));

        let r = RawRequest::new("HEAD", &format!("/{b}/{key}"))
            .header("x-amz-checksum-mode", "ENABLED")
            .sign(&store)
            .send(&store)
            .await;
        assert_eq!(
            r.header(algo.header()),
            Some(want.as_str()),
            "HEAD returns the composite checksum"
        );
        assert_eq!(r.header("x-amz-checksum-type"), Some("COMPOSITE"));
        let g = s3
            .get_object()
            .bucket(&b)
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert!(read_body(g.body).await == mpu.whole());
    }
}

#[tokio::test]
async fn multipart_full_object_checksums() {
    let (store, s3, b) = TestStore::with_bucket("fullobj").await;
    let mpu = Mpu::new(44);
    let whole = mpu.whole();
    for algo in [Algo::Crc64nvme, Algo::Crc32c] {
        let key = format!("full-{}", algo.name());
        let done =
            multipart_with_checksum(&s3, &b, &key, algo, ChecksumType::FullObject, &mpu).await;
        let want = algo.b64(&whole);
        let got = match algo {
            Algo::Crc64nvme => done.checksum_crc64_nvme(),
            _ => done.checksum_crc32_c(),
        };
        assert_eq!(
            got,
            Some(want.as_str()),
            "FULL_OBJECT {} is the CRC of the whole object",
            algo.name()
        );
        assert_eq!(done.checksum_type(), Some(&ChecksumType::FullObject));
        let r = RawRequest::new("GET", &format!("/{b}/{key}"))
            .header("x-amz-checksum-mode", "ENABLED")
            .sign(&store)
            .send(&store)
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header(algo.header()), Some(want.as_str()));
        assert_eq!(r.header("x-amz-checksum-type"), Some("FULL_OBJECT"));
        assert!(r.body == whole);
    }

    // A wrong full-object checksum supplied at Complete is refused.
    let up = s3
        .create_multipart_upload()
        .bucket(&b)
        .key("full-bad")
        .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let p = s3
        .upload_part()
        .bucket(&b)
        .key("full-bad")
        .upload_id(id)
        .part_number(1)
        .checksum_algorithm(ChecksumAlgorithm::Crc64Nvme)
        .body(body(b"tiny".to_vec()))
        .send()
        .await
        .unwrap();
    let r = s3
        .complete_multipart_upload()
        .bucket(&b)
        .key("full-bad")
        .upload_id(id)
        .checksum_crc64_nvme(Algo::Crc64nvme.b64(b"not tiny"))
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(p.e_tag().unwrap())
                        .checksum_crc64_nvme(Algo::Crc64nvme.b64(b"tiny"))
                        .build(),
                )
                .build(),
        )
        .send()
        .await;
    let (status, code) = sdk_err(r);
    assert!(
        status == 400 && (code == "BadDigest" || code == "InvalidRequest"),
        "wrong full-object checksum at Complete: {status} {code}"
    );
    assert_sdk_err(
        s3.head_object().bucket(&b).key("full-bad").send().await,
        404,
        "NotFound",
    );
}

#[tokio::test]
async fn wrong_part_checksum_in_complete_is_invalid_part() {
    let (_store, s3, b) = TestStore::with_bucket("partcks").await;
    let up = s3
        .create_multipart_upload()
        .bucket(&b)
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let data = b"only part".to_vec();
    let p = s3
        .upload_part()
        .bucket(&b)
        .key("k")
        .upload_id(id)
        .part_number(1)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .body(body(data))
        .send()
        .await
        .unwrap();
    let r = s3
        .complete_multipart_upload()
        .bucket(&b)
        .key("k")
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .parts(
                    CompletedPart::builder()
                        .part_number(1)
                        .e_tag(p.e_tag().unwrap())
                        .checksum_crc32(Algo::Crc32.b64(b"wrong"))
                        .build(),
                )
                .build(),
        )
        .send()
        .await;
    let (status, code) = sdk_err(r);
    assert_eq!(status, 400);
    assert!(
        code == "InvalidPart" || code == "BadDigest",
        "wrong part checksum at Complete: {code}"
    );
}

#[tokio::test]
async fn part_checksum_is_verified_even_without_an_upload_algorithm() {
    let (store, s3, b) = TestStore::with_bucket("partsum").await;
    let id = &start_upload(&s3, &b, "k").await;
    let part = |crc_of: &[u8]| {
        RawRequest::new(
            "PUT",
            &format!("/{b}/k?partNumber=1&uploadId={}", enc_query(id)),
        )
        .header("x-amz-checksum-crc32", &raw::crc32_b64(crc_of))
        .body("part data")
        .sign(&store)
    };
    part(b"something else")
        .send(&store)
        .await
        .assert_error(400, "BadDigest");
    let parts = s3
        .list_parts()
        .bucket(&b)
        .key("k")
        .upload_id(id)
        .send()
        .await
        .unwrap();
    assert!(parts.parts().is_empty(), "the refused part is not kept");
    let r = part(b"part data").send(&store).await;
    assert_eq!(r.status, 200, "{}", r.text());
}
