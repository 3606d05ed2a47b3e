//! What the edge's upload spool leaves on disk: parts are written through the one durable-write
//! helper (`durable::StagedFile`), and a restarted edge sweeps what a crash can leave, staging
//! files and bytes whose description was never written (neither was ever answered), while
//! every answered part is kept and relayed.

use std::path::{Path, PathBuf};

use aws_sdk_s3::types::CompletedMultipartUpload;

use crate::common::*;

/// Every file under the spool, relative to it, sorted.
fn spool_files(cache: &Path) -> Vec<PathBuf> {
    let spool = cache.join("spool");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&spool)
        .unwrap()
        .flat_map(|upload| std::fs::read_dir(upload.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path().strip_prefix(&spool).unwrap().to_owned())
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn a_restarted_edge_sweeps_what_a_crash_leaves_and_keeps_answered_parts() {
    let mut store = TestStore::start();
    let b = store.bucket(&store.client(), "spoolfiles").await;
    let cache = tempfile::tempdir().unwrap();
    let edge_opts = || {
        StoreOptions::default()
            .data_dir(cache.path())
            .config("[edge]\nrelay_wait_secs = 30\n")
    };
    let mut edge = TestStore::start_edge(&[&store], edge_opts());
    let id = start_upload(&edge.client(), &b, "k").await;
    let (port, data_dir) = (store.port, store.data_dir.clone());
    store.kill();
    let part = random_bytes(3 * MIB, 31);
    let parts = upload_parts(&edge.client(), &b, "k", &id, &[&part]).await;
    edge.kill();

    let answered = spool_files(cache.path());
    let names: Vec<_> = answered.iter().map(|p| p.file_name().unwrap()).collect();
    assert_eq!(
        names,
        ["1.data", "1.json"],
        "one answered part, no staging files"
    );
    // What a crash mid-write leaves: a staging file, bytes committed without their description.
    let upload_dir = cache
        .path()
        .join("spool")
        .join(answered[0].parent().unwrap());
    std::fs::write(upload_dir.join(".crashed.tmp"), b"half a part").unwrap();
    std::fs::write(upload_dir.join("2.data"), b"never described").unwrap();

    // Restarted with the store still away: nothing moves while we look.
    let edge = TestStore::start_edge(&[&store], edge_opts());
    let kept: Vec<_> = spool_files(cache.path());
    assert_eq!(
        kept, answered,
        "the sweep keeps the answered part, and only it"
    );

    let store = TestStore::start_with(StoreOptions::default().data_dir(&data_dir).port(port));
    let done = edge
        .client()
        .complete_multipart_upload()
        .bucket(&b)
        .key("k")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .expect("Complete after the restart");
    assert_eq!(done.e_tag(), Some(multipart_etag(&[&part]).as_str()));
    assert!(object_bytes(&store.client(), &b, "k").await == part);
}
