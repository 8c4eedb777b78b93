//! A real OpenID Provider for the tests: panva's oidc-provider (tests/oidc/provider.mjs), on a
//! free loopback port, with its built-in login form (any name, any password), back-channel
//! logout and RP-initiated logout. The person's browser at the provider is a [`Browser`] of its
//! own: cookies stay with their site, as in a real browser.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, hidden_field, Browser};

pub const CLIENT_ID: &str = "hubgate";
pub const CLIENT_SECRET: &str = "test-client-secret-for-hubgate";

pub struct OidcProvider {
    child: Option<Child>,
    pub port: u16,
    pub issuer: String,
    dir: tempfile::TempDir,
    clients: serde_json::Value,
}

/// The client registration for a gateway on `gateway_port` using provider id `id`.
pub fn client(gateway_ports: &[u16], id: &str) -> serde_json::Value {
    let redirect_uris: Vec<String> = gateway_ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/hub/oidc/{id}/callback"))
        .collect();
    let post_logout: Vec<String> = gateway_ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}/hub/login?reason=logged_out"))
        .collect();
    serde_json::json!({
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout,
        // The provider calls one instance; the others hear of it through the store.
        "backchannel_logout_uri": format!("http://127.0.0.1:{}/hub/oidc/{id}/backchannel-logout", gateway_ports[0]),
        "backchannel_logout_session_required": true,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    })
}

fn script_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

impl OidcProvider {
    pub fn start(clients: serde_json::Value) -> OidcProvider {
        OidcProvider::start_on(free_port(), clients)
    }

    pub fn start_on(port: u16, clients: serde_json::Value) -> OidcProvider {
        assert!(
            script_dir().join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed: run `(cd tests/oidc && npm ci)` (scripts/test.sh does)"
        );
        let mut provider = OidcProvider {
            child: None,
            port,
            issuer: format!("http://127.0.0.1:{port}"),
            dir: tempfile::tempdir().expect("temp dir"),
            clients,
        };
        provider.launch("k1");
        provider
    }

    fn launch(&mut self, key_id: &str) {
        let config =
            serde_json::json!({"port": self.port, "key_id": key_id, "clients": self.clients});
        let path = self.dir.path().join("provider.json");
        std::fs::write(&path, config.to_string()).expect("write provider config");
        let log = std::fs::File::create(self.dir.path().join("provider.log")).expect("log");
        let child = Command::new("node")
            .env("DEBUG", std::env::var("OIDC_DEBUG").unwrap_or_default())
            .arg(script_dir().join("provider.mjs"))
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start node tests/oidc/provider.mjs");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("the OpenID provider did not start:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("provider.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts again on the same port with a new signing key: a key rotation.
    pub fn restart_with_key(&mut self, key_id: &str) {
        self.stop();
        self.launch(key_id);
    }

    /// The `[[hub.providers]]` entry for this provider under `id`, plus `extra` lines.
    pub fn config(&self, id: &str, extra: &str) -> String {
        format!(
            "[[hub.providers]]\nid = \"{id}\"\nname = \"Corp SSO\"\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n{extra}\n",
            self.issuer
        )
    }

    /// A browser at the provider's site.
    pub fn browser(&self) -> Browser {
        Browser::new(self.issuer.clone())
    }

    fn path_of<'a>(&self, url: &'a str) -> &'a str {
        url.strip_prefix(&self.issuer)
            .unwrap_or_else(|| panic!("{url} is not at the provider {}", self.issuer))
    }

    /// From the authorization URL the gateway sent the browser to, through the provider's login
    /// form as `login`, to the provider's redirect back: returns that URL (the gateway callback).
    pub async fn sign_in(
        &self,
        at_provider: &mut Browser,
        authorization_url: &str,
        login: &str,
    ) -> String {
        let mut url = authorization_url.to_string();
        for _ in 0..10 {
            if !url.starts_with(&self.issuer) {
                return url;
            }
            let page = at_provider.get(self.path_of(&url)).await;
            match (page.status, page.location()) {
                (300..=399, Some(next)) => url = absolute(&self.issuer, next),
                (200, _) if page.body.contains("name=\"login\"") => {
                    let action = form_action(&page.body);
                    let posted = at_provider
                        .post_form(
                            self.path_of(&absolute(&self.issuer, &action)),
                            &[("prompt", "login"), ("login", login), ("password", "any")],
                        )
                        .await;
                    url = absolute(&self.issuer, posted.location().expect("login redirects"));
                }
                _ => panic!(
                    "unexpected page at the provider ({}):\n{}",
                    page.status, page.body
                ),
            }
        }
        panic!("too many redirects at the provider");
    }

    /// At the provider's end-session page (where RP-initiated logout sends the browser):
    /// confirms "Yes, sign me out" and returns where the provider sends the browser then.
    pub async fn confirm_sign_out(
        &self,
        at_provider: &mut Browser,
        end_session_url: &str,
    ) -> String {
        let page = at_provider.get(self.path_of(end_session_url)).await;
        assert_eq!(page.status, 200, "end-session page: {}", page.body);
        let xsrf = hidden_field(&page.body, "xsrf");
        let action = form_action(&page.body);
        let done = at_provider
            .post_form(
                self.path_of(&absolute(&self.issuer, &action)),
                &[("xsrf", &xsrf), ("logout", "yes")],
            )
            .await;
        absolute(&self.issuer, done.location().expect("sign-out redirects"))
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

fn absolute(origin: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else {
        format!("{origin}{location}")
    }
}

fn form_action(html: &str) -> String {
    let start = html.find("action=\"").expect("a form") + "action=\"".len();
    let end = html[start..].find('"').expect("end of action") + start;
    html[start..end].replace("&amp;", "&")
}
