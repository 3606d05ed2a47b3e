//! Where the store answers as AWS does, checked with aws-sdk-s3 (raw signed HTTP where the SDK
//! cannot send the request): unsupported operations named, partNumber reads of parts an object
//! lacks, keys that are not UTF-8, SigV4 with the HTTP `Date` header, ListBuckets pagination.

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{BucketVersioningStatus, VersioningConfiguration};

use crate::common::raw::EMPTY_SHA256;
use crate::common::*;

#[tokio::test]
async fn unsupported_operations_are_not_implemented_and_counted_by_name() {
    let (store, s3, b) = TestStore::with_bucket("unsupported").await;
    let r = s3
        .put_bucket_versioning()
        .bucket(&b)
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await;
    let e = r.expect_err("PutBucketVersioning is not implemented");
    let service = e.as_service_error().expect("an S3 error answer");
    assert_eq!(service.code(), Some("NotImplemented"));
    assert!(
        service
            .message()
            .unwrap_or("")
            .contains("PutBucketVersioning"),
        "{service:?}"
    );
    assert_sdk_err(
        s3.get_bucket_tagging().bucket(&b).send().await,
        501,
        "NotImplemented",
    );
    assert_sdk_err(
        s3.get_object_lock_configuration().bucket(&b).send().await,
        501,
        "NotImplemented",
    );
    put_bytes(&s3, &b, "k", "v").await;
    assert_sdk_err(
        s3.get_object_tagging().bucket(&b).key("k").send().await,
        501,
        "NotImplemented",
    );

    let name = "outpost_s3_requests_total";
    for operation in [
        "PutBucketVersioning",
        "GetBucketTagging",
        "GetObjectLockConfiguration",
        "GetObjectTagging",
    ] {
        let n = store
            .metric(name, &[("operation", operation), ("status", "501")])
            .await;
        assert_eq!(n, 1.0, "{operation}");
    }
    assert_eq!(store.metric(name, &[("operation", "Unknown")]).await, 0.0);
    // Not an operation of the `versioning` sub-resource that we serve either way: the bucket
    // still answers its real versioning state.
    let v = s3.get_bucket_versioning().bucket(&b).send().await.unwrap();
    assert_eq!(v.status(), None);
}

#[tokio::test]
async fn part_numbers_the_object_lacks_are_invalid_part() {
    let (store, s3, b) = TestStore::with_bucket("partnumber").await;
    put_bytes(&s3, &b, "single", "whole").await;
    let (p1, p2) = (random_bytes(5 * MIB, 1), random_bytes(1000, 2));
    let id = start_upload(&s3, &b, "mp").await;
    let parts = upload_parts(&s3, &b, "mp", &id, &[&p1, &p2]).await;
    complete_upload(&s3, &b, "mp", &id, parts).await;

    for (key, missing) in [("single", 2), ("mp", 3), ("mp", 10_000)] {
        let r = s3
            .get_object()
            .bucket(&b)
            .key(key)
            .part_number(missing)
            .send()
            .await;
        assert_sdk_err(r, 400, "InvalidPart");
        let r = s3
            .head_object()
            .bucket(&b)
            .key(key)
            .part_number(missing)
            .send()
            .await;
        assert_eq!(sdk_err(r).0, 400, "HEAD {key} part {missing}");
        RawRequest::new("GET", &format!("/{b}/{key}?partNumber={missing}"))
            .sign(&store)
            .send(&store)
            .await
            .assert_error(400, "InvalidPart");
    }
    // Part numbers outside 1..=10000 are not part numbers at all.
    for bad in ["0", "10001", "-1", "one"] {
        let r = RawRequest::new("GET", &format!("/{b}/single?partNumber={bad}"))
            .sign(&store)
            .send(&store)
            .await;
        r.assert_error(400, "InvalidArgument");
    }
    // (The parts the objects have read as before: reads.rs, part_number_reads.)
}

#[tokio::test]
async fn keys_that_are_not_utf8_are_invalid_uris() {
    let (store, s3, b) = TestStore::with_bucket("notutf8").await;
    // What a lossy decoding of %FF would find: it must stay out of reach of the bad key.
    put_bytes(&s3, &b, "\u{FFFD}", "replacement").await;
    for (method, target) in [
        ("GET", format!("/{b}/%FF")),
        ("PUT", format!("/{b}/%FF")),
        ("DELETE", format!("/{b}/%FF")),
        ("GET", format!("/{b}/dir/%C3")),
        ("POST", format!("/{b}/a%80b?uploads")),
        ("GET", format!("/{b}/%FF?acl")),
    ] {
        let r = RawRequest::new(method, &target)
            .sign(&store)
            .send(&store)
            .await;
        r.assert_error(400, "InvalidURI");
        assert_eq!(
            r.xml("Message").as_deref(),
            Some("Couldn't parse the specified URI."),
            "{method} {target}"
        );
    }
    let r = RawRequest::new("HEAD", &format!("/{b}/%FF"))
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(object_bytes(&s3, &b, "\u{FFFD}").await, b"replacement");
}

