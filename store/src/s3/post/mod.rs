//! Browser form uploads (POST Object): a `multipart/form-data` POST to a bucket whose fields
//! carry the key, the object's headers, a base64 policy and a signature over it. The same for
//! both front ends: [`accept`] reads the form up to its file ([`form`]), verifies the signature
//! ([`signature`]) and the policy ([`policy`]), asks the front end's
//! [`FrontEnd::authorize`] as for any request, and hands back the upload: the object's key and
//! headers (as a PutObject would send them), the file as a stream bounded by the policy's
//! `content-length-range`, and how to answer ([`Answer`]). The store writes it like a PutObject;
//! the edge relays it to the store as one. [`accept`] is [`read`] then [`check`]; the edge
//! calls them apart, to send on a form only the store can check (SigV2 by a client's key).
//!
//! ```text
//!  body ─► form: fields (≤ 20 KiB) ─► signature (x-amz-* or SigV2) ─► policy: expiry,
//!          conditions, no extra field ─► acl private only ─► authorize (s3:PutObject on
//!          bucket/key) ─► Upload { key, headers, file ≤ content-length-range, answer }
//! ```

pub mod form;
#[cfg(test)]
mod mangle;
pub mod policy;
pub mod signature;

use std::time::SystemTime;

use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::Response;
use super::context::{Access, FrontEnd};
use super::route::{Endpoint, Route};
use crate::engine::ByteStream;
use crate::error::{Code, Error, Result};
use policy::{LengthRange, Policy};

/// A form upload that passed every check, ready to be stored.
pub struct Upload {
    /// The bucket and the key (after `${filename}`), as authorised.
    pub route: Route,
    pub access: Access,
    /// The object's headers, as a PutObject carries them: Content-Type, Cache-Control,
    /// Content-Disposition, Content-Encoding, Content-Language, Expires, Content-MD5 (checked
    /// as on a PutObject) and `x-amz-*` (user metadata, storage class, checksums...), from
    /// the form's fields.
    pub headers: HeaderMap,
    /// The file's bytes; ends in EntityTooLarge / EntityTooSmall (instead of ending cleanly)
    /// outside the policy's `content-length-range`, so nothing is stored.
    pub file: ByteStream,
    pub answer: Answer,
}

/// Reads and checks a form upload addressed to `route` (a [`Endpoint::PostObject`]).
/// `body` is the client's body as it arrives.
pub async fn accept<F: FrontEnd>(
    front: &F,
    parts: &http::request::Parts,
    route: &Route,
    body: ByteStream,
) -> Result<Upload> {
    check(front, parts, route, read(parts, body).await?).await
}

/// Reads the form of `parts` up to its file ([`form::read`]).
pub async fn read(parts: &http::request::Parts, body: ByteStream) -> Result<form::Form> {
    let content_type = super::headers::get(&parts.headers, "content-type");
    form::read(content_type, body).await
}

/// Checks `form` (signature, policy, ACL, authorisation) as [`accept`] does.
pub async fn check<F: FrontEnd>(
    front: &F,
    parts: &http::request::Parts,
    route: &Route,
    mut form: form::Form,
) -> Result<Upload> {
    let settings = front.settings();
    form.expand_filename();
    let key = form
        .fields
        .iter()
        .find(|(name, _)| name == "key")
        .map(|(_, key)| key.clone())
        .ok_or_else(|| signature::missing("key"))?;
    if key.is_empty() {
        return Err(Error::msg(
            Code::InvalidArgument,
            "User key must have a length greater than 0.",
        ));
    }
    super::check_key(&key, true)?;
    // The facts the policy's conditions read: the form's fields, the bucket the request
    // addresses, and the key.
    let field = |name: &str| match name {
        "bucket" => Some(route.bucket.as_str()),
        "key" => Some(key.as_str()),
        // The fields alone: the form's file stream is not Sync.
        _ => form
            .fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str()),
    };
    let signed = signature::verify(field, settings.keyring, settings.region)?;
    let range = match signed.policy {
        Some(encoded) => Policy::parse(encoded)?.check(
            SystemTime::now().into(),
            field,
            form.fields.iter().map(|(n, _)| n.as_str()),
        )?,
        None => LengthRange::ANY,
    };
    check_acl(field("acl"))?;
    let headers = object_headers(&form.fields)?;
    let answer = Answer::new(
        field("success_action_redirect").or(field("redirect")),
        field("success_action_status"),
    );
    let target = Route {
        endpoint: Endpoint::PostObject,
        bucket: route.bucket.clone(),
        key: key.clone(),
    };
    let access = front.authorize(parts, &target, &signed.identity).await?;
    Ok(Upload {
        route: target,
        access,
        headers,
        file: bounded(form.file, range),
        answer,
    })
}

/// Buckets own their objects (AWS's default "bucket owner enforced"): a canned ACL other than
/// the owner's is refused, never accepted and ignored.
fn check_acl(acl: Option<&str>) -> Result<()> {
    match acl {
        None | Some("private" | "bucket-owner-full-control") => Ok(()),
        Some(_) => Err(Error::new(Code::AccessControlListNotSupported)),
    }
}

/// Form fields that are the object's headers.
const HEADER_FIELDS: &[&str] = &[
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
    "content-md5",
];

/// Fields that sign the form rather than describe the object.
const SIGNING_FIELDS: &[&str] = &[
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-signature",
    "x-amz-security-token",
];

