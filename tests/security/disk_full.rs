//! Full disks (issue "Security and robustness", holes 5, 6 and 9): the store's data directory
//! and the edge's cache/spool directory on a small tmpfs that the test fills with a filler file.
//! Each test asserts what the client sees (507 InsufficientStorage at the store, 503 SlowDown at
//! the edge, never 500), that nothing acknowledged is lost, and that writes work again once the
//! filler is deleted, without a restart.
//!
//! Mounting needs root (or CAP_SYS_ADMIN); where it is not possible each test prints why and
//! returns.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::common::raw::Payload;
use super::common::{
    MIB, RawRequest, SignOpts, StoreOptions, TestStore, assert_sdk_err, body, etag_of,
    object_bytes, put_bytes, random_bytes, start_upload,
};

/// A tmpfs of a few MiB mounted on a temp dir, unmounted (lazily) when dropped.
pub(super) struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// None (after printing why) where this process may not mount.
    pub(super) fn mount(mib: usize, test: &str) -> Option<SmallFs> {
        let dir = tempfile::Builder::new()
            .prefix("outpost-fullfs-")
            .tempdir()
            .expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallFs { dir }),
            Ok(o) => {
                eprintln!(
                    "skipped {test}: cannot mount a tmpfs (needs root): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped {test}: cannot run mount: {e}");
                None
            }
        }
    }

    pub(super) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the filesystem refuses more (ENOSPC); returns its path.
    pub(super) fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut f = std::fs::File::create(&path).expect("create filler");
        let chunk = vec![0u8; 64 << 10];
        while f.write_all(&chunk).is_ok() {}
        let small = vec![0u8; 512];
        while f.write_all(&small).is_ok() {}
        path
    }

    /// Bytes still available, as `df` reports them.
    fn available(&self) -> u64 {
        let out = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(self.path())
            .output()
            .expect("df");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .expect("df prints the available bytes")
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

async fn health(server: &TestStore) -> (u16, String) {
    let r = RawRequest::new("GET", "/_outpost/health")
        .send(server)
        .await;
    (r.status, r.text())
}

/// Polls `/_outpost/health` until it answers `status` (generous deadline for a loaded machine).
async fn await_health(server: &TestStore, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (got, text) = health(server).await;
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "health stayed {got} ({text}), expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A signed PUT that declares `len` bytes and sends none: only an answer before the body
/// can arrive within the timeout.
fn declared_put(target: &str, len: usize, server: &TestStore) -> RawRequest {
    RawRequest::new("PUT", target)
        .stall_body(len, Vec::new())
        .timeout(Duration::from_secs(15))
        .sign_with(server, &SignOpts::default().payload(Payload::Unsigned))
        .0
}

#[tokio::test]
async fn store_answers_507_when_its_disk_is_full_and_recovers_without_restart() {
    let Some(fs) = SmallFs::mount(24, "store_answers_507_when_its_disk_is_full") else {
        return;
    };
    let store = TestStore::start_with(StoreOptions::default().data_dir(&fs.path().join("data")));
    let s3 = store.client();
    let b = store.bucket(&s3, "full").await;
    let earlier: Vec<Vec<u8>> = (0..3).map(|i| random_bytes(300 << 10, i)).collect();
    for (i, data) in earlier.iter().enumerate() {
        put_bytes(&s3, &b, &format!("earlier-{i}"), data.clone()).await;
    }
    assert_eq!(health(&store).await.0, 200);
    let upload = start_upload(&s3, &b, "parts").await;

    let filler = fs.fill();

    // A body declared larger than the free space is refused before it is read: as a plain
    // PUT, as a part, and as an aws-chunked stream that declares its decoded length.
    let r = declared_put(&format!("/{b}/too-big"), 2 * MIB, &store)
        .send(&store)
        .await;
    r.assert_error(507, "InsufficientStorage");
    let part = format!("/{b}/parts?partNumber=1&uploadId={upload}");
    declared_put(&part, 5 * MIB, &store)
        .send(&store)
        .await
        .assert_error(507, "InsufficientStorage");
    let streaming = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
    RawRequest::new("PUT", &format!("/{b}/too-big"))
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", &(2 * MIB).to_string())
        .header("x-amz-trailer", "x-amz-checksum-crc32")
        .stall_body(2 * MIB + 64, Vec::new())
        .timeout(Duration::from_secs(15))
        .sign_with(
            &store,
            &SignOpts::default().payload(Payload::Literal(streaming.into())),
        )
        .0
        .send(&store)
        .await
        .assert_error(507, "InsufficientStorage");

    // Small writes whose bytes or index commit cannot fit: 507, never 500. Empty objects need
    // no blob, so their failure is the index commit's.
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 0..40 {
        let key = format!("empty-{i}");
        let put = s3
            .put_object()
            .bucket(&b)
            .key(&key)
            .metadata("padding", "p".repeat(1500))
            .body(body(Vec::new()))
            .send()
            .await;
        match put {
            Ok(_) => acknowledged.push(key),
            Err(e) => {
                assert_sdk_err::<(), _>(Err(e), 507, "InsufficientStorage");
                refused += 1;
                if refused == 3 {
                    break;
                }
            }
        }
    }
    assert!(refused > 0, "the full disk refused no write");
    assert_sdk_err(
        s3.put_object()
            .bucket(&b)
            .key("small")
            .body(body(random_bytes(64 << 10, 9)))
            .send()
            .await,
        507,
        "InsufficientStorage",
    );
    let (status, text) = health(&store).await;
    assert_eq!(status, 503, "health while the disk is full: {text}");

    // What was acknowledged is still there, byte for byte, while the disk is full.
    for (i, data) in earlier.iter().enumerate() {
        assert_eq!(&object_bytes(&s3, &b, &format!("earlier-{i}")).await, data);
    }

    std::fs::remove_file(filler).expect("remove filler");
    await_health(&store, 200).await;

    // Writes work again, no restart; nothing acknowledged was lost, nothing refused appeared.
    let after = random_bytes(1 << 20, 42);
    put_bytes(&s3, &b, "after", after.clone()).await;
    assert_eq!(object_bytes(&s3, &b, "after").await, after);
    for (i, data) in earlier.iter().enumerate() {
        assert_eq!(&object_bytes(&s3, &b, &format!("earlier-{i}")).await, data);
    }
    for key in &acknowledged {
        s3.head_object()
            .bucket(&b)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("acknowledged {key} is gone: {e:?}"));
    }
    assert_sdk_err(
        s3.head_object().bucket(&b).key("too-big").send().await,
        404,
        "NotFound",
    );
    assert_sdk_err(
        s3.head_object().bucket(&b).key("small").send().await,
        404,
        "NotFound",
    );
}

/// Parts the edge's spool cannot take get 503 SlowDown, declared or not; once there is room
/// again the same upload completes with the right bytes.
#[tokio::test]
async fn edge_spool_on_a_full_disk_answers_slowdown_then_takes_parts_again() {
    let Some(fs) = SmallFs::mount(16, "edge_spool_on_a_full_disk") else {
        return;
    };
    let store = TestStore::start();
    let edge = TestStore::start_edge(
        &[&store],
        StoreOptions::default().data_dir(&fs.path().join("cache")),
    );
    let s3 = edge.client();
    let b = store.bucket(&store.client(), "spool").await;
    let id = start_upload(&s3, &b, "big").await;
    let parts = [random_bytes(5 * MIB, 2), random_bytes(MIB, 3)];
    let upload = |n: i32| {
        s3.upload_part()
            .bucket(&b)
            .key("big")
            .upload_id(&id)
            .part_number(n)
            .body(body(parts[n as usize - 1].clone()))
            .send()
    };
    let first = upload(1).await.expect("part 1 before the disk is full");
    // Part 1 leaves the spool (freeing its space) once the store holds it: wait for that, or
    // the filler's space could come back in the middle of the test.
    let spooled = |dir: &std::path::Path| -> usize {
        walk(dir)
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "data"))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while spooled(&fs.path().join("cache")) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "part 1 never left the spool"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let filler = fs.fill();

    let part2 = format!("/{b}/big?partNumber=2&uploadId={id}");
    let r = declared_put(&part2, MIB, &edge).send(&edge).await;
    r.assert_error(503, "SlowDown");
    // No declared length: the spool finds out while writing.
    let r = RawRequest::new("PUT", &part2)
        .chunked_body(vec![random_bytes(MIB, 1); 3])
        .sign_with(&edge, &SignOpts::default().payload(Payload::Unsigned))
        .0
        .send(&edge)
        .await;
    r.assert_error(503, "SlowDown");

    std::fs::remove_file(filler).expect("remove filler");
    let second = upload(2).await.expect("part 2 once there is room again");
    let done = [first.e_tag(), second.e_tag()]
        .into_iter()
        .zip(1..)
        .map(|(etag, n)| {
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .set_e_tag(etag.map(String::from))
                .build()
        })
        .collect();
    s3.complete_multipart_upload()
        .bucket(&b)
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .expect("complete after space was freed");
    // The part acknowledged before the disk filled up is in the object, byte for byte.
    assert_eq!(
        object_bytes(&store.client(), &b, "big").await,
        parts.concat()
    );
}

