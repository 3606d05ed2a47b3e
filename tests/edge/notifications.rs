//! S3 event notifications (`POST /_outpost/notifications`), end to end: an edge in front of a
//! store whose change feed it does not follow (`feed = false`, as for a MinIO origin) and long
//! TTLs, so whatever the edge stops serving it stops serving because a notification told it.

use serde_json::{Value, json};

use crate::common::*;

const TOKEN: &str = "notify-0123456789abcdef";

/// An edge with the token before a store, a bucket there, and `objects` (key, bytes) cached.
async fn cached_objects(
    prefix: &str,
    objects: &[(&str, &str)],
) -> (EdgePair, aws_sdk_s3::Client, String) {
    let p = EdgePair::start_with(&format!("notification_token = \"{TOKEN}\""));
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, prefix).await;
    for (k, v) in objects {
        put_bytes(&s3, &b, k, *v).await;
        let (body, _, _) = signed_get(&p.edge, &b, k).await;
        assert_eq!(body, v.as_bytes());
        hit(&p.edge, &b, k, v).await;
    }
    (p, s3, b)
}

/// `key` is answered from the edge's cache with `data`.
async fn hit(edge: &TestStore, bucket: &str, key: &str, data: &str) {
    let (body, x_cache, _) = signed_get(edge, bucket, key).await;
    assert_eq!(
        (body.as_slice(), x_cache.as_str()),
        (data.as_bytes(), "Hit from outpost"),
        "{key}"
    );
}

/// One record as AWS documents it (event message structure, version 2.1), `key` URL-encoded.
fn aws_record(event: &str, bucket: &str, key: &str) -> Value {
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-12-01T18:00:00.000Z",
        "eventName": event,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "edge",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {"key": key, "size": 3, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"}
        }
    })
}

/// A notification as MinIO's webhook target posts it: the top-level `EventName` and `Key`
/// (bucket/key, not encoded) beside one record, whose event names carry `s3:`.
fn minio_notification(event: &str, bucket: &str, key: &str, encoded: &str) -> Value {
    json!({
        "EventName": event,
        "Key": format!("{bucket}/{key}"),
        "Records": [{
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": "2026-12-01T18:00:00.000Z",
            "eventName": event,
            "userIdentity": {"principalId": "minioadmin"},
            "requestParameters": {"principalId": "minioadmin", "region": "", "sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-id-2": "dd9025bab4ad464b", "x-amz-request-id": "1800D8A5F0B6C4B1", "x-minio-deployment-id": "5b8c…", "x-minio-origin-endpoint": "http://127.0.0.1:9000"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": "minioadmin"}, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": encoded, "size": 3, "eTag": "900150983cd24fb0d6963f7d28e17f72", "contentType": "application/octet-stream", "userMetadata": {"content-type": "application/octet-stream"}, "sequencer": "1800D8A5F0C5E2A4"}
            },
            "source": {"host": "127.0.0.1", "port": "", "userAgent": "MinIO (linux; amd64) minio-go/v7"}
        }]
    })
}

/// Posts `body` to the edge's notification endpoint with `Authorization: authorization`.
async fn notify(
    edge: &TestStore,
    authorization: Option<&str>,
    body: impl Into<Vec<u8>>,
) -> raw::RawResponse {
    let mut r = RawRequest::new("POST", "/_outpost/notifications")
        .header("content-type", "application/json")
        .body(body);
    if let Some(a) = authorization {
        r = r.header("authorization", a);
    }
    r.send(edge).await
}

/// `(applied, ignored)` of a 200 answer.
fn summary(r: &raw::RawResponse) -> (u64, u64) {
    assert_eq!(r.status, 200, "notification: {}", r.text());
    let v: Value = serde_json::from_slice(&r.body).expect("a JSON answer");
    (
        v["applied"].as_u64().unwrap(),
        v["ignored"].as_u64().unwrap(),
    )
}

/// A GET through the edge: (status, body, X-Cache).
async fn get(edge: &TestStore, bucket: &str, key: &str) -> (u16, Vec<u8>, String) {
    let r = RawRequest::new("GET", &format!("/{bucket}/{}", enc_path(key)))
        .sign(edge)
        .send(edge)
        .await;
    let x_cache = r.header("x-cache").unwrap_or("").to_owned();
    (r.status, r.body, x_cache)
}

#[tokio::test]
async fn an_aws_notification_purges_only_its_key() {
    let key = "docs/red flower ä €.txt";
    let objects = [(key, "old"), ("other", "keep"), ("*", "star")];
    let (p, s3, b) = cached_objects("notify-aws", &objects).await;
    put_bytes(&s3, &b, key, "new").await;
    put_bytes(&s3, &b, "other", "changed but not notified").await;
    // Without the feed, the edge holds the old bytes.
    hit(&p.edge, &b, key, "old").await;

    // AWS's encoding: `+` a space, the rest percent-encoded.
    let encoded = "docs/red+flower+%C3%A4+%E2%82%AC.txt";
    let body = json!({"Records": [aws_record("ObjectCreated:Put", &b, encoded)]});
    let r = notify(&p.edge, Some(&format!("Bearer {TOKEN}")), body.to_string()).await;
    assert_eq!(summary(&r), (1, 0));
    assert_eq!(
        get(&p.edge, &b, key).await,
        (200, b"new".to_vec(), "Miss from outpost".into())
    );
    hit(&p.edge, &b, key, "new").await;
    hit(&p.edge, &b, "other", "keep").await;

    // A key `*` is that key, not a wildcard; a read event and a record naming no object drop
    // nothing: nothing else goes.
    let body = json!({"Records": [
        aws_record("ObjectCreated:Copy", &b, "%2A"),
        aws_record("ObjectAccessed:Get", &b, "other"),
        {"eventName": "Replication:OperationFailedReplication", "s3": {"bucket": {"name": b}}},
    ]});
    let r = notify(&p.edge, Some(TOKEN), body.to_string()).await;
    assert_eq!(summary(&r), (1, 2));
    let (_, _, x_cache) = get(&p.edge, &b, "*").await;
    assert_eq!(x_cache, "Miss from outpost");
    hit(&p.edge, &b, "other", "keep").await;

    // AWS's test event has no records.
    let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2026-12-01T18:00:00.000Z", "Bucket": b});
    let r = notify(&p.edge, Some(TOKEN), test_event.to_string()).await;
    assert_eq!(summary(&r), (0, 0));
    let name = "outpost_edge_notification_records_total";
    let applied = p.edge.metric(name, &[("outcome", "applied")]).await;
    let ignored = p.edge.metric(name, &[("outcome", "ignored")]).await;
    assert_eq!((applied, ignored), (2.0, 2.0));
}

