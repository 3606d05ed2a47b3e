//! Bucket policies: parsed and validated once, at PutBucketPolicy, into a typed [`Policy`];
//! evaluated per request ([`Policy::evaluate`]: Deny, Allow or NotApplicable).
//!
//! What is implemented is evaluated exactly as IAM does; everything else (another condition
//! operator or key, `IfExists` / `ForAnyValue:` qualifiers, `NotPrincipal`, policy variables,
//! a principal that is not an Outpost key) is refused with `MalformedPolicy` naming the element,
//! so no policy is ever stored and half-enforced.
//!
//! - `Principal`: `"*"`, `{"AWS": "*"}`, or `{"AWS": [...]}` naming Outpost keys by access key
//!   id (`AKIA...`) or as `arn:aws:iam:::user/NAME` (the key's name).
//! - `Action` / `NotAction`: `s3:` actions with `*` / `?` wildcards, compared
//!   case-insensitively (IAM action names are).
//! - `Resource` / `NotResource`: ARNs of this bucket (`arn:aws:s3:::b`, `arn:aws:s3:::b/...`),
//!   `*` / `?` matched case-sensitively against the whole ARN. Another bucket's ARN is
//!   "Policy has invalid resource", as at AWS.
//! - `Condition`: operator → key → value(s). Values of one key are OR'ed; keys and operators
//!   are AND'ed. A key the request does not carry fails a positive operator and passes a
//!   negated one (`StringNotEquals`, `StringNotLike`, `NotIpAddress`, `NumericNotEquals`,
//!   `DateNotEquals`), as in IAM ("If the key that you specify in a policy condition is not
//!   present in the request context, the values do not match and the condition is false. If
//!   the policy condition requires that the key is not matched, such as StringNotLike [...],
//!   the condition is true": IAM User Guide, Condition operators).
//! - A member named twice in one object is refused (`policy/json.rs`); so is a statement none of
//!   whose actions acts on any of its resources, as at AWS.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::{IpNet, Principal, Request};
use crate::error::{Code, Error, Result};

mod json;

/// AWS's limit on a bucket policy document.
pub const MAX_POLICY_BYTES: usize = 20 << 10;

/// A validated bucket policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// What a policy says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A statement denies it (wins over everything else).
    Deny,
    /// A statement allows it and none denies it.
    Allow,
    /// No statement applies.
    NotApplicable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    principals: Principals,
    actions: Patterns,
    resources: Patterns,
    conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Principals {
    /// `"*"`: everyone, signed or anonymous.
    Anyone,
    Keys(Vec<KeyRef>),
}

/// An Outpost key named in a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyRef {
    /// By access key id.
    Id(String),
    /// By name, as `arn:aws:iam:::user/NAME`.
    Name(String),
}

/// `Action` or `NotAction`, `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Patterns {
    not: bool,
    patterns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    test: Test,
    /// The operator's negated form (`StringNotEquals`, `NotIpAddress`, ...).
    negated: bool,
    key: Key,
    values: Vec<Expected>,
}

/// An operator's comparison, negation aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    IpAddress,
    Bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Cmp::Eq => ordering == Ordering::Equal,
            Cmp::Lt => ordering == Ordering::Less,
            Cmp::Le => ordering != Ordering::Greater,
            Cmp::Gt => ordering == Ordering::Greater,
            Cmp::Ge => ordering != Ordering::Less,
        }
    }
}

/// The condition keys the evaluator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    SourceIp,
    Referer,
    UserAgent,
    SecureTransport,
    CurrentTime,
    Prefix,
    Delimiter,
    MaxKeys,
}

/// What a key's values are, and so which operators apply to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    Numeric,
    Date,
    Ip,
    Bool,
}

const KEYS: &[(&str, Key, Kind)] = &[
    ("aws:sourceip", Key::SourceIp, Kind::Ip),
    ("aws:referer", Key::Referer, Kind::String),
    ("aws:useragent", Key::UserAgent, Kind::String),
    ("aws:securetransport", Key::SecureTransport, Kind::Bool),
    ("aws:currenttime", Key::CurrentTime, Kind::Date),
    ("s3:prefix", Key::Prefix, Kind::String),
    ("s3:delimiter", Key::Delimiter, Kind::String),
    ("s3:max-keys", Key::MaxKeys, Kind::Numeric),
];