/// The disk tier is bounded by the filesystem, not only by `disk_cache_bytes` (10 GiB by
/// default): reading more large objects than the filesystem holds leaves room for the spool.
#[tokio::test]
async fn edge_disk_cache_leaves_room_on_a_small_filesystem() {
    let Some(fs) = SmallFs::mount(24, "edge_disk_cache_leaves_room") else {
        return;
    };
    let store = &TestStore::start();
    let edge = TestStore::start_edge(
        &[store],
        StoreOptions::default()
            .data_dir(&fs.path().join("cache"))
            .config("[edge]\nslice_bytes = 262144\n"),
    );
    let direct = store.client();
    let b = store.bucket(&direct, "cachefs").await;
    let objects: Vec<Vec<u8>> = (0..10).map(|i| random_bytes(4 * MIB, 100 + i)).collect();
    for (i, data) in objects.iter().enumerate() {
        put_bytes(&direct, &b, &format!("o{i}"), data.clone()).await;
    }
    let s3 = edge.client();
    let total = 24 * MIB as u64;
    for (i, data) in objects.iter().enumerate() {
        assert_eq!(&object_bytes(&s3, &b, &format!("o{i}")).await, data);
        let free = fs.available();
        assert!(
            free >= total / 4,
            "after {} objects the edge cache left {free} of {total} bytes free",
            i + 1
        );
    }
    // The spool still takes a part.
    let id = start_upload(&s3, &b, "up").await;
    let part = random_bytes(5 * MIB, 7);
    let out = s3
        .upload_part()
        .bucket(&b)
        .key("up")
        .upload_id(&id)
        .part_number(1)
        .body(body(part.clone()))
        .send()
        .await
        .expect("UploadPart with the cache full");
    assert_eq!(out.e_tag(), Some(etag_of(&part).as_str()));
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
