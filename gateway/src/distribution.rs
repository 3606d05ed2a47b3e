//! Host → distribution, path → cache behaviour (CloudFront's model).
//!
//! A request whose Host names a configured distribution (or `bucket.<website_domain>`) is a
//! browser request for that site; any other request speaks the S3 API.

use std::sync::Arc;

use crate::config::{Behavior, Distribution, EdgeConfig, ViewerProtocol};
use crate::origin::OriginGroup;

/// A site the edge serves: a bucket behind an origin group, with its behaviours.
pub struct Site {
    /// Keeps cache entries of different sites apart.
    pub id: String,
    pub bucket: String,
    /// Static-website semantics (index and error documents, redirects).
    pub website: bool,
    pub behaviors: Vec<Arc<Behavior>>,
    pub origins: Arc<OriginGroup>,
    /// What plain-HTTP requests get ([`crate::viewer`]).
    pub viewer_protocol: ViewerProtocol,
    /// `Strict-Transport-Security` for answers over https.
    pub hsts: Option<http::HeaderValue>,
}

impl Site {
    /// The first behaviour whose path pattern matches, else `default`.
    pub fn behavior<'a>(&'a self, path: &str, default: &'a Arc<Behavior>) -> &'a Arc<Behavior> {
        self.behaviors
            .iter()
            .find(|b| glob_match(&b.path, path))
            .unwrap_or(default)
    }
}

pub struct Distributions {
    sites: Vec<(Vec<String>, Arc<Site>)>,
    /// Some site has a viewer protocol policy or HSTS.
    viewer_rules: bool,
    website_domain: Option<String>,
    default_origins: Arc<OriginGroup>,
}

impl Distributions {
    /// `group` builds an origin group for a distribution that names its own origins.
    pub fn new(
        config: &EdgeConfig,
        default_origins: Arc<OriginGroup>,
        group: impl Fn(&[String]) -> anyhow::Result<Arc<OriginGroup>>,
    ) -> anyhow::Result<Distributions> {
        let sites = config
            .distributions
            .iter()
            .enumerate()
            .map(|(i, d): (usize, &Distribution)| {
                let origins = if d.origins.is_empty() {
                    Arc::clone(&default_origins)
                } else {
                    group(&d.origins)?
                };
                let hosts = d.hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
                let site = Site {
                    id: format!("d{i}"),
                    bucket: d.bucket.clone(),
                    website: d.website,
                    behaviors: d.behaviors.iter().cloned().map(Arc::new).collect(),
                    origins,
                    viewer_protocol: d.viewer_protocol,
                    hsts: d.hsts_max_age_secs.map(|secs| {
                        http::HeaderValue::from_str(&format!("max-age={secs}"))
                            .expect("digits are a valid header value")
                    }),
                };
                Ok((hosts, Arc::new(site)))
            })
            .collect::<anyhow::Result<_>>()?;
        let viewer_rules = config.distributions.iter().any(|d| {
            d.viewer_protocol != ViewerProtocol::AllowAll || d.hsts_max_age_secs.is_some()
        });
        Ok(Distributions {
            sites,
            viewer_rules,
            website_domain: config
                .website_domain
                .as_ref()
                .map(|d| d.to_ascii_lowercase()),
            default_origins,
        })
    }

    /// Whether any site has a viewer protocol policy or HSTS ([`crate::viewer`] looks the
    /// site up only then).
    pub fn viewer_rules(&self) -> bool {
        self.viewer_rules
    }

    /// Every origin group the sites use, the default one included (some may repeat).
    pub fn origin_groups(&self) -> impl Iterator<Item = &Arc<OriginGroup>> {
        let sites = self.sites.iter().map(|(_, site)| &site.origins);
        std::iter::once(&self.default_origins).chain(sites)
    }

    /// The configured sites serving `bucket`.
    pub fn for_bucket<'a>(&'a self, bucket: &'a str) -> impl Iterator<Item = &'a Arc<Site>> {
        self.sites
            .iter()
            .map(|(_, site)| site)
            .filter(move |site| site.bucket == bucket)
    }

    /// The site a Host header names, if any.
    pub fn for_host(&self, host: Option<&str>) -> Option<Arc<Site>> {
        let host = host?;
        let host = match host.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => host,
        }
        .to_ascii_lowercase();
        if let Some((_, site)) = self.sites.iter().find(|(hosts, _)| hosts.contains(&host)) {
            return Some(Arc::clone(site));
        }
        let bucket = host
            .strip_suffix(self.website_domain.as_deref()?)?
            .strip_suffix('.')?;
        Some(Arc::new(Site {
            id: "website".into(),
            bucket: bucket.to_owned(),
            website: true,
            behaviors: Vec::new(),
            origins: Arc::clone(&self.default_origins),
            viewer_protocol: ViewerProtocol::AllowAll,
            hsts: None,
        }))
    }
}

/// `*` matches any run of characters (including `/`), as CloudFront path patterns.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = path.strip_prefix(first) else {
        return false;
    };
    let tail: Vec<&str> = parts.collect();
    let Some((last, middle)) = tail.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(i) => rest = &rest[i + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns() {
        assert!(glob_match("*", "/anything/at/all"));
        assert!(glob_match("/static/*", "/static/css/a.css"));
        assert!(!glob_match("/static/*", "/index.html"));
        assert!(glob_match("*.js", "/app/main.js"));
        assert!(!glob_match("*.js", "/app/main.css"));
        assert!(glob_match("/a/*/b/*.png", "/a/x/y/b/z.png"));
        assert!(glob_match("/exact", "/exact"));
        assert!(!glob_match("/exact", "/exact/more"));
    }
}
