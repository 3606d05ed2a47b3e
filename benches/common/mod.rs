//! What the benchmarks share: starting `outpost` processes and a signing S3 client (hyper 1,
//! keep-alive pool, TCP_NODELAY, SigV4 via aws-sigv4 with UNSIGNED-PAYLOAD so the client never
//! hashes bodies).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use md5::{Digest, Md5};

pub const ACCESS_KEY: &str = "OUTPOSTBENCHKEY000001";
pub const SECRET_KEY: &str = "outpost/bench+secret/0123456789abcdefghij";
pub const REGION: &str = "us-east-1";
/// Request bodies go out in pieces of this size.
pub const SEND_CHUNK: usize = 1 << 20;

/// A child process killed (and reaped) when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `outpost` binary to measure: `OUTPOST_BENCH_BIN`, else the one cargo built.
pub fn outpost_bin() -> PathBuf {
    std::env::var_os("OUTPOST_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_outpost")))
}

/// What `tool args...` says of its version (stdout and stderr), or "missing".
pub fn tool_version(tool: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> String {
    Command::new(tool)
        .args(args)
        .output()
        .map(|o| {
            let text = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&text).trim().to_string()
        })
        .unwrap_or_else(|_| "missing".into())
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Runs `bin args...` with the bench credentials, passes its stderr through, and waits for its
/// `outpost KIND listening on http(s)://ADDR` line. Returns the child and `ADDR`.
pub fn spawn_outpost(bin: &Path, kind: &str, args: &[&str]) -> anyhow::Result<(Child, String)> {
    spawn_outpost_in(None, bin, kind, args)
}

/// An `outpost store` on a free port with its data in `data_dir`. Returns the child and its
/// address.
pub fn spawn_store(bin: &Path, data_dir: &Path) -> anyhow::Result<(Child, String)> {
    spawn_outpost(
        bin,
        "store",
        &["--listen", "127.0.0.1:0", "--data", path(data_dir)],
    )
}

/// An `outpost edge` in front of `origin` on a free port, caching in `cache_dir`; `extra`
/// flags follow. Returns the child and its address.
pub fn spawn_edge(
    bin: &Path,
    origin: &str,
    cache_dir: &Path,
    extra: &[&str],
) -> anyhow::Result<(Child, String)> {
    let mut args = vec!["--listen", "127.0.0.1:0", "--origin", origin];
    args.extend(["--cache-dir", path(cache_dir)]);
    args.extend(extra);
    spawn_outpost(bin, "edge", &args)
}

/// [`spawn_outpost`] inside a network namespace (`ip netns exec NETNS bin ...`) when one is given.
pub fn spawn_outpost_in(
    netns: Option<&str>,
    bin: &Path,
    kind: &str,
    args: &[&str],
) -> anyhow::Result<(Child, String)> {
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let mut child = command
        .arg(kind)
        .args(args)
        .env("OUTPOST_ACCESS_KEY_ID", ACCESS_KEY)
        .env("OUTPOST_SECRET_ACCESS_KEY", SECRET_KEY)
        .env(
            "RUST_LOG",
            std::env::var("OUTPOST_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env_remove("OUTPOST_CONFIG")
        .env_remove("OUTPOST_LISTEN")
        .env_remove("OUTPOST_DATA")
        .env_remove("OUTPOST_BASE_DOMAIN")
        .env_remove("OUTPOST_MAX_OBJECT_SIZE")
        .env_remove("OUTPOST_REGION")
        .env_remove("OUTPOST_ORIGIN")
        .env_remove("OUTPOST_CACHE_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    // Drain both pipes for the child's whole life so it never blocks on a full pipe.
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("  [server] {line}");
        }
    });
    let ready = format!("outpost {kind} listening on ");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let url = line.strip_prefix(&ready).map(str::trim);
                let addr =
                    url.and_then(|u| u.strip_prefix("http://").or(u.strip_prefix("https://")));
                if let Some(addr) = addr {
                    return Ok((child, addr.to_string()));
                }
            }
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                match e {
                    RecvTimeoutError::Timeout => {
                        bail!("outpost {kind} did not print its listening line within 30 s")
                    }
                    RecvTimeoutError::Disconnected => {
                        bail!(
                            "outpost {kind} exited before listening ({status:?}); its stderr is above"
                        )
                    }
                }
            }
        }
    }
}

/// A TLS 1.3 client config trusting the CA certificates in `ca` (PEM), HTTP/1.1 by ALPN, with
/// or without session resumption.
pub fn tls_client_config(ca: &Path, resume: bool) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// A request body that hands out slices of a shared buffer, `SEND_CHUNK` at a time.
pub struct SliceBody {
    data: Bytes,
    pos: usize,
}

impl SliceBody {
    pub fn new(data: Bytes) -> SliceBody {
        SliceBody { data, pos: 0 }
    }
}

impl Body for SliceBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.pos >= self.data.len() {
            return Poll::Ready(None);
        }
        let end = (self.pos + SEND_CHUNK).min(self.data.len());
        let chunk = self.data.slice(self.pos..end);
        self.pos = end;
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.pos >= self.data.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.data.len() - self.pos) as u64)
    }
}

