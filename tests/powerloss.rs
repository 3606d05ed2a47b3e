//! POWER-LOSS TEST. `kill -9` (tests/store/crash.rs) proves only that the store survives its own
//! process dying: the kernel still writes every unsynced page out. Here the store's data dir is
//! on a FUSE filesystem in this process ([`lazyfs`]) that keeps only what was fsynced, so a
//! power cut really loses what the store did not sync (file contents since their last fsync,
//! directory entries since their directory's last fsync).
//!
//! Five rounds, each: mount the disk left by the previous round, start `outpost store` on it,
//! drive concurrent clients (small and multi-MiB PUTs, multipart uploads, overwrites, deletes of
//! each client's own keys, so every key has one linear history), cut the power at a seeded
//! random operation of the filesystem, SIGKILL the store, write out what the disk would hold,
//! and restart a store there. Rounds alternate between losing all unsynced changes and keeping
//! a torn prefix of them. Then:
//! - the store starts at all (redb opens the index);
//! - every key holds exactly the last acknowledged version (PUT or Complete, byte-identical by
//!   SHA-256), or is absent if its last acknowledged operation was a delete; or it holds the
//!   result of the one operation that was in flight at the cut; never anything else, so never
//!   an older version, a partial or a mixed body;
//! - acknowledged parts of an upload not yet completed are still listed;
//! - the listing agrees with the GETs (keys, sizes, ETags).
//!
//! Skips (and passes) where FUSE cannot be mounted. `OUTPOST_POWERLOSS_SEED=N` replays a run.

#[allow(unused_imports)]
#[path = "common/mod.rs"]
mod common;
#[path = "powerloss/lazyfs.rs"]
mod lazyfs;

use std::collections::{BTreeMap, HashMap};
use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::*;
use lazyfs::{Disk, Unsynced};

const ROUNDS: u64 = 6;
const CLIENTS: usize = 4;
const KEYS_PER_CLIENT: usize = 3;
/// Operations a client sends per round at most (the cut usually falls before).
const OPS_PER_CLIENT: usize = 12;
/// The cut falls on one of this many filesystem operations after the load starts; a round's
/// full load is about that many, so some cuts fall after it (nothing in flight).
const CUT_WITHIN_OPS: u64 = 1400;
const BUCKET: &str = "powerloss";

type Digest = [u8; 32];

/// One key's history, as its only client saw it.
#[derive(Default)]
struct KeyState {
    /// What an acknowledged operation left (None: absent).
    committed: Option<Digest>,
    /// The result of the operation sent and not answered when the power went.
    in_flight: Option<Option<Digest>>,
    /// Every body ever written to the key, for diagnostics.
    versions: HashMap<Digest, String>,
    /// Parts acknowledged for an upload whose Complete was not: (upload id, [(part, ETag)]).
    open_upload: Option<(String, Vec<(i32, String)>)>,
    next_version: u32,
}

