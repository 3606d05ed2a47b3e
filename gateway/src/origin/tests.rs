//! The origin group against tiny local origins on 127.0.0.1:0: failover order, circuits,
//! requests with bodies, and signatures checked by the store's own verifier on what arrived on the wire.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::BodyExt;
use outpost_store::s3::auth::{self, AuthParams, Credentials, Identity, Keyring, SecretKey};
use tokio::net::TcpListener;

use super::*;

const AKID: &str = "AKIDEDGE";
const SECRET: &str = "edge/secret+key";
const LONG: Duration = Duration::from_secs(600);

/// A local origin: its URL and how many requests it has answered.
struct TestOrigin {
    url: String,
    hits: Arc<AtomicUsize>,
}

impl TestOrigin {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn serve(router: axum::Router<Arc<AtomicUsize>>) -> TestOrigin {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let app = router.with_state(Arc::clone(&hits));
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestOrigin { url, hits }
}

/// Answers `status` to everything, saying who it is in `x-origin`.
async fn failing(status: StatusCode, name: &'static str) -> TestOrigin {
    serve(
        axum::Router::new().fallback(move |State(hits): State<Arc<AtomicUsize>>| async move {
            hits.fetch_add(1, Ordering::SeqCst);
            (status, [("x-origin", name)], "failing")
        }),
    )
    .await
}

/// 503 to the first `failures` requests, 200 after.
async fn flaky(failures: usize) -> TestOrigin {
    serve(
        axum::Router::new().fallback(move |State(hits): State<Arc<AtomicUsize>>| async move {
            if hits.fetch_add(1, Ordering::SeqCst) < failures {
                (StatusCode::SERVICE_UNAVAILABLE, "not yet")
            } else {
                (StatusCode::OK, "recovered")
            }
        }),
    )
    .await
}

/// 200 with what arrived: the store's verdict on the signature, the headers that matter and
/// the body's length, one `name=value` per line.
async fn echo() -> TestOrigin {
    serve(axum::Router::new().fallback(
        |State(hits): State<Arc<AtomicUsize>>, req: Request| async move {
            hits.fetch_add(1, Ordering::SeqCst);
            let (parts, body) = req.into_parts();
            let keyring = Keyring::new([Credentials {
                access_key_id: AKID.into(),
                secret: SecretKey::new(SECRET),
            }]);
            let verdict = match auth::authenticate(
                &parts,
                &AuthParams {
                    keyring: &keyring,
                    region: "us-east-1",
                    bucket: "b",
                    now: SystemTime::now(),
                    max_skew: Duration::from_secs(900),
                },
            ) {
                Ok(a) if a.identity == Identity::Anonymous => "anonymous".to_owned(),
                Ok(a) => format!("{:?}", a.identity),
                Err(e) => format!("rejected {e:?}"),
            };
            let header = |name: &str| {
                parts
                    .headers
                    .get(name)
                    .map_or("-".to_owned(), |v| v.to_str().unwrap().to_owned())
            };
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let mut out = format!("verdict={verdict}\nbody={}\n", body.len());
            for name in [
                "host",
                "authorization",
                "x-amz-content-sha256",
                "range",
                "x-amz-meta-a",
                "x-private-hop",
                "content-length",
                "transfer-encoding",
            ] {
                out.push_str(&format!("{name}={}\n", header(name)));
            }
            out
        },
    ))
    .await
}

/// A port nothing listens on: connections are refused.
async fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// Accepts connections and never answers.
async fn silent() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

fn settings(timeout: Duration, retry_after: Duration) -> OriginSettings {
    OriginSettings {
        tls: super::tls::client_config(None, false).unwrap(),
        timeout,
        response_timeout: timeout,
        idle_timeout: timeout,
        retry_after,
        access_key_id: AKID.into(),
        secret_access_key: SECRET.into(),
        region: "us-east-1".into(),
    }
}

fn group(urls: &[&str], retry_after: Duration) -> OriginGroup {
    let urls: Vec<String> = urls.iter().map(|u| (*u).to_owned()).collect();
    OriginGroup::new(&urls, settings(Duration::from_secs(5), retry_after)).unwrap()
}

/// A GET as a signed client sends it: its own credentials and per-hop headers included.
fn get(path_and_query: &str) -> OriginRequest {
    let mut headers = HeaderMap::new();
    for (k, v) in [
        (
            "authorization",
            "AWS4-HMAC-SHA256 Credential=CLIENT/20250101/us-east-1/s3/aws4_request",
        ),
        ("x-amz-date", "20250101T000000Z"),
        (
            "x-amz-content-sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
        ("host", "edge.example"),
        ("connection", "x-private-hop"),
        ("x-private-hop", "1"),
        ("range", "bytes=0-9"),
    ] {
        headers.insert(k, v.parse().unwrap());
    }
    OriginRequest {
        method: Method::GET,
        path_and_query: path_and_query.into(),
        headers,
        anonymous: false,
        aws_chunked: false,
    }
}

async fn text(response: OriginResponse) -> String {
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

fn field<'a>(echoed: &'a str, name: &str) -> &'a str {
    echoed
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {name} in {echoed}"))
}

fn open(group: &OriginGroup) -> Vec<bool> {
    group.health().into_iter().map(|(_, open)| open).collect()
}

#[tokio::test]
async fn fetch_fails_over_in_order_and_the_store_accepts_the_edge_signature() {
    let primary = failing(StatusCode::SERVICE_UNAVAILABLE, "primary").await;
    let secondary = echo().await;
    let g = group(&[&primary.url, &secondary.url], LONG);
    // Space, '+', unicode and an encoded dot segment the signer must neither decode nor drop.
    let path = "/b/a%20b/c+d/%C3%A4%E6%97%A5/%2E%2E/k?x-id=GetObject&prefix=a+b";
    let response = g.fetch(&get(path)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let echoed = text(response).await;
    assert_eq!(
        field(&echoed, "verdict"),
        format!("Key({AKID:?})"),
        "{echoed}"
    );
    assert_eq!(field(&echoed, "host"), &secondary.url["http://".len()..]);
    assert!(field(&echoed, "authorization").contains(&format!("Credential={AKID}/")));
    assert_eq!(field(&echoed, "x-amz-content-sha256"), "UNSIGNED-PAYLOAD");
    assert_eq!(
        field(&echoed, "range"),
        "bytes=0-9",
        "end-to-end headers travel"
    );
    assert_eq!(
        field(&echoed, "x-private-hop"),
        "-",
        "per-hop headers stay behind"
    );
    assert_eq!((primary.hits(), secondary.hits()), (1, 1));
    assert_eq!(open(&g), [false, false], "one 503 does not open a circuit");
}

#[tokio::test]
async fn consecutive_5xx_open_the_circuit_and_open_origins_are_skipped() {
    let primary = failing(StatusCode::INTERNAL_SERVER_ERROR, "primary").await;
    let secondary = echo().await;
    let g = group(&[&primary.url, &secondary.url], LONG);
    for _ in 0..failover::SERVER_ERRORS_TO_OPEN {
        assert_eq!(
            g.fetch(&get("/b/k")).await.unwrap().status(),
            StatusCode::OK
        );
    }
    assert_eq!(open(&g), [true, false]);
    assert_eq!(
        g.fetch(&get("/b/k")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        primary.hits(),
        failover::SERVER_ERRORS_TO_OPEN as usize,
        "skipped once open"
    );
    assert_eq!(secondary.hits(), 4);
}

#[tokio::test]
async fn an_unreachable_origin_opens_at_once() {
    let primary = closed_port().await;
    let secondary = echo().await;
    let attempts = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&attempts);
    let g = group(&[&primary, &secondary.url], LONG).with_observer(Arc::new(
        move |status, _elapsed| seen.lock().unwrap().push(status),
    ));
    assert_eq!(
        g.fetch(&get("/b/k")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(open(&g), [true, false]);
    assert_eq!(
        g.fetch(&get("/b/k")).await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        *attempts.lock().unwrap(),
        [None, Some(200), Some(200)],
        "the refused primary was tried once"
    );
    assert_eq!(g.health()[0].0, primary);
}

#[tokio::test]
async fn all_failing_gives_the_last_5xx_and_all_open_still_tries_the_primary() {
    let primary = failing(StatusCode::SERVICE_UNAVAILABLE, "primary").await;
    let secondary = failing(StatusCode::BAD_GATEWAY, "secondary").await;
    let g = group(&[&primary.url, &secondary.url], LONG);
    for _ in 0..failover::SERVER_ERRORS_TO_OPEN {
        let r = g.fetch(&get("/b/k")).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(r.headers()["x-origin"], "secondary", "the last answer");
    }
    assert_eq!(open(&g), [true, true]);
    let r = g.fetch(&get("/b/k")).await.unwrap();
    assert_eq!(r.headers()["x-origin"], "primary", "never refused outright");
    assert_eq!((primary.hits(), secondary.hits()), (4, 3));
}

#[tokio::test]
async fn no_answer_anywhere_names_the_last_cause() {
    let (a, b) = (closed_port().await, closed_port().await);
    let g = group(&[&a, &b], LONG);
    match g.fetch(&get("/b/k")).await {
        Err(OriginError::Unreachable {
            origin,
            cause: NoAnswer::Connect(why),
        }) => {
            assert_eq!(origin, b);
            assert!(why.to_lowercase().contains("refused"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    match g.fetch(&get("/b/k")).await {
        Err(OriginError::Unreachable { origin, .. }) => assert_eq!(origin, a, "primary"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_silent_origin_times_out_and_the_next_one_answers() {
    let primary = silent().await;
    let secondary = echo().await;
    let urls = [primary.clone(), secondary.url.clone()];
    let g = OriginGroup::new(&urls, settings(Duration::from_millis(300), LONG)).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        g.fetch(&get("/b/k")).await.unwrap().status(),
        StatusCode::OK
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(open(&g), [true, false], "a timeout opens at once");

    let alone = OriginGroup::new(&[primary], settings(Duration::from_millis(300), LONG)).unwrap();
    match alone.fetch(&get("/b/k")).await {
        Err(OriginError::Unreachable {
            cause: NoAnswer::Timeout(t),
            ..
        }) => assert_eq!(t, Duration::from_millis(300)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_recovered_origin_is_probed_and_its_circuit_closes() {
    let primary = flaky(failover::SERVER_ERRORS_TO_OPEN as usize).await;
    let secondary = echo().await;
    // No pause before probing, so the test does not sleep.
    let g = group(&[&primary.url, &secondary.url], Duration::ZERO);
    for _ in 0..failover::SERVER_ERRORS_TO_OPEN {
        g.fetch(&get("/b/k")).await.unwrap();
    }
    assert_eq!(open(&g), [true, false]);
    let r = g.fetch(&get("/b/k")).await.unwrap();
    assert_eq!(text(r).await, "recovered", "the probe went to the primary");
    assert_eq!(open(&g), [false, false]);
}

#[tokio::test]
async fn fetch_is_for_get_and_head() {
    let origin = echo().await;
    let g = group(&[&origin.url], LONG);
    let mut head = get("/b/k");
    head.method = Method::HEAD;
    assert_eq!(g.fetch(&head).await.unwrap().status(), StatusCode::OK);
    let mut put = get("/b/k");
    put.method = Method::PUT;
    assert!(matches!(g.fetch(&put).await, Err(OriginError::Invalid(_))));
    assert_eq!(origin.hits(), 1);
}

fn put(path_and_query: &str) -> OriginRequest {
    let mut req = get(path_and_query);
    req.method = Method::PUT;
    req.headers.remove("range");
    req.headers.insert("x-amz-meta-a", "meta".parse().unwrap());
    req.headers.insert("content-length", "999".parse().unwrap());
    req
}

fn streamed(chunks: &[&'static str]) -> Body {
    let chunks: Vec<Result<Bytes, std::io::Error>> = chunks
        .iter()
        .map(|c| Ok(Bytes::from_static(c.as_bytes())))
        .collect();
    Body::from_stream(futures::stream::iter(chunks))
}

#[tokio::test]
async fn send_streams_a_signed_body_and_takes_it_to_the_next_origin_when_refused() {
    let primary = closed_port().await;
    let secondary = echo().await;
    let g = group(&[&primary, &secondary.url], LONG);
    let r = g
        .send(
            put("/b/up%20load+1"),
            streamed(&["hello ", "world"]),
            Some(11),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let echoed = text(r).await;
    assert_eq!(
        field(&echoed, "verdict"),
        format!("Key({AKID:?})"),
        "{echoed}"
    );
    assert_eq!(field(&echoed, "body"), "11");
    assert_eq!(
        field(&echoed, "content-length"),
        "11",
        "the caller's length, not the client's"
    );
    assert_eq!(field(&echoed, "x-amz-meta-a"), "meta");
    assert_eq!(open(&g), [true, false]);

    // Unknown length: sent chunked.
    let r = g
        .send(put("/b/chunked"), streamed(&["a", "bc"]), None)
        .await
        .unwrap();
    let echoed = text(r).await;
    assert_eq!(field(&echoed, "body"), "3");
    assert_eq!(field(&echoed, "transfer-encoding"), "chunked");
    assert_eq!(
        field(&echoed, "verdict"),
        format!("Key({AKID:?})"),
        "{echoed}"
    );
}

#[tokio::test]
async fn send_returns_any_answer_without_failing_over() {
    let primary = failing(StatusCode::SERVICE_UNAVAILABLE, "primary").await;
    let secondary = echo().await;
    let g = group(&[&primary.url, &secondary.url], LONG);
    let r = g
        .send(put("/b/k"), streamed(&["data"]), Some(4))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(secondary.hits(), 0, "the body was sent: no replay");
}

#[tokio::test]
async fn a_failing_client_body_is_the_clients_fault_not_the_origins() {
    let origin = echo().await;
    let g = group(&[&origin.url], LONG);
    let body = Body::from_stream(futures::stream::iter([
        Ok(Bytes::from_static(b"part")),
        Err(std::io::Error::other("client went away")),
    ]));
    match g.send(put("/b/k"), body, None).await {
        Err(OriginError::Body(e)) => assert!(e.to_string().contains("client went away"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(open(&g), [false]);
}

#[tokio::test]
async fn anonymous_requests_travel_unsigned() {
    let origin = echo().await;
    let g = group(&[&origin.url], LONG);
    let mut req = get("/b/k");
    req.anonymous = true;
    let echoed = text(g.fetch(&req).await.unwrap()).await;
    assert_eq!(field(&echoed, "verdict"), "anonymous");
    assert_eq!(
        field(&echoed, "authorization"),
        "-",
        "the client's is not forwarded either"
    );
}

#[test]
fn origin_urls_are_validated() {
    let new = |urls: &[&str]| {
        let urls: Vec<String> = urls.iter().map(|u| (*u).to_owned()).collect();
        OriginGroup::new(&urls, settings(Duration::from_secs(1), LONG))
    };
    let g = new(&["http://127.0.0.1:9000/", "http://store-b:9000"]).unwrap();
    assert_eq!(
        g.health(),
        [
            ("http://127.0.0.1:9000".to_owned(), false),
            ("http://store-b:9000".to_owned(), false)
        ]
    );
    for bad in [
        &[][..],
        &["store:9000"],
        &["ftp://store:9000"],
        &["http://store:9000/bucket"],
        &["http://store:9000?x=1"],
        &["http://key:secret@store:9000"],
        &["http://a:1", "http://a:1/"],
    ] {
        assert!(new(bad).is_err(), "{bad:?}");
    }
    let zero = OriginGroup::new(&["http://a:1".into()], settings(Duration::ZERO, LONG));
    assert!(zero.is_err());
}

#[test]
fn settings_do_not_print_the_secret() {
    let printed = format!("{:?}", settings(Duration::from_secs(1), LONG));
    assert!(
        !printed.contains(SECRET) && printed.contains(AKID),
        "{printed}"
    );
}

#[tokio::test]
async fn a_request_with_a_body_waits_for_the_origin_within_its_limit_but_never_on_the_client() {
    let limit = Duration::from_millis(300);
    let patient = |url: &str| {
        let settings = OriginSettings {
            response_timeout: limit,
            ..settings(Duration::from_secs(5), LONG)
        };
        OriginGroup::new(&[url.to_owned()], settings).unwrap()
    };
    // Silent: no head within the limit.
    let g = patient(&silent().await);
    let started = std::time::Instant::now();
    let e = g
        .send(put("/b/k"), streamed(&["data"]), Some(4))
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            OriginError::Unreachable {
                cause: NoAnswer::Timeout(_),
                ..
            }
        ),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // A client pausing longer than the limit between two pieces: its own time, not the
    // origin's.
    let echo = echo().await;
    let g = patient(&echo.url);
    let pieces = futures::stream::unfold(0, move |n| async move {
        match n {
            0 => Some((Ok::<_, std::io::Error>(Bytes::from_static(b"slow ")), 1)),
            1 => {
                tokio::time::sleep(limit * 3).await;
                Some((Ok(Bytes::from_static(b"client")), 2))
            }
            _ => None,
        }
    });
    let r = g
        .send(put("/b/k"), Body::from_stream(pieces), Some(11))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(field(&text(r).await, "body"), "11");
}
