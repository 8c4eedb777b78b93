//! The HTML a person sees: sign-in, session, and the error pages. Plain server-rendered HTML with
//! one stylesheet, no JavaScript, readable on a phone. Everything interpolated is escaped.

use std::fmt::Write;
use std::time::Duration;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// "30 minutes", "1 hour", "20 days": durations in words for banners.
pub fn duration_words(d: Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs >= 86_400 && secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, "hour")
    } else if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

pub const STYLESHEET: &str = r#"
:root { --ink:#1d2433; --muted:#5b6475; --line:#d9dee8; --accent:#2f5bea; --accent-dark:#2246c0;
        --bg:#f3f5f9; --card:#fff; --ok:#e8f5ee; --ok-ink:#1e6b3c; --warn:#fff6e0; --warn-ink:#7a5400;
        --bad:#fdecec; --bad-ink:#9b1c1c; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin:0; min-height:100vh; font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
       color:var(--ink); background:var(--bg); display:flex; flex-direction:column; align-items:center; }
main { width:100%; max-width:26rem; padding:3rem 1.25rem 2rem; }
main.wide { max-width:44rem; }
.brand { display:flex; align-items:center; gap:.6rem; font-weight:650; font-size:1.15rem; margin-bottom:1.5rem; }
.brand .mark { width:2rem; height:2rem; border-radius:.55rem; background:var(--accent); color:#fff;
               display:grid; place-items:center; font-size:1.05rem; }
.card { background:var(--card); border:1px solid var(--line); border-radius:.9rem; padding:1.75rem;
        box-shadow:0 1px 2px rgba(20,30,60,.05),0 8px 24px rgba(20,30,60,.06); }
