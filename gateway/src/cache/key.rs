//! Cache keys: what makes two requests the same cached response.

pub use outpost_store::s3::auth::{is_auth_param, without_auth_params as strip_auth_params};

/// The query pairs named in `keys` (`*` = all), authentication parameters never, in the order
/// sent.
pub fn selected_query(query: Option<&str>, keys: &[String]) -> String {
    selected(query, keys).join("&")
}

fn selected<'q>(query: Option<&'q str>, keys: &[String]) -> Vec<&'q str> {
    let all = keys.iter().any(|k| k == "*");
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| {
            let name = p.split('=').next().unwrap_or("");
            !p.is_empty() && !is_auth_param(name) && (all || keys.iter().any(|k| k == name))
        })
        .collect()
}

/// Builds a key from its parts. `namespace` separates faces and access levels (an object
/// fetched for a signed client is not served to anonymous ones from the same entry).
/// Query pairs are sorted so parameter order does not split the cache; `query_keys` selects
/// which take part (`["*"]` all).
pub fn cache_key(
    namespace: &str,
    bucket: &str,
    key: &str,
    query: Option<&str>,
    query_keys: &[String],
) -> String {
    let mut out = String::with_capacity(namespace.len() + bucket.len() + key.len() + 3);
    for part in [namespace, bucket, key] {
        out.push_str(part);
        out.push('\n');
    }
    // Most requests have no query: no list to sort then.
    if query.is_some_and(|q| !q.is_empty()) {
        let mut pairs = selected(query, query_keys);
        pairs.sort_unstable();
        for (i, pair) in pairs.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(pair);
        }
    }
    out
}

/// A key's namespace, bucket and object key: what invalidation paths and the change feed's
/// events match against.
pub fn parts(cache_key: &str) -> Option<(&str, &str, &str)> {
    let mut parts = cache_key.splitn(4, '\n');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_params_and_order_do_not_split_the_cache() {
        let all = vec!["*".to_string()];
        let a = cache_key("s3", "b", "k", Some("X-Amz-Signature=1&b=2&a=1"), &all);
        let b = cache_key("s3", "b", "k", Some("a=1&b=2&X-Amz-Date=2"), &all);
        assert_eq!(a, b);
        assert_ne!(a, cache_key("s3", "b", "k", Some("a=1"), &all));
        assert_eq!(
            cache_key("w", "b", "k", Some("v=3&utm=x"), &["v".to_string()]),
            cache_key("w", "b", "k", Some("utm=y&v=3"), &["v".to_string()])
        );
        assert_eq!(parts(&a), Some(("s3", "b", "k")));
        assert_eq!(
            strip_auth_params(Some("X-Amz-Date=1&partNumber=2")),
            "partNumber=2"
        );
    }
}
