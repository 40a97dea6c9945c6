use hyper_util::client::proxy::matcher::Matcher;

use super::*;

fn uri(s: &str) -> Uri {
    s.parse().unwrap()
}

fn no_proxy() -> Matcher {
    Matcher::builder().build()
}

#[test]
fn the_direct_stack_is_the_default() {
    let url = uri("https://openrouter.ai/api/v1/chat/completions");
    for asked in [None, Some(""), Some("direct")] {
        assert_eq!(
            Stack::choose_with(&url, asked, &no_proxy()).unwrap(),
            Stack::Direct
        );
    }
}

#[test]
fn orbatch_http_reqwest_forces_reqwest_and_a_typo_is_an_error() {
    let url = uri("https://openrouter.ai/api/v1/chat/completions");
    let reqwest = Stack::choose_with(&url, Some("reqwest"), &no_proxy()).unwrap();
    assert_eq!(reqwest, Stack::Reqwest);
    let err = Stack::choose_with(&url, Some("hyperr"), &no_proxy()).unwrap_err();
    assert!(err.to_string().contains("ORBATCH_HTTP=hyperr"), "{err}");
}

#[test]
fn a_proxy_for_the_scheme_keeps_reqwest_unless_no_proxy_names_the_host() {
    let url = uri("https://openrouter.ai/api/v1/chat/completions");
    let proxy = "http://proxy.internal:3128";
    let stack = |m: Matcher| Stack::choose_with(&url, None, &m).unwrap();
    assert_eq!(
        stack(Matcher::builder().https(proxy).build()),
        Stack::Reqwest
    );
    assert_eq!(stack(Matcher::builder().all(proxy).build()), Stack::Reqwest);
    let exempt = Matcher::builder().https(proxy).no("openrouter.ai").build();
    assert_eq!(stack(exempt), Stack::Direct);
    // A proxy for the other scheme does not apply.
    assert_eq!(stack(Matcher::builder().http(proxy).build()), Stack::Direct);
}

#[test]
fn userinfo_in_the_url_keeps_reqwest() {
    let url = uri("http://user:pw@127.0.0.1:9/api/v1/chat/completions");
    assert_eq!(
        Stack::choose_with(&url, None, &no_proxy()).unwrap(),
        Stack::Reqwest
    );
}

/// https builds with rustls over the platform's root certificates (no network: nothing is
/// sent), and the configuration leaves ALPN (h2, http/1.1) to the connector.
#[test]
fn the_tls_connector_builds_with_the_platform_roots() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = tls_config().unwrap();
    assert!(config.alpn_protocols.is_empty());
    let headers = HeaderMap::new();
    let direct = Direct::new(Setup {
        chat_url: uri("https://openrouter.ai/api/v1/chat/completions"),
        headers: &headers,
        timeout: Duration::from_secs(5),
        max_idle: 4,
        caps: Caps::default(),
        redactor: Redactor::default(),
    });
    assert!(direct.is_ok());
}

/// The `Host` set once for plain HTTP is the one hyper-util would format per request.
#[test]
fn the_host_header_is_the_pools_own() {
    for (url, host) in [
        (
            "http://127.0.0.1:8080/api/v1/chat/completions",
            "127.0.0.1:8080",
        ),
        ("http://localhost/v1/chat/completions", "localhost"),
        ("http://example.com:80/v1", "example.com"),
        ("http://example.com:443/v1", "example.com:443"),
        ("http://[::1]:9000/v1", "[::1]:9000"),
    ] {
        let value = host_header(&uri(url)).unwrap();
        assert_eq!(value.to_str().unwrap(), host, "{url}");
    }
}
