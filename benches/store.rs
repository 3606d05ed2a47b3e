//! Store benchmark: PUT and GET of 4 KiB, 1 MiB and 64 MiB objects at concurrency 1 and 16
//! against a real `outpost store` process on 127.0.0.1, side by side with a peer S3 server,
//! `s3s-fs` (crates.io, installed by the bench into `target/tmp/s3s-fs` if missing), serving the
//! same sizes and concurrency from the same disk, and the raw disk write rate (sequential,
//! fsync'd) measured in the same run for reference. s3s-fs does not fsync: its PUTs are
//! acknowledged from the page cache, ours only once data and index are durable.
//!
//! Run with `cargo bench --bench store` (optimised build of the bench and of the server binary).
//! The method and the latest figures are written up in `BENCHMARKS.md`.
//!
//! ```text
//!   disk reference ── 3 rounds of: 1 GiB in 8 MiB writes + one fsync; 16 × 64 MiB files, each
//!                     write + fsync + rename + dir fsync (the per-object pattern), and the
//!                     per-object pattern again right before and after each 64 MiB PUT cell;
//!                     and MD5 on one core (the ETag hash bounds a single PUT stream)
//!   for each size (4 KiB, 1 MiB, 64 MiB), for each server (outpost, s3s-fs; who goes first
//!   alternates by size): a fresh server on a fresh data dir
//!        PUT c1 → PUT c16 → GET c1 → GET c16   (GETs read the keys just written: page-cached)
//!        per cell: ops, objects/s, MiB/s, p50/p99 latency, CPU of server and client,
//!                  server peak RSS (VmHWM reset before the cell), VmRSS after the cell
//! ```
//!
//! Honesty notes, printed with the figures too:
//! - client and server share the machine's cores (and the client's signing and body handling
//!   costs CPU the server would otherwise have); the CPU columns show who used what;
//! - bodies are sent with `x-amz-content-sha256: UNSIGNED-PAYLOAD`, so the client never hashes;
//!   the server still computes MD5 for the ETag;
//! - load is bounded per cell by an op count and a time budget; only 127.0.0.1 is targeted.
//!
//! Knobs (environment): `OUTPOST_BENCH_SIZES=4k,1m,64m` to run a subset of sizes,
//! `OUTPOST_BENCH_SKIP_DISK=1` to skip the disk reference, `OUTPOST_BENCH_BIN=path` to measure
//! another build of `outpost` (same command-line contract), `OUTPOST_BENCH_LOG` for the server's
//! `RUST_LOG` (default `warn`), `OUTPOST_BENCH_S3S_FS=path` to use an s3s-fs binary already
//! built, `OUTPOST_BENCH_PEER=none` to measure outpost alone.

#[path = "common/mod.rs"]
mod common;

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use common::{ACCESS_KEY, S3, SECRET_KEY, SEND_CHUNK, md5_hex, spawn_outpost};
use md5::{Digest, Md5};
use rand::{RngCore, SeedableRng};

const BUCKET: &str = "bench";

/// Seed of the body buffer: fixed, so every run sends the same bytes.
const SEED: u64 = 0x6f75_7470_6f73_7421;

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Request bodies are slices of this buffer (shared `Bytes`, never copied per request).
const BODY_BUF_LEN: usize = 80 * MIB;

/// Disk reference: total written, write size, and the per-file size of the "per object" variant.
const DISK_TOTAL: usize = 1 << 30;
const DISK_WRITE: usize = 8 * MIB;
const DISK_FILE: usize = 64 * MIB;
const DISK_REPEATS: usize = 3;

/// One object size and how much load each of its cells may apply.
struct SizePlan {
    label: &'static str,
    size: usize,
    /// Max ops per cell at concurrency 1 and 16.
    ops_c1: usize,
    ops_c16: usize,
    /// A cell stops starting new ops after this long.
    budget: Duration,
}

const PLANS: &[SizePlan] = &[
    SizePlan {
        label: "4k",
        size: 4 * KIB,
        ops_c1: 5000,
        ops_c16: 5000,
        budget: Duration::from_secs(10),
    },
    SizePlan {
        label: "1m",
        size: MIB,
        ops_c1: 1000,
        ops_c16: 1000,
        budget: Duration::from_secs(20),
    },
    SizePlan {
        label: "64m",
        size: 64 * MIB,
        ops_c1: 12,
        ops_c16: 32,
        budget: Duration::from_secs(40),
    },
];

