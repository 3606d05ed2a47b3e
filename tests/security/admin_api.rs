//! The admin API (`/_outpost/admin/`) is the root key's alone: an anonymous caller, a key of
//! the index (with every right, or an edge key), a tampered signature, a body swapped under a
//! signature, an unsigned body or a presigned URL are all refused, and nothing changes. Its
//! errors are JSON with the right status.

use crate::common::keys::{create_key, key_ok};
use crate::common::raw::{Body, Payload, RawResponse};
use crate::common::*;

fn admin(method: &str, path: &str, body: &str) -> RawRequest {
    let request = RawRequest::new(method, &format!("/_outpost/admin/{path}"));
    if body.is_empty() {
        return request;
    }
    request
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
}

/// Status and JSON `code` of an admin answer (which must be JSON).
#[track_caller]
fn answer(r: &RawResponse) -> (u16, String) {
    let json: serde_json::Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", r.status, r.text()));
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{}",
        r.text()
    );
    let code = json["code"].as_str().unwrap_or("").to_owned();
    (r.status, code)
}

#[track_caller]
fn refused(r: &RawResponse, status: u16, code: &str) {
    assert_eq!(answer(r), (status, code.to_owned()), "{}", r.text());
}

/// The names of the keys, as the root key lists them.
fn names(store: &TestStore) -> Vec<String> {
    let list = key_ok(store, &["list", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&list).unwrap();
    json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn anonymous_and_unknown_callers_are_refused() {
    let store = TestStore::start();
    refused(
        &admin("GET", "keys", "").send(&store).await,
        403,
        "AccessDenied",
    );
    let create = admin("POST", "keys", r#"{"name":"anon"}"#);
    refused(&create.send(&store).await, 403, "AccessDenied");
    let opts = SignOpts::default().keys("OKNOSUCHKEY000000000", "whatever");
    let (unknown, _) = admin("POST", "keys", r#"{"name":"ghost"}"#).sign_with(&store, &opts);
    refused(&unknown.send(&store).await, 403, "InvalidAccessKeyId");
    assert!(names(&store).is_empty());
}

#[tokio::test]
async fn keys_other_than_root_are_refused_even_with_every_right() {
    let (store, root, bucket) = TestStore::with_bucket("admin").await;
    let (app, app_secret) = create_key(&store, "app", &[]);
    let (edge, edge_secret) = create_key(&store, "edge", &["--edge"]);
    for name in ["app", "edge"] {
        key_ok(
            &store,
            &[
                "allow", name, "--bucket", &bucket, "--read", "--write", "--owner",
            ],
        );
        key_ok(&store, &["allow", name, "--create-bucket"]);
    }
    // The keys work for S3 (so a refusal below is the admin API's, not a bad key).
    put_bytes(
        &client_for(&store.url, &app, &app_secret),
        &bucket,
        "a",
        b"x",
    )
    .await;
    put_bytes(
        &client_for(&store.url, &edge, &edge_secret),
        &bucket,
        "e",
        b"x",
    )
    .await;
    drop(root);

    for (id, secret) in [(&app, &app_secret), (&edge, &edge_secret)] {
        let opts = SignOpts::default().keys(id, secret);
        let calls = [
            admin("GET", "keys", ""),
            admin("GET", "keys/app", ""),
            admin("POST", "keys", r#"{"name":"escalated"}"#),
            admin("POST", "keys/app/allow", r#"{"create_bucket":true}"#),
            admin("DELETE", "keys/edge", ""),
        ];
        for call in calls {
            let what = format!("{} {}", call.method, call.target);
            let r = call.sign_with(&store, &opts).0.send(&store).await;
            assert_eq!(
                answer(&r),
                (403, "AccessDenied".into()),
                "{what} by {id}: {}",
                r.text()
            );
        }
    }
    assert_eq!(names(&store), ["app", "edge"]);
}

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    let store = TestStore::start();
    let (signed, signature) =
        admin("POST", "keys", r#"{"name":"forged"}"#).sign_with(&store, &SignOpts::default());
    let mut forged = signature.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    let auth = signed
        .get_header("authorization")
        .unwrap()
        .replace(&signature, &forged);
    let r = signed.header("authorization", &auth).send(&store).await;
    refused(&r, 403, "SignatureDoesNotMatch");
    assert!(names(&store).is_empty());
}

/// A signed request replayed with another body: with the signed hash, the body fails its
/// check before it is parsed; with the new body's hash, the signature fails.
#[tokio::test]
async fn a_body_swapped_under_a_signature_is_refused() {
    let store = TestStore::start();
    let (signed, _) =
        admin("POST", "keys", r#"{"name":"good"}"#).sign_with(&store, &SignOpts::default());
    let evil = br#"{"name":"evil"}"#.to_vec();
    assert_eq!(evil.len(), r#"{"name":"good"}"#.len());

    let mut same_hash = signed.clone();
    same_hash.body = Body::Bytes(evil.clone());
    refused(
        &same_hash.send(&store).await,
        400,
        "XAmzContentSHA256Mismatch",
    );

    let mut new_hash = signed.clone();
    new_hash.body = Body::Bytes(evil.clone());
    let new_hash = new_hash.header("x-amz-content-sha256", &hash::sha256_hex(&evil));
    refused(&new_hash.send(&store).await, 403, "SignatureDoesNotMatch");
    assert!(names(&store).is_empty(), "nothing was created");

    // The request as signed still works (the refusals were about the swap).
    assert_eq!(signed.send(&store).await.status, 201);
    assert_eq!(names(&store), ["good"]);
}

#[tokio::test]
async fn the_root_key_must_sign_the_body_and_not_presign() {
    let store = TestStore::start();
    let unsigned = SignOpts::default().payload(Payload::Unsigned);
    let (call, _) = admin("POST", "keys", r#"{"name":"unsigned"}"#).sign_with(&store, &unsigned);
    refused(&call.send(&store).await, 403, "AccessDenied");
    let presigned = admin("GET", "keys", "").presign(
        &store,
        &SignOpts::default(),
        std::time::Duration::from_secs(300),
    );
    refused(&presigned.send(&store).await, 403, "AccessDenied");
    assert!(names(&store).is_empty());
}

#[tokio::test]
async fn admin_errors_are_json_with_their_status() {
    let (store, _root, bucket) = TestStore::with_bucket("errors").await;
    create_key(&store, "taken", &[]);
    let send = async |method: &str, path: &str, body: &str| {
        admin(method, path, body).sign(&store).send(&store).await
    };
    let cases = [
        ("POST", "keys", "{", 400, "MalformedJSON"),
        (
            "POST",
            "keys",
            r#"{"name":"a","root":true}"#,
            400,
            "MalformedJSON",
        ),
        ("POST", "keys", r#"{"name":"a b"}"#, 400, "InvalidArgument"),
        (
            "POST",
            "keys",
            r#"{"name":"taken"}"#,
            409,
            "AccessKeyAlreadyExists",
        ),
        ("GET", "keys/nobody", "", 404, "NoSuchAccessKey"),
        ("DELETE", "keys/nobody", "", 404, "NoSuchAccessKey"),
        (
            "POST",
            "keys/nobody/allow",
            r#"{"create_bucket":true}"#,
            404,
            "NoSuchAccessKey",
        ),
        (
            "POST",
            "keys/taken/allow",
            r#"{"bucket":"no-such-bucket","read":true}"#,
            404,
            "NoSuchBucket",
        ),
        (
            "POST",
            "keys/taken/allow",
            &format!(r#"{{"bucket":"{bucket}"}}"#),
            400,
            "InvalidArgument",
        ),
        (
            "POST",
            "keys/taken/deny",
            r#"{"read":true}"#,
            400,
            "InvalidArgument",
        ),
        ("PUT", "keys/taken", "", 405, "MethodNotAllowed"),
        ("GET", "users", "", 400, "InvalidURI"),
    ];
    for (method, path, body, status, code) in cases {
        let r = send(method, path, body).await;
        assert_eq!(
            answer(&r),
            (status, code.to_owned()),
            "{method} {path} {body}: {}",
            r.text()
        );
    }
    assert_eq!(names(&store), ["taken"]);
}

/// Racing creations of one name make one key: one caller gets its secret, the others 409.
#[tokio::test]
async fn concurrent_creations_of_one_name_make_one_key() {
    let store = TestStore::start();
    let mut calls = Vec::new();
    for _ in 0..8 {
        let call = admin("POST", "keys", r#"{"name":"raced"}"#).sign(&store);
        calls.push(call.send(&store));
    }
    let answers = futures::future::join_all(calls).await;
    let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    let secrets: Vec<String> = answers
        .iter()
        .filter_map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).ok())
        .filter_map(|v| v["secret_access_key"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        secrets.len(),
        1,
        "one secret, in the one answer that created the key"
    );
    assert_eq!(names(&store), ["raced"]);
}
