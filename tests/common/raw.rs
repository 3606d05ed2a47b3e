//! Raw HTTP/1.1 over a plain `TcpStream`, signed with `aws-sigv4`, for the requests the SDK will
//! not send: aws-chunked bodies with chunk signatures we compute, unsigned-payload trailers, bad
//! signatures, skewed clocks, malformed XML, path-traversal keys sent byte for byte (an URL
//! library would normalise `..` away), anonymous requests, stalled bodies.
//!
//! Every request is sent with `Connection: close` and the response is read to EOF, so framing is
//! never ambiguous; a request that gets no answer within the timeout fails the test ("hang").

use std::time::{Duration, SystemTime};

use aws_sdk_s3::config::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::hash::{b64, sha256_hex};
use super::{ACCESS_KEY, REGION, SECRET_KEY, TestStore, enc_query};

pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[derive(Clone, Debug)]
pub enum Body {
    Empty,
    /// Sent with `Content-Length`.
    Bytes(Vec<u8>),
    /// Sent with `Transfer-Encoding: chunked`, one HTTP chunk per element, no `Content-Length`.
    Chunked(Vec<Vec<u8>>),
    /// Send these bytes, then stall without closing (the declared length is in the headers).
    Stall(Vec<u8>),
}

/// What goes into `x-amz-content-sha256` / the canonical request's payload hash.
#[derive(Clone, Debug)]
pub enum Payload {
    /// Hex SHA-256 of the body bytes.
    Hash,
    Unsigned,
    /// A literal such as `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` or a deliberately wrong hash.
    Literal(String),
}

#[derive(Clone, Debug)]
pub struct SignOpts {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    pub time: SystemTime,
    pub payload: Payload,
}

impl Default for SignOpts {
    fn default() -> Self {
        SignOpts {
            access_key: ACCESS_KEY.into(),
            secret_key: SECRET_KEY.into(),
            region: REGION.into(),
            time: SystemTime::now(),
            payload: Payload::Hash,
        }
    }
}

impl SignOpts {
    pub fn payload(mut self, p: Payload) -> Self {
        self.payload = p;
        self
    }
    pub fn time(mut self, t: SystemTime) -> Self {
        self.time = t;
        self
    }
    pub fn keys(mut self, access: &str, secret: &str) -> Self {
        self.access_key = access.into();
        self.secret_key = secret.into();
        self
    }

    /// `YYYYMMDDTHHMMSSZ`
    pub fn amz_date(&self) -> String {
        let t = time::OffsetDateTime::from(self.time);
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }

    pub fn scope(&self) -> String {
        format!("{}/{}/s3/aws4_request", &self.amz_date()[..8], self.region)
    }

    /// HMAC-SHA256 of `string_to_sign` with this identity's SigV4 signing key.
    pub fn hmac(&self, string_to_sign: &str) -> String {
        let key = v4::generate_signing_key(&self.secret_key, self.time, &self.region, "s3");
        v4::calculate_signature(key, string_to_sign.as_bytes())
    }
}

#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    /// Request target exactly as sent: already percent-encoded path and query.
    pub target: String,
    /// `Host` header; the store's `127.0.0.1:PORT` when `None`.
    pub host: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    pub timeout: Duration,
}

impl RawRequest {
    pub fn new(method: &str, target: &str) -> RawRequest {
        RawRequest {
            method: method.into(),
            target: target.into(),
            host: None,
            headers: Vec::new(),
            body: Body::Empty,
            timeout: Duration::from_secs(60),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> RawRequest {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn host(mut self, host: &str) -> RawRequest {
        self.host = Some(host.into());
        self
    }

    /// A body sent with `Content-Length` (the header is set here so that it is signed).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> RawRequest {
        let body = body.into();
        self = self.header("content-length", &body.len().to_string());
        self.body = Body::Bytes(body);
        self
    }

    /// A body sent with `Transfer-Encoding: chunked` and no `Content-Length`.
    pub fn chunked_body(mut self, pieces: Vec<Vec<u8>>) -> RawRequest {
        self.headers.retain(|(k, _)| k != "content-length");
        self.body = Body::Chunked(pieces);
        self
    }

    pub fn stall_body(mut self, declared_len: usize, sent: Vec<u8>) -> RawRequest {
        self = self.header("content-length", &declared_len.to_string());
        self.body = Body::Stall(sent);
        self
    }

    pub fn timeout(mut self, t: Duration) -> RawRequest {
        self.timeout = t;
        self
    }

    fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::Empty => Vec::new(),
            Body::Bytes(b) | Body::Stall(b) => b.clone(),
            Body::Chunked(p) => p.concat(),
        }
    }

