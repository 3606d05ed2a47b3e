//! The client side of multipart uploads at the edge. UploadPart is checked and answered from
//! the edge's spool (`spool/`); ListParts answers from what the spool holds, by the store's own
//! writer, with the upload's checksum settings noted from the CreateMultipartUpload answer the
//! edge relayed; Complete only once the store holds every part (kept alive as S3 does when that
//! takes long), Abort at once, both forwarded to the store and ending the upload's spool.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use outpost_store::engine::{ChecksumAlgorithm, ChecksumType, PartInfo};
use outpost_store::error::{Code, Error, Result};
use outpost_store::s3::auth;
use outpost_store::s3::context::{Access, Context};
use outpost_store::s3::kept_alive;
use outpost_store::s3::ops::multipart::{PartsPage, list_parts_answer, object_location};
use outpost_store::s3::route::{ListPartsParams, PartParams, Route};
use outpost_store::s3::xml;
use serde::Deserialize;

use super::forward::{forward, write_through};
use crate::edge::Edge;
use crate::origin::{self, OriginRequest};
use crate::spool::PartOf;

/// CreateMultipartUpload goes to the store; the edge notes the upload's checksum settings from
/// the answer, so ListParts of parts it holds names them even while the store is away.
pub(crate) async fn create_upload(edge: &Arc<Edge>, context: Context) -> Result<Response> {
    let response = forward(edge, context).await?;
    if !response.status().is_success() {
        return Ok(response);
    }
    let (head, body) = response.into_parts();
    let document = store_answer(body, "CreateMultipartUpload").await?;
    if let Ok(created) = xml::parse::<Created>(&document) {
        let text = |name| {
            head.headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let checksum = StoreUpload {
            checksum_algorithm: text("x-amz-checksum-algorithm").map(str::to_owned),
            checksum_type: text("x-amz-checksum-type").map(str::to_owned),
        };
        edge.spool
            .mark_known(&created.upload_id, Some(checksum.checksum()));
    }
    Ok(Response::from_parts(head, Body::from(document)))
}

/// The store's InitiateMultipartUploadResult, as far as the edge reads it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Created {
    upload_id: String,
}

/// UploadPart: checked and spooled durably at the edge, answered at once with the part's ETag
/// (and checksum); the spool's workers push it to the store.
pub(crate) async fn upload_part(
    edge: &Arc<Edge>,
    context: Context,
    part: &PartParams,
) -> Result<Response> {
    let Context {
        parts, route, body, ..
    } = context;
    let route = &route;
    let (upload_id, part_number) = (part.upload_id.as_str(), part.part_number);
    if !edge.spool.is_known(upload_id) {
        let learned = store_upload(edge, route, upload_id).await?;
        edge.spool
            .mark_known(upload_id, learned.map(|u| u.checksum()));
    }
    let declared = ["x-amz-decoded-content-length", "content-length"]
        .iter()
        .find_map(|h| parts.headers.get(*h)?.to_str().ok()?.parse().ok());
    let (body, trailers) = body.into_stream();
    let spooled = edge
        .spool
        .put_part(
            PartOf {
                bucket: &route.bucket,
                key: &route.key,
                upload_id,
                number: part_number,
            },
            &parts.headers,
            declared,
            body,
            trailers,
        )
        .await?;
    let mut response = http::Response::builder()
        .header(http::header::ETAG, format!("\"{}\"", spooled.md5_hex))
        .header(http::header::CONTENT_LENGTH, 0);
    if let Some((name, value)) = spooled.checksum {
        response = response.header(name, value);
    }
    Ok(response.body(Body::empty()).expect("valid response"))
}

/// ListParts answers from what the edge holds when parts went through it (some may not be at
/// the store yet: a client resuming an upload sees them), otherwise from the store.
pub(crate) async fn list_parts(
    edge: &Arc<Edge>,
    context: Context,
    list: &ListPartsParams,
) -> Result<Response> {
    let upload_id = &list.upload_id;
    let held = match context.access {
        Access::Signed(_) => edge.spool.parts(upload_id),
        Access::Public(_) | Access::Pending => None,
    };
    let Some(held) = held else {
        return forward(edge, context).await;
    };
    let route = &context.route;
    // The upload's checksum settings: learned from the store's answers, or asked now.
    let checksum = match edge.spool.checksum(upload_id) {
        Some(learned) => learned,
        None => {
            let learned = store_upload(edge, route, upload_id)
                .await?
                .map(|u| u.checksum());
            edge.spool.mark_known(upload_id, learned);
            learned.flatten()
        }
    };
    let (marker, max) = (list.part_number_marker, list.max_parts);
    let after: Vec<PartInfo> = held
        .into_iter()
        .filter(|p| p.number > marker)
        .map(|p| PartInfo {
            part_number: p.number,
            size: p.size,
            etag: p.md5_hex,
            last_modified: p.modified,
            checksum: p.checksum.map(|(_, value)| value),
        })
        .collect();
    let page = PartsPage {
        bucket: &route.bucket,
        key: &route.key,
        upload_id,
        marker,
        max_parts: max,
        truncated: after.len() > max,
        owner: edge.config.access_key_id.as_deref().unwrap_or_default(),
        checksum,
    };
    Ok(list_parts_answer(&page, &after[..after.len().min(max)]))
}

/// What the store's ListParts says of an upload (the edge reads only its checksum settings).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StoreUpload {
    checksum_algorithm: Option<String>,
    checksum_type: Option<String>,
}

