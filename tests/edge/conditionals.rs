//! Conditional reads through the edge answer exactly what the store answers (issue 10, bug 1):
//! the same status, and the same header names, on a cold cache and on a warm one. Names that
//! differ per request (`x-amz-request-id`, `date`, `server`) and the edge's own (`x-cache`,
//! `age`) are left out of the comparison. boto3 with its current defaults raised a TypeError
//! on the edge's 304, which carried the object's `x-amz-checksum-*` headers; this is the same
//! check without Python (tests/compat/boto3_conditionals.py is the one with boto3).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::*;

/// Fields that name a request, or the edge's cache, rather than the answer.
const PER_REQUEST: [&str; 5] = ["x-amz-request-id", "date", "server", "x-cache", "age"];

fn names(r: &raw::RawResponse) -> BTreeSet<String> {
    r.headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .filter(|k| !PER_REQUEST.contains(&k.as_str()))
        .collect()
}

async fn conditional(
    server: &TestStore,
    method: &str,
    path: &str,
    condition: (&str, &str),
) -> raw::RawResponse {
    RawRequest::new(method, path)
        .header(condition.0, condition.1)
        // boto3 and the AWS SDKs ask for response checksums by default.
        .header("x-amz-checksum-mode", "ENABLED")
        .sign(server)
        .send(server)
        .await
}

#[tokio::test]
async fn edge_304_and_412_carry_exactly_the_stores_headers() {
    let p = EdgePair::start();
    let s3 = p.store.client();
    let b = p.store.bucket(&s3, "conditionals").await;
    let future = httpdate(now() + Duration::from_secs(86_400));
    let past = httpdate(now() - Duration::from_secs(86_400 * 365));
    let mut case = 0;
    for cache_control in ["max-age=600", "no-store"] {
        for method in ["GET", "HEAD"] {
            for (name, value, status) in [
                ("if-none-match", "", 304),
                ("if-modified-since", future.as_str(), 304),
                ("if-match", "\"other\"", 412),
                ("if-unmodified-since", past.as_str(), 412),
            ] {
                // A key of its own per case: the first request through the edge is the cold one.
                case += 1;
                let key = format!("k{case}");
                let put = s3
                    .put_object()
                    .bucket(&b)
                    .key(&key)
                    .cache_control(cache_control)
                    .body(body(b"conditional hello".to_vec()))
                    .send()
                    .await
                    .unwrap();
                let etag = put.e_tag().unwrap().to_string();
                let value = if value.is_empty() {
                    etag.as_str()
                } else {
                    value
                };
                let path = format!("/{b}/{key}");
                let what = format!("{method} {name}: {value} ({cache_control})");
                let direct = conditional(&p.store, method, &path, (name, value)).await;
                assert_eq!(direct.status, status, "store, {what}");
                for round in ["cold", "warm"] {
                    let edge = conditional(&p.edge, method, &path, (name, value)).await;
                    assert_eq!(edge.status, status, "edge ({round}), {what}");
                    assert_eq!(names(&edge), names(&direct), "edge ({round}), {what}");
                    for field in ["etag", "last-modified", "cache-control", "content-type"] {
                        assert_eq!(edge.header(field), direct.header(field), "{field}: {what}");
                    }
                }
            }
        }
    }
}
