//! What the fuzz targets found (FUZZING.md), seen by a client of a real store.

use crate::common::raw::Payload;
use crate::common::*;

/// An Authorization header with a byte outside visible ASCII was skipped, so the request
/// passed as anonymous: on a publicly readable bucket it was served. It is malformed, as S3 says.
#[tokio::test]
async fn non_ascii_authorization_header_is_refused_not_served_as_anonymous() {
    let store = TestStore::start();
    let s3 = store.client();
    let bucket = store.bucket(&s3, "fuzzauth").await;
    s3.put_bucket_policy()
        .bucket(&bucket)
        .policy(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
        ))
        .send()
        .await
        .expect("a public-read policy");
    put_bytes(&s3, &bucket, "k", b"public".to_vec()).await;
    let path = format!("/{bucket}/k");
    let anonymous = RawRequest::new("GET", &path).send(&store).await;
    assert_eq!(anonymous.status, 200, "{}", anonymous.text());

    let credential = format!("{ACCESS_KEY}/20260101/us-east-1/s3/aws4_request");
    for header in [
        format!("AWS4-HMAC-SHA256 Credential={credential},SignedHeaders=host,Signature=é"),
        "AWS4-HMAC-SHA256 Credential=é".to_owned(),
        "Bearer é".to_owned(),
    ] {
        let r = RawRequest::new("GET", &path)
            .header("authorization", &header)
            .send(&store)
            .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "AuthorizationHeaderMalformed"),
            "{header}: {}",
            r.text()
        );
    }
}

/// The 4 KiB limit on aws-chunked framing lines depended on how the body arrived: a size line
/// of exactly 4 KiB whose CR and LF came in different pieces was refused, and a longer line
/// that came in one piece was accepted. Now the limit holds however the body is split.
#[tokio::test]
async fn aws_chunked_framing_line_limit_holds_however_the_body_arrives() {
    let (store, s3, bucket) = TestStore::with_bucket("fuzzline").await;
    // Sent as HTTP chunks: the size line with its CR, then the rest.
    let put = |key: &str, extension_len: usize| {
        let size_line = format!("5;{}\r", "x".repeat(extension_len));
        let rest = b"\nhello\r\n0\r\n\r\n".to_vec();
        let opts = SignOpts::default().payload(Payload::Literal(
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER".into(),
        ));
        RawRequest::new("PUT", &format!("/{bucket}/{key}"))
            .header("content-encoding", "aws-chunked")
            .header("x-amz-decoded-content-length", "5")
            .chunked_body(vec![size_line.into_bytes(), rest])
            .sign_with(&store, &opts)
            .0
    };
    let r = put("long", 8 << 10).send(&store).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (400, "InvalidRequest"),
        "{}",
        r.text()
    );
    let r = put("longest", 4096 - 2).send(&store).await;
    assert_eq!(
        r.status,
        200,
        "a 4 KiB size line is within the limit: {}",
        r.text()
    );
    let stored = s3.get_object().bucket(&bucket).key("longest").send().await;
    assert_eq!(read_body(stored.unwrap().body).await, b"hello");
}

/// quick-xml's deserializer panics on a document type declaration inside an element's text:
/// the store answered 500 InternalError (its panic guard), the edge relayed it. S3 bodies have
/// no DTD: MalformedXML, before the parser sees it.
#[tokio::test]
async fn a_doctype_in_an_xml_body_is_malformed_xml_not_an_internal_error() {
    let pair = EdgePair::start();
    let body = "<CreateBucketConfiguration><LocationConstraint>us<!doctype x>east-1</LocationConstraint></CreateBucketConfiguration>";
    for server in [&pair.store, &pair.edge] {
        let bucket = unique_bucket("doctype");
        let r = RawRequest::new("PUT", &format!("/{bucket}"))
            .body(body)
            .sign(server)
            .send(server)
            .await;
        r.assert_error(400, "MalformedXML");
        let head = RawRequest::new("HEAD", &format!("/{bucket}"))
            .sign(server)
            .send(server)
            .await;
        assert_eq!(head.status, 404, "no bucket was created");
    }
}
