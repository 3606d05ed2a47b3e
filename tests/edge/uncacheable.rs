//! Answers the edge may not store (`Cache-Control: no-store`) are the store's answers to the
//! client's own request: a ranged GET gets its range, a HEAD its 200. The fill asks the origin
//! for whole slices; that 206 was handed to readers as it came (the whole body for
//! `Range: bytes=10-19`, a 206 for a HEAD).

use crate::common::*;

#[tokio::test]
async fn uncacheable_ranged_gets_and_heads_answer_as_the_store() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "uncacheable").await;
    let data = random_bytes(1000, 7);
    s3.put_object()
        .bucket(&b)
        .key("k")
        .cache_control("no-store")
        .body(body(data.clone()))
        .send()
        .await
        .unwrap();
    let request = |method: &str, range: Option<&str>| {
        let mut r = RawRequest::new(method, &format!("/{b}/k"));
        if let Some(range) = range {
            r = r.header("range", range);
        }
        r
    };
    for (method, range, status) in [
        ("GET", Some("bytes=10-19"), 206),
        ("GET", Some("bytes=-5"), 206),
        ("HEAD", None, 200),
        ("HEAD", Some("bytes=10-19"), 206),
        ("GET", None, 200),
    ] {
        let what = format!("{method} {range:?}");
        let direct = request(method, range).sign(&p.store).send(&p.store).await;
        assert_eq!(direct.status, status, "store, {what}");
        for round in ["first", "second"] {
            let edge = request(method, range).sign(&p.edge).send(&p.edge).await;
            assert_eq!(edge.status, status, "edge ({round}), {what}");
            let sizes = (edge.body.len(), direct.body.len());
            assert_eq!(sizes.0, sizes.1, "body length, edge ({round}), {what}");
            assert!(edge.body == direct.body, "body, edge ({round}), {what}");
            for field in ["content-length", "content-range", "etag"] {
                assert_eq!(edge.header(field), direct.header(field), "{field}: {what}");
            }
        }
    }
    let ranged = request("GET", Some("bytes=10-19"))
        .sign(&p.edge)
        .send(&p.edge)
        .await;
    assert!(ranged.body == data[10..20]);
}
