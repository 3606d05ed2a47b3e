//! A distribution's viewer protocol policy and HSTS (issue 12, CloudFront's semantics): over
//! the plain listener `redirect-to-https` answers GET/HEAD with a 301 to the same URL over
//! https and other methods (preflights too) with 403, `https-only` answers 403, `allow-all`
//! serves; `Strict-Transport-Security` goes on https answers only; the S3 face is not governed.

use crate::common::tls::edge_refusal;
use crate::common::*;

const SITES: [(&str, &str); 3] = [
    (
        "r.test",
        "viewer_protocol = \"redirect-to-https\"\nhsts_max_age_secs = 600\n",
    ),
    ("h.test", "viewer_protocol = \"https-only\"\n"),
    ("a.test", ""),
];

struct Viewers {
    _store: TestStore,
    edge: TestStore,
    plain_port: u16,
    client: reqwest::Client,
    ca_pem: Vec<u8>,
    _dir: tempfile::TempDir,
}

async fn viewers() -> (Viewers, aws_sdk_s3::Client, String) {
    let (store, s3, b) = TestStore::with_bucket("viewer").await;
    put_bytes(&s3, &b, "page.html", b"a page".to_vec()).await;
    let dir = tempfile::tempdir().unwrap();
    let names = SITES.map(|(host, _)| host);
    let ca = outpost_store::tls::LocalCa::in_dir_for(dir.path(), &names).unwrap();
    let mut toml = format!(
        "[edge]\ntls_cert = \"{}\"\ntls_key = \"{}\"\nhttp_listen = \"127.0.0.1:0\"\n",
        ca.files.cert.display(),
        ca.files.key.display()
    );
    for (host, policy) in SITES {
        toml.push_str(&format!(
            "[[edge.distribution]]\nhosts = [\"{host}\"]\nbucket = \"{b}\"\n{policy}"
        ));
    }
    let options = StoreOptions::default()
        .config(&toml)
        .env("RUST_LOG", "warn,outpost::access=info");
    let edge = TestStore::start_edge(&[&store], options);
    let plain = edge
        .printed("outpost edge also listening on ")
        .expect("a plain listener");
    let plain_port = plain.rsplit(':').next().unwrap().parse().unwrap();
    let ca_pem = std::fs::read(&ca.ca).unwrap();
    let root = reqwest::Certificate::from_pem(&ca_pem).unwrap();
    let mut client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .redirect(reqwest::redirect::Policy::none());
    for name in names {
        client = client.resolve(name, ([127, 0, 0, 1], 0).into());
    }
    let client = client.build().unwrap();
    let viewers = Viewers {
        _store: store,
        edge,
        plain_port,
        client,
        ca_pem,
        _dir: dir,
    };
    (viewers, s3, b)
}

impl Viewers {
    fn plain(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.plain_port)
    }
    fn https(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.edge.port)
    }
    async fn send(&self, method: &str, url: &str) -> reqwest::Response {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client.request(method.clone(), url);
        if method == reqwest::Method::OPTIONS {
            request = request
                .header("origin", "http://elsewhere.test")
                .header("access-control-request-method", "GET");
        }
        request.send().await.unwrap()
    }
}

