//! Entry points for fuzzing: one function per target, each taking arbitrary bytes, running the
//! real parser on them and panicking when an invariant breaks (not only when the parser
//! panics). `fuzz/fuzz_targets/*.rs` (cargo fuzz, libFuzzer) and the `cargo test` smoke run in
//! `store/tests/fuzz_smoke.rs` call the same functions, so what CI checks is what the fuzzer
//! explores. See FUZZING.md for the input formats, the seeds and the figures.
//!
//! Each returns whether the input was accepted (so the smoke run can check that its seeds
//! reach the accepting paths); a parser's error must carry a code from the set the function
//! documents.

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderName, HeaderValue};

use crate::access::policy::wildcard_matches;
use crate::access::{Action, Class, Policy, Principal, Request, Verdict, resource_arn};
use crate::engine::{ObjectHeaders, ObjectInfo};
use crate::error::{Code, Error, Result};
use crate::s3::auth::{
    self, AuthParams, Authenticated, ChunkSigning, Credentials, Identity, Keyring, Payload,
    SecretKey, Trailers, sigv4,
};
use crate::s3::cors::CorsConfiguration;
use crate::s3::{MAX_CLOCK_SKEW, headers, xml};

/// The key of AWS's published SigV4 examples, the only key the auth targets' keyring holds.
pub const EXAMPLE_ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
pub const EXAMPLE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// The bucket of AWS's examples (SigV2 signs it when it is in the Host header).
pub const EXAMPLE_BUCKET: &str = "examplebucket";
/// 2013-05-24T00:00:00Z, the time of AWS's examples: the auth targets' "now".
pub const EXAMPLE_NOW_SECS: u64 = 1_369_353_600;
/// The seed signature of AWS's published streaming (aws-chunked) example.
pub const EXAMPLE_STREAMING_SEED: &str =
    "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

/// `sigv4_header`: `authenticate` on an arbitrary request head.
///
/// Input: a request head as text, `METHOD TARGET` then `Name: value` lines (invalid lines are
/// skipped; values may hold any byte). Invariants: errors are auth errors; a request carrying
/// an Authorization header or a signature parameter is never anonymous; an accepted signature
/// names a known key and no longer verifies once the method changes; the canonical URI and
/// query are fixed points of their own canonicalisation.
pub fn sigv4_header(data: &[u8]) -> bool {
    let Some(head) = request_head(data) else {
        return false;
    };
    let accepted = matches!(check_authenticate(&head), Some(Identity::Key(_)));
    let query = head.uri.query();
    let uri = sigv4::canonical_uri(head.uri.path());
    assert_eq!(
        sigv4::canonical_uri(&uri),
        uri,
        "canonical URI is not stable"
    );
    let q = sigv4::canonical_query(query, "");
    assert_eq!(
        sigv4::canonical_query(Some(&q), ""),
        q,
        "canonical query is not stable"
    );
    accepted
}

/// `presigned_query`: `authenticate` on a GET of an arbitrary request target (path and query,
/// SigV4 `X-Amz-*` or SigV2 `Signature`/`Expires` presigning), Host `examplebucket.s3.amazonaws.com`.
/// Invariants as [`sigv4_header`]; an accepted presigned URL also carries an `X-Amz-Expires` of
/// at most seven days or a SigV2 `Expires` not yet past.
pub fn presigned_query(data: &[u8]) -> bool {
    let mut head_text = b"GET ".to_vec();
    head_text.extend_from_slice(data);
    head_text.extend_from_slice(b"\nHost: examplebucket.s3.amazonaws.com\n");
    let Some(head) = request_head(&head_text) else {
        return false;
    };
    let accepted = matches!(check_authenticate(&head), Some(Identity::Key(_)));
    if accepted {
        let query = head.uri.query().unwrap_or("");
        let param = |name: &str| {
            query
                .split('&')
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| *k == name)
                .and_then(|(_, v)| v.parse::<u64>().ok())
        };
        if let Some(expires) = param("X-Amz-Expires") {
            assert!(expires <= auth::presign::MAX_EXPIRES.as_secs());
        } else {
            assert!(param("Expires").is_some_and(|e| e >= EXAMPLE_NOW_SECS));
        }
    }
    accepted
}

