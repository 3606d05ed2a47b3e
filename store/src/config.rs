//! The store's configuration: one serde struct, defaults that work, unknown fields rejected.
//! Read from the `[store]` table of the TOML file; `src/main.rs` applies environment and flag
//! overrides on top and calls [`StoreConfig::validate`] once at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::s3::client_ip::IpNet;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Address to listen on. Default `127.0.0.1:9000`.
    pub listen: SocketAddr,
    /// PEM certificate chain (leaf first) for `listen`: with `tls_key`, `listen` serves HTTPS
    /// (TLS 1.3 and 1.2; HTTP/2 and HTTP/1.1). Reloaded on SIGHUP and when the file changes.
    /// Default none: plain HTTP.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// A plain-HTTP listener beside the TLS one (e.g. for clients inside the host). Default
    /// none.
    pub http_listen: Option<SocketAddr>,
    /// Data directory (index and blobs). Default `./outpost-data`.
    pub data_dir: PathBuf,
    /// Region reported by GetBucketLocation and expected in signatures. Default `us-east-1`.
    pub region: String,
    /// Base domain for virtual-hosted-style requests (`bucket.<base_domain>`). Default: none,
    /// path-style only.
    pub base_domain: Option<String>,
    /// Root access key id. Default: generated on first start and saved in the data dir.
    pub access_key_id: Option<String>,
    /// Root secret access key (goes with `access_key_id`).
    pub secret_access_key: Option<String>,
    /// Largest single PutObject or part, in bytes. Default 5 GiB (S3's limit).
    pub max_object_size: u64,
    /// Multipart uploads idle longer than this are aborted, in seconds. Default 7 days.
    pub stale_upload_age_secs: u64,
    /// Largest request header section (request line excluded), in bytes. Default 16 KiB.
    pub max_header_bytes: usize,
    /// Time a client may take to send its request headers, in seconds. Default 30.
    pub header_read_timeout_secs: u64,
    /// Time a request body may stall between two reads, in seconds. Default 60.
    pub body_idle_timeout_secs: u64,
    /// Fewest bytes per second a client must send a body at, measured over each
    /// `body_min_rate_window_secs` of waiting for it (a trickle holds a connection as surely as
    /// a stall); 0 disables. Default 1024.
    pub body_min_rate_bytes_per_sec: u64,
    /// The window of the minimum-rate check (also its grace period), in seconds. Default 10.
    pub body_min_rate_window_secs: u64,
    /// Most connections open at once; past it new ones get `503 SlowDown`. Default: three
    /// quarters of the process's open-file limit.
    pub max_connections: Option<usize>,
    /// Most connections open at once from one client address. Default 1024.
    pub max_connections_per_ip: usize,
    /// Proxies (addresses or CIDR blocks, e.g. `["10.0.0.0/8"]`) whose `X-Forwarded-For`
    /// names the client in the access log. Default none: the log shows the TCP peer.
    pub trusted_proxies: Vec<IpNet>,
    /// How long the change feed (`/_outpost/changes`) keeps events, in seconds; an edge away
    /// longer revalidates what it holds. Default 86400 (a day).
    pub change_retention_secs: u64,
    /// Most events the change feed keeps, the oldest dropped first. Default 1000000.
    pub change_max_events: u64,
    /// An idle feed sends a keep-alive line this often, in seconds. Default 10.
    pub change_keepalive_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9000)),
            tls_cert: None,
            tls_key: None,
            http_listen: None,
            data_dir: PathBuf::from("outpost-data"),
            region: "us-east-1".into(),
            base_domain: None,
            access_key_id: None,
            secret_access_key: None,
            max_object_size: 5 << 30,
            stale_upload_age_secs: 7 * 24 * 3600,
            max_header_bytes: 16 << 10,
            header_read_timeout_secs: 30,
            body_idle_timeout_secs: 60,
            body_min_rate_bytes_per_sec: 1024,
            body_min_rate_window_secs: 10,
            max_connections: None,
            max_connections_per_ip: 1024,
            trusted_proxies: Vec::new(),
            change_retention_secs: 86_400,
            change_max_events: 1_000_000,
            change_keepalive_secs: 10,
        }
    }
}

impl StoreConfig {
    /// Checks the values once at start-up, with messages an operator can act on.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.region.is_empty(), "region must not be empty");
        anyhow::ensure!(self.max_object_size > 0, "max_object_size must be positive");
        anyhow::ensure!(
            self.max_header_bytes >= 1024,
            "max_header_bytes must be at least 1024"
        );
        anyhow::ensure!(
            self.access_key_id.is_some() == self.secret_access_key.is_some(),
            "access_key_id and secret_access_key go together"
        );
        crate::tls::TlsFiles::check_config(&self.tls_cert, &self.tls_key, self.http_listen)?;
        anyhow::ensure!(
            self.change_max_events > 0,
            "change_max_events must be positive"
        );
        anyhow::ensure!(
            self.change_keepalive_secs > 0,
            "change_keepalive_secs must be positive"
        );
        Ok(())
    }

    pub fn change_retention(&self) -> crate::engine::changes::Retention {
        crate::engine::changes::Retention {
            max_age: Duration::from_secs(self.change_retention_secs),
            max_events: self.change_max_events,
        }
    }

    pub fn stale_upload_age(&self) -> Duration {
        Duration::from_secs(self.stale_upload_age_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_toml_gives_defaults_and_unknown_fields_fail() {
        let cfg: StoreConfig = toml::from_str("").unwrap();
        assert_eq!(cfg.region, "us-east-1");
        cfg.validate().unwrap();
        assert!(toml::from_str::<StoreConfig>("bogus = 1").is_err());
        let cfg: StoreConfig =
            toml::from_str(r#"trusted_proxies = ["10.0.0.0/8", "::1"]"#).unwrap();
        assert_eq!(cfg.trusted_proxies.len(), 2);
        let bad = toml::from_str::<StoreConfig>(r#"trusted_proxies = ["10.0.0.0/40"]"#);
        assert!(bad.unwrap_err().to_string().contains("CIDR"));
    }
}
