//! The change log: one event per committed mutation, numbered in its transaction, kept across
//! restarts, pruned by age and count, and announced to subscribers by commits.

use super::*;
use crate::access::Grant;
use crate::engine::changes::Retention;

/// Every event after `after`, as (seq, kind, bucket, key).
async fn events(
    engine: &Engine,
    after: u64,
) -> Vec<(u64, ChangeKind, Option<String>, Option<String>)> {
    match engine.changes_after(after, 10_000).await.unwrap() {
        ChangesAfter::Events { events, .. } => events
            .into_iter()
            .map(|e| (e.seq, e.change.kind, e.change.bucket, e.change.key))
            .collect(),
        gone => panic!("events after {after} are gone: {gone:?}"),
    }
}

fn last(engine: &Engine) -> u64 {
    *engine.watch_changes().borrow()
}

fn kinds(events: &[(u64, ChangeKind, Option<String>, Option<String>)]) -> Vec<ChangeKind> {
    events.iter().map(|e| e.1).collect()
}

#[tokio::test]
async fn every_mutation_is_one_numbered_event() {
    let (_dir, engine) = setup().await;
    let start = last(&engine);
    assert_eq!(events(&engine, 0).await[0].1, ChangeKind::BucketCreate);
    let info = put(&engine, "k", b"one").await.unwrap();
    engine
        .replace_headers("b", "k", ObjectHeaders::default())
        .await
        .unwrap();
    // A write refused by its precondition records nothing.
    let refused = engine
        .put_object(
            "b",
            "k",
            PutOptions {
                condition: WriteCondition {
                    if_none_match_any: true,
                    ..Default::default()
                },
                ..Default::default()
            },
            body(b"two"),
            ok(),
        )
        .await;
    assert_eq!(kind(refused), Kind::Precondition);
    let up = engine
        .create_upload("b", "m", ObjectHeaders::default(), None)
        .await
        .unwrap();
    let part = engine
        .upload_part("b", "m", &up.upload_id, 1, body(b"part"), ok())
        .await
        .unwrap();
    let done = engine
        .complete_upload(
            "b",
            "m",
            &up.upload_id,
            vec![CompletedPart {
                part_number: 1,
                etag: part.etag,
                checksum: None,
            }],
            WriteCondition::default(),
            None,
        )
        .await
        .unwrap();
    let keys = ["k", "m", "absent"].map(|k| (k.to_owned(), WriteCondition::default()));
    engine.delete_objects("b", keys.to_vec()).await.unwrap();
    let mut settings = BucketSettings {
        policy: Some("{}".into()),
        cors: Some("<CORSConfiguration/>".into()),
        ..Default::default()
    };
    engine
        .set_bucket_settings("b", settings.clone())
        .await
        .unwrap();
    settings.website = Some("<WebsiteConfiguration/>".into());
    engine
        .set_bucket_settings("b", settings.clone())
        .await
        .unwrap();
    // Settings written again unchanged are no event.
    engine.set_bucket_settings("b", settings).await.unwrap();
    let key = engine.create_key("app", false).await.unwrap();
    engine.allow("app", "b", Grant::READ).await.unwrap();
    engine.delete_key("app").await.unwrap();
    engine
        .create_bucket("c", BucketSettings::default())
        .await
        .unwrap();
    engine.delete_bucket("c").await.unwrap();
    let seq = engine
        .record_invalidation(vec!["/b/img/*".into()])
        .await
        .unwrap();

    let got = events(&engine, start).await;
    use ChangeKind as K;
    assert_eq!(
        kinds(&got),
        [
            K::Put,
            K::Put,
            K::Put,
            K::Delete,
            K::Delete,
            K::Policy,
            K::Cors,
            K::Website,
            K::Key,
            K::Grant,
            K::Key,
            K::BucketCreate,
            K::BucketDelete,
            K::Invalidation
        ]
    );
    let numbers: Vec<u64> = got.iter().map(|e| e.0).collect();
    let expected: Vec<u64> = (start + 1..=start + got.len() as u64).collect();
    assert_eq!(
        numbers, expected,
        "one number each, in commit order, no gap"
    );
    assert_eq!(seq, *numbers.last().unwrap());
    assert_eq!(last(&engine), seq);
    assert_eq!(got[0].3.as_deref(), Some("k"));
    assert_eq!(got[2].3.as_deref(), Some("m"));
    assert_eq!(got[3].3.as_deref(), Some("k"));
    assert_eq!(got[11].2.as_deref(), Some("c"));
    let ChangesAfter::Events { events: full, .. } = engine.changes_after(start, 100).await.unwrap()
    else {
        panic!("gone")
    };
    assert_eq!(full[0].change.etag, Some(format!("\"{}\"", info.etag)));
    assert_eq!(full[2].change.etag, Some(format!("\"{}\"", done.etag)));
    assert_eq!(
        full[8].change.access_key_id,
        Some(key.access_key_id.clone())
    );
    assert_eq!(full[9].change.bucket.as_deref(), Some("b"));
    assert_eq!(full[13].change.paths, ["/b/img/*"]);
    assert!(full[0].time <= full[13].time);
    // A page is at most `limit` events, from the first after.
    let ChangesAfter::Events { events: page, .. } =
        engine.changes_after(start + 2, 2).await.unwrap()
    else {
        panic!("gone")
    };
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [start + 3, start + 4]
    );
}

