//! Wide-area benchmark: what an edge near the client buys over a long, lossy path, with real
//! TCP on both sides. Client, edge and store run in three network namespaces joined by
//! simulated links (`benches/wan/link.rs`: TUN devices and a user-space forwarder applying
//! one-way delay, rate and random loss per direction, because this kernel has no `tc netem`):
//!
//! ```text
//!             direct: 80 ms RTT, 100 Mbit/s, 1 % loss
//!   client ──────────────────────────────────────────────► store
//!      │                                                     ▲
//!      │ 10 ms, 100 Mbit/s, 1 %     70 ms, 1 Gbit/s, 0.01 %  │  (scenario "long haul clean")
//!      └──────────────────────► edge ────────────────────────┘
//!                                      70 ms, 100 Mbit/s, 0.01 % (scenario "long haul 100 Mbit")
//! ```
//!
//! Per scenario, in one run: the same upload (256 MiB of random bytes) with aws-cli's default
//! transfer settings (8 MiB parts, 10 in parallel), `aws s3 cp` direct to the store and through
//! the edge, timed around the whole command; the edge's object is then checked byte for byte
//! and its ETag compared with the direct one. Then 1 KiB GETs, time to first response byte,
//! direct vs an edge hit, on new connections (handshake included) and on one reused
//! connection. Each row is the median and 90th percentile of `OUTPOST_WAN_SAMPLES` requests.
//! The same rows again over TLS 1.3: store and edge serve TLS too (one ECDSA P-256 certificate
//! from a local CA for the three addresses they are reached at, plain listeners beside it),
//! and the bench's own rustls client trusts that CA, so a new connection pays the TCP
//! handshake, a full TLS handshake and the request; a reused one only the request. The edge's
//! origin is the store's TLS listener (`origin_ca_file`): the long haul runs over the edge's
//! pooled, resumed TLS connections, whose handshakes the store's metrics count.
//! Last, `outpost speedtest --sizes-mib 1,16` runs from the client, so its table shows what
//! the tool reports on such a network.
//!
//! Run with `cargo bench --bench wan` as root (namespaces; installs aws-cli into
//! `.venv-compat` like the compatibility script when missing). Knobs: `OUTPOST_BENCH_BIN`,
//! `OUTPOST_WAN_MIB` (upload size, default 256), `OUTPOST_WAN_SAMPLES` (default 30),
//! `OUTPOST_WAN_CC` (TCP congestion control in all three namespaces, default `cubic`: the
//! default of Linux, Windows and macOS clients; the host's own default may differ),
//! `OUTPOST_WAN_EDGE_TOML` (extra lines for the edge's `[edge]` table, e.g.
//! `relay_workers = 10`), `OUTPOST_WAN_ONLY` (one scenario: `clean` or `100mbit`).
//! The figures and the method are in `BENCHMARKS.md`.

#[path = "common/mod.rs"]
mod common;
#[path = "wan/link.rs"]
mod link;

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use bytes::Bytes;
use common::{Killed, S3, metric_sum, path, spawn_outpost_in, tls_client_config, tool_version};
use link::{End, Impairment, Link, enter_netns, ip};
use md5::{Digest, Md5};
use outpost_store::tls::LocalCa;
use rand::{RngCore, SeedableRng};
use rustls::pki_types::ServerName;

const CLIENT: &str = "opwan-client";
const EDGE: &str = "opwan-edge";
const STORE: &str = "opwan-store";
const STORE_PORT: u16 = 9000;
const EDGE_PORT: u16 = 9080;
const STORE_TLS_PORT: u16 = 9443;
const EDGE_TLS_PORT: u16 = 9444;
const BUCKET: &str = "wanbench";
const SMALL_KEY: &str = "small-1k";

/// Addresses on the three links: (near end, far end).
const CLIENT_STORE: (Ipv4Addr, Ipv4Addr) =
    (Ipv4Addr::new(10, 71, 1, 1), Ipv4Addr::new(10, 71, 1, 2));
const CLIENT_EDGE: (Ipv4Addr, Ipv4Addr) =
    (Ipv4Addr::new(10, 71, 2, 1), Ipv4Addr::new(10, 71, 2, 2));
