//! What a provider publishes: its metadata (`/.well-known/openid-configuration`) and its signing
//! keys (JWKS), fetched over HTTP and kept. Keys are fetched again when a token names a key we
//! do not know — a rotation at the provider — but at most once a minute, so tokens with made-up
//! key ids cannot make the gateway hammer the provider.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::Algorithm;
use serde::Deserialize;

use crate::config::ProviderConfig;

/// A provider's answer may not hold a request longer than this.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Metadata, key sets, token and userinfo answers are a few KiB; more is refused.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// At most one key refetch per provider per this interval.
const KEY_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// Signature algorithms we verify: asymmetric only. An HS256 token would be keyed with the client
/// secret, which other parties may hold too; `none` is never a signature.
const ASYMMETRIC: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(Duration::from_secs(3))
        // A provider's endpoints answer directly; a redirect would be followed blind.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("hubgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client for OpenID providers: {e}"))
}

/// Why a call to the provider gave no usable answer.
#[derive(Debug, Clone)]
pub enum HttpProblem {
    /// No answer: cannot connect, timed out, too large, cut off.
    Unreachable(String),
    /// The provider answered, with an error status (its body says why: `invalid_grant`, …).
    Refused { status: u16, text: String },
}

impl std::fmt::Display for HttpProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpProblem::Unreachable(why) => write!(f, "{why}"),
            HttpProblem::Refused { status, text } => write!(f, "answered {status}: {text}"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

impl Metadata {
    /// The algorithms an ID token or logout token may be signed with: those the provider
    /// advertises (RS256 when it advertises none, as the spec defaults), asymmetric ones only.
    pub fn algorithms(&self) -> Vec<Algorithm> {
        let advertised: Vec<Algorithm> = if self.id_token_signing_alg_values_supported.is_empty() {
            vec![Algorithm::RS256]
        } else {
            self.id_token_signing_alg_values_supported
                .iter()
                .filter_map(|name| name.parse().ok())
                .collect()
        };
        ASYMMETRIC
            .into_iter()
            .filter(|alg| advertised.contains(alg))
            .collect()
    }

    /// `client_secret_post` only when the provider does not take the default, HTTP Basic.
    pub fn secret_in_body(&self) -> bool {
        let methods = &self.token_endpoint_auth_methods_supported;
        !methods.is_empty()
            && !methods.iter().any(|m| m == "client_secret_basic")
            && methods.iter().any(|m| m == "client_secret_post")
    }
}

#[derive(Default)]
struct Known {
    metadata: Option<Arc<Metadata>>,
    keys: Arc<Vec<Jwk>>,
    /// When the keys were last fetched again for an unknown key (discovery's fetch does not count).
    last_refetch: Option<Instant>,
    last_error: Option<String>,
}

/// One provider: its configuration and what it has published.
pub struct Provider {
    pub config: ProviderConfig,
    http: reqwest::Client,
    known: RwLock<Known>,
}

impl Provider {
    pub fn new(config: ProviderConfig, http: reqwest::Client) -> Self {
        Provider {
            config,
            http,
            known: RwLock::default(),
        }
    }

    fn known(&self) -> std::sync::RwLockReadGuard<'_, Known> {
        // Every write replaces whole fields, so a poisoned lock holds consistent data.
        self.known.read().unwrap_or_else(|p| p.into_inner())
    }

    fn known_mut(&self) -> std::sync::RwLockWriteGuard<'_, Known> {
        self.known.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The metadata, once discovery has succeeded.
    pub fn metadata(&self) -> Option<Arc<Metadata>> {
        self.known().metadata.clone()
    }

    /// Why the provider cannot be used yet (for `/hub/ready` and logs); `None` when it can.
    pub fn problem(&self) -> Option<String> {
        let known = self.known();
        match &known.metadata {
            Some(_) => None,
            None => Some(
                known
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "discovery has not finished yet".into()),
            ),
        }
    }

    pub fn keys(&self) -> Arc<Vec<Jwk>> {
        self.known().keys.clone()
    }

    /// Fetches the metadata and keys; on failure remembers why.
    pub async fn discover(&self) -> Result<(), String> {
        let result = self.fetch_metadata_and_keys().await;
        let mut known = self.known_mut();
        match result {
            Ok((metadata, keys)) => {
                known.metadata = Some(Arc::new(metadata));
                known.keys = Arc::new(keys);
                known.last_error = None;
                Ok(())
            }
            Err(e) => {
                known.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    async fn fetch_metadata_and_keys(&self) -> Result<(Metadata, Vec<Jwk>), String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let body = self.get(&url).await.map_err(|e| format!("{url}: {e}"))?;
        let metadata: Metadata = serde_json::from_slice(&body)
            .map_err(|e| format!("{url}: not OpenID provider metadata: {e}"))?;
        // A document that names another issuer belongs to someone else (OpenID Discovery §4.3).
        if metadata.issuer != self.config.issuer {
            return Err(format!(
                "{url} names the issuer {:?}, not the configured {:?}",
                metadata.issuer, self.config.issuer
            ));
        }
        if metadata.algorithms().is_empty() {
            return Err(format!(
                "the provider signs ID tokens only with {:?}: hubgate verifies asymmetric signatures (RS*, PS*, ES*, EdDSA)",
                metadata.id_token_signing_alg_values_supported
            ));
        }
        let keys = self.fetch_keys(&metadata.jwks_uri).await?;
        Ok((metadata, keys))
    }

    async fn fetch_keys(&self, jwks_uri: &str) -> Result<Vec<Jwk>, String> {
        #[derive(Deserialize)]
        struct KeySet {
            keys: Vec<serde_json::Value>,
        }
        let body = self
            .get(jwks_uri)
            .await
            .map_err(|e| format!("{jwks_uri}: {e}"))?;
        let set: KeySet =
            serde_json::from_slice(&body).map_err(|e| format!("{jwks_uri}: not a JWK set: {e}"))?;
        // Keys of kinds we do not verify with (encryption keys, unknown types) are skipped, not fatal.
        let keys: Vec<Jwk> = set
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .filter(|k| {
                !matches!(
                    k.common.public_key_use,
                    Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
                )
            })
            .collect();
        if keys.is_empty() {
            return Err(format!("{jwks_uri}: no signing key hubgate can use"));
        }
        Ok(keys)
    }

    /// Fetches the keys again after a token named one we do not have — unless that was done less
    /// than a minute ago. Returns whether the keys changed.
    pub async fn refetch_keys(&self) -> bool {
        let Some(metadata) = self.metadata() else {
            return false;
        };
        {
            let mut known = self.known_mut();
            if known
                .last_refetch
                .is_some_and(|at| at.elapsed() < KEY_REFETCH_INTERVAL)
            {
                return false;
            }
            // Claimed before the fetch, so concurrent unknown-key tokens cause one fetch, not many.
            known.last_refetch = Some(Instant::now());
        }
        match self.fetch_keys(&metadata.jwks_uri).await {
            Ok(keys) => {
                tracing::info!(provider = %self.config.id, keys = keys.len(), "provider signing keys fetched again");
                self.known_mut().keys = Arc::new(keys);
                true
            }
            Err(e) => {
                tracing::warn!(provider = %self.config.id, error = %e, "provider signing keys could not be fetched again");
                false
            }
        }
    }

    pub async fn get(&self, url: &str) -> Result<Vec<u8>, HttpProblem> {
        let response = self
            .http
            .get(url)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| HttpProblem::Unreachable(describe(&e)))?;
        read_answer(response).await
    }

    /// Posts a form to the provider (the token endpoint), authenticating as the client.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<Vec<u8>, HttpProblem> {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let mut request = self.http.post(url).header("Accept", "application/json");
        let secret_in_body = self.metadata().is_some_and(|m| m.secret_in_body());
        match &self.config.client_secret {
            Some(secret) if !secret_in_body => {
                // RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
                let encode =
                    |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
                request = request.basic_auth(encode(&self.config.client_id), Some(encode(secret)));
            }
            Some(secret) => {
                fields.push(("client_id", &self.config.client_id));
                fields.push(("client_secret", secret));
            }
            None => fields.push(("client_id", &self.config.client_id)),
        }
        let response = request
            .form(&fields)
            .send()
            .await
            .map_err(|e| HttpProblem::Unreachable(describe(&e)))?;
        read_answer(response).await
    }

    /// Asks the userinfo endpoint with the access token.
    pub async fn userinfo(&self, url: &str, access_token: &str) -> Result<Vec<u8>, HttpProblem> {
        let response = self
            .http
            .get(url)
            .bearer_auth(access_token)
            .header("Accept", "application/json")
            .send()
            .await
            .map_err(|e| HttpProblem::Unreachable(describe(&e)))?;
        read_answer(response).await
    }
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("no answer within {HTTP_TIMEOUT:?}")
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        e.to_string()
    }
}