    fn host_for(&self, store: &TestStore) -> String {
        self.host.clone().unwrap_or_else(|| store.addr.clone())
    }

    /// SigV4 Authorization header with the test credentials, now, and the body's SHA-256.
    pub fn sign(self, store: &TestStore) -> RawRequest {
        self.sign_with(store, &SignOpts::default()).0
    }

    /// SigV4 Authorization header; returns the request and the (seed) signature.
    pub fn sign_with(self, store: &TestStore, opts: &SignOpts) -> (RawRequest, String) {
        let host = self.host_for(store);
        self.sign_for_host(&host, opts)
    }

    /// SigV4 Authorization header for an explicit `Host` (no store needed).
    pub fn sign_for_host(mut self, host: &str, opts: &SignOpts) -> (RawRequest, String) {
        let host = self.host.clone().unwrap_or_else(|| host.to_string());
        self.host = Some(host.clone());
        let payload_hash = match &opts.payload {
            Payload::Hash => sha256_hex(&self.body_bytes()),
            Payload::Unsigned => "UNSIGNED-PAYLOAD".to_string(),
            Payload::Literal(s) => s.clone(),
        };
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let (headers, signature) = self.run_signer(
            &host,
            opts,
            settings,
            SignableBody::Precomputed(payload_hash),
        );
        for (k, v) in headers {
            self = self.header(&k, &v);
        }
        (self, signature)
    }

