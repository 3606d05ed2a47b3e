//! Harness for the end-to-end tests: a real `outpost store` process on 127.0.0.1:0 with a temp
//! data dir, an `aws-sdk-s3` client pointed at it, a raw HTTP/1.1 + SigV4 helper for the requests
//! the SDK will not send (see `raw.rs`), and small helpers for errors, metrics and test data.
//!
//! Each test starts its own store (start-up is fast) and uses its own bucket; nothing is shared
//! between tests and no port is fixed.

#![allow(dead_code)]

pub mod browser;
pub mod cors;
pub mod faulty;
pub mod feed;
pub mod form;
pub mod hash;
pub mod keys;
pub mod logs;
pub mod raw;
pub mod tls;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::CompletedPart;

#[allow(unused_imports)]
pub use hash::Algo;
pub use raw::RawRequest;
#[allow(unused_imports)]
pub use raw::SignOpts;

pub const ACCESS_KEY: &str = "OUTPOSTTESTKEY0000001";
pub const SECRET_KEY: &str = "outpost/test+secret/0123456789abcdefghijk";
pub const REGION: &str = "us-east-1";
pub const MIB: usize = 1 << 20;

/// How to start a store. `Default` is a fresh temp data dir and the test credentials.
#[derive(Default, Clone)]
pub struct StoreOptions {
    /// Reuse this data dir (restart after a crash) instead of a fresh temp dir.
    pub data_dir: Option<PathBuf>,
    /// Extra environment, e.g. `OUTPOST_MAX_OBJECT_SIZE`.
    pub env: Vec<(String, String)>,
    /// Contents of a TOML config file passed with `--config`.
    pub config_toml: Option<String>,
    /// Listen on this port (a restart where clients know the address) instead of port 0.
    pub port: Option<u16>,
}

impl StoreOptions {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn config(mut self, toml: &str) -> Self {
        self.config_toml = Some(toml.into());
        self
    }
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }
}

/// A running `outpost store` (or `outpost edge`) child process; killed (SIGKILL) and reaped
/// on drop.
pub struct TestStore {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub port: u16,
    pub pid: u32,
    pub data_dir: PathBuf,
    /// Owns the temp dir when the store made its own (holds the config file too).
    tmp: Option<tempfile::TempDir>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    stdout_lines: Arc<Mutex<Vec<String>>>,
}

impl TestStore {
    pub fn start() -> TestStore {
        TestStore::start_with(StoreOptions::default())
    }

    pub fn start_with(opts: StoreOptions) -> TestStore {
        TestStore::start_command(&["store"], &[], opts)
    }

    /// `outpost up ARGS` (`--edges 3`, `--tls`...), its edges from port 0 too: the store, once
    /// it listens; the edges' URLs by [`TestStore::printed_all`] (`outpost edge listening on `).
    pub fn start_up(args: &[&str], opts: StoreOptions) -> TestStore {
        let edges = ["--edge-listen", "127.0.0.1:0"];
        TestStore::start_command(&["up"], &[&edges, args].concat(), opts)
    }

    /// `outpost COMMAND --listen ... --data ... ARGS`, with a fresh data dir unless `opts` names
    /// one.
    fn start_command(command: &[&str], args: &[&str], opts: StoreOptions) -> TestStore {
        let tmp = tempfile::Builder::new()
            .prefix("outpost-e2e-")
            .tempdir()
            .expect("tempdir");
        let data_dir = match &opts.data_dir {
            Some(d) => d.clone(),
            None => tmp.path().join("data"),
        };
        let listen = format!("127.0.0.1:{}", opts.port.unwrap_or(0));
        let mut all: Vec<String> = command.iter().map(|a| a.to_string()).collect();
        all.extend(["--listen", &listen, "--data"].map(String::from));
        all.push(data_dir.display().to_string());
        all.extend(args.iter().map(|a| a.to_string()));
        TestStore::spawn("store", &all, data_dir, tmp, &opts)
    }

