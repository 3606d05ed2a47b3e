//! Hole 3: the edge let the store commit single PUTs that failed the edge's end-of-body checks.
//! A wrong signed `x-amz-content-sha256`, a bad signature on the final aws-chunked chunk, chunk
//! data longer than its chunk header said, and too many trailers were each answered 200 through
//! the edge and the object replaced, while the store alone refuses them. Now the edge holds the
//! body's last bytes back until its checks pass (small bodies are checked whole before they
//! leave), so the store never sees a complete body the edge has not verified.

use crate::common::raw::{Body, Chunked, Payload, signed_chunked};
use crate::common::*;

const OLD: &[u8] = b"the object before the attack";

/// An edge pair and a bucket holding `victim` = OLD.
async fn setup() -> (EdgePair, aws_sdk_s3::Client, String) {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "edgeput").await;
    put_bytes(&s3, &b, "victim", OLD).await;
    (pair, s3, b)
}

/// The attack was refused with `status`/`code`, and `victim` is still OLD at the store and
/// through the edge.
async fn assert_refused(
    pair: &EdgePair,
    s3: &aws_sdk_s3::Client,
    b: &str,
    r: raw::RawResponse,
    status: u16,
    code: &str,
) {
    r.assert_error(status, code);
    assert_eq!(
        object_bytes(s3, b, "victim").await,
        OLD,
        "the store kept the old object"
    );
    let (through_edge, _, _) = signed_get(&pair.edge, b, "victim").await;
    assert_eq!(through_edge, OLD, "the edge serves the old object");
}

/// `STREAMING-UNSIGNED-PAYLOAD-TRAILER` with hand-made framing (signed head, unsigned body).
fn unsigned_framed(
    server: &TestStore,
    path: &str,
    framed: &[u8],
    decoded: usize,
    trailer: Option<&str>,
) -> RawRequest {
    let mut req = RawRequest::new("PUT", path)
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", &decoded.to_string())
        .body(framed.to_vec());
    if let Some(name) = trailer {
        req = req.header("x-amz-trailer", name);
    }
    let opts = SignOpts::default().payload(Payload::Literal(
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER".into(),
    ));
    req.sign_with(server, &opts).0
}

#[tokio::test]
async fn a_wrong_signed_content_sha256_is_refused_through_the_edge() {
    let (pair, s3, b) = setup().await;
    for data in [
        b"forged body".to_vec(),
        random_bytes(3 * MIB, 7),
        Vec::new(),
    ] {
        let wrong = raw::Payload::Literal(hash::sha256_hex(b"something else"));
        let (req, _) = RawRequest::new("PUT", &format!("/{b}/victim"))
            .body(data)
            .sign_with(&pair.edge, &SignOpts::default().payload(wrong));
        let r = req.send(&pair.edge).await;
        assert_refused(&pair, &s3, &b, r, 400, "XAmzContentSHA256Mismatch").await;
    }
}

#[tokio::test]
async fn a_bad_final_chunk_signature_is_refused_through_the_edge() {
    let (pair, s3, b) = setup().await;
    for len in [0, 100, 2 * MIB + 3] {
        let data = random_bytes(len, 3);
        let c = Chunked {
            chunk_size: 64 * 1024,
            ..Default::default()
        };
        let mut req = signed_chunked(
            &pair.edge,
            RawRequest::new("PUT", &format!("/{b}/victim")),
            &data,
            &c,
            &SignOpts::default(),
        );
        let Body::Bytes(body) = &mut req.body else {
            panic!("framed body")
        };
        let at = body
            .windows(18)
            .rposition(|w| w == b"0;chunk-signature=")
            .expect("final chunk")
            + 18;
        body[at] = if body[at] == b'0' { b'1' } else { b'0' };
        let r = req.send(&pair.edge).await;
        assert_refused(&pair, &s3, &b, r, 403, "SignatureDoesNotMatch").await;
    }
}

#[tokio::test]
async fn chunk_data_longer_than_its_header_is_refused_through_the_edge() {
    let (pair, s3, b) = setup().await;
    let path = format!("/{b}/victim");
    // The chunk header says 5 bytes, 7 follow; the declared decoded length is the 5.
    let framed = b"5\r\nhello!!\r\n0\r\n\r\n";
    let r = unsigned_framed(&pair.edge, &path, framed, 5, None)
        .send(&pair.edge)
        .await;
    assert_refused(&pair, &s3, &b, r, 400, "InvalidRequest").await;
    // The same with a large first chunk, so most of the body has left before the bad one.
    let big = random_bytes(3 * MIB, 5);
    let mut framed = format!("{:x}\r\n", big.len()).into_bytes();
    framed.extend_from_slice(&big);
    framed.extend_from_slice(b"\r\n5\r\nhello!!\r\n0\r\n\r\n");
    let r = unsigned_framed(&pair.edge, &path, &framed, big.len() + 5, None)
        .send(&pair.edge)
        .await;
    assert_refused(&pair, &s3, &b, r, 400, "InvalidRequest").await;
}

#[tokio::test]
async fn too_many_trailers_are_refused_through_the_edge() {
    let (pair, s3, b) = setup().await;
    let path = format!("/{b}/victim");
    let mut framed = b"5\r\nhello\r\n0\r\n".to_vec();
    for i in 0..40 {
        framed.extend_from_slice(format!("x-amz-meta-t{i}:v\r\n").as_bytes());
    }
    framed.extend_from_slice(b"\r\n");
    for trailer in [None, Some("x-amz-checksum-crc32")] {
        let r = unsigned_framed(&pair.edge, &path, &framed, 5, trailer)
            .send(&pair.edge)
            .await;
        assert_refused(&pair, &s3, &b, r, 400, "InvalidRequest").await;
    }
}

#[tokio::test]
async fn good_bodies_still_stream_through_the_edge() {
    let (pair, s3, b) = setup().await;
    let received = pair
        .edge
        .metric("outpost_edge_bytes_received_total", &[])
        .await;
    for len in [0, 10, 3 * MIB + 1] {
        let data = random_bytes(len, 9);
        let c = Chunked {
            chunk_size: 64 * 1024,
            ..Default::default()
        };
        let r = signed_chunked(
            &pair.edge,
            RawRequest::new("PUT", &format!("/{b}/k{len}")),
            &data,
            &c,
            &SignOpts::default(),
        )
        .send(&pair.edge)
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(object_bytes(&s3, &b, &format!("k{len}")).await, data);
        let r = RawRequest::new("PUT", &format!("/{b}/h{len}"))
            .body(data.clone())
            .sign(&pair.edge)
            .send(&pair.edge)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(object_bytes(&s3, &b, &format!("h{len}")).await, data);
    }
    // The edge counts what its clients sent (it used to report 0 for uploads).
    let grown = pair
        .edge
        .metric("outpost_edge_bytes_received_total", &[])
        .await
        - received;
    assert!(
        grown >= 2.0 * (3 * MIB + 11) as f64,
        "bytes received grew by {grown}"
    );
}
