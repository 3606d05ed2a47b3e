//! Errors never reveal internal addresses (issue 10, bug 7): with its origin down, the edge's
//! answers to anonymous and signed clients name neither the store's address nor any URL.

use crate::common::*;

/// Nothing in an error answer (status line aside) may name the origin or any URL.
fn assert_no_address(r: &raw::RawResponse, origin: &TestStore, what: &str) {
    let mut seen = r.text();
    for (name, value) in r.headers.iter() {
        seen.push_str(&format!("\n{name}: {}", value));
    }
    for secret in [
        origin.addr.as_str(),
        &format!(":{}", origin.port),
        "http://",
        "127.0.0.1",
    ] {
        assert!(
            !seen.contains(secret),
            "{what}: the answer names {secret:?}:\n{seen}"
        );
    }
}

#[tokio::test]
async fn errors_with_the_origin_down_name_no_internal_address() {
    let mut p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "leak").await;
    p.store.kill();

    let anonymous = RawRequest::new("GET", &format!("/{b}/page.html"))
        .send(&p.edge)
        .await;
    assert_eq!(anonymous.status, 503, "{}", anonymous.text());
    assert_no_address(&anonymous, &p.store, "anonymous GET");

    let head = RawRequest::new("HEAD", &format!("/{b}/page.html"))
        .sign(&p.edge)
        .send(&p.edge)
        .await;
    assert_eq!(head.status, 503);
    assert_no_address(&head, &p.store, "signed HEAD");

    for (method, target) in [
        ("PUT", format!("/{b}/new.txt")),
        ("GET", format!("/{b}?list-type=2")),
        ("DELETE", format!("/{b}/new.txt")),
        ("POST", format!("/{b}/up.bin?uploads")),
    ] {
        let r = RawRequest::new(method, &target)
            .body("hello")
            .sign(&p.edge)
            .send(&p.edge)
            .await;
        assert!(
            r.status >= 500,
            "{method} {target}: {} {}",
            r.status,
            r.text()
        );
        assert_no_address(&r, &p.store, &format!("signed {method} {target}"));
    }
    let stderr = p.edge.stderr();
    assert!(
        stderr.contains(&p.store.addr),
        "the operator's log keeps the origin's address"
    );
}
