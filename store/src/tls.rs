//! TLS for the listeners of the store and the edge: rustls (TLS 1.2 and 1.3 only, no
//! OpenSSL), ALPN `h2` and `http/1.1` on the same port, and certificates that are replaced
//! without a restart.
//!
//! ```text
//!  PEM files ─► Certificates (one default + one per server name, chosen by SNI)
//!                  ▲ reload(): on SIGHUP, and when a file's size or mtime changes
//!                  │ a bad new pair keeps the old one, and the log says why
//!  ServerConfig ─► server::serve (handshake bounded in time and in count)
//! ```
//!
//! A reload swaps what new handshakes get; open connections keep the certificate they were
//! opened with and finish normally.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How often the certificate files are looked at for changes.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// A certificate chain and its private key, as PEM files (the chain: leaf first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// The pair named by a configuration's `tls_cert` / `tls_key`, if any.
    pub fn from_config(cert: &Option<PathBuf>, key: &Option<PathBuf>) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: cert.clone()?,
            key: key.clone()?,
        })
    }

    /// `tls_cert` and `tls_key` go together; `http_listen` is a listener beside a TLS one.
    pub fn check_config(
        cert: &Option<PathBuf>,
        key: &Option<PathBuf>,
        http_listen: Option<std::net::SocketAddr>,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            cert.is_some() == key.is_some(),
            "tls_cert and tls_key go together"
        );
        anyhow::ensure!(
            http_listen.is_none() || cert.is_some(),
            "http_listen adds a plain listener beside a TLS one: set tls_cert and tls_key too"
        );
        Ok(())
    }
}

/// The certificates a listener serves: a default, and others chosen by the name the client
/// asks for (SNI), each replaceable while the listener runs.
#[derive(Debug)]
pub struct Certificates {
    default: Slot,
    by_name: HashMap<String, Slot>,
}

/// One certificate pair and what was loaded from it.
#[derive(Debug)]
struct Slot {
    files: TlsFiles,
    loaded: RwLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
    /// The files' (size, mtime) when last tried, loaded or not: a change means "try again".
    stamp: Stamp,
}

type Stamp = [Option<(u64, SystemTime)>; 2];

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

impl Certificates {
    /// Loads every pair now: a listener does not start with a certificate it cannot serve.
    /// `by_name` maps a server name (as clients send it in SNI) to its pair.
    pub fn load(
        default: &TlsFiles,
        by_name: &[(String, TlsFiles)],
    ) -> anyhow::Result<Arc<Certificates>> {
        let slot = |files: &TlsFiles| -> anyhow::Result<Slot> {
            let stamp = stamp(files);
            let key = load_pair(files)?;
            Ok(Slot {
                files: files.clone(),
                loaded: RwLock::new(Loaded { key, stamp }),
            })
        };
        Ok(Arc::new(Certificates {
            default: slot(default)?,
            by_name: by_name
                .iter()
                .map(|(name, files)| Ok((name.to_ascii_lowercase(), slot(files)?)))
                .collect::<anyhow::Result<_>>()?,
        }))
    }

    /// Reloads the pairs whose files changed (all of them when `force`). A pair that does not
    /// load keeps serving the previous one; returns how many pairs were replaced.
    pub fn reload(&self, force: bool) -> usize {
        std::iter::once(&self.default)
            .chain(self.by_name.values())
            .filter(|slot| slot.reload(force))
            .count()
    }

    /// Reloads on SIGHUP and when the files change, for as long as `self` is in use.
    pub fn watch(self: &Arc<Self>) {
        let certificates: Weak<Certificates> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut hangups =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
            loop {
                let hangup = async {
                    match hangups.as_mut() {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    }
                };
                let force = tokio::select! {
                    _ = hangup => true,
                    () = tokio::time::sleep(WATCH_EVERY) => false,
                };
                let Some(certificates) = certificates.upgrade() else {
                    return;
                };
                certificates.reload(force);
            }
        });
    }

    /// The certificate chain served by default (tests compare it after a rotation).
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.default.current()
    }
}

impl Slot {
    fn current(&self) -> Arc<CertifiedKey> {
        let loaded = self.loaded.read().unwrap_or_else(|p| p.into_inner());
        Arc::clone(&loaded.key)
    }

    fn reload(&self, force: bool) -> bool {
        let stamp = stamp(&self.files);
        let mut loaded = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        if !force && stamp == loaded.stamp {
            return false;
        }
        loaded.stamp = stamp;
        match load_pair(&self.files) {
            Ok(key) => {
                loaded.key = key;
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
                true
            }
            Err(e) => {
                tracing::warn!(
                    cert = %self.files.cert.display(),
                    error = format!("{e:#}"),
                    "TLS certificate not reloaded; still serving the previous one"
                );
                false
            }
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let named = hello
            .server_name()
            .and_then(|name| self.by_name.get(&name.to_ascii_lowercase()));
        Some(named.unwrap_or(&self.default).current())
    }
}

fn stamp(files: &TlsFiles) -> Stamp {
    let one = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.len(), meta.modified().ok()?))
    };
    [one(&files.cert), one(&files.key)]
}

