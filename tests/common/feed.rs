//! A reader of a store's change feed (`GET /_outpost/changes`), as an edge follows it: signed
//! like any request, read line by line as it streams.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use super::{RawRequest, SignOpts, TestStore};

/// An open feed.
pub struct Feed {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffered: Vec<u8>,
}

impl Feed {
    /// Opens `/_outpost/changes?{query}` signed with `keys` (None: the root key, Some(None):
    /// unsigned).
    pub async fn open(store: &TestStore, query: &str, keys: Option<Option<(&str, &str)>>) -> Feed {
        Feed::open_with(store, query, keys, &[]).await
    }

    /// [`Feed::open`] with these request headers too (signed with the rest).
    pub async fn open_with(
        store: &TestStore,
        query: &str,
        keys: Option<Option<(&str, &str)>>,
        headers: &[(&str, &str)],
    ) -> Feed {
        let target = format!("/_outpost/changes?{query}");
        let mut request = RawRequest::new("GET", &target);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        request = match keys {
            None => request.sign(store),
            Some(Some((id, secret))) => {
                request
                    .sign_with(store, &SignOpts::default().keys(id, secret))
                    .0
            }
            Some(None) => request,
        };
        let client = reqwest::Client::new();
        let mut outgoing = client.get(format!("{}{target}", store.url));
        for (name, value) in &request.headers {
            outgoing = outgoing.header(name, value);
        }
        let response = tokio::time::timeout(Duration::from_secs(30), outgoing.send())
            .await
            .expect("the feed answers within 30 s")
            .expect("the feed answers");
        Feed {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes_stream().boxed(),
            buffered: Vec::new(),
        }
    }

    /// The next line as JSON; panics after `within` without one, or when the feed ends.
    pub async fn line(&mut self, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffered.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffered.drain(..=end).collect();
                return serde_json::from_slice(&line[..end]).unwrap_or_else(|e| {
                    panic!(
                        "not a JSON line ({e}): {:?}",
                        String::from_utf8_lossy(&line)
                    )
                });
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(bytes))) => self.buffered.extend_from_slice(&bytes),
                Ok(other) => panic!("the feed ended: {other:?}"),
                Err(_) => panic!("no line within {within:?}"),
            }
        }
    }

    /// Waits for the feed to end (lines before the end are dropped); panics after `within`.
    pub async fn end(&mut self, within: Duration) {
        let ended = tokio::time::timeout(within, async {
            while let Some(Ok(_)) = self.body.next().await {}
        });
        ended.await.expect("the feed did not end");
    }

    /// The next event line (keep-alive lines skipped).
    pub async fn event(&mut self) -> Value {
        loop {
            let line = self.line(Duration::from_secs(30)).await;
            if line["kind"] != "keepalive" {
                return line;
            }
        }
    }

    /// The whole body of an answer that is not a feed (an error), as JSON.
    pub async fn json(mut self) -> Value {
        let mut all = std::mem::take(&mut self.buffered);
        while let Some(chunk) = self.body.next().await {
            all.extend_from_slice(&chunk.expect("error body"));
        }
        serde_json::from_slice(&all)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&all)))
    }
}
