//! Who follows the change feed, for `GET /_outpost/changes/subscribers` (root key) and the
//! report of `outpost invalidate`: one entry per feed opened, named by the key it is signed
//! with and the URL its edge announces ([`EDGE_HEADER`]), with the last number the store sent
//! it and the last one it confirmed applied (`POST /_outpost/changes/applied`).
//!
//! A reader that left stays listed, with the time it left, until the same edge (same key, same
//! URL) follows again or the change retention has passed (it has missed events by then and
//! resyncs anyway): an edge that is down is reported as down, not forgotten. At most
//! [`MAX_LEFT`] of them are kept. The registry lives in memory: a restarted store starts empty,
//! and its edges, whose feeds broke, join again as they reconnect.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::error::{Code, Error, Result};
use crate::s3::xml::iso8601;

/// The header an edge names itself with when it opens the feed: the URL it serves on.
pub const EDGE_HEADER: &str = "x-outpost-edge";
/// The header the feed's answer carries the subscription's id in, for the reader's
/// confirmations.
pub const SUBSCRIPTION_HEADER: &str = "x-outpost-subscription";
/// Readers that left, kept at most.
const MAX_LEFT: usize = 256;
/// The longest URL an edge may announce.
const MAX_URL: usize = 256;

/// The registry (cheap to clone: one shared map).
#[derive(Clone, Default)]
pub struct Subscribers(Arc<Mutex<Inner>>);

#[derive(Default)]
struct Inner {
    next: u64,
    entries: BTreeMap<u64, Entry>,
}

/// One reader of the feed.
#[derive(Debug, Clone)]
struct Entry {
    /// The name of the key the feed is signed with (`root` for the root key).
    key: String,
    access_key_id: String,
    /// The URL the edge announced, if any.
    edge: Option<String>,
    peer: Option<SocketAddr>,
    since: SystemTime,
    /// The last sequence number sent (or, before any, the one the reader resumed after).
    sent: u64,
    applied: Option<(u64, SystemTime)>,
    left: Option<SystemTime>,
}

/// An open feed's place in the registry; marks it left when dropped (the feed ended).
pub struct Subscription {
    subscribers: Subscribers,
    pub id: u64,
}

impl Subscribers {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // An entry is a few plain fields, each written whole: a panic elsewhere leaves none
        // half-written.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A feed opened by `key` (its name and access key id), resuming after `after`; `announced`: the value of
    /// [`EDGE_HEADER`], kept if it is an http(s) URL (an unspecified host, `0.0.0.0` or `[::]`,
    /// is replaced by the peer's address, so that edges listening on every interface are told
    /// apart). It takes the place of a reader of the same key and URL that left.
    pub fn join(
        &self,
        (key, access_key_id): (String, String),
        announced: Option<&str>,
        peer: Option<SocketAddr>,
        after: u64,
        now: SystemTime,
    ) -> Subscription {
        let edge = announced.and_then(|a| edge_url(a, peer));
        let mut inner = self.lock();
        inner.next += 1;
        let id = inner.next;
        inner.entries.retain(|_, e| {
            !(e.left.is_some() && e.edge.is_some() && e.key == key && e.edge == edge)
        });
        inner.entries.insert(
            id,
            Entry {
                key,
                access_key_id,
                edge,
                peer,
                since: now,
                sent: after,
                applied: None,
                left: None,
            },
        );
        Subscription {
            subscribers: self.clone(),
            id,
        }
    }

    /// The reader of subscription `id`, signed with `access_key_id`, has applied every
    /// event up to `seq`. NoSuchSubscription for an id this store never gave (or gave
    /// another key: not told apart, to tell a caller nothing of others' subscriptions).
    pub fn applied(&self, id: u64, access_key_id: &str, seq: u64, now: SystemTime) -> Result<()> {
        let mut inner = self.lock();
        let mine = |e: &&mut Entry| e.access_key_id == access_key_id;
        let Some(entry) = inner.entries.get_mut(&id).filter(mine) else {
            return Err(Error::new(Code::NoSuchSubscription));
        };
        if entry.applied.is_none_or(|(before, _)| seq > before) {
            entry.applied = Some((seq, now));
        }
        Ok(())
    }

    /// Every reader, current and departed, as JSON, oldest first; readers that left longer
    /// than `keep` ago are forgotten first.
    pub fn list(&self, now: SystemTime, keep: Duration) -> Vec<Value> {
        let mut inner = self.lock();
        inner
            .entries
            .retain(|_, e| e.left.is_none_or(|left| left + keep > now));
        let time = |t: Option<SystemTime>| t.map(iso8601);
        let entries = inner.entries.iter().map(|(id, e)| {
            json!({
                "id": id,
                "key": e.key,
                "edge": e.edge,
                "peer": e.peer.map(|p| p.to_string()),
                "since": iso8601(e.since),
                "connected": e.left.is_none(),
                "left_at": time(e.left),
                "sent": e.sent,
                "applied": e.applied.map(|(seq, _)| seq),
                "applied_at": time(e.applied.map(|(_, at)| at)),
            })
        });
        entries.collect()
    }
}