.card + .card { margin-top:1rem; }
.card > h2:first-child { margin-top:0; }
h1 { font-size:1.45rem; margin:0 0 .35rem; line-height:1.25; }
p.lead { color:var(--muted); margin:0 0 1.25rem; }
label { display:block; font-weight:600; font-size:.92rem; margin:1rem 0 .35rem; }
input[type=text], input[type=password] { width:100%; font:inherit; padding:.65rem .75rem; border:1px solid var(--line);
       border-radius:.55rem; background:#fff; color:var(--ink); }
input:focus { outline:3px solid rgba(47,91,234,.25); border-color:var(--accent); }
.check { display:flex; align-items:center; gap:.5rem; font-weight:500; margin-top:1rem; }
.check input { width:1.05rem; height:1.05rem; }
select { font:inherit; padding:.5rem .6rem; border:1px solid var(--line); border-radius:.55rem; background:#fff; }
code { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:.88em; }
code.secret { display:block; margin:1rem 0; padding:.75rem; background:var(--bg); border:1px solid var(--line); border-radius:.55rem; overflow-wrap:anywhere; user-select:all; }
button, .button { display:inline-block; width:100%; margin-top:1.4rem; padding:.72rem 1rem; font:inherit; font-weight:600;
       color:#fff; background:var(--accent); border:0; border-radius:.55rem; cursor:pointer; text-align:center; text-decoration:none; }
button:hover, .button:hover { background:var(--accent-dark); }
.button.secondary { background:#fff; color:var(--ink); border:1px solid var(--line); }
button.small { width:auto; margin-top:0; padding:.35rem .7rem; font-size:.85rem; }
.banner { border-radius:.6rem; padding:.75rem .9rem; margin:0 0 1.1rem; font-size:.95rem; }
.banner.info { background:var(--ok); color:var(--ok-ink); }
.banner.warn { background:var(--warn); color:var(--warn-ink); }
.banner.error { background:var(--bad); color:var(--bad-ink); }
dl { display:grid; grid-template-columns:max-content 1fr; gap:.45rem 1.25rem; margin:1rem 0 0; }
dt { color:var(--muted); } dd { margin:0; font-weight:500; overflow-wrap:anywhere; }
table { width:100%; border-collapse:collapse; margin-top:.75rem; font-size:.95rem; }
th, td { text-align:left; padding:.55rem .4rem; border-bottom:1px solid var(--line); }
th { color:var(--muted); font-weight:600; }
.tag { display:inline-block; padding:.05rem .5rem; border-radius:1rem; background:var(--bg); border:1px solid var(--line); font-size:.85rem; margin-right:.25rem; }
h2 { font-size:1.05rem; margin:1.75rem 0 .25rem; }
footer { color:var(--muted); font-size:.85rem; padding:0 1rem 2rem; text-align:center; }
a { color:var(--accent); }
.actions { display:flex; gap:.75rem; margin-top:1.4rem; }
.actions .button { margin-top:0; flex:1; display:flex; align-items:center; justify-content:center; }
p.lead + .button { margin-top:.25rem; }
.muted { color:var(--muted); font-weight:400; }
p.or { text-align:center; color:var(--muted); margin:1.1rem 0 0; font-size:.9rem; }
.providers .button { margin-top:.75rem; }
@media (max-width: 30rem) { main { padding-top:1.5rem; } .card { padding:1.25rem; } dl { grid-template-columns:1fr; gap:.1rem; }
  dd { margin-bottom:.5rem; } .actions { flex-direction:column; } }
"#;

pub struct Layout<'a> {
    pub title: &'a str,
    pub stylesheet_href: &'a str,
    pub wide: bool,
}

pub fn layout(l: &Layout<'_>, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} · hubgate</title><link rel=\"stylesheet\" href=\"{css}\"></head>\
<body><main{class}><div class=\"brand\"><span class=\"mark\">h</span>hubgate</div>{body}</main>\
<footer>One sign-in for every app. One sign-out for all of them.</footer></body></html>\n",
        title = esc(l.title),
        css = esc(l.stylesheet_href),
        class = if l.wide { " class=\"wide\"" } else { "" },
    )
}

pub struct LoginForm<'a> {
    pub action: &'a str,
    pub next: &'a str,
    pub csrf_token: &'a str,
    pub username: &'a str,
    pub banner: Option<Banner>,
    /// Whether the user-name-and-password form is shown (`hub.users_file` set).
    pub password: bool,
    /// One "Sign in with …" button each: (href, provider name).
    pub providers: &'a [(String, String)],
}

#[derive(Debug, Clone)]
pub struct Banner {
    pub kind: &'static str,
    pub text: String,
}

impl Banner {
    pub fn info(text: impl Into<String>) -> Self {
        Banner {
            kind: "info",
            text: text.into(),
        }
    }
    pub fn warn(text: impl Into<String>) -> Self {
        Banner {
            kind: "warn",
            text: text.into(),
        }
    }
    pub fn error(text: impl Into<String>) -> Self {
        Banner {
            kind: "error",
            text: text.into(),
        }
    }
}

fn banner_html(banner: &Option<Banner>) -> String {
    banner
        .as_ref()
        .map(|b| {
            format!(
                "<div class=\"banner {}\" role=\"status\">{}</div>",
                b.kind,
                esc(&b.text)
            )
        })
        .unwrap_or_default()
}

pub fn login_form(form: &LoginForm<'_>) -> String {
    let buttons: String = form
        .providers
        .iter()
        .map(|(href, name)| {
            format!(
                "<a class=\"button{}\" href=\"{}\">Sign in with {}</a>",
                if form.password { " secondary" } else { "" },
                esc(href),
                esc(name)
            )
        })
        .collect();
    let separator = if form.password && !form.providers.is_empty() {
        "<p class=\"or\">or</p>"
    } else {
        ""
    };
    let password = if form.password {
        format!(
            "<form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"next\" value=\"{next}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
<label for=\"username\">User name</label>\
<input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" autocapitalize=\"none\" required value=\"{username}\"{autofocus_user}>\
<label for=\"password\">Password</label>\
<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required{autofocus_password}>\
<label class=\"check\"><input type=\"checkbox\" name=\"remember_me\" value=\"1\"> Remember me on this device</label>\
<button type=\"submit\">Sign in</button></form>",
            action = esc(form.action),
            next = esc(form.next),
            csrf = esc(form.csrf_token),
            username = esc(form.username),
            autofocus_user = if form.username.is_empty() { " autofocus" } else { "" },
            autofocus_password = if form.username.is_empty() { "" } else { " autofocus" },
        )
    } else {
        String::new()
    };
    format!(
        "<div class=\"card\"><h1>Sign in</h1><p class=\"lead\">One sign-in opens every app you may use.</p>{banner}\
{password}{separator}<div class=\"providers\">{buttons}</div></div>",
        banner = banner_html(&form.banner),
    )
}

/// A short page with a heading, a message and one way onward.
pub fn message(heading: &str, text: &str, link: Option<(&str, &str)>) -> String {
    let link = link
        .map(|(href, label)| {
            format!(
                "<a class=\"button secondary\" href=\"{}\">{}</a>",
                esc(href),
                esc(label)
            )
        })
        .unwrap_or_default();
    format!(
        "<div class=\"card\"><h1>{}</h1><p class=\"lead\">{}</p>{link}</div>",
        esc(heading),
        esc(text)
    )
}

pub struct AppRow {
    pub name: String,
    pub href: String,
    pub allowed: bool,
    pub token_left: Option<Duration>,
}

pub struct SessionView<'a> {
    pub user: &'a str,
    pub email: &'a str,
    pub groups: &'a [String],
    pub age: String,
    pub idle_left: Option<String>,
    pub expires_in: String,
    pub remember_me: bool,
    /// The provider's name, for a sign-in through an OpenID provider.
    pub signed_in_through: Option<&'a str>,
    pub apps: Vec<AppRow>,
    pub logout_href: &'a str,
    pub logout_all_href: &'a str,
}