/// The `x-amz-*` fields that are object headers (AWS's POST Object form fields). Any other
/// `x-amz-*` field is refused: headers such as `x-amz-copy-source` or
/// `x-amz-decoded-content-length` would change what the PutObject does.
fn is_amz_header(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "x-amz-meta-",
        "x-amz-checksum-",
        "x-amz-server-side-encryption",
        "x-amz-object-lock-",
    ];
    matches!(
        name,
        "x-amz-storage-class" | "x-amz-website-redirect-location"
    ) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// The object's headers from the form's fields (the operation then refuses those it does not
/// support, as for a PutObject: server-side encryption, object lock). `tagging` is refused
/// here: it is XML in a form, a header elsewhere.
fn object_headers(fields: &[(String, String)]) -> Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    for (name, value) in fields {
        let name = name.as_str();
        if name == "tagging" {
            return Err(Error::msg(
                Code::NotImplemented,
                "Object tagging is not supported yet (tagging).",
            ));
        }
        let amz = name.starts_with("x-amz-") && !SIGNING_FIELDS.contains(&name);
        if amz && !is_amz_header(name) {
            return Err(Error::msg(
                Code::InvalidArgument,
                format!("The form field {name} is not supported in a POST upload."),
            ));
        }
        if !amz && !HEADER_FIELDS.contains(&name) {
            continue;
        }
        let invalid = || {
            Error::msg(
                Code::InvalidArgument,
                format!("The form field {name} cannot be an object header."),
            )
        };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_bytes(value.as_bytes()).map_err(|_| invalid())?;
        headers.append(header, value);
    }
    Ok(headers)
}

/// `file` under `range`: EntityTooLarge as soon as it passes the maximum, EntityTooSmall at
/// its end when short of the minimum; either way it never ends cleanly, so nothing is stored.
fn bounded(file: ByteStream, range: LengthRange) -> ByteStream {
    let state = (file, 0u64, false);
    futures::stream::unfold(state, move |(mut file, seen, done)| async move {
        if done {
            return None;
        }
        match file.next().await {
            Some(Ok(piece)) => {
                let seen = seen + piece.len() as u64;
                if seen > range.max {
                    let e = Error::msg(
                        Code::EntityTooLarge,
                        "Your proposed upload exceeds the maximum allowed size",
                    )
                    .with_detail("MaxSizeAllowed", range.max.to_string());
                    return Some((Err(e), (file, seen, true)));
                }
                Some((Ok(piece), (file, seen, false)))
            }
            Some(Err(e)) => Some((Err(e), (file, seen, true))),
            None if seen < range.min => {
                let e = Error::msg(
                    Code::EntityTooSmall,
                    "Your proposed upload is smaller than the minimum allowed size",
                )
                .with_detail("ProposedSize", seen.to_string())
                .with_detail("MinSizeAllowed", range.min.to_string());
                Some((Err(e), (file, seen, true)))
            }
            None => None,
        }
    })
    .boxed()
}

/// How a stored form upload is answered (`success_action_redirect`, else
/// `success_action_status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 303 See Other to this URL, with `bucket`, `key` and `etag` added to its query.
    Redirect(String),
    /// 200 or 204 with an empty body, or 201 with a `PostResponse` document.
    Status(StatusCode),
}

impl Answer {
    /// From the form's fields. As at AWS, a redirect that is not an http(s) URL is ignored,
    /// and a status other than 200 or 201 answers 204.
    pub fn new(redirect: Option<&str>, status: Option<&str>) -> Answer {
        if let Some(url) =
            redirect.filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        {
            return Answer::Redirect(url.to_owned());
        }
        Answer::Status(match status {
            Some("200") => StatusCode::OK,
            Some("201") => StatusCode::CREATED,
            _ => StatusCode::NO_CONTENT,
        })
    }

    /// The answer once the object is stored with `etag` (hex, unquoted). `location` is the
    /// object's URL.
    pub fn response(&self, route: &Route, etag: &str, location: &str) -> Response {
        let quoted = super::headers::quote_etag(etag);
        let enc = |s: &str| super::auth::sigv4::uri_encode(s, false);
        let (status, location, body) = match self {
            Answer::Redirect(url) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                let target = format!(
                    "{url}{sep}bucket={}&key={}&etag={}",
                    enc(&route.bucket),
                    enc(&route.key),
                    enc(&quoted)
                );
                (StatusCode::SEE_OTHER, target, None)
            }
            Answer::Status(StatusCode::CREATED) => {
                let esc = |s: &str| quick_xml::escape::escape(s).into_owned();
                let xml = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></PostResponse>",
                    esc(location),
                    esc(&route.bucket),
                    esc(&route.key),
                    esc(&quoted)
                );
                (StatusCode::CREATED, location.to_owned(), Some(xml))
            }
            Answer::Status(status) => (*status, location.to_owned(), None),
        };
        let mut response = match body {
            Some(xml) => super::xml_response(xml),
            None => super::empty_response(status),
        };
        *response.status_mut() = status;
        let headers = response.headers_mut();
        for (name, value) in [
            (http::header::ETAG, quoted),
            (http::header::LOCATION, location),
        ] {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
        response
    }
}

/// The object's URL as the client addressed the bucket: `http(s)://host/bucket/key`
/// path-style, `http(s)://host/key` virtual-hosted.
pub fn location(parts: &http::request::Parts, route: &Route) -> String {
    let scheme = super::context::scheme(parts);
    let host = super::headers::get(&parts.headers, "host").unwrap_or("localhost");
    let key = super::auth::sigv4::uri_encode(&route.key, true);
    if parts.uri.path() == "/" {
        format!("{scheme}://{host}/{key}")
    } else {
        format!("{scheme}://{host}/{}/{key}", route.bucket)
    }
}