/// `aws_chunked`: the streaming decoder on arbitrary bytes, delivered in arbitrary pieces.
///
/// Input: byte 0 is flags (bit 0: signed chain seeded with AWS's streaming example; bit 1:
/// an `x-amz-decoded-content-length` is declared), byte 1 seeds the piece sizes, bytes 2–3
/// are the declared length (little-endian, used with bit 1), the body starts at byte 4.
/// Invariants: the outcome (data and trailers, or the error code) does not depend on how the
/// body is split; decoded data never exceeds the declared length nor the body; a clean end
/// matches the declared length; in a signed body, changing the first data byte breaks the
/// signature.
pub fn aws_chunked(data: &[u8]) -> bool {
    let [flags, split_seed, l0, l1, body @ ..] = data else {
        return false;
    };
    let signed = flags & 1 != 0;
    let declared = (flags & 2 != 0).then(|| u64::from(u16::from_le_bytes([*l0, *l1])));
    let whole = decode_chunked(body, &[body.len()], signed, declared);
    let pieces = piece_sizes(body.len(), *split_seed);
    let split = decode_chunked(body, &pieces, signed, declared);
    assert_eq!(
        whole.outcome(),
        split.outcome(),
        "the outcome depends on the split {pieces:?}"
    );
    for run in [&whole, &split] {
        assert!(run.data.len() <= body.len());
        if let Some(n) = declared {
            assert!(run.data.len() as u64 <= n, "more data than declared");
        }
    }
    let Ok(trailers) = &whole.result else {
        return false;
    };
    if let Some(n) = declared {
        assert_eq!(whole.data.len() as u64, n);
    }
    assert!(trailers.len() <= 16);
    if signed && !whole.data.is_empty() {
        // The first chunk's data starts after its size line.
        let at = find(body, b"\r\n").expect("a size line") + 2;
        let mut forged = body.to_vec();
        forged[at] ^= 1;
        let run = decode_chunked(&forged, &[forged.len()], signed, declared);
        assert!(run.result.is_err(), "a changed chunk kept its signature");
    }
    true
}

/// `xml_bodies`: the XML request bodies (CompleteMultipartUpload, DeleteObjects,
/// CreateBucketConfiguration, the website document's well-formedness check, the CORS rules) on
/// arbitrary bytes. Invariants: errors are MalformedXML (InvalidRequest too for CORS rules);
/// accepted CORS rules written back parse to the same document; an accepted CompleteMultipartUpload or Delete document
/// written back with [`xml::XmlWriter`] (the escaping the responses use) parses again, and
/// writing what it parsed to gives the same document: the writer's escaping survives the
/// parser (markup, entities, line ends). The writer may replace what XML cannot carry, so the
/// first writing is not compared with the input.
pub fn xml_bodies(data: &[u8]) -> bool {
    let only_malformed = |e: &Error| assert_eq!(e.code, Code::MalformedXML);
    let mut accepted = false;
    match xml::parse::<xml::CompleteMultipartUpload>(data) {
        Ok(doc) => {
            assert_rewrites_stably(&doc, write_complete);
            accepted = true;
        }
        Err(e) => only_malformed(&e),
    }
    match xml::parse::<xml::Delete>(data) {
        Ok(doc) => {
            assert_rewrites_stably(&doc, write_delete);
            accepted = true;
        }
        Err(e) => only_malformed(&e),
    }
    match xml::parse::<xml::CreateBucketConfiguration>(data) {
        Ok(_) => accepted = true,
        Err(e) => only_malformed(&e),
    }
    match CorsConfiguration::parse(data) {
        Ok(rules) => {
            // What GetBucketCors answers (and the store re-reads) parses to itself.
            let written = rules.to_xml();
            let again = CorsConfiguration::parse(written.as_bytes()).expect("written rules parse");
            assert_eq!(again.to_xml(), written);
            accepted = true;
        }
        Err(e) => assert!(matches!(e.code, Code::MalformedXML | Code::InvalidRequest)),
    }
    if let Ok(text) = std::str::from_utf8(data) {
        match crate::s3::ops::policy::check_well_formed(text, "WebsiteConfiguration") {
            Ok(()) => accepted = true,
            Err(e) => only_malformed(&e),
        }
    }
    accepted
}

