//! Access keys, their grants, and the buckets they own, in the index with everything else.
//!
//! ```text
//!   keys    name                    → KeyRecord (access key id, secret, edge, create_bucket)
//!   grants  (access_key_id, bucket) → access::Grant (read, write, owner)
//!   buckets name                    → BucketRecord { owner: the creating key's id, ... }
//! ```
//!
//! Every change commits in one transaction, which also reads back the whole [`Directory`]
//! (keys with their grants) as that commit leaves it; once committed, that directory replaces
//! the live one ([`KeyView`]) before the call returns. A key is therefore accepted as soon as
//! its creation is answered and refused as soon as its deletion is, with no index read on the
//! request path. Write transactions are serialised, so directories are numbered in commit
//! order and an older one never replaces a newer one. Changes run on their own task, so a
//! caller that stops waiting cannot leave a commit without its directory installed.
//!
//! A bucket created by a key ([`Engine::create_bucket_for`]) records it as owner and gives it
//! read, write and owner rights in the same transaction (as Garage does). Deleting a key
//! removes its grants; deleting a bucket removes the grants on it (`Engine::delete_bucket`),
//! both in the deleting transaction. The root key is not in the index: the protocol layer
//! gives it every right.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use rand::distr::{Alphanumeric, SampleString};
use redb::{ReadableTable, WriteTransaction};

use super::changes::{self, Change, ChangeKind};
use super::codec;
use super::error::{Error, Kind, Result, What};
use super::index::{self, BUCKETS, BucketRecord, GRANTS, KEYS, KeyRecord};
use super::{BucketSettings, Engine, Inner, objects::detached};
use crate::access::Grant;
use crate::secret::SecretKey;

/// Length of a generated secret: 40 characters, as AWS's (~238 bits from the thread CSPRNG).
const SECRET_LEN: usize = 40;

/// An access key as the index holds it, with its grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub access_key_id: String,
    /// Redacts itself; the admin API shows it once, in the answer that created the key.
    pub secret: SecretKey,
    /// Made for an edge (`outpost key create NAME --edge`).
    pub edge: bool,
    /// May create buckets.
    pub create_bucket: bool,
    pub created: SystemTime,
    /// Rights per bucket name; a bucket it has no right on is absent.
    pub grants: BTreeMap<String, Grant>,
}

impl Key {
    /// The key's rights on `bucket` (none if it holds no grant there).
    pub fn grant(&self, bucket: &str) -> Grant {
        self.grants.get(bucket).copied().unwrap_or_default()
    }
}

/// Every key and its grants as one commit left them.
#[derive(Debug, Default)]
pub struct Directory {
    /// Commit order of the change that produced it (0: as read at open).
    generation: u64,
    by_name: BTreeMap<String, Arc<Key>>,
    by_id: HashMap<String, Arc<Key>>,
}

