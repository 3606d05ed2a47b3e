//! Hole 4: a body sent in 1-byte TCP segments cost ~3.6 KiB of store memory per segment until a
//! write chunk filled (10 PUTs × 20,000 bytes: +715 MiB). Each tiny read kept a whole network
//! buffer alive. Memory per connection is now bounded by a constant whatever the segmentation:
//! small pieces are copied together before they are kept.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::*;

/// A signed PUT whose body leaves one byte per TCP segment.
fn trickle_put(addr: &str, head: Vec<u8>, body: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    stream.write_all(&head).unwrap();
    for byte in body {
        stream.write_all(std::slice::from_ref(byte)).unwrap();
        // Slower than the server reads, so every byte is a read of its own.
        std::thread::sleep(Duration::from_micros(40));
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn one_byte_segments_keep_memory_flat() {
    let (store, s3, b) = TestStore::with_bucket("frag").await;
    trickle_puts_keep_memory_flat(&store, &s3, &b, "direct").await;
}

/// The same through an edge: its memory stays flat too, and the store gets every byte.
#[tokio::test(flavor = "multi_thread")]
async fn one_byte_segments_through_the_edge_keep_memory_flat() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "fragedge").await;
    trickle_puts_keep_memory_flat(&pair.edge, &s3, &b, "edge").await;
}

/// Four concurrent PUTs to `server`, one byte per segment; its peak RSS may not grow past a
/// constant, and `s3` (the store's client) reads every object whole.
async fn trickle_puts_keep_memory_flat(
    server: &TestStore,
    s3: &aws_sdk_s3::Client,
    b: &str,
    prefix: &str,
) {
    const PUTS: usize = 4;
    const LEN: usize = 20_000;
    let before = server.rss_kib();
    let mut threads = Vec::new();
    for i in 0..PUTS {
        let data = random_bytes(LEN, i as u64);
        let req = RawRequest::new("PUT", &format!("/{b}/{prefix}{i}"))
            .body(data.clone())
            .sign(server);
        let mut head = format!("PUT {} HTTP/1.1\r\nhost: {}\r\n", req.target, server.addr);
        for (k, v) in &req.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("connection: close\r\n\r\n");
        let addr = server.addr.clone();
        threads.push(std::thread::spawn(move || {
            trickle_put(&addr, head.into_bytes(), &data)
        }));
    }
    for t in threads {
        let answer = t.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let grown_mib = server.peak_rss_kib().saturating_sub(before) / 1024;
    println!("peak RSS grew {grown_mib} MiB for {PUTS} PUTs of {LEN} one-byte segments");
    // Before the fix: ~70 MiB per PUT.
    assert!(grown_mib < 24, "{prefix}: memory grew {grown_mib} MiB");
    for i in 0..PUTS {
        let got = object_bytes(s3, b, &format!("{prefix}{i}")).await;
        assert_eq!(got, random_bytes(LEN, i as u64));
    }
}