const EDGE_STORE: (Ipv4Addr, Ipv4Addr) = (Ipv4Addr::new(10, 71, 3, 1), Ipv4Addr::new(10, 71, 3, 2));

struct Scenario {
    name: &'static str,
    /// Names the scenario's objects.
    tag: &'static str,
    direct: Impairment,
    client_edge: Impairment,
    edge_store: Impairment,
}

fn scenarios() -> [Scenario; 2] {
    let ms = Duration::from_millis;
    let direct = Impairment::symmetric(ms(80), 100, 0.01);
    let client_edge = Impairment::symmetric(ms(10), 100, 0.01);
    [
        Scenario {
            name: "long haul clean (edge↔store 70 ms, 1 Gbit/s, 0.01 %)",
            tag: "clean",
            direct,
            client_edge,
            edge_store: Impairment::symmetric(ms(70), 1000, 0.0001),
        },
        Scenario {
            name: "long haul 100 Mbit (edge↔store 70 ms, 100 Mbit/s, 0.01 %)",
            tag: "100mbit",
            direct,
            client_edge,
            edge_store: Impairment::symmetric(ms(70), 100, 0.0001),
        },
    ]
}

fn main() -> anyhow::Result<()> {
    ensure!(
        nix::unistd::Uid::effective().is_root(),
        "the wide-area bench creates network namespaces: run it as root"
    );
    let bin = common::outpost_bin();
    let mib: usize = knob("OUTPOST_WAN_MIB", 256);
    let samples: usize = knob("OUTPOST_WAN_SAMPLES", 30);
    let congestion = std::env::var("OUTPOST_WAN_CC").unwrap_or_else(|_| "cubic".into());
    let edge_toml = std::env::var("OUTPOST_WAN_EDGE_TOML").unwrap_or_default();
    let only = std::env::var("OUTPOST_WAN_ONLY").ok();
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-wan");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work)?;
    let aws = ensure_aws_cli()?;

    println!("# Outpost wide-area benchmark\n");
    println!("binary: {}", bin.display());
    println!("client: {}", tool_version(&aws, &["--version"]));
    println!("upload: {mib} MiB of random bytes, `aws s3 cp` with default transfer settings");
    println!("first byte: {samples} anonymous GETs of a 1 KiB public object per row");
    println!(
        "TLS: 1.3, one ECDSA P-256 certificate for store and edge; the bench's rustls client \
         makes full handshakes (no resumption) on new connections"
    );
    println!("edge origin: https (the store's TLS listener; pooled, sessions resumed)");
    println!("TCP congestion control in every namespace: {congestion}");
    println!(
        "edge: defaults{}\n",
        if edge_toml.is_empty() {
            String::new()
        } else {
            format!(" and {edge_toml:?}")
        }
    );

    let net = Network::build(&scenarios()[0], &congestion)?;
    let store_url = format!("http://{}:{STORE_PORT}", CLIENT_STORE.1);
    let edge_url = format!("http://{}:{EDGE_PORT}", CLIENT_EDGE.1);
    let addresses = [CLIENT_STORE.1, CLIENT_EDGE.1, EDGE_STORE.1].map(|a| a.to_string());
    let names: Vec<&str> = addresses.iter().map(String::as_str).collect();
    let ca = LocalCa::in_dir_for(&work.join("tls"), &names)?;
    let _store = spawn_server(
        STORE,
        &bin,
        "store",
        &ca,
        (STORE_TLS_PORT, STORE_PORT),
        &["--data", path(&work.join("store"))],
    )?;
    let edge_config = work.join("edge.toml");
    fs::write(
        &edge_config,
        format!(
            "[edge]\norigin_ca_file = \"{}\"\n{edge_toml}\n",
            path(&ca.ca)
        ),
    )?;
    let _edge = spawn_server(
        EDGE,
        &bin,
        "edge",
        &ca,
        (EDGE_TLS_PORT, EDGE_PORT),
        &[
            "--origin",
            &format!("https://{}:{STORE_TLS_PORT}", EDGE_STORE.1),
            "--cache-dir",
            path(&work.join("edge")),
            "--config",
            path(&edge_config),
        ],
    )?;
    prepare_bucket()?;
    let file = work.join("upload.bin");
    let file_md5 = write_random_file(&file, mib << 20)?;

    for scenario in scenarios() {
        if only.as_ref().is_some_and(|tag| tag != scenario.tag) {
            continue;
        }
        net.set(&scenario);
        let handshakes_before = store_handshakes()?;
        println!("## Scenario: {}\n", scenario.name);
        println!("| upload {mib} MiB | seconds | MiB/s |");
        println!("|---|---|---|");
        let key = |via: &str| format!("{via}-{}", scenario.tag);
        let mut times = Vec::new();
        for (via, url) in [("direct", &store_url), ("edge", &edge_url)] {
            let took = aws_cp(&aws, url, &file, &key(via))?;
            println!(
                "| {via} | {:.1} | {:.1} |",
                took.as_secs_f64(),
                mib as f64 / took.as_secs_f64()
            );
            times.push(took);
        }
        let (direct_etag, edge_etag, edge_md5) = check_uploads(&key("direct"), &key("edge"))?;
        ensure!(
            edge_md5 == file_md5,
            "the object uploaded through the edge differs"
        );
        ensure!(
            direct_etag == edge_etag,
            "ETag through the edge {edge_etag} differs from direct {direct_etag}"
        );
        println!(
            "\nupload speed-up through the edge: {:.2}x (ETags equal: {edge_etag}; content MD5 checked)",
            times[0].as_secs_f64() / times[1].as_secs_f64()
        );
        println!(
            "links: direct {}; client↔edge {}; edge↔store {}\n",
            net.direct.summary(),
            net.client_edge.summary(),
            net.edge_store.summary()
        );

        first_byte_rows(samples, None)?;
        let direct_tls_handshakes = samples + 1;
        first_byte_rows(samples, Some(tls_client_config(&ca.ca, false)?))?;
        let (full, resumed) = store_handshakes()?;
        let (full, resumed) = (full - handshakes_before.0, resumed - handshakes_before.1);
        println!(
            "TLS handshakes at the store during this scenario: {full} full, {resumed} resumed; \
             {direct_tls_handshakes} full ones are the direct rows', the rest the edge's \
             (upload relay and origin reads over its pooled connections)\n"
        );

        println!("`outpost speedtest` from the client:\n");
        speedtest(&bin, &store_url, &edge_url)?;
    }
    drop(net);
    Ok(())
}

