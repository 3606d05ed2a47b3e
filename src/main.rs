//! `outpost`: the one binary. `outpost store` runs the S3-compatible store, `outpost edge` a
//! caching edge in front of stores, and `outpost up` a store and its edges (one, or N with
//! `--edges N`) in one process for a laptop (local data directory, printed credentials and
//! endpoints). `outpost speedtest` compares uploads
//! straight to a store with uploads through an edge. `outpost key ...` manages access keys
//! and grants through a running store's admin API.
//!
//! Configuration is layered: TOML file (`--config`) → environment (`OUTPOST_*`) → flags.

mod invalidate;
mod keys;
mod speedtest;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use outpost_gateway::{Edge, EdgeConfig};
use outpost_store::s3::auth::{Credentials, SecretKey};
use outpost_store::server::Listener;
use outpost_store::tls::{self, Certificates, TlsFiles};
use outpost_store::{Store, StoreConfig};
use serde::Deserialize;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "outpost",
    version,
    about = "Self-hostable S3-compatible object store with edge gateways"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the S3-compatible store.
    Store(StoreArgs),
    /// Run a caching edge gateway in front of one or more stores.
    Edge(EdgeArgs),
    /// Run everything on one machine (a store on local disk and edges in front of it) and
    /// print how to use it.
    Up(UpArgs),
    /// Upload test objects straight to a store and through an edge; print both side by side.
    Speedtest(speedtest::SpeedtestArgs),
    /// Print the root credentials as shell `export` lines (`eval "$(outpost credentials)"`).
    Credentials(CredentialsArgs),
    /// Manage access keys and their grants on a running store (with the root credentials
    /// from the environment).
    Key(keys::KeyArgs),
    /// Invalidate paths at every edge following a store's change feed (with the root
    /// credentials from the environment).
    Invalidate(invalidate::InvalidateArgs),
}

#[derive(Args)]
struct CredentialsArgs {
    /// Data directory of the store [default: ./outpost-data, as for `store` and `up`].
    #[arg(long, env = "OUTPOST_DATA")]
    data: Option<PathBuf>,
    /// TOML config file with a `[store]` table (its `data_dir`, credentials and region).
    #[arg(long, env = "OUTPOST_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct EdgeArgs {
    /// Address to listen on [default: 127.0.0.1:9080].
    #[arg(long, env = "OUTPOST_EDGE_LISTEN")]
    listen: Option<SocketAddr>,
    /// PEM certificate chain: with --tls-key, --listen serves HTTPS (HTTP/2 and HTTP/1.1).
    #[arg(long, env = "OUTPOST_EDGE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "OUTPOST_EDGE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// A plain-HTTP listener beside the TLS one.
    #[arg(long, env = "OUTPOST_EDGE_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Origin store URL; repeat for failover stores (primary first)
    /// [default: http://127.0.0.1:9000].
    #[arg(long = "origin", env = "OUTPOST_ORIGIN", value_delimiter = ',')]
    origins: Vec<String>,
    /// Cache directory [default: ./outpost-edge-cache].
    #[arg(long, env = "OUTPOST_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// TOML config file with an `[edge]` table.
    #[arg(long, env = "OUTPOST_CONFIG")]
    config: Option<PathBuf>,
    /// Access key the edge signs with toward the origin and accepts from clients.
    #[arg(long, env = "OUTPOST_ACCESS_KEY_ID", hide_env_values = true)]
    access_key_id: Option<String>,
    #[arg(long, env = "OUTPOST_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
}

#[derive(Args)]
struct UpArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address of the (first) edge [default: 127.0.0.1:9080]; with `--edges N` the others
    /// listen on the next ports (9081, 9082...), or each on a port of its own choosing when
    /// this one is 0.
    #[arg(long, env = "OUTPOST_EDGE_LISTEN")]
    edge_listen: Option<SocketAddr>,
    /// How many edges to run in front of the store, each with its own cache directory, all
    /// following the store's change feed.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    edges: u16,
    /// Serve HTTPS (store and edge) with a certificate from a local CA made in the data
    /// directory (`tls/ca.pem`, kept across restarts): trust it with `aws --ca-bundle` or
    /// `curl --cacert`.
    #[arg(long)]
    tls: bool,
}

