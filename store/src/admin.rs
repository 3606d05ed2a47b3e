//! The store's admin API under `/_outpost/admin/`: access keys and their grants, JSON in and
//! out, callable only by the root key (what `outpost key ...` talks to); and the document an
//! edge polls to check its own clients, callable by the root key and edge keys.
//!
//! ```text
//!   POST   /_outpost/admin/keys              {name, edge}   → 201 {name, access_key_id,
//!                                                                  secret_access_key, edge}
//!   GET    /_outpost/admin/keys                             → {keys: [key, ...]}
//!   GET    /_outpost/admin/keys/NAME                        → key (grants, create_bucket, edge,
//!                                                                  created; never the secret)
//!   DELETE /_outpost/admin/keys/NAME                        → {deleted: NAME}
//!   POST   /_outpost/admin/keys/NAME/allow   {bucket, read, write, owner} | {create_bucket: true}
//!   POST   /_outpost/admin/keys/NAME/deny    (the same)     → key
//!   GET    /_outpost/admin/edge/access                      → access::edge::EdgeAccess, ETag
//!                                                             (root and edge keys; 304 to a
//!                                                             matching If-None-Match)
//! ```
//!
//! Each request goes through the kit's SigV4 check ([`auth::authenticate`]) against the
//! keyring, must be signed by a root key with the body's SHA-256 in `x-amz-content-sha256`
//! (no `UNSIGNED-PAYLOAD`, no presigned URL: a signature must cover what it changes), and its
//! body is checked against that hash before it is parsed. The answer to a key's creation is
//! the only one that carries its secret. Errors are `{"code", "message", "request_id"}` with
//! the code's status: 403 (AccessDenied, SignatureDoesNotMatch, InvalidAccessKeyId), 404
//! (NoSuchAccessKey, NoSuchBucket), 409 (AccessKeyAlreadyExists), 400 (MalformedJSON,
//! InvalidArgument, XAmzContentSHA256Mismatch).

use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::State;
use http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Digest;

use crate::access::Grant;
use crate::access::edge::{EdgeAccess, EdgeBucket, EdgeKey, signing_dates};
use crate::engine::keys::Key;
use crate::engine::{Kind, What};
use crate::error::{Code, Error, Result};
use crate::s3::auth::{self, AuthParams, Identity, Payload};
use crate::s3::context::FrontEnd;
use crate::s3::{S3, body, finish_response, request_id, serve::Asked, xml};

/// Where the admin API lives.
pub const PREFIX: &str = "/_outpost/admin/";
/// The largest request body an admin call takes.
const MAX_BODY: usize = 16 << 10;
/// The longest key name.
const MAX_NAME: usize = 64;

/// Answers one admin request (the router sends `/_outpost/admin/*` here).
pub async fn handle(
    State(s3): State<Arc<S3>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    let id = request_id();
    let (parts, body) = request.into_parts();
    let asked = Asked::of(&parts);
    let (answer, etag) = match answer(&s3, &parts, body).await {
        Ok(Reply::Json(status, answer)) => (Ok((status, answer)), None),
        Ok(Reply::Versioned(answer, etag)) => (Ok((StatusCode::OK, answer)), Some(etag)),
        Ok(Reply::NotModified(etag)) => {
            let mut response = http::Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .header(http::header::ETAG, etag)
                .body(Body::empty())
                .expect("static response parts are valid");
            finish_response(&mut response, &id, asked);
            return response;
        }
        Err(e) => (Err(e), None),
    };
    let mut response = json_response(answer, &parts, &id, asked);
    if let Some(etag) = etag {
        let value = http::HeaderValue::from_str(&etag).expect("a hex ETag is a header value");
        response.headers_mut().insert(http::header::ETAG, value);
    }
    response
}

