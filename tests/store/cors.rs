//! CORS at the store: Put/Get/DeleteBucketCors with the SDK and the AWS errors for bad
//! documents, preflights (`OPTIONS`, unsigned) answered by the rules, and the rules' headers on
//! real responses, errors included.

use crate::common::cors::*;
use crate::common::*;

#[tokio::test]
async fn cors_configuration_round_trips_with_the_sdk() {
    let (_store, s3, b) = TestStore::with_bucket("cors-rt").await;
    assert_sdk_err(
        s3.get_bucket_cors().bucket(&b).send().await,
        404,
        "NoSuchCORSConfiguration",
    );
    put_rules(&s3, &b, app_rules()).await;
    let got = s3.get_bucket_cors().bucket(&b).send().await.unwrap();
    assert_eq!(got.cors_rules(), app_rules().cors_rules());

    s3.delete_bucket_cors().bucket(&b).send().await.unwrap();
    assert_sdk_err(
        s3.get_bucket_cors().bucket(&b).send().await,
        404,
        "NoSuchCORSConfiguration",
    );
    assert_sdk_err(
        s3.get_bucket_cors()
            .bucket("no-such-bucket-here")
            .send()
            .await,
        404,
        "NoSuchBucket",
    );
}

/// A raw, signed PutBucketCors of `document` (with its Content-MD5 unless `md5` is false).
async fn put_document(
    store: &TestStore,
    bucket: &str,
    document: &str,
    md5: bool,
) -> raw::RawResponse {
    let mut req =
        RawRequest::new("PUT", &format!("/{bucket}?cors")).body(document.as_bytes().to_vec());
    if md5 {
        req = req.header("content-md5", &hash::b64(&hash::md5(document.as_bytes())));
    }
    req.sign(store).send(store).await
}

fn document(rules: &str) -> String {
    format!(
        "<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</CORSConfiguration>"
    )
}

const GET_ANY: &str =
    "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>";

#[tokio::test]
async fn bad_cors_documents_get_the_aws_errors_and_nothing_is_stored() {
    let (store, s3, b) = TestStore::with_bucket("cors-bad").await;
    let cases = [
        (
            document(&GET_ANY.repeat(101)),
            "InvalidRequest",
            Some("The number of CORS rules should not exceed allowed limit of 100 rules."),
        ),
        (document(""), "MalformedXML", None),
        (
            document(GET_ANY).replace("</CORSConfiguration>", ""),
            "MalformedXML",
            None,
        ),
        (
            document("<CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule>"),
            "MalformedXML",
            None,
        ),
        (
            document(
                "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule>",
            ),
            "InvalidRequest",
            Some("Found unsupported HTTP method in CORS config. Unsupported method is PATCH"),
        ),
        (
            document(
                "<CORSRule><AllowedOrigin>http://*.*.test</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>",
            ),
            "InvalidRequest",
            Some("AllowedOrigin \"http://*.*.test\" can not have more than one wildcard."),
        ),
    ];
    for (doc, code, message) in cases {
        let r = put_document(&store, &b, &doc, true).await;
        r.assert_error(400, code);
        if let Some(message) = message {
            assert_eq!(r.xml("Message").as_deref(), Some(message));
        }
    }
    // Without Content-MD5 (or a checksum), as S3 requires of PutBucketCors.
    put_document(&store, &b, &document(GET_ANY), false)
        .await
        .assert_error(400, "InvalidRequest");
    let mut bad_md5 = RawRequest::new("PUT", &format!("/{b}?cors"))
        .body(document(GET_ANY).into_bytes())
        .header("content-md5", &hash::b64(&hash::md5(b"other")));
    bad_md5 = bad_md5.sign(&store);
    bad_md5.send(&store).await.assert_error(400, "BadDigest");
    assert_sdk_err(
        s3.get_bucket_cors().bucket(&b).send().await,
        404,
        "NoSuchCORSConfiguration",
    );
    // 100 rules is the limit, not past it.
    let r = put_document(&store, &b, &document(&GET_ANY.repeat(100)), true).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let got = s3.get_bucket_cors().bucket(&b).send().await.unwrap();
    assert_eq!(got.cors_rules().len(), 100);
}

