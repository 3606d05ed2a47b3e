//! The POST policy: a base64 JSON document `{"expiration": ..., "conditions": [...]}` that the
//! form's signature covers, and the check of a form against it (AWS, "Creating a POST
//! policy"). Pure functions of the form's fields and `now`.
//!
//! Conditions: `{"field": "value"}` and `["eq", "$field", "value"]` (exact match),
//! `["starts-with", "$field", "prefix"]` (an empty prefix allows any value; a Content-Type
//! with commas is a list of types, each of which must start with the prefix), and
//! `["content-length-range", min, max]` (the file's size, checked as it streams). Field names
//! match without regard to case. Every form field must be named by a condition except `file`,
//! `policy`, the signature fields and `x-ignore-*`; a condition on a field the form lacks
//! fails (an empty value, as at AWS). Anything else in the document is refused as
//! InvalidPolicyDocument rather than ignored.

use base64::Engine as _;
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::{Code, Error, Result};

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub expiration: OffsetDateTime,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The field (lower-case, without `$`) equals the value.
    Eq(String, String),
    /// The field starts with the value.
    StartsWith(String, String),
    /// The file is between these sizes in bytes, both included.
    LengthRange(u64, u64),
}

/// What the file's size must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LengthRange {
    pub min: u64,
    pub max: u64,
}

impl LengthRange {
    pub const ANY: LengthRange = LengthRange {
        min: 0,
        max: u64::MAX,
    };
}

/// Fields that need no condition: the file, the policy and the signature over it (AWS).
fn exempt(name: &str) -> bool {
    matches!(
        name,
        "file" | "policy" | "x-amz-signature" | "signature" | "awsaccesskeyid"
    ) || name.starts_with("x-ignore-")
}

impl Policy {
    /// Decodes the `policy` field. InvalidPolicyDocument when it is not base64 of a JSON
    /// object with an ISO 8601 `expiration` and a `conditions` list of known conditions.
    pub fn parse(encoded: &str) -> Result<Policy> {
        let invalid = |why: &str| {
            Error::msg(
                Code::InvalidPolicyDocument,
                format!("Invalid Policy: {why}"),
            )
        };
        let json = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| invalid("Invalid base64 encoding."))?;
        let doc: Value = serde_json::from_slice(&json).map_err(|_| invalid("Invalid JSON."))?;
        let doc = doc.as_object().ok_or_else(|| invalid("Invalid JSON."))?;
        if let Some(other) = doc
            .keys()
            .find(|k| *k != "expiration" && *k != "conditions")
        {
            return Err(invalid(&format!("Unexpected element '{other}'.")));
        }
        let expiration = doc
            .get("expiration")
            .and_then(Value::as_str)
            .and_then(|e| {
                OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339).ok()
            })
            .ok_or_else(|| invalid("Invalid 'expiration' value."))?;
        let list = doc
            .get("conditions")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("Missing 'conditions'."))?;
        let mut conditions = Vec::new();
        for c in list {
            let bad = || invalid(&format!("Invalid Condition: {c}"));
            match c {
                Value::Object(pairs) => {
                    for (name, value) in pairs {
                        let value = value.as_str().ok_or_else(bad)?;
                        conditions.push(Condition::Eq(name.to_ascii_lowercase(), value.to_owned()));
                    }
                }
                Value::Array(items) if items.len() == 3 => {
                    let op = items[0].as_str().ok_or_else(bad)?.to_ascii_lowercase();
                    if op == "content-length-range" {
                        let (min, max) = (
                            size(&items[1]).ok_or_else(bad)?,
                            size(&items[2]).ok_or_else(bad)?,
                        );
                        if min > max {
                            return Err(bad());
                        }
                        conditions.push(Condition::LengthRange(min, max));
                        continue;
                    }
                    let field = items[1]
                        .as_str()
                        .and_then(|f| f.strip_prefix('$'))
                        .ok_or_else(bad)?
                        .to_ascii_lowercase();
                    let value = items[2].as_str().ok_or_else(bad)?.to_owned();
                    conditions.push(match op.as_str() {
                        "eq" => Condition::Eq(field, value),
                        "starts-with" => Condition::StartsWith(field, value),
                        _ => return Err(bad()),
                    });
                }
                _ => return Err(bad()),
            }
        }
        Ok(Policy {
            expiration,
            conditions,
        })
    }

    /// Checks a form against the policy at `now`: `field` gives a field's value by its
    /// lower-case name (the bucket the request addresses as `bucket`, the key after
    /// `${filename}`), `names` every field the form sent. AccessDenied, worded as AWS words
    /// it, naming the expiry, the failed condition or the extra fields. Returns what the
    /// file's size must be.
    pub fn check<'a>(
        &self,
        now: OffsetDateTime,
        field: impl Fn(&str) -> Option<&'a str>,
        names: impl Iterator<Item = &'a str>,
    ) -> Result<LengthRange> {
        let denied = |why: String| {
            Error::msg(
                Code::AccessDenied,
                format!("Invalid according to Policy: {why}"),
            )
        };
        if now > self.expiration {
            return Err(denied("Policy expired.".into()));
        }
        let mut range = LengthRange::ANY;
        for c in &self.conditions {
            let holds = match c {
                Condition::Eq(name, v) => field(name).unwrap_or_default() == v,
                Condition::StartsWith(name, v) if name == "content-type" => field(name)
                    .unwrap_or_default()
                    .split(',')
                    .all(|t| t.starts_with(v.as_str())),
                Condition::StartsWith(name, v) => {
                    field(name).unwrap_or_default().starts_with(v.as_str())
                }
                Condition::LengthRange(min, max) => {
                    range = LengthRange {
                        min: range.min.max(*min),
                        max: range.max.min(*max),
                    };
                    true
                }
            };
            if !holds {
                return Err(denied(format!("Policy Condition failed: {}", c.shown())));
            }
        }
        let mut extra: Vec<&str> = names
            .filter(|n| !exempt(n))
            .filter(|n| !self.conditions.iter().any(|c| c.field() == Some(*n)))
            .collect();
        if !extra.is_empty() {
            extra.dedup();
            return Err(denied(format!("Extra input fields: {}", extra.join(", "))));
        }
        Ok(range)
    }
}

