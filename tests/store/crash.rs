//! CRASH TEST. Concurrent uploads and overwrites of known content, the store SIGKILLed in the
//! middle (`Child::kill` is SIGKILL on Unix), restarted on the same data dir, twice. Afterwards:
//! - every key whose PUT was acknowledged exists and holds exactly one complete version written
//!   to it (sha256 compared): for single-writer keys the last acknowledged version or the one
//!   that was in flight at the kill; never a partial or mixed body;
//! - keys never acknowledged are absent or hold a complete version;
//! - listings agree with the bodies (size, ETag);
//! - after deleting everything, the blobs of interrupted writes have been swept: the data dir
//!   holds (almost) nothing but the index.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};

use crate::common::*;

const SINGLE_WRITER_KEYS: usize = 10;
const CONTENDED_KEYS: usize = 2; // two writers each
const BASE_LEN: usize = 7 * MIB;

#[derive(Default, Debug, Clone)]
struct KeyLog {
    /// Versions whose PUT/Complete returned success, in order.
    acked: Vec<u32>,
    /// Every version ever sent (acknowledged or not).
    attempted: Vec<u32>,
    /// Versions sent but not acknowledged when the store died.
    in_flight: Vec<u32>,
    single_writer: bool,
}

struct World {
    base: Vec<u8>,
    logs: Mutex<HashMap<String, KeyLog>>,
    acks: AtomicUsize,
}

fn content(base: &[u8], key: &str, version: u32, multipart: bool) -> Vec<u8> {
    let h = hash::crc32(format!("{key}/{version}").as_bytes()) as usize;
    let len = if multipart {
        5 * MIB + 100 * 1024 + h % 4096
    } else {
        128 * 1024 + h % (384 * 1024)
    };
    let off = h % (base.len() - len);
    let mut v = format!("key={key};version={version};").into_bytes();
    v.extend_from_slice(&base[off..off + len]);
    v
}

async fn put_version(s3: &Client, b: &str, key: &str, data: Vec<u8>, multipart: bool) -> bool {
    if !multipart {
        return s3
            .put_object()
            .bucket(b)
            .key(key)
            .body(body(data))
            .send()
            .await
            .is_ok();
    }
    let Ok(up) = s3.create_multipart_upload().bucket(b).key(key).send().await else {
        return false;
    };
    let id = up.upload_id().unwrap().to_string();
    let split = 5 * MIB;
    let mut parts = Vec::new();
    for (n, chunk) in [(1, &data[..split]), (2, &data[split..])] {
        match s3
            .upload_part()
            .bucket(b)
            .key(key)
            .upload_id(&id)
            .part_number(n)
            .body(body(chunk.to_vec()))
            .send()
            .await
        {
            Ok(out) => parts.push(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(out.e_tag().unwrap())
                    .build(),
            ),
            Err(_) => return false,
        }
    }
    s3.complete_multipart_upload()
        .bucket(b)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .is_ok()
}

/// One writer: overwrites `key` with successive versions until a request fails (the kill).
async fn writer(
    world: Arc<World>,
    s3: Client,
    b: String,
    key: String,
    multipart: bool,
    first_version: u32,
    stride: u32,
) {
    let mut v = first_version;
    loop {
        let data = content(&world.base, &key, v, multipart);
        {
            let mut logs = world.logs.lock().unwrap();
            let log = logs.get_mut(&key).unwrap();
            log.attempted.push(v);
            log.in_flight.push(v);
        }
        let ok = put_version(&s3, &b, &key, data, multipart).await;
        let mut logs = world.logs.lock().unwrap();
        let log = logs.get_mut(&key).unwrap();
        if ok {
            log.in_flight.retain(|x| *x != v);
            log.acked.push(v);
            world.acks.fetch_add(1, Ordering::SeqCst);
        } else {
            return;
        }
        drop(logs);
        v += stride;
    }
}