pub fn session_page(v: &SessionView<'_>) -> String {
    let mut groups = String::new();
    for g in v.groups {
        let _ = write!(groups, "<span class=\"tag\">{}</span>", esc(g));
    }
    if groups.is_empty() {
        groups.push('—');
    }
    let mut rows = String::new();
    for app in &v.apps {
        let token = match (app.allowed, app.token_left) {
            (false, _) => "not allowed".to_string(),
            (true, Some(left)) if !left.is_zero() => {
                format!("{} left", crate::time::human_duration(left))
            }
            (true, Some(_)) => "expired (renewed on next use)".to_string(),
            (true, None) => "not opened yet".to_string(),
        };
        let name = if app.allowed {
            format!("<a href=\"{}\">{}</a>", esc(&app.href), esc(&app.name))
        } else {
            esc(&app.name)
        };
        let _ = write!(rows, "<tr><td>{name}</td><td>{}</td></tr>", esc(&token));
    }
    format!(
        "<div class=\"card\"><h1>Signed in as {user}</h1><p class=\"lead\">{email}</p>\
<dl><dt>Groups</dt><dd>{groups}</dd><dt>Signed in</dt><dd>{signed_in}{through}</dd>\
<dt>Idle time left</dt><dd>{idle}</dd><dt>Session ends in</dt><dd>{expires}</dd><dt>Remember me</dt><dd>{remember}</dd></dl>\
<h2>Your apps</h2><table><thead><tr><th>App</th><th>Access token</th></tr></thead><tbody>{rows}</tbody></table>\
<div class=\"actions\"><a class=\"button\" href=\"{logout}\">Sign out</a>\
<a class=\"button secondary\" href=\"{logout_all}\">Sign out everywhere</a></div></div>",
        user = esc(v.user),
        email = if v.email.is_empty() { String::new() } else { esc(v.email) },
        signed_in = if v.age == "0s" {
            "just now".to_string()
        } else {
            format!("{} ago", esc(&v.age))
        },
        through = v
            .signed_in_through
            .map(|name| format!(" <span class=\"muted\">· through {}</span>", esc(name)))
            .unwrap_or_default(),
        idle = esc(v.idle_left.as_deref().unwrap_or("no idle timeout")),
        expires = esc(&v.expires_in),
        remember = if v.remember_me {
            "yes <span class=\"muted\">· kept when the browser closes</span>"
        } else {
            "no <span class=\"muted\">· ends when the browser closes</span>"
        },
        logout = esc(v.logout_href),
        logout_all = esc(v.logout_all_href),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_everything_interpolated() {
        assert_eq!(esc("<script>\"'&"), "&lt;script&gt;&quot;&#39;&amp;");
        let html = login_form(&LoginForm {
            action: "/hub/login",
            next: "/x\"><script>",
            csrf_token: "t",
            username: "<b>",
            banner: Some(Banner::error("<i>")),
            password: true,
            providers: &[("/hub/oidc/x/start?next=%2F\"".into(), "<u>Corp</u>".into())],
        });
        assert!(!html.contains("<script>") && !html.contains("<b>") && !html.contains("<i>"));
        assert!(html.contains("Sign in with &lt;u&gt;Corp&lt;/u&gt;"));
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(duration_words(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(duration_words(Duration::from_secs(3600)), "1 hour");
        assert_eq!(duration_words(Duration::from_secs(90)), "90 seconds");
        assert_eq!(duration_words(Duration::from_secs(20 * 86_400)), "20 days");
    }
}
