//! What an OpenID provider sends, at the gateway's door: ID tokens and logout tokens. The key set
//! holds one RSA public key whose private half was thrown away when it was made, so no input can
//! carry a valid signature: every token must be refused, and none may panic. Inputs starting with
//! `{` are taken as already-verified claims instead, for the claim checks (logout event, nonce,
//! jti, sub/sid) and the mapping of claims to a person (user, email, groups), whose output must
//! never hold what could break a header.
#![no_main]

use std::sync::LazyLock;

use hubgate::config::ProviderConfig;
use hubgate::oidc::claims::{admit, person};
use hubgate::oidc::tokens::{check_id_token, check_logout_token, verify, Claims, Expected};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;

static KEYS: LazyLock<Vec<Jwk>> = LazyLock::new(|| {
    let jwk = serde_json::json!({
        "kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256", "e": "AQAB",
        "n": "5BuAc7Ku0aY-YsBJGoHS6ZogLPul9lkg83xgqjwA0CPtBYZAsnQaHIuK4bfYWNWl4jYAv9OjkoCRKgiAEjR28o7QwT-57ec_lF67Qj7wqolfMKPKrRSixR30BUd2AmV8qYu9rVrcML7sRtzjEZvp6dji0z4dTRIdNVhrWBoyVug_oerphOaZ9w91sZPLDbhlyE5U28rQ7e1aNckWty9d391CwSsJSHL9ny8u3NFiwhLohMv9L35Hth92H8vHFChCD63ZOBQevT4Yn_hOrou4s8CHHPNUCv37mGQu73HuP6Hl-eOYkMW96zgvH9rJcpnV8NSDYKpHXzLr9nkKptvtnw"
    });
    vec![serde_json::from_value(jwk).expect("a JWK")]
});

static PROVIDER: LazyLock<ProviderConfig> = LazyLock::new(|| ProviderConfig {
    id: "corp".into(),
    name: "Corp SSO".into(),
    issuer: "https://idp.example.com".into(),
    client_id: "hubgate".into(),
    client_secret: None,
    scopes: vec!["openid".into()],
    user_claim: "preferred_username".into(),
    email_claim: "email".into(),
    groups_claim: "groups".into(),
    allowed_email_domains: vec!["example.com".into()],
    allowed_groups: vec![],
    backchannel_logout: true,
    end_provider_session: false,
    recheck_interval: None,
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.starts_with('{') {
        let Ok(claims) = serde_json::from_str::<Claims>(text) else {
            return;
        };
        let _ = check_logout_token(&claims);
        let _ = check_id_token(&claims, "the-nonce");
        if let Ok(p) = person(&claims, &PROVIDER) {
            assert!(!p.user.is_empty() && p.user.len() <= 256, "{p:?}");
            assert!(!p.user.chars().any(char::is_control), "{p:?}");
            assert!(!p.email.chars().any(char::is_control), "{p:?}");
            assert!(p.email.is_empty() || p.email.contains('@'), "{p:?}");
            assert!(p.groups.len() <= 256, "{p:?}");
            for g in &p.groups {
                assert!(!g.is_empty() && !g.contains(',') && !g.chars().any(char::is_control), "{p:?}");
            }
            let _ = admit(&p, &PROVIDER);
        }
        return;
    }
    for exp_required in [true, false] {
        let expected = Expected {
            issuer: "https://idp.example.com",
            client_id: "hubgate",
            algorithms: &[Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            exp_required,
        };
        assert!(
            verify(text, &KEYS, &expected).is_err(),
            "accepted a token nobody could sign: {text:?}"
        );
    }
});