/// Reads a PEM chain and key and checks that they belong together.
fn load_pair(files: &TlsFiles) -> anyhow::Result<Arc<CertifiedKey>> {
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", files.cert.display()))?;
    anyhow::ensure!(
        !chain.is_empty(),
        "{} holds no certificate",
        files.cert.display()
    );
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading a private key from {}", files.key.display()))?;
    let pair = CertifiedKey::from_der(chain, key, &provider()).with_context(|| {
        format!(
            "{} and {} are not a certificate and its key",
            files.cert.display(),
            files.key.display()
        )
    })?;
    Ok(Arc::new(pair))
}

/// The rustls configuration of a listener serving `certificates`: TLS 1.3 and 1.2, ALPN `h2`
/// then `http/1.1`, session resumption by tickets and by cache (a far client's second
/// connection saves a round trip).
pub fn server_config(certificates: Arc<Certificates>) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(certificates);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(Arc::new(config))
}

/// A certificate authority of this machine and a certificate it signed for `localhost`,
/// `127.0.0.1` and `::1` (`outpost up --tls`, and the tests): clients trust `ca` once
/// (`aws --ca-bundle`, `curl --cacert`), and the pair is reused at every start.
#[derive(Debug, Clone)]
pub struct LocalCa {
    /// The CA certificate clients are told to trust.
    pub ca: PathBuf,
    /// The server's certificate and key.
    pub files: TlsFiles,
}

impl LocalCa {
    /// The CA and certificate kept in `dir`, made there first if they are not. The keys are
    /// written readable by their owner only.
    pub fn in_dir(dir: &Path) -> anyhow::Result<LocalCa> {
        LocalCa::in_dir_for(dir, &["localhost", "127.0.0.1", "::1"])
    }

    /// As [`LocalCa::in_dir`], with a certificate for `names` (DNS names or IP addresses) if
    /// one is made.
    pub fn in_dir_for(dir: &Path, names: &[&str]) -> anyhow::Result<LocalCa> {
        let local = LocalCa {
            ca: dir.join("ca.pem"),
            files: TlsFiles {
                cert: dir.join("cert.pem"),
                key: dir.join("key.pem"),
            },
        };
        if [&local.ca, &local.files.cert, &local.files.key]
            .iter()
            .all(|p| p.exists())
        {
            return Ok(local);
        }
        crate::engine::durable::create_dir_all(dir)?;
        let (ca_pem, cert_pem, key_pem) = make_local_certificates(names)?;
        crate::engine::durable::write_replace(&local.files.key, key_pem.as_bytes(), 0o600)?;
        crate::engine::durable::write_replace(&local.files.cert, cert_pem.as_bytes(), 0o644)?;
        crate::engine::durable::write_replace(&local.ca, ca_pem.as_bytes(), 0o644)?;
        Ok(local)
    }
}

/// (CA certificate, leaf chain, leaf key) as PEM: ECDSA P-256, the leaf for `names`. The CA's
/// key is not kept: nothing else is ever signed with it.
fn make_local_certificates(names: &[&str]) -> anyhow::Result<(String, String, String)> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.distinguished_name
        .push(DnType::CommonName, "Outpost local CA");
    let ca = ca.self_signed(&ca_key)?;
    let leaf_key = KeyPair::generate()?;
    let mut leaf = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("localhost"),
    );
    let leaf = leaf.signed_by(&leaf_key, &ca, &ca_key)?;
    Ok((ca.pem(), leaf.pem(), leaf_key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_goes_together_and_a_plain_listener_needs_a_tls_one() {
        let some = |p: &str| Some(PathBuf::from(p));
        let listen = Some("127.0.0.1:0".parse().unwrap());
        assert!(TlsFiles::check_config(&some("c"), &some("k"), listen).is_ok());
        assert!(TlsFiles::check_config(&None, &None, None).is_ok());
        let half = TlsFiles::check_config(&some("c"), &None, None).unwrap_err();
        assert!(half.to_string().contains("go together"), "{half}");
        let plain = TlsFiles::check_config(&None, &None, listen).unwrap_err();
        assert!(plain.to_string().contains("beside a TLS one"), "{plain}");
    }

    #[test]
    fn a_pair_that_does_not_belong_together_is_refused_at_load() {
        let (one, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (
            LocalCa::in_dir(one.path()).unwrap(),
            LocalCa::in_dir(other.path()).unwrap(),
        );
        assert!(Certificates::load(&a.files, &[]).is_ok());
        let mixed = TlsFiles {
            cert: a.files.cert.clone(),
            key: b.files.key.clone(),
        };
        let e = Certificates::load(&mixed, &[]).unwrap_err();
        assert!(
            format!("{e:#}").contains("not a certificate and its key"),
            "{e:#}"
        );
    }
}
