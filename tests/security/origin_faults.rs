//! Item 8 and the fault-injection suite: an edge whose origin (a [`FaultyOrigin`] proxy in front
//! of a real store) hangs, stalls mid-body, resets or answers garbage. The client gets an S3
//! error within the configured limits (504 GatewayTimeout when the origin does not answer in
//! time), a GET whose origin stalls mid-body is cut within about the idle limit, nothing partial
//! is cached, and nothing the client was told is stored is lost.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::faulty::{Fault, FaultyOrigin};
use crate::common::{RawRequest, StoreOptions, TestStore, object_bytes, put_bytes, random_bytes};

/// The edge's origin limits in these tests, seconds.
const LIMIT: u64 = 2;
/// What "promptly" allows on a loaded 2-core machine, on top of the limit.
const SLACK: Duration = Duration::from_secs(6);

struct Faulty {
    store: TestStore,
    origin: FaultyOrigin,
    edge: TestStore,
}

impl Faulty {
    fn start() -> Faulty {
        let store = TestStore::start();
        let origin = FaultyOrigin::start(&store.addr);
        let toml = format!(
            "[edge]\norigins = [\"{}\"]\norigin_timeout_secs = {LIMIT}\n\
             origin_response_timeout_secs = {LIMIT}\norigin_idle_timeout_secs = {LIMIT}\n\
             origin_retry_secs = 1\n",
            origin.url
        );
        let edge = TestStore::start_edge(
            &[],
            StoreOptions::default()
                .env("RUST_LOG", "warn,outpost::access=info")
                .config(&toml),
        );
        Faulty {
            store,
            origin,
            edge,
        }
    }

    /// `request`, signed, through the edge; the answer and how long it took.
    async fn through_edge(
        &self,
        request: RawRequest,
    ) -> (crate::common::raw::RawResponse, Duration) {
        let started = Instant::now();
        let response = request
            .timeout(Duration::from_secs(LIMIT) + SLACK * 3)
            .sign(&self.edge)
            .send(&self.edge)
            .await;
        (response, started.elapsed())
    }
}

fn prompt(elapsed: Duration, what: &str) {
    assert!(
        elapsed < Duration::from_secs(LIMIT) + SLACK,
        "{what} took {elapsed:?}, limit {LIMIT} s"
    );
}

#[tokio::test]
async fn a_hung_origin_gets_gateway_timeout_for_relayed_requests() {
    let f = Faulty::start();
    let s3 = f.store.client();
    let b = f.store.bucket(&s3, "hung").await;
    put_bytes(&s3, &b, "k", "acknowledged").await;
    // Warm: the edge's pooled connection is open when the origin starts hanging.
    let (r, _) = f
        .through_edge(RawRequest::new("HEAD", &format!("/{b}")))
        .await;
    assert_eq!(r.status, 200);

    f.origin.set(Fault::Hang);
    let requests = [
        RawRequest::new("GET", &format!("/{b}?list-type=2")),
        RawRequest::new("PUT", &format!("/{b}/k")).body("not stored"),
        RawRequest::new("DELETE", &format!("/{b}/k")),
        RawRequest::new("GET", &format!("/{b}?uploads")),
    ];
    for request in requests {
        let what = format!("{} {}", request.method, request.target);
        let (r, elapsed) = f.through_edge(request).await;
        r.assert_error(504, "GatewayTimeout");
        prompt(elapsed, &what);
    }
    let (r, elapsed) = f
        .through_edge(RawRequest::new("HEAD", &format!("/{b}")))
        .await;
    assert_eq!(r.status, 504, "HeadBucket");
    prompt(elapsed, "HeadBucket");
    // Reads through the cache (a cold GET, then a HEAD) are bounded the same way.
    let (r, elapsed) = f
        .through_edge(RawRequest::new("GET", &format!("/{b}/cold")))
        .await;
    r.assert_error(504, "GatewayTimeout");
    prompt(elapsed, "cold GET");
    let (r, elapsed) = f
        .through_edge(RawRequest::new("HEAD", &format!("/{b}/cold")))
        .await;
    assert_eq!(r.status, 504, "cold HEAD");
    prompt(elapsed, "cold HEAD");

    f.origin.set(Fault::Pass);
    assert_eq!(object_bytes(&s3, &b, "k").await, b"acknowledged");
    let (r, _) = f
        .through_edge(RawRequest::new("PUT", &format!("/{b}/k")).body("after"))
        .await;
    assert_eq!(r.status, 200, "the origin is back: {}", r.text());
    assert_eq!(object_bytes(&s3, &b, "k").await, b"after");
}

