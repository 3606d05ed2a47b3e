//! The spool's workers: each takes spooled parts off the queue and pushes them to the store
//! over the pooled connections, retrying while it is away, until the store holds the part or
//! refuses it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use tokio::sync::mpsc;

use super::{PartMeta, PartState, Spool, read_meta};
use crate::origin::{self, OriginGroup, OriginRequest};

/// Backoff between attempts at a store that is away, doubling up to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_CAP: Duration = Duration::from_secs(5);

/// Takes spooled parts off the queue and pushes each to the store until it is there or the
/// store refuses it.
pub(super) async fn push(
    spool: Arc<Spool>,
    queue: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<PathBuf>>>,
    origins: Arc<OriginGroup>,
) {
    loop {
        let Some(meta_path) = queue.lock().await.recv().await else {
            return;
        };
        let Ok(meta) = read_meta(&meta_path) else {
            continue; // forgotten (completed or aborted) meanwhile
        };
        let mut backoff = RETRY_FIRST;
        let state = loop {
            match push_part(&origins, &meta, &meta_path.with_extension("data")).await {
                Ok(state) => break state,
                Err(why) if !meta_path.exists() => {
                    tracing::debug!(%why, "spooled part forgotten while being pushed");
                    break PartState::AtStore;
                }
                Err(why) => {
                    tracing::warn!(upload = %meta.upload_id, part = meta.part_number, %why, "pushing a part to the store failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_CAP);
                }
            }
        };
        // A forgotten upload (completed or aborted meanwhile) keeps no state, and `forget`
        // has returned its bytes to the budget.
        if !meta_path.exists() {
            continue;
        }
        if state == PartState::AtStore {
            let _ = std::fs::remove_file(meta_path.with_extension("data"));
            spool.account(|used| *used = used.saturating_sub(meta.size));
        }
        spool.set(&meta, state);
    }
}

/// One attempt: Ok(state) when the store answered for good, Err when it should be retried.
async fn push_part(
    origins: &OriginGroup,
    meta: &PartMeta,
    data: &Path,
) -> std::result::Result<PartState, String> {
    let file = tokio::fs::File::open(data)
        .await
        .map_err(|e| e.to_string())?;
    let body = axum::body::Body::from_stream(closing_read(file, meta.size));
    let mut headers = http::HeaderMap::new();
    let md5 = hex::decode(&meta.md5_hex).map_err(|e| e.to_string())?;
    let content_md5 = base64::engine::general_purpose::STANDARD.encode(md5);
    headers.insert(
        "content-md5",
        content_md5.parse().map_err(|_| "content-md5")?,
    );
    if let Some((name, value)) = &meta.checksum {
        let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        headers.insert(name, value.parse().map_err(|_| "checksum value")?);
    }
    let query = format!(
        "partNumber={}&uploadId={}",
        meta.part_number,
        encode(&meta.upload_id)
    );
    let request = OriginRequest {
        method: http::Method::PUT,
        path_and_query: origin::path(&meta.bucket, &meta.key, &query),
        headers,
        anonymous: false,
        aws_chunked: false,
    };
    let response = origins
        .send(request, body, Some(meta.size))
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let etag = response
        .headers()
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim_matches('"').to_owned());
    if status.is_success() && etag.as_deref() == Some(meta.md5_hex.as_str()) {
        Ok(PartState::AtStore)
    } else if status.is_client_error() {
        Ok(PartState::Refused(format!("the store answered {status}")))
    } else {
        Err(format!("the store answered {status}"))
    }
}

/// The part's bytes as a stream that closes the file as soon as the last byte is read, before
/// that byte is sent. The HTTP client may hold a finished body for a while, and an open file
/// that the worker unlinks afterwards keeps its disk space taken: a full spool would not get
/// its room back when the store answers.
fn closing_read(
    file: tokio::fs::File,
    size: u64,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + Send {
    futures::stream::try_unfold(Some((file, size)), |state| async move {
        use bytes::BufMut as _;
        use tokio::io::AsyncReadExt as _;
        let Some((mut file, left)) = state else {
            return Ok(None);
        };
        if left == 0 {
            return Ok(None);
        }
        let want = left.min(1 << 20) as usize;
        let mut chunk = bytes::BytesMut::with_capacity(want);
        while chunk.len() < want {
            let room = want - chunk.len();
            if file.read_buf(&mut (&mut chunk).limit(room)).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        let left = left - want as u64;
        // Dropping the file here, with the last chunk, is the point of this stream.
        let next = (left > 0).then_some((file, left));
        Ok(Some((chunk.freeze(), next)))
    })
}

fn encode(s: &str) -> String {
    outpost_store::s3::auth::sigv4::uri_encode(s, false)
}
