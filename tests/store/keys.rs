//! Access keys and grants end to end: `outpost key ...` against a running store, and what the
//! key it made may then do through aws-sdk-s3. A new key may do nothing until allowed; rights
//! come and go at once (no restart); a deleted key is unknown; keys survive a restart; the
//! secret is printed once and never again, nor logged.

use crate::common::keys::{create_key, key_cmd, key_ok};
use crate::common::*;

/// A store with a bucket holding `o`, and the root's client.
async fn store_with_object() -> (TestStore, aws_sdk_s3::Client, String) {
    let (store, root, bucket) = TestStore::with_bucket("keys").await;
    put_bytes(&root, &bucket, "o", b"hello").await;
    (store, root, bucket)
}

async fn get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<Vec<u8>, (u16, String)> {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(out) => Ok(read_body(out.body).await),
        Err(e) => Err(sdk_err::<(), _>(Err(e))),
    }
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Result<(), (u16, String)> {
    let r = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body(b"new".to_vec()))
        .send()
        .await;
    r.map(drop).map_err(|e| sdk_err::<(), _>(Err(e)))
}

fn denied() -> (u16, String) {
    (403, "AccessDenied".into())
}

#[tokio::test]
async fn a_new_key_may_do_nothing_until_allowed_and_nothing_once_denied_or_deleted() {
    let (store, _root, b) = store_with_object().await;
    let (id, secret) = create_key(&store, "app", &[]);
    let app = client_for(&store.url, &id, &secret);

    // Refused everything, and told nothing about what exists.
    assert_eq!(get(&app, &b, "o").await, Err(denied()));
    assert_eq!(get(&app, &b, "missing").await, Err(denied()));
    assert_eq!(get(&app, "no-such-bucket", "o").await, Err(denied()));
    assert_eq!(put(&app, &b, "n").await, Err(denied()));
    assert_sdk_err(
        app.list_objects_v2().bucket(&b).send().await,
        403,
        "AccessDenied",
    );

    key_ok(&store, &["allow", "app", "--bucket", &b, "--read"]);
    assert_eq!(get(&app, &b, "o").await.unwrap(), b"hello");
    assert_eq!(
        get(&app, &b, "missing").await,
        Err((404, "NoSuchKey".into()))
    );
    assert_eq!(put(&app, &b, "n").await, Err(denied()));

    key_ok(&store, &["allow", "app", "--bucket", &b, "--write"]);
    put(&app, &b, "n").await.unwrap();
    assert_eq!(get(&app, &b, "n").await.unwrap(), b"new");

    key_ok(
        &store,
        &["deny", "app", "--bucket", &b, "--read", "--write"],
    );
    assert_eq!(get(&app, &b, "o").await, Err(denied()));
    assert_eq!(put(&app, &b, "n").await, Err(denied()));

    key_ok(&store, &["allow", "app", "--bucket", &b, "--read"]);
    key_ok(&store, &["delete", "app"]);
    assert_eq!(
        get(&app, &b, "o").await,
        Err((403, "InvalidAccessKeyId".into()))
    );
    let info = key_cmd(&store, &["info", "app"]);
    assert!(!info.status.success());
    assert!(
        String::from_utf8_lossy(&info.stderr).contains("NoSuchAccessKey"),
        "{info:?}"
    );
}

#[tokio::test]
async fn a_key_allowed_to_create_buckets_owns_what_it_creates() {
    let (store, root, taken) = store_with_object().await;
    let (id, secret) = create_key(&store, "maker", &[]);
    let maker = client_for(&store.url, &id, &secret);
    assert_sdk_err(
        maker.create_bucket().bucket("made-by-key").send().await,
        403,
        "AccessDenied",
    );

    key_ok(&store, &["allow", "maker", "--create-bucket"]);
    maker
        .create_bucket()
        .bucket("made-by-key")
        .send()
        .await
        .unwrap();
    let info = key_ok(&store, &["info", "maker"]);
    assert!(info.contains("made-by-key  read write owner"), "{info}");
    assert!(info.contains("Create bucket:  yes"), "{info}");
    // It owns it: objects, settings, and the bucket itself are its to change.
    put(&maker, "made-by-key", "k").await.unwrap();
    maker
        .delete_object()
        .bucket("made-by-key")
        .key("k")
        .send()
        .await
        .unwrap();
    maker
        .delete_bucket()
        .bucket("made-by-key")
        .send()
        .await
        .unwrap();
    let info = key_ok(&store, &["info", "maker"]);
    assert!(info.contains("Grants:         none"), "{info}");

    // Another's bucket is not taken over, and says so.
    assert_sdk_err(
        maker.create_bucket().bucket(&taken).send().await,
        409,
        "BucketAlreadyExists",
    );
    assert_eq!(get(&maker, &taken, "o").await, Err(denied()));
    // The root key still owns everything.
    maker
        .create_bucket()
        .bucket("again-by-key")
        .send()
        .await
        .unwrap();
    put(&root, "again-by-key", "r").await.unwrap();

    key_ok(&store, &["deny", "maker", "--create-bucket"]);
    assert_sdk_err(
        maker.create_bucket().bucket("one-more").send().await,
        403,
        "AccessDenied",
    );
}