const CONCURRENCY: &[usize] = &[1, 16];

/// The peer the store is compared with, and the version that builds with this toolchain.
const S3S_FS_VERSION: &str = "0.14.1";

/// The servers measured side by side.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Peer {
    Outpost,
    S3sFs,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Outpost => "outpost",
            Peer::S3sFs => "s3s-fs",
        }
    }
}

/// The binaries to run: outpost always, s3s-fs unless `OUTPOST_BENCH_PEER=none`.
struct Bins {
    outpost: PathBuf,
    s3s_fs: Option<PathBuf>,
}

impl Bins {
    fn peers(&self) -> Vec<Peer> {
        let mut peers = vec![Peer::Outpost];
        peers.extend(self.s3s_fs.as_ref().map(|_| Peer::S3sFs));
        peers
    }
}

/// `OUTPOST_BENCH_S3S_FS`, else `target/tmp/s3s-fs/bin/s3s-fs`, installed there with
/// `cargo install` (from crates.io, like any dependency) when missing.
fn s3s_fs_bin() -> anyhow::Result<Option<PathBuf>> {
    if std::env::var("OUTPOST_BENCH_PEER").is_ok_and(|v| v == "none") {
        return Ok(None);
    }
    if let Some(path) = std::env::var_os("OUTPOST_BENCH_S3S_FS") {
        return Ok(Some(PathBuf::from(path)));
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("s3s-fs");
    let bin = root.join("bin").join("s3s-fs");
    if !bin.exists() {
        println!(
            "installing s3s-fs {S3S_FS_VERSION} into {} ...",
            root.display()
        );
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["install", "s3s-fs", "--version", S3S_FS_VERSION])
            .args(["--features", "binary", "--locked", "--root"])
            .arg(&root)
            .status()
            .context("running cargo install s3s-fs")?;
        anyhow::ensure!(status.success(), "cargo install s3s-fs failed: {status}");
    }
    Ok(Some(bin))
}

/// s3s-fs on a free loopback port with the bench's credentials, serving `data_dir`; ready once
/// it accepts connections.
fn spawn_s3s_fs(bin: &Path, data_dir: &Path) -> anyhow::Result<(Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))?;
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&addr).is_err() {
        if let Some(status) = child.try_wait()? {
            bail!("s3s-fs exited before listening ({status})");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("s3s-fs did not listen on {addr} within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((child, addr))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Put,
    Get,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Put => "PUT",
            Op::Get => "GET",
        }
    }
}

/// One (op, size, concurrency) measurement.
struct Cell {
    peer: Peer,
    op: Op,
    size: usize,
    conc: usize,
    ops: usize,
    wall: Duration,
    lat: Vec<Duration>,
    /// (user, system)
    server_cpu: (Duration, Duration),
    client_cpu: Duration,
    /// Busy CPU time of the whole machine (all cores, including steal) over the cell.
    machine_busy: Duration,
    /// Server VmHWM over the cell (reset before it when the kernel allows), KiB.
    server_peak_kib: u64,
    /// Whether `server_peak_kib` is per cell (reset worked) or since process start.
    peak_is_per_cell: bool,
    server_rss_after_kib: u64,
    /// Set when the cell was aborted.
    failure: Option<String>,
}

