//! S3 XML: a small escaping writer for responses, serde structs for request bodies, and the
//! bounded body reader those parsers use.

use std::fmt::Display;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::Deserialize;

use crate::engine::ByteStream;
use crate::error::{Code, Error, Result};

pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Builds an XML document element by element; every text value is escaped.
pub struct XmlWriter {
    out: String,
    stack: Vec<&'static str>,
}

impl XmlWriter {
    /// Starts a document whose root element carries the S3 namespace.
    pub fn new(root: &'static str) -> Self {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str(&format!("<{root} xmlns=\"{S3_NAMESPACE}\">"));
        XmlWriter {
            out,
            stack: vec![root],
        }
    }

    pub fn open(&mut self, name: &'static str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.stack.push(name);
        self
    }

    pub fn close(&mut self) -> &mut Self {
        let name = self.stack.pop().expect("close without open");
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn elem(&mut self, name: &str, value: impl Display) -> &mut Self {
        let text = value.to_string();
        self.out
            .push_str(&format!("<{name}>{}</{name}>", escape(&text)));
        self
    }

    pub fn opt(&mut self, name: &str, value: Option<impl Display>) -> &mut Self {
        if let Some(v) = value {
            self.elem(name, v);
        }
        self
    }

    /// Appends a trusted, static XML fragment (elements with attributes the builder does not
    /// model, such as ACL grantees).
    pub fn raw(&mut self, fragment: &'static str) -> &mut Self {
        self.out.push_str(fragment);
        self
    }

    /// The owner block S3 puts in listings and ACLs; we have one (root) owner.
    pub fn owner(&mut self, tag: &'static str, id: &str) -> &mut Self {
        self.open(tag)
            .elem("ID", id)
            .elem("DisplayName", id)
            .close()
    }

    pub fn finish(mut self) -> String {
        while !self.stack.is_empty() {
            self.close();
        }
        self.out
    }
}

/// Text as an XML 1.0 document carries it: markup characters escaped; tab, line feed and
/// carriage return as character references (a parser normalises a literal CR or CRLF to LF,
/// which would change a key); the characters XML 1.0 cannot carry at all (other C0 controls,
/// U+FFFE, U+FFFF) as U+FFFD. New keys holding those are refused ([`can_carry`]), so only
/// keys stored before that rule can meet the replacement.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().all(|c| !c.is_control() && can_carry_char(c)) {
        return quick_xml::escape::escape(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if !can_carry_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Can an XML 1.0 document carry `text` (as character data, escaped by [`escape`])?
pub fn can_carry(text: &str) -> bool {
    text.chars().all(can_carry_char)
}

/// XML 1.0 §2.2 `Char`, for the characters a Rust string can hold.
fn can_carry_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// `2009-10-12T17:50:30.000Z`, the timestamp format of S3 XML documents.
pub fn iso8601(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt)
        .expect("formatting a UTC timestamp cannot fail")
}

/// An ISO 8601 / RFC 3339 timestamp as S3 writes them (`2026-12-01T10:00:00.000Z`).
pub fn parse_iso8601(text: &str) -> Option<SystemTime> {
    let t =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339);
    t.ok().map(SystemTime::from)
}

/// Reads a whole request body that is expected to be small (XML, JSON), refusing more than
/// `limit` bytes so a client cannot make us buffer without bound.
pub async fn read_small_body(body: ByteStream, limit: usize) -> Result<Bytes> {
    read_body_within(body, limit, || {
        Error::msg(Code::InvalidRequest, "The request body is too large.")
    })
    .await
}

/// [`read_small_body`], answering `too_large()` past `limit` (an operation whose document has
/// a limit of its own, and AWS's error for it).
pub async fn read_body_within(
    mut body: ByteStream,
    limit: usize,
    too_large: impl FnOnce() -> Error,
) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Parses an XML request body into `T`; anything unparsable is MalformedXML.
pub fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    let text = std::str::from_utf8(body).map_err(|_| Error::new(Code::MalformedXML))?;
    // S3 request bodies carry no document type declaration, and quick-xml's deserializer
    // panics on one placed inside an element's text (found by fuzzing): refused up front.
    if body
        .windows(9)
        .any(|w| w.eq_ignore_ascii_case(b"<!doctype"))
    {
        return Err(Error::new(Code::MalformedXML));
    }
    quick_xml::de::from_str(text).map_err(|e| {
        tracing::debug!(error = %e, "malformed XML body");
        Error::new(Code::MalformedXML)
    })
}