    /// An `outpost edge` in front of `origins` (primary first), with a fresh cache dir.
    pub fn start_edge(origins: &[&TestStore], opts: StoreOptions) -> TestStore {
        let tmp = tempfile::Builder::new()
            .prefix("outpost-edge-")
            .tempdir()
            .expect("tempdir");
        let cache_dir = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| tmp.path().join("cache"));
        let listen = format!("127.0.0.1:{}", opts.port.unwrap_or(0));
        let mut args: Vec<String> = ["edge", "--listen", &listen, "--cache-dir"]
            .map(String::from)
            .to_vec();
        args.push(cache_dir.display().to_string());
        for origin in origins {
            args.push("--origin".into());
            args.push(origin.url.clone());
        }
        TestStore::spawn("edge", &args, cache_dir, tmp, &opts)
    }

    /// Runs `outpost <args>` and waits for its `outpost <kind> listening on URL` line.
    fn spawn(
        kind: &str,
        args: &[String],
        data_dir: PathBuf,
        tmp: tempfile::TempDir,
        opts: &StoreOptions,
    ) -> TestStore {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_outpost"));
        cmd.args(args)
            .env("OUTPOST_ACCESS_KEY_ID", ACCESS_KEY)
            .env("OUTPOST_SECRET_ACCESS_KEY", SECRET_KEY)
            .env_remove("OUTPOST_BASE_DOMAIN")
            .env_remove("OUTPOST_MAX_OBJECT_SIZE")
            .env_remove("OUTPOST_CONFIG")
            .env_remove("OUTPOST_LISTEN")
            .env_remove("OUTPOST_DATA")
            .env_remove("OUTPOST_REGION")
            .env_remove("OUTPOST_ORIGIN")
            .env_remove("OUTPOST_CACHE_DIR")
            .env_remove("OUTPOST_EDGE_LISTEN")
            .env_remove("OUTPOST_TLS_CERT")
            .env_remove("OUTPOST_TLS_KEY")
            .env_remove("OUTPOST_HTTP_LISTEN")
            .env_remove("OUTPOST_EDGE_TLS_CERT")
            .env_remove("OUTPOST_EDGE_TLS_KEY")
            .env_remove("OUTPOST_EDGE_HTTP_LISTEN")
            .env(
                "RUST_LOG",
                std::env::var("OUTPOST_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(toml) = &opts.config_toml {
            let path = tmp.path().join("outpost.toml");
            std::fs::write(&path, toml).expect("write config");
            cmd.arg("--config").arg(path);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn outpost (is the binary built?)");
        let pid = child.id();

        // Drain stdout and stderr for the child's whole life so it never blocks on a full pipe.
        let (tx, rx) = mpsc::channel::<String>();
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let lines = stdout_lines.clone();
        let stdout = child.stdout.take().unwrap();
        let ready = format!("outpost {kind} listening on ");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(url) = line.strip_prefix(ready.as_str()) {
                    let _ = tx.send(url.trim().to_string());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let tail = stderr_tail.clone();
        let mut stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut t = tail.lock().unwrap();
                t.extend_from_slice(&buf[..n]);
                let len = t.len();
                if len > 64 * 1024 {
                    t.drain(..len - 64 * 1024);
                }
            }
        });

        let mut store = TestStore {
            child: Some(child),
            url: String::new(),
            addr: String::new(),
            port: 0,
            pid,
            data_dir,
            tmp: Some(tmp),
            stderr_tail,
            stdout_lines,
        };
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => {
                let status = store.child.as_mut().unwrap().try_wait().ok().flatten();
                panic!(
                    "outpost {kind} did not print its listening line within 30 s (exit: {status:?})\nstderr:\n{}",
                    store.stderr()
                );
            }
        };
        let addr = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .expect("http(s) url")
            .trim_end_matches('/')
            .to_string();
        store.port = addr.rsplit(':').next().unwrap().parse().expect("port");
        store.url = url.trim_end_matches('/').to_string();
        store.addr = addr;
        store
    }

    /// What follows `prefix` on the first line of the child's stdout that starts with it
    /// (e.g. the URL of `outpost edge also listening on `).
    pub fn printed(&self, prefix: &str) -> Option<String> {
        self.all_printed(prefix).into_iter().next()
    }

    fn all_printed(&self, prefix: &str) -> Vec<String> {
        let lines = self.stdout_lines.lock().unwrap();
        lines
            .iter()
            .filter_map(|line| line.strip_prefix(prefix).map(|rest| rest.trim().to_owned()))
            .collect()
    }

    /// What follows `prefix` on each line of the child's stdout that starts with it, once
    /// there are `n` such lines (within 30 s).
    pub async fn printed_all(&self, prefix: &str, n: usize) -> Vec<String> {
        let started = std::time::Instant::now();
        loop {
            let found = self.all_printed(prefix);
            if found.len() >= n {
                return found;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{n} lines {prefix:?} expected, got {found:?}\nstderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the child wrote to stderr (last 64 KiB).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr_tail.lock().unwrap()).into_owned()
    }

    /// Sends SIGHUP (the servers reload their TLS certificates on it).
    pub fn signal_hangup(&self) {
        let sent = Command::new("kill")
            .args(["-HUP", &self.pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -HUP {}", self.pid);
    }

    /// SIGKILL (`Child::kill` sends SIGKILL on Unix) and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The temp dir this store owns (where `data/` lives unless a data dir was given).
    pub fn tmp_path(&self) -> &Path {
        self.tmp.as_ref().unwrap().path()
    }

    /// Peak resident set size of the child, from /proc/<pid>/status `VmHWM`, in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid, "VmHWM:")
    }

    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid, "VmRSS:")
    }

    pub fn client(&self) -> Client {
        client_for(&self.url, ACCESS_KEY, SECRET_KEY)
    }

    /// A client that sends checksums only when an operation requires them (the
    /// `AWS_REQUEST_CHECKSUM_CALCULATION=when_required` behaviour).
    pub fn client_when_required(&self) -> Client {
        let conf = base_config(&self.url, ACCESS_KEY, SECRET_KEY)
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build();
        Client::from_conf(conf)
    }

    /// A fresh store, its client, and a fresh bucket named after `prefix`: most tests' start.
    pub async fn with_bucket(prefix: &str) -> (TestStore, Client, String) {
        let store = TestStore::start();
        let s3 = store.client();
        let b = store.bucket(&s3, prefix).await;
        (store, s3, b)
    }

    /// Creates a fresh bucket with a unique name and returns the name.
    pub async fn bucket(&self, client: &Client, prefix: &str) -> String {
        let name = unique_bucket(prefix);
        client
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create bucket");
        name
    }

    /// `GET /_outpost/metrics` body.
    pub async fn metrics_text(&self) -> String {
        let r = RawRequest::new("GET", "/_outpost/metrics").send(self).await;
        assert_eq!(r.status, 200, "metrics endpoint: {}", r.text());
        r.text()
    }

    /// Sum of every series of `name` whose labels include all of `labels`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_sum(&self.metrics_text().await, name, labels)
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let mut err = self.stderr();
            if err.len() > 8192 {
                let cut = err.len() - 8192;
                let cut = (cut..err.len())
                    .find(|i| err.is_char_boundary(*i))
                    .unwrap_or(cut);
                err = err[cut..].to_string();
            }
            if !err.is_empty() {
                eprintln!("---- outpost stderr (tail) ----\n{err}\n---- end ----");
            }
        }
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .expect("field in /proc status");
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("kB value")
}

