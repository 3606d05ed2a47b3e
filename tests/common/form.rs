//! Browser form uploads (POST Object) built by hand, byte for byte what a browser sends: the
//! fields in order, a SigV4 POST policy signed with the test key, the file part, and the
//! multipart/form-data body around them.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde_json::{Value, json};

use super::SignOpts;
use super::raw::RawRequest;

pub const BOUNDARY: &str = "----OutpostFormBoundary7MA4YWxkTrZu0gW";

#[derive(Clone, Debug)]
pub struct PostForm {
    /// Fields before the file, in order.
    pub fields: Vec<(String, String)>,
    pub filename: String,
    pub file: Vec<u8>,
    /// Fields after the file (S3 never reads them).
    pub after: Vec<(String, String)>,
}

impl PostForm {
    /// An unsigned form with these fields before its file.
    pub fn new(fields: &[(&str, &str)]) -> PostForm {
        PostForm {
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            filename: "upload.txt".into(),
            file: b"hello from a form".to_vec(),
            after: Vec::new(),
        }
    }

    /// A form for `key` of a text/plain file, unsigned.
    pub fn text(key: &str) -> PostForm {
        PostForm::new(&[("key", key), ("Content-Type", "text/plain")])
    }

    /// The form signed with the test key: adds the SigV4 fields, a policy expiring at `expires`
    /// whose conditions are `conditions` plus eq conditions on the SigV4 fields, and its
    /// signature.
    pub fn signed(self, conditions: &[Value], expires: SystemTime) -> PostForm {
        self.signed_with(&SignOpts::default(), conditions, expires)
    }

    /// [`PostForm::signed`] by the identity of `opts` (another key, another time).
    pub fn signed_with(
        mut self,
        opts: &SignOpts,
        conditions: &[Value],
        expires: SystemTime,
    ) -> PostForm {
        let credential = format!("{}/{}", opts.access_key, opts.scope());
        let amz_date = opts.amz_date();
        let mut all = conditions.to_vec();
        all.push(json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}));
        all.push(json!({"x-amz-credential": credential}));
        all.push(json!({"x-amz-date": amz_date}));
        let expiration = rfc3339(expires);
        for (k, v) in [
            ("x-amz-algorithm", "AWS4-HMAC-SHA256".to_owned()),
            ("x-amz-credential", credential),
            ("x-amz-date", amz_date),
        ] {
            self.fields.push((k.into(), v));
        }
        self.with_policy(opts, &json!({"expiration": expiration, "conditions": all}))
    }

    /// The form signed with SigV2 by `access_key` / `secret` (what boto3 makes by default for
    /// a custom endpoint): `AWSAccessKeyId`, a policy expiring at `expires` with `conditions`,
    /// and `signature`, the base64 HMAC-SHA1 of the base64 policy.
    pub fn signed_v2(
        self,
        (access_key, secret): (&str, &str),
        conditions: &[Value],
        expires: SystemTime,
    ) -> PostForm {
        use hmac::Mac;
        let expiration = rfc3339(expires);
        let policy = json!({"expiration": expiration, "conditions": conditions});
        let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(policy.as_bytes());
        let signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        self.set("AWSAccessKeyId", access_key)
            .set("policy", &policy)
            .set("signature", &signature)
    }

    /// The form with `policy` (a JSON document) as its policy, signed by `opts`.
    pub fn with_policy(self, opts: &SignOpts, policy: &Value) -> PostForm {
        let policy = base64::engine::general_purpose::STANDARD.encode(policy.to_string());
        let signature = opts.hmac(&policy);
        self.set("policy", &policy)
            .set("x-amz-signature", &signature)
    }

    /// The form's policy, decoded.
    pub fn policy(&self) -> Value {
        let json = base64::engine::general_purpose::STANDARD
            .decode(self.get("policy"))
            .unwrap();
        serde_json::from_slice(&json).unwrap()
    }

    /// Signed, valid for an hour.
    pub fn signed_for_hour(self, conditions: &[Value]) -> PostForm {
        self.signed(conditions, SystemTime::now() + Duration::from_secs(3600))
    }

    pub fn file(mut self, filename: &str, data: impl Into<Vec<u8>>) -> PostForm {
        self.filename = filename.into();
        self.file = data.into();
        self
    }

    /// Sets a field (replacing its value where it is, or appending it).
    pub fn set(mut self, name: &str, value: &str) -> PostForm {
        match self.fields.iter_mut().find(|(k, _)| k == name) {
            Some(field) => field.1 = value.into(),
            None => self.fields.push((name.into(), value.into())),
        }
        self
    }

    pub fn get(&self, name: &str) -> &str {
        &self.fields.iter().find(|(k, _)| k == name).unwrap().1
    }

    pub fn content_type() -> String {
        format!("multipart/form-data; boundary={BOUNDARY}")
    }

    /// Everything up to the file's first byte.
    pub fn head(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.fields {
            out.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                self.filename
            )
            .as_bytes(),
        );
        out
    }

    /// The file's closing boundary, the fields after it, and the form's end.
    pub fn tail(&self) -> Vec<u8> {
        let mut out = b"\r\n".to_vec();
        for (k, v) in &self.after {
            out.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                )
                .as_bytes(),
            );
        }
        out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        out
    }

    pub fn body(&self) -> Vec<u8> {
        [self.head(), self.file.clone(), self.tail()].concat()
    }

    /// `POST target` with the form as its body, unsigned as a browser sends it.
    pub fn request(&self, target: &str) -> RawRequest {
        RawRequest::new("POST", target)
            .header("content-type", &Self::content_type())
            .body(self.body())
    }
}

