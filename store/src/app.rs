//! Assembles a running store: engine + S3 protocol + admin endpoints on one HTTP server, and
//! the root credentials (configured, or generated once and kept in the data directory).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use axum::extract::State;
use axum::routing::{any, get, post};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};

use crate::config::StoreConfig;
use crate::engine::{Engine, EngineConfig, durable};
use crate::metrics::Metrics;
use crate::s3::auth::{Credentials, Keyring, SecretKey};
use crate::s3::{self, S3};
use crate::server::{self, ConnLimits};

/// How often abandoned multipart uploads are looked for.
const UPLOAD_SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
const CREDENTIALS_FILE: &str = "credentials.toml";

/// A store ready to serve.
pub struct Store {
    s3: Arc<S3>,
}

impl Store {
    /// Opens the engine under `config.data_dir` (sweeping what a crash left) with `root` as
    /// the root key; the index's keys are accepted too, with the rights their grants give.
    pub async fn open(config: StoreConfig, root: Credentials) -> anyhow::Result<Store> {
        let engine = Engine::open(EngineConfig {
            data_dir: config.data_dir.clone(),
            max_object_size: config.max_object_size,
            stale_upload_age: config.stale_upload_age(),
            changes: config.change_retention(),
        })
        .await
        .with_context(|| format!("opening the data directory {}", config.data_dir.display()))?;
        let s3 = S3 {
            owner_id: root.access_key_id.clone(),
            keyring: Keyring::new([root]).with_index(engine.key_view()),
            engine,
            config,
            metrics: Metrics::new("outpost_s3"),
            feeds: Default::default(),
        };
        Ok(Store { s3: Arc::new(s3) })
    }

    /// The edge key named `name`, created (with no rights) if there is none: what `outpost
    /// up` gives the edge beside the store. An error if a key of that name is not an edge key.
    pub async fn edge_key(&self, name: &str) -> anyhow::Result<Credentials> {
        let engine = &self.s3.engine;
        let key = match engine.keys().by_name(name).cloned() {
            Some(key) => key,
            None => engine.create_key(name, true).await?,
        };
        anyhow::ensure!(key.edge, "the access key {name} is not an edge key");
        Ok(Credentials {
            access_key_id: key.access_key_id.clone(),
            secret: key.secret.clone(),
        })
    }

    /// `/_outpost/health`, `/_outpost/metrics`, the admin API (`/_outpost/admin/...`), and the
    /// S3 API for everything else.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/_outpost/admin/{*call}", any(crate::admin::handle))
            .route("/_outpost/health", get(health))
            .route("/_outpost/ready", get(ready))
            .route("/_outpost/metrics", get(metrics))
            .route(crate::feed::CHANGES_PATH, get(crate::feed::changes))
            .route(crate::feed::APPLIED_PATH, post(crate::feed::applied))
            .route(crate::feed::SUBSCRIBERS_PATH, get(crate::feed::subscribers))
            .route(
                crate::feed::INVALIDATIONS_PATH,
                post(crate::feed::invalidations),
            )
            .fallback(s3::handle)
            .with_state(Arc::clone(&self.s3))
    }

    /// Serves on `listener` until `shutdown` resolves; sweeps stale uploads meanwhile.
    pub async fn serve(
        self,
        listeners: Vec<server::Listener>,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let sweeper = tokio::spawn(sweep_uploads(self.s3.engine.clone()));
        let config = &self.s3.config;
        let limits = ConnLimits::new(
            config.header_read_timeout_secs,
            config.max_header_bytes,
            config.max_connections,
            config.max_connections_per_ip,
        );
        // Feeds never end by themselves: ended at shutdown, the server need not wait for them.
        let engine = self.s3.engine.clone();
        let shutdown = async move {
            shutdown.await;
            engine.close_feeds();
        };
        let result = server::serve(
            listeners,
            self.router(),
            limits,
            self.s3.metrics.tls_handshakes(),
            shutdown,
        )
        .await;
        sweeper.abort();
        result
    }
}

