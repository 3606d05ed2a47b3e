use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::access::{Action, Class, resource_arn};

const B: &str = "site";

fn parse(text: &str) -> Result<Policy> {
    Policy::parse(B, text)
}

fn refused(text: &str) -> String {
    let e = parse(text).expect_err(text);
    assert_eq!(e.code, Code::MalformedPolicy, "{text}");
    e.message().to_owned()
}

/// One statement: `body` is the statement's JSON members.
fn one(body: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{{{body}}}]}}"#)
}

fn allow(action: &str, resource: &str, condition: &str) -> String {
    let condition = if condition.is_empty() {
        String::new()
    } else {
        format!(r#","Condition":{condition}"#)
    };
    one(&format!(
        r#""Effect":"Allow","Principal":"*","Action":"{action}","Resource":"{resource}"{condition}"#
    ))
}

fn request(principal: Principal, action: &'static str, key: &str) -> Request {
    Request {
        principal,
        action: Action {
            name: action,
            class: Class::Read,
        },
        resource: resource_arn(B, key),
        source_ip: Some("127.0.0.1".parse().unwrap()),
        referer: None,
        user_agent: None,
        secure_transport: false,
        current_time: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        prefix: None,
        delimiter: None,
        max_keys: None,
    }
}

fn anonymous_get(key: &str) -> Request {
    request(Principal::Anonymous, "s3:GetObject", key)
}

#[test]
fn a_prefix_policy_allows_only_its_prefix() {
    let p = parse(&allow("s3:GetObject", "arn:aws:s3:::site/public/*", "")).unwrap();
    assert_eq!(p.evaluate(&anonymous_get("public/a.txt")), Verdict::Allow);
    assert_eq!(p.evaluate(&anonymous_get("public/x/y")), Verdict::Allow);
    for key in ["private/b.txt", "publicity", "Public/a.txt", ""] {
        assert_eq!(
            p.evaluate(&anonymous_get(key)),
            Verdict::NotApplicable,
            "{key}"
        );
    }
    let list = request(Principal::Anonymous, "s3:ListBucket", "");
    assert_eq!(p.evaluate(&list), Verdict::NotApplicable);
    assert!(p.is_public());
}

#[test]
fn deny_beats_allow_and_not_elements_invert() {
    let p = parse(
        r#"{"Statement":[
        {"Effect":"Allow","Principal":"*","Action":"s3:Get*","Resource":"arn:aws:s3:::site/*"},
        {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"s3:*","Resource":"arn:aws:s3:::site/secret/*"}]}"#,
    )
    .unwrap();
    assert_eq!(p.evaluate(&anonymous_get("a")), Verdict::Allow);
    assert_eq!(p.evaluate(&anonymous_get("secret/a")), Verdict::Deny);
    // Action names compare case-insensitively, resources do not.
    let p = parse(&allow("S3:getobject", "arn:aws:s3:::site/A*", "")).unwrap();
    assert_eq!(p.evaluate(&anonymous_get("Ab")), Verdict::Allow);
    assert_eq!(p.evaluate(&anonymous_get("ab")), Verdict::NotApplicable);
    let p = parse(&one(
        r#""Effect":"Allow","Principal":"*","NotAction":"s3:Put*","NotResource":"arn:aws:s3:::site/private/*""#,
    ))
    .unwrap();
    assert_eq!(p.evaluate(&anonymous_get("a")), Verdict::Allow);
    assert_eq!(
        p.evaluate(&anonymous_get("private/a")),
        Verdict::NotApplicable
    );
    let put = request(Principal::Anonymous, "s3:PutObject", "a");
    assert_eq!(p.evaluate(&put), Verdict::NotApplicable);
}

