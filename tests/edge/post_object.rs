//! Browser form uploads (POST Object) through the edge: the edge checks the form with the
//! protocol kit (signature against its keyring, policy, conditions) and relays the file to the
//! store as a streaming PutObject; it answers as the store does and drops its cached copies
//! of the key. Refused forms never reach the store; a file outside content-length-range or cut
//! mid-way leaves nothing at the store. (On main the edge relayed the POST, answered
//! NotImplemented.)

use std::time::{Duration, Instant, SystemTime};

use serde_json::json;

use crate::common::form::{
    PostForm, assert_refused, basic_conditions, big_form_keeps_memory_flat, cut_mid_file,
};
use crate::common::*;

#[tokio::test]
async fn a_form_through_the_edge_is_stored_and_the_cached_copy_dropped() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "epost").await;
    put_bytes(&s3, &b, "k", b"old".to_vec()).await;
    let edge = pair.edge.client();
    assert_eq!(object_bytes(&edge, &b, "k").await, b"old");
    let mut conditions = basic_conditions(&b, "k");
    conditions.push(json!({"x-amz-meta-who": "browser"}));
    conditions.push(json!({"success_action_status": "201"}));
    let data = random_bytes(300_000, 5);
    let f = PostForm::text("k")
        .set("x-amz-meta-who", "browser")
        .set("success_action_status", "201")
        .file("a.bin", data.clone())
        .signed_for_hour(&conditions);
    let r = f.request(&format!("/{b}")).send(&pair.edge).await;
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.xml("ETag"), Some(etag_of(&data)));
    assert_eq!(r.xml("Key").as_deref(), Some("k"));
    assert_eq!(
        object_bytes(&edge, &b, "k").await,
        data,
        "the edge served its stale copy"
    );
    let stored = s3.head_object().bucket(&b).key("k").send().await.unwrap();
    assert_eq!(stored.content_type(), Some("text/plain"));
    assert_eq!(
        stored.metadata().unwrap().get("who").map(String::as_str),
        Some("browser")
    );

    let mut redirect = basic_conditions(&b, "r");
    redirect.push(json!([
        "starts-with",
        "$success_action_redirect",
        "http://app.test/"
    ]));
    let r = PostForm::text("r")
        .set("success_action_redirect", "http://app.test/ok")
        .signed_for_hour(&redirect)
        .request(&format!("/{b}"))
        .send(&pair.edge)
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let to = r.header("location").unwrap();
    assert!(
        to.starts_with(&format!("http://app.test/ok?bucket={b}&key=r&etag=%22")),
        "{to}"
    );
    assert_eq!(object_bytes(&s3, &b, "r").await, b"hello from a form");
}

#[tokio::test]
async fn forms_the_edge_refuses_never_reach_the_store() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "epostno").await;
    let conditions = basic_conditions(&b, "k");
    let good = PostForm::text("k").signed_for_hour(&conditions);
    let mut signature = good.get("x-amz-signature").to_owned();
    signature.replace_range(..1, if signature.starts_with('0') { "1" } else { "0" });
    let cases = [
        (
            PostForm::text("k").signed(&conditions, SystemTime::now() - Duration::from_secs(1)),
            (403, "AccessDenied", "Policy expired."),
        ),
        (
            good.clone().set("x-amz-signature", &signature),
            (403, "SignatureDoesNotMatch", "signature"),
        ),
        (
            PostForm::text("k")
                .set("foo", "1")
                .signed_for_hour(&conditions),
            (403, "AccessDenied", "Extra input fields: foo"),
        ),
        (
            PostForm::text("k").signed_for_hour(&basic_conditions(&b, "other")),
            (403, "AccessDenied", r#"["eq", "$key", "other"]"#),
        ),
    ];
    for (f, expect) in &cases {
        assert_refused(&pair.edge, &s3, &b, "k", f, *expect).await;
    }
    let puts = pair
        .store
        .metric("outpost_s3_requests_total", &[("operation", "PutObject")])
        .await;
    assert_eq!(puts, 0.0, "a refused form was relayed");
    // A header that would turn the relayed PutObject into a copy is refused, even when the
    // policy names it: the edge's relay never copies another object into the key.
    put_bytes(&s3, &b, "secret", b"secret bytes".to_vec()).await;
    let mut copying = conditions.clone();
    copying.push(json!({"x-amz-copy-source": format!("/{b}/secret")}));
    let copy = PostForm::text("k")
        .set("x-amz-copy-source", &format!("/{b}/secret"))
        .signed_for_hour(&copying);
    let expect = (400, "InvalidArgument", "x-amz-copy-source");
    assert_refused(&pair.edge, &s3, &b, "k", &copy, expect).await;
    // Anonymous: relayed unsigned, and the store's policy (none) refuses it.
    assert_refused(
        &pair.edge,
        &s3,
        &b,
        "k",
        &PostForm::text("k"),
        (403, "AccessDenied", "Access Denied"),
    )
    .await;
}

#[tokio::test]
async fn content_length_range_through_the_edge_stores_nothing_outside_it() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "epostlen").await;
    let mut conditions = basic_conditions(&b, "k");
    conditions.push(json!(["content-length-range", 100, 2_000_000]));
    let sized = |n: usize| {
        PostForm::text("k")
            .file("f", random_bytes(n, 1))
            .signed_for_hour(&conditions)
    };
    let small = (400, "EntityTooSmall", "smaller");
    let large = (400, "EntityTooLarge", "exceeds");
    assert_refused(&pair.edge, &s3, &b, "k", &sized(99), small).await;
    assert_refused(&pair.edge, &s3, &b, "k", &sized(2_000_001), large).await;
    let r = sized(2_000_000)
        .request(&format!("/{b}"))
        .send(&pair.edge)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(object_bytes(&s3, &b, "k").await, random_bytes(2_000_000, 1));
}

/// A 20 MiB file through the edge: the edge's peak memory grows by far less than the file.
#[tokio::test]
async fn a_20_mib_file_streams_through_the_edge_with_flat_memory() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "epostbig").await;
    big_form_keeps_memory_flat(&pair.edge, &s3, &b).await;
}

#[tokio::test]
async fn a_connection_cut_mid_file_at_the_edge_leaves_no_object_at_the_store() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "epostcut").await;
    cut_mid_file(&pair.edge, &s3, &b, "outpost_edge_requests_total").await;
    // The relayed PutObject, cut short too, has been answered at the store: still nothing.
    let deadline = Instant::now() + Duration::from_secs(30);
    let relayed = [("operation", "PutObject")];
    while pair
        .store
        .metric("outpost_s3_requests_total", &relayed)
        .await
        < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "the store never saw the relayed PutObject end"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_sdk_err(
        s3.head_object().bucket(&b).key("cut").send().await,
        404,
        "NotFound",
    );
}