/// The body of a provider's answer, at most [`MAX_ANSWER_BYTES`]. An error status comes back as
/// [`HttpProblem::Refused`] with the start of the body (`{"error":"invalid_grant"}` says why).
async fn read_answer(mut response: reqwest::Response) -> Result<Vec<u8>, HttpProblem> {
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| HttpProblem::Unreachable(describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(HttpProblem::Unreachable(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if status.is_success() {
        Ok(body)
    } else {
        Err(HttpProblem::Refused {
            status: status.as_u16(),
            text: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(algs: &[&str]) -> Metadata {
        Metadata {
            issuer: "https://idp".into(),
            authorization_endpoint: String::new(),
            token_endpoint: String::new(),
            jwks_uri: String::new(),
            userinfo_endpoint: None,
            end_session_endpoint: None,
            id_token_signing_alg_values_supported: algs.iter().map(|a| a.to_string()).collect(),
            token_endpoint_auth_methods_supported: vec![],
        }
    }

    #[test]
    fn only_advertised_asymmetric_algorithms_are_accepted() {
        assert_eq!(metadata(&[]).algorithms(), [Algorithm::RS256]);
        assert_eq!(
            metadata(&["HS256", "none", "ES256", "RS256", "made-up"]).algorithms(),
            [Algorithm::RS256, Algorithm::ES256]
        );
        assert!(metadata(&["HS256", "HS512"]).algorithms().is_empty());
    }
}
