//! Edge configuration: the `[edge]` table of the TOML file. Every field has a default that
//! works on a laptop; unknown fields are rejected so typos fail at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use outpost_store::s3::client_ip::IpNet;
use outpost_store::secret::SecretKey;
use outpost_store::tls::TlsFiles;
use serde::Deserialize;

const MIB: u64 = 1024 * 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Address to listen on. Default `127.0.0.1:9080`.
    pub listen: SocketAddr,
    /// PEM certificate chain (leaf first) for `listen`: with `tls_key`, `listen` serves HTTPS
    /// (TLS 1.3 and 1.2; HTTP/2 and HTTP/1.1) for the S3 face and the sites. Reloaded on
    /// SIGHUP and when the file changes. Default none: plain HTTP.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// A plain-HTTP listener beside the TLS one. Default none.
    pub http_listen: Option<SocketAddr>,
    /// PEM CA certificates trusted for `https://` origins, besides the system's roots (a
    /// private CA, or `outpost up --tls`'s). Default none.
    pub origin_ca_file: Option<PathBuf>,
    /// Take any certificate from `https://` origins (the connection is encrypted but the
    /// origin unproven; logged loudly at start). For labs only. Default false.
    pub origin_tls_insecure: bool,
    /// Origin stores of the default distribution, primary first, failovers after.
    /// Default `["http://127.0.0.1:9000"]`.
    pub origins: Vec<String>,
    /// Directory for the disk cache tier and the upload spool, which share its filesystem.
    /// Default `./outpost-edge-cache`.
    pub cache_dir: PathBuf,
    /// Memory tier capacity in bytes (bodies weighed in bytes). Default 256 MiB.
    pub memory_cache_bytes: u64,
    /// Disk tier capacity in bytes, at most: the tier also takes no more than half of the
    /// filesystem's free space at start-up and leaves room for the spool (see
    /// `cache::disk`). Default 10 GiB.
    pub disk_cache_bytes: u64,
    /// Bodies are cached in slices of this many bytes; objects up to this size stay in
    /// memory, larger ones go to the disk tier slice by slice. Default 4 MiB.
    pub slice_bytes: u64,
    /// Region the edge's clients sign for (the store's region). Default `us-east-1`.
    pub region: String,
    /// Base domain for virtual-hosted-style S3 requests (`bucket.<domain>`).
    pub base_domain: Option<String>,
    /// Domain under which every bucket with a website configuration is served as a website
    /// (`bucket.<domain>`, like S3's website endpoints). Default: none.
    pub website_domain: Option<String>,
    /// Credentials the edge signs origin requests with; clients' signatures are checked
    /// against the same key. Normally from `OUTPOST_ACCESS_KEY_ID` / `OUTPOST_SECRET_ACCESS_KEY`.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Seconds to wait for an origin's connection and response head before failing over.
    /// Default 10.
    pub origin_timeout_secs: u64,
    /// Seconds a forwarded request (a write, a listing: anything the cache does not answer)
    /// waits for the origin's response head once the origin has all of the request body, or
    /// has stopped taking it while the client was sending; then 504 GatewayTimeout.
    /// Default 30.
    pub origin_response_timeout_secs: u64,
    /// Seconds an origin's answer body may go without a byte before the edge gives up on it
    /// (504 GatewayTimeout when nothing was sent to the client yet; otherwise the client's
    /// connection is cut, and nothing partial is cached). Default 30.
    pub origin_idle_timeout_secs: u64,
    /// Seconds a failed origin is skipped before it is probed again. Default 5.
    pub origin_retry_secs: u64,
    /// Request head limit in bytes. Default 16 KiB.
    pub max_header_bytes: usize,
    /// Seconds a client has to send its request head. Default 30.
    pub header_read_timeout_secs: u64,
    /// Seconds a request body may stall before the request fails. Default 60.
    pub body_idle_timeout_secs: u64,
    /// Fewest bytes per second a client must send a body at, measured over each
    /// `body_min_rate_window_secs` of waiting for it; 0 disables. Default 1024.
    pub body_min_rate_bytes_per_sec: u64,
    /// The window of the minimum-rate check (also its grace period), in seconds. Default 10.
    pub body_min_rate_window_secs: u64,
    /// Most client connections open at once; past it new ones get `503 SlowDown`. Default:
    /// three quarters of the process's open-file limit.
    pub max_connections: Option<usize>,
    /// Most connections open at once from one client address (behind a load balancer, its
    /// address). Default 1024.
    pub max_connections_per_ip: usize,
    /// Proxies (addresses or CIDR blocks, e.g. `["10.0.0.0/8"]`, a load balancer in front)
    /// whose `X-Forwarded-For` names the client in the access log. Default none: the log
    /// shows the TCP peer.
    pub trusted_proxies: Vec<IpNet>,
    /// Disk budget for spooled upload parts, bytes; a part that would exceed it gets
    /// `503 SlowDown`. Default 10 GiB.
    pub spool_bytes: u64,
    /// Spooled parts pushed to the store at once (the spool's workers), each on its own
    /// pooled connection. Default 4.
    pub relay_workers: usize,
    /// How long CompleteMultipartUpload waits for spooled parts to reach the store before it
    /// fails with ServiceUnavailable (the workers go on; the client retries). Past 5 s the
    /// edge answers 200 at once and keeps the connection alive with spaces, as S3 does for a
    /// long Complete; the outcome, error or not, is then the XML document. Seconds, default 300.
    pub relay_wait_secs: u64,
    /// Cache behaviour of the default distribution (the S3 face for every bucket).
    pub default_behavior: Behavior,
    /// Test support: enables `POST /_outpost/test/clock?advance=SECONDS` (signed), which moves
    /// the cache's clock forward so tests need not sleep through TTLs. Never in production.
    pub test_clock: bool,
    /// Follow the change feed of every origin that is an Outpost store, dropping exactly what
    /// changed there (see the README's "Change feed"). Default true.
    pub feed: bool,
    /// Token an origin that is not an Outpost store (MinIO, Ceph RGW) sends with its S3 event
    /// notifications to `POST /_outpost/notifications`, in `Authorization` (as it is, or after
    /// `Bearer `); each object event drops that key (see the README's "Event notifications").
    /// Default none: the endpoint is off.
    pub notification_token: Option<SecretKey>,
    /// Distributions selected by Host header; requests for other hosts use the S3 face.
    #[serde(rename = "distribution")]
    pub distributions: Vec<Distribution>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            listen: "127.0.0.1:9080".parse().expect("valid address"),
            tls_cert: None,
            tls_key: None,
            http_listen: None,
            origin_ca_file: None,
            origin_tls_insecure: false,
            origins: vec!["http://127.0.0.1:9000".into()],
            cache_dir: "./outpost-edge-cache".into(),
            memory_cache_bytes: 256 * MIB,
            disk_cache_bytes: 10 * 1024 * MIB,
            slice_bytes: 4 * MIB,
            region: "us-east-1".into(),
            base_domain: None,
            website_domain: None,
            access_key_id: None,
            secret_access_key: None,
            origin_timeout_secs: 10,
            origin_response_timeout_secs: 30,
            origin_idle_timeout_secs: 30,
            origin_retry_secs: 5,
            max_header_bytes: 16 * 1024,
            header_read_timeout_secs: 30,
            body_idle_timeout_secs: 60,
            body_min_rate_bytes_per_sec: 1024,
            body_min_rate_window_secs: 10,
            max_connections: None,
            max_connections_per_ip: 1024,
            trusted_proxies: Vec::new(),
            spool_bytes: 10 * 1024 * MIB,
            relay_workers: 4,
            relay_wait_secs: 300,
            default_behavior: Behavior::default(),
            test_clock: false,
            feed: true,
            notification_token: None,
            distributions: Vec::new(),
        }
    }
}