/// The three namespaces and the links between them; deleted when dropped.
struct Network {
    direct: Link,
    client_edge: Link,
    edge_store: Link,
    /// Dropped after the namespaces.
    _allowed: AllowedCongestion,
}

impl Network {
    fn build(first: &Scenario, congestion: &str) -> anyhow::Result<Network> {
        let allowed = AllowedCongestion::including(congestion)?;
        for ns in [CLIENT, EDGE, STORE] {
            // Left over from an interrupted run of this bench.
            let _ = ip(&["netns", "del", ns]);
            ip(&["netns", "add", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&[
                "netns",
                "exec",
                ns,
                "sysctl",
                "-q",
                &format!("net.ipv4.tcp_congestion_control={congestion}"),
            ])?;
        }
        let end = |netns, dev, addr| End { netns, dev, addr };
        Ok(Network {
            _allowed: allowed,
            direct: Link::start(
                end(CLIENT, "wan-store", CLIENT_STORE.0),
                end(STORE, "wan-client", CLIENT_STORE.1),
                first.direct,
                1,
            )?,
            client_edge: Link::start(
                end(CLIENT, "wan-edge", CLIENT_EDGE.0),
                end(EDGE, "wan-client", CLIENT_EDGE.1),
                first.client_edge,
                2,
            )?,
            edge_store: Link::start(
                end(EDGE, "wan-store", EDGE_STORE.0),
                end(STORE, "wan-edge", EDGE_STORE.1),
                first.edge_store,
                3,
            )?,
        })
    }

    fn set(&self, s: &Scenario) {
        self.direct.set(s.direct);
        self.client_edge.set(s.client_edge);
        self.edge_store.set(s.edge_store);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in [CLIENT, EDGE, STORE] {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A new namespace starts with the host's congestion control, which may be BBR (it is on the
/// machine these figures come from), and may only switch to one the host allows. This adds
/// the wanted one to the host's allowed list for the run and restores the list when dropped.
struct AllowedCongestion {
    before: Option<String>,
}

const ALLOWED_CC: &str = "/proc/sys/net/ipv4/tcp_allowed_congestion_control";

impl AllowedCongestion {
    fn including(congestion: &str) -> anyhow::Result<AllowedCongestion> {
        let before = fs::read_to_string(ALLOWED_CC)
            .with_context(|| format!("reading {ALLOWED_CC}"))?
            .trim()
            .to_string();
        if before.split(' ').any(|cc| cc == congestion) {
            return Ok(AllowedCongestion { before: None });
        }
        fs::write(ALLOWED_CC, format!("{before} {congestion}"))
            .with_context(|| format!("allowing {congestion} in {ALLOWED_CC}"))?;
        println!("(added {congestion} to {ALLOWED_CC} for this run)");
        Ok(AllowedCongestion {
            before: Some(before),
        })
    }
}

impl Drop for AllowedCongestion {
    fn drop(&mut self) {
        if let Some(before) = &self.before {
            let _ = fs::write(ALLOWED_CC, before);
        }
    }
}

/// Runs `f` on a thread inside `netns`, so every socket it opens is there.
fn in_netns<T: Send + 'static>(
    netns: &'static str,
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    std::thread::spawn(move || {
        enter_netns(netns)?;
        f()
    })
    .join()
    .expect("bench thread panicked")
}

/// A signing client on the store's loopback, for setup and checks that must not cross a link.
fn at_store<T: Send + 'static>(
    f: impl AsyncFnOnce(&S3) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    in_netns(STORE, move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let s3 = S3::new(&format!("127.0.0.1:{STORE_PORT}"), Bytes::new());
            f(&s3).await
        })
    })
}

