//! A key's rights through a keyed edge, as aws-sdk-s3 sees them: ListBuckets shows a key the
//! buckets it holds a grant on (the edge relays it on the key's behalf), an owner's bucket
//! policy made through the edge is in force there at once, and a key that does not own the
//! bucket may not set one.

use super::edge_keys::KeyedEdge;
use crate::common::*;

fn names(out: aws_sdk_s3::operation::list_buckets::ListBucketsOutput) -> Vec<String> {
    let buckets = out.buckets().iter();
    buckets
        .filter_map(|b| b.name().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn list_buckets_through_a_keyed_edge_shows_a_key_what_it_holds_a_grant_on() {
    let (pair, root, b) = KeyedEdge::with_bucket("ek-list").await;
    let other = pair.store.bucket(&root, "ek-list-other").await;
    let (id, secret) = pair.key("lister", &b, &["--write"]);
    let (none_id, none_secret) = pair.key("nothing", &b, &[]);
    pair.synced(&b).await;
    let lister = client_for(&pair.edge.url, &id, &secret);
    assert_eq!(
        names(lister.list_buckets().send().await.unwrap()),
        [b.as_str()]
    );
    let nothing = client_for(&pair.edge.url, &none_id, &none_secret);
    assert!(names(nothing.list_buckets().send().await.unwrap()).is_empty());
    let all = names(root.list_buckets().send().await.unwrap());
    assert!(all.contains(&b) && all.contains(&other), "{all:?}");
    // Anonymous: no listing at all.
    RawRequest::new("GET", "/")
        .send(&pair.edge)
        .await
        .assert_error(403, "AccessDenied");
}

#[tokio::test]
async fn an_owner_sets_a_bucket_policy_through_a_keyed_edge_and_a_writer_may_not() {
    let (pair, root, b) = KeyedEdge::with_bucket("ek-owner").await;
    put_bytes(&root, &b, "public/a.txt", b"open".to_vec()).await;
    put_bytes(&root, &b, "private/b.txt", b"closed".to_vec()).await;
    let (owner_id, owner_secret) = pair.key("owner", &b, &["--owner"]);
    let (writer_id, writer_secret) = pair.key("writer", &b, &["--write"]);
    pair.synced(&b).await;
    let policy = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{b}/public/*"}}]}}"#
    );
    let writer = client_for(&pair.edge.url, &writer_id, &writer_secret);
    assert_sdk_err(
        writer
            .put_bucket_policy()
            .bucket(&b)
            .policy(&policy)
            .send()
            .await,
        403,
        "AccessDenied",
    );
    let owner = client_for(&pair.edge.url, &owner_id, &owner_secret);
    owner
        .put_bucket_policy()
        .bucket(&b)
        .policy(&policy)
        .send()
        .await
        .unwrap();
    // In force at the edge as soon as it is answered (the edge refreshed its document).
    let public = RawRequest::new("GET", &format!("/{b}/public/a.txt"))
        .send(&pair.edge)
        .await;
    assert_eq!((public.status, public.body.as_slice()), (200, &b"open"[..]));
    RawRequest::new("GET", &format!("/{b}/private/b.txt"))
        .send(&pair.edge)
        .await
        .assert_error(403, "AccessDenied");
    // Owning the bucket's settings is not reading its objects.
    assert_sdk_err(
        owner
            .get_object()
            .bucket(&b)
            .key("private/b.txt")
            .send()
            .await,
        403,
        "AccessDenied",
    );
}
