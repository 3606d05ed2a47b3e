//! The edge's context: its configuration, cache, origin group, upload spool, sites and
//! metrics, opened once and shared by every request.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use outpost_store::s3::auth::{Credentials, Keyring};

use crate::cache::Cache;
use crate::cache::object::Object;
use crate::config::{Behavior, EdgeConfig};
use crate::cors::Cors;
use crate::distribution::Distributions;
use crate::metrics::EdgeMetrics;
use crate::origin::{self, OriginGroup, OriginSettings};
use crate::spool::Spool;

/// The namespace of the S3 face's anonymous entries (a bucket's policy decides them).
pub const ANONYMOUS: &str = "anon";

/// Everything a request needs, shared by all requests.
pub struct Edge {
    pub config: EdgeConfig,
    /// The identity clients sign with (the store's root key): the edge checks signatures
    /// with the same rules as the store, and signs toward the origin with the same key.
    pub keyring: Keyring,
    pub cache: Arc<Cache>,
    /// The S3 face's behaviour: the default one, keyed on every query parameter (partNumber,
    /// versionId, response-* all change the answer).
    pub s3_behavior: Arc<Behavior>,
    /// For site paths no behaviour matches.
    pub default_behavior: Arc<Behavior>,
    pub origins: Arc<OriginGroup>,
    /// UploadPart bodies on their way to the store.
    pub spool: Arc<Spool>,
    /// Sites selected by Host header (distributions, website domain).
    pub sites: Distributions,
    /// Buckets' CORS rules and preflight answers, learnt from the origins.
    pub cors: Cors,
    pub metrics: Arc<EdgeMetrics>,
}

impl Edge {
    pub fn open(config: EdgeConfig, credentials: Credentials) -> anyhow::Result<Arc<Edge>> {
        config.validate()?;
        std::fs::create_dir_all(&config.cache_dir)
            .with_context(|| format!("creating {}", config.cache_dir.display()))?;
        let cache = Cache::open(&config)
            .with_context(|| format!("opening the cache in {}", config.cache_dir.display()))?;
        let metrics = Arc::new(EdgeMetrics::new(&cache));
        let tls = origin::tls::client_config(
            config.origin_ca_file.as_deref(),
            config.origin_tls_insecure,
        )?;
        let settings = || OriginSettings {
            tls: Arc::clone(&tls),
            timeout: Duration::from_secs(config.origin_timeout_secs),
            response_timeout: Duration::from_secs(config.origin_response_timeout_secs),
            idle_timeout: Duration::from_secs(config.origin_idle_timeout_secs),
            retry_after: Duration::from_secs(config.origin_retry_secs),
            access_key_id: credentials.access_key_id.clone(),
            secret_access_key: credentials.secret.expose().to_owned(),
            region: config.region.clone(),
        };
        let group = |urls: &[String]| -> anyhow::Result<Arc<OriginGroup>> {
            let observed = Arc::clone(&metrics);
            let group = OriginGroup::new(urls, settings())?.with_observer(Arc::new(
                move |status, elapsed| observed.origin(status, elapsed),
            ));
            Ok(Arc::new(group))
        };
        let origins = group(&config.origins)?;
        let sites = Distributions::new(&config, Arc::clone(&origins), group)?;
        let spool = Spool::open(
            &config.cache_dir,
            config.spool_bytes,
            config.relay_workers,
            Arc::clone(&origins),
        )
        .with_context(|| format!("opening the upload spool in {}", config.cache_dir.display()))?;
        Ok(Arc::new(Edge {
            keyring: Keyring::new([credentials]),
            cache: Arc::new(cache),
            s3_behavior: Arc::new(Behavior {
                query_keys: vec!["*".into()],
                ..config.default_behavior.clone()
            }),
            default_behavior: Arc::new(config.default_behavior.clone()),
            origins,
            spool,
            sites,
            cors: Cors::default(),
            metrics,
            config,
        }))
    }

    /// An object on the S3 face. Anonymous readers get their own entries, fetched without the
    /// edge's signature, so the origin's policy (public bucket or not) decides what they may
    /// see.
    pub(crate) fn s3_object<'a>(
        &self,
        bucket: &'a str,
        key: &'a str,
        query: Option<&'a str>,
        anonymous: bool,
    ) -> Object<'a> {
        let namespace = if anonymous { ANONYMOUS } else { "s3" };
        Object::new(
            &self.origins,
            namespace,
            bucket,
            key,
            query,
            &self.s3_behavior,
            anonymous,
        )
    }
}
