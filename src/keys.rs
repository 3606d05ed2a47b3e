//! `outpost key ...`: access keys and their grants, through a running store's admin API
//! (`/_outpost/admin/`, README "Keys and grants"), signed with the root credentials from the
//! environment (`eval "$(outpost credentials)"` sets them).
//!
//! ```text
//!   outpost key create NAME [--edge]      prints the key as export lines, once
//!   outpost key list | info NAME | delete NAME
//!   outpost key allow NAME --bucket B [--read] [--write] [--owner]
//!   outpost key deny  NAME --bucket B [--read] [--write] [--owner]
//!   outpost key allow NAME --create-bucket      (and deny)
//! ```

use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use axum::body::Body;
use http::{HeaderMap, Method};
use http_body_util::BodyExt;
use outpost_gateway::origin::{Signer, pool};
use outpost_store::s3::auth::{Credentials, SecretKey};
use serde_json::{Value, json};
use sha2::Digest;

#[derive(clap::Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
    /// The store's URL.
    #[arg(long, global = true, default_value = "http://127.0.0.1:9000")]
    endpoint: String,
    /// Print the admin API's JSON answer instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum KeyCommand {
    /// Create a key with no rights; prints it as `export` lines (its secret only this once).
    Create {
        name: String,
        /// A key for an edge gateway.
        #[arg(long)]
        edge: bool,
    },
    /// List the keys.
    List,
    /// Show a key: its grants, whether it may create buckets, when it was created.
    Info { name: String },
    /// Delete a key and its grants (requests signed with it are refused at once).
    Delete { name: String },
    /// Give a key rights on a bucket, or the right to create buckets.
    Allow(Rights),
    /// Take rights away from a key.
    Deny(Rights),
}

impl KeyCommand {
    /// The key the command names (it goes into the admin API's path).
    fn name(&self) -> Option<&str> {
        match self {
            KeyCommand::Create { name, .. }
            | KeyCommand::Info { name }
            | KeyCommand::Delete { name }
            | KeyCommand::Allow(Rights { name, .. })
            | KeyCommand::Deny(Rights { name, .. }) => Some(name),
            KeyCommand::List => None,
        }
    }
}

#[derive(clap::Args)]
struct Rights {
    name: String,
    /// The bucket the rights are on.
    #[arg(long, required_unless_present = "create_bucket")]
    bucket: Option<String>,
    /// Read objects and list the bucket.
    #[arg(long, requires = "bucket")]
    read: bool,
    /// Write and delete objects.
    #[arg(long, requires = "bucket")]
    write: bool,
    /// The bucket's settings (policy, website, CORS...) and its deletion.
    #[arg(long, requires = "bucket")]
    owner: bool,
    /// The right to create buckets (which the key then owns).
    #[arg(long)]
    create_bucket: bool,
}

impl Rights {
    fn body(&self) -> anyhow::Result<Value> {
        if self.bucket.is_some() && !(self.read || self.write || self.owner) {
            bail!("name the rights on the bucket: --read, --write and/or --owner");
        }
        let mut body = json!({ "create_bucket": self.create_bucket });
        if let Some(bucket) = &self.bucket {
            body["bucket"] = json!(bucket);
            body["read"] = json!(self.read);
            body["write"] = json!(self.write);
            body["owner"] = json!(self.owner);
        }
        Ok(body)
    }
}

pub async fn run(args: KeyArgs) -> anyhow::Result<()> {
    if let Some(name) = args.command.name() {
        outpost_store::admin::check_name(name).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    }
    let admin = Admin::from_env(&args.endpoint)?;
    let (method, path, body) = match &args.command {
        KeyCommand::Create { name, edge } => (
            Method::POST,
            "keys".to_owned(),
            json!({ "name": name, "edge": edge }),
        ),
        KeyCommand::List => (Method::GET, "keys".to_owned(), Value::Null),
        KeyCommand::Info { name } => (Method::GET, format!("keys/{name}"), Value::Null),
        KeyCommand::Delete { name } => (Method::DELETE, format!("keys/{name}"), Value::Null),
        KeyCommand::Allow(r) => (Method::POST, format!("keys/{}/allow", r.name), r.body()?),
        KeyCommand::Deny(r) => (Method::POST, format!("keys/{}/deny", r.name), r.body()?),
    };
    let mut answer = admin.call(method, &path, &body).await?;
    if let Some(fields) = answer.as_object_mut() {
        fields.remove("request_id");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    match &args.command {
        KeyCommand::Create { name, .. } => {
            let created = Credentials {
                access_key_id: text(&answer, "access_key_id").to_owned(),
                secret: SecretKey::new(text(&answer, "secret_access_key")),
            };
            eprintln!("Created key {name}; its secret is shown this once:");
            print!("{}", outpost_store::shell_exports(&created, &admin.region));
        }
        KeyCommand::List => print!("{}", list_text(&answer)),
        KeyCommand::Delete { name } => println!("Deleted key {name}."),
        KeyCommand::Info { .. } | KeyCommand::Allow(_) | KeyCommand::Deny(_) => {
            print!("{}", info_text(&answer))
        }
    }
    Ok(())
}

fn text<'a>(value: &'a Value, field: &str) -> &'a str {
    value[field].as_str().unwrap_or("")
}