#[test]
fn principals_name_keys_by_id_or_user_arn() {
    let p = parse(&one(
        r#""Effect":"Allow","Principal":{"AWS":["AKIDALICE","arn:aws:iam:::user/bob"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*""#,
    ))
    .unwrap();
    let key = |id: &str, name: &str| Principal::Key {
        id: id.into(),
        name: name.into(),
    };
    for (principal, verdict) in [
        (key("AKIDALICE", "alice"), Verdict::Allow),
        (key("AKIDBOB", "bob"), Verdict::Allow),
        (key("AKIDCAROL", "carol"), Verdict::NotApplicable),
        (key("AKIDCAROL", "AKIDALICE"), Verdict::NotApplicable),
        (Principal::Anonymous, Verdict::NotApplicable),
    ] {
        let r = request(principal.clone(), "s3:GetObject", "k");
        assert_eq!(p.evaluate(&r), verdict, "{principal:?}");
    }
    assert!(!p.is_public());
}

/// A condition block, how the request is changed, and the verdict expected.
type ConditionCase = (&'static str, fn(&mut Request), Verdict);

#[test]
fn conditions() {
    let cases: &[ConditionCase] = &[
        (
            r#"{"IpAddress":{"aws:SourceIp":"127.0.0.1/32"}}"#,
            |_| {},
            Verdict::Allow,
        ),
        (
            r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::1/128"]}}"#,
            |_| {},
            Verdict::NotApplicable,
        ),
        (
            r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::1/128"]}}"#,
            |r| r.source_ip = Some("::1".parse().unwrap()),
            Verdict::Allow,
        ),
        (
            r#"{"NotIpAddress":{"aws:sourceip":"10.0.0.0/8"}}"#,
            |_| {},
            Verdict::Allow,
        ),
        (
            r#"{"StringLike":{"aws:Referer":"https://example.com/*"}}"#,
            |_| {},
            Verdict::NotApplicable,
        ),
        (
            r#"{"StringLike":{"aws:Referer":"https://example.com/*"}}"#,
            |r| r.referer = Some("https://example.com/page".into()),
            Verdict::Allow,
        ),
        // A missing key passes a negated operator.
        (
            r#"{"StringNotEquals":{"aws:UserAgent":"bad"}}"#,
            |_| {},
            Verdict::Allow,
        ),
        (
            r#"{"StringNotEquals":{"aws:UserAgent":["bad","worse"]}}"#,
            |r| r.user_agent = Some("worse".into()),
            Verdict::NotApplicable,
        ),
        (
            r#"{"StringEqualsIgnoreCase":{"aws:UserAgent":"Curl/8"}}"#,
            |r| r.user_agent = Some("curl/8".into()),
            Verdict::Allow,
        ),
        (
            r#"{"Bool":{"aws:SecureTransport":"false"}}"#,
            |_| {},
            Verdict::Allow,
        ),
        (
            r#"{"Bool":{"aws:SecureTransport":true}}"#,
            |_| {},
            Verdict::NotApplicable,
        ),
        (
            r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#,
            |_| {},
            Verdict::Allow,
        ),
        (
            r#"{"DateLessThan":{"aws:CurrentTime":"2020-01-01"}}"#,
            |_| {},
            Verdict::NotApplicable,
        ),
        (
            r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"1800000000"}}"#,
            |_| {},
            Verdict::Allow,
        ),
        // Keys and operators are AND'ed.
        (
            r#"{"IpAddress":{"aws:SourceIp":"127.0.0.0/8"},"StringEquals":{"aws:UserAgent":"x"}}"#,
            |_| {},
            Verdict::NotApplicable,
        ),
        (
            r#"{"StringEquals":{"s3:prefix":["","home/"]}}"#,
            |r| r.prefix = Some(String::new()),
            Verdict::Allow,
        ),
        (
            r#"{"StringEquals":{"s3:prefix":"home/"}}"#,
            |r| r.prefix = Some("etc/".into()),
            Verdict::NotApplicable,
        ),
        (
            r#"{"StringEquals":{"s3:delimiter":"/"}}"#,
            |r| r.delimiter = Some("/".into()),
            Verdict::Allow,
        ),
        (
            r#"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#,
            |r| r.max_keys = Some("10".into()),
            Verdict::Allow,
        ),
        (
            r#"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#,
            |r| r.max_keys = Some("11".into()),
            Verdict::NotApplicable,
        ),
        (
            r#"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#,
            |_| {},
            Verdict::NotApplicable,
        ),
    ];
    for (condition, set, verdict) in cases {
        let p = parse(&allow("s3:GetObject", "arn:aws:s3:::site/*", condition))
            .unwrap_or_else(|e| panic!("{condition}: {e:?}"));
        let mut r = anonymous_get("k");
        set(&mut r);
        assert_eq!(p.evaluate(&r), *verdict, "{condition}");
    }
}

