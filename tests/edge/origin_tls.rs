//! The edge toward `https://` origins (issue 12): a primary whose certificate is expired, or
//! names another host, fails (reads go to the failover) with a log line that names the origin
//! and the reason.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

use crate::common::*;

/// A CA the edge trusts (`origin_ca_file`), and leaf certificates it signs, in `dir`.
struct Ca {
    dir: PathBuf,
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(dir: &Path) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, "origin test CA");
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("ca.pem"), cert.pem()).unwrap();
        Ca {
            dir: dir.to_owned(),
            cert,
            key,
        }
    }

    fn file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A certificate for `names`, changed by `adjust` (validity), signed by this CA: the
    /// options that make a store serve it.
    fn leaf(
        &self,
        name: &str,
        names: &[&str],
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> StoreOptions {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        adjust(&mut params);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let (cert_path, key_path) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        StoreOptions::default()
            .env("OUTPOST_TLS_CERT", &cert_path.display().to_string())
            .env("OUTPOST_TLS_KEY", &key_path.display().to_string())
    }

    /// A store serving a good certificate for the loopback names.
    fn good_store(&self) -> TestStore {
        TestStore::start_with(self.leaf("good", &["localhost", "127.0.0.1"], |_| {}))
    }
}

/// A read through an edge whose primary serves `bad` goes to the failover, and the edge's log
/// names the primary and `reason`.
async fn fails_over(bad: impl FnOnce(&Ca) -> StoreOptions, reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let primary = TestStore::start_with(bad(&ca));
    let failover = ca.good_store();
    let s3 = crate::common::tls::sdk_client_trusting(&failover, &std::fs::read(ca.file()).unwrap());
    let b = failover.bucket(&s3, "origin-cert").await;
    put_bytes(&s3, &b, "k", "from the failover").await;

    let edge = TestStore::start_edge(
        &[&primary, &failover],
        StoreOptions::default().config(&format!(
            "[edge]\norigin_ca_file = \"{}\"\nfeed = false\n",
            ca.file().display()
        )),
    );
    for _ in 0..3 {
        let (body, _, _) = signed_get(&edge, &b, "k").await;
        assert_eq!(body, b"from the failover");
    }
    let log = edge.stderr();
    let line = log
        .lines()
        .find(|l| l.contains(&primary.url) && l.contains("fail over"))
        .unwrap_or_else(|| panic!("no line says the primary fails over:\n{log}"));
    assert!(
        line.contains(reason),
        "the line does not say why ({reason}): {line}"
    );
}

#[tokio::test]
async fn an_expired_origin_certificate_fails_that_origin() {
    let expired = |ca: &Ca| {
        ca.leaf("expired", &["localhost", "127.0.0.1"], |p| {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        })
    };
    fails_over(expired, "expired").await;
}

#[tokio::test]
async fn an_origin_certificate_for_another_host_fails_that_origin() {
    let elsewhere = |ca: &Ca| ca.leaf("elsewhere", &["elsewhere.example"], |_| {});
    fails_over(elsewhere, "not valid for name").await;
}

/// Handshakes the store completed: (full, resumed), read on its plain listener at `plain`
/// (a TLS client asking would add its own).
async fn handshakes(plain: &str) -> (f64, f64) {
    let r = RawRequest::new("GET", "/_outpost/metrics")
        .send_to(plain, plain)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let count = |resumed| {
        metric_sum(
            &text,
            "outpost_s3_tls_handshakes_total",
            &[("resumed", resumed)],
        )
    };
    (count("false"), count("true"))
}

/// Reads through `edge` that the store answers (a missing key each time: a miss at the edge).
async fn origin_reads(edge: &TestStore, from: usize, count: usize) {
    for i in from..from + count {
        let r = RawRequest::new("GET", &format!("/no-such-bucket/k{i}"))
            .sign(edge)
            .send(edge)
            .await;
        r.assert_error(404, "NoSuchBucket");
    }
}

#[tokio::test]
async fn the_long_haul_handshake_is_paid_once_then_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::common::tls::local_ca(dir.path());
    // The store closes a keep-alive connection idle for a second: the edge's pooled ones go.
    let store = TestStore::start_with(
        crate::common::tls::store_options(&ca)
            .env("OUTPOST_HTTP_LISTEN", "127.0.0.1:0")
            .config("[store]\nheader_read_timeout_secs = 1\n"),
    );
    let plain = store
        .printed("outpost store also listening on ")
        .expect("the plain listener's line");
    let plain = plain.trim_start_matches("http://").trim_end_matches('/');
    let edge = TestStore::start_edge(
        &[&store],
        StoreOptions::default().config(&format!(
            "[edge]\norigin_ca_file = \"{}\"\nfeed = false\n",
            ca.ca.display()
        )),
    );

    // Many requests, few connections: each request does not pay a handshake.
    origin_reads(&edge, 0, 40).await;
    let (full, resumed) = handshakes(plain).await;
    assert!(
        full + resumed <= 5.0,
        "40 requests through the edge took {full} full and {resumed} resumed handshakes"
    );

    // Once the store has closed them (idle past its second), the edge's next connection
    // resumes its session.
    let started = std::time::Instant::now();
    let mut n = 40;
    while handshakes(plain).await.1 <= resumed {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "no resumed handshake at the store: {:?}",
            handshakes(plain).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        origin_reads(&edge, n, 1).await;
        n += 1;
    }
    assert_eq!(
        handshakes(plain).await.0,
        full,
        "a new connection from the edge paid a full handshake"
    );
}