pub(crate) fn base_config(
    url: &str,
    access_key: &str,
    secret: &str,
) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            access_key,
            secret,
            None,
            None,
            "outpost-tests",
        ))
        .force_path_style(true)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(120))
                .build(),
        )
}

/// A path-style, plain-HTTP SDK client with static credentials and no retries (so a server error
/// shows up as the test failure instead of being retried away).
pub fn client_for(url: &str, access_key: &str, secret: &str) -> Client {
    Client::from_conf(base_config(url, access_key, secret).build())
}

/// Like [`client_for`] with a custom per-attempt timeout (for the large-object test).
pub fn client_with_timeout(url: &str, timeout: Duration) -> Client {
    let conf = base_config(url, ACCESS_KEY, SECRET_KEY)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(timeout)
                .build(),
        )
        .build();
    Client::from_conf(conf)
}

/// A DNS-valid bucket name unique to this test run.
pub fn unique_bucket(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut name = format!("{prefix}-{}", &id[..12]);
    name.truncate(63);
    name
}

/// HTTP status and S3 error code of a failed SDK call; panics if the call succeeded or failed
/// without a response (timeout, connection error).
#[track_caller]
pub fn sdk_err<T: std::fmt::Debug, E>(r: Result<T, SdkError<E, HttpResponse>>) -> (u16, String)
where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    match r {
        Ok(v) => panic!("expected an error response, got success: {v:?}"),
        Err(SdkError::ServiceError(e)) => {
            let status = e.raw().status().as_u16();
            (status, e.err().code().unwrap_or("").to_string())
        }
        Err(other) => {
            panic!("expected an S3 error response, got a transport/client failure: {other:?}")
        }
    }
}

