//! PostObject through the edge: the form is checked here with the protocol kit
//! ([`outpost_store::s3::post`]: the signature against the edge's keyring, the policy, its
//! conditions, the edge's authorisation), then its file is relayed to the origin as a
//! streaming PutObject signed with the edge's key (anonymous forms go unsigned, for the
//! origin's policy to decide), carrying the object's headers from the form. The client is
//! answered as the store answers a form (status, XML or redirect), and the edge's copies of
//! the key are dropped as for any write. A SigV2 form by a client's key, which only the
//! store can check, goes to the store as a form ([`relay_unverifiable`]).

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method};
use outpost_store::error::Result;
use outpost_store::s3::context::Context;
use outpost_store::s3::route::{Endpoint, Route};
use outpost_store::s3::{auth, post};

use super::forward::write_through;
use crate::edge::Edge;
use crate::origin::{self, OriginError, OriginRequest};

pub(crate) async fn post_object(edge: &Arc<Edge>, context: Context) -> Result<Response> {
    let (body, _) = context.body.into_stream();
    let form = post::read(&context.parts, body).await?;
    let unverifiable = post::signature::unverifiable_here(&|n| form.field(n), &edge.keyring);
    if unverifiable {
        return relay_unverifiable(edge, &context.parts, &context.route.bucket, form).await;
    }
    let upload = post::check(&**edge, &context.parts, &context.route, form).await?;
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
    answered(edge, &context.parts, route, &upload.answer, response)
}

/// A SigV2 form by a client's key ([`post::signature::unverifiable_here`]): only the store
/// holds the secret that checks it, so the form goes to the store (its fields, its file as
/// it arrives, [`post::form::Form::encode`]), unsigned by the edge,
/// and the store checks the signature, the policy and the key's rights (on the edge's
/// address for `aws:SourceIp`, as for SigV2 presigned URLs).
async fn relay_unverifiable(
    edge: &Arc<Edge>,
    parts: &http::request::Parts,
    bucket: &str,
    mut form: post::form::Form,
) -> Result<Response> {
    // Expanded here as the store would: the answer's key and redirect are the store's.
    form.expand_filename();
    let redirect = form
        .field("success_action_redirect")
        .or(form.field("redirect"));
    let answer = post::Answer::new(redirect, form.field("success_action_status"));
    let key = form.field("key").unwrap_or_default().to_owned();
    let route = Route {
        endpoint: Endpoint::PostObject,
        bucket: bucket.to_owned(),
        key,
    };
    let (content_type, body) = form.encode()?;
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).expect("a boundary of hex digits"),
    );
    let request = OriginRequest {
        method: Method::POST,
        path_and_query: origin::path(&route.bucket, "", ""),
        headers,
        anonymous: true,
        aws_chunked: false,
    };
    let response = edge
        .origins
        .send(request, Body::from_stream(body), None)
        .await;
    edge.cache
        .invalidate(&[format!("/{}/{}", route.bucket, route.key)]);
    answered(edge, parts, &route, &answer, response)
}

/// The client's answer to a form the store took (`answer`, naming the object at the edge),
/// or the store's refusal as it gave it.
fn answered(
    edge: &Arc<Edge>,
    parts: &http::request::Parts,
    route: &Route,
    answer: &post::Answer,
    response: std::result::Result<origin::OriginResponse, OriginError>,
) -> Result<Response> {
    let response = response.map_err(OriginError::into_client_error)?;
    let status = response.status();
    if !status.is_success() && status != http::StatusCode::SEE_OTHER {
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
    let location = post::location(parts, route);
    Ok(answer.response(route, &etag, &location))
}
