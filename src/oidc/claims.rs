//! From a provider's verified claims to the person a session is for — user name, email, groups —
//! and whether this provider may sign them in at all. Claims are the provider's data, not ours:
//! odd types are ignored, huge values cut or refused, and nothing that could break a header
//! (control characters; commas in a group, which `X-Forwarded-Groups` joins with) gets through.

use serde_json::Value;

use super::tokens::Claims;
use crate::config::ProviderConfig;

const MAX_USER_LEN: usize = 256;
const MAX_EMAIL_LEN: usize = 320;
const MAX_GROUP_LEN: usize = 256;
const MAX_GROUPS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub user: String,
    /// Empty when the provider sent none, or said it is not verified.
    pub email: String,
    pub groups: Vec<String>,
}

/// Why a verified person may not sign in through this provider (shown to them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The claims cannot make a user name we could pass on.
    Unusable(String),
    /// Outside `allowed_groups` or `allowed_email_domains`.
    NotAllowed(String),
}

pub fn person(claims: &Claims, config: &ProviderConfig) -> Result<Person, Refusal> {
    let user = claims
        .get(&config.user_claim)
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .or_else(|| claims.get("sub").and_then(Value::as_str))
        .unwrap_or_default();
    if user.is_empty() || user.len() > MAX_USER_LEN || !printable(user) {
        return Err(Refusal::Unusable(format!(
            "the {} claim is not a usable user name",
            config.user_claim
        )));
    }
    // An address the provider itself calls unverified is not passed on as the person's.
    let verified = claims.get("email_verified").and_then(verified_flag) != Some(false);
    let email = claims
        .get(&config.email_claim)
        .and_then(Value::as_str)
        .filter(|e| verified && e.len() <= MAX_EMAIL_LEN && printable(e) && e.contains('@'))
        .unwrap_or_default();
    Ok(Person {
        user: user.to_string(),
        email: email.to_string(),
        groups: groups(claims.get(&config.groups_claim)),
    })
}

/// `email_verified` as providers send it: a boolean, or (some) the string "true"/"false".
fn verified_flag(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A JSON array of strings, or one string separated by spaces or commas.
fn groups(value: Option<&Value>) -> Vec<String> {
    let names: Vec<&str> = match value {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => s.split([' ', ',']).collect(),
        _ => Vec::new(),
    };
    let mut groups: Vec<String> = Vec::new();
    for name in names {
        let name = name.trim();
        if name.is_empty() || name.len() > MAX_GROUP_LEN || !printable(name) || name.contains(',') {
            continue;
        }
        if !groups.iter().any(|g| g == name) {
            groups.push(name.to_string());
        }
        if groups.len() == MAX_GROUPS {
            break;
        }
    }
    groups
}

fn printable(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

/// Whether this provider may sign `person` in: `allowed_groups` and `allowed_email_domains`
/// (each empty = any).
pub fn admit(person: &Person, config: &ProviderConfig) -> Result<(), Refusal> {
    if !config.allowed_groups.is_empty()
        && !person
            .groups
            .iter()
            .any(|g| config.allowed_groups.contains(g))
    {
        return Err(Refusal::NotAllowed(format!(
            "Your account ({}) is not in a group allowed to sign in through {}.",
            person.user, config.name
        )));
    }
    if !config.allowed_email_domains.is_empty() {
        let domain = person
            .email
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase())
            .unwrap_or_default();
        if !config.allowed_email_domains.contains(&domain) {
            return Err(Refusal::NotAllowed(format!(
                "Your account ({}) has no verified email address in a domain allowed to sign in through {}.",
                person.user, config.name
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider() -> ProviderConfig {
        ProviderConfig {
            id: "corp".into(),
            name: "Corp SSO".into(),
            issuer: "https://idp".into(),
            client_id: "hubgate".into(),
            client_secret: None,
            scopes: vec!["openid".into()],
            user_claim: "preferred_username".into(),
            email_claim: "email".into(),
            groups_claim: "groups".into(),
            allowed_email_domains: vec![],
            allowed_groups: vec![],
            backchannel_logout: true,
            end_provider_session: false,
            recheck_interval: None,
        }
    }

    fn claims(value: Value) -> Claims {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn maps_user_email_and_groups_in_either_shape() {
        let p = person(
            &claims(json!({"sub": "s1", "preferred_username": "alice", "email": "a@example.com", "groups": ["ops", "staff", "ops"]})),
            &provider(),
        )
        .unwrap();
        assert_eq!(p.user, "alice");
        assert_eq!(p.email, "a@example.com");
        assert_eq!(p.groups, ["ops", "staff"]);
        let p = person(
            &claims(json!({"sub": "s1", "groups": "ops, staff research"})),
            &provider(),
        )
        .unwrap();
        assert_eq!(p.user, "s1", "falls back to sub");
        assert_eq!(p.groups, ["ops", "staff", "research"]);
    }

    #[test]
    fn odd_and_hostile_claims_never_reach_a_header() {
        let long = "g".repeat(10_000);
        let p = person(
            &claims(
                json!({"sub": "s1", "preferred_username": 42, "email": "a\r\nX: y@example.com",
                "groups": ["ok", "bad\ngroup", "a,b", long, 7, {"x": 1}]}),
            ),
            &provider(),
        )
        .unwrap();
        assert_eq!(p.user, "s1");
        assert_eq!(p.email, "");
        assert_eq!(p.groups, ["ok"]);
        let many: Vec<String> = (0..10_000).map(|i| format!("g{i}")).collect();
        let p = person(&claims(json!({"sub": "s1", "groups": many})), &provider()).unwrap();
        assert_eq!(p.groups.len(), MAX_GROUPS);
        for hostile in [
            json!({"sub": "a\nb"}),
            json!({"sub": "x".repeat(300)}),
            json!({}),
        ] {
            assert!(matches!(
                person(&claims(hostile), &provider()),
                Err(Refusal::Unusable(_))
            ));
        }
    }

    #[test]
    fn unverified_email_is_dropped_and_fails_a_domain_rule() {
        let mut config = provider();
        config.allowed_email_domains = vec!["example.com".into()];
        let unverified = person(
            &claims(json!({"sub": "d", "email": "d@example.com", "email_verified": false})),
            &config,
        )
        .unwrap();
        assert_eq!(unverified.email, "");
        assert!(admit(&unverified, &config).is_err());
        let verified = person(
            &claims(json!({"sub": "a", "email": "a@Example.com", "email_verified": "true"})),
            &config,
        )
        .unwrap();
        assert_eq!(admit(&verified, &config), Ok(()));
        let other = person(
            &claims(json!({"sub": "c", "email": "c@other.org"})),
            &config,
        )
        .unwrap();
        assert!(admit(&other, &config).is_err());
    }

    #[test]
    fn allowed_groups_need_one_match() {
        let mut config = provider();
        config.allowed_groups = vec!["ops".into()];
        let person = |groups: Value| {
            person(&claims(json!({"sub": "u", "groups": groups})), &config).unwrap()
        };
        assert_eq!(admit(&person(json!(["staff", "ops"])), &config), Ok(()));
        assert!(admit(&person(json!(["research"])), &config).is_err());
        assert!(admit(&person(json!(null)), &config).is_err());
    }
}