/// A JSON answer, or an error as `{"code", "message"}` with its status, carrying the request
/// id (the one its log lines carry). Shared with the change feed's calls (`feed.rs`).
pub(crate) fn json_response(
    answer: Result<(StatusCode, Value)>,
    parts: &http::request::Parts,
    id: &str,
    asked: Asked,
) -> axum::response::Response {
    let (status, mut answer) = answer.unwrap_or_else(|e| {
        let path = parts.uri.path();
        if e.code == Code::InternalError {
            tracing::error!(request_id = id, path, error = ?e, "admin request failed");
        } else {
            tracing::debug!(request_id = id, path, error = ?e, "admin request refused");
        }
        let body = json!({ "code": e.code.as_str(), "message": e.message() });
        (e.code.status(), body)
    });
    answer["request_id"] = Value::String(id.to_owned());
    let text = answer.to_string();
    let mut response = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, text.len())
        .body(Body::from(text))
        .expect("static response parts are valid");
    finish_response(&mut response, id, asked);
    response
}

/// What a call answers.
enum Reply {
    Json(StatusCode, Value),
    /// A document with its version (its ETag), answered 304 to a poll that holds it.
    Versioned(Value, String),
    NotModified(String),
}

/// Authenticates, reads the checked body, and runs the call the path names.
async fn answer(s3: &S3, parts: &http::request::Parts, body: Body) -> Result<Reply> {
    let path = parts.uri.path().strip_prefix(PREFIX).unwrap_or_default();
    if path == "edge/access" {
        return edge_access(s3, parts).await;
    }
    let (caller, payload) = authenticate(s3, parts)?;
    if !s3.keyring.is_root(&caller) {
        return Err(Error::msg(
            Code::AccessDenied,
            "The admin API is for the root key only.",
        ));
    }
    let settings = s3.settings();
    let raw = body::client_body(body, settings.body_limits, |_| {});
    let (checked, _) = auth::verified_body(raw, payload);
    let body = xml::read_small_body(checked, MAX_BODY).await?;
    let segments: Vec<&str> = path.split('/').collect();
    match (&parts.method, segments.as_slice()) {
        (&Method::POST, ["keys"]) => {
            let (status, answer) = create(s3, &body).await?;
            Ok(Reply::Json(status, answer))
        }
        (&Method::GET, ["keys"]) => ok(json!({
            "keys": s3.engine.keys().keys().map(|k| summary(k)).collect::<Vec<_>>(),
        })),
        (&Method::GET, ["keys", name]) => ok(info(known(s3, name)?.as_ref())),
        (&Method::DELETE, ["keys", name]) => {
            s3.engine.delete_key(name).await.map_err(key_error(name))?;
            tracing::info!(key = name, "admin: access key deleted");
            ok(json!({ "deleted": name }))
        }
        (&Method::POST, ["keys", name, verb @ ("allow" | "deny")]) => {
            let key = change(s3, name, *verb == "allow", &body).await?;
            ok(info(&key))
        }
        (_, ["keys"] | ["keys", _] | ["keys", _, "allow" | "deny"]) => {
            Err(Error::new(Code::MethodNotAllowed))
        }
        _ => Err(Error::msg(Code::InvalidURI, "No such admin API call.")),
    }
}

fn ok(value: Value) -> Result<Reply> {
    Ok(Reply::Json(StatusCode::OK, value))
}

/// The request's signature checked against the keyring (the store's keys and the root key).
/// Shared with the change feed's calls (`feed.rs`).
pub(crate) fn verified(s3: &S3, parts: &http::request::Parts) -> Result<auth::Authenticated> {
    auth::authenticate(
        parts,
        &AuthParams {
            keyring: &s3.keyring,
            region: &s3.config.region,
            bucket: "",
            now: SystemTime::now(),
            max_skew: crate::s3::MAX_CLOCK_SKEW,
        },
    )
}

/// The caller's access key id and the request's payload check, once its signature is
/// verified with a signed body hash.
fn authenticate(s3: &S3, parts: &http::request::Parts) -> Result<(String, Payload)> {
    let authenticated = verified(s3, parts)?;
    let Identity::Key(caller) = authenticated.identity else {
        return Err(Error::msg(
            Code::AccessDenied,
            "The admin API is for the root key only.",
        ));
    };
    match authenticated.payload {
        payload @ Payload::Sha256(_) => Ok((caller, payload)),
        _ => Err(Error::msg(
            Code::AccessDenied,
            "The admin API needs the body's SHA-256 signed in x-amz-content-sha256.",
        )),
    }
}

