//! `[[hub.providers]]`: the OpenID Connect providers people may sign in with.

use std::time::Duration;

use super::parse::is_lowercase_name;
use super::reader::Section;
use super::ProviderConfig;

pub(crate) fn read_providers(
    hub: &mut Section,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<ProviderConfig> {
    let mut providers: Vec<ProviderConfig> = Vec::new();
    for mut p in hub.array_of_tables("providers") {
        let id = p.string("id", "");
        if !is_lowercase_name(&id) {
            p.report(
                "id",
                format!("{id:?} is not a provider id (lowercase letters, digits and '-')"),
            );
        } else if providers.iter().any(|other| other.id == id) {
            p.report("id", format!("provider id {id:?} appears twice"));
        }
        let name = p.string("name", &id);
        let issuer = p.string("issuer", "");
        if let Err(why) = check_issuer(&issuer) {
            p.report("issuer", why);
        }
        let client_id = p.string("client_id", "");
        if client_id.is_empty() {
            p.report(
                "client_id",
                "missing: the client id hubgate is registered under at the provider",
            );
        }
        let client_secret = read_client_secret(&mut p, env);
        let scopes = if p.has("scopes") {
            p.string_list("scopes")
        } else {
            vec!["openid".into(), "profile".into(), "email".into()]
        };
        if !scopes.iter().any(|s| s == "openid") {
            p.report(
                "scopes",
                "must include \"openid\" (without it the provider sends no ID token)",
            );
        }
        if let Some(bad) = scopes.iter().find(|s| s.is_empty() || s.contains(' ')) {
            p.report("scopes", format!("{bad:?} is not a scope (no spaces)"));
        }
        let user_claim = p.string("user_claim", "preferred_username");
        let email_claim = p.string("email_claim", "email");
        let groups_claim = p.string("groups_claim", "groups");
        for (key, value) in [
            ("user_claim", &user_claim),
            ("email_claim", &email_claim),
            ("groups_claim", &groups_claim),
        ] {
            if value.is_empty() {
                p.report(key, "must name a claim");
            }
        }
        let allowed_email_domains: Vec<String> = p
            .string_list("allowed_email_domains")
            .iter()
            .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
            .collect();
        if let Some(bad) = allowed_email_domains
            .iter()
            .find(|d| d.is_empty() || d.contains(['@', ' ', '/']))
        {
            p.report(
                "allowed_email_domains",
                format!("{bad:?} is not a domain (like \"example.com\")"),
            );
        }
        let allowed_groups = p.string_list("allowed_groups");
        let backchannel_logout = p.bool("backchannel_logout", true);
        let end_provider_session = p.bool("end_provider_session", false);
        let recheck_interval = p.duration("recheck_interval", Duration::ZERO);
        p.finish();
        providers.push(ProviderConfig {
            id,
            name,
            issuer,
            client_id,
            client_secret,
            scopes,
            user_claim,
            email_claim,
            groups_claim,
            allowed_email_domains,
            allowed_groups,
            backchannel_logout,
            end_provider_session,
            recheck_interval: (!recheck_interval.is_zero()).then_some(recheck_interval),
        });
    }
    providers
}

/// An issuer is an https URL; plain http only on loopback, where tests and local providers live.
fn check_issuer(issuer: &str) -> Result<(), String> {
    let rest = if let Some(rest) = issuer.strip_prefix("https://") {
        rest
    } else if let Some(rest) = issuer.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        let loopback = matches!(host, "127.0.0.1" | "localhost") || rest.starts_with("[::1]");
        if !loopback {
            return Err(format!(
                "{issuer:?} uses plain http: an issuer must be https (http only on loopback)"
            ));
        }
        rest
    } else {
        return Err(format!(
            "{issuer:?} is not an issuer URL like \"https://idp.example.com/realms/corp\""
        ));
    };
    if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ', '@']) {
        return Err(format!(
            "{issuer:?} is not an issuer URL like \"https://idp.example.com/realms/corp\""
        ));
    }
    Ok(())
}

fn read_client_secret(p: &mut Section, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let inline = p.opt_string("client_secret");
    let env_name = p.opt_string("client_secret_env");
    match (inline, env_name) {
        (Some(_), Some(_)) => {
            p.report(
                "client_secret",
                "give either client_secret or client_secret_env, not both",
            );
            None
        }
        (Some(secret), None) if secret.is_empty() => {
            p.report(
                "client_secret",
                "is empty (leave both out for a public client)",
            );
            None
        }
        (Some(secret), None) => Some(secret),
        (None, Some(name)) => match env(&name).filter(|s| !s.is_empty()) {
            Some(secret) => Some(secret),
            None => {
                p.report(
                    "client_secret_env",
                    format!("the environment variable ${name} is not set"),
                );
                None
            }
        },
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_https_except_on_loopback() {
        assert!(check_issuer("https://idp.example.com/realms/corp").is_ok());
        assert!(check_issuer("http://127.0.0.1:9000").is_ok());
        assert!(check_issuer("http://localhost:9000/x").is_ok());
        assert!(check_issuer("http://[::1]:9000").is_ok());
        for bad in [
            "",
            "idp.example.com",
            "http://idp.example.com",
            "https://",
            "https://idp.example.com/?x=1",
            "ftp://idp",
        ] {
            assert!(check_issuer(bad).is_err(), "{bad:?}");
        }
    }
}