/// `range_conditionals`: Range, the If-* preconditions (read and copy forms), the write
/// conditions, and the other request headers a write parses (Content-MD5, checksums, trailer
/// names, stored object headers).
///
/// Input: a first line `SIZE MTIME-SECS ETAG` describing the object, then `Name: value` header
/// lines. Invariants: a range lies within the object, starts where `bytes=N-` says and is as
/// long as `bytes=-N` asks (capped at the size); unsatisfiable is InvalidRange with
/// `Content-Range: bytes */SIZE`; no conditional headers, no failure; a copy never answers 304;
/// stored headers keep user metadata within S3's limit and never store `aws-chunked`.
pub fn range_conditionals(data: &[u8]) -> bool {
    let mut lines = data.splitn(2, |b| *b == b'\n');
    let first = String::from_utf8_lossy(lines.next().unwrap_or_default());
    let mut words = first.split_whitespace();
    let size: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(100);
    let mtime: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
    let etag = words.next().unwrap_or("abc").to_owned();
    let mut head_text = b"GET /\n".to_vec();
    head_text.extend_from_slice(lines.next().unwrap_or_default());
    let Some(head) = request_head(&head_text) else {
        return false;
    };
    let req = &head.headers;

    let range = headers::get(req, "range");
    let ranged = headers::parse_range(range, size);
    let accepted = matches!(ranged, Ok(Some(_)));
    match ranged {
        Ok(Some(r)) => {
            assert!(r.start < r.end && r.end <= size, "{r:?} outside 0..{size}");
            let spec = range.and_then(|v| v.trim().strip_prefix("bytes=")).unwrap();
            let (start, end) = spec.split_once('-').unwrap();
            if let Ok(first) = start.trim().parse::<u64>() {
                assert_eq!(r.start, first);
            } else if let Ok(suffix) = end.trim().parse::<u64>() {
                assert_eq!(r.end - r.start, suffix.min(size));
            }
        }
        Ok(None) => {}
        Err(e) => {
            assert_eq!(e.code, Code::InvalidRange);
            let content_range = format!("bytes */{size}");
            assert!(e.headers.iter().any(|(_, v)| v == content_range.as_str()));
        }
    }

    let info = ObjectInfo {
        key: "k".into(),
        size,
        etag,
        last_modified: UNIX_EPOCH + Duration::from_secs(mtime.min(1 << 40)),
        headers: ObjectHeaders::default(),
        checksum: None,
        parts: vec![],
        seq: 0,
    };
    let read_and_copy = [
        ("", false, &headers::ConditionFields::READ),
        (
            "x-amz-copy-source-",
            true,
            &headers::ConditionFields::COPY_SOURCE,
        ),
    ];
    for (prefix, copy, fields) in read_and_copy {
        let conditional = req.keys().any(|k| {
            k.as_str()
                .strip_prefix(prefix)
                .is_some_and(|n| n.starts_with("if-"))
        });
        match headers::check_preconditions(req, fields, &info) {
            Ok(()) => {}
            Err(e) => {
                assert!(conditional, "failed without a conditional header");
                let allowed: &[Code] = if copy {
                    &[Code::PreconditionFailed]
                } else {
                    &[Code::PreconditionFailed, Code::NotModified]
                };
                assert!(allowed.contains(&e.code), "{:?}", e.code);
            }
        }
    }
    if let Err(e) = headers::write_condition(req) {
        assert_eq!(e.code, Code::NotImplemented);
    }
    if let Err(e) = headers::integrity(req) {
        assert!(matches!(e.code, Code::InvalidDigest | Code::InvalidRequest));
    }
    match headers::object_headers(req) {
        Ok(h) => {
            let meta: usize = h.user_metadata.iter().map(|(k, v)| k.len() + v.len()).sum();
            assert!(meta <= headers::MAX_USER_METADATA);
            assert!(h.content_encoding.is_none_or(|v| {
                !v.to_ascii_lowercase()
                    .split(", ")
                    .any(|e| e == "aws-chunked")
            }));
        }
        Err(e) => assert!(matches!(
            e.code,
            Code::InvalidArgument | Code::MetadataTooLarge
        )),
    }
    accepted
}

