//! The metrics pages of the edge and the store (issue 10, bug 3): one format, served under its
//! own content type, each family described once (OpenMetrics parsers reject repeats).

use std::collections::HashSet;

use crate::common::*;

async fn page(server: &TestStore) -> (String, String) {
    let r = RawRequest::new("GET", "/_outpost/metrics")
        .send(server)
        .await;
    assert_eq!(r.status, 200);
    let content_type = r.header("content-type").unwrap_or("").to_owned();
    (content_type, r.text())
}

fn assert_openmetrics(what: &str, content_type: &str, text: &str) {
    assert!(
        content_type.starts_with("application/openmetrics-text; version=1.0.0"),
        "{what} serves {content_type:?}"
    );
    assert!(
        text.ends_with("# EOF\n"),
        "{what}: an OpenMetrics page ends in # EOF"
    );
    let mut seen = HashSet::new();
    for line in text.lines() {
        let mut words = line.split(' ');
        if let (Some("#"), Some(kind @ ("HELP" | "TYPE" | "UNIT")), Some(family)) =
            (words.next(), words.next(), words.next())
        {
            assert!(
                seen.insert((kind, family)),
                "{what}: `# {kind} {family}` is repeated:\n{text}"
            );
        }
    }
}

#[tokio::test]
async fn both_metrics_pages_are_openmetrics_with_each_family_once() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "metrics").await;
    put_bytes(&s3, &b, "k", b"data").await;
    let _ = signed_get(&p.edge, &b, "k").await;
    for (what, server) in [("edge", &p.edge), ("store", &p.store)] {
        let (content_type, text) = page(server).await;
        assert_openmetrics(what, &content_type, &text);
    }
    let (_, edge) = page(&p.edge).await;
    for tier in ["memory", "disk"] {
        assert!(
            edge.contains(&format!(
                "outpost_edge_cache_evictions_total{{tier=\"{tier}\"}} 0"
            )),
            "evictions of the {tier} tier stay one series of the family:\n{edge}"
        );
    }
}
