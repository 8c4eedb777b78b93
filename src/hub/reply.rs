//! A hub answer as plain data (status, headers, body), written to the connection by the proxy.
//! Handlers build these without touching a socket, so they read like the flow they implement.

use bytes::Bytes;

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl Reply {
    pub fn html(status: u16, html: String) -> Self {
        Reply {
            status,
            headers: vec![("Content-Type", "text/html; charset=utf-8".into())],
            body: Bytes::from(html),
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Reply {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: Bytes::from(value.to_string()),
        }
    }

    /// No body, no headers yet (forward auth's "admitted").
    pub fn empty(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    pub fn redirect(status: u16, location: &str) -> Self {
        Reply {
            status,
            headers: vec![("Location", location.to_string())],
            body: Bytes::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn with_cookies(mut self, cookies: impl IntoIterator<Item = String>) -> Self {
        self.headers
            .extend(cookies.into_iter().map(|c| ("Set-Cookie", c)));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