    /// SigV4 presigned query string (`X-Amz-Signature` etc. appended to the target).
    pub fn presign(
        mut self,
        store: &TestStore,
        opts: &SignOpts,
        expires_in: Duration,
    ) -> RawRequest {
        let host = self.host_for(store);
        self.host = Some(host.clone());
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires_in);
        let params = self.run_signer_params(&host, opts, settings, SignableBody::UnsignedPayload);
        let mut target = self.target.clone();
        for (k, v) in params {
            target.push(if target.contains('?') { '&' } else { '?' });
            target.push_str(&format!("{}={}", enc_query(&k), enc_query(&v)));
        }
        self.target = target;
        self
    }

    fn signable_parts(&self, host: &str) -> (String, Vec<(String, String)>) {
        let uri = format!("http://{host}{}", self.target);
        let mut headers = vec![("host".to_string(), host.to_string())];
        headers.extend(self.headers.iter().filter(|(k, _)| k != "host").cloned());
        (uri, headers)
    }

    fn run_signer(
        &self,
        host: &str,
        opts: &SignOpts,
        settings: SigningSettings,
        body: SignableBody<'_>,
    ) -> (Vec<(String, String)>, String) {
        let (uri, headers) = self.signable_parts(host);
        let identity =
            Credentials::new(&opts.access_key, &opts.secret_key, None, None, "raw").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&opts.region)
            .name("s3")
            .time(opts.time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            &self.method,
            uri.as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            body,
        )
        .expect("signable request");
        let (instructions, signature) = sign(signable, &params).expect("sign").into_parts();
        let out = instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (out, signature)
    }

    fn run_signer_params(
        &self,
        host: &str,
        opts: &SignOpts,
        settings: SigningSettings,
        body: SignableBody<'_>,
    ) -> Vec<(String, String)> {
        let (uri, headers) = self.signable_parts(host);
        let identity =
            Credentials::new(&opts.access_key, &opts.secret_key, None, None, "raw").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&opts.region)
            .name("s3")
            .time(opts.time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            &self.method,
            uri.as_str(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            body,
        )
        .expect("signable request");
        let (instructions, _) = sign(signable, &params).expect("sign").into_parts();
        instructions
            .params()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub async fn send(self, store: &TestStore) -> RawResponse {
        let addr = store.addr.clone();
        let host = self.host_for(store);
        self.send_to(&addr, &host).await
    }

    pub async fn send_to(self, addr: &str, host: &str) -> RawResponse {
        let what = format!("{} {}", self.method, self.target);
        match tokio::time::timeout(self.timeout, self.exchange(addr, host)).await {
            Ok(r) => r,
            Err(_) => panic!("no response to `{what}` within the timeout: the server hung"),
        }
    }

    async fn exchange(self, addr: &str, host: &str) -> RawResponse {
        let mut stream = TcpStream::connect(addr).await.expect("connect to store");
        stream.set_nodelay(true).ok();
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target).into_bytes();
        if self.get_header("host").is_none() {
            head.extend_from_slice(format!("host: {host}\r\n").as_bytes());
        }
        for (k, v) in &self.headers {
            head.extend_from_slice(k.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(v.as_bytes());
            head.extend_from_slice(b"\r\n");
        }
        match &self.body {
            Body::Empty
                if matches!(self.method.as_str(), "PUT" | "POST")
                    && self.get_header("content-length").is_none()
                    && self.get_header("transfer-encoding").is_none() =>
            {
                head.extend_from_slice(b"content-length: 0\r\n");
            }
            Body::Bytes(b) if self.get_header("content-length").is_none() => {
                head.extend_from_slice(format!("content-length: {}\r\n", b.len()).as_bytes());
            }
            Body::Chunked(_) if self.get_header("transfer-encoding").is_none() => {
                head.extend_from_slice(b"transfer-encoding: chunked\r\n");
            }
            _ => {}
        }
        head.extend_from_slice(b"connection: close\r\n\r\n");

        let mut received = Vec::new();
        let _ = stream.write_all(&head).await;
        let expect_continue = self
            .get_header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if expect_continue {
            // Wait for the interim 100 (or a final answer, in which case no body is sent).
            let mut buf = [0u8; 4096];
            loop {
                match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return parse_response(&received),
                    Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
                    Err(_) => panic!(
                        "no `100 Continue` (or final response) within 5 s for Expect: 100-continue"
                    ),
                }
                if let Some(end) = find(&received, b"\r\n\r\n") {
                    if received.starts_with(b"HTTP/1.1 100") {
                        received.drain(..end + 4);
                        break;
                    }
                    return read_rest(stream, received).await;
                }
            }
        }
        match &self.body {
            Body::Empty => {}
            Body::Bytes(b) => {
                let _ = stream.write_all(b).await;
            }
            Body::Chunked(pieces) => {
                for p in pieces {
                    if p.is_empty() {
                        continue;
                    }
                    let mut chunk = format!("{:x}\r\n", p.len()).into_bytes();
                    chunk.extend_from_slice(p);
                    chunk.extend_from_slice(b"\r\n");
                    if stream.write_all(&chunk).await.is_err() {
                        break;
                    }
                    stream.flush().await.ok();
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
            }
            Body::Stall(b) => {
                let _ = stream.write_all(b).await;
                stream.flush().await.ok();
            }
        }
        let _ = stream.flush().await;
        read_rest(stream, received).await
    }
}

async fn read_rest(mut stream: TcpStream, mut received: Vec<u8>) -> RawResponse {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) => {
                if received.is_empty() {
                    panic!("connection error before any response: {e}");
                }
                break;
            }
        }
    }
    parse_response(&received)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_response(mut data: &[u8]) -> RawResponse {
    loop {
        let end = find(data, b"\r\n\r\n").unwrap_or_else(|| {
            panic!(
                "incomplete HTTP response (connection closed): {:?}",
                String::from_utf8_lossy(data)
            )
        });
        let head = String::from_utf8_lossy(&data[..end]).into_owned();
        let rest = &data[end + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        if (100..200).contains(&status) {
            data = rest;
            continue;
        }
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_vec()
        };
        return RawResponse {
            status,
            headers,
            body,
        };
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(data, b"\r\n") {
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size =
            usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        data = &data[line_end + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

#[derive(Clone, Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Text of the first `<tag>…</tag>`, entities decoded.
    pub fn xml(&self, tag: &str) -> Option<String> {
        self.xml_all(tag).into_iter().next()
    }

    /// Texts of every `<tag>…</tag>`, entities decoded.
    pub fn xml_all(&self, tag: &str) -> Vec<String> {
        xml_all(&self.text(), tag)
    }

    /// `<Code>` of an S3 error body.
    pub fn code(&self) -> String {
        self.xml("Code").unwrap_or_default()
    }

    /// Asserts an S3 error response: the status, the code, and the parts every S3 error must
    /// have (XML body with Code, Message, Resource, RequestId; `x-amz-request-id` header that
    /// matches the body's RequestId).
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "expected {status} {code}; got {} with body {}",
            self.status,
            self.text()
        );
        self.assert_error_shape();
    }

    #[track_caller]
    pub fn assert_error_shape(&self) {
        let text = self.text();
        assert!(text.contains("<Error>"), "error body is not S3 XML: {text}");
        for tag in ["Code", "Message", "Resource", "RequestId"] {
            assert!(
                text.contains(&format!("<{tag}>")),
                "error body lacks <{tag}>: {text}"
            );
        }
        let header = self
            .header("x-amz-request-id")
            .expect("x-amz-request-id header on an error");
        assert!(!header.is_empty(), "empty x-amz-request-id");
        assert_eq!(
            self.xml("RequestId").as_deref(),
            Some(header),
            "RequestId in body vs header"
        );
    }
}

pub fn xml_all(text: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(unescape(&after[..j]));
        rest = &after[j + close.len()..];
    }
    out
}