/// Lets anyone `s3:PutObject` under `prefix` in `bucket` (a bucket policy set with `s3`): where
/// anonymous forms may write.
pub async fn anyone_may_put(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) {
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": "*", "Action": "s3:PutObject",
        "Resource": format!("arn:aws:s3:::{bucket}/{prefix}*")}]});
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
}

/// The conditions of an ordinary form: this bucket, this key, any Content-Type.
/// A policy's `expiration`.
fn rfc3339(at: SystemTime) -> String {
    time::OffsetDateTime::from(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

pub fn basic_conditions(bucket: &str, key: &str) -> Vec<Value> {
    vec![
        json!({"bucket": bucket}),
        json!(["eq", "$key", key]),
        json!(["starts-with", "$Content-Type", ""]),
    ]
}

/// Posts `form` to `server`'s `bucket`, expects the S3 error `status`/`code` whose message
/// contains `message`, and checks (at the store, with `s3`) that `key` was not stored.
pub async fn assert_refused(
    server: &super::TestStore,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    form: &PostForm,
    (status, code, message): (u16, &str, &str),
) {
    let r = form.request(&format!("/{bucket}")).send(server).await;
    r.assert_error(status, code);
    let said = r.xml("Message").unwrap_or_default();
    assert!(said.contains(message), "{code}: {said:?} lacks {message:?}");
    let stored = s3.head_object().bucket(bucket).key(key).send().await;
    super::assert_sdk_err(stored, 404, "NotFound");
}

/// Sends `server` a form upload of 4 MiB declared whole, cuts the connection after half the
/// file, waits until `server` has counted the request (`requests_metric`, polled), and checks
/// at the store (`s3`) that no object appeared.
pub async fn cut_mid_file(
    server: &super::TestStore,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    requests_metric: &str,
) {
    let f = PostForm::new(&[("key", "cut")])
        .file("c", super::random_bytes(4 * super::MIB, 3))
        .signed_for_hour(&basic_conditions(bucket, "cut"));
    cut_mid_form(server, s3, bucket, requests_metric, &f).await;
}

/// [`cut_mid_file`] with the form `f` (for the key `cut`, its file 4 MiB).
pub async fn cut_mid_form(
    server: &super::TestStore,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    requests_metric: &str,
    f: &PostForm,
) {
    use tokio::io::AsyncWriteExt;
    let body = f.body();
    let head = format!(
        "POST /{bucket} HTTP/1.1\r\nhost: {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n\r\n",
        server.addr,
        PostForm::content_type(),
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(&server.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&body[..f.head().len() + 2 * super::MIB])
        .await
        .unwrap();
    stream.flush().await.unwrap();
    drop(stream);
    let labels = [("operation", "PostObject")];
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.metric(requests_metric, &labels).await < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the cut request was never counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stored = s3.head_object().bucket(bucket).key("cut").send().await;
    super::assert_sdk_err(stored, 404, "NotFound");
    let listed = s3.list_objects_v2().bucket(bucket).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(0));
}

/// Posts a 20 MiB form upload to `server` (after a small one: what a first request allocates
/// once is not the file's doing) and checks that `server`'s peak memory grew by far less than
/// the file (buffered whole, it would grow by the file at least), and the object at the store.
pub async fn big_form_keeps_memory_flat(
    server: &super::TestStore,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) {
    let warm = PostForm::new(&[("key", "warm")]).signed_for_hour(&basic_conditions(bucket, "warm"));
    let r = warm.request(&format!("/{bucket}")).send(server).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let data = super::random_bytes(20 * super::MIB, 7);
    let big = PostForm::new(&[("key", "big")])
        .file("big.bin", data.clone())
        .signed_for_hour(&basic_conditions(bucket, "big"));
    let before = server.rss_kib();
    let r = big.request(&format!("/{bucket}")).send(server).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let grown_mib = server.peak_rss_kib().saturating_sub(before) / 1024;
    println!("peak RSS grew {grown_mib} MiB for a 20 MiB form upload");
    assert!(grown_mib < 12, "memory grew {grown_mib} MiB");
    let head = s3
        .head_object()
        .bucket(bucket)
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(head.e_tag(), Some(super::etag_of(&data).as_str()));
}
