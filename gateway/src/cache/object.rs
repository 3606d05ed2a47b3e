//! What a request looks up: an object's key in the cache and the origin request that fills it.

use std::ops::Range;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method};

use super::Cache;
use super::key;
use super::read::{self, Found, Source};
use crate::config::Behavior;
use crate::origin::{self, OriginGroup, OriginRequest};

/// An object served through the cache: its key there and where a fill fetches it.
pub struct Object {
    pub cache_key: String,
    pub source: Arc<Source>,
}

impl Object {
    /// `namespace` keeps apart what must not share entries (S3 face signed / anonymous, each
    /// distribution); only the query parameters in `query_keys` (`*` = all) select the
    /// response and travel to the origin.
    pub fn new(
        origins: &Arc<OriginGroup>,
        namespace: &str,
        bucket: &str,
        key: &str,
        query: Option<&str>,
        behavior: &Arc<Behavior>,
        anonymous: bool,
    ) -> Object {
        let cache_key = key::cache_key(namespace, bucket, key, query, &behavior.query_keys);
        let query = key::selected_query(query, &behavior.query_keys);
        let path_and_query = origin::path(bucket, key, &query);
        // Checksums are always fetched and stored, and shown to clients that ask: one entry
        // serves both kinds of client.
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-checksum-mode", HeaderValue::from_static("ENABLED"));
        let source = Arc::new(Source {
            origin: Arc::clone(origins),
            request: OriginRequest {
                method: Method::GET,
                path_and_query,
                headers,
                anonymous,
                aws_chunked: false,
            },
            behavior: Arc::clone(behavior),
        });
        Object { cache_key, source }
    }

    /// The head for this object (see [`read::lookup`]); `hint` is the byte range the client
    /// wants first.
    pub async fn lookup(&self, cache: &Arc<Cache>, hint: Option<Range<u64>>) -> Found {
        read::lookup(cache, &self.source, &self.cache_key, hint).await
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
            Arc::clone(&self.source),
            self.cache_key.clone(),
            Arc::clone(head),
            range,
        )
    }
}
