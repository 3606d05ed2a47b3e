use super::*;

fn config(rules: &str) -> String {
    format!(
        "<CORSConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{rules}</CORSConfiguration>"
    )
}

fn rule(body: &str) -> String {
    format!("<CORSRule>{body}</CORSRule>")
}

const GET_ANY: &str = "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod>";

fn parsed(rules: &str) -> Result<CorsConfiguration> {
    CorsConfiguration::parse(config(rules).as_bytes())
}

fn refused(rules: &str) -> (Code, String) {
    let e = parsed(rules).unwrap_err();
    (e.code, e.message().to_owned())
}

#[test]
fn a_document_round_trips() {
    let doc = config(&rule(
        "<ID>site</ID><AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>\
         <AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>\
         <MaxAgeSeconds>300</MaxAgeSeconds>",
    ));
    let c = CorsConfiguration::parse(doc.as_bytes()).unwrap();
    assert_eq!(
        c.rules,
        vec![CorsRule {
            id: Some("site".into()),
            allowed_origins: vec!["https://*.example.com".into()],
            allowed_methods: vec!["GET".into(), "PUT".into()],
            allowed_headers: vec!["*".into()],
            expose_headers: vec!["ETag".into()],
            max_age_seconds: Some(300),
        }]
    );
    assert_eq!(CorsConfiguration::parse(c.to_xml().as_bytes()).unwrap(), c);
    // Values are read without the white space around them (however it is written).
    let spaced = rule(
        "<AllowedOrigin>\n  &#32;http://a.test </AllowedOrigin><AllowedMethod> GET</AllowedMethod>",
    );
    let c = parsed(&spaced).unwrap();
    assert_eq!(c.rules[0].allowed_origins, ["http://a.test"]);
    assert_eq!(c.rules[0].allowed_methods, ["GET"]);
}

#[test]
fn malformed_documents_are_malformed_xml() {
    for bad in [
        String::new(),
        "<CORSConfiguration/>".into(),
        config(""),
        config(&rule("<AllowedMethod>GET</AllowedMethod>")),
        config(&rule("<AllowedOrigin>*</AllowedOrigin>")),
        config(&rule(
            "<AllowedOrigin> </AllowedOrigin><AllowedMethod>GET</AllowedMethod>",
        )),
        config(&rule(&format!("{GET_ANY}<Colour>red</Colour>"))),
        config(&rule(&format!("{GET_ANY}<ID>a</ID><ID>b</ID>"))),
        config(&rule(&format!(
            "{GET_ANY}<MaxAgeSeconds>-1</MaxAgeSeconds>"
        ))),
        config(&rule(&format!(
            "{GET_ANY}<MaxAgeSeconds>soon</MaxAgeSeconds>"
        ))),
        config(&format!("text{}", rule(GET_ANY))),
        format!("<Other>{}</Other>", rule(GET_ANY)),
        config(&rule(GET_ANY)).replace("</CORSConfiguration>", ""),
        format!("{}<CORSConfiguration/>", config(&rule(GET_ANY))),
        format!("<!DOCTYPE x>{}", config(&rule(GET_ANY))),
    ] {
        let e = CorsConfiguration::parse(bad.as_bytes()).unwrap_err();
        assert_eq!(e.code, Code::MalformedXML, "{bad}");
    }
    assert_eq!(
        parsed(&rule(GET_ANY).repeat(MAX_RULES))
            .unwrap()
            .rules
            .len(),
        100
    );
}