#[derive(Default, Clone, Copy)]
struct Tally {
    acked: usize,
    unanswered: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_power_cuts() {
    if let Some(why) = lazyfs::unavailable() {
        println!("SKIPPED acknowledged_writes_survive_power_cuts: FUSE cannot be mounted ({why})");
        return;
    }
    let seed = std::env::var("OUTPOST_POWERLOSS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_201);
    println!("power-loss seed {seed} (replay with OUTPOST_POWERLOSS_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let work = tempfile::Builder::new()
        .prefix("outpost-powerloss-")
        .tempdir()
        .unwrap();
    let mut disk_dir = work.path().join("disk0");
    std::fs::create_dir(&disk_dir).unwrap();
    let mut keys: Vec<BTreeMap<String, KeyState>> = (0..CLIENTS)
        .map(|c| {
            (0..KEYS_PER_CLIENT)
                .map(|k| (format!("client{c}/key{k}"), KeyState::default()))
                .collect()
        })
        .collect();
    let mut tally = Tally::default();
    let started = Instant::now();

    for round in 1..=ROUNDS {
        let unsynced = if round % 2 == 1 {
            Unsynced::Lost
        } else {
            Unsynced::TornPrefix(rng.random())
        };
        let mountpoint = work.path().join(format!("mnt{round}"));
        std::fs::create_dir(&mountpoint).unwrap();
        let disk = match Disk::mount(&disk_dir, &mountpoint) {
            Ok(disk) => Arc::new(disk),
            // Not allowed to mount here (no CAP_SYS_ADMIN, no fusermount3): skip, as above.
            Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::NotFound) => {
                println!("SKIPPED acknowledged_writes_survive_power_cuts: mount refused ({e})");
                return;
            }
            Err(e) => panic!("mounting the FUSE disk: {e}"),
        };
        let data = mountpoint.join("data");
        let mut store = TestStore::start_with(StoreOptions::default().data_dir(&data));
        let s3 = store.client();
        if round == 1 {
            s3.create_bucket()
                .bucket(BUCKET)
                .send()
                .await
                .expect("CreateBucket");
            tally.acked += 1;
        }

        let cut_at = rng.random_range(1..=CUT_WITHIN_OPS);
        let load_start = disk.ops();
        disk.cut_after(cut_at);
        let mut clients = Vec::new();
        for (c, states) in std::mem::take(&mut keys).into_iter().enumerate() {
            let s3 = s3.clone();
            let client_seed = seed ^ (round << 32) ^ c as u64;
            clients.push(tokio::spawn(drive(s3, states, client_seed)));
        }
        let waiter = Arc::clone(&disk);
        let mut cut =
            tokio::task::spawn_blocking(move || waiter.wait_for_cut(Duration::from_secs(30)));
        let clients = futures::future::join_all(clients);
        tokio::pin!(clients);
        let finished = tokio::select! {
            done = &mut clients => Some(done),
            _ = &mut cut => None,
        };
        let fell_in_load = finished.is_none();
        disk.cut_now();
        if !fell_in_load {
            cut.await.expect("cut waiter"); // returns at once now, and lets go of the disk
        }
        let load_ops = disk.ops() - load_start;
        store.kill();
        let finished = match finished {
            Some(done) => done,
            None => clients.await,
        };
        for done in finished {
            let (states, t) = done.expect("client task");
            tally.acked += t.acked;
            tally.unanswered += t.unanswered;
            keys.push(states);
        }

        let next = work.path().join(format!("disk{round}"));
        let disk = Arc::into_inner(disk).expect("only the test holds the disk now");
        let survived = disk.power_off(&next, unsynced).expect("power off");
        println!(
            "round {round}: cut at fs op {load_ops} of the load ({}), {unsynced:?}; the disk kept \
             {} files, rolled back {}, lost {} entries",
            if fell_in_load { "mid-load" } else { "after it" },
            survived.files,
            survived.files_rolled_back,
            survived.entries_lost,
        );
        let failures = verify(&next.join("data"), &mut keys).await;
        assert!(
            failures.is_empty(),
            "power cut {round} (seed {seed}, cut at fs op {load_ops}, {unsynced:?}) lost or \
             corrupted data:\n{}",
            failures.join("\n")
        );
        disk_dir = next;
    }
    println!(
        "{ROUNDS} power cuts, {} acknowledged operations checked, {} unanswered at a cut, \
         no loss, {:.1} s",
        tally.acked,
        tally.unanswered,
        started.elapsed().as_secs_f64()
    );
}

/// One client: random operations on its own keys until its budget is spent or the store stops
/// answering (the power went). Returns the keys' states and what it counted.
async fn drive(
    s3: Client,
    mut states: BTreeMap<String, KeyState>,
    seed: u64,
) -> (BTreeMap<String, KeyState>, Tally) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    let names: Vec<String> = states.keys().cloned().collect();
    for _ in 0..OPS_PER_CLIENT {
        let key = &names[rng.random_range(0..names.len())];
        let state = states.get_mut(key).unwrap();
        let answered = match rng.random_range(0..100) {
            0..35 => put(&s3, key, state, rng.random_range(1..64 << 10)).await,
            35..60 => put(&s3, key, state, rng.random_range(2 * MIB..5 * MIB)).await,
            60..75 => multipart(&s3, key, state, &mut tally).await,
            _ => delete(&s3, key, state).await,
        };
        if !answered {
            tally.unanswered += 1;
            break;
        }
        tally.acked += 1;
    }
    (states, tally)
}

fn new_version(key: &str, state: &mut KeyState, len: usize) -> (Vec<u8>, Digest) {
    state.next_version += 1;
    let label = format!("{key} version {} ({len} bytes)", state.next_version);
    let mut data = format!("{label};").into_bytes();
    let seed = hash::crc32(label.as_bytes()) as u64;
    data.extend(random_bytes(len.saturating_sub(data.len()), seed));
    let digest = hash::sha256(&data);
    state.versions.insert(digest, label);
    (data, digest)
}

/// Runs one operation whose success leaves `result`: true if acknowledged.
async fn outcome<T, E>(
    state: &mut KeyState,
    result: Option<Digest>,
    op: impl std::future::Future<Output = Result<T, E>>,
) -> bool {
    state.in_flight = Some(result);
    let ok = op.await.is_ok();
    if ok {
        state.committed = result;
        state.in_flight = None;
    }
    ok
}

async fn put(s3: &Client, key: &str, state: &mut KeyState, len: usize) -> bool {
    let (data, digest) = new_version(key, state, len);
    let send = s3
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .body(body(data))
        .send();
    outcome(state, Some(digest), send).await
}

async fn delete(s3: &Client, key: &str, state: &mut KeyState) -> bool {
    let send = s3.delete_object().bucket(BUCKET).key(key).send();
    outcome(state, None, send).await
}

/// Create, two parts (5 MiB and a tail), Complete. Parts count as acknowledged operations.
async fn multipart(s3: &Client, key: &str, state: &mut KeyState, tally: &mut Tally) -> bool {
    let (data, digest) = new_version(key, state, 5 * MIB + (300 << 10));
    let Ok(up) = s3
        .create_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .send()
        .await
    else {
        return false;
    };
    tally.acked += 1;
    let id = up.upload_id().unwrap_or_default().to_owned();
    state.open_upload = Some((id.clone(), Vec::new()));
    let mut done = Vec::new();
    for (n, part) in [(1, &data[..5 * MIB]), (2, &data[5 * MIB..])] {
        let sent = s3
            .upload_part()
            .bucket(BUCKET)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(body(part.to_vec()))
            .send()
            .await;
        let Ok(out) = sent else {
            return false;
        };
        tally.acked += 1;
        let etag = out.e_tag().unwrap_or_default().to_owned();
        if let Some((_, parts)) = &mut state.open_upload {
            parts.push((n, etag.clone()));
        }
        done.push(CompletedPart::builder().part_number(n).e_tag(etag).build());
    }
    let complete = s3
        .complete_multipart_upload()
        .bucket(BUCKET)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send();
    let acked = outcome(state, Some(digest), complete).await;
    if acked {
        state.open_upload = None;
    }
    acked
}

/// Restarts a store on the disk a cut left and checks every key against its history; returns
/// what is wrong. Afterwards each key's committed state is what the disk holds.
async fn verify(data: &Path, keys: &mut [BTreeMap<String, KeyState>]) -> Vec<String> {
    let mut failures = Vec::new();
    if !data.exists() {
        return vec![format!("the data dir {} is gone", data.display())];
    }
    let store = TestStore::start_with(StoreOptions::default().data_dir(data));
    let s3 = store.client();
    if let Err(e) = s3.head_bucket().bucket(BUCKET).send().await {
        return vec![format!("bucket {BUCKET} (acknowledged) is gone: {e:?}")];
    }
    let listed = list_all(&s3).await;
    for (key, state) in keys.iter_mut().flat_map(|m| m.iter_mut()) {
        let got = match s3.get_object().bucket(BUCKET).key(key).send().await {
            Ok(out) => {
                let etag = out.e_tag().unwrap_or_default().to_owned();
                let bytes = read_body(out.body).await;
                Some((hash::sha256(&bytes), bytes.len() as u64, etag))
            }
            Err(e) => {
                let (status, code) = sdk_err::<(), _>(Err(e));
                if (status, code.as_str()) != (404, "NoSuchKey") {
                    failures.push(format!("{key}: GET answered {status} {code}"));
                    continue;
                }
                None
            }
        };
        let observed = got.as_ref().map(|g| g.0);
        let describe = |d: Option<Digest>| match d {
            None => "absent".to_owned(),
            Some(d) => state
                .versions
                .get(&d)
                .cloned()
                .unwrap_or_else(|| format!("a body never written ({})", hex::encode(d))),
        };
        if observed != state.committed && Some(observed) != state.in_flight {
            failures.push(format!(
                "{key}: holds {}, but the last acknowledged operation left {}{}",
                describe(observed),
                describe(state.committed),
                state
                    .in_flight
                    .map(|f| format!(" (and the one in flight {})", describe(f)))
                    .unwrap_or_default(),
            ));
        }
        match (&got, listed.get(key.as_str())) {
            (None, None) => {}
            (Some((_, size, etag)), Some((lsize, letag))) if size == lsize && etag == letag => {}
            (got, listed) => failures.push(format!(
                "{key}: GET and the listing disagree: {:?} vs {listed:?}",
                got.as_ref().map(|g| (g.1, &g.2))
            )),
        }
        if let Some((id, parts)) = state.open_upload.take()
            && Some(observed) != state.in_flight
        {
            failures.extend(check_parts(&s3, key, &id, &parts).await);
        }
        state.committed = observed;
        state.in_flight = None;
    }
    let known: usize = keys.iter().map(|m| m.len()).sum();
    if listed.len() > known {
        failures.push(format!(
            "the listing has {} keys, only {known} were written",
            listed.len()
        ));
    }
    failures
}

/// An upload cut before its Complete answered still lists every acknowledged part.
async fn check_parts(s3: &Client, key: &str, id: &str, acked: &[(i32, String)]) -> Vec<String> {
    let listed = match s3
        .list_parts()
        .bucket(BUCKET)
        .key(key)
        .upload_id(id)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if acked.is_empty() => {
            // Created but no part answered: the upload itself must still be there.
            return vec![format!("{key}: acknowledged upload {id} is gone: {e:?}")];
        }
        Err(e) => {
            return vec![format!(
                "{key}: upload {id} with acknowledged parts is gone: {e:?}"
            )];
        }
    };
    let have: Vec<(i32, String)> = listed
        .parts()
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap_or(0),
                p.e_tag().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    acked
        .iter()
        .filter(|p| !have.contains(p))
        .map(|(n, etag)| format!("{key}: acknowledged part {n} ({etag}) of upload {id} is gone"))
        .collect()
}

/// Every key in the bucket → (size, ETag), across pages.
async fn list_all(s3: &Client) -> HashMap<String, (u64, String)> {
    let mut out = HashMap::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(BUCKET)
            .max_keys(5)
            .set_continuation_token(token)
            .send()
            .await
            .expect("ListObjectsV2 after restart");
        for o in page.contents() {
            out.insert(
                o.key().unwrap_or_default().to_owned(),
                (
                    o.size().unwrap_or(0) as u64,
                    o.e_tag().unwrap_or_default().to_owned(),
                ),
            );
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return out;
        }
    }
}