/// `GET edge/access`: what an edge needs to check its own clients ([`EdgeAccess`]), for the
/// root key and edge keys only; `If-None-Match` with the current version answers 304.
///
/// A GET changes nothing, so its body's hash need not be signed (an edge signs
/// `UNSIGNED-PAYLOAD`); a presigned URL is refused all the same: it would be a bearer token
/// for every key's signing keys.
async fn edge_access(s3: &S3, parts: &http::request::Parts) -> Result<Reply> {
    let Identity::Key(caller) = verified(s3, parts)?.identity else {
        return Err(Error::new(Code::AccessDenied));
    };
    if !parts.headers.contains_key(http::header::AUTHORIZATION) {
        return Err(Error::msg(
            Code::AccessDenied,
            "The edge access document needs a signed Authorization header.",
        ));
    }
    let caller = caller.as_str();
    let keys = s3.engine.keys();
    let caller_is_edge = match keys.by_access_key(caller) {
        Some(key) if key.edge => true,
        _ if s3.keyring.is_root(caller) => false,
        _ => {
            return Err(Error::msg(
                Code::AccessDenied,
                "The edge access document is for edge keys and the root key only.",
            ));
        }
    };
    if parts.method != Method::GET {
        return Err(Error::new(Code::MethodNotAllowed));
    }
    let region = &s3.config.region;
    let dates = signing_dates(SystemTime::now());
    let published = |key: &Key| EdgeKey {
        name: key.name.clone(),
        create_bucket: key.create_bucket,
        grants: key.grants.clone(),
        signing_keys: dates
            .iter()
            .map(|date| {
                let derived = auth::sigv4::signing_key(key.secret.expose(), date, region, "s3");
                (date.clone(), hex::encode(derived))
            })
            .collect(),
    };
    let mut doc = EdgeAccess {
        region: region.clone(),
        caller_is_edge,
        keys: keys
            .keys()
            .filter(|k| !k.edge)
            .map(|k| (k.access_key_id.clone(), published(k)))
            .collect(),
        ..EdgeAccess::default()
    };
    for bucket in s3.engine.list_buckets().await? {
        let settings = bucket.settings;
        let published = EdgeBucket {
            policy: settings.policy,
            public_access_block: settings.public_access_block.unwrap_or_default(),
            public_read_acl: settings.public_read_acl,
        };
        doc.buckets.insert(bucket.name, published);
    }
    let value = serde_json::to_value(&doc).map_err(Error::internal)?;
    let etag = format!(
        "\"{}\"",
        hex::encode(sha2::Sha256::digest(value.to_string().as_bytes()))
    );
    let held = parts.headers.get(http::header::IF_NONE_MATCH);
    if held.is_some_and(|v| v.as_bytes() == etag.as_bytes()) {
        return Ok(Reply::NotModified(etag));
    }
    Ok(Reply::Versioned(value, etag))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    #[serde(default)]
    edge: bool,
}

/// Rights to add (`allow`) or take away (`deny`): on a bucket, and/or the right to create
/// buckets.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rights {
    bucket: Option<String>,
    #[serde(default)]
    read: bool,
    #[serde(default)]
    write: bool,
    #[serde(default)]
    owner: bool,
    #[serde(default)]
    create_bucket: bool,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| {
        Error::msg(
            Code::MalformedJSON,
            format!("The request body is not the JSON this call expects: {e}."),
        )
    })
}

async fn create(s3: &S3, body: &[u8]) -> Result<(StatusCode, Value)> {
    let request: CreateKey = parse(body)?;
    check_name(&request.name)?;
    let key = s3
        .engine
        .create_key(&request.name, request.edge)
        .await
        .map_err(|e| match e.kind() {
            Kind::AlreadyExists => Error::msg(
                Code::AccessKeyAlreadyExists,
                format!("A key named {} already exists.", request.name),
            ),
            _ => e.into(),
        })?;
    tracing::info!(
        key = key.name,
        access_key_id = key.access_key_id,
        edge = key.edge,
        "admin: access key created"
    );
    let answer = json!({
        "name": key.name,
        "access_key_id": key.access_key_id,
        "secret_access_key": key.secret.expose(),
        "edge": key.edge,
    });
    Ok((StatusCode::CREATED, answer))
}