#[tokio::test]
async fn plain_http_is_redirected_or_refused_as_the_distribution_says() {
    let (v, _s3, _b) = viewers().await;

    for method in ["GET", "HEAD"] {
        let moved = v.send(method, &v.plain("r.test", "/page.html?x=1")).await;
        assert_eq!(moved.status(), 301, "{method}");
        assert_eq!(
            moved.headers()["location"],
            v.https("r.test", "/page.html?x=1"),
            "{method}"
        );
        assert!(moved.headers().get("strict-transport-security").is_none());
    }
    // A client's word that it came over TLS is not TLS.
    let forged = v
        .client
        .get(v.plain("r.test", "/page.html"))
        .header("x-forwarded-proto", "https")
        .header("forwarded", "proto=https")
        .header("x-forwarded-ssl", "on")
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        301,
        "forwarded-proto headers change nothing"
    );
    for method in ["PUT", "POST", "DELETE", "PATCH", "OPTIONS"] {
        let refused = v.send(method, &v.plain("r.test", "/page.html")).await;
        assert_eq!(refused.status(), 403, "{method} to redirect-to-https");
    }
    for method in ["GET", "HEAD", "OPTIONS", "PUT"] {
        let refused = v.send(method, &v.plain("h.test", "/page.html")).await;
        assert_eq!(refused.status(), 403, "{method} to https-only");
        assert!(refused.headers().get("location").is_none());
        if method == "GET" {
            let body = refused.text().await.unwrap();
            assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
            assert!(body.contains("HTTPS only"), "{body}");
        }
    }
    // Every redirect and refusal is counted and logged like any answer.
    let metrics = v
        .send("GET", &v.plain("127.0.0.1", "/_outpost/metrics"))
        .await;
    let metrics = metrics.text().await.unwrap();
    for (status, count) in [("301", 3.0), ("403", 9.0)] {
        let labels = [("operation", "ViewerProtocol"), ("status", status)];
        let counted = metric_sum(&metrics, "outpost_edge_requests_total", &labels);
        assert_eq!(counted, count, "{status}");
    }
    let logged = |l: &&str| l.contains("outpost::access") && l.contains("ViewerProtocol");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while v.edge.stderr().lines().filter(logged).count() < 12 {
        assert!(
            std::time::Instant::now() < deadline,
            "an access line for each of the 12:\n{}",
            v.edge.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let served = v.send("GET", &v.plain("a.test", "/page.html")).await;
    assert_eq!(served.status(), 200);
    assert!(served.headers().get("strict-transport-security").is_none());
    assert_eq!(served.text().await.unwrap(), "a page");

    // The S3 face is not a distribution: plain HTTP serves it.
    let s3_plain = client_for(
        &format!("http://127.0.0.1:{}", v.plain_port),
        ACCESS_KEY,
        SECRET_KEY,
    );
    assert!(s3_plain.list_buckets().send().await.is_ok());
}

#[tokio::test]
async fn https_answers_carry_hsts_where_configured_and_the_redirect_lands_there() {
    let (v, _s3, _b) = viewers().await;
    for (host, hsts) in [
        ("r.test", Some("max-age=600")),
        ("h.test", None),
        ("a.test", None),
    ] {
        let page = v.send("GET", &v.https(host, "/page.html")).await;
        assert_eq!(page.status(), 200, "{host}");
        assert_eq!(page.version(), reqwest::Version::HTTP_2);
        let sent = page.headers().get("strict-transport-security");
        assert_eq!(sent.map(|h| h.to_str().unwrap()), hsts, "{host}");
    }
    // Error answers too: a browser pins the host whatever the page.
    let missing = v.send("GET", &v.https("r.test", "/missing.html")).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["strict-transport-security"],
        "max-age=600"
    );

    // A browser-like client follows the redirect to the page over h2.
    let following = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&v.ca_pem).unwrap())
        .resolve("r.test", ([127, 0, 0, 1], 0).into())
        .build()
        .unwrap();
    let page = following
        .get(v.plain("r.test", "/page.html"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.url().scheme(), "https");
    assert_eq!(page.version(), reqwest::Version::HTTP_2);
    assert_eq!(page.text().await.unwrap(), "a page");
}

#[test]
fn a_policy_needing_https_without_a_tls_listener_does_not_start() {
    let site = "[edge]\n[[edge.distribution]]\nhosts = [\"s.test\"]\nbucket = \"b\"\n";
    for policy in [
        "viewer_protocol = \"https-only\"",
        "viewer_protocol = \"redirect-to-https\"",
        "hsts_max_age_secs = 60",
    ] {
        let err = edge_refusal(&format!("{site}{policy}\n"));
        assert!(
            err.contains("needs the edge's TLS listener"),
            "{policy}: {err}"
        );
    }
    let err = edge_refusal(&format!("{site}viewer_protocol = \"https-please\"\n"));
    assert!(err.contains("allow-all"), "{err}");
}
