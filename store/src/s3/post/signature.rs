//! Who signed a form: SigV4 (`x-amz-algorithm`, `x-amz-credential`, `x-amz-date`,
//! `x-amz-signature` = hex HMAC-SHA256 of the base64 policy with the SigV4 signing key: what
//! boto3 `generate_presigned_post` and the AWS SDKs send) or SigV2 (`AWSAccessKeyId`,
//! `signature` = base64 HMAC-SHA1 of the base64 policy), or nobody. Signatures compared in
//! constant time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use crate::error::{Code, Error, Result};
use crate::s3::auth::{Identity, Keyring, sigv4};

/// Any of these makes a form a SigV4 one.
const V4_FIELDS: [&str; 3] = ["x-amz-algorithm", "x-amz-credential", "x-amz-signature"];

/// The form's signer and the policy the signature covers (none for an anonymous form).
pub struct Signed<'a> {
    pub identity: Identity,
    pub policy: Option<&'a str>,
}

/// Verifies the form's signature with `keyring`'s secrets for `region`. `field` gives a form
/// field by lower-case name. InvalidArgument for a missing or malformed signature field
/// (named, as AWS does), InvalidAccessKeyId, SignatureDoesNotMatch.
pub fn verify<'a>(
    field: impl Fn(&str) -> Option<&'a str>,
    keyring: &Keyring,
    region: &str,
) -> Result<Signed<'a>> {
    let required = |name: &str| field(name).ok_or_else(|| missing(name));
    let secret = |access_key: &str| {
        keyring
            .secret(access_key)
            .ok_or_else(|| Error::new(Code::InvalidAccessKeyId))
    };
    if V4_FIELDS.iter().any(|n| field(n).is_some()) {
        let policy = required("policy")?;
        let algorithm = required("x-amz-algorithm")?;
        if algorithm != "AWS4-HMAC-SHA256" {
            return Err(Error::msg(
                Code::InvalidArgument,
                format!(
                    "The POST's x-amz-algorithm '{algorithm}' is not supported: use AWS4-HMAC-SHA256."
                ),
            ));
        }
        let credential = required("x-amz-credential")?;
        let amz_date = required("x-amz-date")?;
        let given = required("x-amz-signature")?;
        let mut scope = credential.splitn(5, '/');
        let parts = (
            scope.next(),
            scope.next(),
            scope.next(),
            scope.next(),
            scope.next(),
        );
        let (Some(access_key), Some(date), Some(scope_region), Some("s3"), Some("aws4_request")) =
            parts
        else {
            return Err(Error::msg(
                Code::InvalidArgument,
                "The POST's x-amz-credential is malformed: expecting <key>/<date>/<region>/s3/aws4_request.",
            ));
        };
        if scope_region != region {
            return Err(Error::msg(
                Code::InvalidArgument,
                format!("The region '{scope_region}' is wrong; expecting '{region}'"),
            ));
        }
        crate::s3::auth::parse_amz_date(amz_date)?;
        if !amz_date.starts_with(date) {
            return Err(Error::msg(
                Code::InvalidArgument,
                "The credential scope date does not match x-amz-date.",
            ));
        }
        if !keyring.knows(access_key) {
            return Err(Error::new(Code::InvalidAccessKeyId));
        }
        let key = keyring
            .signing_key(access_key, date, region)
            .ok_or_else(|| Error::new(Code::SignatureDoesNotMatch))?;
        let expected = sigv4::signature(&key, policy);
        check(expected.as_bytes(), given.as_bytes())?;
        return Ok(Signed {
            identity: Identity::Key(access_key.to_owned()),
            policy: Some(policy),
        });
    }
    if field("awsaccesskeyid").is_some() || field("signature").is_some() {
        let policy = required("policy")?;
        let access_key = required("awsaccesskeyid")?;
        let given = required("signature")?;
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret(access_key)?.expose().as_bytes())
            .expect("HMAC takes any key length");
        mac.update(policy.as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        check(expected.as_bytes(), given.as_bytes())?;
        return Ok(Signed {
            identity: Identity::Key(access_key.to_owned()),
            policy: Some(policy),
        });
    }
    // A policy nobody signed is no permission: refused rather than passed as anonymous.
    if field("policy").is_some() {
        return Err(missing("x-amz-signature"));
    }
    Ok(Signed {
        identity: Identity::Anonymous,
        policy: None,
    })
}

/// A SigV2 form by a key `keyring` knows only by its published SigV4 signing keys (a
/// client's key at a keyed edge): SigV2 signs with the secret itself, which is not here, so
/// only the store can check it (here, [`verify`] finds no secret: InvalidAccessKeyId).
pub fn unverifiable_here<'a>(field: &impl Fn(&str) -> Option<&'a str>, keyring: &Keyring) -> bool {
    if V4_FIELDS.iter().any(|n| field(n).is_some()) {
        return false;
    }
    field("awsaccesskeyid").is_some_and(|key| keyring.secret(key).is_none() && keyring.knows(key))
}

fn check(expected: &[u8], given: &[u8]) -> Result<()> {
    if bool::from(expected.ct_eq(given)) {
        Ok(())
    } else {
        Err(Error::new(Code::SignatureDoesNotMatch))
    }
}