impl EdgeConfig {
    /// The certificate pairs distributions name, by host (what TLS clients ask for by SNI).
    /// A host in two distributions is the first one's, as for requests.
    pub fn certificates_by_name(&self) -> Vec<(String, TlsFiles)> {
        let mut seen = std::collections::HashSet::new();
        let mut named = Vec::new();
        for d in &self.distributions {
            let files = TlsFiles::from_config(&d.tls_cert, &d.tls_key);
            for host in &d.hosts {
                let host = host.to_ascii_lowercase();
                if let (true, Some(files)) = (seen.insert(host.clone()), &files) {
                    named.push((host, files.clone()));
                }
            }
        }
        named
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.origins.is_empty(),
            "edge.origins must name at least one store"
        );
        TlsFiles::check_config(&self.tls_cert, &self.tls_key, self.http_listen)?;
        anyhow::ensure!(
            self.notification_token
                .as_ref()
                .is_none_or(|t| !t.expose().is_empty()),
            "edge.notification_token must not be empty (leave it out to switch notifications off)"
        );
        anyhow::ensure!(
            self.slice_bytes >= 64 * 1024,
            "edge.slice_bytes must be >= 64 KiB"
        );
        anyhow::ensure!(self.relay_workers >= 1, "edge.relay_workers must be >= 1");
        for (name, secs) in [
            ("origin_timeout_secs", self.origin_timeout_secs),
            (
                "origin_response_timeout_secs",
                self.origin_response_timeout_secs,
            ),
            ("origin_idle_timeout_secs", self.origin_idle_timeout_secs),
        ] {
            anyhow::ensure!(secs >= 1, "edge.{name} must be >= 1");
        }
        for d in &self.distributions {
            anyhow::ensure!(
                !d.hosts.is_empty(),
                "every [[edge.distribution]] needs hosts"
            );
            d.validate(self.tls_cert.is_some())?;
        }
        for b in self.distributions.iter().flat_map(|d| &d.behaviors) {
            b.validate()?;
        }
        self.default_behavior.validate()
    }
}

