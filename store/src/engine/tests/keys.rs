//! Access keys, grants and bucket owners: each change commits with what it touches and is
//! seen by the live directory as soon as it returns; keys survive a reopen.

use super::*;
use crate::access::Grant;

const READ: Grant = Grant::READ;
const WRITE: Grant = Grant::WRITE;
const ALL: Grant = Grant::ALL;

#[tokio::test]
async fn a_key_is_created_with_no_rights_and_a_fresh_secret() {
    let (_dir, engine) = setup().await;
    let app = engine.create_key("app", false).await.unwrap();
    let edge = engine.create_key("edge-1", true).await.unwrap();
    assert!(app.grants.is_empty() && !app.create_bucket && !app.edge);
    assert!(edge.edge);
    assert_eq!(app.secret.expose().len(), 40);
    assert!(
        app.secret
            .expose()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
    );
    assert_ne!(app.secret, edge.secret);
    assert_ne!(app.access_key_id, edge.access_key_id);
    assert!(!format!("{app:?}").contains(app.secret.expose()));
    assert_eq!(
        kind(engine.create_key("app", true).await),
        Kind::AlreadyExists
    );
    let keys = engine.keys();
    let names: Vec<_> = keys.keys().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["app", "edge-1"]);
    assert_eq!(
        keys.by_access_key(&app.access_key_id).map(|k| &k.name),
        Some(&app.name)
    );
}

#[tokio::test]
async fn grants_are_added_and_taken_per_right() {
    let (_dir, engine) = setup().await;
    engine.create_key("app", false).await.unwrap();
    assert_eq!(
        engine.allow("app", "b", READ).await.unwrap().grant("b"),
        READ
    );
    let both = engine.allow("app", "b", WRITE).await.unwrap();
    assert_eq!(both.grant("b"), READ.with(WRITE));
    assert_eq!(
        engine.deny("app", "b", READ).await.unwrap().grant("b"),
        WRITE
    );
    // A grant left with no right is gone.
    let none = engine.deny("app", "b", WRITE).await.unwrap();
    assert!(none.grants.is_empty());
    assert_eq!(engine.keys().by_name("app").unwrap().grants.len(), 0);
    // A grant names a bucket that exists, and a key that exists.
    assert_eq!(
        kind(engine.allow("app", "nope", READ).await),
        Kind::NotFound(What::Bucket)
    );
    assert_eq!(
        kind(engine.allow("ghost", "b", READ).await),
        Kind::NotFound(What::AccessKey)
    );
    assert!(
        engine
            .set_create_bucket("app", true)
            .await
            .unwrap()
            .create_bucket
    );
    assert!(
        !engine
            .set_create_bucket("app", false)
            .await
            .unwrap()
            .create_bucket
    );
}

#[tokio::test]
async fn deleting_a_key_takes_its_grants_and_deleting_a_bucket_the_grants_on_it() {
    let (_dir, engine) = setup().await;
    engine
        .create_bucket("c", BucketSettings::default())
        .await
        .unwrap();
    let app = engine.create_key("app", false).await.unwrap();
    let other = engine.create_key("other", false).await.unwrap();
    engine.allow("app", "b", READ).await.unwrap();
    engine.allow("app", "c", READ).await.unwrap();
    engine.allow("other", "c", WRITE).await.unwrap();

    engine.delete_key("app").await.unwrap();
    assert!(engine.keys().by_access_key(&app.access_key_id).is_none());
    assert_eq!(
        kind(engine.delete_key("app").await),
        Kind::NotFound(What::AccessKey)
    );
    assert_eq!(
        grant_rows(&engine).await,
        [(other.access_key_id.clone(), "c".into())]
    );
    // A key of the same name is a new key: it inherits nothing.
    let again = engine.create_key("app", false).await.unwrap();
    assert_ne!(again.access_key_id, app.access_key_id);
    assert!(again.grants.is_empty());

    engine.delete_bucket("c").await.unwrap();
    assert!(grant_rows(&engine).await.is_empty());
    assert!(engine.keys().by_name("other").unwrap().grants.is_empty());
    // Nothing waits for a bucket of that name to come back.
    engine
        .create_bucket("c", BucketSettings::default())
        .await
        .unwrap();
    assert!(engine.keys().by_name("other").unwrap().grant("c") == Grant::default());
}

#[tokio::test]
async fn a_bucket_created_by_a_key_is_owned_by_it() {
    let (_dir, engine) = setup().await;
    let app = engine.create_key("app", false).await.unwrap();
    engine
        .create_bucket_for("mine", BucketSettings::default(), &app.access_key_id)
        .await
        .unwrap();
    assert_eq!(engine.keys().by_name("app").unwrap().grant("mine"), ALL);
    let owner = engine
        .inner
        .index
        .read(|txn| index::require_bucket(&txn.open_table(index::BUCKETS)?, "mine"))
        .await
        .unwrap()
        .owner;
    assert_eq!(owner.as_deref(), Some(app.access_key_id.as_str()));
    // An existing bucket is not taken over, and no grant comes with the refusal.
    assert_eq!(
        kind(
            engine
                .create_bucket_for("b", BucketSettings::default(), &app.access_key_id)
                .await
        ),
        Kind::AlreadyExists
    );
    assert_eq!(
        engine.keys().by_name("app").unwrap().grant("b"),
        Grant::default()
    );
    // A key deleted meanwhile creates nothing.
    assert_eq!(
        kind(
            engine
                .create_bucket_for("late", BucketSettings::default(), "OKGONE")
                .await
        ),
        Kind::NotFound(What::AccessKey)
    );
    assert_eq!(
        kind(engine.bucket("late").await),
        Kind::NotFound(What::Bucket)
    );
}

#[tokio::test]
async fn keys_and_grants_survive_a_reopen() {
    let (dir, engine) = setup().await;
    let app = engine.create_key("app", true).await.unwrap();
    engine.allow("app", "b", READ).await.unwrap();
    engine.set_create_bucket("app", true).await.unwrap();
    let before = engine.keys().by_name("app").cloned().unwrap();
    drop(engine);
    let engine = Engine::open(config(dir.path())).await.unwrap();
    let after = engine.keys().by_name("app").cloned().unwrap();
    assert_eq!(after, before);
    assert_eq!(after.secret, app.secret);
    assert!(after.edge && after.create_bucket);
}

/// Concurrent changes each leave the directory their commit made, and the last one wins:
/// the live directory is never an older commit's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_leave_the_latest_directory() {
    let (_dir, engine) = setup().await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("k{i}");
            engine.create_key(&name, false).await.unwrap();
            engine.allow(&name, "b", READ).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let keys = engine.keys();
    assert_eq!(keys.keys().count(), 16);
    assert!(keys.keys().all(|k| k.grant("b") == READ));
}

/// Every grant row, as (access key id, bucket).
async fn grant_rows(engine: &Engine) -> Vec<(String, String)> {
    engine
        .inner
        .index
        .read(|txn| {
            let mut rows = Vec::new();
            for entry in txn.open_table(index::GRANTS)?.iter()? {
                let row = entry?.0;
                let (id, bucket) = row.value();
                rows.push((id.to_owned(), bucket.to_owned()));
            }
            Ok(rows)
        })
        .await
        .unwrap()
}
