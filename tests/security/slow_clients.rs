//! Hole 11: no minimum data rate. 200 bodies trickling at 1 byte/s were held indefinitely, and
//! nothing capped connections per client, so ~670 new connections per second would use up
//! 20,000 descriptors within the header timeout. Now a body must arrive at a minimum rate
//! (measured over windows of waiting for the client), answered `RequestTimeout` in S3 XML, and
//! connections are capped per client address and in all (`503 SlowDown` XML, then close).

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Sends a signed PUT head for `len` bytes, then one byte every 100 ms; the whole answer.
async fn trickle(server: &TestStore, path: &str, len: usize) -> String {
    let req = RawRequest::new("PUT", path)
        .body(vec![b'x'; len])
        .sign(server);
    let mut head = format!("PUT {} HTTP/1.1\r\nhost: {}\r\n", req.target, server.addr);
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    let mut stream = TcpStream::connect(&server.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        for _ in 0..len {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(b"x").await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), read.read_to_end(&mut answer)).await;
    writer.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_trickling_body_is_cut_off_with_request_timeout() {
    let limits = "body_min_rate_bytes_per_sec = 1024\nbody_min_rate_window_secs = 2\n";
    let store =
        TestStore::start_with(StoreOptions::default().config(&format!("[store]\n{limits}")));
    let edge = TestStore::start_edge(
        &[&store],
        StoreOptions::default().config(&format!("[edge]\n{limits}")),
    );
    let s3 = store.client();
    let b = store.bucket(&s3, "trickle").await;
    for server in [&store, &edge] {
        let started = Instant::now();
        let answer = trickle(server, &format!("/{b}/slow"), 1000).await;
        let took = started.elapsed();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("<Code>RequestTimeout</Code>"), "{answer}");
        assert!(took < Duration::from_secs(15), "cut off after {took:?}");
        let missing = s3.head_object().bucket(&b).key("slow").send().await;
        assert_sdk_err(missing, 404, "NotFound");
    }
    // A client at a fair rate is unaffected.
    put_bytes(&s3, &b, "fast", random_bytes(MIB, 1)).await;
}

#[tokio::test]
async fn connections_are_capped_per_client_address() {
    let cap = "max_connections_per_ip = 8\n";
    let store = TestStore::start_with(StoreOptions::default().config(&format!("[store]\n{cap}")));
    let edge = TestStore::start_edge(
        &[&store],
        StoreOptions::default().config(&format!("[edge]\n{cap}")),
    );
    for server in [&store, &edge] {
        let mut idle = Vec::new();
        for _ in 0..8 {
            idle.push(TcpStream::connect(&server.addr).await.unwrap());
        }
        let mut refused = TcpStream::connect(&server.addr).await.unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), refused.read_to_end(&mut answer))
            .await
            .expect("the refused connection is answered and closed")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.contains("<Code>SlowDown</Code>"), "{answer}");
        drop(idle);
        // Places free up as connections close.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut probe = TcpStream::connect(&server.addr).await.unwrap();
            probe
                .write_all(b"GET /_outpost/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut got = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), probe.read_to_end(&mut got)).await;
            if got.starts_with(b"HTTP/1.1 200") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "connections never freed: {}",
                String::from_utf8_lossy(&got)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
