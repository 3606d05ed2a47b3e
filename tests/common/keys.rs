//! `outpost key ...` as an operator runs it against a test store: the root credentials in the
//! environment, `--endpoint` the store's URL.

use std::process::{Command, Output};

use super::{ACCESS_KEY, SECRET_KEY, TestStore};

/// Runs `outpost key <args> --endpoint <store>` with the root credentials, as
/// `eval "$(outpost credentials)"` sets them (and nothing else from the test's environment).
pub fn key_cmd(store: &TestStore, args: &[&str]) -> Output {
    key_cmd_at(&store.url, args)
}

/// [`key_cmd`] with `--endpoint endpoint`.
pub fn key_cmd_at(endpoint: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outpost"));
    cmd.arg("key")
        .args(args)
        .args(["--endpoint", endpoint])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_DEFAULT_REGION", super::REGION)
        .env("RUST_BACKTRACE", "0");
    cmd.output().expect("run outpost key")
}

/// [`key_cmd`], which must succeed; its stdout.
#[track_caller]
pub fn key_ok(store: &TestStore, args: &[&str]) -> String {
    let out = key_cmd(store, args);
    assert!(
        out.status.success(),
        "outpost key {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `outpost key create NAME [extra]`: the new key's id and secret, from its export lines.
#[track_caller]
pub fn create_key(store: &TestStore, name: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["create", name];
    args.extend_from_slice(extra);
    let out = key_ok(store, &args);
    let value = |var: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("export {var}=")))
            .unwrap_or_else(|| panic!("no {var} in {out}"))
            .trim_matches('\'')
            .to_owned()
    };
    (value("AWS_ACCESS_KEY_ID"), value("AWS_SECRET_ACCESS_KEY"))
}
