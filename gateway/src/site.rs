//! Serving a site (a distribution, or a bucket under the website domain) to browsers:
//! anonymous GET/HEAD, objects fetched with the edge's own signature (as CloudFront's origin
//! access), with static-website rules when the site is a website.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode};
use outpost_store::error::{Code, Error, Result};
use outpost_store::s3::context;
use percent_encoding::percent_decode_str;

use crate::cache::object::Object;
use crate::cache::outcome::CacheOutcome;
use crate::cache::read::Found;
use crate::config::Behavior;
use crate::distribution::Site;
use crate::edge::Edge;
use crate::respond::{answer, from_head, hint};
use crate::website::{self, Addressed, ErrorRoute, Route, WebsiteConfig};

/// A bucket's website configuration is re-read this often.
const CONFIG_TTL: Duration = Duration::from_secs(60);
/// Largest website configuration or error document read whole.
const MAX_SMALL: u64 = 1 << 20;

pub async fn handle(
    edge: &Arc<Edge>,
    parts: &http::request::Parts,
    site: &Site,
) -> Result<(Response, Option<CacheOutcome>)> {
    if parts.method != Method::GET && parts.method != Method::HEAD {
        return Err(Error::new(Code::MethodNotAllowed));
    }
    let path = percent_decode_str(parts.uri.path())
        .decode_utf8_lossy()
        .into_owned();
    let behavior = site.behavior(&path, &edge.default_behavior);
    // Request headers the behaviour keys on split the cache (as CloudFront's cache policy).
    let mut namespace = site.id.clone();
    for name in &behavior.header_keys {
        let value = parts
            .headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok());
        namespace.push_str(&format!("\t{name}={}", value.unwrap_or("")));
    }
    if !site.website {
        let key = path.trim_start_matches('/');
        let o = site_object(site, &namespace, behavior, parts, key);
        let found = o.lookup(&edge.cache, hint(parts)).await;
        let (response, outcome) = answer(edge, parts, &o, found).await?;
        return Ok((response, Some(outcome)));
    }
    // Website keys are worked out per request (index documents, error pages): each object
    // owns its key.
    let object = |key: &str| site_object(site, &namespace, behavior, parts, key).into_owned();
    let config = website_config(edge, site).await?;
    let here = Addressed {
        scheme: context::scheme(parts),
        host: parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
    };
    let key = match config.route(&path, here) {
        Route::Redirect(code, location) => return Ok((redirect(code, &location), None)),
        Route::Object(key) => key,
    };
    let o = object(&key);
    let found = o.lookup(&edge.cache, hint(parts)).await;
    let status = match &found {
        Found::Head(head, _) => head.status,
        Found::Passed(p) => p.status,
        _ => StatusCode::OK,
    };
    match found {
        Found::Head(head, outcome) if head.status == StatusCode::OK => {
            if let Some(location) = head.headers.get("x-amz-website-redirect-location") {
                let location = location.to_str().unwrap_or("/");
                return Ok((redirect(301, location), Some(outcome)));
            }
            Ok((from_head(edge, parts, &o, head).await?, Some(outcome)))
        }
        _ if matches!(status.as_u16(), 403 | 404) => {
            let response = not_found(edge, parts, &config, &key, status, here, &object).await?;
            Ok((response, None))
        }
        found => {
            let (response, outcome) = answer(edge, parts, &o, found).await?;
            Ok((response, Some(outcome)))
        }
    }
}

/// A missing key: its directory index, a routing rule, the error document, or a plain page.
async fn not_found(
    edge: &Arc<Edge>,
    parts: &http::request::Parts,
    config: &WebsiteConfig,
    key: &str,
    status: StatusCode,
    here: Addressed<'_>,
    object: &impl Fn(&str) -> Object<'static>,
) -> Result<Response> {
    if let Some(index) = config.directory_index(key) {
        let found = object(&index).lookup(&edge.cache, None).await;
        if matches!(found, Found::Head(h, _) if h.status == StatusCode::OK) {
            return Ok(redirect(302, &format!("/{key}/")));
        }
    }
    let page = match config.on_error(key, status.as_u16(), here) {
        ErrorRoute::Redirect(code, location) => return Ok(redirect(code, &location)),
        ErrorRoute::Document(document) => {
            let o = object(&document);
            match o.lookup(&edge.cache, None).await {
                Found::Head(head, _) if head.status == StatusCode::OK && head.size <= MAX_SMALL => {
                    let body = small_body(edge, &o, &head).await?;
                    let content_type = head.headers.get(http::header::CONTENT_TYPE).cloned();
                    Some((body, content_type))
                }
                _ => None,
            }
        }
        ErrorRoute::Plain => None,
    };
    let (body, content_type) = page.unwrap_or_else(|| {
        let html = website::plain_error_page(status.as_u16(), key);
        (
            bytes::Bytes::from(html),
            Some(HeaderValue::from_static("text/html; charset=utf-8")),
        )
    });
    let mut builder = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_LENGTH, body.len());
    if let Some(ct) = content_type {
        builder = builder.header(http::header::CONTENT_TYPE, ct);
    }
    let body = if parts.method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(body)
    };
    Ok(builder.body(body).expect("valid response"))
}

/// `key` of the site's bucket, with the request's query.
fn site_object<'a>(
    site: &'a Site,
    namespace: &str,
    behavior: &Arc<Behavior>,
    parts: &'a http::request::Parts,
    key: &'a str,
) -> Object<'a> {
    let query = parts.uri.query();
    Object::new(
        &site.origins,
        namespace,
        &site.bucket,
        key,
        query,
        behavior,
        false,
    )
}

/// The bucket's website configuration, through the cache (re-read every minute).
async fn website_config(edge: &Arc<Edge>, site: &Site) -> Result<WebsiteConfig> {
    let behavior = Arc::new(Behavior {
        default_ttl_secs: CONFIG_TTL.as_secs(),
        error_ttl_secs: CONFIG_TTL.as_secs(),
        query_keys: vec!["*".into()],
        ..Behavior::default()
    });
    let namespace = format!("{}-website", site.id);
    let o = Object::new(
        &site.origins,
        &namespace,
        &site.bucket,
        "",
        Some("website"),
        &behavior,
        false,
    );
    match o.lookup(&edge.cache, None).await {
        Found::Head(head, _) if head.status == StatusCode::OK && head.size <= MAX_SMALL => {
            let body = small_body(edge, &o, &head).await?;
            WebsiteConfig::parse(&body).ok_or_else(|| {
                Error::msg(
                    Code::InternalError,
                    "The website configuration could not be read.",
                )
            })
        }
        Found::Head(head, _) if head.status == StatusCode::NOT_FOUND => {
            Err(Error::new(Code::NoSuchWebsiteConfiguration))
        }
        _ => Err(Error::msg(
            Code::ServiceUnavailable,
            "The origin did not return the website configuration.",
        )),
    }
}

async fn small_body(
    edge: &Arc<Edge>,
    o: &Object<'_>,
    head: &Arc<crate::cache::Head>,
) -> Result<bytes::Bytes> {
    let stream = o.body(&edge.cache, head, 0..head.size);
    let pieces: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(stream).await?;
    Ok(pieces.concat().into())
}

fn redirect(code: u16, location: &str) -> Response {
    let status = StatusCode::from_u16(code)
        .ok()
        .filter(StatusCode::is_redirection)
        .unwrap_or(StatusCode::MOVED_PERMANENTLY);
    http::Response::builder()
        .status(status)
        .header(http::header::LOCATION, location)
        .header(http::header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .unwrap_or_else(|_| {
            let mut r = http::Response::new(Body::empty());
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            r
        })
}
