//! S3's answer to an operation that can take long after its request was read (CopyObject and
//! UploadPartCopy of large objects at the store; CompleteMultipartUpload at an edge waiting for
//! its relay): if the outcome is not ready within [`AFTER`], answer `200` at once, send a space
//! every [`EVERY`] so that no client, proxy or edge times the connection out, and end with the
//! outcome as the XML document: the result, or an `<Error>` document. The AWS SDKs and aws-cli
//! look for an `<Error>` in a 200 answer to these operations, and retry it like any error.

use std::future::Future;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::s3::Response;

/// How long the outcome may take before the answer starts.
pub const AFTER: Duration = Duration::from_secs(5);
/// How often a waiting answer sends a space.
pub const EVERY: Duration = Duration::from_secs(5);
/// Largest result document read back from `work`'s response.
const MAX_DOCUMENT: usize = 4 << 20;
const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// Runs `work`, whose response is an XML document (or an error), to completion even if the
/// client leaves, and answers as the module says. `resource` and `request_id` go into an
/// `<Error>` document sent after the 200.
pub async fn answer(
    work: impl Future<Output = Result<Response>> + Send + 'static,
    resource: String,
    request_id: String,
) -> Result<Response> {
    let mut task = tokio::spawn(work);
    if let Ok(joined) = tokio::time::timeout(AFTER, &mut task).await {
        return joined.map_err(Error::internal)?;
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let _ = tx
            .send(Bytes::from_static(XML_DECLARATION.as_bytes()))
            .await;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
        let outcome = loop {
            tokio::select! {
                joined = &mut task => break joined.map_err(Error::internal).and_then(|r| r),
                _ = ticks.tick() => {
                    // A client that left gets nothing more; the work still finishes.
                    if tx.send(Bytes::from_static(b" ")).await.is_err() {
                        return;
                    }
                }
            }
        };
        let document = match outcome {
            Ok(response) => read_document(response).await,
            Err(e) => Err(e),
        };
        let document = document.unwrap_or_else(|e| Bytes::from(e.to_xml(&resource, &request_id)));
        let _ = tx.send(without_declaration(document)).await;
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    Ok(http::Response::builder()
        .header(http::header::CONTENT_TYPE, "application/xml")
        .body(Body::from_stream(body))
        .expect("static response parts are valid"))
}

/// The body of a result (an error status carries its own `<Error>` document).
async fn read_document(response: Response) -> Result<Bytes> {
    axum::body::to_bytes(response.into_body(), MAX_DOCUMENT)
        .await
        .map_err(|e| Error::internal(anyhow::anyhow!("reading a kept-alive result: {e}")))
}

/// The document without its XML declaration (the answer's went first).
fn without_declaration(document: Bytes) -> Bytes {
    let start = document
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    let text = &document[start..];
    match text.windows(2).position(|w| w == b"?>") {
        Some(end) if text.starts_with(b"<?xml") => document.slice(start + end + 2..),
        _ => document,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_results_declaration_is_dropped() {
        let doc = Bytes::from("<?xml version=\"1.0\"?>\n<Error><Code>X</Code></Error>");
        assert_eq!(
            &without_declaration(doc)[..],
            b"\n<Error><Code>X</Code></Error>"
        );
        let bare = Bytes::from("<CompleteMultipartUploadResult/>");
        assert_eq!(without_declaration(bare.clone()), bare);
    }

    #[tokio::test]
    async fn a_quick_outcome_is_answered_as_it_is() {
        let work = async { Err(Error::new(crate::error::Code::NoSuchKey)) };
        let e = answer(work, "/b/k".into(), "id".into()).await.unwrap_err();
        assert_eq!(e.code, crate::error::Code::NoSuchKey);
    }
}