/// A ListBuckets signed by hand (the SDK's signer always adds `x-amz-date`): the headers in
/// `dates` are sent and signed; the timestamp signed is `signed_time`'s.
fn list_buckets_signed_with(
    store: &TestStore,
    dates: &[(&str, String)],
    signed_time: std::time::SystemTime,
) -> RawRequest {
    let opts = SignOpts::default().time(signed_time);
    let mut headers: Vec<(String, String)> = dates
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    headers.push(("host".into(), store.addr.clone()));
    headers.push(("x-amz-content-sha256".into(), EMPTY_SHA256.into()));
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical = format!("GET\n/\n\n{canonical_headers}\n{signed}\n{EMPTY_SHA256}");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{}\n{}",
        opts.amz_date(),
        opts.scope(),
        hash::sha256_hex(canonical.as_bytes())
    );
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{}, SignedHeaders={signed}, Signature={}",
        opts.scope(),
        opts.hmac(&string_to_sign)
    );
    let mut request = RawRequest::new("GET", "/").header("authorization", &authorization);
    for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
        request = request.header(k, v);
    }
    request
}

#[tokio::test]
async fn sigv4_takes_the_date_header_when_there_is_no_x_amz_date() {
    let store = TestStore::start();
    let t = now();
    let amz = SignOpts::default().time(t).amz_date();

    // Only `Date`: it is the request's date.
    let r = list_buckets_signed_with(&store, &[("date", httpdate(t))], t)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Both: `x-amz-date` wins, whatever `Date` says (an hour off here).
    let hour_ago = t - std::time::Duration::from_secs(3600);
    let both = [("date", httpdate(hour_ago)), ("x-amz-date", amz.clone())];
    let r = list_buckets_signed_with(&store, &both, t)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // ... and a request signed for the `Date` time is refused: the date is x-amz-date's.
    let r = list_buckets_signed_with(&store, &both, hour_ago)
        .send(&store)
        .await;
    assert_eq!(r.status, 403, "{}", r.text());

    // An empty `Date` is ignored.
    let empty = [("date", String::new()), ("x-amz-date", amz)];
    let r = list_buckets_signed_with(&store, &empty, t)
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());

    // A `Date` an hour off, alone, is a skewed request, not a signature to trust.
    let r = list_buckets_signed_with(&store, &[("date", httpdate(hour_ago))], hour_ago)
        .send(&store)
        .await;
    r.assert_error(403, "RequestTimeTooSkewed");

    // Neither, or only an empty or unparseable `Date`: no date at all.
    for dates in [
        vec![],
        vec![("date", String::new())],
        vec![("date", "yesterday".to_string())],
    ] {
        let r = list_buckets_signed_with(&store, &dates, t)
            .send(&store)
            .await;
        r.assert_error(403, "AccessDenied");
        assert_eq!(
            r.xml("Message").as_deref(),
            Some("AWS authentication requires a valid Date or x-amz-date header"),
            "{dates:?}"
        );
    }
}

#[tokio::test]
async fn list_buckets_paginates() {
    let store = TestStore::start();
    let s3 = store.client();
    let prefix = unique_bucket("page");
    let mut names: Vec<String> = (0..5).map(|i| format!("{prefix}-{i}")).collect();
    for name in &names {
        s3.create_bucket().bucket(name).send().await.unwrap();
    }
    s3.create_bucket()
        .bucket("other-bucket")
        .send()
        .await
        .unwrap();
    names.sort();

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s3
            .list_buckets()
            .prefix(&prefix)
            .max_buckets(2)
            .set_continuation_token(token.clone())
            .send()
            .await
            .expect("ListBuckets page");
        pages += 1;
        assert_eq!(page.prefix(), Some(prefix.as_str()));
        let buckets = page.buckets();
        assert!(buckets.len() <= 2, "a page holds at most max-buckets");
        seen.extend(buckets.iter().map(|b| b.name().unwrap().to_string()));
        assert!(buckets.iter().all(|b| b.bucket_region() == Some(REGION)));
        match page.continuation_token() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen, names);
    assert_eq!(pages, 3);

    // The SDK's paginator walks the same pages.
    let all: Vec<String> = s3
        .list_buckets()
        .max_buckets(1)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flat_map(|page| page.unwrap().buckets.unwrap_or_default())
        .map(|b| b.name.unwrap())
        .collect();
    assert_eq!(all.len(), 6);

    // Without max-buckets: every bucket, no token.
    let page = s3.list_buckets().send().await.unwrap();
    assert_eq!(page.buckets().len(), 6);
    assert_eq!(page.continuation_token(), None);
    // Another region holds none of ours.
    let page = s3
        .list_buckets()
        .bucket_region("eu-west-3")
        .send()
        .await
        .unwrap();
    assert!(page.buckets().is_empty());
    let page = s3
        .list_buckets()
        .bucket_region(REGION)
        .prefix(&prefix)
        .send()
        .await
        .unwrap();
    assert_eq!(page.buckets().len(), 5);

    for bad in [
        "max-buckets=0",
        "max-buckets=10001",
        "max-buckets=ten",
        "continuation-token=%21%21",
    ] {
        let r = RawRequest::new("GET", &format!("/?{bad}"))
            .sign(&store)
            .send(&store)
            .await;
        r.assert_error(400, "InvalidArgument");
    }
}