/// `bucket_policy`: the bucket-policy parser ([`Policy::parse`]) and evaluator.
///
/// Input: a first line naming the bucket, then the policy text. Invariants: errors are
/// MalformedPolicy; an accepted policy, re-serialised (serde_json), is accepted again as the
/// same policy and decides every probe request alike; a policy that is not public allows no
/// anonymous request that carries no source address (only `aws:SourceIp` limits make an
/// anyone-statement non-public); wildcard matching agrees with a reference matcher.
pub fn bucket_policy(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let (bucket, text) = text.split_once('\n').unwrap_or(("site", text));
    check_arn_matching(text);
    match Policy::parse(bucket, text) {
        Ok(policy) => {
            let value: serde_json::Value = serde_json::from_str(text).expect("accepted JSON");
            let again = Policy::parse(bucket, &value.to_string())
                .unwrap_or_else(|e| panic!("re-serialised policy refused: {e:?}"));
            assert_eq!(again, policy, "re-serialised policy differs");
            for probe in policy_probes(bucket) {
                let verdict = policy.evaluate(&probe);
                assert_eq!(again.evaluate(&probe), verdict);
                if !policy.is_public()
                    && probe.principal == Principal::Anonymous
                    && probe.source_ip.is_none()
                {
                    assert_ne!(
                        verdict,
                        Verdict::Allow,
                        "a non-public policy allows {probe:?}"
                    );
                }
            }
            true
        }
        Err(e) => {
            assert_eq!(e.code, Code::MalformedPolicy, "{e:?}");
            false
        }
    }
}

/// Requests of every principal kind, a few actions and resources, with and without the
/// condition values.
fn policy_probes(bucket: &str) -> Vec<Request> {
    let principals = [
        Principal::Anonymous,
        Principal::Key {
            id: "AKIDPROBE".into(),
            name: "probe".into(),
        },
    ];
    let actions = [
        ("s3:GetObject", Class::Read),
        ("s3:ListBucket", Class::Read),
        ("s3:PutObject", Class::Write),
    ];
    let mut probes = Vec::new();
    for principal in &principals {
        for (name, class) in actions {
            for key in ["", "a", "public/a.txt", "private/b"] {
                for with_facts in [false, true] {
                    probes.push(Request {
                        principal: principal.clone(),
                        action: Action { name, class },
                        resource: resource_arn(bucket, key),
                        source_ip: with_facts.then(|| "127.0.0.1".parse().expect("an address")),
                        referer: with_facts.then(|| "https://example.com/".into()),
                        user_agent: with_facts.then(|| "probe/1".into()),
                        secure_transport: false,
                        current_time: UNIX_EPOCH + Duration::from_secs(EXAMPLE_NOW_SECS),
                        prefix: with_facts.then(String::new),
                        delimiter: with_facts.then(|| "/".into()),
                        max_keys: with_facts.then(|| "10".into()),
                    });
                }
            }
        }
    }
    probes
}

/// Every `arn:aws:s3:::` string in the document, used as a Resource pattern, matches ARNs made
/// from it exactly as a plain dynamic-programming wildcard matcher says.
fn check_arn_matching(text: &str) {
    let mut patterns = Vec::new();
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        collect_arns(&value, &mut patterns);
    }
    // Short patterns only: the reference is quadratic, and length adds no new cases.
    for pattern in patterns.iter().filter(|p| p.len() <= 128).take(4) {
        let filled: String = pattern
            .chars()
            .map(|c| match c {
                '*' => 'x',
                '?' => 'y',
                c => c,
            })
            .collect();
        let tail = pattern.get(pattern.len() / 2..).unwrap_or("");
        for arn in [
            pattern.as_str(),
            filled.as_str(),
            tail,
            "arn:aws:s3:::site/a",
            "",
        ] {
            assert_eq!(
                wildcard_matches(pattern, arn),
                wildcard_reference(pattern, arn),
                "{pattern:?} against {arn:?}"
            );
        }
    }
}