impl StoreUpload {
    fn checksum(&self) -> Option<(ChecksumAlgorithm, ChecksumType)> {
        let algorithm = ChecksumAlgorithm::from_name(self.checksum_algorithm.as_deref()?)?;
        let kind = self
            .checksum_type
            .as_deref()
            .and_then(ChecksumType::from_name);
        Some((algorithm, kind.unwrap_or(algorithm.default_type())))
    }
}

/// The upload as the store knows it (a ListParts of one part), asked for the first part of an
/// upload new to this edge: a part for an unknown one is NoSuchUpload at once, as from the
/// store. `None` when the store cannot be asked or its answer cannot be read: the part is
/// spooled anyway (that is what the spool is for) and Complete will tell.
async fn store_upload(
    edge: &Arc<Edge>,
    route: &Route,
    upload_id: &str,
) -> Result<Option<StoreUpload>> {
    let query = format!(
        "max-parts=1&uploadId={}",
        auth::sigv4::uri_encode(upload_id, false)
    );
    let request = OriginRequest {
        method: Method::GET,
        path_and_query: origin::path(&route.bucket, &route.key, &query),
        headers: HeaderMap::new(),
        anonymous: false,
        aws_chunked: false,
    };
    let Ok(response) = edge.origins.fetch(&request).await else {
        return Ok(None);
    };
    if response.status() == http::StatusCode::NOT_FOUND {
        return Err(Error::new(Code::NoSuchUpload));
    }
    if !response.status().is_success() {
        return Ok(None);
    }
    // Read under the same bound as the store's other small answers.
    let body = origin::to_client(response).into_body();
    let Ok(document) = store_answer(body, "ListParts").await else {
        return Ok(None);
    };
    Ok(xml::parse(&document).ok())
}

/// Complete waits until every part spooled for the upload is at the store (the client never
/// sees success for data the store does not hold), then goes to the store like Abort; either
/// ends the upload's spool. A wait that outlasts a few seconds is answered as S3 answers a long
/// Complete ([`kept_alive`]), so a large upload whose parts reach the store minutes after the
/// client sent them still completes in one call.
pub(crate) async fn finish_upload(
    edge: &Arc<Edge>,
    mut context: Context,
    upload_id: String,
) -> Result<Response> {
    if context.parts.method != Method::POST || context.access.is_public() {
        // Abort, or a Complete the store will refuse: nothing to wait for.
        let response = forward(edge, context).await?;
        if response.status().is_success() {
            edge.spool.forget(&upload_id);
        }
        return Ok(response);
    }
    context.body = context.body.read_whole(MAX_COMPLETE_BODY).await?;
    let location = client_location(edge, &context.parts, &context.route);
    let resource = context.parts.uri.path().to_owned();
    let request_id = context.id.clone();
    let route = context.route.clone();
    let edge = Arc::clone(edge);
    let work = async move {
        let wait = Duration::from_secs(edge.config.relay_wait_secs);
        edge.spool.settled(&upload_id, wait).await?;
        let response = forward(&edge, context).await?;
        if !response.status().is_success() {
            return Ok(response);
        }
        edge.spool.forget(&upload_id);
        write_through(&edge, &route.bucket, &route.key);
        let (mut head, body) = response.into_parts();
        let document = located(
            store_answer(body, "CompleteMultipartUpload").await?,
            &location,
        );
        head.headers.remove(http::header::CONTENT_LENGTH);
        Ok(Response::from_parts(head, Body::from(document)))
    };
    kept_alive::answer(work, resource, request_id).await
}

/// Complete's `<Location>` for the edge's client: the edge as that client addressed it.
fn client_location(edge: &Edge, parts: &http::request::Parts, route: &Route) -> String {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    object_location(
        outpost_store::s3::context::scheme(parts),
        host,
        edge.config.base_domain.as_deref(),
        &route.bucket,
        &route.key,
    )
}

/// The store's answer to `operation` (Create, Complete, a one-part ListParts), read whole under
/// [`MAX_COMPLETE_BODY`]: it is small.
async fn store_answer(body: Body, operation: &str) -> Result<Bytes> {
    axum::body::to_bytes(body, MAX_COMPLETE_BODY)
        .await
        .map_err(|e| {
            Error::msg(
                Code::ServiceUnavailable,
                format!("The store's answer to {operation} broke off: {e}"),
            )
        })
}

/// `document` with its `<Location>` (the store's own address) replaced by `location`.
fn located(document: Bytes, location: &str) -> Bytes {
    let text = String::from_utf8_lossy(&document);
    let (Some(start), Some(end)) = (text.find("<Location>"), text.find("</Location>")) else {
        return document;
    };
    let start = start + "<Location>".len();
    if end < start {
        return document;
    }
    let escaped = quick_xml::escape::escape(location);
    Bytes::from(format!("{}{escaped}{}", &text[..start], &text[end..]))
}

/// A CompleteMultipartUpload body of 10,000 parts with checksums is well under this.
const MAX_COMPLETE_BODY: usize = 4 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_of_a_completed_upload_is_replaced() {
        let doc = Bytes::from("<R><Location>http://10.0.0.5:9000/b/k</Location><Key>k</Key></R>");
        assert_eq!(
            &located(doc, "http://edge/b/k&x")[..],
            b"<R><Location>http://edge/b/k&amp;x</Location><Key>k</Key></R>"
        );
        let error = Bytes::from("<Error><Code>X</Code></Error>");
        assert_eq!(located(error.clone(), "http://edge/b/k"), error);
    }
}
