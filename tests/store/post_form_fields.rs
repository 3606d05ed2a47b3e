//! Form uploads (POST Object) at the store, field by field as AWS reads them: `${filename}`
//! expanded in every field before the policy is checked, a Content-Type list matched type by
//! type, the Content-MD5 field checked, the file part's own Content-Type ignored, the signing
//! fields named by the policy, a key's grants deciding a form it signed, and anonymous forms
//! where the bucket policy lets anyone write. Each refusal stores nothing.

use std::time::{Duration, SystemTime};

use crate::common::form::{PostForm, anyone_may_put, assert_refused, basic_conditions};
use crate::common::keys::{create_key, key_ok};
use crate::common::*;
use serde_json::json;

/// AWS: "All variables within the form are expanded prior to validating the POST policy".
/// (Before, only the key was: the metadata kept `${filename}` and an exact condition on the
/// unexpanded value passed.)
#[tokio::test]
async fn filename_is_expanded_in_every_field_before_the_policy_is_checked() {
    let (store, s3, b) = TestStore::with_bucket("postvar").await;
    let mut conditions = basic_conditions(&b, "");
    conditions[1] = json!(["starts-with", "$key", "up/"]);
    conditions.push(json!(["starts-with", "$x-amz-meta-picked", "as "]));
    conditions.push(json!([
        "starts-with",
        "$success_action_redirect",
        "http://app.test/"
    ]));
    let r = PostForm::text("up/${filename}")
        .set("x-amz-meta-picked", "as ${filename}")
        .set(
            "success_action_redirect",
            "http://app.test/done/${filename}",
        )
        .file("pic.txt", b"picked".to_vec())
        .signed_for_hour(&conditions)
        .request(&format!("/{b}"))
        .send(&store)
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let to = r.header("location").unwrap();
    let want = format!("http://app.test/done/pic.txt?bucket={b}&key=up%2Fpic.txt&etag=");
    assert!(to.starts_with(&want), "{to}");
    let head = s3
        .head_object()
        .bucket(&b)
        .key("up/pic.txt")
        .send()
        .await
        .unwrap();
    let picked = head.metadata().and_then(|m| m.get("picked")).cloned();
    assert_eq!(picked.as_deref(), Some("as pic.txt"));
    // An exact condition on the unexpanded value no longer matches what was sent.
    let mut exact = basic_conditions(&b, "k");
    exact.push(json!({"x-amz-meta-picked": "${filename}"}));
    let f = PostForm::text("k")
        .set("x-amz-meta-picked", "${filename}")
        .signed_for_hour(&exact);
    let expect = (
        403,
        "AccessDenied",
        r#"["eq", "$x-amz-meta-picked", "${filename}"]"#,
    );
    assert_refused(&store, &s3, &b, "k", &f, expect).await;
}

/// AWS reads a Content-Type with commas as a list: each type must meet a starts-with
/// condition. (Before, `image/png,text/html` passed `["starts-with", "$Content-Type",
/// "image/"]`.)
#[tokio::test]
async fn every_type_of_a_content_type_list_must_meet_its_condition() {
    let (store, s3, b) = TestStore::with_bucket("postctl").await;
    let mut conditions = basic_conditions(&b, "k");
    conditions[2] = json!(["starts-with", "$Content-Type", "image/"]);
    let typed = |ct: &str| {
        PostForm::text("k")
            .set("Content-Type", ct)
            .signed_for_hour(&conditions)
    };
    let expect = (
        403,
        "AccessDenied",
        r#"["starts-with", "$content-type", "image/"]"#,
    );
    for bad in ["image/png,text/html", "text/html"] {
        assert_refused(&store, &s3, &b, "k", &typed(bad), expect).await;
    }
    let r = typed("image/png,image/gif")
        .request(&format!("/{b}"))
        .send(&store)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
}

/// The Content-MD5 field is checked as the header is on a PutObject. (Before, it was dropped:
/// a file that did not match it was stored.)
#[tokio::test]
async fn the_content_md5_field_is_checked() {
    let (store, s3, b) = TestStore::with_bucket("postmd5").await;
    let mut conditions = basic_conditions(&b, "k");
    conditions.push(json!(["starts-with", "$Content-MD5", ""]));
    let empty_md5 = "1B2M2Y8AsgTpgAmY7PhCfg==";
    let wrong = PostForm::text("k")
        .set("Content-MD5", empty_md5)
        .signed_for_hour(&conditions);
    let expect = (400, "BadDigest", "did not match");
    assert_refused(&store, &s3, &b, "k", &wrong, expect).await;
    let malformed = PostForm::text("k")
        .set("Content-MD5", "nope")
        .signed_for_hour(&conditions);
    let expect = (400, "InvalidDigest", "not valid");
    assert_refused(&store, &s3, &b, "k", &malformed, expect).await;
    let right = PostForm::text("k")
        .set("Content-MD5", empty_md5)
        .file("empty", Vec::new())
        .signed_for_hour(&conditions);
    let r = right.request(&format!("/{b}")).send(&store).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(object_bytes(&s3, &b, "k").await, b"");
}

