//! The website face: S3 static-website semantics over a bucket's WebsiteConfiguration (the
//! document PutBucketWebsite stored). Pure rules here; fetching is the pipeline's.
//!
//! Behaviour follows the S3 website endpoint: index document in every "directory", a
//! redirect to `key/` when `key` is missing but `key/index` exists, the error document with
//! the error's status, RedirectAllRequestsTo, routing rules (KeyPrefixEquals and/or
//! HttpErrorCodeReturnedEquals), and per-object `x-amz-website-redirect-location`.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct WebsiteConfig {
    pub index_document: Option<IndexDocument>,
    pub error_document: Option<ErrorDocument>,
    pub redirect_all_requests_to: Option<RedirectAll>,
    #[serde(default)]
    pub routing_rules: RoutingRules,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDocument {
    pub suffix: String,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorDocument {
    pub key: String,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RedirectAll {
    pub host_name: String,
    pub protocol: Option<String>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingRules {
    #[serde(default)]
    pub routing_rule: Vec<RoutingRule>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingRule {
    pub condition: Option<Condition>,
    pub redirect: Redirect,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Condition {
    pub key_prefix_equals: Option<String>,
    pub http_error_code_returned_equals: Option<u16>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Redirect {
    pub host_name: Option<String>,
    pub protocol: Option<String>,
    pub replace_key_prefix_with: Option<String>,
    pub replace_key_with: Option<String>,
    pub http_redirect_code: Option<u16>,
}

impl WebsiteConfig {
    pub fn parse(xml: &[u8]) -> Option<WebsiteConfig> {
        quick_xml::de::from_str(std::str::from_utf8(xml).ok()?).ok()
    }

    /// What to do with a request for `path` (URL-decoded, with its leading `/`), before
    /// looking at the bucket.
    pub fn route(&self, path: &str, here: Addressed) -> Route {
        if let Some(all) = &self.redirect_all_requests_to {
            let scheme = all.protocol.as_deref().unwrap_or(here.scheme);
            return Route::Redirect(301, format!("{scheme}://{}{path}", all.host_name));
        }
        let key = path.trim_start_matches('/');
        if let Some(rule) = self.rule_for(key, None) {
            let code = rule.redirect.http_redirect_code.unwrap_or(301);
            return Route::Redirect(code, self.redirect(rule, key, here));
        }
        Route::Object(self.with_index(key))
    }

    /// The key with the index document appended where the path names a directory.
    pub fn with_index(&self, key: &str) -> String {
        match &self.index_document {
            Some(index) if key.is_empty() || key.ends_with('/') => format!("{key}{}", index.suffix),
            _ => key.to_owned(),
        }
    }

    /// After `key` answered `status` (an error): a redirect rule, or the error document.
    pub fn on_error(&self, key: &str, status: u16, here: Addressed) -> ErrorRoute {
        if let Some(rule) = self.rule_for(key, Some(status)) {
            let code = rule.redirect.http_redirect_code.unwrap_or(301);
            return ErrorRoute::Redirect(code, self.redirect(rule, key, here));
        }
        match &self.error_document {
            Some(doc) => ErrorRoute::Document(doc.key.clone()),
            None => ErrorRoute::Plain,
        }
    }

    /// A missing `key` that has an index document below it is a directory: S3 answers 302 to
    /// `key/`.
    pub fn directory_index(&self, key: &str) -> Option<String> {
        let index = self.index_document.as_ref()?;
        (!key.is_empty() && !key.ends_with('/')).then(|| format!("{key}/{}", index.suffix))
    }

    fn rule_for(&self, key: &str, status: Option<u16>) -> Option<&RoutingRule> {
        self.routing_rules.routing_rule.iter().find(|rule| {
            let c = rule.condition.as_ref();
            let prefix_ok = c
                .and_then(|c| c.key_prefix_equals.as_deref())
                .is_none_or(|p| key.starts_with(p));
            let code = c.and_then(|c| c.http_error_code_returned_equals);
            let status_ok = match (code, status) {
                (None, None) => true,
                (Some(want), Some(got)) => want == got,
                // Error rules apply only after an error; prefix-only rules only before.
                _ => false,
            };
            c.is_some() && prefix_ok && status_ok
        })
    }

    fn redirect(&self, rule: &RoutingRule, key: &str, here: Addressed) -> String {
        let r = &rule.redirect;
        let prefix = rule
            .condition
            .as_ref()
            .and_then(|c| c.key_prefix_equals.as_deref())
            .unwrap_or("");
        let new_key = match (&r.replace_key_with, &r.replace_key_prefix_with) {
            (Some(k), _) => k.clone(),
            (None, Some(p)) => format!("{p}{}", key.strip_prefix(prefix).unwrap_or(key)),
            (None, None) => key.to_owned(),
        };
        let scheme = r.protocol.as_deref().unwrap_or(here.scheme);
        let host = r.host_name.as_deref().unwrap_or(here.host);
        format!("{scheme}://{host}/{new_key}")
    }
}

/// How the client addressed the site: redirects keep its scheme (a redirect rule without a
/// `Protocol` uses the request's, as S3 does) and, without a `HostName`, its host.
#[derive(Debug, Clone, Copy)]
pub struct Addressed<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
}

#[derive(Debug, PartialEq)]
pub enum Route {
    Object(String),
    Redirect(u16, String),
}

#[derive(Debug, PartialEq)]
pub enum ErrorRoute {
    Redirect(u16, String),
    /// Serve this key's content with the error's status.
    Document(String),
    /// No error document: a small built-in page.
    Plain,
}

/// The page served when a bucket has no error document.
pub fn plain_error_page(status: u16, key: &str) -> String {
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let key = key
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<html><head><title>{status} {reason}</title></head><body><h1>{status} {reason}</h1>\
         <ul><li>Key: {key}</li></ul></body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(host: &str) -> Addressed<'_> {
        Addressed {
            scheme: "http",
            host,
        }
    }

    const CONFIG: &str = r#"<WebsiteConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
        <IndexDocument><Suffix>index.html</Suffix></IndexDocument>
        <ErrorDocument><Key>404.html</Key></ErrorDocument>
        <RoutingRules>
          <RoutingRule><Condition><KeyPrefixEquals>old/</KeyPrefixEquals></Condition>
            <Redirect><ReplaceKeyPrefixWith>new/</ReplaceKeyPrefixWith><HttpRedirectCode>302</HttpRedirectCode></Redirect></RoutingRule>
          <RoutingRule><Condition><HttpErrorCodeReturnedEquals>404</HttpErrorCodeReturnedEquals><KeyPrefixEquals>img/</KeyPrefixEquals></Condition>
            <Redirect><HostName>images.example.com</HostName><Protocol>https</Protocol></Redirect></RoutingRule>
        </RoutingRules>
      </WebsiteConfiguration>"#;

    #[test]
    fn index_documents_and_prefix_rules() {
        let c = WebsiteConfig::parse(CONFIG.as_bytes()).unwrap();
        assert_eq!(c.route("/", at("h")), Route::Object("index.html".into()));
        assert_eq!(
            c.route("/docs/", at("h")),
            Route::Object("docs/index.html".into())
        );
        assert_eq!(c.route("/a.css", at("h")), Route::Object("a.css".into()));
        assert_eq!(
            c.route("/old/page.html", at("site.test")),
            Route::Redirect(302, "http://site.test/new/page.html".into())
        );
        assert_eq!(c.directory_index("docs"), Some("docs/index.html".into()));
        assert_eq!(c.directory_index("docs/"), None);
    }

    #[test]
    fn errors_redirect_or_serve_the_error_document() {
        let c = WebsiteConfig::parse(CONFIG.as_bytes()).unwrap();
        assert_eq!(
            c.on_error("img/a.png", 404, at("h")),
            ErrorRoute::Redirect(301, "https://images.example.com/img/a.png".into())
        );
        assert_eq!(
            c.on_error("nope", 404, at("h")),
            ErrorRoute::Document("404.html".into())
        );
        assert_eq!(
            WebsiteConfig::default().on_error("x", 404, at("h")),
            ErrorRoute::Plain
        );
    }

    #[test]
    fn redirect_all() {
        let c = WebsiteConfig::parse(
            b"<WebsiteConfiguration><RedirectAllRequestsTo><HostName>example.com</HostName>\
              <Protocol>https</Protocol></RedirectAllRequestsTo></WebsiteConfiguration>",
        )
        .unwrap();
        assert_eq!(
            c.route("/x/y", at("h")),
            Route::Redirect(301, "https://example.com/x/y".into())
        );
        assert!(WebsiteConfig::parse(b"<not xml").is_none());
        assert!(plain_error_page(404, "<k>").contains("&lt;k&gt;"));
    }
}