/// Operator name → (comparison, negated).
const OPERATORS: &[(&str, Test, bool)] = &[
    ("StringEquals", Test::StringEquals, false),
    ("StringNotEquals", Test::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Test::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Test::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Test::StringLike, false),
    ("StringNotLike", Test::StringLike, true),
    ("NumericEquals", Test::Numeric(Cmp::Eq), false),
    ("NumericNotEquals", Test::Numeric(Cmp::Eq), true),
    ("NumericLessThan", Test::Numeric(Cmp::Lt), false),
    ("NumericLessThanEquals", Test::Numeric(Cmp::Le), false),
    ("NumericGreaterThan", Test::Numeric(Cmp::Gt), false),
    ("NumericGreaterThanEquals", Test::Numeric(Cmp::Ge), false),
    ("DateEquals", Test::Date(Cmp::Eq), false),
    ("DateNotEquals", Test::Date(Cmp::Eq), true),
    ("DateLessThan", Test::Date(Cmp::Lt), false),
    ("DateLessThanEquals", Test::Date(Cmp::Le), false),
    ("DateGreaterThan", Test::Date(Cmp::Gt), false),
    ("DateGreaterThanEquals", Test::Date(Cmp::Ge), false),
    ("IpAddress", Test::IpAddress, false),
    ("NotIpAddress", Test::IpAddress, true),
    ("Bool", Test::Bool, false),
];

impl Test {
    fn kind(self) -> Kind {
        match self {
            Test::StringEquals | Test::StringEqualsIgnoreCase | Test::StringLike => Kind::String,
            Test::Numeric(_) => Kind::Numeric,
            Test::Date(_) => Kind::Date,
            Test::IpAddress => Kind::Ip,
            Test::Bool => Kind::Bool,
        }
    }
}

/// A condition value, parsed for its operator.
#[derive(Debug, Clone, PartialEq)]
enum Expected {
    Text(String),
    Number(f64),
    Time(SystemTime),
    Net(IpNet),
    Bool(bool),
}

/// A policy over [`MAX_POLICY_BYTES`], as AWS answers it.
pub fn too_large() -> Error {
    malformed("Policy exceeds the maximum allowed document size.")
}

fn malformed(message: impl Into<String>) -> Error {
    Error::msg(Code::MalformedPolicy, message.into())
}

impl Policy {
    /// Parses and validates the policy document of `bucket`: `MalformedPolicy`, naming the
    /// element, for anything this evaluator does not implement exactly.
    pub fn parse(bucket: &str, text: &str) -> Result<Policy> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(too_large());
        }
        let Value::Object(document) = json::parse(text).map_err(malformed)? else {
            return Err(Error::new(Code::MalformedPolicy));
        };
        let mut variables = false;
        for (name, value) in &document {
            match name.as_str() {
                "Version" => match value.as_str() {
                    Some("2012-10-17") => variables = true,
                    Some("2008-10-17") => {}
                    _ => return Err(malformed("Invalid Version: use 2012-10-17 or 2008-10-17")),
                },
                "Id" if value.is_string() => {}
                "Id" => return Err(malformed("Id must be a string")),
                "Statement" => {}
                other => return Err(malformed(format!("Unknown field {other}"))),
            }
        }
        let statements = match document.get("Statement") {
            Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => return Err(malformed("Missing required field Statement")),
        };
        let mut sids = HashSet::new();
        let statements = statements
            .into_iter()
            .map(|s| {
                let Value::Object(s) = s else {
                    return Err(malformed("Statement must be an object"));
                };
                if let Some(sid) = s.get("Sid") {
                    let sid = sid
                        .as_str()
                        .ok_or_else(|| malformed("Sid must be a string"))?;
                    if !sids.insert(sid.to_owned()) {
                        return Err(malformed(format!(
                            "Statement IDs (SID) in a single policy must be unique: {sid}"
                        )));
                    }
                }
                Statement::parse(bucket, s, variables)
            })
            .collect::<Result<_>>()?;
        Ok(Policy { statements })
    }

    /// A policy that was stored or published before: parsed, or, when this build refuses it
    /// (a laxer earlier version put it, or a newer store published it), logged and taken as
    /// denying everything on `bucket` to everyone but root, until it is put again. Never
    /// fail open: dropping it would drop its Deny statements.
    pub fn stored(bucket: &str, text: &str) -> Policy {
        Policy::parse(bucket, text).unwrap_or_else(|e| {
            tracing::error!(bucket, error = ?e, "stored bucket policy does not parse: denying all");
            Policy::deny_all(bucket)
        })
    }

    fn deny_all(bucket: &str) -> Policy {
        let text = format!(
            r#"{{"Statement":[{{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::{bucket}","arn:aws:s3:::{bucket}/*"]}}]}}"#
        );
        Policy::parse(bucket, &text).expect("a deny-all policy parses")
    }

    /// What the policy says about `request`: an applicable Deny wins, then an Allow.
    pub fn evaluate(&self, request: &Request) -> Verdict {
        let applicable = |effect| {
            self.statements
                .iter()
                .any(|s| s.effect == effect && s.applies(request))
        };
        if applicable(Effect::Deny) {
            Verdict::Deny
        } else if applicable(Effect::Allow) {
            Verdict::Allow
        } else {
            Verdict::NotApplicable
        }
    }

    /// Public as AWS defines it ("The meaning of public"): some Allow statement grants to
    /// everyone (`"*"`) without limiting the source to fixed address blocks
    /// (`IpAddress` on `aws:SourceIp`, none of them `/0`). Statements naming keys are not
    /// public; neither are the other conditions, which a client controls.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && s.principals == Principals::Anyone
                && !s.conditions.iter().any(|c| {
                    c.key == Key::SourceIp
                        && !c.negated
                        && c.values
                            .iter()
                            .all(|v| matches!(v, Expected::Net(n) if n.prefix() > 0))
                })
        })
    }
}

