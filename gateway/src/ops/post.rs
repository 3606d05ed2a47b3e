//! PostObject through the edge: the form is checked here with the protocol kit
//! ([`outpost_store::s3::post`]: the signature against the edge's keyring, the policy, its
//! conditions, the edge's authorisation), then its file is relayed to the origin as a
//! streaming PutObject signed with the edge's key (anonymous forms go unsigned, for the
//! origin's policy to decide), carrying the object's headers from the form. The client is
//! answered as the store answers a form (status, XML or redirect), and the edge's copies of
//! the key are dropped as for any write.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::Method;
use outpost_store::error::Result;
use outpost_store::s3::context::Context;
use outpost_store::s3::{auth, post};

use super::forward::write_through;
use crate::edge::Edge;
use crate::origin::{self, OriginError, OriginRequest};

pub(crate) async fn post_object(edge: &Arc<Edge>, context: Context) -> Result<Response> {
    let (body, _) = context.body.into_stream();
    let upload = post::accept(&**edge, &context.parts, &context.route, body).await?;
    let route = &upload.route;
    let mut headers = upload.headers;
    let anonymous = edge.relay_as(&context.parts, &upload.access, &mut headers);
    let request = OriginRequest {
        method: Method::PUT,
        path_and_query: origin::path(&route.bucket, &route.key, ""),
        headers,
        anonymous,
        aws_chunked: false,
    };
    // The length is known only at the end: the last piece is held until the file's checks
    // (its content-length-range, its closing boundary) pass, so a failing file leaves the
    // origin a body cut short, which it never commits.
    let file = Body::from_stream(auth::held_until_checked(upload.file));
    let response = edge.origins.send(request, file, None).await;
    edge.cache
        .invalidate(&[format!("/{}/{}", route.bucket, route.key)]);
    let response = response.map_err(OriginError::into_client_error)?;
    if !response.status().is_success() {
        return Ok(origin::to_client(response));
    }
    let etag = response
        .headers()
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned();
    write_through(edge, &route.bucket, &route.key);
    let location = post::location(&context.parts, route);
    Ok(upload.answer.response(route, &etag, &location))
}
