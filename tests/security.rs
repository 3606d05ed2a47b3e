//! End-to-end tests of the holes found when the store and the edge were attacked as a hostile
//! client and an unlucky operator would (issue "Security and robustness"): each file reproduces
//! one attack against real `outpost` processes on 127.0.0.1 and asserts what the client sees
//! and that nothing acknowledged is lost. Fault injection (full disks on tmpfs, origins that
//! hang or answer garbage, fragmented and trickling clients) lives here too.
//!
//! Run: `cargo test --test security`. Tests that need to mount a small filesystem run as root
//! and skip with a message where mounting is not possible.

#[path = "common/mod.rs"]
mod common;

#[path = "security/acl_refusals.rs"]
mod acl_refusals;
#[path = "security/admin_api.rs"]
mod admin_api;
#[path = "security/conditional_delete.rs"]
mod conditional_delete;
#[path = "security/disk_full.rs"]
mod disk_full;
#[path = "security/edge_errors.rs"]
mod edge_errors;
#[path = "security/edge_key_rights.rs"]
mod edge_key_rights;
#[path = "security/edge_keys.rs"]
mod edge_keys;
#[path = "security/edge_own_key.rs"]
mod edge_own_key;
#[path = "security/edge_put_checks.rs"]
mod edge_put_checks;
#[path = "security/edge_routing.rs"]
mod edge_routing;
#[path = "security/fragmented_bodies.rs"]
mod fragmented_bodies;
#[path = "security/fuzz_findings.rs"]
mod fuzz_findings;
#[path = "security/origin_faults.rs"]
mod origin_faults;
#[path = "security/policy_audit.rs"]
mod policy_audit;
#[path = "security/policy_eval.rs"]
mod policy_eval;
#[path = "security/policy_scope.rs"]
mod policy_scope;
#[path = "security/ready.rs"]
mod ready;
#[path = "security/slow_clients.rs"]
mod slow_clients;
#[path = "security/unsigned_headers.rs"]
mod unsigned_headers;
#[path = "security/xml_keys.rs"]
mod xml_keys;