pub fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

// ---- aws-chunked bodies ----------------------------------------------------------------------

/// How to frame an aws-chunked upload.
#[derive(Clone, Debug, Default)]
pub struct Chunked {
    pub chunk_size: usize,
    /// Flip one byte of this chunk's data after signing it (a tampered body).
    pub tamper_chunk: Option<usize>,
    /// A trailer header (`x-amz-checksum-crc32`, base64 value).
    pub trailer: Option<(String, String)>,
    /// Extra `Content-Encoding` after `aws-chunked` (e.g. `gzip`).
    pub content_encoding: Option<String>,
    /// Send the aws-chunked bytes with HTTP `Transfer-Encoding: chunked` and no Content-Length.
    pub transfer_chunked: bool,
}

fn pieces(data: &[u8], size: usize) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = data.chunks(size.max(1)).collect();
    if v.is_empty() {
        v.push(&[]);
    }
    v
}

fn aws_chunked_headers(
    mut req: RawRequest,
    data_len: usize,
    c: &Chunked,
    encoded_len: usize,
) -> RawRequest {
    let ce = match &c.content_encoding {
        Some(e) => format!("aws-chunked,{e}"),
        None => "aws-chunked".to_string(),
    };
    req = req
        .header("content-encoding", &ce)
        .header("x-amz-decoded-content-length", &data_len.to_string());
    if let Some((name, _)) = &c.trailer {
        req = req.header("x-amz-trailer", name);
    }
    if !c.transfer_chunked {
        req = req.header("content-length", &encoded_len.to_string());
    }
    req
}

fn finish_body(req: RawRequest, body: Vec<u8>, c: &Chunked) -> RawRequest {
    if c.transfer_chunked {
        let parts = body.chunks(8192).map(|p| p.to_vec()).collect();
        req.chunked_body(parts)
    } else {
        let mut req = req;
        req.body = Body::Bytes(body);
        req
    }
}

/// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` (or `-TRAILER` when `c.trailer` is set): every chunk
/// carries a signature chained from the header's seed signature, and the trailer its own.
pub fn signed_chunked(
    store: &TestStore,
    req: RawRequest,
    data: &[u8],
    c: &Chunked,
    opts: &SignOpts,
) -> RawRequest {
    signed_chunked_for_host(&store.addr, req, data, c, opts)
}