/// Flags (and their environment variables) that override the config file.
#[derive(Args)]
struct StoreArgs {
    /// Address to listen on [default: 127.0.0.1:9000].
    #[arg(long, env = "OUTPOST_LISTEN")]
    listen: Option<SocketAddr>,
    /// PEM certificate chain: with --tls-key, --listen serves HTTPS (HTTP/2 and HTTP/1.1).
    #[arg(long, env = "OUTPOST_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "OUTPOST_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// A plain-HTTP listener beside the TLS one.
    #[arg(long, env = "OUTPOST_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Data directory [default: ./outpost-data].
    #[arg(long, env = "OUTPOST_DATA")]
    data: Option<PathBuf>,
    /// TOML config file with a `[store]` table.
    #[arg(long, env = "OUTPOST_CONFIG")]
    config: Option<PathBuf>,
    /// Region [default: us-east-1].
    #[arg(long, env = "OUTPOST_REGION")]
    region: Option<String>,
    /// Base domain for virtual-hosted-style requests (`bucket.<domain>`).
    #[arg(long, env = "OUTPOST_BASE_DOMAIN")]
    base_domain: Option<String>,
    /// Largest single upload (object or part), in bytes [default: 5 GiB].
    #[arg(long, env = "OUTPOST_MAX_OBJECT_SIZE")]
    max_object_size: Option<u64>,
    /// Root access key id (with OUTPOST_SECRET_ACCESS_KEY).
    #[arg(long, env = "OUTPOST_ACCESS_KEY_ID", hide_env_values = true)]
    access_key_id: Option<String>,
    #[arg(long, env = "OUTPOST_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
}

/// The config file: one table per component.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    store: StoreConfig,
    #[serde(default)]
    edge: EdgeConfig,
}

/// The config file at `path`, or the defaults.
fn file_config(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    path.map_or_else(|| Ok(FileConfig::default()), read_config)
}

/// The TLS flags (`--tls-cert`, `--tls-key`, `--http-listen`) over the file's keys. Flags
/// name the certificate pair together: one given on the command line replaces the file's pair
/// whole (a key from the file never pairs with a certificate from a flag).
fn set_tls(
    cert: &mut Option<PathBuf>,
    key: &mut Option<PathBuf>,
    http_listen: &mut Option<SocketAddr>,
    (flag_cert, flag_key, flag_listen): (Option<PathBuf>, Option<PathBuf>, Option<SocketAddr>),
) {
    if flag_cert.is_some() || flag_key.is_some() {
        (*cert, *key) = (flag_cert, flag_key);
    }
    if flag_listen.is_some() {
        *http_listen = flag_listen;
    }
}