#[derive(Debug, Deserialize)]
pub struct CreateBucketConfiguration {
    #[serde(rename = "LocationConstraint")]
    pub location_constraint: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CompleteMultipartUpload {
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletePart>,
}

#[derive(Debug, Deserialize)]
pub struct CompletePart {
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    #[serde(rename = "ETag")]
    pub etag: String,
    #[serde(rename = "ChecksumCRC32")]
    pub checksum_crc32: Option<String>,
    #[serde(rename = "ChecksumCRC32C")]
    pub checksum_crc32c: Option<String>,
    #[serde(rename = "ChecksumCRC64NVME")]
    pub checksum_crc64nvme: Option<String>,
    #[serde(rename = "ChecksumSHA1")]
    pub checksum_sha1: Option<String>,
    #[serde(rename = "ChecksumSHA256")]
    pub checksum_sha256: Option<String>,
}

impl CompletePart {
    /// The one per-part checksum the client listed, if any.
    pub fn checksum(&self) -> Option<String> {
        [
            &self.checksum_crc32,
            &self.checksum_crc32c,
            &self.checksum_crc64nvme,
            &self.checksum_sha1,
            &self.checksum_sha256,
        ]
        .into_iter()
        .find_map(|c| c.clone())
    }
}

#[derive(Debug, Deserialize)]
pub struct Delete {
    #[serde(rename = "Quiet", default)]
    pub quiet: bool,
    #[serde(rename = "Object", default)]
    pub objects: Vec<DeleteEntry>,
}

#[derive(Debug, Deserialize)]
pub struct DeleteEntry {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "VersionId")]
    pub version_id: Option<String>,
    /// Conditional delete: the object's ETag must match (`*`: it must exist).
    #[serde(rename = "ETag")]
    pub etag: Option<String>,
    /// Conditional delete: the object's Last-Modified (ISO 8601) must match, to the second.
    #[serde(rename = "LastModifiedTime")]
    pub last_modified_time: Option<String>,
    /// Conditional delete: the object's size must match.
    #[serde(rename = "Size")]
    pub size: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_type_declaration_is_malformed_not_a_panic() {
        let doc = "<CreateBucketConfiguration><LocationConstraint>us<!DocType x>east</LocationConstraint></CreateBucketConfiguration>";
        let e = parse::<CreateBucketConfiguration>(doc.as_bytes()).unwrap_err();
        assert_eq!(e.code, Code::MalformedXML);
        let prolog = "<!DOCTYPE x><Delete><Object><Key>k</Key></Object></Delete>";
        assert_eq!(
            parse::<Delete>(prolog.as_bytes()).unwrap_err().code,
            Code::MalformedXML
        );
    }

    #[test]
    fn control_characters_survive_or_are_replaced() {
        assert_eq!(escape("a\rb\nc\td"), "a&#13;b&#10;c&#9;d");
        assert_eq!(escape("a\0b\u{1}c<"), "a\u{FFFD}b\u{FFFD}c&lt;");
        assert_eq!(escape("plain & <k>"), "plain &amp; &lt;k&gt;");
        assert!(can_carry("tab\tcr\rlf\n ünï\u{10FFFF}"));
        for bad in ["\0", "\u{1}", "\u{b}", "\u{1f}", "\u{fffe}", "\u{ffff}"] {
            assert!(!can_carry(bad), "{bad:?}");
        }
        // DEL and C1 controls are XML 1.0 characters.
        assert!(can_carry("\u{7f}\u{85}"));
    }

    #[test]
    fn writer_escapes_and_nests() {
        let mut w = XmlWriter::new("ListBucketResult");
        w.elem("Name", "a&b")
            .open("Contents")
            .elem("Key", "<k>")
            .close();
        let xml = w.finish();
        assert!(xml.contains("<Name>a&amp;b</Name><Contents><Key>&lt;k&gt;</Key></Contents>"));
        assert!(xml.ends_with("</ListBucketResult>"));
    }

    #[test]
    fn complete_body_with_and_without_namespace() {
        // s3cmd sends no xmlns and unquoted ETags.
        let c: CompleteMultipartUpload = parse(
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>abc</ETag></Part>\
              <Part><PartNumber>2</PartNumber><ETag>\"def\"</ETag><ChecksumCRC32>AAAAAA==</ChecksumCRC32></Part></CompleteMultipartUpload>",
        )
        .unwrap();
        assert_eq!(c.parts.len(), 2);
        assert_eq!(c.parts[1].checksum().as_deref(), Some("AAAAAA=="));
        let c: CompleteMultipartUpload = parse(
            format!("<CompleteMultipartUpload xmlns=\"{S3_NAMESPACE}\"><Part><ETag>x</ETag><PartNumber>3</PartNumber></Part></CompleteMultipartUpload>").as_bytes(),
        )
        .unwrap();
        assert_eq!(c.parts[0].part_number, 3);
    }

    #[test]
    fn delete_body() {
        let d: Delete = parse(b"<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object><Object><Key>b/c</Key></Object></Delete>").unwrap();
        assert!(d.quiet);
        assert_eq!(d.objects.len(), 2);
        assert_eq!(
            parse::<Delete>(b"<Delete><Object>").unwrap_err().code,
            Code::MalformedXML
        );
    }

    #[test]
    fn timestamps() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_255_369_830_000);
        assert_eq!(iso8601(t), "2009-10-12T17:50:30.000Z");
    }
}