/// One site or S3 endpoint served by the edge (a CloudFront distribution).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    /// Host names (without port) that select this distribution.
    pub hosts: Vec<String>,
    /// Origin stores, primary first. Default: the edge's `origins`.
    #[serde(default)]
    pub origins: Vec<String>,
    /// The bucket behind the distribution.
    pub bucket: String,
    /// Serve the bucket as a static website (index documents, error document, redirects)
    /// to anonymous browsers instead of speaking the S3 API.
    #[serde(default)]
    pub website: bool,
    /// Cache behaviours by path pattern; the first match wins, the default behaviour after.
    #[serde(default, rename = "behavior")]
    pub behaviors: Vec<Behavior>,
    /// PEM certificate chain (leaf first) served to TLS clients that ask for one of `hosts`
    /// (SNI), with `tls_key`; reloaded like the edge's. Needs the edge's `tls_cert`, which
    /// clients naming no distribution get. Default: the edge's pair.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// What plain-HTTP requests for this distribution get (CloudFront's viewer protocol
    /// policy): `"allow-all"` (served), `"redirect-to-https"` (GET and HEAD: 301 to the same
    /// URL over https; other methods: 403), `"https-only"` (403). The last two need the edge's
    /// TLS listener. Default `"allow-all"`.
    #[serde(default)]
    pub viewer_protocol: ViewerProtocol,
    /// Send `Strict-Transport-Security: max-age=N` on this distribution's answers over https
    /// (never over plain HTTP, where browsers ignore it), seconds. Needs the edge's TLS
    /// listener. Default none.
    #[serde(default)]
    pub hsts_max_age_secs: Option<u64>,
}

/// A distribution's viewer protocol policy (see [`Distribution::viewer_protocol`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViewerProtocol {
    #[default]
    AllowAll,
    RedirectToHttps,
    HttpsOnly,
}

impl Distribution {
    /// `tls`: the edge has a TLS listener.
    fn validate(&self, tls: bool) -> anyhow::Result<()> {
        let name = self.hosts.join(", ");
        anyhow::ensure!(
            self.tls_cert.is_some() == self.tls_key.is_some(),
            "distribution {name}: tls_cert and tls_key go together"
        );
        let needs_tls = [
            (self.tls_cert.is_some(), "tls_cert"),
            (
                self.viewer_protocol != ViewerProtocol::AllowAll,
                "viewer_protocol other than \"allow-all\"",
            ),
            (self.hsts_max_age_secs.is_some(), "hsts_max_age_secs"),
        ];
        for (set, what) in needs_tls {
            anyhow::ensure!(
                tls || !set,
                "distribution {name}: {what} needs the edge's TLS listener (edge.tls_cert and \
                 edge.tls_key)"
            );
        }
        Ok(())
    }
}