/// The bucket, readable by anyone (so first-byte GETs carry no signature on either path), and
/// its 1 KiB object, cacheable for an hour.
fn prepare_bucket() -> anyhow::Result<()> {
    at_store(async |s3| {
        s3.public_bucket(BUCKET).await?;
        s3.ok(
            "PUT",
            &format!("/{BUCKET}/{SMALL_KEY}"),
            Bytes::from(vec![b'x'; 1024]),
            &[("cache-control", "public, max-age=3600")],
        )
        .await?;
        Ok(())
    })
}

/// The ETags of the two uploads and the MD5 of the edge's, read at the store.
fn check_uploads(direct: &str, edge: &str) -> anyhow::Result<(String, String, String)> {
    let (direct, edge) = (format!("/{BUCKET}/{direct}"), format!("/{BUCKET}/{edge}"));
    at_store(async move |s3| {
        let head = s3.ok("HEAD", &direct, Bytes::new(), &[]).await?;
        let get = s3
            .call(s3.signed_request("GET", &edge, Bytes::new(), &[])?, true)
            .await?;
        ensure!(get.status == 200, "GET {edge} at the store: {}", get.status);
        Ok((
            head.etag.unwrap_or_default(),
            get.etag.unwrap_or_default(),
            get.md5.unwrap_or_default(),
        ))
    })
}

fn write_random_file(file: &Path, size: usize) -> anyhow::Result<String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(71);
    let mut out = BufWriter::new(File::create(file)?);
    let mut md5 = Md5::new();
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..size.div_ceil(chunk.len()) {
        rng.fill_bytes(&mut chunk);
        md5.update(&chunk);
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(hex::encode(md5.finalize()))
}

/// `outpost speedtest` from the client's namespace, its table passed through.
fn speedtest(bin: &Path, direct: &str, edge: &str) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(["netns", "exec", CLIENT])
        .arg(bin)
        .args(["speedtest", "--direct", direct, "--edge", edge])
        .args(["--bucket", BUCKET, "--sizes-mib", "1,16"])
        .env("AWS_ACCESS_KEY_ID", common::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", common::SECRET_KEY)
        .env("RUST_LOG", "warn")
        .output()
        .context("running outpost speedtest")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "outpost speedtest failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in stdout.lines().filter(|l| l.starts_with('|')) {
        println!("{line}");
    }
    println!();
    Ok(())
}

