//! What a request looks up: an object's key in the cache and the origin request that fills it.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderValue, Method};

use super::Cache;
use super::key;
use super::read::{self, Found, Source};
use crate::config::Behavior;
use crate::origin::{self, OriginGroup, OriginRequest};

/// An object served through the cache: its key there and where a fill fetches it. A hit needs
/// only the key: the origin request ([`Source`]) is built the first time a miss, a bypass or
/// a stream from slices asks for it, from the borrowed request parts.
pub struct Object<'a> {
    pub cache_key: String,
    origins: Arc<OriginGroup>,
    pub behavior: Arc<Behavior>,
    bucket: Cow<'a, str>,
    key: Cow<'a, str>,
    query: Option<Cow<'a, str>>,
    anonymous: bool,
    /// Headers its fills carry besides the edge's (who the edge fetches for).
    on_behalf: HeaderMap,
    source: OnceLock<Arc<Source>>,
}

impl<'a> Object<'a> {
    /// `namespace` keeps apart what must not share entries (S3 face signed / anonymous, each
    /// distribution); only the query parameters in `query_keys` (`*` = all) select the
    /// response and travel to the origin.
    pub fn new(
        origins: &Arc<OriginGroup>,
        namespace: &str,
        bucket: &'a str,
        key: &'a str,
        query: Option<&'a str>,
        behavior: &Arc<Behavior>,
        anonymous: bool,
    ) -> Object<'a> {
        Object {
            cache_key: key::cache_key(namespace, bucket, key, query, &behavior.query_keys),
            origins: Arc::clone(origins),
            behavior: Arc::clone(behavior),
            bucket: Cow::Borrowed(bucket),
            key: Cow::Borrowed(key),
            query: query.map(Cow::Borrowed),
            anonymous,
            on_behalf: HeaderMap::new(),
            source: OnceLock::new(),
        }
    }

    /// Its fills carry `headers` (the client the edge fetches for: [`crate::access`]).
    pub fn on_behalf(mut self, headers: HeaderMap) -> Object<'a> {
        self.on_behalf = headers;
        self
    }

    /// The same object, owning what it borrowed (for a task of its own).
    pub fn into_owned(self) -> Object<'static> {
        let owned = |s: Cow<'a, str>| Cow::Owned(s.into_owned());
        Object {
            cache_key: self.cache_key,
            origins: self.origins,
            behavior: self.behavior,
            bucket: owned(self.bucket),
            key: owned(self.key),
            query: self.query.map(owned),
            anonymous: self.anonymous,
            on_behalf: self.on_behalf,
            source: self.source,
        }
    }

    /// Where a fill fetches this object: the whole object, GET, no range or conditions.
    pub fn source(&self) -> &Arc<Source> {
        self.source.get_or_init(|| {
            let query = key::selected_query(self.query.as_deref(), &self.behavior.query_keys);
            let path_and_query = origin::path(&self.bucket, &self.key, &query);
            // Checksums are always fetched and stored, and shown to clients that ask: one
            // entry serves both kinds of client.
            let mut headers = self.on_behalf.clone();
            headers.insert("x-amz-checksum-mode", HeaderValue::from_static("ENABLED"));
            Arc::new(Source {
                origin: Arc::clone(&self.origins),
                request: OriginRequest {
                    method: Method::GET,
                    path_and_query,
                    headers,
                    anonymous: self.anonymous,
                    aws_chunked: false,
                },
                behavior: Arc::clone(&self.behavior),
            })
        })
    }

    /// The head for this object (see [`read::lookup`]); `hint` is the byte range the client
    /// wants first.
    pub async fn lookup(&self, cache: &Arc<Cache>, hint: Option<Range<u64>>) -> Found {
        read::lookup(
            cache,
            &self.origins,
            || self.source(),
            &self.cache_key,
            hint,
        )
        .await
    }

    /// The body bytes `range` of `head`, from slices and fills.
    pub fn body(
        &self,
        cache: &Arc<Cache>,
        head: &Arc<super::Head>,
        range: Range<u64>,
    ) -> outpost_store::engine::ByteStream {
        read::body(
            Arc::clone(cache),
            Arc::clone(self.source()),
            self.cache_key.clone(),
            Arc::clone(head),
            range,
        )
    }
}
