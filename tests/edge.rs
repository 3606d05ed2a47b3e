//! End-to-end tests of `outpost edge`: a real store and a real edge process on 127.0.0.1:0,
//! driven by `aws-sdk-s3` and raw signed requests. Origin traffic is read from the store's own
//! metrics; time moves through the edge's test clock (`test_clock = true`), never by sleeping.
//!
//! Run: `cargo test --test edge`.

#[path = "common/mod.rs"]
mod common;

#[path = "edge/access_log.rs"]
mod access_log;
#[path = "edge/anonymous_uploads.rs"]
mod anonymous_uploads;
#[path = "edge/bypass.rs"]
mod bypass;
#[path = "edge/cache.rs"]
mod cache;
#[path = "edge/complete_retry.rs"]
mod complete_retry;
#[path = "edge/conditionals.rs"]
mod conditionals;
#[path = "edge/cors.rs"]
mod cors;
#[path = "edge/cors_browser.rs"]
mod cors_browser;
#[path = "edge/faces.rs"]
mod faces;
#[path = "edge/feed.rs"]
mod feed;
#[path = "edge/feed_network.rs"]
mod feed_network;
#[path = "edge/feed_restart.rs"]
mod feed_restart;
#[path = "edge/https_browser.rs"]
mod https_browser;
#[path = "edge/list_parts.rs"]
mod list_parts;
#[path = "edge/metrics_page.rs"]
mod metrics_page;
#[path = "edge/no_leak.rs"]
mod no_leak;
#[path = "edge/notifications.rs"]
mod notifications;
#[path = "edge/one_fill.rs"]
mod one_fill;
#[path = "edge/origin_tls.rs"]
mod origin_tls;
#[path = "edge/post_browser.rs"]
mod post_browser;
#[path = "edge/post_form_fields.rs"]
mod post_form_fields;
#[path = "edge/post_object.rs"]
mod post_object;
#[path = "edge/ready.rs"]
mod ready;
#[path = "edge/resilience.rs"]
mod resilience;
#[path = "edge/s3_face_bytes.rs"]
mod s3_face_bytes;
#[path = "edge/sites.rs"]
mod sites;
#[path = "edge/sni.rs"]
mod sni;
#[path = "edge/tls.rs"]
mod tls;
#[path = "edge/tls_rotation_load.rs"]
mod tls_rotation_load;
#[path = "edge/uncacheable.rs"]
mod uncacheable;
#[path = "edge/unsupported.rs"]
mod unsupported;
#[path = "edge/uploads.rs"]
mod uploads;
#[path = "edge/viewer_protocol.rs"]
mod viewer_protocol;
