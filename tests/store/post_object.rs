//! Browser form uploads (POST Object) at the store, with raw multipart/form-data bodies as a
//! browser sends them and SigV4 POST policies signed with the test key: each success answer
//! (204, 200, 201 PostResponse, 303 redirect), every refusal with AWS's code and wording and
//! nothing stored, `${filename}`, content-length-range checked while the file streams, a
//! 20 MiB file with flat memory, and a connection cut mid-file leaving no object.
//! (On main every POST to a bucket answered NotImplemented.)

use std::time::{Duration, SystemTime};

use crate::common::form::{
    PostForm, assert_refused, basic_conditions, big_form_keeps_memory_flat, cut_mid_file,
};
use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn a_signed_form_stores_its_file_and_answers_as_it_asks() {
    let (store, s3, b) = TestStore::with_bucket("postok").await;
    let mut conditions = basic_conditions(&b, "k");
    conditions.push(json!(["starts-with", "$x-amz-meta-", ""]));
    conditions.push(json!(["starts-with", "$x-amz-meta-note", ""]));
    conditions.push(json!(["starts-with", "$success_action_status", ""]));
    conditions.push(json!(["starts-with", "$success_action_redirect", ""]));
    let answers = [
        (None, None, 204),
        (Some("200"), None, 200),
        (Some("201"), None, 201),
        (Some("299"), None, 204),
        (None, Some("http://app.test/done?x=1"), 303),
    ];
    for (i, (status, redirect, expect)) in answers.into_iter().enumerate() {
        let data = random_bytes(1000 + i, i as u64);
        let mut f = PostForm::text("k").set("x-amz-meta-note", &format!("n{i}"));
        if let Some(s) = status {
            f = f.set("success_action_status", s);
        }
        if let Some(r) = redirect {
            f = f.set("success_action_redirect", r);
        }
        let f = f.file("a.txt", data.clone()).signed_for_hour(&conditions);
        let r = f.request(&format!("/{b}")).send(&store).await;
        assert_eq!(r.status, expect, "{status:?} {redirect:?}: {}", r.text());
        let etag = etag_of(&data);
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        match expect {
            201 => {
                assert_eq!(r.xml("Bucket").as_deref(), Some(b.as_str()));
                assert_eq!(r.xml("Key").as_deref(), Some("k"));
                assert_eq!(r.xml("ETag"), Some(etag.clone()));
                let location = r.xml("Location").unwrap();
                assert!(location.ends_with(&format!("/{b}/k")), "{location}");
            }
            303 => {
                let to = r.header("location").unwrap();
                let want = format!("http://app.test/done?x=1&bucket={b}&key=k&etag=%22");
                assert!(to.starts_with(&want), "{to}");
            }
            _ => assert!(r.body.is_empty(), "{}", r.text()),
        }
        let got = s3.get_object().bucket(&b).key("k").send().await.unwrap();
        assert_eq!(got.content_type(), Some("text/plain"));
        let note = got.metadata().and_then(|m| m.get("note")).cloned();
        assert_eq!(note, Some(format!("n{i}")));
        assert_eq!(read_body(got.body).await, data);
    }
}