fn collect_arns(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if s.starts_with("arn:aws:s3:::") => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_arns(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| collect_arns(v, out)),
        _ => {}
    }
}

/// `*` any run, `?` one character, over whole strings: the textbook table, O(pattern × text).
fn wildcard_reference(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // row[j]: does the pattern so far match t[..j]?
    let mut row = vec![false; t.len() + 1];
    row[0] = true;
    for &pc in &p {
        let mut next = vec![false; t.len() + 1];
        next[0] = row[0] && pc == '*';
        for j in 1..=t.len() {
            next[j] = match pc {
                '*' => next[j - 1] || row[j],
                '?' => row[j - 1],
                c => row[j - 1] && c == t[j - 1],
            };
        }
        row = next;
    }
    row[t.len()]
}

/// `write(doc)` parses, and writing the result again gives the same text.
fn assert_rewrites_stably<T: for<'de> serde::Deserialize<'de>>(doc: &T, write: fn(&T) -> String) {
    let written = write(doc);
    let back: T = xml::parse(written.as_bytes())
        .unwrap_or_else(|e| panic!("a written document does not parse: {e:?}\n{written}"));
    assert_eq!(write(&back), written, "writing and parsing are not inverse");
}

fn write_complete(doc: &xml::CompleteMultipartUpload) -> String {
    let mut w = xml::XmlWriter::new("CompleteMultipartUpload");
    for p in &doc.parts {
        w.open("Part")
            .elem("PartNumber", p.part_number)
            .elem("ETag", &p.etag)
            .opt("ChecksumCRC32", p.checksum_crc32.as_ref())
            .opt("ChecksumCRC32C", p.checksum_crc32c.as_ref())
            .opt("ChecksumCRC64NVME", p.checksum_crc64nvme.as_ref())
            .opt("ChecksumSHA1", p.checksum_sha1.as_ref())
            .opt("ChecksumSHA256", p.checksum_sha256.as_ref())
            .close();
    }
    w.finish()
}

fn write_delete(doc: &xml::Delete) -> String {
    let mut w = xml::XmlWriter::new("Delete");
    w.elem("Quiet", doc.quiet);
    for o in &doc.objects {
        w.open("Object")
            .elem("Key", &o.key)
            .opt("VersionId", o.version_id.as_ref())
            .close();
    }
    w.finish()
}

/// Parses `METHOD TARGET` and `Name: value` lines; `None` when the first line is unusable.
fn request_head(data: &[u8]) -> Option<http::request::Parts> {
    let mut lines = data
        .split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next()?;
    let mut words = first.splitn(2, |b| *b == b' ');
    let method = http::Method::from_bytes(words.next()?).ok()?;
    let uri = http::Uri::try_from(words.next()?).ok()?;
    let (mut head, ()) = http::Request::builder()
        .method(method)
        .uri(uri)
        .body(())
        .ok()?
        .into_parts();
    for line in lines {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim_ascii()),
            HeaderValue::from_bytes(value),
        ) {
            head.headers.append(name, value);
        }
    }
    Some(head)
}

fn auth_params(keyring: &Keyring) -> AuthParams<'_> {
    AuthParams {
        keyring,
        region: "us-east-1",
        bucket: EXAMPLE_BUCKET,
        now: UNIX_EPOCH + Duration::from_secs(EXAMPLE_NOW_SECS),
        max_skew: MAX_CLOCK_SKEW,
    }
}

fn example_keyring() -> Keyring {
    Keyring::new([Credentials {
        access_key_id: EXAMPLE_ACCESS_KEY.into(),
        secret: SecretKey::new(EXAMPLE_SECRET),
    }])
}