#[tokio::test]
async fn a_client_slower_than_the_response_timeout_is_not_the_origins_fault() {
    let f = Faulty::start();
    let s3 = f.store.client();
    let b = f.store.bucket(&s3, "slowc").await;
    // A PUT sent in two halves with a pause longer than the origin's response timeout between
    // them: the wait is the client's, so the edge must not answer 504.
    let data = random_bytes(64 * 1024, 7);
    let request = RawRequest::new("PUT", &format!("/{b}/slow"))
        .body(data.clone())
        .sign(&f.edge);
    let mut stream = tokio::net::TcpStream::connect(&f.edge.addr).await.unwrap();
    let mut head = format!(
        "PUT {} HTTP/1.1\r\nhost: {}\r\n",
        request.target, f.edge.addr
    );
    for (k, v) in &request.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&data[..data.len() / 2]).await.unwrap();
    // A deliberate pause (the client being slow), not a wait for something to happen.
    tokio::time::sleep(Duration::from_secs(LIMIT + 1)).await;
    stream.write_all(&data[data.len() / 2..]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(SLACK * 3, stream.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(object_bytes(&s3, &b, "slow").await, data);
}

#[tokio::test]
async fn an_origin_that_stalls_mid_body_is_cut_promptly_and_nothing_partial_is_cached() {
    let f = Faulty::start();
    let s3 = f.store.client();
    let b = f.store.bucket(&s3, "stall").await;
    let data = random_bytes(2 << 20, 3);
    put_bytes(&s3, &b, "big", data.clone()).await;
    let path = format!("/{b}/big");

    f.origin.set(Fault::StallAfter(300 * 1024));
    let (r, elapsed) = f.through_edge(RawRequest::new("GET", &path)).await;
    prompt(elapsed, "a GET whose origin stalled");
    assert_eq!(r.status, 200, "the status line went out before the stall");
    assert_eq!(r.header("content-length"), Some("2097152"));
    assert!(
        r.body.len() < data.len(),
        "the client must see the body cut off, not a whole one"
    );
    assert_eq!(
        r.body[..],
        data[..r.body.len()],
        "what was sent is the object"
    );
    let line = crate::common::logs::access_line(&f.edge, &format!("path={path} ")).await;
    let logged: usize = line["bytes_sent"]
        .parse()
        .unwrap_or_else(|_| panic!("no bytes_sent in {line:?}"));
    // What the edge handed to the connection; the client got all of it, or all but what the
    // cut connection had not flushed yet.
    assert!(
        logged >= r.body.len() && logged < data.len(),
        "the access log counts the bytes really sent ({} received): {line:?}",
        r.body.len()
    );

    f.origin.set(Fault::Pass);
    for _ in 0..2 {
        let (r, _) = f.through_edge(RawRequest::new("GET", &path)).await;
        assert_eq!(r.status, 200);
        assert!(
            r.body == data,
            "a whole, correct body ({} bytes)",
            r.body.len()
        );
    }
    let (r, _) = f
        .through_edge(RawRequest::new("GET", &path).header("range", "bytes=1000000-1000099"))
        .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, data[1_000_000..1_000_100]);
}

#[tokio::test]
async fn an_origin_that_resets_or_answers_garbage_gets_an_s3_error_at_once() {
    let f = Faulty::start();
    let s3 = f.store.client();
    let b = f.store.bucket(&s3, "reset").await;
    put_bytes(&s3, &b, "k", "kept").await;
    for fault in [Fault::Reset, Fault::Garbage] {
        f.origin.set(fault);
        for request in [
            RawRequest::new("GET", &format!("/{b}?list-type=2")),
            RawRequest::new("PUT", &format!("/{b}/k")).body("lost?"),
            RawRequest::new("GET", &format!("/{b}/uncached")),
        ] {
            let what = format!("{fault:?}: {} {}", request.method, request.target);
            let (r, elapsed) = f.through_edge(request).await;
            assert_eq!(r.status, 503, "{what}: {}", r.text());
            r.assert_error_shape();
            let origin = f.origin.addr.to_string();
            assert!(
                !r.text().contains(&origin),
                "{what} names the origin: {}",
                r.text()
            );
            prompt(elapsed, &what);
        }
    }
    f.origin.set(Fault::Pass);
    assert_eq!(object_bytes(&s3, &b, "k").await, b"kept");
    let (r, _) = f
        .through_edge(RawRequest::new("GET", &format!("/{b}/k")))
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, "kept"));
    assert!(f.origin.accepted() > 0);
}