impl Subscription {
    /// Events up to `seq` were handed to the connection.
    pub fn sent(&self, seq: u64) {
        if let Some(entry) = self.subscribers.lock().entries.get_mut(&self.id) {
            entry.sent = seq;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut inner = self.subscribers.lock();
        let Some(mine) = inner.entries.get(&self.id).cloned() else {
            return;
        };
        // The same edge already came back on a new connection (the store noticed this one
        // broke only later): nothing left to report about this one.
        let back = mine.edge.is_some()
            && inner.entries.iter().any(|(id, e)| {
                *id > self.id && e.left.is_none() && e.key == mine.key && e.edge == mine.edge
            });
        if back {
            inner.entries.remove(&self.id);
            return;
        }
        if let Some(entry) = inner.entries.get_mut(&self.id) {
            entry.left = Some(SystemTime::now());
        }
        let left: Vec<u64> = inner
            .entries
            .iter()
            .filter(|(_, e)| e.left.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in left.iter().take(left.len().saturating_sub(MAX_LEFT)) {
            inner.entries.remove(id);
        }
    }
}

/// `scheme://authority` of an announced http(s) URL, its unspecified host replaced by the
/// peer's address; None for anything else.
fn edge_url(announced: &str, peer: Option<SocketAddr>) -> Option<String> {
    if announced.len() > MAX_URL {
        return None;
    }
    let uri: http::Uri = announced.parse().ok()?;
    let scheme = uri
        .scheme_str()
        .filter(|s| matches!(*s, "http" | "https"))?;
    let authority = uri.authority()?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let unspecified = host
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_unspecified());
    match (unspecified, peer, authority.port_u16()) {
        (true, Some(peer), Some(port)) => {
            Some(format!("{scheme}://{}", SocketAddr::new(peer.ip(), port)))
        }
        (true, Some(peer), None) => Some(format!("{scheme}://{}", peer.ip())),
        _ => Some(format!("{scheme}://{authority}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: Duration = Duration::from_secs(3600);

    #[test]
    fn an_announced_url_is_kept_only_if_it_is_one() {
        let peer: SocketAddr = "10.0.0.5:41000".parse().unwrap();
        let url = |a: &str| edge_url(a, Some(peer));
        assert_eq!(
            url("http://127.0.0.1:9081").as_deref(),
            Some("http://127.0.0.1:9081")
        );
        assert_eq!(
            url("https://edge.example:443/x?y").as_deref(),
            Some("https://edge.example:443")
        );
        assert_eq!(
            url("http://0.0.0.0:9080").as_deref(),
            Some("http://10.0.0.5:9080")
        );
        assert_eq!(
            url("http://[::]:9080").as_deref(),
            Some("http://10.0.0.5:9080")
        );
        for bad in [
            "ftp://h",
            "edge-1",
            "",
            "http://",
            &format!("http://{}", "a".repeat(300)),
        ] {
            assert_eq!(url(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn readers_are_listed_while_connected_and_after_they_left() {
        let subscribers = Subscribers::default();
        let now = SystemTime::now();
        let edge = Some("http://127.0.0.1:9081");
        let key = || ("edge".to_owned(), "EDGEKEY".to_owned());
        let a = subscribers.join(key(), edge, None, 4, now);
        let b = subscribers.join(key(), Some("http://127.0.0.1:9082"), None, 4, now);
        a.sent(6);
        subscribers.applied(a.id, "EDGEKEY", 6, now).unwrap();
        subscribers.applied(a.id, "EDGEKEY", 5, now).unwrap();
        assert_eq!(
            subscribers.applied(a.id, "other", 6, now).unwrap_err().code,
            Code::NoSuchSubscription,
            "another key's subscription"
        );
        assert!(subscribers.applied(99, "EDGEKEY", 6, now).is_err());
        let list = subscribers.list(now, KEEP);
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["applied"], 6, "never goes back");
        assert_eq!(list[0]["sent"], 6);
        assert_eq!(list[1]["applied"], Value::Null);

        // A leaves: still listed, until the same edge follows again.
        let a_id = a.id;
        drop(a);
        let list = subscribers.list(now, KEEP);
        assert_eq!(list[0]["id"], a_id);
        assert_eq!(list[0]["connected"], false);
        assert!(list[0]["left_at"].is_string());
        let again = subscribers.join(key(), edge, None, 6, now);
        let list = subscribers.list(now, KEEP);
        assert_eq!(list.len(), 2, "{list:?}");
        assert!(list.iter().all(|e| e["connected"] == true));

        // B reconnects before its old connection is seen to break: the old one goes quietly.
        let b2 = subscribers.join(key(), Some("http://127.0.0.1:9082"), None, 6, now);
        drop(b);
        assert_eq!(subscribers.list(now, KEEP).len(), 2);
        // Departed readers are forgotten after `keep`.
        drop((again, b2));
        assert_eq!(subscribers.list(now, KEEP).len(), 2);
        assert!(subscribers.list(now + KEEP * 2, KEEP).is_empty());
    }
}