/// Runs `authenticate` and checks the invariants every auth target shares; returns the
/// identity when the request was accepted.
fn check_authenticate(head: &http::request::Parts) -> Option<Identity> {
    let keyring = example_keyring();
    let params = auth_params(&keyring);
    let query = head.uri.query().unwrap_or("");
    let has = |name: &str| query.split('&').any(|p| p.split('=').next() == Some(name));
    let credentials = head.headers.contains_key(http::header::AUTHORIZATION)
        || has("X-Amz-Signature")
        || has("Signature");
    match auth::authenticate(head, &params) {
        Ok(Authenticated { identity, payload }) => {
            match &identity {
                Identity::Anonymous => {
                    assert!(!credentials, "a signed request passed as anonymous");
                    assert!(matches!(payload, Payload::Unsigned));
                }
                Identity::Key(k) => {
                    assert!(keyring.secret(k).is_some(), "unknown key {k} accepted");
                    let mut other = head.clone();
                    other.method = if head.method == http::Method::GET {
                        http::Method::HEAD
                    } else {
                        http::Method::GET
                    };
                    assert!(
                        auth::authenticate(&other, &params).is_err(),
                        "the signature does not cover the method"
                    );
                }
            }
            Some(identity)
        }
        Err(e) => {
            let allowed = [
                Code::InvalidAccessKeyId,
                Code::SignatureDoesNotMatch,
                Code::AuthorizationHeaderMalformed,
                Code::AuthorizationQueryParametersError,
                Code::RequestTimeTooSkewed,
                Code::AccessDenied,
                Code::InvalidRequest,
                Code::InvalidArgument,
                Code::NotImplemented,
            ];
            assert!(allowed.contains(&e.code), "{:?}", e.code);
            None
        }
    }
}

/// The signing material of AWS's published streaming example.
fn example_chunk_signing() -> ChunkSigning {
    ChunkSigning {
        signing_key: sigv4::signing_key(EXAMPLE_SECRET, "20130524", "us-east-1", "s3"),
        amz_date: "20130524T000000Z".into(),
        scope: "20130524/us-east-1/s3/aws4_request".into(),
        seed_signature: EXAMPLE_STREAMING_SEED.into(),
    }
}

/// One run of the aws-chunked decoder.
struct ChunkedRun {
    /// Decoded data read before the end or the error.
    data: Vec<u8>,
    /// The trailers on a clean end, or the error code.
    result: std::result::Result<Vec<(String, String)>, Code>,
}

/// What a client sees of a decode: the data and trailers of a clean end, or the error code.
type ChunkedOutcome<'a> = std::result::Result<(&'a [u8], &'a [(String, String)]), Code>;

impl ChunkedRun {
    fn outcome(&self) -> ChunkedOutcome<'_> {
        match &self.result {
            Ok(t) => Ok((&self.data, t)),
            Err(c) => Err(*c),
        }
    }
}

fn decode_chunked(
    body: &[u8],
    pieces: &[usize],
    signed: bool,
    declared: Option<u64>,
) -> ChunkedRun {
    let trailers = Trailers::default();
    let mut stream = auth::chunked::decode(
        in_pieces(body, pieces),
        signed.then(example_chunk_signing),
        declared,
        trailers.clone(),
    );
    let mut data = Vec::new();
    let result = futures::executor::block_on(async {
        while let Some(piece) = stream.next().await {
            data.extend_from_slice(&piece.map_err(|e| e.code)?);
        }
        Ok(())
    });
    ChunkedRun {
        data,
        result: result.map(|()| trailers.all()),
    }
}