impl Condition {
    fn field(&self) -> Option<&str> {
        match self {
            Condition::Eq(f, _) | Condition::StartsWith(f, _) => Some(f),
            Condition::LengthRange(..) => None,
        }
    }

    /// As AWS shows it in its error: `["eq", "$key", "a"]`.
    fn shown(&self) -> String {
        let s = |v: &str| Value::from(v).to_string();
        match self {
            Condition::Eq(f, v) => format!("[\"eq\", {}, {}]", s(&format!("${f}")), s(v)),
            Condition::StartsWith(f, v) => {
                format!("[\"starts-with\", {}, {}]", s(&format!("${f}")), s(v))
            }
            Condition::LengthRange(min, max) => format!("[\"content-length-range\", {min}, {max}]"),
        }
    }
}

/// A size in a `content-length-range`: a JSON number or a string of digits (SDKs send both).
fn size(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use time::macros::datetime;

    fn encode(json: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    const DOC: &str = r#"{"expiration": "2026-12-01T12:00:00.000Z", "conditions": [
        {"bucket": "b"}, ["starts-with", "$key", "up/"], ["content-length-range", 1, "100"],
        ["eq", "$Content-Type", "text/plain"], ["starts-with", "$x-amz-meta-tag", ""]]}"#;

    fn check(policy: &Policy, now: OffsetDateTime, form: &[(&str, &str)]) -> Result<LengthRange> {
        let field = |n: &str| form.iter().find(|(k, _)| *k == n).map(|(_, v)| *v);
        policy.check(now, field, form.iter().map(|(k, _)| *k))
    }

    const OK: &[(&str, &str)] = &[
        ("bucket", "b"),
        ("key", "up/a"),
        ("content-type", "text/plain"),
        ("x-amz-meta-tag", "anything"),
        ("x-ignore-me", "1"),
        ("policy", "p"),
    ];

    #[test]
    fn a_form_within_the_policy_passes_with_its_length_range() {
        let policy = Policy::parse(&encode(DOC)).unwrap();
        assert_eq!(policy.expiration, datetime!(2026-12-01 12:00 UTC));
        let range = check(&policy, datetime!(2026-12-01 11:00 UTC), OK).unwrap();
        assert_eq!(range, LengthRange { min: 1, max: 100 });
    }

    #[test]
    fn expiry_failed_conditions_and_extra_fields_are_denied_by_name() {
        let policy = Policy::parse(&encode(DOC)).unwrap();
        let soon = datetime!(2026-12-01 11:00 UTC);
        let e = check(&policy, datetime!(2026-12-01 12:00:01 UTC), OK).unwrap_err();
        assert_eq!(
            (e.code, e.message()),
            (
                Code::AccessDenied,
                "Invalid according to Policy: Policy expired."
            )
        );
        let mut outside = OK.to_vec();
        outside[1] = ("key", "other/a");
        let e = check(&policy, soon, &outside).unwrap_err();
        assert_eq!(
            e.message(),
            r#"Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "up/"]"#
        );
        let mut wrong_bucket = OK.to_vec();
        wrong_bucket[0] = ("bucket", "c");
        let e = check(&policy, soon, &wrong_bucket).unwrap_err();
        assert!(
            e.message().ends_with(r#"["eq", "$bucket", "b"]"#),
            "{}",
            e.message()
        );
        let mut extra = OK.to_vec();
        extra.push(("acl", "private"));
        extra.push(("x-amz-meta-other", "1"));
        let e = check(&policy, soon, &extra).unwrap_err();
        assert_eq!(
            e.message(),
            "Invalid according to Policy: Extra input fields: acl, x-amz-meta-other"
        );
        let missing: Vec<_> = OK
            .iter()
            .filter(|(k, _)| *k != "content-type")
            .copied()
            .collect();
        assert_eq!(
            check(&policy, soon, &missing).unwrap_err().code,
            Code::AccessDenied
        );
    }

    /// AWS reads a Content-Type with commas as a list: each type must start with the prefix.
    #[test]
    fn every_type_in_a_content_type_list_must_start_with_the_prefix() {
        let doc = r#"{"expiration": "2026-12-01T12:00:00Z", "conditions": [
            ["starts-with", "$Content-Type", "image/"]]}"#;
        let policy = Policy::parse(&encode(doc)).unwrap();
        let now = datetime!(2026-12-01 11:00 UTC);
        let with = |ct| check(&policy, now, &[("content-type", ct)]);
        assert!(with("image/png").is_ok());
        assert!(with("image/png,image/gif").is_ok());
        for bad in ["image/png,text/html", "image/png,", "text/html,image/png"] {
            let e = with(bad).unwrap_err();
            assert_eq!(e.code, Code::AccessDenied, "{bad}");
            assert!(e.message().contains("$content-type"), "{}", e.message());
        }
    }

    #[test]
    fn malformed_policies_are_invalid_documents() {
        for doc in [
            "not json",
            "[]",
            r#"{"conditions": []}"#,
            r#"{"expiration": "tomorrow", "conditions": []}"#,
            r#"{"expiration": "2026-12-01T12:00:00Z"}"#,
            r#"{"expiration": "2026-12-01T12:00:00Z", "conditions": [["in", "$key", "a"]]}"#,
            r#"{"expiration": "2026-12-01T12:00:00Z", "conditions": [["eq", "key", "a"]]}"#,
            r#"{"expiration": "2026-12-01T12:00:00Z", "conditions": [["content-length-range", 5, 1]]}"#,
            r#"{"expiration": "2026-12-01T12:00:00Z", "conditions": [{"key": 1}]}"#,
            r#"{"expiration": "2026-12-01T12:00:00Z", "conditions": [], "extra": 1}"#,
        ] {
            let e = Policy::parse(&encode(doc)).unwrap_err();
            assert_eq!(e.code, Code::InvalidPolicyDocument, "{doc}");
        }
        assert_eq!(
            Policy::parse("***").unwrap_err().code,
            Code::InvalidPolicyDocument
        );
    }

    /// Random, truncated and mutated policies never panic: each parses or is refused.
    #[test]
    fn random_and_truncated_policies_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x9011c7);
        let now = datetime!(2026-12-01 11:00 UTC);
        for round in 0..5000 {
            let doc = super::super::mangle::mangled(&mut rng, DOC.as_bytes(), round);
            let encoded = base64::engine::general_purpose::STANDARD.encode(&doc);
            if let Ok(policy) = Policy::parse(&encoded) {
                let _ = check(&policy, now, OK);
            }
            let mut raw = encoded.into_bytes();
            raw.truncate(rng.random_range(0..=raw.len()));
            let _ = Policy::parse(&String::from_utf8_lossy(&raw));
        }
    }
}