/// The object's Content-Type is the form's Content-Type field; the file part's own type
/// (what a browser guesses from the file's name) is not used, as at AWS.
#[tokio::test]
async fn the_file_parts_own_content_type_is_not_the_objects() {
    let (store, s3, b) = TestStore::with_bucket("postpart").await;
    for (field, stored) in [
        (Some("text/plain"), "text/plain"),
        (None, "binary/octet-stream"),
    ] {
        let mut f = PostForm::new(&[("key", "k")]);
        let mut conditions = basic_conditions(&b, "k");
        match field {
            Some(ct) => f = f.set("Content-Type", ct),
            None => {
                conditions.remove(2);
            }
        }
        let f = f.signed_for_hour(&conditions);
        let body = String::from_utf8(f.body()).unwrap().replace(
            "Content-Type: application/octet-stream\r\n",
            "Content-Type: image/png\r\n",
        );
        let r = RawRequest::new("POST", &format!("/{b}"))
            .header("content-type", &PostForm::content_type())
            .body(body)
            .send(&store)
            .await;
        assert_eq!(r.status, 204, "{}", r.text());
        let head = s3.head_object().bucket(&b).key("k").send().await.unwrap();
        assert_eq!(head.content_type(), Some(stored), "{field:?}");
    }
}

/// A SigV4 policy must name x-amz-algorithm, x-amz-credential and x-amz-date (AWS); a
/// form carrying one its policy does not name is refused like any extra field.
#[tokio::test]
async fn the_policy_must_name_the_signing_fields() {
    let (store, s3, b) = TestStore::with_bucket("postsig").await;
    let opts = SignOpts::default();
    for field in ["x-amz-algorithm", "x-amz-credential", "x-amz-date"] {
        let signed = PostForm::text("k").signed_with(
            &opts,
            &basic_conditions(&b, "k"),
            SystemTime::now() + Duration::from_secs(600),
        );
        let mut policy = signed.policy();
        policy["conditions"]
            .as_array_mut()
            .unwrap()
            .retain(|c| c.get(field).is_none());
        let f = signed.with_policy(&opts, &policy);
        let message = format!("Extra input fields: {field}");
        assert_refused(&store, &s3, &b, "k", &f, (403, "AccessDenied", &message)).await;
    }
}

/// A form is an upload by the key that signed it: refused unless that key may write the
/// bucket, never a hint of more.
#[tokio::test]
async fn a_form_signed_by_a_key_writes_only_where_the_key_may() {
    let (store, s3, b) = TestStore::with_bucket("postkey").await;
    let (id, secret) = create_key(&store, "former", &[]);
    let opts = SignOpts::default().keys(&id, &secret);
    let signed = || {
        PostForm::text("k").signed_with(
            &opts,
            &basic_conditions(&b, "k"),
            SystemTime::now() + Duration::from_secs(600),
        )
    };
    let denied = (403, "AccessDenied", "Access Denied");
    assert_refused(&store, &s3, &b, "k", &signed(), denied).await;
    key_ok(&store, &["allow", "former", "--bucket", &b, "--read"]);
    assert_refused(&store, &s3, &b, "k", &signed(), denied).await;
    key_ok(&store, &["allow", "former", "--bucket", &b, "--write"]);
    let r = signed().request(&format!("/{b}")).send(&store).await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(object_bytes(&s3, &b, "k").await, b"hello from a form");
}

/// Without a policy or a signature a form is anonymous (AWS: the policy is optional where the
/// bucket is publicly writable): stored where the bucket policy lets anyone put, refused
/// elsewhere.
#[tokio::test]
async fn an_anonymous_form_writes_where_the_bucket_policy_lets_anyone() {
    let (store, s3, b) = TestStore::with_bucket("postanon").await;
    anyone_may_put(&s3, &b, "drop/").await;
    let r = PostForm::text("drop/a")
        .request(&format!("/{b}"))
        .send(&store)
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(object_bytes(&s3, &b, "drop/a").await, b"hello from a form");
    let denied = (403, "AccessDenied", "Access Denied");
    assert_refused(&store, &s3, &b, "kept/a", &PostForm::text("kept/a"), denied).await;
}

/// A file holding the form's own delimiter, followed by neither `--` nor a new part, is not
/// well-formed: refused, rather than stored cut at the delimiter and acknowledged (it was).
#[tokio::test]
async fn a_file_holding_its_own_delimiter_is_refused_not_stored_short() {
    let (store, s3, b) = TestStore::with_bucket("postdelim").await;
    let inside = format!("before\r\n--{}-and after", crate::common::form::BOUNDARY);
    let f = PostForm::text("k")
        .file("f", inside.into_bytes())
        .signed_for_hour(&basic_conditions(&b, "k"));
    let expect = (400, "MalformedPOSTRequest", "not well-formed");
    assert_refused(&store, &s3, &b, "k", &f, expect).await;
}
