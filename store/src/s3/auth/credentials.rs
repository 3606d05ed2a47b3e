//! Access keys and secrets. Secrets never print ([`SecretKey`] redacts itself).

use std::collections::HashMap;

use crate::access::edge::PublishedView;
use crate::engine::keys::KeyView;
pub use crate::secret::SecretKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret: SecretKey,
}

/// The access keys a server accepts: its root keys (configured or from the credentials file;
/// every right is theirs) and, at the store, the keys in the index, seen live: a key is
/// accepted once its creation has committed and refused once its deletion has. At an edge,
/// the keys the store publishes to it, as signing keys only ([`PublishedView`]).
#[derive(Clone, Default)]
pub struct Keyring {
    root: HashMap<String, SecretKey>,
    index: Option<KeyView>,
    published: Option<PublishedView>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("root", &self.root.keys().collect::<Vec<_>>())
            .field("index", &self.index.is_some())
            .field("published", &self.published.is_some())
            .finish()
    }
}

impl Keyring {
    /// A keyring of root keys only.
    pub fn new(creds: impl IntoIterator<Item = Credentials>) -> Self {
        Keyring {
            root: creds
                .into_iter()
                .map(|c| (c.access_key_id, c.secret))
                .collect(),
            index: None,
            published: None,
        }
    }

    /// Also accepts the keys an edge's published document holds (their signing keys).
    pub fn with_published(mut self, published: PublishedView) -> Self {
        self.published = Some(published);
        self
    }

    /// Does any source know `access_key_id`?
    pub fn knows(&self, access_key_id: &str) -> bool {
        self.secret(access_key_id).is_some()
            || self
                .published
                .as_ref()
                .and_then(PublishedView::load)
                .is_some_and(|p| p.knows(access_key_id))
    }

    /// The SigV4 signing key of `access_key_id` for `date` (`YYYYMMDD`), `region` and `s3`:
    /// derived from its secret, or as published for that date and region.
    pub fn signing_key(&self, access_key_id: &str, date: &str, region: &str) -> Option<[u8; 32]> {
        if let Some(secret) = self.secret(access_key_id) {
            return Some(super::sigv4::signing_key(
                secret.expose(),
                date,
                region,
                "s3",
            ));
        }
        let published = self.published.as_ref()?.load()?;
        (published.region == region)
            .then(|| published.signing_key(access_key_id, date))
            .flatten()
    }

    /// Also accepts the keys of the index's live directory.
    pub fn with_index(mut self, keys: KeyView) -> Self {
        self.index = Some(keys);
        self
    }

    /// The secret to check a signature by `access_key_id` with (a root key wins over an index
    /// key of the same id); SigV2 needs it. Published keys have none.
    pub fn secret(&self, access_key_id: &str) -> Option<SecretKey> {
        if let Some(secret) = self.root.get(access_key_id) {
            return Some(secret.clone());
        }
        let directory = self.index.as_ref()?.load();
        Some(directory.by_access_key(access_key_id)?.secret.clone())
    }

    /// Is this one of the root keys (every right)?
    pub fn is_root(&self, access_key_id: &str) -> bool {
        self.root.contains_key(access_key_id)
    }
}