impl Cell {
    fn objects_per_sec(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64()
    }
    fn mib_per_sec(&self) -> f64 {
        (self.ops * self.size) as f64 / MIB as f64 / self.wall.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> Duration {
        percentile(&self.lat, p)
    }
}

/// Nearest-rank percentile of an unsorted sample.
fn percentile(sample: &[Duration], p: f64) -> Duration {
    if sample.is_empty() {
        return Duration::ZERO;
    }
    let mut v = sample.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

/// A running server child (`outpost store` or its peer); killed and reaped on drop.
struct Server {
    peer: Peer,
    child: Child,
    pid: u32,
    /// `127.0.0.1:PORT`
    addr: String,
}

impl Server {
    fn start(peer: Peer, bins: &Bins, data_dir: &Path) -> anyhow::Result<Server> {
        let data = data_dir.to_str().context("utf-8 data dir")?;
        let (child, addr) = match (peer, &bins.s3s_fs) {
            (Peer::Outpost, _) => spawn_outpost(
                &bins.outpost,
                "store",
                &["--listen", "127.0.0.1:0", "--data", data],
            )?,
            (Peer::S3sFs, Some(bin)) => spawn_s3s_fs(bin, data_dir)?,
            (Peer::S3sFs, None) => bail!("no s3s-fs binary"),
        };
        Ok(Server {
            peer,
            pid: child.id(),
            child,
            addr,
        })
    }

    fn status(&self) -> ProcStatus {
        ProcStatus::read(self.pid)
    }

    /// Reset the kernel's peak-RSS mark to the current RSS (`clear_refs` value 5, Linux ≥ 4.0).
    fn reset_peak(&self) -> bool {
        OpenOptions::new()
            .write(true)
            .open(format!("/proc/{}/clear_refs", self.pid))
            .and_then(|mut f| f.write_all(b"5"))
            .is_ok()
    }

    fn cpu(&self) -> (Duration, Duration) {
        cpu_split(&self.pid.to_string())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default, Clone, Copy)]
struct ProcStatus {
    hwm_kib: u64,
    rss_kib: u64,
}

impl ProcStatus {
    fn read(pid: u32) -> ProcStatus {
        Self::read_path(&format!("/proc/{pid}/status"))
    }
    fn read_self() -> ProcStatus {
        Self::read_path("/proc/self/status")
    }
    fn read_path(path: &str) -> ProcStatus {
        let text = fs::read_to_string(path).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        ProcStatus {
            hwm_kib: field("VmHWM:"),
            rss_kib: field("VmRSS:"),
        }
    }
}

/// User + system CPU time of a process (`pid` or `self`) from `/proc/<pid>/stat`.
fn cpu_time(pid: &str) -> Duration {
    let (user, sys) = cpu_split(pid);
    user + sys
}

/// Busy time of all CPUs together (everything but idle and iowait; steal included), from the
/// `cpu` line of `/proc/stat`. Minus the server and the client, it shows what else ran.
fn machine_busy() -> Duration {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, t)| t)
        .sum();
    Duration::from_secs_f64(busy as f64 / clk_tck() as f64)
}

/// (user, system) CPU time of a process from `/proc/<pid>/stat`.
fn cpu_split(pid: &str) -> (Duration, Duration) {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14, stime 15.
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Duration {
        let ticks: u64 = f.get(i).and_then(|s| s.parse().ok()).unwrap_or(0);
        Duration::from_secs_f64(ticks as f64 / clk_tck() as f64)
    };
    (field(11), field(12))
}

