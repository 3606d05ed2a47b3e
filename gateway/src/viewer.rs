//! A distribution's viewer protocol policy (CloudFront's): what a request for it that came
//! over plain HTTP (the `http_listen` listener) gets, and HSTS on its answers over https.
//!
//! ```text
//!  plain HTTP ─► allow-all          served
//!             ─► redirect-to-https  GET/HEAD: 301 to the same URL over https; others: 403
//!             ─► https-only         403
//!  https      ─► served, with `Strict-Transport-Security` when the distribution sets it
//! ```
//!
//! The refusal runs first in the protocol kit's serve step, before preflights (CloudFront
//! refuses a plain `OPTIONS` to such a distribution too), so it is counted and logged like any
//! answer, as `ViewerProtocol`. The S3 face (no distribution) is not governed here.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode};
use outpost_store::error::{Code, Error, Result};
use outpost_store::s3::context;
use outpost_store::server::Encrypted;

use crate::config::ViewerProtocol;
use crate::edge::Edge;

/// The HSTS header a request's answer gets: its distribution's, over https only.
pub fn hsts(edge: &Edge, request: &axum::extract::Request) -> Option<HeaderValue> {
    let encrypted = request.extensions().get::<Encrypted>().is_some();
    if !encrypted || !edge.sites.viewer_rules() {
        return None;
    }
    let site = edge
        .sites
        .for_host(host(request.headers(), request.uri()))?;
    site.hsts.clone()
}

/// The Host header, or the authority of an HTTP/2 request.
fn host<'a>(headers: &'a http::HeaderMap, uri: &'a http::Uri) -> Option<&'a str> {
    let header = headers.get(http::header::HOST);
    header
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

/// The answer to a plain-HTTP request its distribution's policy does not serve, if any
/// ([`outpost_store::s3::context::FrontEnd::refusal`]: counted and logged as
/// `ViewerProtocol`, before preflights).
pub fn refusal(edge: &Edge, parts: &http::request::Parts) -> Option<Result<Response>> {
    if context::scheme(parts) == "https" || !edge.sites.viewer_rules() {
        return None;
    }
    let host = outpost_store::s3::host(parts);
    let site = edge.sites.for_host(host)?;
    let method = &parts.method;
    let redirect = match site.viewer_protocol {
        ViewerProtocol::AllowAll => return None,
        ViewerProtocol::RedirectToHttps => *method == Method::GET || *method == Method::HEAD,
        ViewerProtocol::HttpsOnly => false,
    };
    let location = redirect
        .then(|| https_url(host?, edge.config.listen.port(), &parts.uri))
        .flatten();
    let Some(location) = location else {
        return Some(Err(Error::msg(
            Code::AccessDenied,
            "This distribution is served over HTTPS only: use https://.",
        )));
    };
    let response = http::Response::builder()
        .status(StatusCode::MOVED_PERMANENTLY)
        .header(http::header::LOCATION, location)
        .header(http::header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .expect("a valid redirect");
    Some(Ok(response))
}

/// The URL of `uri` at `host` over https on the TLS listener's port: a Host that names a port
/// gets the TLS port instead (none for 443); one that names none keeps naming none (a load
/// balancer or port mapping in front serves 443).
fn https_url(host: &str, tls_port: u16, uri: &http::Uri) -> Option<HeaderValue> {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => {
            if tls_port == 443 {
                name.to_owned()
            } else {
                format!("{name}:{tls_port}")
            }
        }
        _ => host.to_owned(),
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    HeaderValue::from_str(&format!("https://{name}{path}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_urls_name_the_tls_port_only_where_the_host_named_a_port() {
        let uri: http::Uri = "/a/b.html?x=1".parse().unwrap();
        let url = |host, port| https_url(host, port, &uri).unwrap();
        assert_eq!(
            url("site.test:8080", 8443),
            "https://site.test:8443/a/b.html?x=1"
        );
        assert_eq!(url("site.test:80", 443), "https://site.test/a/b.html?x=1");
        assert_eq!(url("site.test", 8443), "https://site.test/a/b.html?x=1");
        assert_eq!(url("[::1]:8080", 8443), "https://[::1]:8443/a/b.html?x=1");
        assert_eq!(url("[::1]", 8443), "https://[::1]/a/b.html?x=1");
        assert!(https_url("bad\nhost", 443, &uri).is_none());
    }
}