pub struct S3 {
    pub http: Client<HttpConnector, SliceBody>,
    /// `127.0.0.1:PORT`
    pub addr: String,
    creds: Credentials,
    /// Bodies are `data.slice(..)`: the same random bytes for every run (fixed seed).
    pub data: Bytes,
}

/// What an op returned, beyond success.
pub struct Outcome {
    pub status: u16,
    pub bytes: u64,
    pub etag: Option<String>,
    pub md5: Option<String>,
    /// First bytes of an error body, for the abort message.
    pub error_body: String,
}

impl S3 {
    pub fn new(addr: &str, data: Bytes) -> S3 {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(conn);
        let creds = Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "bench");
        S3 {
            http,
            addr: addr.to_string(),
            creds,
            data,
        }
    }

    /// The body of key number `i` of objects of `size` bytes: a slice of the shared buffer at a
    /// deterministic offset, so any object's expected content is known without storing it.
    pub fn body_for(&self, size: usize, i: usize) -> Bytes {
        let span = self.data.len() - size;
        let off = if span == 0 {
            0
        } else {
            (i.wrapping_mul(4099 * 64)) % span
        };
        self.data.slice(off..off + size)
    }

    /// SigV4 header auth with `UNSIGNED-PAYLOAD`; `headers` are extra (signed) headers.
    pub fn signed_request(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<http::Request<SliceBody>> {
        let uri = format!("http://{}{}", self.addr, path);
        let len = body.len().to_string();
        let mut headers = vec![("host", self.addr.as_str())];
        if method == "PUT" {
            headers.push(("content-length", len.as_str()));
        }
        headers.extend_from_slice(extra);
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let identity = self.creds.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let signable = SignableRequest::new(
            method,
            uri.as_str(),
            headers.iter().copied(),
            SignableBody::UnsignedPayload,
        )?;
        let (instructions, _sig) = sign(signable, &params)?.into_parts();
        let mut req = http::Request::builder().method(method).uri(&uri);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        for (k, v) in instructions.headers() {
            req = req.header(k, v);
        }
        Ok(req.body(SliceBody::new(body))?)
    }

    /// Send a request and read the whole response body (hashing it when asked).
    pub async fn call(&self, req: http::Request<SliceBody>, hash: bool) -> anyhow::Result<Outcome> {
        let resp = self.http.request(req).await.context("HTTP request")?;
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(|s| s.trim_matches('"').to_string());
        let mut body = resp.into_body();
        let ok = (200..300).contains(&status);
        let mut hasher = (hash && ok).then(Md5::new);
        let mut bytes = 0u64;
        let mut error_body = Vec::new();
        while let Some(frame) = next_frame(&mut body).await {
            let frame = frame.context("reading response body")?;
            if let Ok(data) = frame.into_data() {
                bytes += data.len() as u64;
                if let Some(h) = hasher.as_mut() {
                    h.update(&data);
                }
                if !ok && error_body.len() < 600 {
                    error_body.extend_from_slice(&data[..data.len().min(600)]);
                }
            }
        }
        Ok(Outcome {
            status,
            bytes,
            etag,
            md5: hasher.map(|h| hex::encode(h.finalize())),
            error_body: String::from_utf8_lossy(&error_body).into_owned(),
        })
    }

    /// A signed request that must succeed.
    pub async fn ok(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Outcome> {
        let out = self
            .call(self.signed_request(method, path, body, extra)?, false)
            .await?;
        if !(200..300).contains(&out.status) {
            bail!(
                "{method} {path} answered {}: {}",
                out.status,
                out.error_body
            );
        }
        Ok(out)
    }

    /// Creates `bucket` readable by anyone (the standard anonymous `s3:GetObject` policy), so
    /// GETs need no signature.
    pub async fn public_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        self.ok("PUT", &format!("/{bucket}"), Bytes::new(), &[])
            .await?;
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
        );
        self.ok(
            "PUT",
            &format!("/{bucket}?policy"),
            Bytes::from(policy),
            &[],
        )
        .await?;
        Ok(())
    }

    /// Open up to `n` pooled connections (signed ListBuckets, which any S3 server answers), so
    /// the concurrent cells do not measure TCP handshakes.
    pub async fn warm(self: &Arc<Self>, n: usize) -> anyhow::Result<()> {
        let mut tasks = Vec::new();
        for _ in 0..n {
            let s3 = self.clone();
            tasks.push(tokio::spawn(async move {
                s3.ok("GET", "/", Bytes::new(), &[]).await.map(drop)
            }));
        }
        for t in tasks {
            t.await??;
        }
        Ok(())
    }
}

pub async fn next_frame(body: &mut Incoming) -> Option<Result<Frame<Bytes>, hyper::Error>> {
    std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await
}

pub fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

/// Sum of the series of a Prometheus counter whose labels include all of `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let metric = series.split('{').next().unwrap_or("");
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}