#[test]
fn invalid_rules_get_s3s_messages() {
    let cases = [
        (
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod>",
            "Found unsupported HTTP method in CORS config. Unsupported method is PATCH",
        ),
        (
            "<AllowedOrigin>*</AllowedOrigin><AllowedMethod>get</AllowedMethod>",
            "Found unsupported HTTP method in CORS config. Unsupported method is get",
        ),
        (
            "<AllowedOrigin>https://*.*.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod>",
            "AllowedOrigin \"https://*.*.com\" can not have more than one wildcard.",
        ),
        (
            &format!("{GET_ANY}<AllowedHeader>x-*-*</AllowedHeader>"),
            "AllowedHeader \"x-*-*\" can not have more than one wildcard.",
        ),
        (
            &format!("{GET_ANY}<AllowedHeader>a b</AllowedHeader>"),
            "AllowedHeader \"a b\" contains invalid character.",
        ),
        (
            &format!("{GET_ANY}<ExposeHeader>*</ExposeHeader>"),
            "ExposeHeader \"*\" contains wildcard. We currently do not support wildcard for ExposeHeader.",
        ),
        (
            &format!("{GET_ANY}<ExposeHeader>a:b</ExposeHeader>"),
            "ExposeHeader \"a:b\" contains invalid character.",
        ),
    ];
    assert_eq!(
        refused(&rule(GET_ANY).repeat(MAX_RULES + 1)),
        (
            Code::InvalidRequest,
            "The number of CORS rules should not exceed allowed limit of 100 rules.".to_owned()
        ),
        "101 rules"
    );
    for (body, message) in cases {
        assert_eq!(
            refused(&rule(body)),
            (Code::InvalidRequest, message.to_owned()),
            "{body}"
        );
    }
}

fn asked(origin: &str, method: &str, headers: &str) -> PreflightRequest {
    let mut h = HeaderMap::new();
    h.insert("origin", origin.parse().unwrap());
    h.insert("access-control-request-method", method.parse().unwrap());
    if !headers.is_empty() {
        h.insert("access-control-request-headers", headers.parse().unwrap());
    }
    PreflightRequest::of(&h).unwrap()
}

fn allowed(p: Preflight) -> HeaderMap {
    match p {
        Preflight::Allowed(h) => h,
        other => panic!("expected allowed, got {other:?}"),
    }
}

#[test]
fn preflights_match_the_first_rule_that_allows_them() {
    let c = parsed(&[
        rule("<AllowedOrigin>http://example.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>HEAD</AllowedMethod><AllowedHeader>X-Amz-Date</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>100</MaxAgeSeconds>"),
        rule("<AllowedOrigin>*</AllowedOrigin><AllowedMethod>HEAD</AllowedMethod>"),
        rule("<AllowedOrigin>http://www*</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedHeader>x-amz-*-suffix</AllowedHeader>"),
    ].concat())
    .unwrap();
    let answer = |o, m, h| Preflight::answer(Some(&c), &asked(o, m, h));

    let h = allowed(answer("http://example.com", "GET", "X-Amz-Date"));
    assert_eq!(h["access-control-allow-origin"], "http://example.com");
    assert_eq!(h["access-control-allow-methods"], "GET, HEAD");
    assert_eq!(h["access-control-allow-headers"], "x-amz-date");
    assert_eq!(h["access-control-expose-headers"], "ETag");
    assert_eq!(h["access-control-max-age"], "100");
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["vary"], VARY);

    // The first rule allows the origin but not the header; no later rule allows GET.
    assert_eq!(
        answer("http://example.com", "GET", "x-other"),
        Preflight::Denied
    );
    // The second rule: any origin, no credentials.
    // No rule allows the header with HEAD (the second allows none).
    assert_eq!(
        answer("http://example.com", "HEAD", "x-other"),
        Preflight::Denied
    );
    let h = allowed(answer("https://anyone.test", "HEAD", ""));
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(h.get("access-control-allow-credentials").is_none());
    // Wildcards in the origin and in a header.
    let h = allowed(answer("http://www.a.test", "PUT", "X-Amz-Meta-Suffix"));
    assert_eq!(h["access-control-allow-headers"], "x-amz-meta-suffix");
    assert_eq!(answer("http://ww.a.test", "PUT", ""), Preflight::Denied);
    assert_eq!(
        answer("http://www.a.test", "PUT", "x-amz-suffix"),
        Preflight::Denied
    );
    // Origins are matched case-sensitively, methods exactly.
    assert_eq!(answer("HTTP://EXAMPLE.COM", "GET", ""), Preflight::Denied);
    assert_eq!(
        answer("http://example.com", "DELETE", ""),
        Preflight::Denied
    );
    assert_eq!(
        Preflight::answer(None, &asked("http://example.com", "GET", "")),
        Preflight::NotEnabled
    );
}