/// `aws s3 cp FILE s3://BUCKET/KEY` from the client's namespace; returns the wall time.
fn aws_cp(aws: &Path, endpoint: &str, file: &Path, key: &str) -> anyhow::Result<Duration> {
    let config = file.with_file_name("aws-config");
    let started = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", CLIENT])
        .arg(aws)
        .args(["--endpoint-url", endpoint, "--only-show-errors", "s3", "cp"])
        .arg(file)
        .arg(format!("s3://{BUCKET}/{key}"))
        .env("AWS_ACCESS_KEY_ID", common::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", common::SECRET_KEY)
        .env("AWS_DEFAULT_REGION", common::REGION)
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &config)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .output()
        .context("running aws s3 cp")?;
    let took = started.elapsed();
    if !out.status.success() {
        bail!(
            "aws s3 cp via {endpoint} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}

/// The first-byte table of 1 KiB GETs, direct and as edge hits, on new and reused connections:
/// plain HTTP, or TLS with `tls` (the servers' TLS listeners). Prints the rows and the speed-ups.
fn first_byte_rows(samples: usize, tls: Option<Arc<rustls::ClientConfig>>) -> anyhow::Result<()> {
    let over = if tls.is_some() { " over TLS" } else { "" };
    let (store_port, edge_port) = match tls {
        Some(_) => (STORE_TLS_PORT, EDGE_TLS_PORT),
        None => (STORE_PORT, EDGE_PORT),
    };
    println!("| 1 KiB GET{over}, first byte | connection | p50 ms | p90 ms |");
    println!("|---|---|---|---|");
    let small = format!("/{BUCKET}/{SMALL_KEY}");
    let mut first_bytes = in_netns(
        CLIENT,
        move || -> anyhow::Result<Vec<(String, Vec<f64>)>> {
            let tls = tls.as_ref();
            let store = (CLIENT_STORE.1, store_port);
            let edge = (CLIENT_EDGE.1, edge_port);
            // The first GET through the edge fills its cache; every measured one is a hit.
            get_first_byte(&mut connect(edge, tls)?, edge, &small)?;
            let mut rows = Vec::new();
            for (via, target) in [("direct", store), ("edge hit", edge)] {
                let new: Vec<f64> = (0..samples)
                    .map(|_| {
                        let t = Instant::now();
                        let mut conn = connect(target, tls)?;
                        let first = get_first_byte(&mut conn, target, &small)?;
                        Ok((first - t).as_secs_f64() * 1e3)
                    })
                    .collect::<anyhow::Result<_>>()?;
                rows.push((format!("{via} | new"), new));
                let mut conn = connect(target, tls)?;
                get_first_byte(&mut conn, target, &small)?;
                let reused: Vec<f64> = (0..samples)
                    .map(|_| {
                        let t = Instant::now();
                        let first = get_first_byte(&mut conn, target, &small)?;
                        Ok((first - t).as_secs_f64() * 1e3)
                    })
                    .collect::<anyhow::Result<_>>()?;
                rows.push((format!("{via} | reused"), reused));
            }
            Ok(rows)
        },
    )?;
    for (row, ms) in &mut first_bytes {
        ms.sort_by(f64::total_cmp);
        println!(
            "| {row} | {:.1} | {:.1} |",
            percentile(ms, 50),
            percentile(ms, 90)
        );
    }
    let p50 = |row: &str| {
        let (_, ms) = first_bytes.iter().find(|(r, _)| r == row).unwrap();
        percentile(ms, 50)
    };
    println!(
        "\nfirst-byte speed-up of an edge hit{over} (p50): new connections {:.1}x, reused {:.1}x\n",
        p50("direct | new") / p50("edge hit | new"),
        p50("direct | reused") / p50("edge hit | reused"),
    );
    Ok(())
}

/// A byte stream to a server: plain TCP, or TLS over it.
trait Conn: Read + Write {}
impl<T: Read + Write> Conn for T {}

/// A connection to `target`, TLS with `tls`. The TLS handshake happens on the first write,
/// so a first byte timed from before this call includes it.
fn connect(
    target: (Ipv4Addr, u16),
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> anyhow::Result<Box<dyn Conn>> {
    let conn = TcpStream::connect(target).with_context(|| format!("connecting to {target:?}"))?;
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let Some(config) = tls else {
        return Ok(Box::new(conn));
    };
    let name = ServerName::from(IpAddr::V4(target.0));
    let client = rustls::ClientConnection::new(Arc::clone(config), name)?;
    Ok(Box::new(rustls::StreamOwned::new(client, conn)))
}

/// The store's TLS handshakes so far, (full, resumed), read on its plain loopback listener.
fn store_handshakes() -> anyhow::Result<(u64, u64)> {
    let text = in_netns(STORE, || -> anyhow::Result<String> {
        let mut conn = TcpStream::connect((Ipv4Addr::LOCALHOST, STORE_PORT))?;
        conn.write_all(
            b"GET /_outpost/metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )?;
        let mut text = String::new();
        conn.read_to_string(&mut text)?;
        Ok(text)
    })?;
    let count = |resumed| {
        metric_sum(
            &text,
            "outpost_s3_tls_handshakes_total",
            &[("resumed", resumed)],
        ) as u64
    };
    Ok((count("false"), count("true")))
}

/// `outpost KIND` in `netns` with TLS (`ca`'s certificate) on `ports.0`, plain HTTP on
/// `ports.1`, and `more` arguments.
fn spawn_server(
    netns: &str,
    bin: &Path,
    kind: &str,
    ca: &LocalCa,
    ports: (u16, u16),
    more: &[&str],
) -> anyhow::Result<Killed> {
    let (tls, plain) = (
        format!("0.0.0.0:{}", ports.0),
        format!("0.0.0.0:{}", ports.1),
    );
    let mut args = vec![
        "--listen",
        &tls,
        "--http-listen",
        &plain,
        "--tls-cert",
        path(&ca.files.cert),
        "--tls-key",
        path(&ca.files.key),
    ];
    args.extend_from_slice(more);
    let (child, _) = spawn_outpost_in(Some(netns), bin, kind, &args)?;
    Ok(Killed(child))
}

/// Sends one keep-alive GET and reads the whole answer (so the connection can carry the next
/// request); returns when its first byte arrived.
fn get_first_byte(
    conn: &mut dyn Conn,
    target: (Ipv4Addr, u16),
    path: &str,
) -> anyhow::Result<Instant> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: outpost-wan-bench\r\n\r\n",
        target.0, target.1
    );
    conn.write_all(request.as_bytes())?;
    let mut buf = vec![0u8; 16 << 10];
    let mut have = 0;
    let mut first_byte = None;
    let head_end = loop {
        let n = conn.read(&mut buf[have..])?;
        ensure!(n > 0, "connection closed before the answer");
        first_byte.get_or_insert_with(Instant::now);
        have += n;
        if let Some(i) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        ensure!(have < buf.len(), "answer head too large");
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    ensure!(
        head.starts_with("http/1.1 200"),
        "GET {path}: {}",
        head.lines().next().unwrap_or("")
    );
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .context("no content-length")?
        .trim()
        .parse()?;
    let mut body = have - head_end;
    while body < length {
        let n = conn.read(&mut buf)?;
        ensure!(n > 0, "connection closed in the body");
        body += n;
    }
    Ok(first_byte.expect("read at least once"))
}

fn percentile(sorted: &[f64], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// aws-cli from PyPI in the venv the compatibility script uses.
fn ensure_aws_cli() -> anyhow::Result<PathBuf> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-compat");
    let aws = venv.join("bin/aws");
    if !aws.exists() {
        let run = |cmd: &mut Command| -> anyhow::Result<()> {
            ensure!(cmd.status()?.success(), "{cmd:?} failed");
            Ok(())
        };
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        run(Command::new(venv.join("bin/python"))
            .args(["-m", "pip", "install", "--quiet", "awscli"]))?;
    }
    Ok(aws)
}
