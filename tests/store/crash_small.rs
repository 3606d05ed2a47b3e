//! CRASH TEST for small PUTs, which are group-committed and kept in the index (no blob file):
//! 16 writers send a storm of 4 KiB PUTs (new keys, overwrites of one key each, and one
//! `If-None-Match: *` race for a shared key), the store is SIGKILLed in the middle, restarted
//! on the same data dir. Afterwards:
//! - every acknowledged PUT of a new key reads back whole and byte-identical;
//! - each writer's overwritten key holds its last acknowledged version or the one in flight;
//! - of the conditional PUTs of the shared key exactly one was acknowledged, every other was
//!   refused with 412, and the key holds the winner's body;
//! - the listing agrees with the bodies (size, ETag).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;

use crate::common::*;

const WRITERS: usize = 16;
const LEN: usize = 4096;

/// The body of `key` at `version`: 4 KiB that name both, so any mix-up shows.
fn content(key: &str, version: u32) -> Vec<u8> {
    let seed = hash::crc32(format!("{key}/{version}").as_bytes()) as u64;
    let mut v = format!("{key}@{version};").into_bytes();
    v.extend_from_slice(&random_bytes(LEN - v.len(), seed));
    v
}

#[derive(Default)]
struct Log {
    /// Keys written once, acknowledged.
    acked: Vec<String>,
    /// Per writer: last acknowledged version of its hot key, and the one in flight.
    hot: HashMap<usize, (Option<u32>, Option<u32>)>,
    /// Writers whose conditional PUT of the shared key was acknowledged / refused with 412.
    won: Vec<usize>,
    refused: usize,
}

async fn put(s3: &Client, b: &str, key: &str, data: Vec<u8>) -> bool {
    s3.put_object()
        .bucket(b)
        .key(key)
        .body(body(data))
        .send()
        .await
        .is_ok()
}

async fn writer(s3: Client, b: String, w: usize, log: Arc<Mutex<Log>>, acks: Arc<AtomicUsize>) {
    let once = s3
        .put_object()
        .bucket(&b)
        .key("once")
        .if_none_match("*")
        .body(body(content("once", w as u32)))
        .send()
        .await;
    match once {
        Ok(_) => log.lock().unwrap().won.push(w),
        Err(e) => match sdk_err::<(), _>(Err(e)) {
            (412, _) => log.lock().unwrap().refused += 1,
            (status, e) => panic!("conditional PUT before the kill: {status} {e}"),
        },
    }
    let hot = format!("hot/{w:02}");
    for i in 0u32.. {
        let key = format!("new/{w:02}/{i:05}");
        if !put(&s3, &b, &key, content(&key, 0)).await {
            return;
        }
        log.lock().unwrap().acked.push(key);
        acks.fetch_add(1, Ordering::SeqCst);
        log.lock().unwrap().hot.entry(w).or_default().1 = Some(i);
        if !put(&s3, &b, &hot, content(&hot, i)).await {
            return;
        }
        let mut log = log.lock().unwrap();
        *log.hot.entry(w).or_default() = (Some(i), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_sigkill_during_a_storm_of_small_puts_keeps_every_acknowledged_one() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = StoreOptions::default().data_dir(&tmp.path().join("data"));
    let mut store = TestStore::start_with(opts.clone());
    let s3 = store.client();
    let b = store.bucket(&s3, "crash-small").await;
    let log = Arc::new(Mutex::new(Log::default()));
    let acks = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(writer(s3.clone(), b.clone(), w, log.clone(), acks.clone())))
        .collect();
    // Kill while PUTs are in flight: after a few hundred acknowledgements.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acks.load(Ordering::SeqCst) < 400 {
        assert!(
            Instant::now() < deadline,
            "writers made no progress before the kill"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    store.kill();
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("writer stops after the kill")
            .unwrap();
    }

    let store = TestStore::start_with(opts);
    let s3 = store.client();
    let log = std::mem::take(&mut *log.lock().unwrap());
    let read = |key: String| {
        let s3 = s3.clone();
        let b = b.clone();
        async move {
            match s3.get_object().bucket(&b).key(&key).send().await {
                Ok(got) => Some(read_body(got.body).await),
                Err(e) => {
                    assert_eq!(sdk_err::<(), _>(Err(e)).0, 404, "GET {key}");
                    None
                }
            }
        }
    };
    for key in &log.acked {
        let got = read(key.clone()).await;
        assert!(
            got.as_deref() == Some(content(key, 0).as_slice()),
            "{key}: acknowledged, but after the crash it is {}",
            got.map_or("absent".into(), |g| format!("{} other bytes", g.len()))
        );
    }
    for (w, (last, in_flight)) in &log.hot {
        let key = format!("hot/{w:02}");
        let got = read(key.clone()).await;
        let allowed: Vec<Option<Vec<u8>>> = [*last, *in_flight]
            .iter()
            .map(|v| v.map(|v| content(&key, v)))
            .collect();
        assert!(
            allowed.contains(&got) || (last.is_none() && got.is_none()),
            "{key}: not its last acknowledged version {last:?} nor the one in flight {in_flight:?}"
        );
    }
    assert_eq!(log.won.len(), 1, "exactly one If-None-Match PUT wins");
    assert_eq!(log.refused, WRITERS - 1, "every other one hears 412");
    let once = read("once".into()).await;
    assert_eq!(
        once,
        Some(content("once", log.won[0] as u32)),
        "the winner's body"
    );

    let mut listed = HashMap::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&b)
            .set_continuation_token(token)
            .send()
            .await
            .unwrap();
        for o in page.contents() {
            listed.insert(
                o.key().unwrap().to_owned(),
                (o.size().unwrap(), o.e_tag().unwrap().to_owned()),
            );
        }
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            break;
        }
    }
    for key in &log.acked {
        let (size, etag) = &listed[key];
        assert_eq!(*size, LEN as i64, "{key}: listed size");
        assert_eq!(etag, &etag_of(&content(key, 0)), "{key}: listed ETag");
    }
}