async fn change(s3: &S3, name: &str, allow: bool, body: &[u8]) -> Result<Arc<Key>> {
    let rights: Rights = parse(body)?;
    let grant = Grant {
        read: rights.read,
        write: rights.write,
        owner: rights.owner,
    };
    let on_bucket = !grant.is_none();
    if rights.bucket.is_some() != on_bucket || !(on_bucket || rights.create_bucket) {
        return Err(Error::msg(
            Code::InvalidArgument,
            "Name a bucket and at least one of read, write, owner; or create_bucket.",
        ));
    }
    let mut key = known(s3, name)?;
    if let Some(bucket) = &rights.bucket {
        let engine = &s3.engine;
        let changed = if allow {
            engine.allow(name, bucket, grant).await
        } else {
            engine.deny(name, bucket, grant).await
        };
        key = changed.map_err(key_error(name))?;
    }
    if rights.create_bucket {
        key = s3
            .engine
            .set_create_bucket(name, allow)
            .await
            .map_err(key_error(name))?;
    }
    let verb = if allow { "allowed" } else { "denied" };
    tracing::info!(
        key = name,
        bucket = rights.bucket,
        read = grant.read,
        write = grant.write,
        owner = grant.owner,
        create_bucket = rights.create_bucket,
        "admin: rights {verb}"
    );
    Ok(key)
}

/// The key named `name` in the live directory, or NoSuchAccessKey.
fn known(s3: &S3, name: &str) -> Result<Arc<Key>> {
    s3.engine
        .keys()
        .by_name(name)
        .cloned()
        .ok_or_else(|| no_such_key(name))
}

fn no_such_key(name: &str) -> Error {
    Error::msg(
        Code::NoSuchAccessKey,
        format!("No access key is named {name}."),
    )
}

/// An engine failure on the key `name`, naming it when no key has that name.
fn key_error(name: &str) -> impl FnOnce(crate::engine::Error) -> Error + '_ {
    move |e| match e.kind() {
        Kind::NotFound(What::AccessKey) => no_such_key(name),
        _ => e.into(),
    }
}

/// Letters, digits, `.`, `_` and `-`, at most [`MAX_NAME`], not `.` or `..`: a name that is
/// one segment of a URL path, a shell word and a log field as it is. `outpost key` checks a
/// name with this before it puts it in a path (a `?` or `#` there would name another key).
pub fn check_name(name: &str) -> Result<()> {
    let valid = (1..=MAX_NAME).contains(&name.len())
        && !matches!(name, "." | "..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid {
        return Ok(());
    }
    Err(Error::msg(
        Code::InvalidArgument,
        format!("A key name is 1 to {MAX_NAME} letters, digits, '.', '_' or '-' (not . or ..)."),
    ))
}

/// What a listing shows of a key.
fn summary(key: &Key) -> Value {
    json!({
        "name": key.name,
        "access_key_id": key.access_key_id,
        "edge": key.edge,
        "create_bucket": key.create_bucket,
        "created": xml::iso8601(key.created),
    })
}

/// What `key info` shows: the summary and the grants (never the secret).
fn info(key: &Key) -> Value {
    let mut value = summary(key);
    value["grants"] = key
        .grants
        .iter()
        .map(|(bucket, g)| json!({ "bucket": bucket, "read": g.read, "write": g.write, "owner": g.owner }))
        .collect();
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_are_safe_words() {
        for ok in ["app", "web-1", "a.b_c", "...", &"x".repeat(MAX_NAME)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "a/b",
            "é",
            "a%2F",
            &"x".repeat(MAX_NAME + 1),
            "$(id)",
            ".",
            "..",
        ] {
            assert_eq!(
                check_name(bad).unwrap_err().code,
                Code::InvalidArgument,
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_json_is_malformed_json() {
        assert_eq!(
            parse::<CreateKey>(b"{").unwrap_err().code,
            Code::MalformedJSON
        );
        let unknown = parse::<CreateKey>(br#"{"name":"a","admin":true}"#);
        assert_eq!(unknown.unwrap_err().code, Code::MalformedJSON);
        assert!(parse::<CreateKey>(br#"{"name":"a"}"#).is_ok());
    }
}
