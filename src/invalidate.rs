//! `outpost invalidate [--endpoint URL] PATH...`: one call at the store, and every edge that
//! follows its change feed drops the paths (README "Change feed"). Signed with the root
//! credentials from the environment, as `outpost key`.

use http::Method;
use serde_json::json;

use crate::keys::Admin;

#[derive(clap::Args)]
pub struct InvalidateArgs {
    /// The store's URL.
    #[arg(long, default_value = "http://127.0.0.1:9000")]
    endpoint: String,
    /// `/bucket/key`, or `/bucket/prefix*` for every key starting so.
    #[arg(required = true)]
    paths: Vec<String>,
}

pub async fn run(args: InvalidateArgs) -> anyhow::Result<()> {
    let store = Admin::from_env(&args.endpoint)?;
    let body = json!({ "paths": args.paths });
    let answer = store
        .call_at(Method::POST, outpost_store::feed::INVALIDATIONS_PATH, &body)
        .await?;
    println!(
        "Invalidation {} accepted as change {}: every edge following {} drops {}",
        answer["request_id"].as_str().unwrap_or("?"),
        answer["seq"],
        args.endpoint,
        args.paths.join(" ")
    );
    Ok(())
}
