//! A browser with one cookie jar per host, following redirects across hosts (the hub and app
//! hosts, all on loopback, named by the Host header).

use std::collections::BTreeMap;

use super::*;

/// A browser that keeps one cookie jar per host, the way a real one does.
pub struct Sites {
    pub hub: String,
    port: u16,
    base: String,
    /// Where requests for a host connect when not to the gateway (a proxy in front).
    via: BTreeMap<String, String>,
    jars: BTreeMap<String, Browser>,
}

impl Sites {
    pub fn new(gw: &Gateway) -> Sites {
        Sites {
            hub: format!("127.0.0.1:{}", gw.port),
            port: gw.port,
            base: gw.url(""),
            via: BTreeMap::new(),
            jars: BTreeMap::new(),
        }
    }

    /// Requests for `host` (with its port) connect to `base` (`http://127.0.0.1:<port>`).
    pub fn via(&mut self, host: &str, base: String) {
        self.via.insert(host.to_string(), base);
    }

    /// `one.localhost` → `one.localhost:<gateway port>`.
    pub fn host(&self, name: &str) -> String {
        format!("{name}:{}", self.port)
    }

    pub fn url(&self, name: &str, path: &str) -> String {
        format!("http://{}{path}", self.host(name))
    }

    pub fn jar(&mut self, host: &str) -> &mut Browser {
        let base = self.via.get(host).unwrap_or(&self.base).clone();
        self.jars
            .entry(host.to_string())
            .or_insert_with(|| Browser::new(base))
    }

    /// The same cookies, talking to another instance (as behind a load balancer).
    pub fn on(&self, gw: &Gateway) -> Sites {
        let mut other = Sites::new(gw);
        for (host, jar) in &self.jars {
            let host = host.replace(&format!(":{}", self.port), &format!(":{}", gw.port));
            other.jars.insert(host, jar.on(gw));
        }
        other
    }

    /// Splits an absolute URL into host and path; a path alone stays on `current`.
    fn split(url: &str, current: &str) -> (String, String) {
        match url.strip_prefix("http://") {
            Some(rest) => {
                let at = rest.find('/').unwrap_or(rest.len());
                (rest[..at].to_string(), rest[at..].to_string())
            }
            None => (current.to_string(), url.to_string()),
        }
    }

    pub async fn get_as(&mut self, url: &str, accept: &'static str) -> Page {
        self.get_with(url, accept, &[]).await
    }

    /// A GET carrying `extra` headers too (a client's spoofed identity headers).
    pub async fn get_with(
        &mut self,
        url: &str,
        accept: &'static str,
        extra: &[(&str, &str)],
    ) -> Page {
        let hub = self.hub.clone();
        let (host, path) = Sites::split(url, &hub);
        let jar = self.jar(&host);
        jar.accept = accept;
        let mut headers = vec![("host", host.as_str())];
        headers.extend_from_slice(extra);
        jar.get_with(&path, &headers).await
    }

    pub async fn get(&mut self, url: &str) -> Page {
        self.get_as(url, HTML).await
    }

    /// Follows redirects across hosts; returns every URL visited (absolute) and the last page.
    pub async fn follow(&mut self, url: &str) -> (Vec<String>, Page) {
        let hub = self.hub.clone();
        let (mut host, path) = Sites::split(url, &hub);
        let mut visited = vec![format!("http://{host}{path}")];
        let mut page = self.get(&format!("http://{host}{path}")).await;
        while let (300..=399, Some(next)) = (page.status, page.location().map(str::to_string)) {
            assert!(visited.len() < 12, "redirect loop: {visited:?}");
            let (next_host, next_path) = Sites::split(&next, &host);
            host = next_host;
            visited.push(format!("http://{host}{next_path}"));
            page = self.get(&format!("http://{host}{next_path}")).await;
        }
        (visited, page)
    }

    /// Opens an app host's URL while signed in at the hub: through the hub's authorize and the
    /// host's callback, ending at `url` itself with 200. Returns every URL visited.
    pub async fn open_through_callback(&mut self, url: &str) -> Vec<String> {
        let (visited, page) = self.follow(url).await;
        assert_eq!(page.status, 200, "{visited:?}: {}", page.body);
        assert!(
            visited
                .iter()
                .any(|u| u.contains("/.hubgate/callback?code=")),
            "{visited:?}"
        );
        visited
    }

    pub async fn sign_in(&mut self) {
        let hub = self.hub.clone();
        let page = self
            .jar(&hub)
            .sign_in_to("alice", ALICE_PASSWORD, false, "/")
            .await;
        assert_eq!(page.status, 303, "sign-in failed: {}", page.body);
    }

    pub fn cookie_names(&mut self, host: &str) -> Vec<String> {
        let mut names: Vec<String> = self.jar(host).jar.iter().map(|c| c.name.clone()).collect();
        names.sort();
        names
    }

    /// Brings `code` to `name`'s callback (on the gateway's port), with `next` as given.
    pub async fn redeem(&mut self, name: &str, code: &str, next: &str) -> Page {
        let url = self.url(name, &format!("/.hubgate/callback?code={code}&next={next}"));
        self.get(&url).await
    }

    /// The callback URL a signed-in authorize hands out for `app` (not followed).
    pub async fn code_for(&mut self, app: &str, next: &str) -> String {
        let hub = self.hub.clone();
        let url = format!(
            "http://{hub}/hub/authorize?app={app}&next={}",
            form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
        );
        let page = self.get(&url).await;
        assert_eq!(page.status, 302, "{}", page.body);
        let location = page.location().expect("callback location").to_string();
        assert!(location.contains("/.hubgate/callback?code="), "{location}");
        location
    }
}

pub fn code_of(callback: &str) -> String {
    let query = callback.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code in callback")
}