/// `post_form`: the browser form reader of POST Object (`s3::post::form::read`, then its file
/// stream) on an arbitrary `multipart/form-data` body with the boundary `XyZ`.
///
/// Input: byte 0 seeds the piece sizes, the body starts at byte 1. Invariants: errors are the
/// form's codes (MalformedPOSTRequest, IncompleteBody, IncorrectNumberOfFilesInPostRequest,
/// InvalidArgument, MaxPostPreDataLengthExceeded); a body shorter than the pre-data bound reads
/// the same (fields, filename, file bytes, or error code) whole and in pieces; fields are
/// lower-case and given once; the file's bytes stand in the body, after its fields.
pub fn post_form(data: &[u8]) -> bool {
    let [split_seed, body @ ..] = data else {
        return false;
    };
    let whole = read_form(body, &[body.len()]);
    let pieces = piece_sizes(body.len(), *split_seed);
    let split = read_form(body, &pieces);
    if body.len() < crate::s3::post::form::MAX_PRE_DATA {
        assert_eq!(whole, split, "the form depends on the split {pieces:?}");
    }
    for run in [&whole, &split] {
        match run {
            Err(code) => assert!(
                matches!(
                    code,
                    Code::MalformedPOSTRequest
                        | Code::IncompleteBody
                        | Code::IncorrectNumberOfFilesInPostRequest
                        | Code::InvalidArgument
                        | Code::MaxPostPreDataLengthExceeded
                ),
                "unexpected {code:?}"
            ),
            Ok((fields, _, file)) => {
                for (i, (name, _)) in fields.iter().enumerate() {
                    assert_eq!(*name, name.to_ascii_lowercase());
                    assert!(fields[..i].iter().all(|(n, _)| n != name), "{name} twice");
                }
                let values: usize = fields.iter().map(|(n, v)| n.len() + v.len()).sum();
                assert!(values + file.len() <= body.len());
                assert!(
                    file.is_empty() || find(body, file).is_some(),
                    "file not in body"
                );
            }
        }
    }
    whole.is_ok()
}

type FormRun = std::result::Result<(Vec<(String, String)>, String, Vec<u8>), Code>;

fn read_form(body: &[u8], pieces: &[usize]) -> FormRun {
    let content_type = Some("multipart/form-data; boundary=XyZ");
    futures::executor::block_on(async {
        let form = crate::s3::post::form::read(content_type, in_pieces(body, pieces)).await;
        let mut form = form.map_err(|e| e.code)?;
        let mut file = Vec::new();
        while let Some(piece) = form.file.next().await {
            file.extend_from_slice(&piece.map_err(|e| e.code)?);
        }
        Ok((form.fields, form.filename, file))
    })
}

/// `body` as a client's body stream yielding it in pieces of these sizes.
fn in_pieces(body: &[u8], pieces: &[usize]) -> crate::engine::ByteStream {
    let mut rest = body;
    let mut raw: Vec<Result<Bytes>> = Vec::new();
    for &n in pieces {
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        raw.push(Ok(Bytes::copy_from_slice(piece)));
        rest = tail;
    }
    futures::stream::iter(raw).boxed()
}

/// Piece sizes covering `len` bytes, 0 to 63 bytes each (empty pieces included: a body
/// stream may yield them), from a small deterministic generator.
fn piece_sizes(len: usize, seed: u8) -> Vec<usize> {
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761) | 1;
    let mut sizes = Vec::new();
    let mut covered = 0;
    while covered < len {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let n = (state % 64) as usize;
        sizes.push(n);
        covered += n;
    }
    sizes
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Deterministic inputs for the smoke run: each seed as is, then `per_seed` mutations of it
/// (byte flips, insertions, deletions, truncations, splices of another seed).
pub fn smoke_inputs(seeds: &[Vec<u8>], per_seed: usize) -> Vec<Vec<u8>> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::new();
    for seed in seeds {
        out.push(seed.clone());
        for _ in 0..per_seed {
            let mut input = seed.clone();
            for _ in 0..1 + next() % 4 {
                let at = if input.is_empty() {
                    0
                } else {
                    (next() as usize) % input.len()
                };
                match next() % 6 {
                    0 if !input.is_empty() => input[at] ^= 1 << (next() % 8),
                    1 => input.insert(at, next() as u8),
                    2 if !input.is_empty() => {
                        input.remove(at);
                    }
                    3 => input.truncate(at),
                    4 if !input.is_empty() => {
                        input[at] = b"\r\n:;=&%/-,\"<>*0 "[next() as usize % 16]
                    }
                    _ => {
                        let other = &seeds[(next() as usize) % seeds.len()];
                        let from = (next() as usize) % (other.len() + 1);
                        let end = (from + (next() as usize) % 64).min(other.len());
                        input.splice(at..at, other[from..end].iter().copied());
                    }
                }
            }
            out.push(input);
        }
    }
    out
}
