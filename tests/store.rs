//! End-to-end tests of `outpost store`: a real server process on 127.0.0.1:0 per test, driven by
//! the `aws-sdk-s3` client and by a raw signed-request helper (tests/common). One test binary so
//! the SDK is linked once; one file per area under tests/store/.
//!
//! Run: `cargo test --test store` (add `-- --nocapture` for the large-object test's numbers).
//! The 1 GiB streaming-memory test and the SIGKILL crash test are ordinary tests here; select
//! them with `cargo test --test store streaming_memory` / `crash`.

#[path = "common/mod.rs"]
mod common;

#[path = "store/access_log.rs"]
mod access_log;
#[path = "store/auth.rs"]
mod auth;
#[path = "store/aws_behaviours.rs"]
mod aws_behaviours;
#[path = "store/aws_differences.rs"]
mod aws_differences;
#[path = "store/buckets.rs"]
mod buckets;
#[path = "store/checksums.rs"]
mod checksums;
#[path = "store/cli.rs"]
mod cli;
#[path = "store/complete_retry.rs"]
mod complete_retry;
#[path = "store/conditional_writes.rs"]
mod conditional_writes;
#[path = "store/cors.rs"]
mod cors;
#[path = "store/crash.rs"]
mod crash;
#[path = "store/crash_small.rs"]
mod crash_small;
#[path = "store/errors.rs"]
mod errors;
#[path = "store/feed.rs"]
mod feed;
#[path = "store/grants.rs"]
mod grants;
#[path = "store/key_cli.rs"]
mod key_cli;
#[path = "store/keys.rs"]
mod keys;
#[path = "store/listing.rs"]
mod listing;
#[path = "store/multipart.rs"]
mod multipart;
#[path = "store/objects.rs"]
mod objects;
#[path = "store/post_form_fields.rs"]
mod post_form_fields;
#[path = "store/post_object.rs"]
mod post_object;
#[path = "store/reads.rs"]
mod reads;
#[path = "store/streaming_memory.rs"]
mod streaming_memory;
#[path = "store/tls.rs"]
mod tls;
