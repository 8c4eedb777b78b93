//! Verifying what a provider signs: ID tokens (OpenID Connect Core §3.1.3.7) and logout tokens
//! (Back-Channel Logout 1.0 §2.6). Signature, algorithm, issuer, audience and times are
//! jsonwebtoken's checks; what is particular to each kind of token is checked here. Every refusal
//! names the check that failed, for the log line.

use std::fmt;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// The logout event's name in a logout token's `events` claim.
const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Clock difference tolerated between the provider and us.
const LEEWAY_SECS: u64 = 60;

pub type Claims = Map<String, Value>;

#[derive(Debug, Clone, PartialEq)]
pub enum TokenProblem {
    /// Not a JWT, or a header we cannot read (which is also what `alg: none` gives).
    Malformed(String),
    /// Signed with an algorithm the provider does not advertise, or a symmetric one.
    Algorithm(String),
    /// Names a key the provider's key set does not hold (yet).
    UnknownKey(Option<String>),
    Signature,
    /// A claim check failed: which one.
    Claim(String),
}

impl fmt::Display for TokenProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenProblem::Malformed(why) => write!(f, "malformed token: {why}"),
            TokenProblem::Algorithm(alg) => write!(f, "alg {alg} is not accepted"),
            TokenProblem::UnknownKey(kid) => write!(f, "unknown signing key {kid:?}"),
            TokenProblem::Signature => write!(f, "bad signature"),
            TokenProblem::Claim(why) => write!(f, "{why}"),
        }
    }
}

/// What a token must satisfy besides its signature.
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub algorithms: &'a [Algorithm],
    /// ID tokens must carry `exp`; logout tokens may.
    pub exp_required: bool,
}

/// Verifies signature, `alg`, `iss`, `aud` (and `azp` when there are several audiences), `exp`
/// and `iat`; returns the claims.
pub fn verify(token: &str, keys: &[Jwk], expected: &Expected<'_>) -> Result<Claims, TokenProblem> {
    let header =
        jsonwebtoken::decode_header(token).map_err(|e| TokenProblem::Malformed(e.to_string()))?;
    if !expected.algorithms.contains(&header.alg) {
        return Err(TokenProblem::Algorithm(format!("{:?}", header.alg)));
    }
    let jwk = find_key(keys, header.kid.as_deref(), header.alg)
        .ok_or_else(|| TokenProblem::UnknownKey(header.kid.clone()))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| TokenProblem::Malformed(e.to_string()))?;
    let mut validation = Validation::new(header.alg);
    validation.leeway = LEEWAY_SECS;
    validation.set_issuer(&[expected.issuer]);
    validation.set_audience(&[expected.client_id]);
    let mut required = vec!["iss", "aud"];
    if expected.exp_required {
        required.push("exp");
    }
    validation.set_required_spec_claims(&required);
    let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => TokenProblem::Signature,
            ErrorKind::InvalidAlgorithm => TokenProblem::Algorithm(format!("{:?}", header.alg)),
            ErrorKind::ExpiredSignature => TokenProblem::Claim("exp: the token has expired".into()),
            ErrorKind::InvalidIssuer => TokenProblem::Claim("iss: another issuer".into()),
            ErrorKind::InvalidAudience => {
                TokenProblem::Claim("aud: issued to another client".into())
            }
            ErrorKind::MissingRequiredClaim(claim) => {
                TokenProblem::Claim(format!("{claim}: missing"))
            }
            ErrorKind::ImmatureSignature => TokenProblem::Claim("nbf: not valid yet".into()),
            _ => TokenProblem::Malformed(e.to_string()),
        }
    })?;
    let claims = data.claims;
    if !claims.get("iat").is_some_and(Value::is_number) {
        return Err(TokenProblem::Claim("iat: missing".into()));
    }
    // Several audiences: the token must say it was issued for us (Core §3.1.3.7 items 4–5).
    if claims
        .get("aud")
        .and_then(Value::as_array)
        .is_some_and(|a| a.len() > 1)
        && claims.get("azp").and_then(Value::as_str) != Some(expected.client_id)
    {
        return Err(TokenProblem::Claim(
            "azp: several audiences and this client is not the authorized party".into(),
        ));
    }
    Ok(claims)
}

impl super::Provider {
    /// [`verify`] with this provider's keys; a token naming a key we do not hold makes us fetch
    /// the provider's keys again (a rotation there), at most once a minute.
    pub async fn verify_token(
        &self,
        metadata: &super::Metadata,
        token: &str,
        exp_required: bool,
    ) -> Result<Claims, TokenProblem> {
        let algorithms = metadata.algorithms();
        let expected = Expected {
            issuer: &metadata.issuer,
            client_id: &self.config.client_id,
            algorithms: &algorithms,
            exp_required,
        };
        match verify(token, &self.keys(), &expected) {
            Err(TokenProblem::UnknownKey(_)) if self.refetch_keys().await => {
                verify(token, &self.keys(), &expected)
            }
            result => result,
        }
    }
}