impl StoreArgs {
    fn into_config(self) -> anyhow::Result<StoreConfig> {
        let mut cfg = file_config(self.config.as_deref())?.store;
        macro_rules! set {
            ($($flag:ident => $field:ident),*) => {$(
                if let Some(v) = self.$flag { cfg.$field = v.into(); }
            )*};
        }
        set!(listen => listen, data => data_dir, region => region, max_object_size => max_object_size);
        let flags = (self.tls_cert, self.tls_key, self.http_listen);
        set_tls(
            &mut cfg.tls_cert,
            &mut cfg.tls_key,
            &mut cfg.http_listen,
            flags,
        );
        if self.base_domain.is_some() {
            cfg.base_domain = self.base_domain;
        }
        if self.access_key_id.is_some() || self.secret_access_key.is_some() {
            cfg.access_key_id = self.access_key_id;
            cfg.secret_access_key = self.secret_access_key;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}

impl EdgeArgs {
    fn into_config(self) -> anyhow::Result<(EdgeConfig, Credentials)> {
        let mut cfg = file_config(self.config.as_deref())?.edge;
        if let Some(v) = self.listen {
            cfg.listen = v;
        }
        if !self.origins.is_empty() {
            cfg.origins = self.origins;
        }
        if let Some(v) = self.cache_dir {
            cfg.cache_dir = v;
        }
        let flags = (self.tls_cert, self.tls_key, self.http_listen);
        set_tls(
            &mut cfg.tls_cert,
            &mut cfg.tls_key,
            &mut cfg.http_listen,
            flags,
        );
        if self.access_key_id.is_some() || self.secret_access_key.is_some() {
            cfg.access_key_id = self.access_key_id;
            cfg.secret_access_key = self.secret_access_key;
        }
        cfg.validate()?;
        let (Some(id), Some(secret)) = (&cfg.access_key_id, &cfg.secret_access_key) else {
            anyhow::bail!(
                "the edge needs the store's credentials: set OUTPOST_ACCESS_KEY_ID and \
                 OUTPOST_SECRET_ACCESS_KEY (or access_key_id/secret_access_key in [edge])"
            );
        };
        let credentials = Credentials {
            access_key_id: id.clone(),
            secret: SecretKey::new(secret.clone()),
        };
        Ok((cfg, credentials))
    }
}

impl UpArgs {
    /// The store's config, and each edge's: the file's `[edge]` table (distributions,
    /// behaviours, cache sizes...), in front of this store (its origins and region are the
    /// store's), with its cache in the data directory unless the table names one. Edge `i`
    /// listens `i` ports after the first and keeps its cache in `<cache dir>-<i>`.
    fn into_configs(self) -> anyhow::Result<(StoreConfig, Vec<EdgeConfig>, Option<PathBuf>)> {
        let mut edge = file_config(self.store.config.as_deref())?.edge;
        let mut store = self.store.into_config()?;
        let mut ca = None;
        if self.tls {
            let local = tls::LocalCa::in_dir(&store.data_dir.join("tls"))?;
            let (cert, key) = (Some(local.files.cert), Some(local.files.key));
            (store.tls_cert, store.tls_key) = (cert.clone(), key.clone());
            (edge.tls_cert, edge.tls_key) = (cert, key);
            edge.origin_ca_file = Some(local.ca.clone());
            ca = Some(local.ca);
        }
        if let Some(listen) = self.edge_listen {
            edge.listen = listen;
        }
        if edge.cache_dir == EdgeConfig::default().cache_dir {
            edge.cache_dir = store.data_dir.join("edge-cache");
        }
        edge.region = store.region.clone();
        // Set once the store is bound (it may listen on port 0).
        edge.origins = Vec::new();
        let edges = (0..self.edges)
            .map(|i| {
                let mut nth = edge.clone();
                if i > 0 {
                    let mut dir = nth.cache_dir.into_os_string();
                    dir.push(format!("-{i}"));
                    nth.cache_dir = dir.into();
                    if edge.listen.port() != 0 {
                        let port = edge.listen.port().checked_add(i).with_context(|| {
                            format!("{} edges from port {}", self.edges, edge.listen.port())
                        })?;
                        nth.listen.set_port(port);
                    }
                }
                Ok(nth)
            })
            .collect::<anyhow::Result<_>>()?;
        Ok((store, edges, ca))
    }
}

impl CredentialsArgs {
    /// The export lines for the store these flags name: its configured keys, else the ones
    /// it saved in its data directory.
    fn exports(self) -> anyhow::Result<String> {
        let mut cfg = file_config(self.config.as_deref())?.store;
        if let Some(data) = self.data {
            cfg.data_dir = data;
        }
        let root = match (&cfg.access_key_id, &cfg.secret_access_key) {
            (Some(id), Some(secret)) => Credentials {
                access_key_id: id.clone(),
                secret: SecretKey::new(secret.clone()),
            },
            _ => outpost_store::saved_credentials(&cfg.data_dir)?.with_context(|| {
                format!(
                    "no credentials in {}: `outpost up` or `outpost store` with this data \
                     directory generates them on its first start",
                    cfg.data_dir.display()
                )
            })?,
        };
        Ok(outpost_store::shell_exports(&root, &cfg.region))
    }
}

fn read_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn colour_logs() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            // rustls warns about each peer's protocol oddities (one line per connection from
            // a client that sends an IP address as SNI): nothing an operator can act on.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,outpost::access=warn,rustls=error".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: a log file or journald would keep
        // them as `\x1b[...` garbage (https://no-color.org opts out at a terminal too).
        .with_ansi(colour_logs())
        .init();
    match Cli::parse().command {
        Command::Speedtest(args) => speedtest::run(args).await,
        Command::Key(args) => keys::run(args).await,
        Command::Invalidate(args) => invalidate::run(args).await,
        Command::Credentials(args) => {
            print!("{}", args.exports()?);
            Ok(())
        }
        Command::Store(args) => start_store(args.into_config()?, None).await?.0.await,
        Command::Edge(args) => {
            let (config, credentials) = args.into_config()?;
            start_edge(config, credentials).await?.await
        }
        Command::Up(args) => {
            let (config, edges, ca) = args.into_configs()?;
            let (store, edge_key) = start_store(config, Some(ca.as_deref())).await?;
            let mut running = Vec::new();
            for mut edge in edges {
                edge.origins = vec![store.url.clone()];
                edge.validate()?;
                running.push(start_edge(edge, edge_key.clone()).await?);
            }
            let urls: Vec<&str> = running.iter().map(|e| e.url.as_str()).collect();
            println!(
                "Through the edge (cached reads, relayed writes), with a key of your own (the \
                 edge holds no root key and takes none): outpost key create me && outpost key \
                 allow me --create-bucket, then with its exports: aws{} --endpoint-url {} s3 ls",
                ca_bundle(ca.as_deref()),
                urls[0]
            );
            if urls.len() > 1 {
                println!(
                    "{} edges, all following the store's change feed: {}",
                    urls.len(),
                    urls.join(" ")
                );
            }
            if let Some(ca) = &ca {
                println!(
                    "HTTPS with the local CA {}: aws --ca-bundle {0} ..., curl --cacert {0} ...",
                    ca.display()
                );
            }
            let edges = futures::future::select_all(running);
            tokio::select! {
                r = store => r,
                (r, _, _) = edges => r,
            }
        }
    }
}

/// A server that has bound its address and runs until SIGINT/SIGTERM.
struct Running {
    url: String,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl std::future::Future for Running {
    type Output = anyhow::Result<()>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.task)
            .poll(cx)
            .map(|joined| Ok(joined??))
    }
}