impl Statement {
    fn parse(bucket: &str, s: &Map<String, Value>, variables: bool) -> Result<Statement> {
        for name in s.keys() {
            match name.as_str() {
                "Sid" | "Effect" | "Principal" | "Action" | "NotAction" | "Resource"
                | "NotResource" | "Condition" => {}
                "NotPrincipal" => {
                    return Err(malformed("NotPrincipal is not supported by this server"));
                }
                other => return Err(malformed(format!("Unknown field {other} in Statement"))),
            }
        }
        let effect = match s.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            Some(_) => return Err(malformed("Invalid effect: use Allow or Deny")),
            None => return Err(malformed("Missing required field Effect")),
        };
        let principals = parse_principal(s.get("Principal"))?;
        let mut actions = either(s, "Action", "NotAction")?;
        for action in &mut actions.patterns {
            check_action(action)?;
            // IAM action names compare case-insensitively: kept lower-case, matched so.
            action.make_ascii_lowercase();
        }
        let resources = either(s, "Resource", "NotResource")?;
        for resource in &resources.patterns {
            check_resource(bucket, resource, variables)?;
        }
        if !applies_to_any(bucket, &actions, &resources) {
            return Err(malformed(
                "Action does not apply to any resource(s) in statement",
            ));
        }
        let conditions = match s.get("Condition") {
            None => Vec::new(),
            Some(Value::Object(operators)) => parse_conditions(operators, variables)?,
            Some(_) => return Err(malformed("Condition must be an object")),
        };
        Ok(Statement {
            effect,
            principals,
            actions,
            resources,
            conditions,
        })
    }

    fn applies(&self, request: &Request) -> bool {
        self.principals.include(&request.principal)
            && self
                .actions
                .matches(&request.action.name.to_ascii_lowercase())
            && self.resources.matches(&request.resource)
            && self.conditions.iter().all(|c| c.holds(request))
    }
}

impl Principals {
    fn include(&self, principal: &Principal) -> bool {
        match (self, principal) {
            (Principals::Anyone, _) => true,
            (Principals::Keys(keys), Principal::Key { id, name }) => keys.iter().any(|k| match k {
                KeyRef::Id(i) => i == id,
                KeyRef::Name(n) => n == name,
            }),
            // Root is decided before any policy; anonymous clients are no key.
            (Principals::Keys(_), _) => false,
        }
    }
}

impl Patterns {
    fn matches(&self, value: &str) -> bool {
        let any = self.patterns.iter().any(|p| wildcard_matches(p, value));
        any != self.not
    }
}