/// Asserts a failed SDK call answered `status` with `code`.
#[track_caller]
pub fn assert_sdk_err<T: std::fmt::Debug, E>(
    r: Result<T, SdkError<E, HttpResponse>>,
    status: u16,
    code: &str,
) where
    E: ProvideErrorMetadata + std::fmt::Debug,
{
    let (s, c) = sdk_err(r);
    assert_eq!(
        (s, c.as_str()),
        (status, code),
        "expected {status} {code}, got {s} {c}"
    );
}

pub fn body(data: impl Into<Vec<u8>>) -> ByteStream {
    ByteStream::from(data.into())
}

pub async fn read_body(bs: ByteStream) -> Vec<u8> {
    bs.collect().await.expect("read body").into_bytes().to_vec()
}

/// Pseudo-random bytes (xorshift), deterministic in `seed`.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `"<hex md5>"`: the ETag S3 gives a single-part object.
pub fn etag_of(data: &[u8]) -> String {
    format!("\"{}\"", hash::md5_hex(data))
}

/// `"<hex md5 of the concatenated binary part md5s>-N"`: the multipart ETag.
pub fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut cat = Vec::new();
    for p in parts {
        cat.extend_from_slice(&hash::md5(p));
    }
    format!("\"{}-{}\"", hash::md5_hex(&cat), parts.len())
}

/// Percent-encodes every byte except RFC 3986 unreserved characters and `/` (an S3 key in a path).
pub fn enc_path(s: &str) -> String {
    encode(s, true)
}

/// Percent-encodes every byte except RFC 3986 unreserved characters (a query value).
pub fn enc_query(s: &str) -> String {
    encode(s, false)
}

fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 after percent-decoding")
}