#[tokio::test]
async fn a_form_without_a_valid_policy_or_within_it_is_refused_and_stores_nothing() {
    let (store, s3, b) = TestStore::with_bucket("postno").await;
    let conditions = basic_conditions(&b, "k");
    let good = PostForm::text("k").signed_for_hour(&conditions);
    let denied = |message| (403, "AccessDenied", message);
    let expired =
        PostForm::text("k").signed(&conditions, SystemTime::now() - Duration::from_secs(1));
    // Another policy (any key) under the old signature.
    let wider = PostForm::text("other").signed_for_hour(&basic_conditions(&b, "other"));
    let tampered_policy = good
        .clone()
        .set("key", "other")
        .set("policy", wider.get("policy"));
    let mut signature = good.get("x-amz-signature").to_owned();
    signature.replace_range(..1, if signature.starts_with('0') { "1" } else { "0" });
    let tampered_signature = good.clone().set("x-amz-signature", &signature);
    let extra = PostForm::text("k")
        .set("x-amz-meta-extra", "1")
        .signed_for_hour(&conditions);
    let wrong_bucket =
        PostForm::text("k").signed_for_hour(&basic_conditions("another-bucket", "k"));
    let mut prefixed = conditions.clone();
    prefixed[1] = json!(["starts-with", "$key", "uploads/"]);
    let outside_prefix = PostForm::text("k").signed_for_hour(&prefixed);
    let mut with_acl = conditions.clone();
    with_acl.push(json!({"acl": "public-read"}));
    let public_acl = PostForm::text("k")
        .set("acl", "public-read")
        .signed_for_hour(&with_acl);
    let cases = [
        (
            expired,
            denied("Invalid according to Policy: Policy expired."),
        ),
        (
            tampered_policy,
            (403, "SignatureDoesNotMatch", "signature we calculated"),
        ),
        (
            tampered_signature,
            (403, "SignatureDoesNotMatch", "signature we calculated"),
        ),
        (
            extra,
            denied("Invalid according to Policy: Extra input fields: x-amz-meta-extra"),
        ),
        (
            wrong_bucket,
            denied(r#"Policy Condition failed: ["eq", "$bucket", "another-bucket"]"#),
        ),
        (
            outside_prefix,
            denied(r#"Policy Condition failed: ["starts-with", "$key", "uploads/"]"#),
        ),
        (public_acl, (400, "AccessControlListNotSupported", "ACLs")),
        // Anonymous: no policy, and the bucket's policy opens nothing.
        (PostForm::text("k"), denied("Access Denied")),
    ];
    for (f, expect) in &cases {
        assert_refused(&store, &s3, &b, "k", f, *expect).await;
        assert_refused(&store, &s3, &b, "other", f, *expect).await;
    }
    // Headers that would change what the write does are refused, even when the policy names
    // them; so is what the store does not do yet (never accepted and dropped).
    put_bytes(&s3, &b, "secret", b"kept".to_vec()).await;
    for (field, value, expect) in [
        (
            "x-amz-copy-source",
            format!("/{b}/secret"),
            (400, "InvalidArgument", "x-amz-copy-source"),
        ),
        (
            "x-amz-decoded-content-length",
            "1".into(),
            (400, "InvalidArgument", "not supported"),
        ),
        (
            "x-amz-server-side-encryption",
            "AES256".into(),
            (501, "NotImplemented", "encryption"),
        ),
        (
            "tagging",
            "<Tagging/>".into(),
            (501, "NotImplemented", "tagging"),
        ),
    ] {
        let mut named = conditions.clone();
        named.push(json!({ field: value }));
        let f = PostForm::text("k")
            .set(field, &value)
            .signed_for_hour(&named);
        assert_refused(&store, &s3, &b, "k", &f, expect).await;
    }
    assert_eq!(object_bytes(&s3, &b, "secret").await, b"kept");
    // A second value for a field the policy pins does not slip past it.
    let mut pinned = conditions.clone();
    pinned.push(json!({"x-amz-meta-role": "viewer"}));
    let mut twice = PostForm::text("k")
        .set("x-amz-meta-role", "viewer")
        .signed_for_hour(&pinned);
    twice
        .fields
        .push(("x-amz-meta-role".into(), "admin".into()));
    let expect = (400, "InvalidArgument", "more than once");
    assert_refused(&store, &s3, &b, "k", &twice, expect).await;
    // Not a form at all: AWS's answer to any other POST to a bucket.
    let r = RawRequest::new("POST", &format!("/{b}"))
        .header("content-type", "application/json")
        .body("{}")
        .send(&store)
        .await;
    r.assert_error(412, "PreconditionFailed");
    // Fields before the file past 20 KiB.
    let padded = PostForm::text("k")
        .set("x-ignore-pad", &"p".repeat(24 << 10))
        .signed_for_hour(&conditions);
    assert_refused(
        &store,
        &s3,
        &b,
        "k",
        &padded,
        (400, "MaxPostPreDataLengthExceeded", "too large"),
    )
    .await;
    // The key after the file is never read: the form has none.
    let mut late_key = good.clone();
    late_key.fields.retain(|(k, _)| k != "key");
    late_key.after.push(("key".into(), "k".into()));
    assert_refused(
        &store,
        &s3,
        &b,
        "k",
        &late_key,
        (400, "InvalidArgument", "'key'"),
    )
    .await;
    // The good form still works.
    let r = good.request(&format!("/{b}")).send(&store).await;
    assert_eq!(r.status, 204, "{}", r.text());
}

#[tokio::test]
async fn filename_is_substituted_and_fields_after_the_file_are_ignored() {
    let (store, s3, b) = TestStore::with_bucket("postfn").await;
    let mut conditions = basic_conditions(&b, "");
    conditions[1] = json!(["starts-with", "$key", "uploads/"]);
    let mut f = PostForm::text("uploads/${filename}")
        .file("photo 1.jpg", b"jpeg bytes".to_vec())
        .signed_for_hour(&conditions);
    // Not covered by the policy, but after the file: never read, as at AWS.
    f.after.push(("x-amz-meta-late".into(), "x".into()));
    let r = f.request(&format!("/{b}")).send(&store).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let got = object_bytes(&s3, &b, "uploads/photo 1.jpg").await;
    assert_eq!(got, b"jpeg bytes");
    let head = s3
        .head_object()
        .bucket(&b)
        .key("uploads/photo 1.jpg")
        .send()
        .await
        .unwrap();
    assert!(head.metadata().is_none_or(|m| m.is_empty()), "{head:?}");
}

#[tokio::test]
async fn content_length_range_is_enforced_as_the_file_streams() {
    let (store, s3, b) = TestStore::with_bucket("postlen").await;
    let mut conditions = basic_conditions(&b, "k");
    conditions.push(json!(["content-length-range", 10, 100_000]));
    let sized = |n: usize| {
        PostForm::text("k")
            .file("f", random_bytes(n, n as u64))
            .signed_for_hour(&conditions)
    };
    let small = (400, "EntityTooSmall", "smaller");
    let large = (400, "EntityTooLarge", "exceeds");
    for (n, expect) in [(9, small), (100_001, large), (3 * MIB, large)] {
        assert_refused(&store, &s3, &b, "k", &sized(n), expect).await;
    }
    for n in [10, 100_000] {
        let r = sized(n).request(&format!("/{b}")).send(&store).await;
        assert_eq!(r.status, 204, "{n}: {}", r.text());
        assert_eq!(object_bytes(&s3, &b, "k").await.len(), n);
    }
}

#[tokio::test]
async fn a_virtual_hosted_form_upload() {
    let store = TestStore::start_with(
        StoreOptions::default().config("[store]\nbase_domain = \"s3.test\"\n"),
    );
    let s3 = store.client();
    let b = store.bucket(&s3, "postvh").await;
    let f = PostForm::text("k").set("success_action_status", "201");
    let mut conditions = basic_conditions(&b, "k");
    conditions.push(json!({"success_action_status": "201"}));
    let r = f
        .signed_for_hour(&conditions)
        .request("/")
        .host(&format!("{b}.s3.test"))
        .send(&store)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.xml("Location").unwrap(), format!("http://{b}.s3.test/k"));
    assert_eq!(object_bytes(&s3, &b, "k").await, b"hello from a form");
}

/// A 20 MiB file streams to disk: the store's peak memory grows by far less than the file.
#[tokio::test]
async fn a_20_mib_file_streams_with_flat_memory() {
    let (store, s3, b) = TestStore::with_bucket("postbig").await;
    big_form_keeps_memory_flat(&store, &s3, &b).await;
}

/// The connection cut in the middle of the file: nothing is stored.
#[tokio::test]
async fn a_connection_cut_mid_file_leaves_no_object() {
    let (store, s3, b) = TestStore::with_bucket("postcut").await;
    cut_mid_file(&store, &s3, &b, "outpost_s3_requests_total").await;
}
