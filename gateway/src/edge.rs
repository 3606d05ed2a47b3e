//! The edge's context: its configuration, cache, origin group, upload spool, sites and
//! metrics, opened once and shared by every request.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use outpost_store::access::edge::PublishedView;
use outpost_store::s3::auth::{Credentials, Keyring};

use outpost_store::s3::context::Access;

use crate::access;
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
    /// The edge's own key (its only "root" key: it signs toward the origin with it) and the
    /// keys the store publishes to it: the edge checks signatures with the same rules as the
    /// store.
    pub keyring: Keyring,
    /// What the store publishes to an edge key ([`crate::access`]): empty until the first
    /// poll answers, and always at an edge that runs with the root key.
    pub published: PublishedView,
    /// Keeps `published` current.
    pub poller: Arc<access::Poller>,
    pub cache: Arc<Cache>,
    /// The S3 face's behaviour: the default one, keyed on every query parameter (partNumber,
    /// versionId, response-* all change the answer), never compressed.
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
        let published = PublishedView::default();
        let poll_group = OriginGroup::new(&config.origins, settings())?;
        Ok(Arc::new(Edge {
            poller: Arc::new(access::Poller::new(poll_group, published.clone())),
            keyring: Keyring::new([credentials]).with_published(published.clone()),
            published,
            cache: Arc::new(cache),
            s3_behavior: Arc::new(Behavior {
                query_keys: vec!["*".into()],
                // S3 clients get the stored bytes: one that sees `Content-Encoding: gzip`
                // takes the object as stored gzipped (rclone then refuses to read it).
                compress: false,
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

    /// An object on the S3 face, for a requester of `access`. Readers the origin decides for
    /// get their own entries, fetched without the edge's signature, so the origin's policy
    /// decides what they may see; everyone else shares entries (the edge decided each one
    /// first), filled on the behalf of the requester whose miss fills them.
    pub(crate) fn s3_object<'a>(
        &self,
        parts: &'a http::request::Parts,
        bucket: &'a str,
        key: &'a str,
        access: &Access,
    ) -> Object<'a> {
        let mut headers = http::HeaderMap::new();
        let anonymous = self.relay_as(parts, access, &mut headers);
        self.s3_entry(bucket, key, parts.uri.query(), anonymous)
            .on_behalf(headers)
    }

    /// The S3 face's entry for an object (`anonymous`: fetched unsigned, in entries of its
    /// own), filled by the edge for itself unless told on whose behalf.
    pub(crate) fn s3_entry<'a>(
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

    /// How a request of `access` is relayed ([`access::relay_as`]): true for unsigned.
    pub(crate) fn relay_as(
        &self,
        parts: &http::request::Parts,
        access: &Access,
        headers: &mut http::HeaderMap,
    ) -> bool {
        let trusted = &self.config.trusted_proxies;
        access::relay_as(&self.keyring, trusted, parts, access, headers)
    }
}