/// How responses for matching paths are cached (a CloudFront cache behaviour + policy).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behavior {
    /// Path pattern: `*` matches any run of characters, e.g. `/static/*` or `*.js`.
    /// Default `*`.
    pub path: String,
    /// Lower bound on the TTL the origin asks for, seconds. Default 0.
    pub min_ttl_secs: u64,
    /// TTL when the origin sends no Cache-Control max-age/s-maxage nor Expires. Default 86400.
    pub default_ttl_secs: u64,
    /// Upper bound on the TTL, seconds. Default 31536000 (one year).
    pub max_ttl_secs: u64,
    /// How long 404 and other cacheable error answers are kept, seconds. Default 10.
    pub error_ttl_secs: u64,
    /// How long past expiry a stale copy may be served while it is refreshed in the
    /// background, seconds (the origin's `stale-while-revalidate` wins). Default 0.
    pub stale_while_revalidate_secs: u64,
    /// How long past expiry a stale copy is served when the origin fails or is unreachable,
    /// seconds (the origin's `stale-if-error` wins). Default 86400.
    pub stale_if_error_secs: u64,
    /// Query parameters that are part of the cache key: `[]` none, `["*"]` all.
    /// Default `["*"]`. (The S3 face always keys on every non-auth parameter.)
    pub query_keys: Vec<String>,
    /// Request headers that are part of the cache key of a site (lower-case), e.g. a header
    /// a proxy in front sets per device class. Default none.
    pub header_keys: Vec<String>,
    /// Compress compressible content types (gzip, brotli) for clients that accept it.
    /// Default true.
    pub compress: bool,
    /// Write-through: when an upload through the edge succeeds (PutObject, CopyObject,
    /// CompleteMultipartUpload), the entry a GET of that object would use is filled from the
    /// store at once, so the first reader near the uploader hits. Costs one GET of the whole
    /// object from the store per upload: meant for sites and assets. Default false.
    pub write_through: bool,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            path: "*".into(),
            min_ttl_secs: 0,
            default_ttl_secs: 86_400,
            max_ttl_secs: 31_536_000,
            error_ttl_secs: 10,
            stale_while_revalidate_secs: 0,
            stale_if_error_secs: 86_400,
            query_keys: vec!["*".into()],
            header_keys: Vec::new(),
            compress: true,
            write_through: false,
        }
    }
}

impl Behavior {
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.min_ttl_secs <= self.default_ttl_secs
                && self.default_ttl_secs <= self.max_ttl_secs,
            "behavior {}: need min_ttl_secs <= default_ttl_secs <= max_ttl_secs",
            self.path
        );
        Ok(())
    }

    pub fn min_ttl(&self) -> Duration {
        Duration::from_secs(self.min_ttl_secs)
    }
    pub fn default_ttl(&self) -> Duration {
        Duration::from_secs(self.default_ttl_secs)
    }
    pub fn max_ttl(&self) -> Duration {
        Duration::from_secs(self.max_ttl_secs)
    }
    pub fn error_ttl(&self) -> Duration {
        Duration::from_secs(self.error_ttl_secs)
    }
    pub fn stale_while_revalidate(&self) -> Duration {
        Duration::from_secs(self.stale_while_revalidate_secs)
    }
    pub fn stale_if_error(&self) -> Duration {
        Duration::from_secs(self.stale_if_error_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_toml_parses() {
        EdgeConfig::default().validate().unwrap();
        let cfg: EdgeConfig = toml::from_str(
            r#"
            origins = ["http://a:9000", "http://b:9000"]
            [[distribution]]
            hosts = ["www.example.com"]
            bucket = "site"
            website = true
            [[distribution.behavior]]
            path = "/static/*"
            default_ttl_secs = 600
            "#,
        )
        .unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.distributions[0].behaviors[0].default_ttl_secs, 600);
        assert!(toml::from_str::<EdgeConfig>("typo = 1").is_err());
    }
}