/// AWS's words for a form without a field it needs (the field may have come after the file,
/// where nothing is read).
pub fn missing(name: &str) -> Error {
    Error::msg(
        Code::InvalidArgument,
        format!(
            "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::auth::{Credentials, SecretKey};

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn keyring() -> Keyring {
        Keyring::new([Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: SecretKey::new(SECRET),
        }])
    }

    fn v4_form(policy: &str, signature: &str) -> Vec<(&'static str, String)> {
        vec![
            ("policy", policy.to_owned()),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256".into()),
            (
                "x-amz-credential",
                "AKIAIOSFODNN7EXAMPLE/20151229/us-east-1/s3/aws4_request".into(),
            ),
            ("x-amz-date", "20151229T000000Z".into()),
            ("x-amz-signature", signature.to_owned()),
        ]
    }

    fn run(form: &[(&'static str, String)]) -> Result<Identity> {
        let field = |n: &str| form.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        verify(field, &keyring(), "us-east-1").map(|s| s.identity)
    }

    /// AWS's published example ("Example: Browser-based upload using HTTP POST (using AWS
    /// Signature Version 4)"), its policy and signature.
    #[test]
    fn aws_published_post_example() {
        let policy = "eyAiZXhwaXJhdGlvbiI6ICIyMDE1LTEyLTMwVDEyOjAwOjAwLjAwMFoiLA0KICAiY29uZGl0aW9ucyI6IFsNCiAgICB7ImJ1Y2tldCI6ICJzaWd2NGV4YW1wbGVidWNrZXQifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRrZXkiLCAidXNlci91c2VyMS8iXSwNCiAgICB7ImFjbCI6ICJwdWJsaWMtcmVhZCJ9LA0KICAgIHsic3VjY2Vzc19hY3Rpb25fcmVkaXJlY3QiOiAiaHR0cDovL3NpZ3Y0ZXhhbXBsZWJ1Y2tldC5zMy5hbWF6b25hd3MuY29tL3N1Y2Nlc3NmdWxfdXBsb2FkLmh0bWwifSwNCiAgICBbInN0YXJ0cy13aXRoIiwgIiRDb250ZW50LVR5cGUiLCAiaW1hZ2UvIl0sDQogICAgeyJ4LWFtei1tZXRhLXV1aWQiOiAiMTQzNjUxMjM2NTEyNzQifSwNCiAgICB7IngtYW16LXNlcnZlci1zaWRlLWVuY3J5cHRpb24iOiAiQUVTMjU2In0sDQogICAgWyJzdGFydHMtd2l0aCIsICIkeC1hbXotbWV0YS10YWciLCAiIl0sDQoNCiAgICB7IngtYW16LWNyZWRlbnRpYWwiOiAiQUtJQUlPU0ZPRE5ON0VYQU1QTEUvMjAxNTEyMjkvdXMtZWFzdC0xL3MzL2F3czRfcmVxdWVzdCJ9LA0KICAgIHsieC1hbXotYWxnb3JpdGhtIjogIkFXUzQtSE1BQy1TSEEyNTYifSwNCiAgICB7IngtYW16LWRhdGUiOiAiMjAxNTEyMjlUMDAwMDAwWiIgfQ0KICBdDQp9";
        let signature = "8afdbf4008c03f22c2cd3cdb72e4afbb1f6a588f3255ac628749a66d7f09699e";
        let form = v4_form(policy, signature);
        assert_eq!(
            run(&form).unwrap(),
            Identity::Key("AKIAIOSFODNN7EXAMPLE".into())
        );
        let tampered = v4_form(&format!("{policy}Cg"), signature);
        assert_eq!(
            run(&tampered).unwrap_err().code,
            Code::SignatureDoesNotMatch
        );
        let mut flipped = signature.to_owned();
        flipped.replace_range(0..1, "9");
        assert_eq!(
            run(&v4_form(policy, &flipped)).unwrap_err().code,
            Code::SignatureDoesNotMatch
        );
        let crate::s3::post::policy::Policy { conditions, .. } =
            crate::s3::post::policy::Policy::parse(policy).unwrap();
        assert_eq!(conditions.len(), 11);
    }

    #[test]
    fn sigv2_forms_and_missing_fields() {
        let policy = "eyJleHBpcmF0aW9uIjoiMjAyNi0xMi0wMVQwMDowMDowMFoiLCJjb25kaXRpb25zIjpbXX0=";
        let mut mac = Hmac::<sha1::Sha1>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(policy.as_bytes());
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let form = vec![
            ("policy", policy.to_owned()),
            ("awsaccesskeyid", "AKIAIOSFODNN7EXAMPLE".to_owned()),
            ("signature", sig.clone()),
        ];
        assert!(matches!(run(&form).unwrap(), Identity::Key(_)));
        let wrong = vec![
            form[0].clone(),
            form[1].clone(),
            ("signature", format!("x{sig}")),
        ];
        assert_eq!(run(&wrong).unwrap_err().code, Code::SignatureDoesNotMatch);
        let unknown = vec![
            form[0].clone(),
            ("awsaccesskeyid", "NOPE".into()),
            form[2].clone(),
        ];
        assert_eq!(run(&unknown).unwrap_err().code, Code::InvalidAccessKeyId);
        let e = run(&[form[0].clone()]).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(e.message().contains("'x-amz-signature'"));
        assert_eq!(run(&[]).unwrap(), Identity::Anonymous);
        let mut no_date = v4_form(policy, "00");
        no_date.retain(|(k, _)| *k != "x-amz-date");
        assert!(
            run(&no_date)
                .unwrap_err()
                .message()
                .contains("'x-amz-date'")
        );
    }
}