#[tokio::test]
async fn numbers_and_the_store_id_survive_a_restart() {
    let (dir, engine) = setup().await;
    put(&engine, "k", b"v").await.unwrap();
    let (id, before) = (engine.store_id().to_owned(), last(&engine));
    assert_eq!(before, 2);
    assert_eq!(id.len(), 32);
    drop(engine);
    let engine = Engine::open(config(dir.path())).await.unwrap();
    assert_eq!(engine.store_id(), id);
    assert_eq!(last(&engine), before);
    put(&engine, "k", b"w").await.unwrap();
    assert_eq!(events(&engine, before).await[0].0, before + 1);
    // Other data, other id.
    let other = tempfile::tempdir().unwrap();
    let fresh = Engine::open(config(other.path())).await.unwrap();
    assert_ne!(fresh.store_id(), id);
}

#[tokio::test]
async fn the_log_is_pruned_to_its_count_and_age_and_numbers_still_grow() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.changes = Retention {
        max_age: Duration::from_secs(3600),
        max_events: 3,
    };
    let engine = Engine::open(cfg.clone()).await.unwrap();
    engine
        .create_bucket("b", BucketSettings::default())
        .await
        .unwrap();
    for i in 0..5u8 {
        put(&engine, &format!("k{i}"), &[i]).await.unwrap();
    }
    assert_eq!(last(&engine), 6);
    assert_eq!(engine.change_log_state().1, 3);
    assert_eq!(events(&engine, 3).await.len(), 3);
    assert_eq!(
        engine.changes_after(2, 10).await.unwrap(),
        ChangesAfter::Gone { oldest: 4, last: 6 },
        "events 3 is no longer kept"
    );
    assert!(
        matches!(
            engine.changes_after(7, 10).await.unwrap(),
            ChangesAfter::Gone { last: 6, .. }
        ),
        "a number never given: other data"
    );
    assert_eq!(events(&engine, 6).await, [], "nothing new is no error");
    drop(engine);
    // Past its age, everything goes; the next number still follows the last one given.
    cfg.changes.max_age = Duration::ZERO;
    let engine = Engine::open(cfg).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    engine
        .record_invalidation(vec!["/b/x".into()])
        .await
        .unwrap();
    put(&engine, "k", b"late").await.unwrap();
    let (_, kept) = engine.change_log_state();
    assert!(kept <= 2, "the six old events pruned, kept {kept}");
    assert_eq!(last(&engine), 8);
    assert!(matches!(
        engine.changes_after(5, 10).await.unwrap(),
        ChangesAfter::Gone { .. }
    ));
}

#[tokio::test]
async fn a_commit_wakes_subscribers() {
    let (_dir, engine) = setup().await;
    let mut watch = engine.watch_changes();
    let seen = *watch.borrow_and_update();
    assert_eq!(engine.change_log_state().0, 1);
    let writer = {
        let engine = engine.clone();
        tokio::spawn(async move { put(&engine, "k", b"v").await.unwrap() })
    };
    tokio::time::timeout(Duration::from_secs(30), watch.changed())
        .await
        .expect("woken by the commit")
        .unwrap();
    assert_eq!(*watch.borrow(), seen + 1);
    writer.await.unwrap();
}
