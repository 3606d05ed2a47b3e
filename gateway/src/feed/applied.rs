//! Telling the store what this edge has applied of its feed, so that `outpost invalidate` can
//! report each edge: the edge names itself when it opens the feed (the URL it serves on, in
//! `x-outpost-edge`), and confirms the last number it applied to the subscription the store
//! answered with (`POST /_outpost/changes/applied?subscription=ID&seq=N`).
//!
//! Confirmations never hold the feed back: the follower only records the number, and one task
//! per connection sends the latest one, one request at a time (numbers applied meanwhile are
//! folded into the next request). A failed confirmation is tried again a second later.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Method, StatusCode};
use outpost_store::feed::APPLIED_PATH;
use outpost_store::feed::subscribers::{EDGE_HEADER, SUBSCRIPTION_HEADER};
use tokio::sync::watch;

use crate::edge::Edge;
use crate::origin::{OriginGroup, OriginRequest};

const RETRY: Duration = Duration::from_secs(1);

/// The headers the edge opens a feed with: its own URL.
pub fn announcement(edge: &Edge) -> HeaderMap {
    let scheme = if edge.config.tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    let mut headers = HeaderMap::new();
    let url = format!("{scheme}://{}", edge.config.listen);
    if let Ok(value) = HeaderValue::from_str(&url) {
        headers.insert(EDGE_HEADER, value);
    }
    headers
}

/// The subscription a feed's answer names (a store without the registry names none).
pub fn subscription(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(SUBSCRIPTION_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Sends confirmations for one connection to the feed; stops when dropped.
pub struct Reporter {
    applied: watch::Sender<Option<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Reporter {
    pub fn start(group: Arc<OriginGroup>, index: usize, subscription: u64) -> Reporter {
        let (applied, rx) = watch::channel(None);
        let task = tokio::spawn(report(group, index, subscription, rx));
        Reporter { applied, task }
    }

    /// Every event up to `seq` is applied.
    pub fn applied(&self, seq: u64) {
        self.applied.send_if_modified(|last| {
            let newer = *last != Some(seq);
            *last = Some(seq);
            newer
        });
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn report(
    group: Arc<OriginGroup>,
    index: usize,
    subscription: u64,
    mut applied: watch::Receiver<Option<u64>>,
) {
    while applied.changed().await.is_ok() {
        let Some(seq) = *applied.borrow_and_update() else {
            continue;
        };
        let request = OriginRequest {
            method: Method::POST,
            path_and_query: format!("{APPLIED_PATH}?subscription={subscription}&seq={seq}"),
            headers: HeaderMap::new(),
            anonymous: false,
            aws_chunked: false,
        };
        loop {
            let answer = group.fetch_from(index, &request).await;
            let status = match answer {
                Ok(response) => {
                    let status = response.status();
                    // Read to its end, so the connection goes back to the pool.
                    super::read_small(&mut response.into_body()).await;
                    status
                }
                Err(e) => {
                    tracing::debug!(origin = index, error = %e, "feed confirmation not sent");
                    StatusCode::BAD_GATEWAY
                }
            };
            match status {
                s if s.is_success() => break,
                // The store no longer knows this subscription: the feed reconnects anyway.
                StatusCode::NOT_FOUND => return,
                s if s.is_client_error() => {
                    tracing::debug!(origin = index, %s, "the store refuses feed confirmations");
                    return;
                }
                _ => {}
            }
            tokio::time::sleep(RETRY).await;
            if applied.has_changed().unwrap_or(false) {
                break; // a newer number to send instead
            }
        }
    }
}
