//! The `outpost` command line as a user runs it: `outpost up --config FILE` applies the file's
//! `[edge]` table (its distributions serve), the printed credentials are `export` lines a
//! shell takes as they are, on every laptop start, and `outpost credentials` prints them again.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::common::*;

/// `outpost` with no OUTPOST_* variable from the environment the tests run in.
fn outpost(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_outpost"));
    cmd.args(args).env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("OUTPOST_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// A running `outpost up`: its stdout up to the edge's listening line; killed on drop.
struct Up {
    child: Child,
    lines: Vec<String>,
    store: String,
    edge: String,
}

impl Up {
    fn start(mut cmd: Command) -> Up {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn outpost up");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut up = Up {
            child,
            lines: Vec::new(),
            store: String::new(),
            edge: String::new(),
        };
        while up.edge.is_empty() {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("outpost up did not start: {:?}", up.lines));
            let addr = |prefix: &str| line.strip_prefix(prefix).map(|u| u.trim().to_owned());
            if let Some(url) = addr("outpost store listening on http://") {
                up.store = url;
            }
            if let Some(url) = addr("outpost edge listening on http://") {
                up.edge = url;
            }
            up.lines.push(line);
        }
        up
    }

    fn exports(&self) -> Vec<&str> {
        self.lines
            .iter()
            .map(String::as_str)
            .filter(|l| l.starts_with("export "))
            .collect()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn up_args(data: &Path) -> Vec<String> {
    [
        "up",
        "--listen",
        "127.0.0.1:0",
        "--edge-listen",
        "127.0.0.1:0",
        "--data",
    ]
    .map(String::from)
    .into_iter()
    .chain([data.display().to_string()])
    .collect()
}

/// What a shell makes of `lines`: the two keys, as pasted.
fn through_a_shell(lines: &[&str]) -> (String, String) {
    let script = format!(
        "{}\nprintf '%s\\n%s' \"$AWS_ACCESS_KEY_ID\" \"$AWS_SECRET_ACCESS_KEY\"",
        lines.join("\n")
    );
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "the pasted lines fail in sh: {lines:?}"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let (id, secret) = text.split_once('\n').unwrap();
    (id.to_owned(), secret.to_owned())
}

#[tokio::test]
async fn up_with_a_config_file_serves_its_distributions() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("outpost.toml");
    std::fs::write(
        &config,
        "[edge]\n[[edge.distribution]]\nhosts = [\"cdn.example.test\"]\nbucket = \"assets\"\n",
    )
    .unwrap();
    let mut cmd = outpost(&[]);
    cmd.args(up_args(&dir.path().join("data")))
        .arg("--config")
        .arg(&config)
        .env("OUTPOST_ACCESS_KEY_ID", ACCESS_KEY)
        .env("OUTPOST_SECRET_ACCESS_KEY", SECRET_KEY);
    let up = Up::start(cmd);
    let s3 = client_for(&format!("http://{}", up.store), ACCESS_KEY, SECRET_KEY);
    s3.create_bucket().bucket("assets").send().await.unwrap();
    put_bytes(&s3, "assets", "app.js", b"console.log('hi')").await;

    let r = RawRequest::new("GET", "/app.js")
        .send_to(&up.edge, "cdn.example.test")
        .await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"console.log('hi')"[..]),
        "the distribution of the file's [edge] table serves its bucket"
    );
}

#[tokio::test]
async fn credentials_are_shell_exports_on_every_start_and_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = Up::start({
        let mut cmd = outpost(&[]);
        cmd.args(up_args(&data));
        cmd
    });
    let exports: Vec<String> = first.exports().iter().map(|l| l.to_string()).collect();
    assert_eq!(exports.len(), 3, "{:?}", first.lines);
    let (id, secret) = through_a_shell(&first.exports());
    assert!(id.starts_with("OP") && secret.len() == 40, "{id} {secret}");
    // The pasted keys are the store's.
    let s3 = client_for(&format!("http://{}", first.store), &id, &secret);
    s3.create_bucket().bucket("pasted").send().await.unwrap();
    drop(first);

    // A restart shows the same keys again.
    let again = Up::start({
        let mut cmd = outpost(&[]);
        cmd.args(up_args(&data));
        cmd
    });
    assert_eq!(again.exports(), exports);
    drop(again);

    // And so does `outpost credentials`, by flag or with the same default as `up` (cwd).
    let printed = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let by_flag = printed(outpost(&["credentials", "--data"]).arg(&data));
    assert_eq!(by_flag.lines().collect::<Vec<_>>(), exports);
    std::fs::rename(&data, dir.path().join("outpost-data")).unwrap();
    let by_default = printed(outpost(&["credentials"]).current_dir(dir.path()));
    assert_eq!(by_default, by_flag);

    // A data directory with no store in it is an error, not new keys.
    let none = outpost(&["credentials", "--data"])
        .arg(dir.path().join("nothing"))
        .output()
        .unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("no credentials in"));
    assert!(!dir.path().join("nothing").exists());
}

/// `outpost key ARGS --json` against the store of `up`, with the root credentials.
fn up_key(up: &Up, args: &[&str]) -> serde_json::Value {
    let out = outpost(&["key"])
        .args(args)
        .args(["--json", "--endpoint", &format!("http://{}", up.store)])
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn up_runs_its_edge_with_an_edge_key_made_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = || {
        let mut cmd = outpost(&[]);
        cmd.args(up_args(&data))
            .env("OUTPOST_ACCESS_KEY_ID", ACCESS_KEY)
            .env("OUTPOST_SECRET_ACCESS_KEY", SECRET_KEY);
        Up::start(cmd)
    };
    let edge_key = |up: &Up| {
        let list = up_key(up, &["list"]);
        let keys = list["keys"].as_array().unwrap().clone();
        let edges: Vec<_> = keys.iter().filter(|k| k["edge"] == true).collect();
        assert_eq!(edges.len(), 1, "{list}");
        assert_eq!(edges[0]["name"], "outpost-up-edge");
        edges[0]["access_key_id"].as_str().unwrap().to_owned()
    };
    let up = start();
    let first = edge_key(&up);
    // The edge takes no root key: a key of one's own works through it.
    let root_at_edge = client_for(&format!("http://{}", up.edge), ACCESS_KEY, SECRET_KEY);
    let refused = root_at_edge.list_buckets().send().await;
    assert_sdk_err(refused, 403, "InvalidAccessKeyId");
    let me = up_key(&up, &["create", "me"]);
    up_key(&up, &["allow", "me", "--create-bucket"]);
    let (id, secret) = (
        me["access_key_id"].as_str().unwrap(),
        me["secret_access_key"].as_str().unwrap(),
    );
    let mine = client_for(&format!("http://{}", up.edge), id, secret);
    let started = std::time::Instant::now();
    while mine.create_bucket().bucket("mine").send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the edge never took the key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    put_bytes(&mine, "mine", "k", "through the edge").await;
    assert_eq!(object_bytes(&mine, "mine", "k").await, b"through the edge");
    drop(up);

    let again = start();
    assert_eq!(
        edge_key(&again),
        first,
        "the edge key is made once and reused"
    );
}
