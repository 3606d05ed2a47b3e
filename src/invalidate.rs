//! `outpost invalidate [--endpoint URL] [--wait SECS] PATH...`: one call at the store, and every
//! edge that follows its change feed drops the paths (README "Change feed"). Signed with the
//! root credentials from the environment, as `outpost key`.
//!
//! Then it watches the store's list of feed subscribers (edges confirm to the store what they
//! applied) until every edge has confirmed the invalidation or `--wait` has passed, and prints
//! one line per edge: applied within how long of the store's acceptance, or not confirmed
//! (and why, when the store knows: the edge is off the feed). The invalidation stands either
//! way: an edge that was away resumes the feed, or revalidates, when it is back.

use std::time::{Duration, Instant, SystemTime};

use http::Method;
use outpost_store::feed::{INVALIDATIONS_PATH, SUBSCRIBERS_PATH};
use outpost_store::s3::xml::parse_iso8601;
use serde_json::{Value, json};

use crate::keys::Admin;

/// How often the store's subscribers are read while waiting.
const POLL: Duration = Duration::from_millis(20);

#[derive(clap::Args)]
pub struct InvalidateArgs {
    /// The store's URL.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    endpoint: String,
    /// Seconds to wait for the edges' confirmations (0: print the invalidation id only).
    #[arg(long, default_value_t = 5)]
    wait: u64,
    /// `/bucket/key`, or `/bucket/prefix*` for every key starting so.
    #[arg(required = true)]
    paths: Vec<String>,
}

pub async fn run(args: InvalidateArgs) -> anyhow::Result<()> {
    let store = Admin::from_env(&args.endpoint)?;
    let body = json!({ "paths": args.paths });
    let answer = store
        .call_at(Method::POST, INVALIDATIONS_PATH, &body)
        .await?;
    println!(
        "Invalidation {} accepted as change {}: every edge following {} drops {}",
        answer["request_id"].as_str().unwrap_or("?"),
        answer["seq"],
        args.endpoint,
        args.paths.join(" ")
    );
    let (Some(seq), wait) = (answer["seq"].as_u64(), Duration::from_secs(args.wait)) else {
        return Ok(());
    };
    if wait.is_zero() {
        return Ok(());
    }
    let accepted = answer["time"].as_str().and_then(parse_iso8601);
    let deadline = Instant::now() + wait;
    let subscribers = loop {
        let listed = match store
            .call_at(Method::GET, SUBSCRIBERS_PATH, &Value::Null)
            .await
        {
            Ok(listed) => listed,
            Err(e) => {
                println!("  (what each edge did is unknown: {e:#})");
                return Ok(());
            }
        };
        let subscribers = listed["subscribers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let pending = subscribers.iter().any(|s| !confirmed(s, seq));
        if !pending || Instant::now() >= deadline {
            break subscribers;
        }
        tokio::time::sleep(POLL).await;
    };
    if subscribers.is_empty() {
        println!("  no edge follows the feed now");
    }
    for s in &subscribers {
        println!("  {}: {}", name(s), outcome(s, seq, accepted, args.wait));
    }
    Ok(())
}

fn confirmed(subscriber: &Value, seq: u64) -> bool {
    subscriber["applied"].as_u64().is_some_and(|a| a >= seq)
}

/// `edge URL (key NAME)`, or the reader's address for one that did not name itself.
fn name(s: &Value) -> String {
    let key = s["key"].as_str().unwrap_or("?");
    match (s["edge"].as_str(), s["peer"].as_str()) {
        (Some(edge), _) => format!("edge {edge} (key {key})"),
        (None, Some(peer)) => format!("reader at {peer} (key {key})"),
        (None, None) => format!("reader {} (key {key})", s["id"]),
    }
}

fn outcome(s: &Value, seq: u64, accepted: Option<SystemTime>, wait: u64) -> String {
    if confirmed(s, seq) {
        let at = s["applied_at"].as_str().and_then(parse_iso8601);
        return match (accepted, at) {
            (Some(accepted), Some(at)) => {
                let ms = at.duration_since(accepted).unwrap_or_default().as_millis();
                format!("applied within {ms} ms")
            }
            _ => "applied".into(),
        };
    }
    let why = match (s["left_at"].as_str(), s["applied"].as_u64()) {
        (Some(left), _) => format!("off the feed since {left}"),
        (None, Some(last)) => format!("connected; confirmed up to change {last}"),
        (None, None) => "connected; confirms nothing".into(),
    };
    format!("not confirmed within {wait} s ({why})")
}