fn yes(value: &Value, field: &str) -> &'static str {
    if value[field].as_bool().unwrap_or(false) {
        "yes"
    } else {
        "no"
    }
}

fn list_text(answer: &Value) -> String {
    let keys = answer["keys"].as_array().cloned().unwrap_or_default();
    if keys.is_empty() {
        return "No keys (the root key is not listed).\n".into();
    }
    let width = keys
        .iter()
        .map(|k| text(k, "name").len())
        .max()
        .unwrap_or(0)
        .max(4);
    let mut out = format!(
        "{:width$}  {:22}  {:4}  {:13}  CREATED\n",
        "NAME", "ACCESS KEY ID", "EDGE", "CREATE-BUCKET"
    );
    for k in &keys {
        out += &format!(
            "{:width$}  {:22}  {:4}  {:13}  {}\n",
            text(k, "name"),
            text(k, "access_key_id"),
            yes(k, "edge"),
            yes(k, "create_bucket"),
            text(k, "created"),
        );
    }
    out
}

fn info_text(key: &Value) -> String {
    let mut out = format!(
        "Name:           {}\nAccess key id:  {}\nEdge key:       {}\nCreate bucket:  {}\nCreated:        {}\n",
        text(key, "name"),
        text(key, "access_key_id"),
        yes(key, "edge"),
        yes(key, "create_bucket"),
        text(key, "created"),
    );
    let grants = key["grants"].as_array().cloned().unwrap_or_default();
    if grants.is_empty() {
        out += "Grants:         none\n";
    } else {
        out += "Grants:\n";
        for g in &grants {
            let rights: Vec<&str> = ["read", "write", "owner"]
                .into_iter()
                .filter(|r| g[*r].as_bool().unwrap_or(false))
                .collect();
            out += &format!("  {}  {}\n", text(g, "bucket"), rights.join(" "));
        }
    }
    out
}

/// The admin API of one store, signed with the root credentials (also what `outpost
/// invalidate` posts with).
pub(crate) struct Admin {
    endpoint: String,
    host: String,
    region: String,
    signer: Signer,
    tls: std::sync::Arc<rustls::ClientConfig>,
}

impl Admin {
    pub(crate) fn from_env(endpoint: &str) -> anyhow::Result<Admin> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (Some(id), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
        else {
            bail!(
                "this command needs the store's root credentials in AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY: eval \"$(outpost credentials)\" sets them"
            );
        };
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let uri: http::Uri = endpoint
            .parse()
            .with_context(|| format!("--endpoint {endpoint}"))?;
        // No path: calls are signed for the paths the store serves them at.
        let pathless = uri.path_and_query().is_none_or(|p| p.as_str() == "/");
        let (Some("http" | "https"), Some(authority), true) =
            (uri.scheme_str(), uri.authority(), pathless)
        else {
            bail!("--endpoint {endpoint}: expected http(s)://HOST:PORT");
        };
        // https: the system's roots, and the CA in AWS_CA_BUNDLE as aws-cli reads it (the one
        // `outpost up --tls` prints).
        let ca = var("AWS_CA_BUNDLE").map(std::path::PathBuf::from);
        Ok(Admin {
            tls: outpost_gateway::origin::tls::client_config(ca.as_deref(), false)?,
            host: authority.to_string(),
            signer: Signer::new(&id, &secret, &region),
            endpoint,
            region,
        })
    }

    /// One admin call; its JSON answer, or the store's error as an error.
    async fn call(&self, method: Method, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.call_at(method, &format!("/_outpost/admin/{path}"), body)
            .await
    }

    /// A JSON call at `path` of the store, its body's hash signed.
    pub(crate) async fn call_at(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let body = match body {
            Value::Null => Vec::new(),
            body => serde_json::to_vec(body)?,
        };
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, self.host.parse()?);
        if !body.is_empty() {
            headers.insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
        }
        // The admin API takes only signed bodies: the signature covers the body's hash.
        let hash = hex::encode(sha2::Sha256::digest(&body));
        self.signer
            .sign(&method, path, &mut headers, &hash, SystemTime::now())
            .map_err(anyhow::Error::msg)?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.endpoint))
            .body(Body::from(body))?;
        *request.headers_mut() = headers;
        let client = pool(Duration::from_secs(10), &self.tls);
        let response = tokio::time::timeout(Duration::from_secs(60), client.request(request))
            .await
            .with_context(|| format!("{} did not answer in time", self.endpoint))?
            .with_context(|| format!("cannot reach the store at {}", self.endpoint))?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        let answer: Option<Value> = serde_json::from_slice(&bytes).ok();
        match answer {
            Some(answer) if status.is_success() => Ok(answer),
            Some(error) if error["code"].is_string() => bail!(
                "{} ({}, HTTP {})",
                text(&error, "message"),
                text(&error, "code"),
                status.as_u16()
            ),
            _ => bail!(
                "{} answered HTTP {status}, not the admin API's JSON (is it an Outpost store?): {}",
                self.endpoint,
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            ),
        }
    }
}