#[tokio::test]
async fn minio_notifications_purge_overwrites_deletes_and_buckets() {
    let key = "a b/ü+ñ.bin";
    let objects = [(key, "old"), ("gone", "here"), ("other", "keep")];
    let (p, s3, b) = cached_objects("notify-minio", &objects).await;
    put_bytes(&s3, &b, key, "new").await;
    s3.delete_object()
        .bucket(&b)
        .key("gone")
        .send()
        .await
        .unwrap();

    // MinIO sends its auth_token as configured, here the bare token; its keys are encoded as
    // Go's url.QueryEscape does (`/` as %2F too).
    let created = minio_notification("s3:ObjectCreated:Put", &b, key, "a+b%2F%C3%BC%2B%C3%B1.bin");
    let r = notify(&p.edge, Some(TOKEN), created.to_string()).await;
    assert_eq!(summary(&r), (1, 0));
    assert_eq!(
        get(&p.edge, &b, key).await,
        (200, b"new".to_vec(), "Miss from outpost".into())
    );
    let removed = minio_notification("s3:ObjectRemoved:Delete", &b, "gone", "gone");
    let r = notify(&p.edge, Some(TOKEN), removed.to_string()).await;
    assert_eq!(summary(&r), (1, 0));
    assert_eq!(get(&p.edge, &b, "gone").await.0, 404);
    hit(&p.edge, &b, "other", "keep").await;

    // A bucket event (MinIO's own kind, from its ListenNotification API through a relay)
    // drops the whole bucket, as the feed's do.
    let recreated = minio_notification("s3:BucketCreated", &b, "", "");
    assert_eq!(
        summary(&notify(&p.edge, Some(TOKEN), recreated.to_string()).await),
        (1, 0)
    );
    assert_eq!(
        get(&p.edge, &b, "other").await,
        (200, b"keep".to_vec(), "Miss from outpost".into())
    );
}

#[tokio::test]
async fn bad_notifications_are_refused_and_purge_nothing() {
    let (p, s3, b) = cached_objects("notify-bad", &[("k", "old")]).await;
    put_bytes(&s3, &b, "k", "new").await;
    let good = json!({"Records": [aws_record("ObjectCreated:Put", &b, "k")]}).to_string();

    for authorization in [
        None,
        Some("wrong"),
        Some("Bearer wrong"),
        Some(&TOKEN[1..]),
        Some("Basic bm90aWZ5"),
    ] {
        let r = notify(&p.edge, authorization, good.clone()).await;
        r.assert_error(403, "AccessDenied");
        assert!(
            !r.text().contains(TOKEN),
            "the answer never carries the token"
        );
    }
    // A signature with the edge's own key is not the token either.
    let r = RawRequest::new("POST", "/_outpost/notifications")
        .body(good.clone())
        .sign(&p.edge)
        .send(&p.edge)
        .await;
    r.assert_error(403, "AccessDenied");
    for malformed in [
        "not json".to_owned(),
        good[..good.len() / 2].to_owned(),
        json!({"Records": {"eventName": "ObjectCreated:Put"}}).to_string(),
        json!({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": b}, "object": {"key": 7}}}]}).to_string(),
        "[]".to_owned(),
    ] {
        notify(&p.edge, Some(TOKEN), malformed.clone())
            .await
            .assert_error(400, "MalformedJSON");
    }
    let huge = format!("{{\"Records\": [], \"pad\": \"{}\"}}", "x".repeat(2 << 20));
    notify(&p.edge, Some(TOKEN), huge)
        .await
        .assert_error(400, "EntityTooLarge");

    hit(&p.edge, &b, "k", "old").await;
    assert_eq!(
        p.edge
            .metric("outpost_edge_notification_records_total", &[])
            .await,
        0.0
    );
    // The good one, after all that, still works.
    assert_eq!(summary(&notify(&p.edge, Some(TOKEN), good).await), (1, 0));
    assert_eq!(get(&p.edge, &b, "k").await.1, b"new");
}

#[tokio::test]
async fn without_a_token_the_endpoint_is_off() {
    let p = EdgePair::start();
    let body = json!({"Records": [aws_record("ObjectCreated:Put", "b", "k")]}).to_string();
    for authorization in [None, Some(""), Some("Bearer ")] {
        let r = notify(&p.edge, authorization, body.clone()).await;
        r.assert_error(403, "AccessDenied");
        assert!(r.text().contains("off"), "{}", r.text());
    }
}