async fn start_edge(mut config: EdgeConfig, credentials: Credentials) -> anyhow::Result<Running> {
    let tls = TlsFiles::from_config(&config.tls_cert, &config.tls_key);
    let by_name = config.certificates_by_name();
    let bound = bind(config.listen, config.http_listen, tls.as_ref(), &by_name).await?;
    // The port actually bound (`listen` may say 0): redirects to https name it.
    config.listen = bound.addr;
    let origins = config.origins.join(", ");
    let edge = Edge::open(config, credentials)?;
    println!("outpost edge in front of {origins}");
    bound.announce("edge");
    Ok(Running {
        url: bound.url.clone(),
        task: tokio::spawn(edge.serve(bound.listeners, shutdown_signal())),
    })
}

/// Also returns the credentials an edge started alongside signs with: the root key's, or for
/// `laptop` the edge key [`UP_EDGE_KEY`] (created on the first start). `laptop`: started by
/// `outpost up` (with the local CA's path under `--tls`), which shows the credentials and an
/// example command.
async fn start_store(
    config: StoreConfig,
    laptop: Option<Option<&Path>>,
) -> anyhow::Result<(Running, Credentials)> {
    let (root, generated) = outpost_store::root_credentials(&config)?;
    let tls = TlsFiles::from_config(&config.tls_cert, &config.tls_key);
    let bound = bind(config.listen, config.http_listen, tls.as_ref(), &[]).await?;
    let url = bound.url.clone();
    let credentials_file = outpost_store::credentials_path(&config.data_dir);
    let from_file = config.access_key_id.is_none();
    let exports = outpost_store::shell_exports(&root, &config.region);
    let data_dir = config.data_dir.clone();
    let store = Store::open(config, root.clone()).await?;
    let edge_key = match laptop {
        Some(_) => store.edge_key(UP_EDGE_KEY).await?,
        None => root,
    };
    if generated {
        println!(
            "Generated root credentials, saved in {}; paste into your shell:",
            credentials_file.display()
        );
        print!("{exports}");
    } else if laptop.is_some() && from_file {
        // A laptop restart: the same keys as before, shown again so a new shell can use them.
        println!("Root credentials (from {}):", credentials_file.display());
        print!("{exports}");
    } else if from_file {
        println!(
            "Root credentials: eval \"$(outpost credentials --data {})\"",
            outpost_store::shell_quote(&data_dir.display().to_string())
        );
    }
    if let Some(ca) = laptop {
        let ca = ca_bundle(ca);
        println!("Try: aws{ca} --endpoint-url {url} s3 mb s3://my-bucket");
    }
    bound.announce("store");
    let running = Running {
        url,
        task: tokio::spawn(store.serve(bound.listeners, shutdown_signal())),
    };
    Ok((running, edge_key))
}