#[test]
fn bad_preflights_are_bad_requests() {
    let of = |pairs: &[(&'static str, &str)]| {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        PreflightRequest::of(&h).map_err(|e| (e.code, e.message().to_owned()))
    };
    assert_eq!(
        of(&[("access-control-request-method", "GET")]),
        Err((
            Code::BadRequest,
            "Insufficient information. Origin request header needed.".into()
        ))
    );
    for method in ["", "get", "PATCH", "OPTIONS"] {
        let got = of(&[
            ("origin", "http://a"),
            ("access-control-request-method", method),
        ]);
        assert_eq!(
            got,
            Err((
                Code::BadRequest,
                format!("Invalid Access-Control-Request-Method: {method}")
            ))
        );
    }
    assert_eq!(
        of(&[("origin", "http://a")]),
        Err((
            Code::BadRequest,
            "Invalid Access-Control-Request-Method: ".into()
        ))
    );
    let got = of(&[
        ("origin", "http://a"),
        ("access-control-request-method", "PUT"),
        ("access-control-request-headers", "content-type, bad/header"),
    ]);
    assert_eq!(
        got,
        Err((
            Code::BadRequest,
            "Access-Control-Request-Headers \"bad/header\" contains invalid character.".into()
        ))
    );
    let ok = of(&[
        ("origin", "http://a"),
        ("access-control-request-method", "PUT"),
        (
            "access-control-request-headers",
            "Content-Type,, X-Amz-Date ",
        ),
    ])
    .unwrap();
    assert_eq!(ok.headers, ["content-type", "x-amz-date"]);
}

#[test]
fn real_responses_get_the_matching_rules_headers_and_vary() {
    let c = parsed(&rule(
        "<AllowedOrigin>http://app.test</AllowedOrigin><AllowedMethod>GET</AllowedMethod><ExposeHeader>ETag</ExposeHeader>",
    ))
    .unwrap();
    let h = c.response_headers("http://app.test", &Method::GET);
    assert_eq!(h["access-control-allow-origin"], "http://app.test");
    assert_eq!(h["access-control-expose-headers"], "ETag");
    assert_eq!(h["vary"], VARY);
    let h = c.response_headers("http://evil.test", &Method::GET);
    assert_eq!(h.len(), 1, "only Vary: {h:?}");
    let h = c.response_headers("http://app.test", &Method::PUT);
    assert!(h.get("access-control-allow-origin").is_none());

    // Applied over what a relayed or cached answer carried.
    let mut response = HeaderMap::new();
    response.insert(
        "access-control-allow-origin",
        "http://other.test".parse().unwrap(),
    );
    response.insert("access-control-expose-headers", "x-secret".parse().unwrap());
    response.append("vary", "Accept-Encoding".parse().unwrap());
    response.append("vary", VARY.parse().unwrap());
    apply(
        &mut response,
        c.response_headers("http://evil.test", &Method::GET),
    );
    assert!(response.get("access-control-allow-origin").is_none());
    assert!(response.get("access-control-expose-headers").is_none());
    let vary: Vec<_> = response.get_all("vary").iter().collect();
    assert_eq!(vary, ["Accept-Encoding", VARY]);
}

#[test]
fn wildcards() {
    assert!(wildcard("*", ""));
    assert!(wildcard("http://*.a.test", "http://x.y.a.test"));
    assert!(!wildcard("http://*.a.test", "http://a.test"));
    assert!(!wildcard("ab*ba", "aba"));
    assert!(wildcard("ab*ba", "abba"));
    assert!(!wildcard("exact", "exactly"));
}