fn clk_tck() -> u64 {
    static TCK: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

fn key(label: &str, conc: usize, i: usize) -> String {
    format!("/{BUCKET}/{label}/c{conc}/{i:06}")
}

// ---------------------------------------------------------------------------------------------
// Cells
// ---------------------------------------------------------------------------------------------

/// Run one cell: `conc` workers take op numbers until `max_ops` are taken or `budget` has passed.
/// A PUT of op `i` writes key `i`; a GET of op `i` reads `keys[i % keys.len()]`.
async fn run_cell(
    s3: &Arc<S3>,
    server: &Server,
    plan: &SizePlan,
    op: Op,
    conc: usize,
    max_ops: usize,
    get_keys: Arc<Vec<String>>,
) -> Cell {
    let peak_is_per_cell = server.reset_peak();
    let cpu0 = (server.cpu(), cpu_time("self"));
    let busy0 = machine_busy();
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let failure = Arc::new(std::sync::Mutex::new(None::<String>));
    let start = Instant::now();
    let deadline = start + plan.budget;
    let mut workers = Vec::new();
    for _ in 0..conc {
        let (s3, next, stop, failure, get_keys) = (
            s3.clone(),
            next.clone(),
            stop.clone(),
            failure.clone(),
            get_keys.clone(),
        );
        let (label, size) = (plan.label, plan.size);
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= max_ops {
                    break;
                }
                let t0 = Instant::now();
                let result = match op {
                    Op::Put => {
                        let body = s3.body_for(size, i);
                        match s3.signed_request("PUT", &key(label, conc, i), body, &[]) {
                            Ok(req) => s3.call(req, false).await,
                            Err(e) => Err(e),
                        }
                    }
                    Op::Get => {
                        let k = &get_keys[i % get_keys.len()];
                        match s3.signed_request("GET", k, Bytes::new(), &[]) {
                            Ok(req) => s3.call(req, false).await,
                            Err(e) => Err(e),
                        }
                    }
                };
                let elapsed = t0.elapsed();
                let problem = match result {
                    Err(e) => Some(format!("op {i}: {e:#}")),
                    Ok(out) if !(200..300).contains(&out.status) => Some(format!(
                        "op {i}: HTTP {}: {}",
                        out.status,
                        out.error_body.trim()
                    )),
                    Ok(out) if op == Op::Get && out.bytes != size as u64 => Some(format!(
                        "op {i}: GET returned {} bytes, expected {size}",
                        out.bytes
                    )),
                    Ok(_) => None,
                };
                if let Some(p) = problem {
                    stop.store(true, Ordering::Relaxed);
                    failure.lock().unwrap().get_or_insert(p);
                    break;
                }
                lat.push(elapsed);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for w in workers {
        match w.await {
            Ok(l) => lat.extend(l),
            Err(e) => {
                failure
                    .lock()
                    .unwrap()
                    .get_or_insert(format!("worker panicked: {e}"));
            }
        }
    }
    let wall = start.elapsed();
    let cpu1 = (server.cpu(), cpu_time("self"));
    let busy1 = machine_busy();
    let st = server.status();
    let failure = failure.lock().unwrap().take();
    Cell {
        peer: server.peer,
        op,
        size: plan.size,
        conc,
        ops: lat.len(),
        wall,
        lat,
        server_cpu: (
            cpu1.0.0.saturating_sub(cpu0.0.0),
            cpu1.0.1.saturating_sub(cpu0.0.1),
        ),
        client_cpu: cpu1.1.saturating_sub(cpu0.1),
        machine_busy: busy1.saturating_sub(busy0),
        server_peak_kib: st.hwm_kib,
        peak_is_per_cell,
        server_rss_after_kib: st.rss_kib,
        failure,
    }
}

/// Outside the timed loop: the first PUT's ETag must be the MD5 of what we sent, and a sampled
/// GET must return exactly those bytes (MD5 compared), so errors cannot pass as speed.
async fn verify_sample(s3: &S3, plan: &SizePlan, conc: usize) -> anyhow::Result<()> {
    let i = 0;
    let expected = md5_hex(&s3.body_for(plan.size, i));
    let k = key(plan.label, conc, i);
    let out = s3
        .call(s3.signed_request("HEAD", &k, Bytes::new(), &[])?, false)
        .await?;
    if out.status != 200 {
        bail!("HEAD {k} answered {}", out.status);
    }
    if out.etag.as_deref() != Some(expected.as_str()) {
        bail!("ETag of {k} is {:?}, expected MD5 {expected}", out.etag);
    }
    let out = s3
        .call(s3.signed_request("GET", &k, Bytes::new(), &[])?, true)
        .await?;
    if out.status != 200 || out.md5.as_deref() != Some(expected.as_str()) {
        bail!(
            "GET {k}: status {}, {} bytes, md5 {:?}, expected {expected} ({} bytes)",
            out.status,
            out.bytes,
            out.md5,
            plan.size
        );
    }
    Ok(())
}

/// What the four cells of one size on one server gave.
struct SizeOutcome {
    cells: Vec<Cell>,
    /// (conc, MiB/s of the per-object disk pattern right before and right after that 64 MiB
    /// PUT cell); outpost only, whose PUTs fsync.
    adjacent: Vec<(usize, f64, f64)>,
    failed: bool,
}

/// PUT c1 → PUT c16 → GET c1 → GET c16 of one size on one fresh server, each row printed as it
/// completes.
async fn run_size(
    s3: &Arc<S3>,
    server: &Server,
    plan: &SizePlan,
    data: &Bytes,
    disk_dir: &Path,
    skip_disk: bool,
) -> anyhow::Result<SizeOutcome> {
    let mut out = SizeOutcome {
        cells: Vec::new(),
        adjacent: Vec::new(),
        failed: false,
    };
    let mut written: Vec<String> = Vec::new();
    let mut put_failed = false;
    for op in [Op::Put, Op::Get] {
        for &conc in CONCURRENCY {
            if op == Op::Get && (put_failed || written.is_empty()) {
                println!(
                    "| {} | GET | {} | {conc} | 0 | SKIPPED: no objects were written |",
                    server.peer.name(),
                    size_label(plan.size)
                );
                continue;
            }
            let max_ops = if conc == 1 { plan.ops_c1 } else { plan.ops_c16 };
            let bracket = op == Op::Put
                && plan.size == DISK_FILE
                && !skip_disk
                && server.peer == Peer::Outpost;
            let files = max_ops.min(DISK_TOTAL / DISK_FILE);
            let before = if bracket {
                disk_files(disk_dir, data, files, DISK_FILE)?
            } else {
                0.0
            };
            let keys = Arc::new(written.clone());
            let cell = run_cell(s3, server, plan, op, conc, max_ops, keys).await;
            if bracket {
                out.adjacent
                    .push((conc, before, disk_files(disk_dir, data, files, DISK_FILE)?));
            }
            println!("{}", row(&cell));
            if op == Op::Put {
                written.extend((0..cell.ops).map(|i| key(plan.label, conc, i)));
                if cell.failure.is_none()
                    && cell.ops > 0
                    && let Err(e) = verify_sample(s3, plan, conc).await
                {
                    println!(
                        "| {} | PUT | {} | {conc} | - | VERIFY FAILED: {e:#} |",
                        server.peer.name(),
                        size_label(plan.size)
                    );
                    put_failed = true;
                    out.failed = true;
                }
            }
            if cell.failure.is_some() {
                out.failed = true;
                put_failed |= op == Op::Put;
            }
            out.cells.push(cell);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Raw disk reference
// ---------------------------------------------------------------------------------------------

/// Sequential: `total` bytes in `DISK_WRITE` writes to one new file, one fsync at the end
/// (the time includes the fsync). MiB/s.
fn disk_seq(dir: &Path, data: &[u8], total: usize) -> anyhow::Result<f64> {
    fs::create_dir_all(dir)?;
    let path = dir.join("seq.bin");
    let t = Instant::now();
    {
        let mut f = File::create(&path)?;
        for _ in 0..total / DISK_WRITE {
            f.write_all(&data[..DISK_WRITE])?;
        }
        f.sync_all()?;
    }
    let took = t.elapsed();
    fs::remove_file(&path)?;
    Ok((total / MIB) as f64 / took.as_secs_f64())
}

/// Per object, as a durable blob write does it: `files` new files of `file_size` bytes, each
/// written in `DISK_WRITE` writes, fsync'd, renamed into place, and the directory fsync'd. MiB/s.
fn disk_files(dir: &Path, data: &[u8], files: usize, file_size: usize) -> anyhow::Result<f64> {
    fs::create_dir_all(dir)?;
    let dirf = File::open(dir)?;
    let t = Instant::now();
    for n in 0..files {
        let staging = dir.join(format!("staging-{n}"));
        let mut f = File::create(&staging)?;
        for _ in 0..file_size / DISK_WRITE {
            f.write_all(&data[..DISK_WRITE])?;
        }
        f.sync_all()?;
        drop(f);
        fs::rename(&staging, dir.join(format!("blob-{n}")))?;
        dirf.sync_all()?;
    }
    let took = t.elapsed();
    for n in 0..files {
        fs::remove_file(dir.join(format!("blob-{n}")))?;
    }
    Ok((files * file_size / MIB) as f64 / took.as_secs_f64())
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &x| {
        (lo.min(x), hi.max(x))
    })
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

fn size_label(size: usize) -> String {
    if size >= MIB {
        format!("{} MiB", size / MIB)
    } else {
        format!("{} KiB", size / KIB)
    }
}

fn ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn mib_kib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

const HEADER: &str = "| server | op | size | conc | ops | s | objects/s | MiB/s | p50 ms | p99 ms | srv CPU (usr+sys) | cli CPU | other CPU | srv peak RSS MiB | srv RSS after MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

fn row(c: &Cell) -> String {
    if let Some(f) = &c.failure {
        return format!(
            "| {} | {} | {} | {} | {} | ABORTED: {} |",
            c.peer.name(),
            c.op.name(),
            size_label(c.size),
            c.conc,
            c.ops,
            f.replace('|', "/").replace('\n', " ")
        );
    }
    let share = |d: Duration| 100.0 * d.as_secs_f64() / c.wall.as_secs_f64();
    let pct = |d: Duration| format!("{:.0}%", share(d));
    let (usr, sys) = c.server_cpu;
    let server_cpu = format!(
        "{:.0}% ({:.0}+{:.0})",
        share(usr + sys),
        share(usr),
        share(sys)
    );
    format!(
        "| {} | {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {}{} | {} |",
        c.peer.name(),
        c.op.name(),
        size_label(c.size),
        c.conc,
        c.ops,
        c.wall.as_secs_f64(),
        c.objects_per_sec(),
        c.mib_per_sec(),
        ms(c.percentile(50.0)),
        ms(c.percentile(99.0)),
        server_cpu,
        pct(c.client_cpu),
        pct(c.machine_busy.saturating_sub(usr + sys + c.client_cpu)),
        mib_kib(c.server_peak_kib),
        if c.peak_is_per_cell {
            ""
        } else {
            " (since start)"
        },
        mib_kib(c.server_rss_after_kib),
    )
}

/// Outpost against s3s-fs, cell by cell: throughput ratio against the target (PUT ≥ 1.2×,
/// GET ≥ 2×) and each server's peak RSS.
fn side_by_side(cells: &[Cell]) {
    println!("### Side by side with s3s-fs\n");
    println!(
        "| op | size | conc | outpost MiB/s | s3s-fs MiB/s | outpost ÷ s3s-fs | target | outpost peak RSS MiB | s3s-fs peak RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let ok = |c: &&Cell| c.failure.is_none() && c.ops > 0;
    for ours in cells.iter().filter(|c| c.peer == Peer::Outpost).filter(ok) {
        let Some(theirs) = cells
            .iter()
            .filter(|c| c.peer == Peer::S3sFs && c.op == ours.op)
            .filter(|c| c.size == ours.size && c.conc == ours.conc)
            .find(ok)
        else {
            continue;
        };
        let ratio = ours.mib_per_sec() / theirs.mib_per_sec();
        let target = match ours.op {
            Op::Put => 1.2,
            Op::Get => 2.0,
        };
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {ratio:.2}× | ≥ {target}×: {} | {} | {} |",
            ours.op.name(),
            size_label(ours.size),
            ours.conc,
            ours.mib_per_sec(),
            theirs.mib_per_sec(),
            if ratio >= target { "met" } else { "**missed**" },
            mib_kib(ours.server_peak_kib),
            mib_kib(theirs.server_peak_kib),
        );
    }
    println!();
}

// ---------------------------------------------------------------------------------------------

fn selected_plans() -> Vec<&'static SizePlan> {
    match std::env::var("OUTPOST_BENCH_SIZES") {
        Ok(list) => {
            let want: Vec<String> = list
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect();
            PLANS
                .iter()
                .filter(|p| want.iter().any(|w| w == p.label))
                .collect()
        }
        Err(_) => PLANS.iter().collect(),
    }
}

fn machine() -> String {
    let sh = |cmd: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    format!(
        "{} CPUs ({}), {} memory, kernel {}",
        sh("nproc"),
        sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'"),
        sh("free -h | awk '/Mem:/ {print $2}'"),
        sh("uname -r"),
    )
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    // Cargo builds `outpost` with the bench profile (optimised) and passes its path.
    let bins = Bins {
        outpost: common::outpost_bin(),
        s3s_fs: s3s_fs_bin()?,
    };
    let bin = &bins.outpost;
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-store");
    fs::create_dir_all(&work)?;

    println!("# Outpost store benchmark\n");
    println!("server binary: {}", bin.display());
    match &bins.s3s_fs {
        Some(peer) => println!(
            "peer: s3s-fs {S3S_FS_VERSION} ({}), same client, sizes, concurrency and filesystem; it does not fsync",
            peer.display()
        ),
        None => println!("peer: none (OUTPOST_BENCH_PEER=none)"),
    }
    if !bin.components().any(|c| c.as_os_str() == "release") {
        println!(
            "WARNING: the server binary is not under a `release` dir: it may be unoptimised; run with `cargo bench`."
        );
    }
    println!("machine: {}", machine());
    let disk_info = Command::new("df")
        .args(["-h", "--output=source,fstype,size,avail"])
        .arg(&work)
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .nth(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_default();
    println!(
        "work dir: {} on {disk_info} (disk reference and the store's data dir, same filesystem)",
        work.display()
    );
    println!(
        "client: hyper 1 legacy client (keep-alive pool, TCP_NODELAY), SigV4 header auth with UNSIGNED-PAYLOAD, \
         bodies are slices of one {} MiB random buffer sent in {} MiB frames",
        BODY_BUF_LEN / MIB,
        SEND_CHUNK / MIB
    );
    println!(
        "client and server share the same {} cores: the CPU columns are % of one core during the cell: server, bench client, and everything else busy on the machine (kernel writeback, IRQs, other processes).\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    );

    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED);
    let mut buf = vec![0u8; BODY_BUF_LEN];
    rng.fill_bytes(&mut buf);
    let data = Bytes::from(buf);

    // The disk of a virtual machine is noisy (host write-back caching), so the reference is
    // repeated, and measured again right before each 64 MiB PUT cell.
    let skip_disk = std::env::var_os("OUTPOST_BENCH_SKIP_DISK").is_some();
    let disk_dir = work.join("disk");
    let (mut seq, mut per_file) = (Vec::new(), Vec::new());
    if !skip_disk {
        for _ in 0..DISK_REPEATS {
            seq.push(disk_seq(&disk_dir, &data, DISK_TOTAL)?);
            per_file.push(disk_files(
                &disk_dir,
                &data,
                DISK_TOTAL / DISK_FILE,
                DISK_FILE,
            )?);
        }
        println!("## Raw disk reference (same filesystem, measured now, {DISK_REPEATS} rounds)\n");
        let (lo, hi) = min_max(&seq);
        println!(
            "- sequential: {} MiB in {} MiB writes to one file, one fsync: median **{:.0} MiB/s** (min {lo:.0}, max {hi:.0})",
            DISK_TOTAL / MIB,
            DISK_WRITE / MIB,
            median(&seq)
        );
        let (lo, hi) = min_max(&per_file);
        println!(
            "- per object: {} files of {} MiB, each write + fsync + rename + dir fsync: median **{:.0} MiB/s** (min {lo:.0}, max {hi:.0})\n",
            DISK_TOTAL / DISK_FILE,
            DISK_FILE / MIB,
            median(&per_file)
        );
    }
    // CPU reference: the MD5 every PUT must compute for its ETag is inherently sequential per
    // object, so its single-core rate bounds one PUT stream. The store hashes with OpenSSL;
    // s3s-fs with the md-5 crate.
    let rate = |hash: &dyn Fn(&[u8])| {
        let t = Instant::now();
        let rounds = 4;
        for _ in 0..rounds {
            hash(&data[..DISK_FILE]);
        }
        (rounds * DISK_FILE / MIB) as f64 / t.elapsed().as_secs_f64()
    };
    let md5_crate = rate(&|b| {
        std::hint::black_box(Md5::digest(b));
    });
    println!(
        "CPU reference: MD5 on one core (md-5 crate, the store's and s3s-fs's) {md5_crate:.0} MiB/s: the ceiling of a single PUT stream's ETag hashing.\n"
    );
    // (conc, MiB/s of the per-object disk pattern measured right before and right after that
    // 64 MiB PUT cell, with as many files as the cell has ops, at most 16)
    let mut adjacent: Vec<(usize, f64, f64)> = Vec::new();

    let mut cells = Vec::new();
    let mut failed = false;
    for (n, plan) in selected_plans().into_iter().enumerate() {
        println!("## {} objects\n", size_label(plan.size));
        // Alternate who goes first, so neither always gets the cooler disk.
        let mut peers = bins.peers();
        if n % 2 == 1 {
            peers.reverse();
        }
        for peer in peers {
            let data_dir = tempfile::Builder::new().prefix("data-").tempdir_in(&work)?;
            let server = Server::start(peer, &bins, data_dir.path())?;
            let idle = server.status();
            let s3 = Arc::new(S3::new(&server.addr, data.clone()));
            s3.warm(*CONCURRENCY.iter().max().unwrap()).await?;
            s3.ok("PUT", &format!("/{BUCKET}"), Bytes::new(), &[])
                .await?;
            println!(
                "### {} (fresh server pid {}, idle RSS {} MiB)\n",
                peer.name(),
                server.pid,
                mib_kib(idle.rss_kib)
            );
            println!("{HEADER}");
            let outcome = run_size(&s3, &server, plan, &data, &disk_dir, skip_disk).await?;
            failed |= outcome.failed;
            adjacent.extend(outcome.adjacent);
            cells.extend(outcome.cells);
            println!();
            drop(server);
            drop(data_dir);
        }
        for (conc, before, after) in adjacent.iter().filter(|_| plan.size == DISK_FILE) {
            println!(
                "Disk, per-object pattern ({} files), right before outpost's PUT 64 MiB c{conc}: {before:.0} MiB/s, right after: {after:.0} MiB/s  ",
                if *conc == 1 {
                    plan.ops_c1
                } else {
                    plan.ops_c16
                }
                .min(DISK_TOTAL / DISK_FILE)
            );
        }
        if plan.size == DISK_FILE && !adjacent.is_empty() {
            println!();
        }
    }

    println!("## Summary\n");
    let pick = |peer: Peer, op: Op, size: usize, conc: usize| {
        cells.iter().find(|c| {
            c.peer == peer && c.op == op && c.size == size && c.conc == conc && c.failure.is_none()
        })
    };
    if bins.s3s_fs.is_some() {
        side_by_side(&cells);
    }
    if !skip_disk {
        for conc in CONCURRENCY {
            if let Some(c) = pick(Peer::Outpost, Op::Put, DISK_FILE, *conc) {
                let put = c.mib_per_sec();
                let (b, a) = adjacent
                    .iter()
                    .find(|(k, _, _)| k == conc)
                    .map(|(_, b, a)| (*b, *a))
                    .unwrap_or((f64::NAN, f64::NAN));
                let near = (b + a) / 2.0;
                println!(
                    "- PUT 64 MiB c{conc}: {put:.0} MiB/s = {:.0}% of the per-object disk rate measured around it (mean of {b:.0} before and {a:.0} after = {near:.0} MiB/s); \
                     {:.0}% of the median sequential rate ({:.0} MiB/s), {:.0}% of the median per-object rate ({:.0} MiB/s) measured at the start. Target ≥ 80%.",
                    100.0 * put / near,
                    100.0 * put / median(&seq),
                    median(&seq),
                    100.0 * put / median(&per_file),
                    median(&per_file),
                );
            }
        }
    }
    for conc in CONCURRENCY {
        if let Some(c) = pick(Peer::Outpost, Op::Get, 64 * MIB, *conc) {
            println!(
                "- GET 64 MiB (page-cached) c{conc}: {:.0} MiB/s = {:.2} GiB/s; target ≥ 1 GiB/s",
                c.mib_per_sec(),
                c.mib_per_sec() / 1024.0
            );
        }
    }
    // Disk-independent: what a GiB costs the server in CPU (user+system), and so the rate one
    // core could sustain if nothing else limited it.
    for c in cells
        .iter()
        .filter(|c| c.failure.is_none() && c.size == DISK_FILE && c.ops > 0)
    {
        let gib = (c.ops * c.size) as f64 / (1u64 << 30) as f64;
        let (usr, sys) = c.server_cpu;
        let per_gib = (usr + sys).as_secs_f64() / gib;
        println!(
            "- {} server CPU for {} 64 MiB c{}: {per_gib:.2} core-seconds per GiB ({:.2} user + {:.2} system), i.e. ≤ {:.0} MiB/s per core",
            c.peer.name(),
            c.op.name(),
            c.conc,
            usr.as_secs_f64() / gib,
            sys.as_secs_f64() / gib,
            1024.0 / per_gib
        );
    }
    for peer in bins.peers() {
        let peak = cells
            .iter()
            .filter(|c| c.peer == peer && c.failure.is_none())
            .max_by_key(|c| c.server_peak_kib);
        if let Some(c) = peak {
            println!(
                "- {} highest server peak RSS: {} MiB ({} {} c{})",
                peer.name(),
                mib_kib(c.server_peak_kib),
                c.op.name(),
                size_label(c.size),
                c.conc
            );
        }
    }
    let me = ProcStatus::read_self();
    println!(
        "- bench client peak RSS: {} MiB (includes the {} MiB body buffer)",
        mib_kib(me.hwm_kib),
        BODY_BUF_LEN / MIB
    );
    let _ = fs::remove_dir_all(work.join("disk"));
    if failed {
        bail!("some cells failed; see ABORTED / VERIFY FAILED rows above");
    }
    Ok(())
}
