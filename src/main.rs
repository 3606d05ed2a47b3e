//! `outpost`: the one binary. `outpost store` runs the S3-compatible store; `outpost up` is the
//! laptop all-in-one (today: a store with a local data directory and printed credentials);
//! `outpost edge` arrives with the gateway.
//!
//! Configuration is layered: TOML file (`--config`) → environment (`OUTPOST_*`) → flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
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
    /// Run everything on one machine (a store on local disk) and print how to use it.
    Up(StoreArgs),
    /// Run an edge gateway (not available yet).
    Edge,
}

/// Flags (and their environment variables) that override the config file.
#[derive(Args)]
struct StoreArgs {
    /// Address to listen on [default: 127.0.0.1:9000].
    #[arg(long, env = "OUTPOST_LISTEN")]
    listen: Option<SocketAddr>,
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
}

impl StoreArgs {
    fn into_config(self) -> anyhow::Result<StoreConfig> {
        let mut cfg = match &self.config {
            Some(path) => read_config(path)?.store,
            None => StoreConfig::default(),
        };
        macro_rules! set {
            ($($flag:ident => $field:ident),*) => {$(
                if let Some(v) = self.$flag { cfg.$field = v.into(); }
            )*};
        }
        set!(listen => listen, data => data_dir, region => region, max_object_size => max_object_size);
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

fn read_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,outpost::access=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Store(args) => run_store(args.into_config()?, false).await,
        Command::Up(args) => run_store(args.into_config()?, true).await,
        Command::Edge => {
            anyhow::bail!("`outpost edge` is not available yet: the edge gateway is being built")
        }
    }
}

async fn run_store(config: StoreConfig, laptop: bool) -> anyhow::Result<()> {
    let (root, generated) = outpost_store::root_credentials(&config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    let credentials_file = config.data_dir.join("credentials.toml");
    let from_file = config.access_key_id.is_none();
    let store = Store::open(config, root.clone()).await?;
    if generated {
        println!(
            "Generated root credentials, saved in {}:",
            credentials_file.display()
        );
        println!("  AWS_ACCESS_KEY_ID={}", root.access_key_id);
        println!("  AWS_SECRET_ACCESS_KEY={}", root.secret.expose());
    }
    if laptop {
        println!("Try: aws --endpoint-url {url} s3 mb s3://my-bucket");
        if from_file {
            println!("(credentials: {})", credentials_file.display());
        }
    }
    // Scripts and tests wait for this line; keep its wording.
    println!("outpost store listening on {url}");
    store.serve(listener, shutdown_signal()).await?;
    Ok(())
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
