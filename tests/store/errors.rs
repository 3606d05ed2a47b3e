//! Errors and operational surface: unknown operations → NotImplemented (never a hang), health
//! and metrics endpoints, malformed requests, header-size limits, stalled clients.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

#[tokio::test]
async fn unknown_operations_are_not_implemented() {
    let (store, s3, b) = TestStore::with_bucket("notimpl").await;
    put_bytes(&s3, &b, "k", "x").await;
    let cases = [
        ("GET", format!("/{b}?replication")),
        ("PUT", format!("/{b}?replication")),
        ("GET", format!("/{b}?analytics")),
        ("GET", format!("/{b}?inventory")),
        ("PUT", format!("/{b}?object-lock")),
        ("GET", format!("/{b}?intelligent-tiering")),
        ("PUT", format!("/{b}/k?legal-hold")),
        ("GET", format!("/{b}/k?torrent")),
        ("POST", format!("/{b}/k?select&select-type=2")),
    ];
    for (method, target) in cases {
        let started = Instant::now();
        let mut req = RawRequest::new(method, &target).timeout(Duration::from_secs(10));
        if method != "GET" {
            req = req.body("<Whatever/>");
        }
        let r = req.sign(&store).send(&store).await;
        assert_eq!(
            r.status,
            501,
            "{method} {target}: expected 501 NotImplemented, got {} {}",
            r.status,
            r.text()
        );
        r.assert_error(501, "NotImplemented");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{method} {target} took {:?}",
            started.elapsed()
        );
    }
    // The SDK sees NotImplemented too.
    assert_sdk_err(
        s3.get_bucket_replication().bucket(&b).send().await,
        501,
        "NotImplemented",
    );
    // And the store is still fine afterwards.
    s3.head_object()
        .bucket(&b)
        .key("k")
        .send()
        .await
        .expect("still serving");
}

#[tokio::test]
async fn health_and_metrics_endpoints() {
    let store = TestStore::start();
    let r = RawRequest::new("GET", "/_outpost/health")
        .send(&store)
        .await;
    assert_eq!(r.status, 200, "health");

    let s3 = store.client();
    let b = store.bucket(&s3, "metrics").await;
    put_bytes(&s3, &b, "k", "metric me").await;
    let name = "outpost_s3_requests_total";
    let before_ok = store
        .metric(name, &[("operation", "GetObject"), ("status", "200")])
        .await;
    let before_404 = store
        .metric(name, &[("operation", "GetObject"), ("status", "404")])
        .await;
    for _ in 0..3 {
        s3.get_object().bucket(&b).key("k").send().await.unwrap();
    }
    let _ = s3.get_object().bucket(&b).key("missing").send().await;
    let after_ok = store
        .metric(name, &[("operation", "GetObject"), ("status", "200")])
        .await;
    let after_404 = store
        .metric(name, &[("operation", "GetObject"), ("status", "404")])
        .await;
    let text = store.metrics_text().await;
    assert_eq!(
        after_ok - before_ok,
        3.0,
        "3 successful GetObject counted in {name}:\n{text}"
    );
    assert_eq!(
        after_404 - before_404,
        1.0,
        "the 404 GetObject counted with status=\"404\""
    );
    assert!(
        store.metric(name, &[("operation", "PutObject")]).await >= 1.0,
        "PutObject counted"
    );
    assert!(
        store.metric(name, &[("operation", "CreateBucket")]).await >= 1.0,
        "CreateBucket counted"
    );
    assert!(text.contains("# TYPE"), "Prometheus text exposition format");
}

#[tokio::test]
async fn malformed_requests_get_errors_and_the_server_survives() {
    let store = TestStore::start();
    // Not HTTP at all.
    let mut s = TcpStream::connect(&store.addr).await.unwrap();
    s.write_all(b"\x16\x03\x01garbage that is not http\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("server closes a garbage connection");
    if !buf.is_empty() {
        assert!(
            buf.starts_with(b"HTTP/1.1 4"),
            "garbage request answered with a 4xx: {:?}",
            String::from_utf8_lossy(&buf)
        );
    }
    // Invalid query values.
    let s3 = store.client();
    let b = store.bucket(&s3, "malformed").await;
    let r = RawRequest::new("GET", &format!("/{b}?list-type=2&max-keys=-1"))
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(400, "InvalidArgument");
    let r = RawRequest::new("GET", &format!("/{b}?list-type=2&max-keys=abc"))
        .sign(&store)
        .send(&store)
        .await;
    r.assert_error(400, "InvalidArgument");
    let r = RawRequest::new(
        "GET",
        &format!("/{b}?list-type=2&continuation-token=%00%01garbage"),
    )
    .sign(&store)
    .send(&store)
    .await;
    r.assert_error(400, "InvalidArgument");
    // Still healthy.
    assert_eq!(
        RawRequest::new("GET", "/_outpost/health")
            .send(&store)
            .await
            .status,
        200
    );
    s3.list_objects_v2()
        .bucket(&b)
        .send()
        .await
        .expect("still serving");
}

#[tokio::test]
async fn oversized_headers_are_refused() {
    let (store, _s3, b) = TestStore::with_bucket("bighdr").await;
    let r = RawRequest::new("GET", &format!("/{b}/k"))
        .header("x-amz-meta-huge", &"h".repeat(64 * 1024))
        .timeout(Duration::from_secs(10))
        .send(&store)
        .await;
    assert!(
        r.status == 400 || r.status == 431,
        "64 KiB of headers: {} {}",
        r.status,
        r.text()
    );
    assert_eq!(
        RawRequest::new("GET", "/_outpost/health")
            .send(&store)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn stalled_request_body_times_out() {
    let store = TestStore::start_with(
        StoreOptions::default()
            .config("[store]\nbody_idle_timeout_secs = 1\nheader_read_timeout_secs = 2\n"),
    );
    let s3 = store.client();
    let b = store.bucket(&s3, "stall").await;
    let started = Instant::now();
    let req = RawRequest::new("PUT", &format!("/{b}/stalled"))
        .stall_body(1000, vec![b'x'; 10])
        .timeout(Duration::from_secs(20));
    let (req, _) = req.sign_with(
        &store,
        &SignOpts::default().payload(crate::common::raw::Payload::Unsigned),
    );
    let r = req.send(&store).await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stalled body answered after {:?}",
        started.elapsed()
    );
    r.assert_error(400, "RequestTimeout");
    assert_sdk_err(
        s3.head_object().bucket(&b).key("stalled").send().await,
        404,
        "NotFound",
    );

    // A client that never finishes its headers is disconnected.
    let mut s = TcpStream::connect(&store.addr).await.unwrap();
    s.write_all(b"GET /_outpost/health HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "a connection with unfinished headers is closed by the server"
    );
}
