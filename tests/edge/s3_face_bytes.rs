//! The S3 face answers GetObject with the stored bytes, whatever the client accepts: S3 never
//! compresses, and a client that sees `Content-Encoding: gzip` takes the object as stored
//! gzipped (rclone, which sends `Accept-Encoding: gzip`, then refused to `cat` a text file
//! through the edge). Sites still compress (tests/edge/sites.rs).

use crate::common::*;

#[tokio::test]
async fn getobject_through_the_edge_is_never_compressed() {
    let pair = EdgePair::start();
    let s3 = pair.store.client();
    let b = pair.store.bucket(&s3, "identity").await;
    let text = "a line of text that compresses well\n".repeat(200);
    s3.put_object()
        .bucket(&b)
        .key("notes.txt")
        .content_type("text/plain")
        .body(body(text.clone()))
        .send()
        .await
        .unwrap();
    for _ in 0..2 {
        let r = RawRequest::new("GET", &format!("/{b}/notes.txt"))
            .header("accept-encoding", "gzip, br")
            .sign(&pair.edge)
            .send(&pair.edge)
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-encoding"),
            None,
            "{:?}",
            r.header("x-cache")
        );
        assert_eq!(r.body, text.as_bytes());
    }
}
