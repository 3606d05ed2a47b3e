//! Form uploads (POST Object) through the edge, field by field: `${filename}` expanded in
//! every field, the Content-MD5 field checked by the store the file is relayed to (nothing
//! stored when it does not match), and an anonymous form relayed for the store's bucket
//! policy to decide.

use serde_json::json;

use crate::common::form::{PostForm, anyone_may_put, assert_refused, basic_conditions};
use crate::common::*;

#[tokio::test]
async fn filename_is_expanded_in_every_field_through_the_edge() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "epostvar").await;
    let mut conditions = basic_conditions(&b, "");
    conditions[1] = json!(["starts-with", "$key", "up/"]);
    conditions.push(json!(["starts-with", "$x-amz-meta-picked", ""]));
    let r = PostForm::text("up/${filename}")
        .set("x-amz-meta-picked", "${filename}")
        .file("edge.txt", b"via the edge".to_vec())
        .signed_for_hour(&conditions)
        .request(&format!("/{b}"))
        .send(&pair.edge)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let head = s3
        .head_object()
        .bucket(&b)
        .key("up/edge.txt")
        .send()
        .await
        .unwrap();
    let picked = head.metadata().and_then(|m| m.get("picked")).cloned();
    assert_eq!(picked.as_deref(), Some("edge.txt"));
}

/// A Content-MD5 the file does not match: the store refuses the relayed file.
#[tokio::test]
async fn the_content_md5_field_is_checked_through_the_edge() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "epostmd5").await;
    let mut conditions = basic_conditions(&b, "k");
    conditions.push(json!({"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}));
    let wrong = PostForm::text("k")
        .set("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")
        .signed_for_hour(&conditions);
    let expect = (400, "BadDigest", "did not match");
    assert_refused(&pair.edge, &s3, &b, "k", &wrong, expect).await;
}

#[tokio::test]
async fn an_anonymous_form_through_the_edge_writes_where_the_bucket_policy_lets_anyone() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "epostanon").await;
    anyone_may_put(&s3, &b, "drop/").await;
    let denied = (403, "AccessDenied", "Access Denied");
    assert_refused(
        &pair.edge,
        &s3,
        &b,
        "kept/a",
        &PostForm::text("kept/a"),
        denied,
    )
    .await;
    // The edge learns the policy by polling: poll until the drop prefix is open there too.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = PostForm::text("drop/a")
            .request(&format!("/{b}"))
            .send(&pair.edge)
            .await;
        if r.status == 204 {
            break;
        }
        r.assert_error(403, "AccessDenied");
        assert!(std::time::Instant::now() < deadline, "never allowed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(object_bytes(&s3, &b, "drop/a").await, b"hello from a form");
}