#[tokio::test]
async fn preflights_are_answered_by_the_rules_without_a_signature() {
    let (store, s3, b) = TestStore::with_bucket("cors-pre").await;
    let object = format!("/{b}/dir/photo.jpg");
    // No configuration yet.
    let r = preflight(&store, &object, Some(APP), "GET", "").await;
    r.assert_error(403, "AccessForbidden");
    assert_eq!(
        r.xml("Message").as_deref(),
        Some("CORSResponse: CORS is not enabled for this bucket.")
    );
    // No rules were matched for the object: S3 names the bucket.
    assert_eq!(r.xml("ResourceType").as_deref(), Some("BUCKET"));
    assert_no_cors(&r);
    // An Origin alone, no method asked: the same answer, naming the method OPTIONS.
    let r = preflight(&store, &object, Some(APP), "", "").await;
    r.assert_error(403, "AccessForbidden");
    assert_eq!(r.xml("Method").as_deref(), Some("OPTIONS"));

    put_rules(&s3, &b, app_rules()).await;
    let r = preflight(
        &store,
        &object,
        Some(APP),
        "PUT",
        "Content-Type, X-Amz-Date",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_app_headers(&r);
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type, x-amz-date")
    );
    assert!(r.body.is_empty());
    // The bucket itself, too.
    let r = preflight(&store, &format!("/{b}"), Some(APP), "GET", "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The second rule: any origin may HEAD, without credentials.
    let r = preflight(&store, &object, Some(EVIL), "HEAD", "").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("access-control-allow-credentials"), None);

    // Not allowed: another origin's GET, a method no rule allows, a header HEAD is not given.
    for (origin, method, headers) in [
        (EVIL, "GET", ""),
        (APP, "DELETE", ""),
        (EVIL, "HEAD", "x-amz-date"),
    ] {
        let r = preflight(&store, &object, Some(origin), method, headers).await;
        r.assert_error(403, "AccessForbidden");
        assert!(
            r.xml("Message")
                .unwrap()
                .starts_with("CORSResponse: This CORS request is not allowed."),
            "{}",
            r.text()
        );
        assert_eq!(r.xml("Method").as_deref(), Some(method));
        assert_eq!(r.xml("ResourceType").as_deref(), Some("OBJECT"));
        assert_no_cors(&r);
    }
    // Hostile or incomplete preflights.
    let r = preflight(&store, &object, None, "GET", "").await;
    r.assert_error(400, "BadRequest");
    assert_eq!(
        r.xml("Message").as_deref(),
        Some("Insufficient information. Origin request header needed.")
    );
    let r = preflight(&store, &object, Some(APP), "", "").await;
    r.assert_error(400, "BadRequest");
    let r = preflight(&store, &object, Some(APP), "PATCH", "").await;
    r.assert_error(400, "BadRequest");
    assert_eq!(
        r.xml("Message").as_deref(),
        Some("Invalid Access-Control-Request-Method: PATCH")
    );
    preflight(&store, &object, Some(APP), "GET", "a b")
        .await
        .assert_error(400, "BadRequest");
    // No such bucket: S3's 403, not a NoSuchBucket.
    let r = preflight(&store, "/no-such-bucket-here/k", Some(APP), "GET", "").await;
    r.assert_error(403, "AccessForbidden");
    assert_eq!(
        r.xml("Message").as_deref(),
        Some("CORSResponse: Bucket not found")
    );
    assert_eq!(r.xml("ResourceType").as_deref(), Some("BUCKET"));
    let r = preflight(&store, "/no-such-bucket-here/k", Some(APP), "", "").await;
    r.assert_error(403, "AccessForbidden");
    assert_eq!(
        r.xml("Message").as_deref(),
        Some("CORSResponse: Bucket not found")
    );
    preflight(&store, "/no-such-bucket-here/k", None, "GET", "")
        .await
        .assert_error(400, "BadRequest");
}

#[tokio::test]
async fn real_responses_carry_the_rules_headers_on_success_and_on_errors() {
    let (store, s3, b) = TestStore::with_bucket("cors-real").await;
    let put = put_bytes(&s3, &b, "a.txt", b"hello".to_vec()).await;
    let etag = put.e_tag().unwrap().to_owned();
    // Before there are rules, an Origin changes nothing.
    let get =
        |path: String, origin: &'static str| RawRequest::new("GET", &path).header("origin", origin);
    let r = get(format!("/{b}/a.txt"), APP)
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200);
    assert_no_cors(&r);
    assert_eq!(r.header("vary"), None);

    put_rules(&s3, &b, app_rules()).await;
    let r = get(format!("/{b}/a.txt"), APP)
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
    assert_app_headers(&r);
    // Errors carry them too: 404, 403 (unsigned, private bucket), 304, 412.
    let r = get(format!("/{b}/missing"), APP)
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(404, "NoSuchKey");
    assert_app_headers(&r);
    let r = get(format!("/{b}/a.txt"), APP).send(&store).await;
    r.assert_error(403, "AccessDenied");
    assert_app_headers(&r);
    let r = get(format!("/{b}/a.txt"), APP)
        .header("if-none-match", &etag)
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 304);
    assert_app_headers(&r);
    let r = get(format!("/{b}/a.txt"), APP)
        .header("if-match", "\"0000\"")
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(412, "PreconditionFailed");
    assert_app_headers(&r);
    // A HEAD from anywhere: the second rule.
    let r = RawRequest::new("HEAD", &format!("/{b}/a.txt"))
        .header("origin", EVIL)
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    // An origin no rule allows: no access, but the answer says it depends on the Origin.
    let r = get(format!("/{b}/a.txt"), EVIL)
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200);
    assert_no_cors(&r);
    assert_eq!(r.header("vary"), Some(VARY));
    // Without an Origin a GET or HEAD says only that its answer depends on one (a browser
    // keeping it must not hand it to a CORS request later); other methods get nothing.
    for method in ["GET", "HEAD"] {
        let r = RawRequest::new(method, &format!("/{b}/a.txt"))
            .sign(&store)
            .send(&store)
            .await;
        assert_eq!(r.status, 200);
        assert_no_cors(&r);
        assert_eq!(r.header("vary"), Some(VARY), "{method}");
    }
    let r = RawRequest::new("PUT", &format!("/{b}/b.txt"))
        .body(b"b".to_vec())
        .sign(&store)
        .send(&store)
        .await;
    assert_eq!(r.status, 200);
    assert_no_cors(&r);
    assert_eq!(r.header("vary"), None);
}