/// The edge key of `outpost up`'s edge.
const UP_EDGE_KEY: &str = "outpost-up-edge";

/// ` --ca-bundle PATH` for the example commands when the servers use a local CA.
fn ca_bundle(ca: Option<&Path>) -> String {
    ca.map(|ca| {
        format!(
            " --ca-bundle {}",
            outpost_store::shell_quote(&ca.display().to_string())
        )
    })
    .unwrap_or_default()
}

/// The listeners of a server: `listen` (TLS when a certificate pair is configured) and the
/// plain `http_listen` beside it.
struct Bound {
    listeners: Vec<Listener>,
    /// The address of `listen`.
    addr: SocketAddr,
    /// The URL of `listen`.
    url: String,
    /// The URL of `http_listen`.
    plain: Option<String>,
}

impl Bound {
    fn announce(&self, kind: &str) {
        if let Some(plain) = &self.plain {
            println!("outpost {kind} also listening on {plain}");
        }
        // Scripts and tests wait for this line; keep its wording.
        println!("outpost {kind} listening on {}", self.url);
    }
}

/// Binds the listeners; `by_name`: the pairs served instead of `tls` to clients asking for
/// those names (SNI).
async fn bind(
    listen: SocketAddr,
    http_listen: Option<SocketAddr>,
    tls: Option<&TlsFiles>,
    by_name: &[(String, TlsFiles)],
) -> anyhow::Result<Bound> {
    let tcp = |addr: SocketAddr| async move {
        TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))
    };
    let main = tcp(listen).await?;
    let addr = main.local_addr()?;
    let Some(files) = tls else {
        return Ok(Bound {
            listeners: vec![Listener::plain(main)],
            addr,
            url: format!("http://{addr}"),
            plain: None,
        });
    };
    let certificates = Certificates::load(files, by_name)?;
    certificates.watch();
    let mut listeners = vec![Listener {
        tcp: main,
        tls: Some(tls::server_config(certificates)?),
    }];
    let mut plain = None;
    if let Some(http_listen) = http_listen {
        let extra = tcp(http_listen).await?;
        plain = Some(format!("http://{}", extra.local_addr()?));
        listeners.push(Listener::plain(extra));
    }
    Ok(Bound {
        listeners,
        addr,
        url: format!("https://{addr}"),
        plain,
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example that deploy/ ships must stay a valid configuration.
    #[test]
    fn the_deploy_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/outpost.toml");
        let config = read_config(&path).unwrap();
        config.store.validate().unwrap();
        config.edge.validate().unwrap();
        assert!(config.edge.distributions[0].behaviors[0].write_through);
    }
}
