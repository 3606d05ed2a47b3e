//! What `outpost key` checks before it calls the store. Odd key names: a name no key may have
//! is refused with the rule for names, whatever the command, and never acts on another key.
//! Before, the name went into the admin
//! API's path as typed: `outpost key delete 'app?x'` deleted `app` (the rest was a query
//! string) and said "Deleted key app?x.", `app#x` did the same, `app/x` was "No such admin
//! API call", `app x` an unsignable request; and `.` and `..` were accepted as names (path
//! segments any proxy may fold away). An `--endpoint` with a path: refused as not a store's
//! URL; before, it was signed without the path and refused by the store as
//! SignatureDoesNotMatch.

use crate::common::keys::key_cmd_at;
use crate::common::keys::{create_key, key_cmd, key_ok};
use crate::common::*;

#[tokio::test]
async fn a_name_no_key_may_have_is_refused_by_every_command_and_touches_no_other_key() {
    let (store, _root, b) = TestStore::with_bucket("names").await;
    let (id, _) = create_key(&store, "app", &[]);
    key_ok(&store, &["allow", "app", "--bucket", &b, "--read"]);
    let long = "a".repeat(65);
    let odd = [
        "app?x",
        "app#x",
        "app/x",
        "app/../app",
        "app x",
        "é",
        "",
        ".",
        "..",
        long.as_str(),
    ];
    for name in odd {
        let commands: [&[&str]; 5] = [
            &["create", name],
            &["info", name],
            &["delete", name],
            &["allow", name, "--create-bucket"],
            &["deny", name, "--bucket", &b, "--read"],
        ];
        for args in commands {
            let out = key_cmd(&store, args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success(),
                "outpost key {args:?} succeeded: {err}"
            );
            assert!(
                err.contains("A key name is 1 to 64 letters"),
                "outpost key {args:?}: {err}"
            );
        }
    }
    // `app` is as it was: not deleted, given nothing, its grant kept.
    let info = key_ok(&store, &["info", "app"]);
    assert!(info.contains(&id), "{info}");
    assert!(info.contains("Create bucket:  no"), "{info}");
    assert!(info.contains(&format!("{b}  read")), "{info}");
    let list = key_ok(&store, &["list"]);
    assert_eq!(list.lines().count(), 2, "a header and app only: {list}");
}

#[tokio::test]
async fn an_endpoint_is_a_stores_url_without_a_path() {
    let store = TestStore::start();
    for endpoint in [
        format!("{}/sub", store.url),
        format!("{}/_outpost/", store.url),
    ] {
        let out = key_cmd_at(&endpoint, &["list"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{endpoint}: {err}");
        assert!(
            err.contains("expected http(s)://HOST:PORT"),
            "{endpoint}: {err}"
        );
    }
    // A trailing slash is no path.
    let out = key_cmd_at(&format!("{}/", store.url), &["list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
