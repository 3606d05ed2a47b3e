//! A CompleteMultipartUpload retried after it succeeded (a client whose first answer was lost)
//! gets the same answer, as from AWS: same ETag, same checksum. Another parts list for the
//! completed upload, or the same upload id on another key, is NoSuchUpload.

use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};

use crate::common::*;

async fn complete(
    s3: &aws_sdk_s3::Client,
    b: &str,
    key: &str,
    id: &str,
    parts: &[CompletedPart],
) -> Result<
    aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadError,
        aws_sdk_s3::config::http::HttpResponse,
    >,
> {
    s3.complete_multipart_upload()
        .bucket(b)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts.to_vec()))
                .build(),
        )
        .send()
        .await
}

#[tokio::test]
async fn a_retried_complete_answers_the_same_etag_and_checksum() {
    let (_store, s3, b) = TestStore::with_bucket("retry").await;
    let key = "retried/object.bin";
    let (p1, p2) = (random_bytes(5 * MIB, 81), random_bytes(4321, 82));
    let id = s3
        .create_multipart_upload()
        .bucket(&b)
        .key(key)
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .expect("CreateMultipartUpload")
        .upload_id()
        .unwrap()
        .to_string();
    let mut parts = Vec::new();
    for (n, data) in [(1, &p1), (2, &p2)] {
        let out = s3
            .upload_part()
            .bucket(&b)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(body(data.clone()))
            .send()
            .await
            .expect("UploadPart");
        parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build(),
        );
    }
    let first = complete(&s3, &b, key, &id, &parts)
        .await
        .expect("first Complete");
    let expected = multipart_etag(&[&p1, &p2]);
    assert_eq!(first.e_tag(), Some(expected.as_str()));
    assert!(first.checksum_crc32().is_some_and(|c| c.ends_with("-2")));

    // The client never saw that answer and sends the same request again.
    let again = complete(&s3, &b, key, &id, &parts)
        .await
        .expect("a retried Complete succeeds, as on AWS");
    assert_eq!(again.e_tag(), first.e_tag());
    assert_eq!(again.checksum_crc32(), first.checksum_crc32());
    assert_eq!(again.checksum_type(), first.checksum_type());
    assert_eq!(
        object_bytes(&s3, &b, key).await,
        [p1.clone(), p2.clone()].concat()
    );

    // A different parts list is not a retry: the upload is finished.
    assert_sdk_err(
        complete(&s3, &b, key, &id, &parts[..1]).await,
        404,
        "NoSuchUpload",
    );
    let mut other_etag = parts.clone();
    other_etag[1] = CompletedPart::builder()
        .part_number(2)
        .e_tag(etag_of(b"something else"))
        .build();
    assert_sdk_err(
        complete(&s3, &b, key, &id, &other_etag).await,
        404,
        "NoSuchUpload",
    );
    // Nor is the same upload id on another key, or an abort of the finished upload.
    assert_sdk_err(
        complete(&s3, &b, "other", &id, &parts).await,
        404,
        "NoSuchUpload",
    );
    assert_sdk_err(
        s3.abort_multipart_upload()
            .bucket(&b)
            .key(key)
            .upload_id(&id)
            .send()
            .await,
        404,
        "NoSuchUpload",
    );

    // The answer describes what the upload completed as; a later PUT of the key changes the
    // object, not what the retry says (AWS keys its answer by upload id too).
    put_bytes(&s3, &b, key, b"overwritten").await;
    let late = complete(&s3, &b, key, &id, &parts)
        .await
        .expect("a retry after an overwrite still answers");
    assert_eq!(late.e_tag(), first.e_tag());
    assert_eq!(object_bytes(&s3, &b, key).await, b"overwritten");
}

#[tokio::test]
async fn a_retry_with_if_none_match_still_answers_the_completed_upload() {
    let (_store, s3, b) = TestStore::with_bucket("retry-inm").await;
    let key = "conditional";
    let id = start_upload(&s3, &b, key).await;
    let parts = upload_parts(&s3, &b, key, &id, &[b"only part"]).await;
    let send = || {
        s3.complete_multipart_upload()
            .bucket(&b)
            .key(key)
            .upload_id(&id)
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts.clone()))
                    .build(),
            )
            .send()
    };
    let first = send().await.expect("first Complete with If-None-Match: *");
    // The key exists now, but this is the write that created it, asked about again.
    let again = send()
        .await
        .expect("the retry answers the completed upload");
    assert_eq!(again.e_tag(), first.e_tag());
}
