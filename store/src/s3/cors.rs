//! CORS as S3 applies a bucket's rules: the `CORSConfiguration` document (parsed and validated
//! as PutBucketCors does, written back as GetBucketCors answers), a request matched against the
//! rules in order (the first rule that matches wins), the answer to a preflight (`OPTIONS`) and
//! the `Access-Control-*` headers of real responses.
//!
//! Pure: no storage, no clock. Both front ends use it, the store with the rules in its index,
//! the edge with the rules it learnt from its origin. Matching, as S3 does it: an origin
//! against `AllowedOrigin` (case-sensitive, at most one `*` standing for any run of
//! characters); the method exactly against `AllowedMethod`; every requested header,
//! case-insensitively, against some `AllowedHeader` (same wildcard).

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use crate::error::{Code, Error, Result};
use crate::s3::xml::XmlWriter;

/// S3 holds at most this many rules per bucket.
pub const MAX_RULES: usize = 100;
/// The methods a rule may allow (S3 refuses any other, OPTIONS and PATCH included).
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];
/// What every answer that depends on the CORS request headers says so with.
pub const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// A bucket's CORS rules, in the order they are matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsConfiguration {
    pub rules: Vec<CorsRule>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsRule {
    pub id: Option<String>,
    pub allowed_origins: Vec<String>,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub max_age_seconds: Option<u32>,
}

impl CorsConfiguration {
    /// Parses and validates a PutBucketCors body with S3's errors: MalformedXML for a document
    /// that does not parse or has no rule, a rule without origin or method; InvalidRequest for
    /// more than [`MAX_RULES`], an unsupported method, more than one wildcard in an origin or
    /// allowed header, a wildcard or an invalid character in an expose header.
    pub fn parse(body: &[u8]) -> Result<CorsConfiguration> {
        let rules = read_rules(body)?;
        if rules.is_empty() {
            return Err(Error::new(Code::MalformedXML));
        }
        if rules.len() > MAX_RULES {
            return Err(Error::msg(
                Code::InvalidRequest,
                format!(
                    "The number of CORS rules should not exceed allowed limit of {MAX_RULES} rules."
                ),
            ));
        }
        rules.iter().try_for_each(CorsRule::validate)?;
        Ok(CorsConfiguration { rules })
    }

    /// The document GetBucketCors answers (S3's element order).
    pub fn to_xml(&self) -> String {
        let mut w = XmlWriter::new("CORSConfiguration");
        for rule in &self.rules {
            w.open("CORSRule");
            let lists = [
                ("AllowedHeader", &rule.allowed_headers),
                ("AllowedMethod", &rule.allowed_methods),
                ("AllowedOrigin", &rule.allowed_origins),
                ("ExposeHeader", &rule.expose_headers),
            ];
            for (element, values) in lists {
                for value in values {
                    w.elem(element, value);
                }
            }
            w.opt("ID", rule.id.as_deref())
                .opt("MaxAgeSeconds", rule.max_age_seconds)
                .close();
        }
        w.finish()
    }

    /// The first rule allowing `origin` to send `method` with `headers` (lower-case names).
    pub fn find(&self, origin: &str, method: &str, headers: &[String]) -> Option<&CorsRule> {
        self.rules
            .iter()
            .find(|rule| rule.allows(origin, method, headers))
    }

    /// The `Access-Control-*` headers of a real (not preflight) response to a request from
    /// `origin` with `method`: the matching rule's, and `Vary` whether a rule matched or not
    /// (the answer depends on the Origin).
    pub fn response_headers(&self, origin: &str, method: &Method) -> HeaderMap {
        let mut headers = vary();
        if let Some(rule) = self.find(origin, method.as_str(), &[]) {
            headers.extend(rule.headers(origin));
        }
        headers
    }
}

/// `Vary` alone: what an answer that depends on the CORS request headers says at least.
pub fn vary() -> HeaderMap {
    HeaderMap::from_iter([(http::header::VARY, HeaderValue::from_static(VARY))])
}

impl CorsRule {
    fn validate(&self) -> Result<()> {
        if self.allowed_origins.is_empty()
            || self.allowed_origins.iter().any(String::is_empty)
            || self.allowed_methods.is_empty()
        {
            return Err(Error::new(Code::MalformedXML));
        }
        let invalid = |message: String| Err(Error::msg(Code::InvalidRequest, message));
        if let Some(m) = self
            .allowed_methods
            .iter()
            .find(|m| !METHODS.contains(&m.as_str()))
        {
            return invalid(format!(
                "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
            ));
        }
        if let Some(o) = self
            .allowed_origins
            .iter()
            .find(|o| o.matches('*').count() > 1)
        {
            return invalid(format!(
                "AllowedOrigin \"{o}\" can not have more than one wildcard."
            ));
        }
        for h in &self.allowed_headers {
            if h.matches('*').count() > 1 {
                return invalid(format!(
                    "AllowedHeader \"{h}\" can not have more than one wildcard."
                ));
            }
            if !is_token(&h.replace('*', "x")) {
                return invalid(format!("AllowedHeader \"{h}\" contains invalid character."));
            }
        }
        for h in &self.expose_headers {
            if h.contains('*') {
                return invalid(format!(
                    "ExposeHeader \"{h}\" contains wildcard. We currently do not support wildcard for ExposeHeader."
                ));
            }
            if !is_token(h) {
                return invalid(format!("ExposeHeader \"{h}\" contains invalid character."));
            }
        }
        Ok(())
    }

