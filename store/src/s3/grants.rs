//! What an index key's grants permit (see [`crate::access`] for the whole rule). The root key
//! is not asked: it may do anything. Bucket policies are decided apart; the store's
//! `authorize` joins the two: an explicit policy Deny wins, then a grant or a policy Allow
//! permits, else AccessDenied.

use super::route::{Endpoint, Route};
use crate::access::Class;
use crate::engine::keys::Key;

/// Does `key` hold the rights `route` asks for? The operation's class must be covered by the
/// key's grant on the bucket (creating a bucket: by its create-bucket right); a copy also
/// needs read on its source bucket (`s3:GetObject` on the source object).
pub fn permits(key: &Key, route: &Route) -> bool {
    let class = route.endpoint.action().class;
    let granted = match class {
        Class::CreateBucket => key.create_bucket,
        class => key.grant(&route.bucket).covers(class),
    };
    let source = match &route.endpoint {
        Endpoint::CopyObject(source) | Endpoint::UploadPartCopy(_, source) => Some(source),
        _ => None,
    };
    granted && source.is_none_or(|s| key.grant(&s.bucket).covers(Class::Read))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::access::Grant;
    use crate::s3::route::{self, Query};

    fn key(grants: &[(&str, Grant)], create_bucket: bool) -> Key {
        Key {
            name: "app".into(),
            access_key_id: "OKAPP".into(),
            secret: crate::secret::SecretKey::new("s"),
            edge: false,
            create_bucket,
            created: std::time::UNIX_EPOCH,
            grants: grants
                .iter()
                .map(|(b, g)| (b.to_string(), *g))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn route(method: &str, path: &str, copy_source: Option<&str>) -> Route {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let query = Query::parse(Some(query));
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        route::route(&method, None, path, &query, copy_source, None).unwrap()
    }

    const READ: Grant = Grant::READ;
    const WRITE: Grant = Grant::WRITE;

    #[test]
    fn each_class_needs_its_right_on_the_bucket() {
        let none = key(&[], false);
        let reader = key(&[("b", READ)], false);
        let writer = key(&[("b", WRITE)], false);
        let get = route("GET", "/b/k", None);
        let put = route("PUT", "/b/k", None);
        let policy = route("PUT", "/b?policy", None);
        assert!(!permits(&none, &get));
        assert!(permits(&reader, &get));
        assert!(!permits(&reader, &put));
        assert!(permits(&writer, &put));
        assert!(!permits(&writer, &get));
        assert!(!permits(&writer, &policy));
        assert!(!permits(&reader, &route("GET", "/other/k", None)));
        // Any key may list buckets (the listing shows it its own).
        assert!(permits(&none, &route("GET", "/", None)));
    }

    #[test]
    fn creating_a_bucket_is_a_right_of_the_key() {
        let create = route("PUT", "/new", None);
        assert!(!permits(&key(&[], false), &create));
        assert!(permits(&key(&[], true), &create));
    }

    #[test]
    fn a_copy_also_needs_read_on_its_source() {
        let copy = route("PUT", "/dst/k", Some("/src/k"));
        assert!(!permits(&key(&[("dst", WRITE)], false), &copy));
        assert!(permits(
            &key(&[("dst", WRITE), ("src", READ)], false),
            &copy
        ));
        let part = route("PUT", "/dst/k?partNumber=1&uploadId=u", Some("src/k"));
        assert!(!permits(&key(&[("dst", WRITE)], false), &part));
        assert!(permits(
            &key(&[("dst", WRITE), ("src", READ)], false),
            &part
        ));
    }

    /// An operation that asks who signed (ListBuckets filters, CreateBucket records an owner)
    /// refuses a key deleted since it was authorised, rather than take it for the root key.
    #[tokio::test]
    async fn a_key_deleted_after_authorisation_is_not_taken_for_the_root_key() {
        use crate::s3::auth::{Credentials, Keyring};
        use crate::s3::context::Access;
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::StoreConfig {
            data_dir: dir.path().to_owned(),
            ..Default::default()
        };
        let engine = crate::engine::Engine::open(crate::engine::EngineConfig {
            data_dir: dir.path().to_owned(),
            max_object_size: 1 << 20,
            stale_upload_age: std::time::Duration::from_secs(60),
        })
        .await
        .unwrap();
        let root = Credentials {
            access_key_id: "ROOT".into(),
            secret: crate::secret::SecretKey::new("s"),
        };
        let s3 = crate::s3::S3 {
            keyring: Keyring::new([root]).with_index(engine.key_view()),
            engine,
            config,
            metrics: crate::metrics::Metrics::new("test"),
            owner_id: "ROOT".into(),
        };
        let key = s3.engine.create_key("app", false).await.unwrap();
        let signed = Access::Signed(key.access_key_id.clone());
        assert_eq!(s3.signer(&signed).unwrap().unwrap().name, "app");
        assert!(s3.signer(&Access::Signed("ROOT".into())).unwrap().is_none());
        s3.engine.delete_key("app").await.unwrap();
        let refused = s3.signer(&signed).unwrap_err();
        assert_eq!(refused.code, crate::error::Code::AccessDenied);
    }
}