#[test]
fn unsupported_constructs_are_refused_by_name() {
    let object = "arn:aws:s3:::site/*";
    let cases = [
        (allow("s3:GetObject", "arn:aws:s3:::other/*", ""), "invalid resource"),
        (allow("s3:GetObject", "arn:aws:s3:::sitex/*", ""), "invalid resource"),
        (allow("s3:GetObject", "*", ""), "invalid resource"),
        (allow("iam:PassRole", object, ""), "invalid action"),
        (allow("s3:GetObject", "arn:aws:s3:::site/${aws:username}/*", ""), "Policy variables"),
        (allow("s3:GetObject", object, r#"{"NumericLessThan":{"aws:SourceIp":"1"}}"#), "does not apply"),
        (allow("s3:GetObject", object, r#"{"StringEqualsIfExists":{"aws:Referer":"x"}}"#), "IfExists"),
        (allow("s3:GetObject", object, r#"{"ForAnyValue:StringLike":{"aws:Referer":"x"}}"#), "ForAnyValue"),
        (allow("s3:GetObject", object, r#"{"ArnLike":{"aws:SourceArn":"x"}}"#), "ArnLike"),
        (allow("s3:GetObject", object, r#"{"StringEquals":{"aws:SourceVpce":"x"}}"#), "aws:SourceVpce"),
        (allow("s3:GetObject", object, r#"{"IpAddress":{"aws:SourceIp":"nonsense"}}"#), "aws:SourceIp"),
        (allow("s3:GetObject", object, r#"{"DateLessThan":{"aws:CurrentTime":"soon"}}"#), "aws:CurrentTime"),
        (allow("s3:GetObject", object, r#"{"Bool":{"aws:SecureTransport":"maybe"}}"#), "aws:SecureTransport"),
        (allow("s3:GetObject", object, r#"{"StringLike":{"aws:Referer":"${aws:username}"}}"#), "aws:Referer"),
        (allow("s3:GetObject", object, r#"{"StringLike":{"aws:Referer":["x","${aws:username}/*"]}}"#), "Policy variables are not supported by this server (Condition StringLike aws:Referer"),
        (allow("s3:GetObject", object, r#"{"StringLike":{}}"#), "StringLike"),
        (one(r#""Effect":"Allow","NotPrincipal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*""#), "NotPrincipal"),
        (one(r#""Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*""#), "Service"),
        (one(r#""Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*""#), "principal"),
        (one(r#""Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*""#), "Principal"),
        (one(r#""Effect":"allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*""#), "effect"),
        (one(r#""Effect":"Allow","Principal":"*","Resource":"arn:aws:s3:::site/*""#), "Action"),
        (one(r#""Effect":"Allow","Principal":"*","Action":"s3:GetObject""#), "Resource"),
        (one(r#""Effect":"Allow","Principal":"*","Action":"s3:GetObject","NotAction":"s3:PutObject","Resource":"arn:aws:s3:::site/*""#), "NotAction"),
        (one(r#""Effect":"Allow","Principal":"*","Action":[],"Resource":"arn:aws:s3:::site/*""#), "Action"),
        (one(r#""Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*","Extra":1"#), "Extra"),
        (r#"{"Version":"2012-10-17","Statement":[]}"#.into(), "Statement"),
        (r#"{"Version":"2099-01-01","Statement":{}}"#.into(), "Version"),
        (r#"{"Statement":{},"Other":1}"#.into(), "Other"),
        (
            r#"{"Statement":[{"Sid":"a","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"},{"Sid":"a","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"}]}"#.into(),
            "unique",
        ),
    ];
    for (text, named) in cases {
        let message = refused(&text);
        assert!(
            message.contains(named),
            "{text}: {message:?} should name {named}"
        );
    }
    for text in ["", "nope", "[]", "{", "null", r#""{}""#] {
        refused(text);
    }
    // 2008-10-17 has no policy variables: `${` is literal there.
    let literal =
        allow("s3:GetObject", "arn:aws:s3:::site/${x}", "").replace("2012-10-17", "2008-10-17");
    assert_eq!(
        parse(&literal).unwrap().evaluate(&anonymous_get("${x}")),
        Verdict::Allow
    );
}

#[test]
fn the_size_limit_is_awss() {
    let padding = " ".repeat(MAX_POLICY_BYTES);
    let message = refused(&format!(
        "{}{padding}",
        allow("s3:GetObject", "arn:aws:s3:::site/*", "")
    ));
    assert!(
        message.contains("maximum allowed document size"),
        "{message}"
    );
}

#[test]
fn public_is_as_aws_defines_it() {
    let object = "arn:aws:s3:::site/*";
    for (condition, public) in [
        ("", true),
        (r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, false),
        (r#"{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#, true),
        (r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, true),
        (
            r#"{"StringLike":{"aws:Referer":"https://example.com/*"}}"#,
            true,
        ),
    ] {
        let p = parse(&allow("s3:GetObject", object, condition)).unwrap();
        assert_eq!(p.is_public(), public, "{condition}");
    }
    let deny = parse(&allow("s3:GetObject", object, "").replace("Allow", "Deny")).unwrap();
    assert!(!deny.is_public());
}

#[test]
fn wildcards() {
    assert!(wildcard_matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/"));
    assert!(wildcard_matches(
        "arn:aws:s3:::b/*.png",
        "arn:aws:s3:::b/x/y.png"
    ));
    assert!(!wildcard_matches(
        "arn:aws:s3:::b/*.png",
        "arn:aws:s3:::b/x/y.png.txt"
    ));
    assert!(wildcard_matches("arn:aws:s3:::b/a?c", "arn:aws:s3:::b/abc"));
    assert!(!wildcard_matches("arn:aws:s3:::b/a?c", "arn:aws:s3:::b/ac"));
    assert!(wildcard_matches(
        "arn:aws:s3:::b/*/index.html",
        "arn:aws:s3:::b/x/y/index.html"
    ));
    assert!(!wildcard_matches(
        "arn:aws:s3:::b/key",
        "arn:aws:s3:::b/key2"
    ));
    assert!(wildcard_matches("arn:aws:s3:::b/**", "arn:aws:s3:::b/k"));
}

/// Fuzz-style: random bytes, random JSON-ish token soup and every truncation of valid
/// policies never panic, and are refused with MalformedPolicy or accepted.
#[test]
fn random_and_truncated_input_never_panics() {
    use rand::{Rng, SeedableRng};
    let valid = [
        allow(
            "s3:GetObject",
            "arn:aws:s3:::site/public/*",
            r#"{"IpAddress":{"aws:SourceIp":["127.0.0.1/32","::1/128"]},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#,
        ),
        one(
            r#""Sid":"x","Effect":"Deny","Principal":{"AWS":["AKID","arn:aws:iam:::user/bob"]},"NotAction":["s3:Put*","s3:?elete*"],"NotResource":"arn:aws:s3:::site/ok/*""#,
        ),
    ];
    let check = |text: &str| match Policy::parse(B, text) {
        Ok(p) => {
            let _ = p.evaluate(&anonymous_get("public/a"));
            let _ = p.is_public();
        }
        Err(e) => assert_eq!(e.code, Code::MalformedPolicy, "{text:?}"),
    };
    for text in &valid {
        parse(text).unwrap();
        for end in (0..text.len()).filter(|&i| text.is_char_boundary(i)) {
            check(&text[..end]);
        }
    }
    let tokens = [
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"Statement\"",
        "\"Effect\"",
        "\"Allow\"",
        "\"Deny\"",
        "\"Principal\"",
        "\"*\"",
        "\"Action\"",
        "\"s3:*\"",
        "\"Resource\"",
        "\"arn:aws:s3:::site/*\"",
        "\"Condition\"",
        "\"IpAddress\"",
        "\"aws:SourceIp\"",
        "\"::1/200\"",
        "1e999",
        "-0",
        "null",
        "true",
        "\"\\u0000\"",
        "\"Version\"",
        "\"2012-10-17\"",
        "\"NotAction\"",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for _ in 0..3000 {
        let n = rng.random_range(0..40);
        let soup: String = (0..n)
            .map(|_| tokens[rng.random_range(0..tokens.len())])
            .collect();
        check(&soup);
        let bytes: Vec<u8> = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
        check(&String::from_utf8_lossy(&bytes));
        // A valid policy with one byte replaced.
        let mut mutated = valid[rng.random_range(0..valid.len())].clone().into_bytes();
        let at = rng.random_range(0..mutated.len());
        mutated[at] = tokens[rng.random_range(0..tokens.len())].as_bytes()[0];
        check(&String::from_utf8_lossy(&mutated));
    }
}

#[test]
fn time_values() {
    assert_eq!(
        time("1970-01-02"),
        Some(UNIX_EPOCH + Duration::from_secs(86_400))
    );
    assert_eq!(
        time("1970-01-01T00:00:10Z"),
        Some(UNIX_EPOCH + Duration::from_secs(10))
    );
    assert!(time("2020-13-01").is_none());
    assert!(time("99999999999999999999").is_none());
    let _ = SystemTime::now();
}

/// JSON keeps the last of two members of one name: a policy naming one twice would be
/// enforced without the first (a Deny turned Allow, a condition dropped). Refused by name.
#[test]
fn a_member_named_twice_is_refused() {
    let object = "arn:aws:s3:::site/*";
    let cases = [
        (
            one(r#""Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*","Effect":"Allow""#),
            "Effect",
        ),
        (
            allow(
                "s3:GetObject",
                object,
                r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"},"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}"#,
            ),
            "IpAddress",
        ),
        (
            allow(
                "s3:GetObject",
                object,
                r#"{"StringLike":{"aws:Referer":"https://a.example/*","aws:Referer":"*"}}"#,
            ),
            "aws:Referer",
        ),
        // Condition key names compare case-insensitively: these are one key, named twice.
        (
            allow(
                "s3:GetObject",
                object,
                r#"{"StringLike":{"aws:Referer":"https://a.example/*","aws:referer":"*"}}"#,
            ),
            "aws:referer",
        ),
        (
            r#"{"Statement":[],"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*"}}"#.to_owned(),
            "Statement",
        ),
    ];
    for (text, named) in cases {
        let message = refused(&text);
        assert!(
            message.contains("named twice") || message.contains("Duplicate"),
            "{text}: {message:?}"
        );
        assert!(
            message.contains(named),
            "{text}: {message:?} should name {named}"
        );
    }
    // Not JSON at all: AWS's wording.
    assert_eq!(refused("{"), "This policy contains invalid Json");
}

/// AWS refuses a statement none of whose actions acts on any of its resources (an object
/// action on the bucket's ARN, a bucket action on objects): it would be stored and never
/// match, while GetBucketPolicyStatus called it public.
#[test]
fn an_action_that_applies_to_none_of_the_resources_is_refused() {
    let bucket = "arn:aws:s3:::site";
    let objects = "arn:aws:s3:::site/*";
    for (action, resource) in [
        ("s3:GetObject", bucket),
        ("s3:getobject", bucket),
        ("s3:PutObject", bucket),
        ("s3:DeleteObject", bucket),
        ("s3:AbortMultipartUpload", bucket),
        ("s3:ListBucket", objects),
        ("s3:ListBucket", "arn:aws:s3:::site/public/x"),
        ("s3:PutBucketPolicy", objects),
        ("s3:GetBucketCORS", objects),
    ] {
        let message = refused(&allow(action, resource, ""));
        assert_eq!(
            message, "Action does not apply to any resource(s) in statement",
            "{action} on {resource}"
        );
    }
    // One action that applies, wildcards, unknown names and the Not forms are not refused.
    for text in [
        one(
            r#""Effect":"Allow","Principal":"*","Action":["s3:GetObject","s3:ListBucket"],"Resource":"arn:aws:s3:::site""#,
        ),
        one(
            r#""Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":["arn:aws:s3:::site","arn:aws:s3:::site/*"]"#,
        ),
        allow("s3:Get*", bucket, ""),
        allow("s3:*", objects, ""),
        allow("s3:GetObjectTagging", objects, ""),
        one(
            r#""Effect":"Deny","Principal":"*","NotAction":"s3:GetObject","Resource":"arn:aws:s3:::site""#,
        ),
        one(
            r#""Effect":"Deny","Principal":"*","Action":"s3:GetObject","NotResource":"arn:aws:s3:::site/public/*""#,
        ),
    ] {
        parse(&text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    }
}

/// An S3 operation's name is not always its IAM action (ListObjects needs s3:ListBucket):
/// AWS refuses such a name ("Policy has invalid action"); it was stored and matched nothing.
/// The refusal names the action to write.
#[test]
fn an_operation_name_that_is_no_action_is_refused_naming_the_action() {
    for (written, action, resource) in [
        ("s3:ListObjects", "s3:ListBucket", "arn:aws:s3:::site"),
        ("s3:listobjectsv2", "s3:ListBucket", "arn:aws:s3:::site"),
        ("s3:HeadObject", "s3:GetObject", "arn:aws:s3:::site/*"),
        ("s3:CopyObject", "s3:PutObject", "arn:aws:s3:::site/*"),
        ("s3:UploadPart", "s3:PutObject", "arn:aws:s3:::site/*"),
        ("s3:DeleteObjects", "s3:DeleteObject", "arn:aws:s3:::site/*"),
        (
            "s3:ListObjectVersions",
            "s3:ListBucketVersions",
            "arn:aws:s3:::site",
        ),
        (
            "s3:GetPublicAccessBlock",
            "s3:GetBucketPublicAccessBlock",
            "arn:aws:s3:::site",
        ),
        (
            "s3:DeleteBucketCors",
            "s3:PutBucketCORS",
            "arn:aws:s3:::site",
        ),
    ] {
        let message = refused(&allow(written, resource, ""));
        assert_eq!(
            message,
            format!("Policy has invalid action: {written} (the action for it is {action})")
        );
    }
    // Real actions, whatever their case, and patterns are not refused.
    for action in [
        "s3:ListBucket",
        "s3:getbucketcors",
        "s3:List*",
        "s3:GetObjectTagging",
    ] {
        let resource =
            if action.contains("Bucket") || action.contains("bucket") || action == "s3:List*" {
                "arn:aws:s3:::site"
            } else {
                "arn:aws:s3:::site/*"
            };
        parse(&allow(action, resource, "")).unwrap_or_else(|e| panic!("{action}: {e:?}"));
    }
}

#[test]
fn a_stored_policy_this_build_refuses_denies_all_instead_of_dropping_its_denies() {
    // What an earlier, laxer build stored: a Deny whose Effect is named twice.
    let text = one(
        r#""Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::site/*","Effect":"Deny""#,
    );
    assert!(parse(&text).is_err());
    let p = Policy::stored(B, &text);
    let key = Principal::Key {
        id: "AKEXAMPLE".into(),
        name: "app".into(),
    };
    assert_eq!(p.evaluate(&anonymous_get("a.txt")), Verdict::Deny);
    assert_eq!(
        p.evaluate(&request(key, "s3:ListBucket", "")),
        Verdict::Deny
    );
    // One that parses is the policy itself.
    let open = allow("s3:GetObject", "arn:aws:s3:::site/*", "");
    assert_eq!(
        Policy::stored(B, &open).evaluate(&anonymous_get("a.txt")),
        Verdict::Allow
    );
}