    fn allows(&self, origin: &str, method: &str, headers: &[String]) -> bool {
        self.allowed_origins.iter().any(|o| wildcard(o, origin))
            && self.allowed_methods.iter().any(|m| m == method)
            && headers.iter().all(|h| {
                self.allowed_headers
                    .iter()
                    .any(|a| wildcard(&a.to_ascii_lowercase(), h))
            })
    }

    /// The headers every answer this rule allows carries: the origin (`*` when the rule allows
    /// any, and then no credentials), the methods, what scripts may read, how long a preflight
    /// answer may be kept.
    fn headers(&self, origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let any = self.allowed_origins.iter().any(|o| o == "*");
        let mut put = |name: HeaderName, value: &str| {
            // Every value is made of validated tokens or the client's own header text.
            if let Ok(v) = HeaderValue::from_str(value) {
                h.insert(name, v);
            }
        };
        use http::header;
        put(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            if any { "*" } else { origin },
        );
        if !any {
            put(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true");
        }
        put(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            &self.allowed_methods.join(", "),
        );
        if !self.expose_headers.is_empty() {
            put(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                &self.expose_headers.join(", "),
            );
        }
        if let Some(age) = self.max_age_seconds {
            put(header::ACCESS_CONTROL_MAX_AGE, &age.to_string());
        }
        h
    }
}

/// What a preflight asks: may `origin` send `method` with `headers`?
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PreflightRequest {
    pub origin: String,
    pub method: String,
    /// `Access-Control-Request-Headers`, lower-cased, in the order sent.
    pub headers: Vec<String>,
}

impl PreflightRequest {
    /// Reads a preflight's headers, refused as S3 does: 400 BadRequest without an Origin, with
    /// a method a rule cannot allow, or with a header name that is not one.
    pub fn of(headers: &HeaderMap) -> Result<PreflightRequest> {
        let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("\u{FFFD}"));
        let Some(origin) = text(http::header::ORIGIN).filter(|o| !o.is_empty()) else {
            return Err(Error::msg(
                Code::BadRequest,
                "Insufficient information. Origin request header needed.",
            ));
        };
        let method = text(http::header::ACCESS_CONTROL_REQUEST_METHOD).unwrap_or("");
        if !METHODS.contains(&method) {
            return Err(Error::msg(
                Code::BadRequest,
                format!("Invalid Access-Control-Request-Method: {method}"),
            ));
        }
        let mut asked = Vec::new();
        for value in headers.get_all(http::header::ACCESS_CONTROL_REQUEST_HEADERS) {
            let value = value.to_str().unwrap_or("\u{FFFD}");
            for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !is_token(name) {
                    return Err(Error::msg(
                        Code::BadRequest,
                        format!(
                            "Access-Control-Request-Headers \"{name}\" contains invalid character."
                        ),
                    ));
                }
                asked.push(name.to_ascii_lowercase());
            }
        }
        Ok(PreflightRequest {
            origin: origin.to_owned(),
            method: method.to_owned(),
            headers: asked,
        })
    }
}

/// The answer to a preflight, before it becomes a response (the edge keeps these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preflight {
    /// 200 with these headers.
    Allowed(HeaderMap),
    /// No rule allows it: 403 AccessForbidden.
    Denied,
    /// The bucket has no CORS configuration: 403 AccessForbidden.
    NotEnabled,
    /// There is no such bucket: 403 AccessForbidden too, as S3 answers (not NoSuchBucket).
    NoSuchBucket,
}