/// Parses Prometheus text exposition and sums `name` over series matching `labels`.
pub fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let mut sum = 0.0;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (series, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let (metric, label_text) = match series.find('{') {
            Some(i) => (&series[..i], series[i + 1..].trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let mut found = Vec::new();
        for pair in label_text.split(',').filter(|p| !p.is_empty()) {
            if let Some((k, v)) = pair.split_once('=') {
                found.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
            }
        }
        if labels
            .iter()
            .all(|(k, v)| found.iter().any(|(fk, fv)| fk == k && fv == v))
        {
            sum += value.trim().parse::<f64>().unwrap_or(0.0);
        }
    }
    sum
}

/// Time helpers.
pub fn now() -> SystemTime {
    SystemTime::now()
}

pub fn httpdate(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[dt.weekday().number_days_from_monday() as usize],
        dt.day(),
        MONTHS[dt.month() as usize - 1],
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

#[test]
fn harness_helpers() {
    assert_eq!(enc_path("a b/ä+&"), "a%20b/%C3%A4%2B%26");
    assert_eq!(enc_query("a/b"), "a%2Fb");
    assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
    let text = "# TYPE x counter\nx_total{operation=\"GetObject\",status=\"200\"} 3\nx_total{operation=\"PutObject\",status=\"200\"} 2\n";
    assert_eq!(
        metric_sum(text, "x_total", &[("operation", "GetObject")]),
        3.0
    );
    assert_eq!(metric_sum(text, "x_total", &[]), 5.0);
    assert_eq!(
        httpdate(SystemTime::UNIX_EPOCH),
        "Thu, 01 Jan 1970 00:00:00 GMT"
    );
    assert_eq!(
        multipart_etag(&[b"a", b"b"]),
        format!(
            "\"{}-2\"",
            hash::md5_hex(&[hash::md5(b"a"), hash::md5(b"b")].concat())
        )
    );
}

/// A store and an edge in front of it (edge with the test clock enabled).
pub struct EdgePair {
    pub store: TestStore,
    pub edge: TestStore,
}

impl EdgePair {
    pub fn start() -> EdgePair {
        EdgePair::start_with("")
    }

    /// `edge_toml`: extra lines for the edge's `[edge]` table. The pair tests the cache's own
    /// rules (TTLs, revalidation, invalidation at the edge), so the edge does not follow the
    /// store's change feed, which would drop entries as the store changes (tests/edge/feed.rs
    /// tests that).
    pub fn start_with(edge_toml: &str) -> EdgePair {
        let store = TestStore::start();
        let edge = TestStore::start_edge(
            &[&store],
            StoreOptions::default().config(&format!(
                "[edge]\ntest_clock = true\nfeed = false\n{edge_toml}"
            )),
        );
        EdgePair { store, edge }
    }
}

impl TestStore {
    /// GetObject requests the store has answered with `status` (what an edge sent it).
    pub async fn origin_gets(&self, status: &str) -> f64 {
        self.metric(
            "outpost_s3_requests_total",
            &[("operation", "GetObject"), ("status", status)],
        )
        .await
    }

    /// Moves an edge's cache clock forward (edge started with `test_clock = true`).
    pub async fn advance_clock(&self, secs: u64) {
        let r = RawRequest::new("POST", &format!("/_outpost/test/clock?advance={secs}"))
            .sign(self)
            .send(self)
            .await;
        assert_eq!(r.status, 201, "advance clock: {}", r.text());
    }

    /// `POST /_outpost/invalidations` on an edge.
    pub async fn invalidate(&self, paths: &[&str]) -> raw::RawResponse {
        let body = serde_json::json!({ "paths": paths }).to_string();
        RawRequest::new("POST", "/_outpost/invalidations")
            .header("content-type", "application/json")
            .body(body)
            .sign(self)
            .send(self)
            .await
    }
}

/// A signed GET through `server` (must answer 200); returns (body, X-Cache, Age).
pub async fn signed_get(
    server: &TestStore,
    bucket: &str,
    key: &str,
) -> (Vec<u8>, String, Option<u64>) {
    let r = RawRequest::new("GET", &format!("/{bucket}/{}", enc_path(key)))
        .sign(server)
        .send(server)
        .await;
    assert_eq!(r.status, 200, "GET {key}: {}", r.text());
    let x_cache = r.header("x-cache").unwrap_or("").to_string();
    let age = r.header("age").and_then(|a| a.parse().ok());
    (r.body, x_cache, age)
}

/// PutObject without options (must succeed).
pub async fn put_bytes(
    s3: &Client,
    bucket: &str,
    key: &str,
    data: impl Into<Vec<u8>>,
) -> aws_sdk_s3::operation::put_object::PutObjectOutput {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body(data))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {bucket}/{key}: {e:?}"))
}

/// UploadPart for each of `parts` (numbered from 1); asserts each answered ETag is the part's
/// MD5 and returns the parts for Complete.
pub async fn upload_parts(
    s3: &Client,
    b: &str,
    key: &str,
    id: &str,
    parts: &[&[u8]],
) -> Vec<CompletedPart> {
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket(b)
            .key(key)
            .upload_id(id)
            .part_number(n)
            .body(body(p.to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload part {n}: {e:?}"));
        assert_eq!(
            out.e_tag(),
            Some(etag_of(p).as_str()),
            "part {n} ETag is its MD5"
        );
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    done
}

/// CreateMultipartUpload without options; the upload id.
pub async fn start_upload(s3: &Client, bucket: &str, key: &str) -> String {
    let up = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("CreateMultipartUpload");
    up.upload_id().expect("an upload id").to_string()
}

/// CompleteMultipartUpload of `parts` (must succeed).
pub async fn complete_upload(
    s3: &Client,
    bucket: &str,
    key: &str,
    id: &str,
    parts: Vec<CompletedPart>,
) -> aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput {
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete {bucket}/{key}: {e:?}"))
}

/// The whole body of `bucket/key` (GetObject must succeed).
pub async fn object_bytes(s3: &Client, bucket: &str, key: &str) -> Vec<u8> {
    let got = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {bucket}/{key}: {e:?}"));
    read_body(got.body).await
}