impl Directory {
    /// The key with this access key id.
    pub fn by_access_key(&self, access_key_id: &str) -> Option<&Arc<Key>> {
        self.by_id.get(access_key_id)
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Key>> {
        self.by_name.get(name)
    }

    /// Every key, in name order.
    pub fn keys(&self) -> impl Iterator<Item = &Arc<Key>> {
        self.by_name.values()
    }

    fn read(
        keys: &impl ReadableTable<&'static str, &'static [u8]>,
        grants: &impl ReadableTable<(&'static str, &'static str), &'static [u8]>,
        generation: u64,
    ) -> Result<Directory> {
        let mut by_key: HashMap<String, BTreeMap<String, Grant>> = HashMap::new();
        for entry in grants.iter()? {
            let (k, v) = entry?;
            let (id, bucket) = k.value();
            let grant: Grant = codec::decode(v.value())?;
            by_key
                .entry(id.to_owned())
                .or_default()
                .insert(bucket.to_owned(), grant);
        }
        let mut directory = Directory {
            generation,
            ..Directory::default()
        };
        for entry in keys.iter()? {
            let (k, v) = entry?;
            let record: KeyRecord = codec::decode(v.value())?;
            let key = Arc::new(Key {
                name: k.value().to_owned(),
                grants: by_key.remove(&record.access_key_id).unwrap_or_default(),
                access_key_id: record.access_key_id,
                secret: record.secret,
                edge: record.edge,
                create_bucket: record.create_bucket,
                created: codec::from_ms(record.created_ms),
            });
            directory
                .by_id
                .insert(key.access_key_id.clone(), Arc::clone(&key));
            directory.by_name.insert(key.name.clone(), key);
        }
        Ok(directory)
    }
}

/// The live directory, shared by the engine (which replaces it after each change) and the
/// protocol's keyring (which reads it on every signed request). Cheap to clone.
#[derive(Clone, Default)]
pub struct KeyView(Arc<Live>);

#[derive(Default)]
struct Live {
    current: RwLock<Arc<Directory>>,
    /// The generation the next change's directory gets.
    next: AtomicU64,
}

impl KeyView {
    /// The directory as of the last change committed.
    pub fn load(&self) -> Arc<Directory> {
        Arc::clone(
            &self
                .0
                .current
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Installs `directory` unless a later commit's is already there.
    fn install(&self, directory: Arc<Directory>) {
        let mut current = self
            .0
            .current
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if directory.generation >= current.generation {
            *current = directory;
        }
    }
}

/// Reads the directory at open (before any change can run).
pub(super) async fn open_view(index: &index::Index) -> Result<KeyView> {
    let directory = index
        .read(|txn| Directory::read(&txn.open_table(KEYS)?, &txn.open_table(GRANTS)?, 0))
        .await?;
    let view = KeyView::default();
    view.0.next.store(1, Ordering::Release);
    view.install(Arc::new(directory));
    Ok(view)
}

/// Runs `change` in one write transaction that also reads back the directory it leaves, on
/// its own task; once committed, that directory becomes the live one. Returns the change's
/// result and that directory.
pub(super) async fn write_keys<T, F>(inner: &Arc<Inner>, change: F) -> Result<(T, Arc<Directory>)>
where
    T: Send + 'static,
    F: FnOnce(&WriteTransaction) -> Result<T> + Send + 'static,
{
    let inner = Arc::clone(inner);
    detached(async move {
        let view = inner.keys.clone();
        let (out, directory) = inner
            .index
            .write(move |txn| {
                let out = change(txn)?;
                // Taken inside the transaction: write transactions run one at a time, so
                // generations follow commit order.
                let generation = view.0.next.fetch_add(1, Ordering::AcqRel);
                let directory =
                    Directory::read(&txn.open_table(KEYS)?, &txn.open_table(GRANTS)?, generation)?;
                Ok((out, Arc::new(directory)))
            })
            .await?;
        inner.keys.install(Arc::clone(&directory));
        Ok((out, directory))
    })
    .await
}

/// Removes every grant on `bucket` (its deletion's transaction). A full scan: grants are few,
/// and buckets are deleted far less often than keys are checked.
pub(super) fn remove_bucket_grants(txn: &WriteTransaction, bucket: &str) -> Result<()> {
    let mut grants = txn.open_table(GRANTS)?;
    let mut doomed = Vec::new();
    for entry in grants.iter()? {
        let row = entry?.0;
        let (id, b) = row.value();
        if b == bucket {
            doomed.push(id.to_owned());
        }
    }
    for id in doomed {
        grants.remove((id.as_str(), bucket))?;
    }
    Ok(())
}

fn require_key(
    keys: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &str,
) -> Result<KeyRecord> {
    match keys.get(name)? {
        Some(v) => codec::decode(v.value()),
        None => Err(Error::not_found(What::AccessKey)),
    }
}

impl Engine {
    /// The live directory of keys, for the protocol's keyring.
    pub fn key_view(&self) -> KeyView {
        self.inner.keys.clone()
    }

    /// Every key and its grants, as of the last change.
    pub fn keys(&self) -> Arc<Directory> {
        self.inner.keys.load()
    }

    /// A new key named `name` with no rights, its access key id and secret generated from
    /// the thread CSPRNG. AlreadyExists if the name is taken. Name validation is the caller's.
    pub async fn create_key(&self, name: &str, edge: bool) -> Result<Arc<Key>> {
        self.write_key(name, move |txn, name| {
            let mut keys = txn.open_table(KEYS)?;
            if keys.get(name)?.is_some() {
                return Err(Error::new(Kind::AlreadyExists));
            }
            let mut taken = Vec::new();
            for entry in keys.iter()? {
                taken.push(codec::decode::<KeyRecord>(entry?.1.value())?.access_key_id);
            }
            let mut rng = rand::rng();
            let access_key_id = loop {
                let id = format!("OK{}", Alphanumeric.sample_string(&mut rng, 18));
                let id = id.to_uppercase();
                if !taken.contains(&id) {
                    break id;
                }
            };
            let record = KeyRecord {
                access_key_id,
                secret: SecretKey::new(Alphanumeric.sample_string(&mut rng, SECRET_LEN)),
                edge,
                create_bucket: false,
                created_ms: codec::now_ms(),
            };
            keys.insert(name, codec::encode(&record)?.as_slice())?;
            changes::record(
                txn,
                Change::key(ChangeKind::Key, &record.access_key_id, None),
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes the key and its grants in one transaction. NotFound(AccessKey) if absent.
    /// Buckets it owns keep it recorded as their owner (an id no key has any more).
    pub async fn delete_key(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        write_keys(&self.inner, move |txn| {
            let mut keys = txn.open_table(KEYS)?;
            let record = require_key(&keys, &name)?;
            keys.remove(name.as_str())?;
            let mut grants = txn.open_table(GRANTS)?;
            let id = record.access_key_id.as_str();
            let mut buckets = Vec::new();
            for entry in grants.range::<(&str, &str)>((id, "")..)? {
                let row = entry?.0;
                let (holder, bucket) = row.value();
                if holder != id {
                    break;
                }
                buckets.push(bucket.to_owned());
            }
            for bucket in buckets {
                grants.remove((id, bucket.as_str()))?;
            }
            changes::record(txn, Change::key(ChangeKind::Key, id, None))?;
            Ok(())
        })
        .await
        .map(drop)
    }

    /// Adds the rights set in `rights` to the key's grant on `bucket`. NotFound(AccessKey),
    /// NotFound(Bucket).
    pub async fn allow(&self, name: &str, bucket: &str, rights: Grant) -> Result<Arc<Key>> {
        self.regrant(name, bucket, move |g| g.with(rights)).await
    }

    /// Removes the rights set in `rights` from the key's grant on `bucket` (a grant left with
    /// none is deleted). NotFound(AccessKey); a bucket it holds nothing on is no error.
    pub async fn deny(&self, name: &str, bucket: &str, rights: Grant) -> Result<Arc<Key>> {
        self.regrant(name, bucket, move |g| g.without(rights)).await
    }

    /// Gives or takes the key's right to create buckets. NotFound(AccessKey).
    pub async fn set_create_bucket(&self, name: &str, allowed: bool) -> Result<Arc<Key>> {
        self.write_key(name, move |txn, name| {
            let mut keys = txn.open_table(KEYS)?;
            let mut record = require_key(&keys, name)?;
            record.create_bucket = allowed;
            keys.insert(name, codec::encode(&record)?.as_slice())?;
            changes::record(
                txn,
                Change::key(ChangeKind::Key, &record.access_key_id, None),
            )?;
            Ok(())
        })
        .await
    }

    async fn regrant(
        &self,
        name: &str,
        bucket: &str,
        change: impl FnOnce(Grant) -> Grant + Send + 'static,
    ) -> Result<Arc<Key>> {
        let bucket = bucket.to_owned();
        self.write_key(name, move |txn, name| {
            let id = require_key(&txn.open_table(KEYS)?, name)?.access_key_id;
            let mut grants = txn.open_table(GRANTS)?;
            let current: Grant = match grants.get((id.as_str(), bucket.as_str()))? {
                Some(v) => codec::decode(v.value())?,
                None => Grant::default(),
            };
            let next = change(current);
            if next.is_none() {
                grants.remove((id.as_str(), bucket.as_str()))?;
            } else {
                // A grant names a bucket that exists: one deleted took its grants along, and
                // a grant never waits for a bucket of that name to be created.
                index::require_bucket(&txn.open_table(BUCKETS)?, &bucket)?;
                let row = codec::encode(&next)?;
                grants.insert((id.as_str(), bucket.as_str()), row.as_slice())?;
            }
            changes::record(txn, Change::key(ChangeKind::Grant, &id, Some(&bucket)))?;
            Ok(())
        })
        .await
    }

    /// Runs `change` on the key `name` ([`write_keys`]); the key as the commit left it.
    async fn write_key<F>(&self, name: &str, change: F) -> Result<Arc<Key>>
    where
        F: FnOnce(&WriteTransaction, &str) -> Result<()> + Send + 'static,
    {
        let name = name.to_owned();
        let (_, directory) = write_keys(&self.inner, {
            let name = name.clone();
            move |txn| change(txn, &name)
        })
        .await?;
        directory
            .by_name(&name)
            .cloned()
            .ok_or_else(|| Error::internal(anyhow::anyhow!("key {name} missing after its change")))
    }

    /// Creates a bucket owned by the key `owner` (an access key id), which gets read, write
    /// and owner rights on it in the same transaction. AlreadyExists if the bucket exists;
    /// NotFound(AccessKey) if no key has that id (deleted meanwhile).
    pub async fn create_bucket_for(
        &self,
        name: &str,
        settings: BucketSettings,
        owner: &str,
    ) -> Result<()> {
        let (name, owner) = (name.to_owned(), owner.to_owned());
        write_keys(&self.inner, move |txn| {
            let mut known = false;
            for entry in txn.open_table(KEYS)?.iter()? {
                known |= codec::decode::<KeyRecord>(entry?.1.value())?.access_key_id == owner;
            }
            if !known {
                return Err(Error::not_found(What::AccessKey));
            }
            let record = BucketRecord {
                created_ms: codec::now_ms(),
                settings,
                owner: Some(owner.clone()),
            };
            index::insert_new_bucket(txn, &name, &record)?;
            let row = codec::encode(&Grant::ALL)?;
            txn.open_table(GRANTS)?
                .insert((owner.as_str(), name.as_str()), row.as_slice())?;
            changes::record(txn, Change::bucket(ChangeKind::BucketCreate, &name))?;
            changes::record(txn, Change::key(ChangeKind::Grant, &owner, Some(&name)))?;
            Ok(())
        })
        .await
        .map(drop)
    }
}
