//! HTTPS for the end-to-end tests: a local CA and certificate made by the store crate itself
//! (`outpost_store::tls::LocalCa`, what `outpost up --tls` uses), servers started with them, and
//! clients that trust that CA: aws-sdk-s3 (rustls), reqwest (HTTP/2 by ALPN) and curl.

use std::path::Path;

use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use outpost_store::tls::LocalCa;

use super::{ACCESS_KEY, SECRET_KEY, StoreOptions, TestStore};

/// A CA and a certificate for the loopback names, in `dir`.
pub fn local_ca(dir: &Path) -> LocalCa {
    LocalCa::in_dir(dir).expect("make a local CA")
}

/// Options that make a store serve `ca`'s certificate on its listener.
pub fn store_options(ca: &LocalCa) -> StoreOptions {
    StoreOptions::default()
        .env("OUTPOST_TLS_CERT", &ca.files.cert.display().to_string())
        .env("OUTPOST_TLS_KEY", &ca.files.key.display().to_string())
}

/// The CA certificate, PEM.
pub fn ca_pem(ca: &LocalCa) -> Vec<u8> {
    std::fs::read(&ca.ca).expect("read the CA")
}

/// aws-sdk-s3 over HTTPS, trusting `ca` only.
pub fn sdk_client(server: &TestStore, ca: &LocalCa) -> Client {
    sdk_client_trusting(server, &ca_pem(ca))
}

/// aws-sdk-s3 over HTTPS, trusting the CA certificate `ca_pem` only.
pub fn sdk_client_trusting(server: &TestStore, ca_pem: &[u8]) -> Client {
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(ca_pem))
        .build()
        .expect("a TLS context");
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(context)
        .build_https();
    let conf = super::base_config(&server.url, ACCESS_KEY, SECRET_KEY)
        .http_client(http)
        .build();
    Client::from_conf(conf)
}

/// reqwest over HTTPS trusting `ca` only (HTTP/2 when the server offers it by ALPN).
pub fn reqwest_client(ca: &LocalCa) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(&ca_pem(ca)).expect("the CA as a root");
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .build()
        .expect("a reqwest client")
}

/// The leaf certificate (DER) of a PEM chain file.
pub fn leaf_der(chain: &Path) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut certs = CertificateDer::pem_file_iter(chain).expect("read a PEM chain");
    certs.next().expect("a certificate").expect("PEM").to_vec()
}

/// The leaf certificate (DER) a TLS server on 127.0.0.1:`port` serves to a client asking for
/// `name` by SNI (not verified: the test compares it).
pub async fn served_leaf(port: u16, name: &str) -> Vec<u8> {
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .resolve(name, ([127, 0, 0, 1], port).into())
        .build()
        .expect("a reqwest client");
    let answer = client
        .get(format!("https://{name}:{port}/_outpost/health"))
        .send()
        .await
        .expect("a TLS answer");
    let info = answer
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info");
    info.peer_certificate().expect("a certificate").to_vec()
}

/// What `outpost edge` says on stderr when it refuses to start with the config file `toml`
/// (panics if it starts).
pub fn edge_refusal(toml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("edge.toml");
    std::fs::write(&config, toml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["edge", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .env("OUTPOST_ACCESS_KEY_ID", super::ACCESS_KEY)
        .env("OUTPOST_SECRET_ACCESS_KEY", super::SECRET_KEY)
        .env_remove("OUTPOST_EDGE_TLS_CERT")
        .env_remove("OUTPOST_EDGE_TLS_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the edge started with:\n{toml}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