fn parse_principal(value: Option<&Value>) -> Result<Principals> {
    let value = value.ok_or_else(|| malformed("Missing required field Principal"))?;
    let names = match value {
        Value::String(s) if s == "*" => return Ok(Principals::Anyone),
        Value::Object(map) => {
            if let Some(other) = map.keys().find(|k| *k != "AWS") {
                return Err(malformed(format!(
                    "Principal type {other} is not supported by this server (only AWS)"
                )));
            }
            strings(map.get("AWS"), "Principal")?
        }
        _ => return Err(malformed("Invalid principal in policy")),
    };
    if names.iter().any(|n| n == "*") {
        return Ok(Principals::Anyone);
    }
    names
        .into_iter()
        .map(|name| {
            key_ref(&name).ok_or_else(|| malformed(format!("Invalid principal in policy: {name}")))
        })
        .collect::<Result<_>>()
        .map(Principals::Keys)
}

/// An access key id, or `arn:aws:iam:::user/NAME`.
fn key_ref(name: &str) -> Option<KeyRef> {
    if let Some(user) = name.strip_prefix("arn:aws:iam:::user/") {
        let valid = (1..=64).contains(&user.len())
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
        return valid.then(|| KeyRef::Name(user.to_owned()));
    }
    let valid = (1..=128).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric());
    valid.then(|| KeyRef::Id(name.to_owned()))
}

/// Exactly one of `positive` / `negative` (`Action` / `NotAction`).
fn either(s: &Map<String, Value>, positive: &str, negative: &str) -> Result<Patterns> {
    match (s.get(positive), s.get(negative)) {
        (Some(v), None) => Ok(Patterns {
            not: false,
            patterns: strings(Some(v), positive)?,
        }),
        (None, Some(v)) => Ok(Patterns {
            not: true,
            patterns: strings(Some(v), negative)?,
        }),
        (Some(_), Some(_)) => Err(malformed(format!(
            "Statement may not have both {positive} and {negative}"
        ))),
        (None, None) => Err(malformed(format!("Missing required field {positive}"))),
    }
}

/// A string or a non-empty array of strings.
fn strings(value: Option<&Value>, element: &str) -> Result<Vec<String>> {
    let bad = || {
        malformed(format!(
            "{element} must be a string or a non-empty array of strings"
        ))
    };
    match value {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
            .collect(),
        _ => Err(bad()),
    }
}

fn check_action(action: &str) -> Result<()> {
    let name = action
        .get(..3)
        .filter(|p| p.eq_ignore_ascii_case("s3:"))
        .map(|_| &action[3..]);
    let valid = action == "*"
        || name.is_some_and(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'*' || b == b'?')
        });
    if !valid {
        return Err(malformed(format!("Policy has invalid action: {action}")));
    }
    match name.and_then(operation_action) {
        Some(needed) => Err(malformed(format!(
            "Policy has invalid action: {action} (the action for it is {needed})"
        ))),
        None => Ok(()),
    }
}

/// S3 operations whose name is no IAM action, and the action they need (Service
/// Authorization Reference for Amazon S3): a policy naming one would match nothing, and
/// AWS refuses it ("Policy has invalid action").
fn operation_action(name: &str) -> Option<&'static str> {
    const OPERATIONS: &[(&str, &str)] = &[
        ("listobjects", "s3:ListBucket"),
        ("listobjectsv2", "s3:ListBucket"),
        ("headbucket", "s3:ListBucket"),
        ("listbuckets", "s3:ListAllMyBuckets"),
        ("listobjectversions", "s3:ListBucketVersions"),
        ("listmultipartuploads", "s3:ListBucketMultipartUploads"),
        ("listparts", "s3:ListMultipartUploadParts"),
        ("headobject", "s3:GetObject"),
        ("copyobject", "s3:PutObject"),
        ("createmultipartupload", "s3:PutObject"),
        ("uploadpart", "s3:PutObject"),
        ("uploadpartcopy", "s3:PutObject"),
        ("completemultipartupload", "s3:PutObject"),
        ("deleteobjects", "s3:DeleteObject"),
        ("getpublicaccessblock", "s3:GetBucketPublicAccessBlock"),
        ("putpublicaccessblock", "s3:PutBucketPublicAccessBlock"),
        ("deletepublicaccessblock", "s3:PutBucketPublicAccessBlock"),
        ("deletebucketcors", "s3:PutBucketCORS"),
    ];
    OPERATIONS
        .iter()
        .find(|(operation, _)| name.eq_ignore_ascii_case(operation))
        .map(|&(_, action)| action)
}

/// What an action acts on: the bucket or its objects (the resource types of the Service
/// Authorization Reference for Amazon S3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Bucket,
    Object,
}

