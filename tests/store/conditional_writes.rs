//! Conditional writes: `If-None-Match: *` and `If-Match` on PutObject and
//! CompleteMultipartUpload, atomic under concurrency.

use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::common::*;

#[tokio::test]
async fn if_none_match_star_creates_only_once() {
    let (_store, s3, b) = TestStore::with_bucket("inm").await;
    s3.put_object()
        .bucket(&b)
        .key("k")
        .if_none_match("*")
        .body(body("first"))
        .send()
        .await
        .expect("create-only on a new key");
    assert_sdk_err(
        s3.put_object()
            .bucket(&b)
            .key("k")
            .if_none_match("*")
            .body(body("second"))
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    let got = object_bytes(&s3, &b, "k").await;
    assert_eq!(got, b"first", "the losing write changed nothing");
}

#[tokio::test]
async fn if_none_match_star_under_concurrency_has_exactly_one_winner() {
    let (_store, s3, b) = TestStore::with_bucket("race").await;
    for round in 0..3 {
        let key = format!("lock-{round}");
        let mut tasks = Vec::new();
        for i in 0..16 {
            let s3 = s3.clone();
            let (b, key) = (b.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                let data = format!("writer {i} {}", "x".repeat(i * 1000));
                let r = s3
                    .put_object()
                    .bucket(&b)
                    .key(&key)
                    .if_none_match("*")
                    .body(body(data.clone()))
                    .send()
                    .await;
                (i, data, r.map(|_| ()).map_err(|e| sdk_err::<(), _>(Err(e))))
            }));
        }
        let mut winners = Vec::new();
        for t in tasks {
            let (i, data, r) = t.await.unwrap();
            match r {
                Ok(()) => winners.push((i, data)),
                // 409 ConditionalRequestConflict is what S3 answers to a racing writer.
                Err((412, code)) if code == "PreconditionFailed" => {}
                Err((409, code)) if code == "ConditionalRequestConflict" => {}
                Err(other) => panic!("writer {i}: unexpected error {other:?}"),
            }
        }
        assert_eq!(
            winners.len(),
            1,
            "round {round}: exactly one If-None-Match:* writer wins, got {:?}",
            winners.iter().map(|w| w.0).collect::<Vec<_>>()
        );
        let got = object_bytes(&s3, &b, &key).await;
        assert_eq!(
            got,
            winners[0].1.as_bytes(),
            "the stored body is the winner's"
        );
    }
}

#[tokio::test]
async fn if_match_on_put() {
    let (_store, s3, b) = TestStore::with_bucket("ifmatch").await;
    let v1 = put_bytes(&s3, &b, "k", "v1").await;
    let etag1 = v1.e_tag().unwrap().to_string();

    assert_sdk_err(
        s3.put_object()
            .bucket(&b)
            .key("k")
            .if_match("\"ffffffffffffffffffffffffffffffff\"")
            .body(body("bad"))
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    let v2 = s3
        .put_object()
        .bucket(&b)
        .key("k")
        .if_match(&etag1)
        .body(body("v2"))
        .send()
        .await
        .expect("If-Match with the current ETag");
    assert_eq!(v2.e_tag(), Some(etag_of(b"v2").as_str()));
    // The old ETag no longer matches.
    assert_sdk_err(
        s3.put_object()
            .bucket(&b)
            .key("k")
            .if_match(&etag1)
            .body(body("v3"))
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    let got = object_bytes(&s3, &b, "k").await;
    assert_eq!(got, b"v2");

    // If-Match on a key that does not exist: 404 NoSuchKey, as on S3.
    assert_sdk_err(
        s3.put_object()
            .bucket(&b)
            .key("absent")
            .if_match(&etag1)
            .body(body("x"))
            .send()
            .await,
        404,
        "NoSuchKey",
    );
    assert_sdk_err(
        s3.head_object().bucket(&b).key("absent").send().await,
        404,
        "NotFound",
    );
}

#[tokio::test]
async fn if_match_under_concurrency_has_exactly_one_winner() {
    let (_store, s3, b) = TestStore::with_bucket("casrace").await;
    let base = put_bytes(&s3, &b, "counter", "0").await;
    let etag = base.e_tag().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (s3, b, etag) = (s3.clone(), b.clone(), etag.clone());
        tasks.push(tokio::spawn(async move {
            let r = s3
                .put_object()
                .bucket(&b)
                .key("counter")
                .if_match(&etag)
                .body(body(format!("w{i}")))
                .send()
                .await;
            (i, r.map(|_| ()).map_err(|e| sdk_err::<(), _>(Err(e))))
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        match r {
            Ok(()) => winners.push(i),
            Err((412, c)) if c == "PreconditionFailed" => {}
            Err((409, c)) if c == "ConditionalRequestConflict" => {}
            Err(other) => panic!("writer {i}: {other:?}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "compare-and-swap with If-Match: winners {winners:?}"
    );
    let got = object_bytes(&s3, &b, "counter").await;
    assert_eq!(got, format!("w{}", winners[0]).into_bytes());
}

async fn one_part_upload(
    s3: &aws_sdk_s3::Client,
    b: &str,
    key: &str,
    data: &str,
) -> (String, CompletedMultipartUpload) {
    let up = s3
        .create_multipart_upload()
        .bucket(b)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let p = s3
        .upload_part()
        .bucket(b)
        .key(key)
        .upload_id(&id)
        .part_number(1)
        .body(body(data.to_string()))
        .send()
        .await
        .unwrap();
    let done = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(p.e_tag().unwrap())
                .build(),
        )
        .build();
    (id, done)
}

#[tokio::test]
async fn conditional_complete_multipart_upload() {
    let (_store, s3, b) = TestStore::with_bucket("condmpu").await;

    // If-None-Match: * on a new key completes.
    let (id, done) = one_part_upload(&s3, &b, "k", "mp1").await;
    s3.complete_multipart_upload()
        .bucket(&b)
        .key("k")
        .upload_id(&id)
        .multipart_upload(done)
        .if_none_match("*")
        .send()
        .await
        .expect("complete create-only");

    // ...and refuses when the key exists; the upload stays open for a retry.
    let (id2, done2) = one_part_upload(&s3, &b, "k", "mp2").await;
    assert_sdk_err(
        s3.complete_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id(&id2)
            .multipart_upload(done2.clone())
            .if_none_match("*")
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    let got = object_bytes(&s3, &b, "k").await;
    assert_eq!(got, b"mp1");

    // If-Match with a wrong ETag refuses; with the current one completes.
    assert_sdk_err(
        s3.complete_multipart_upload()
            .bucket(&b)
            .key("k")
            .upload_id(&id2)
            .multipart_upload(done2.clone())
            .if_match("\"deadbeef\"")
            .send()
            .await,
        412,
        "PreconditionFailed",
    );
    let current = s3
        .head_object()
        .bucket(&b)
        .key("k")
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_string();
    s3.complete_multipart_upload()
        .bucket(&b)
        .key("k")
        .upload_id(&id2)
        .multipart_upload(done2)
        .if_match(&current)
        .send()
        .await
        .expect("complete with If-Match of the current object");
    let got = object_bytes(&s3, &b, "k").await;
    assert_eq!(got, b"mp2");
}