/// The key a token names: by `kid`, or — a provider with keys without ids — the only key that
/// fits the algorithm.
fn find_key<'a>(keys: &'a [Jwk], kid: Option<&str>, alg: Algorithm) -> Option<&'a Jwk> {
    match kid {
        Some(kid) => keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid)),
        None => {
            let mut fitting = keys.iter().filter(|k| {
                // KeyAlgorithm and Algorithm share their names ("RS256").
                k.common
                    .key_algorithm
                    .is_none_or(|a| format!("{a:?}") == format!("{alg:?}"))
            });
            match (fitting.next(), fitting.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
    }
}

/// The ID token's own checks: `nonce` is the one this sign-in sent, `sub` is there.
pub fn check_id_token(claims: &Claims, nonce: &str) -> Result<(), TokenProblem> {
    match claims.get("nonce").and_then(Value::as_str) {
        Some(n) if constant_time_eq(n, nonce) => {}
        Some(_) => return Err(TokenProblem::Claim("nonce: not this sign-in's".into())),
        None => return Err(TokenProblem::Claim("nonce: missing".into())),
    }
    subject(claims)?;
    Ok(())
}

pub fn subject(claims: &Claims) -> Result<&str, TokenProblem> {
    claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| {
            TokenProblem::Claim("sub: missing or not a string of at most 255 bytes".into())
        })
}

/// What a verified logout token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutNames {
    pub subject: Option<String>,
    pub provider_session: Option<String>,
    pub jti: String,
}

/// A logout token's own checks (Back-Channel Logout §2.4, §2.6): the logout event, no `nonce`
/// (so an ID token can never pass as one), a `jti`, and `sub` and/or `sid`.
pub fn check_logout_token(claims: &Claims) -> Result<LogoutNames, TokenProblem> {
    let event = claims
        .get("events")
        .and_then(Value::as_object)
        .and_then(|events| events.get(BACKCHANNEL_EVENT));
    if !event.is_some_and(Value::is_object) {
        return Err(TokenProblem::Claim(
            "events: no back-channel logout event".into(),
        ));
    }
    if claims.contains_key("nonce") {
        return Err(TokenProblem::Claim(
            "nonce: a logout token must not carry one".into(),
        ));
    }
    let text = |name: &str| -> Result<Option<String>, TokenProblem> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => Ok(Some(s.clone())),
            Some(_) => Err(TokenProblem::Claim(format!(
                "{name}: not a string of at most 255 bytes"
            ))),
        }
    };
    let jti = text("jti")?.ok_or_else(|| TokenProblem::Claim("jti: missing".into()))?;
    let names = LogoutNames {
        subject: text("sub")?,
        provider_session: text("sid")?,
        jti,
    };
    if names.subject.is_none() && names.provider_session.is_none() {
        return Err(TokenProblem::Claim(
            "sub and sid: neither is present".into(),
        ));
    }
    Ok(names)
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Claims {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn logout_tokens_need_the_event_a_jti_and_a_name_and_no_nonce() {
        let good = json!({"events": {BACKCHANNEL_EVENT: {}}, "jti": "j1", "sid": "s1"});
        assert_eq!(
            check_logout_token(&claims(good.clone())),
            Ok(LogoutNames {
                subject: None,
                provider_session: Some("s1".into()),
                jti: "j1".into()
            })
        );
        let mut with_nonce = good.clone();
        with_nonce["nonce"] = json!("n");
        let mut no_jti = good.clone();
        no_jti.as_object_mut().map(|o| o.remove("jti"));
        let mut no_names = good.clone();
        no_names.as_object_mut().map(|o| o.remove("sid"));
        let mut odd_sid = good.clone();
        odd_sid["sid"] = json!(["s1"]);
        let wrong_event = json!({"events": {"other": {}}, "jti": "j1", "sid": "s1"});
        let event_not_object =
            json!({"events": {BACKCHANNEL_EVENT: "yes"}, "jti": "j1", "sid": "s1"});
        for bad in [
            with_nonce,
            no_jti,
            no_names,
            odd_sid,
            wrong_event,
            event_not_object,
        ] {
            assert!(check_logout_token(&claims(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn id_tokens_need_this_sign_ins_nonce() {
        let token = claims(json!({"sub": "alice", "nonce": "abc"}));
        assert_eq!(check_id_token(&token, "abc"), Ok(()));
        assert!(check_id_token(&token, "abd").is_err());
        assert!(check_id_token(&claims(json!({"sub": "alice"})), "abc").is_err());
        assert!(check_id_token(&claims(json!({"nonce": "abc"})), "abc").is_err());
        assert!(check_id_token(&claims(json!({"sub": 5, "nonce": "abc"})), "abc").is_err());
    }

    #[test]
    fn unsigned_and_garbage_tokens_are_malformed() {
        let expected = Expected {
            issuer: "https://idp",
            client_id: "hubgate",
            algorithms: &[Algorithm::RS256],
            exp_required: true,
        };
        // {"alg":"none"}.{"sub":"alice"}.
        let unsigned = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.";
        for token in [unsigned, "", "a.b.c", "not a token"] {
            assert!(matches!(
                verify(token, &[], &expected),
                Err(TokenProblem::Malformed(_))
            ));
        }
    }
}