/// The target of a lower-case action name, for the names whose target is known here (`None`
/// for a pattern or another name).
fn target(action: &str) -> Option<Target> {
    const OBJECT: &[&str] = &[
        "getobject",
        "getobjectacl",
        "getobjectattributes",
        "getobjecttagging",
        "getobjectversion",
        "putobject",
        "putobjectacl",
        "putobjecttagging",
        "deleteobject",
        "deleteobjecttagging",
        "deleteobjectversion",
        "abortmultipartupload",
        "listmultipartuploadparts",
        "restoreobject",
    ];
    let name = action.strip_prefix("s3:")?;
    let bucket = ["getbucket", "putbucket", "deletebucket", "listbucket"]
        .iter()
        .any(|p| name.starts_with(p))
        || name == "createbucket";
    if name.contains(['*', '?']) {
        None
    } else if OBJECT.contains(&name) {
        Some(Target::Object)
    } else if bucket {
        Some(Target::Bucket)
    } else {
        None
    }
}

/// Does some action of a statement act on one of its resources? AWS refuses a statement
/// where none does ("Action does not apply to any resource(s) in statement": `s3:GetObject`
/// on `arn:aws:s3:::b`), which would be stored and never match. The `Not` forms, patterns
/// and names of unknown target are taken to apply.
fn applies_to_any(bucket: &str, actions: &Patterns, resources: &Patterns) -> bool {
    let bucket_arn = super::resource_arn(bucket, "");
    let fits = |t: Target| {
        resources.patterns.iter().any(|r| {
            let is_bucket = *r == bucket_arn;
            is_bucket == (t == Target::Bucket)
        })
    };
    actions.not || resources.not || actions.patterns.iter().any(|a| target(a).is_none_or(fits))
}

fn check_resource(bucket: &str, resource: &str, variables: bool) -> Result<()> {
    if variables && resource.contains("${") {
        return Err(malformed(format!(
            "Policy variables are not supported by this server (Resource {resource})"
        )));
    }
    let rest = resource
        .strip_prefix("arn:aws:s3:::")
        .and_then(|r| r.strip_prefix(bucket));
    match rest {
        Some(r) if r.is_empty() || r.starts_with('/') => Ok(()),
        _ => Err(malformed(format!(
            "Policy has invalid resource: {resource}"
        ))),
    }
}

fn parse_conditions(operators: &Map<String, Value>, variables: bool) -> Result<Vec<Condition>> {
    let mut conditions = Vec::new();
    for (name, keys) in operators {
        if name.contains(':') || name.ends_with("IfExists") {
            return Err(malformed(format!(
                "Condition qualifier in {name} is not supported by this server"
            )));
        }
        let &(_, test, negated) =
            OPERATORS
                .iter()
                .find(|(n, _, _)| n == name)
                .ok_or_else(|| {
                    malformed(format!(
                        "Condition operator {name} is not supported by this server"
                    ))
                })?;
        let Value::Object(keys) = keys else {
            return Err(malformed(format!("Condition {name} must be an object")));
        };
        if keys.is_empty() {
            return Err(malformed(format!("Condition {name} names no key")));
        }
        // Key names compare case-insensitively (IAM): `aws:Referer` and `aws:referer` are one
        // key, and one of them would be dropped or AND'ed where the author meant one.
        let mut named = HashSet::new();
        for (key_name, values) in keys {
            if !named.insert(key_name.to_ascii_lowercase()) {
                return Err(malformed(format!(
                    "Condition key {key_name} is named twice in {name}"
                )));
            }
            let &(_, key, kind) = KEYS
                .iter()
                .find(|(k, _, _)| k.eq_ignore_ascii_case(key_name))
                .ok_or_else(|| {
                    malformed(format!(
                        "Condition key {key_name} is not supported by this server"
                    ))
                })?;
            if kind != test.kind() {
                return Err(malformed(format!(
                    "Condition operator {name} does not apply to the key {key_name}"
                )));
            }
            let values = condition_values(values, name)?;
            if variables && values.iter().any(|v| v.contains("${")) {
                return Err(malformed(format!(
                    "Policy variables are not supported by this server (Condition {name} {key_name})"
                )));
            }
            let values = values
                .iter()
                .map(|v| expected(test, v))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| malformed(format!("Invalid value for {name} {key_name}")))?;
            conditions.push(Condition {
                test,
                negated,
                key,
                values,
            });
        }
    }
    Ok(conditions)
}

