//! Engine tests: a real redb index and blobs on local disk in temp dirs, one file per area.
//! This directory holds the tests that drive a whole [`Engine`]; pure logic is tested inline
//! (`#[cfg(test)] mod tests` at the end of its own module).

mod buckets;
mod change_log;
mod durability;
mod keys;
mod listing;
mod multipart;
mod objects;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest as _, Md5};

use super::checksum::{self, ChecksumValue};
use super::index::{self, OBJECTS, ObjectRecord};
use super::*;

const MIB: usize = 1 << 20;

fn config(dir: &Path) -> EngineConfig {
    EngineConfig {
        data_dir: dir.to_path_buf(),
        max_object_size: 64 << 20,
        stale_upload_age: Duration::from_secs(3600),
        changes: super::changes::Retention::default(),
    }
}

async fn setup() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(config(dir.path())).await.unwrap();
    engine
        .create_bucket("b", BucketSettings::default())
        .await
        .unwrap();
    (dir, engine)
}

fn data(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn body(data: &[u8]) -> ByteStream {
    let chunks: Vec<crate::error::Result<Bytes>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

fn failing_body(data: &[u8]) -> ByteStream {
    let mut chunks: Vec<crate::error::Result<Bytes>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    chunks.push(Err(crate::error::Error::internal(anyhow::anyhow!(
        "the client went away"
    ))));
    futures::stream::iter(chunks).boxed()
}

fn ok() -> Verify {
    Box::new(|_| Ok(()))
}

async fn read_all(stream: ByteStream) -> Vec<u8> {
    stream
        .try_fold(Vec::new(), |mut acc, b| async move {
            acc.extend_from_slice(&b);
            Ok(acc)
        })
        .await
        .unwrap()
}

async fn put(engine: &Engine, key: &str, data: &[u8]) -> Result<ObjectInfo> {
    engine
        .put_object("b", key, PutOptions::default(), body(data), ok())
        .await
}

async fn get(engine: &Engine, key: &str, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    read_all(engine.read_object("b", key, range).await.unwrap().1).await
}

/// Every file under `blobs/`, staging files included.
fn blob_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.join("blobs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                dirs.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Keys whose body is kept in the index (`inline_bodies`), in order.
async fn inline_bodies(engine: &Engine) -> Vec<String> {
    engine
        .inner
        .index
        .read(|txn| {
            let mut keys = Vec::new();
            for entry in txn.open_table(index::INLINE)?.iter()? {
                keys.push(entry?.0.value().1.to_owned());
            }
            Ok(keys)
        })
        .await
        .unwrap()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn kind<T: std::fmt::Debug>(r: Result<T>) -> Kind {
    r.unwrap_err().kind()
}