impl Preflight {
    /// Matches `asked` against `config`.
    pub fn answer(config: Option<&CorsConfiguration>, asked: &PreflightRequest) -> Preflight {
        let Some(config) = config else {
            return Preflight::NotEnabled;
        };
        let Some(rule) = config.find(&asked.origin, &asked.method, &asked.headers) else {
            return Preflight::Denied;
        };
        let mut headers = rule.headers(&asked.origin);
        if !asked.headers.is_empty()
            && let Ok(v) = HeaderValue::from_str(&asked.headers.join(", "))
        {
            headers.insert(http::header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        headers.insert(http::header::VARY, HeaderValue::from_static(VARY));
        Preflight::Allowed(headers)
    }

    /// The response: 200 without a body, or S3's 403 naming the method and whether rules were
    /// matched for an object or a bucket (S3 says `BUCKET` when there were none to match).
    pub fn into_response(self, asked: &PreflightRequest, object: bool) -> Result<super::Response> {
        let object = object && matches!(self, Preflight::Denied);
        let message = match self {
            Preflight::Allowed(headers) => {
                let mut response = super::empty_response(http::StatusCode::OK);
                response.headers_mut().extend(headers);
                response
                    .headers_mut()
                    .insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
                return Ok(response);
            }
            Preflight::Denied => {
                "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec."
            }
            Preflight::NotEnabled => "CORSResponse: CORS is not enabled for this bucket.",
            Preflight::NoSuchBucket => "CORSResponse: Bucket not found",
        };
        Err(Error::msg(Code::AccessForbidden, message)
            .with_detail("Method", asked.method.clone())
            .with_detail("ResourceType", if object { "OBJECT" } else { "BUCKET" }))
    }
}

/// Puts `cors` (from [`CorsConfiguration::response_headers`]) on a response, replacing any
/// `Access-Control-*` it carried: an answer relayed or served from a cache never passes on
/// headers worked out for another request's Origin.
pub fn apply(headers: &mut HeaderMap, cors: HeaderMap) {
    let stale: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .cloned()
        .collect();
    for name in stale {
        headers.remove(name);
    }
    let others: Vec<HeaderValue> = headers
        .get_all(http::header::VARY)
        .iter()
        .filter(|v| v.as_bytes() != VARY.as_bytes())
        .cloned()
        .collect();
    headers.remove(http::header::VARY);
    for v in others {
        headers.append(http::header::VARY, v);
    }
    for (name, value) in cors {
        if let Some(name) = name {
            headers.append(name, value);
        }
    }
}

/// `pattern` with at most one `*`, standing for any run of characters, matches all of `text`.
fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((prefix, suffix)) => {
            text.len() >= prefix.len() + suffix.len()
                && text.starts_with(prefix)
                && text.ends_with(suffix)
        }
    }
}

/// An HTTP field name (RFC 9110 token).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The rules of a `CORSConfiguration` document, in order, read element by element: anything
/// but the elements S3 defines, text outside them, or an element given twice where S3 allows
/// one is MalformedXML.
fn read_rules(body: &[u8]) -> Result<Vec<CorsRule>> {
    use quick_xml::events::Event;
    let malformed = || Error::new(Code::MalformedXML);
    let text = std::str::from_utf8(body).map_err(|_| malformed())?;
    let mut reader = quick_xml::Reader::from_str(text);
    #[derive(PartialEq)]
    enum At {
        Document,
        Configuration,
        Rule,
        Field,
        Done,
    }
    let mut at = At::Document;
    let (mut rules, mut rule, mut field, mut value) =
        (Vec::new(), CorsRule::default(), Vec::new(), String::new());
    loop {
        let event = reader.read_event().map_err(|_| malformed())?;
        let (start, end) = match &event {
            Event::Start(e) => (Some(e.local_name().as_ref().to_vec()), false),
            Event::Empty(e) => (Some(e.local_name().as_ref().to_vec()), true),
            Event::End(_) => (None, true),
            Event::Text(t) if at == At::Field => {
                value.push_str(&t.unescape().map_err(|_| malformed())?);
                (None, false)
            }
            Event::CData(c) if at == At::Field => {
                value.push_str(std::str::from_utf8(c).map_err(|_| malformed())?);
                (None, false)
            }
            Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => (None, false),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => (None, false),
            Event::Eof if at == At::Done => return Ok(rules),
            _ => return Err(malformed()),
        };
        if let Some(name) = start {
            at = match (at, name.as_slice()) {
                (At::Document, b"CORSConfiguration") => At::Configuration,
                (At::Configuration, b"CORSRule") => At::Rule,
                (At::Rule, name) => {
                    field = name.to_vec();
                    value.clear();
                    At::Field
                }
                _ => return Err(malformed()),
            };
        }
        if end {
            at = match at {
                At::Field => {
                    set_field(&mut rule, &field, value.trim().to_owned())?;
                    At::Rule
                }
                At::Rule => {
                    rules.push(std::mem::take(&mut rule));
                    At::Configuration
                }
                At::Configuration => At::Done,
                _ => return Err(malformed()),
            };
        }
    }
}

fn set_field(rule: &mut CorsRule, field: &[u8], value: String) -> Result<()> {
    let malformed = || Error::new(Code::MalformedXML);
    match field {
        b"ID" if rule.id.is_none() => rule.id = Some(value),
        b"AllowedOrigin" => rule.allowed_origins.push(value),
        b"AllowedMethod" => rule.allowed_methods.push(value),
        b"AllowedHeader" => rule.allowed_headers.push(value),
        b"ExposeHeader" => rule.expose_headers.push(value),
        b"MaxAgeSeconds" if rule.max_age_seconds.is_none() => {
            rule.max_age_seconds = Some(value.parse().map_err(|_| malformed())?);
        }
        _ => return Err(malformed()),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