#[tokio::test]
async fn list_buckets_shows_a_key_the_buckets_it_holds_a_grant_on() {
    let store = TestStore::start();
    let root = store.client();
    for name in ["lb-one", "lb-two", "lb-three"] {
        root.create_bucket().bucket(name).send().await.unwrap();
    }
    let (id, secret) = create_key(&store, "lister", &[]);
    let lister = client_for(&store.url, &id, &secret);
    let names = |out: aws_sdk_s3::operation::list_buckets::ListBucketsOutput| -> Vec<String> {
        out.buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_owned))
            .collect()
    };
    assert!(names(lister.list_buckets().send().await.unwrap()).is_empty());
    key_ok(&store, &["allow", "lister", "--bucket", "lb-two", "--read"]);
    key_ok(
        &store,
        &["allow", "lister", "--bucket", "lb-three", "--write"],
    );
    assert_eq!(
        names(lister.list_buckets().send().await.unwrap()),
        ["lb-three", "lb-two"]
    );
    assert_eq!(
        names(root.list_buckets().send().await.unwrap()),
        ["lb-one", "lb-three", "lb-two"]
    );
}

#[tokio::test]
async fn keys_and_grants_survive_a_restart() {
    let (mut store, _root, b) = store_with_object().await;
    let (id, secret) = create_key(&store, "durable", &["--edge"]);
    key_ok(&store, &["allow", "durable", "--bucket", &b, "--read"]);
    let data = store.data_dir.clone();
    store.kill();
    let store = TestStore::start_with(StoreOptions::default().data_dir(&data));
    let app = client_for(&store.url, &id, &secret);
    assert_eq!(get(&app, &b, "o").await.unwrap(), b"hello");
    assert_eq!(put(&app, &b, "n").await, Err(denied()));
    let list = key_ok(&store, &["list"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("durable") && l.contains(&id) && l.contains("yes")),
        "an edge key: {list}"
    );
}

#[tokio::test]
async fn the_secret_is_shown_once_and_never_logged() {
    // Everything the store logs, down to debug, with the access log on.
    let store = TestStore::start_with(
        StoreOptions::default().env("RUST_LOG", "debug,outpost::access=info"),
    );
    let root = store.client();
    let b = store.bucket(&root, "secret").await;
    let (_, first_secret) = create_key(&store, "quiet", &[]);
    let (id, secret) = create_key(&store, "quiet-two", &[]);
    let app = client_for(&store.url, &id, &secret);
    assert_eq!(get(&app, &b, "o").await, Err(denied()));
    key_ok(
        &store,
        &["allow", "quiet-two", "--bucket", &b, "--read", "--write"],
    );
    put(&app, &b, "o").await.unwrap();
    // A wrong signature with the key is refused (and logged at debug) without the secret.
    let wrong = client_for(&store.url, &id, "not-the-secret");
    assert_eq!(
        get(&wrong, &b, "o").await,
        Err((403, "SignatureDoesNotMatch".into()))
    );

    let shown = [
        key_ok(&store, &["list"]),
        key_ok(&store, &["list", "--json"]),
        key_ok(&store, &["info", "quiet-two"]),
        key_ok(&store, &["info", "quiet-two", "--json"]),
        key_ok(&store, &["allow", "quiet-two", "--bucket", &b, "--owner"]),
    ];
    for out in &shown {
        assert!(out.contains(&id), "the key is shown: {out}");
        assert!(!out.contains(&secret), "the secret is shown again: {out}");
    }
    let log = store.stderr();
    assert!(log.contains("admin: access key created"), "{log}");
    assert!(log.contains(&id), "the log names the key by its id");
    for secret in [&secret, &first_secret] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret is in the log:\n{log}"
        );
    }
}

#[tokio::test]
async fn without_root_credentials_the_cli_says_what_to_set() {
    let store = TestStore::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["key", "list", "--endpoint", &store.url])
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("AWS_ACCESS_KEY_ID") && err.contains("outpost credentials"),
        "{err}"
    );
    // Wrong credentials are the store's refusal, said plainly.
    let (id, secret) = create_key(&store, "not-root", &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_outpost"))
        .args(["key", "list", "--endpoint", &store.url])
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", &id)
        .env("AWS_SECRET_ACCESS_KEY", &secret)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("root key only") && err.contains("AccessDenied"),
        "{err}"
    );
}