/// A condition's values: strings, or JSON numbers and booleans taken as their text.
fn condition_values(value: &Value, operator: &str) -> Result<Vec<String>> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        _ => None,
    };
    let values = match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(text).collect(),
        Value::Array(_) => None,
        one => text(one).map(|t| vec![t]),
    };
    values.ok_or_else(|| malformed(format!("Invalid value for condition {operator}")))
}

fn expected(test: Test, value: &str) -> Option<Expected> {
    match test {
        Test::StringEquals | Test::StringLike => Some(Expected::Text(value.to_owned())),
        Test::StringEqualsIgnoreCase => Some(Expected::Text(value.to_lowercase())),
        Test::Numeric(_) => number(value).map(Expected::Number),
        Test::Date(_) => time(value).map(Expected::Time),
        Test::IpAddress => value.parse().ok().map(Expected::Net),
        Test::Bool => match value.to_ascii_lowercase().as_str() {
            "true" => Some(Expected::Bool(true)),
            "false" => Some(Expected::Bool(false)),
            _ => None,
        },
    }
}

fn number(value: &str) -> Option<f64> {
    value.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

/// ISO 8601 (RFC 3339, or a bare date), or seconds since the epoch, as IAM accepts.
fn time(value: &str) -> Option<SystemTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(value, &Rfc3339) {
        return Some(t.into());
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(value, &date_format) {
        return Some(d.midnight().assume_utc().into());
    }
    let secs: u64 = value.parse().ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// What the request carries for one condition key.
enum Actual<'a> {
    Text(&'a str),
    Number(f64),
    Time(SystemTime),
    Ip(IpAddr),
    Bool(bool),
}

impl Condition {
    fn holds(&self, request: &Request) -> bool {
        let actual = match self.key {
            Key::SourceIp => request.source_ip.map(Actual::Ip),
            Key::Referer => request.referer.as_deref().map(Actual::Text),
            Key::UserAgent => request.user_agent.as_deref().map(Actual::Text),
            Key::SecureTransport => Some(Actual::Bool(request.secure_transport)),
            Key::CurrentTime => Some(Actual::Time(request.current_time)),
            Key::Prefix => request.prefix.as_deref().map(Actual::Text),
            Key::Delimiter => request.delimiter.as_deref().map(Actual::Text),
            // A max-keys that is no number matches no numeric value.
            Key::MaxKeys => request
                .max_keys
                .as_deref()
                .and_then(number)
                .map(Actual::Number),
        };
        let matched = actual.is_some_and(|a| self.values.iter().any(|v| self.test_one(&a, v)));
        matched != self.negated
    }

    fn test_one(&self, actual: &Actual, expected: &Expected) -> bool {
        match (self.test, actual, expected) {
            (Test::StringEquals, Actual::Text(a), Expected::Text(e)) => a == e,
            (Test::StringEqualsIgnoreCase, Actual::Text(a), Expected::Text(e)) => {
                a.to_lowercase() == *e
            }
            (Test::StringLike, Actual::Text(a), Expected::Text(e)) => wildcard_matches(e, a),
            (Test::Numeric(cmp), Actual::Number(a), Expected::Number(e)) => {
                a.partial_cmp(e).is_some_and(|o| cmp.holds(o))
            }
            (Test::Date(cmp), Actual::Time(a), Expected::Time(e)) => cmp.holds(a.cmp(e)),
            (Test::IpAddress, Actual::Ip(a), Expected::Net(e)) => e.contains(*a),
            (Test::Bool, Actual::Bool(a), Expected::Bool(e)) => a == e,
            _ => false,
        }
    }
}

/// IAM's wildcard matching: `*` matches any run of characters (`/` included), `?` any one
/// character, everything else itself, over the whole text.
pub fn wildcard_matches(pattern: &str, text: &str) -> bool {
    let (p, a): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Greedy matching with one backtrack point: the last `*` seen (linear for our sizes).
    let (mut pi, mut ai) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ai < a.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ai));
                pi += 1;
            }
            Some(&c) if c == '?' || c == a[ai] => {
                pi += 1;
                ai += 1;
            }
            _ => match star {
                Some((sp, sa)) => {
                    pi = sp + 1;
                    ai = sa + 1;
                    star = Some((sp, sa + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests;