/// 200 `ok` while the store can take writes; 503 `not ready: <why>` while it cannot (a full
/// data directory, or an index waiting to be reopened after an I/O failure), so a load
/// balancer sends writes elsewhere. Recovers by itself once there is room again.
async fn health(State(s3): State<Arc<S3>>) -> (http::StatusCode, String) {
    match s3.engine.writable().await {
        Ok(()) => (http::StatusCode::OK, "ok\n".into()),
        Err(why) => (
            http::StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

/// Readiness for a load balancer or an orchestrator: 200 when every check passes, else 503,
/// with each check's outcome as JSON:
/// `{"ready":false,"checks":{"index_open":{"ok":true},"data_dir_writable":{"ok":false,"reason":"…"}}}`.
/// `/_outpost/health` stays the plain-text answer documented for it.
async fn ready(State(s3): State<Arc<S3>>) -> impl axum::response::IntoResponse {
    let checks = s3.engine.readiness().await;
    let check = |r: &std::result::Result<(), String>| match r {
        Ok(()) => serde_json::json!({ "ok": true }),
        Err(why) => serde_json::json!({ "ok": false, "reason": why }),
    };
    let status = if checks.ready() {
        http::StatusCode::OK
    } else {
        http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "ready": checks.ready(),
        "checks": {
            "index_open": check(&checks.index_open),
            "data_dir_writable": check(&checks.data_dir_writable),
        },
    });
    (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

async fn metrics(State(s3): State<Arc<S3>>) -> impl axum::response::IntoResponse {
    let (subscribers, retained) = s3.engine.change_log_state();
    s3.metrics.set_feed(subscribers, retained);
    (
        [(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        s3.metrics.render(),
    )
}

async fn sweep_uploads(engine: Engine) {
    let mut tick = tokio::time::interval(UPLOAD_SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        match engine.sweep_stale_uploads(SystemTime::now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(aborted = n, "aborted stale multipart uploads"),
            Err(e) => tracing::warn!(error = %e, "stale upload sweep failed"),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CredentialsFile {
    access_key_id: String,
    secret_access_key: String,
}

/// The root credentials: the configured pair if any; otherwise the pair saved in the data
/// directory; otherwise a new pair, saved there (mode 0600). `bool` = newly generated, so the
/// caller prints it once.
pub fn root_credentials(config: &StoreConfig) -> anyhow::Result<(Credentials, bool)> {
    if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
        return Ok((
            Credentials {
                access_key_id: id.clone(),
                secret: SecretKey::new(secret.clone()),
            },
            false,
        ));
    }
    if let Some(saved) = saved_credentials(&config.data_dir)? {
        return Ok((saved, false));
    }
    let path = credentials_path(&config.data_dir);
    let mut rng = rand::rng();
    let file = CredentialsFile {
        access_key_id: format!(
            "OP{}",
            Alphanumeric.sample_string(&mut rng, 18).to_uppercase()
        ),
        secret_access_key: Alphanumeric.sample_string(&mut rng, 40),
    };
    write_private(&config.data_dir, &path, &toml::to_string(&file)?)?;
    Ok((
        Credentials {
            access_key_id: file.access_key_id,
            secret: SecretKey::new(file.secret_access_key),
        },
        true,
    ))
}

/// Where a store keeps the root credentials it generated.
pub fn credentials_path(data_dir: &Path) -> PathBuf {
    data_dir.join(CREDENTIALS_FILE)
}

/// The root credentials saved in `data_dir`, if a store generated them there.
pub fn saved_credentials(data_dir: &Path) -> anyhow::Result<Option<Credentials>> {
    let path = credentials_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let file: CredentialsFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Some(Credentials {
        access_key_id: file.access_key_id,
        secret: SecretKey::new(file.secret_access_key),
    }))
}

/// `value` as one single-quoted POSIX shell word.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `export` lines for a POSIX shell (`eval "$(outpost credentials)"` works too): each value
/// single-quoted, with any `'` in it written as `'\''`, so a pasted line sets exactly the
/// value whatever characters a configured key holds.
pub fn shell_exports(root: &Credentials, region: &str) -> String {
    format!(
        "export AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={}\nexport AWS_DEFAULT_REGION={}\n",
        shell_quote(&root.access_key_id),
        shell_quote(root.secret.expose()),
        shell_quote(region),
    )
}

/// The credentials file, written whole and durably (a power cut right after the first start
/// must not leave clients holding keys the next start has forgotten).
fn write_private(dir: &Path, path: &Path, text: &str) -> anyhow::Result<()> {
    durable::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    durable::write_new(path, text.as_bytes(), 0o600)
        .with_context(|| format!("creating {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig {
            data_dir: dir.path().to_owned(),
            ..StoreConfig::default()
        };
        let (first, generated) = root_credentials(&config).unwrap();
        assert!(generated);
        let (again, generated) = root_credentials(&config).unwrap();
        assert!(!generated);
        assert_eq!(first, again);
        let configured = StoreConfig {
            access_key_id: Some("AK".into()),
            secret_access_key: Some("SK".into()),
            ..config
        };
        assert_eq!(root_credentials(&configured).unwrap().0.access_key_id, "AK");
        assert_eq!(saved_credentials(dir.path()).unwrap(), Some(first));
        assert_eq!(saved_credentials(&dir.path().join("none")).unwrap(), None);
    }

    /// What `sh` makes of the exports is the value itself, whatever it holds.
    #[test]
    fn exports_survive_a_shell() {
        let root = Credentials {
            access_key_id: "AK'; exit 3; '".into(),
            secret: SecretKey::new("s$(id)`x` \\\"q\" \n*"),
        };
        let script = format!(
            "{}printf '%s|%s|%s' \"$AWS_ACCESS_KEY_ID\" \"$AWS_SECRET_ACCESS_KEY\" \"$AWS_DEFAULT_REGION\"",
            shell_exports(&root, "eu-west-1")
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = format!("{}|{}|eu-west-1", root.access_key_id, root.secret.expose());
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
    }
}