async fn run_round(world: &Arc<World>, store: &mut TestStore, b: &str, round: u32) {
    let s3 = store.client();
    let mut tasks = Vec::new();
    let first = round * 100_000;
    {
        let mut logs = world.logs.lock().unwrap();
        for log in logs.values_mut() {
            log.in_flight.clear();
        }
    }
    for k in 0..SINGLE_WRITER_KEYS {
        let key = format!("single/{k:02}");
        world
            .logs
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_insert_with(|| KeyLog {
                single_writer: true,
                ..Default::default()
            });
        let multipart = k == 0;
        tasks.push(tokio::spawn(writer(
            world.clone(),
            s3.clone(),
            b.to_string(),
            key,
            multipart,
            first,
            1,
        )));
    }
    for k in 0..CONTENDED_KEYS {
        let key = format!("shared/{k}");
        world.logs.lock().unwrap().entry(key.clone()).or_default();
        for w in 0..2 {
            tasks.push(tokio::spawn(writer(
                world.clone(),
                s3.clone(),
                b.to_string(),
                key.clone(),
                false,
                first + w,
                2,
            )));
        }
    }
    // Let the writers get going, then kill the store while requests are in flight.
    let target = world.acks.load(Ordering::SeqCst) + 40;
    let deadline = Instant::now() + Duration::from_secs(60);
    while world.acks.load(Ordering::SeqCst) < target {
        assert!(
            Instant::now() < deadline,
            "writers made no progress before the kill"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    store.kill();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("writer stops after the kill")
            .unwrap();
    }
}

async fn verify(world: &World, store: &TestStore, b: &str) {
    let s3 = store.client();
    let logs = world.logs.lock().unwrap().clone();
    let list = s3
        .list_objects_v2()
        .bucket(b)
        .send()
        .await
        .expect("list after restart");
    let listed: HashMap<String, (i64, String)> = list
        .contents()
        .iter()
        .map(|o| {
            (
                o.key().unwrap().to_string(),
                (o.size().unwrap(), o.e_tag().unwrap().to_string()),
            )
        })
        .collect();
    for key in listed.keys() {
        assert!(logs.contains_key(key), "unknown key {key:?} after restart");
    }
    for (key, log) in &logs {
        let multipart = key == "single/00";
        let got = match s3.get_object().bucket(b).key(key).send().await {
            Ok(g) => Some(read_body(g.body).await),
            Err(e) => {
                let (status, _) = sdk_err::<(), _>(Err(e));
                assert_eq!(status, 404, "GET {key} after restart");
                None
            }
        };
        let Some(got) = got else {
            assert!(
                log.acked.is_empty(),
                "{key}: acknowledged versions {:?} but the key is gone after the crash",
                log.acked
            );
            assert!(!listed.contains_key(key), "{key}: listed but not readable");
            continue;
        };
        let got_hash = hash::sha256(&got);
        let matching: Vec<u32> = log
            .attempted
            .iter()
            .copied()
            .filter(|v| hash::sha256(&content(&world.base, key, *v, multipart)) == got_hash)
            .collect();
        assert!(
            !matching.is_empty(),
            "{key}: body of {} bytes is none of the versions written to it (partial or mixed write); acked {:?}, in flight {:?}",
            got.len(),
            log.acked,
            log.in_flight
        );
        let v = matching[0];
        if log.single_writer {
            let allowed: Vec<u32> = log
                .acked
                .last()
                .copied()
                .into_iter()
                .chain(log.in_flight.iter().copied())
                .collect();
            assert!(
                allowed.contains(&v),
                "{key}: holds version {v}, but the last acknowledged version is {:?} (in flight: {:?}): an acknowledged write was lost",
                log.acked.last(),
                log.in_flight
            );
        }
        // What survived a crash is now the key's durable state for the next round.
        let mut live = world.logs.lock().unwrap();
        let entry = live.get_mut(key).unwrap();
        if entry.acked.last() != Some(&v) {
            entry.acked.push(v);
        }
        drop(live);
        let (size, etag) = listed
            .get(key)
            .unwrap_or_else(|| panic!("{key}: readable but not listed"));
        assert_eq!(*size, got.len() as i64, "{key}: listed size vs body");
        if !multipart {
            assert_eq!(etag, &etag_of(&got), "{key}: listed ETag vs body");
        }
    }
}

fn files_outside_index(dir: &Path, out: &mut Vec<(String, u64)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        let meta = e.metadata().unwrap();
        if meta.is_dir() {
            files_outside_index(&path, out);
        } else {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".redb") && name != "credentials.toml" {
                out.push((path.display().to_string(), meta.len()));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_sigkill_during_concurrent_overwrites_keeps_objects_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let opts = StoreOptions::default().data_dir(&data_dir);
    let world = Arc::new(World {
        base: random_bytes(BASE_LEN, 4242),
        logs: Mutex::new(HashMap::new()),
        acks: AtomicUsize::new(0),
    });

    let mut store = TestStore::start_with(opts.clone());
    let s3 = store.client();
    let b = store.bucket(&s3, "crash").await;

    for round in 0..2 {
        run_round(&world, &mut store, &b, round).await;
        store = TestStore::start_with(opts.clone());
        verify(&world, &store, &b).await;
    }

    // Clean up everything and check that interrupted writes left no blobs behind.
    let s3 = store.client();
    let list = s3.list_objects_v2().bucket(&b).send().await.unwrap();
    for o in list.contents() {
        s3.delete_object()
            .bucket(&b)
            .key(o.key().unwrap())
            .send()
            .await
            .unwrap();
    }
    let uploads = s3.list_multipart_uploads().bucket(&b).send().await.unwrap();
    for u in uploads.uploads() {
        s3.abort_multipart_upload()
            .bucket(&b)
            .key(u.key().unwrap())
            .upload_id(u.upload_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut files = Vec::new();
        files_outside_index(&data_dir, &mut files);
        let total: u64 = files.iter().map(|f| f.1).sum();
        if total < MIB as u64 {
            break;
        }
        if Instant::now() > deadline {
            files.sort_by_key(|f| std::cmp::Reverse(f.1));
            files.truncate(20);
            panic!(
                "after deleting every object, {total} bytes of blob files remain (orphans of the killed writes not swept): {files:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