pub fn signed_chunked_for_host(
    host: &str,
    req: RawRequest,
    data: &[u8],
    c: &Chunked,
    opts: &SignOpts,
) -> RawRequest {
    let chunks = pieces(data, c.chunk_size);
    let sig_len = ";chunk-signature=".len() + 64 + 2;
    let mut encoded_len: usize = chunks
        .iter()
        .filter(|ch| !ch.is_empty())
        .map(|ch| format!("{:x}", ch.len()).len() + sig_len + ch.len() + 2)
        .sum();
    encoded_len += 1 + sig_len; // final 0-size chunk header
    if let Some((name, value)) = &c.trailer {
        encoded_len += name.len() + 1 + value.len() + 2;
        encoded_len += "x-amz-trailer-signature:".len() + 64 + 2;
    }
    encoded_len += 2;
    let streaming = if c.trailer.is_some() {
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    } else {
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    };
    let req = aws_chunked_headers(req, data.len(), c, encoded_len);
    let opts = opts.clone().payload(Payload::Literal(streaming.into()));
    let (req, seed) = req.sign_for_host(host, &opts);

    let date = opts.amz_date();
    let scope = opts.scope();
    let mut prev = seed;
    let mut body = Vec::with_capacity(encoded_len);
    let chunk_sig = |prev: &str, chunk: &[u8]| {
        opts.hmac(&format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{date}\n{scope}\n{prev}\n{EMPTY_SHA256}\n{}",
            sha256_hex(chunk)
        ))
    };
    for (i, ch) in chunks.iter().enumerate().filter(|(_, ch)| !ch.is_empty()) {
        let sig = chunk_sig(&prev, ch);
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", ch.len()).as_bytes());
        let mut bytes = ch.to_vec();
        if c.tamper_chunk == Some(i) {
            bytes[0] ^= 0x01;
        }
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"\r\n");
        prev = sig;
    }
    let last = chunk_sig(&prev, &[]);
    body.extend_from_slice(format!("0;chunk-signature={last}\r\n").as_bytes());
    if let Some((name, value)) = &c.trailer {
        let canonical = format!("{name}:{value}\n");
        let tsig = opts.hmac(&format!(
            "AWS4-HMAC-SHA256-TRAILER\n{date}\n{scope}\n{last}\n{}",
            sha256_hex(canonical.as_bytes())
        ));
        body.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
        body.extend_from_slice(format!("x-amz-trailer-signature:{tsig}\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    assert_eq!(body.len(), encoded_len, "aws-chunked length arithmetic");
    finish_body(req, body, c)
}

/// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: plain aws-chunked framing (no chunk signatures) and the
/// checksum in a trailer, as aws-cli / boto3 send over https. The header signature still counts.
pub fn unsigned_trailer(
    store: &TestStore,
    req: RawRequest,
    data: &[u8],
    c: &Chunked,
    opts: &SignOpts,
) -> RawRequest {
    let mut body = Vec::new();
    for ch in pieces(data, c.chunk_size)
        .iter()
        .filter(|ch| !ch.is_empty())
    {
        body.extend_from_slice(format!("{:x}\r\n", ch.len()).as_bytes());
        body.extend_from_slice(ch);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n");
    if let Some((name, value)) = &c.trailer {
        body.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
    }
    body.extend_from_slice(b"\r\n");
    let req = aws_chunked_headers(req, data.len(), c, body.len());
    let opts = opts.clone().payload(Payload::Literal(
        "STREAMING-UNSIGNED-PAYLOAD-TRAILER".into(),
    ));
    let (req, _) = req.sign_with(store, &opts);
    finish_body(req, body, c)
}

/// Value for a `x-amz-checksum-crc32` trailer or header.
pub fn crc32_b64(data: &[u8]) -> String {
    b64(&super::hash::crc32(data).to_be_bytes())
}

/// The harness's chunk signing reproduces AWS's published example
/// (https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html): 66560 bytes of 'a'
/// in 64 KiB chunks, seed signature 4f232c43…, chunk signatures ad80c730…, 0055627c…, b6c6ea8a….
#[test]
fn chunk_signatures_match_the_aws_example() {
    let opts = SignOpts {
        access_key: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        region: "us-east-1".into(),
        time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600), // 2013-05-24T00:00:00Z
        payload: Payload::Hash,
    };
    let data = vec![b'a'; 66560];
    let req = RawRequest::new("PUT", "/examplebucket/chunkObject.txt")
        .host("s3.amazonaws.com")
        .header("x-amz-storage-class", "REDUCED_REDUNDANCY");
    let c = Chunked {
        chunk_size: 65536,
        ..Default::default()
    };
    let req = signed_chunked_for_host("s3.amazonaws.com", req, &data, &c, &opts);
    let auth = req.get_header("authorization").unwrap();
    assert!(
        auth.ends_with(
            "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        ),
        "{auth}"
    );
    assert_eq!(req.get_header("content-length"), Some("66824"));
    let Body::Bytes(body) = &req.body else {
        panic!("body")
    };
    let text = String::from_utf8_lossy(body);
    for sig in [
        "10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ] {
        assert!(text.contains(sig), "missing {sig}");
    }
}
