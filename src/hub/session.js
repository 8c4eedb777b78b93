/* hubgate session.js — include on any page behind the gateway:
 *   <script src="/hub/static/session.js" defer></script>
 * (on an app with its own host: /.hubgate/static/session.js). No dependencies, no build step,
 * works under `script-src 'self'`; its elements live in a shadow root, styled by a constructed
 * stylesheet, so the app's styles and the script's never meet.
 *
 * - Reads <hub>/api/session at most every poll_seconds (30 s by default). Reading is never
 *   activity: a tab left open does not keep an idle session alive.
 * - warn_before_seconds before the idle or absolute end, a bar with a countdown; "Stay signed in"
 *   calls POST <hub>/api/session/touch, and every tab of this site hears of it.
 * - Once the session has ended (any reason, any instance, any tab), a dialog with the reason and
 *   the idle time, then the sign-in page after 3 s, which explains the same.
 * - Ctrl+Shift+D: a panel with the session's facts and the recent sign-outs.
 * - Reports its own dialogs to POST <hub>/api/logout-event.
 */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || window.hubgateSession) return;
  var src = new URL(me.src, location.href);
  var base = src.origin + src.pathname.replace(/\/static\/session\.js$/, "");
  var HEADERS = { "X-Hubgate-Script": "1", Accept: "application/json" };
  var CHANNEL = "hubgate-session";
  var REDIRECT_AFTER_MS = 3000;

  var state = null; // the last answer of /api/session while signed in
  var readAt = 0; // performance.now() when it came
  var ended = null; // the answer that said the session is over
  var pollTimer = 0;
  var deadlineTimer = 0;
  var ui = null;
  var channel = typeof BroadcastChannel === "function" ? new BroadcastChannel(CHANNEL) : null;

  var CSS =
    ":host{all:initial}" +
    "*{box-sizing:border-box;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}" +
    ".bar{position:fixed;left:50%;bottom:1rem;transform:translateX(-50%);z-index:2147483646;display:flex;gap:.9rem;align-items:center;" +
    "background:#1d2433;color:#fff;border-radius:.7rem;padding:.6rem .7rem .6rem 1rem;box-shadow:0 8px 28px rgba(0,0,0,.25);max-width:calc(100vw - 2rem)}" +
    "button{font-weight:600;border:0;border-radius:.5rem;padding:.45rem .9rem;cursor:pointer;background:#2f5bea;color:#fff}" +
    "button:hover{background:#2246c0}" +
    ".veil{position:fixed;inset:0;z-index:2147483647;background:rgba(20,26,40,.55);display:grid;place-items:center}" +
    ".dialog{background:#fff;color:#1d2433;border-radius:.9rem;padding:1.4rem 1.5rem;max-width:26rem;width:calc(100vw - 2rem);box-shadow:0 12px 40px rgba(0,0,0,.3)}" +
    ".dialog h2{font-size:1.2rem;font-weight:650;margin:0 0 .5rem}.dialog p{margin:.35rem 0}.muted{color:#5b6475}" +
    ".panel{position:fixed;top:1rem;right:1rem;z-index:2147483646;background:#fff;color:#1d2433;border:1px solid #d9dee8;border-radius:.8rem;" +
    "padding:1rem 1.1rem;width:22rem;max-width:calc(100vw - 2rem);max-height:calc(100vh - 2rem);overflow:auto;box-shadow:0 8px 28px rgba(20,30,60,.18)}" +
    ".panel h2{font-size:1rem;font-weight:650;margin:0 0 .5rem}.panel h3{font-size:.9rem;font-weight:650;margin:.9rem 0 .3rem}" +
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem .9rem;margin:0}dt{color:#5b6475}dd{margin:0;overflow-wrap:anywhere}" +
    "ul{list-style:none;margin:0;padding:0}li{padding:.25rem 0;border-top:1px solid #eef0f5}" +
    "[hidden]{display:none!important}";

  var REASONS = {
    logout: "You signed out.",
    logout_all: "You signed out everywhere.",
    logout_device: "This device was signed out from another of your devices.",
    idle_timeout: "You were signed out after a period without activity.",
    expired: "Your session reached its time limit.",
    revoked: "An administrator ended your session.",
    key_removed: "Your session's signing key was retired.",
    provider_logout: "You were signed out at your identity provider.",
    provider_revoked: "Your identity provider no longer accepts your account.",
    user_removed: "Your account was removed from this gateway."
  };

  var REASON_WORDS = {
    logout: "signed out",
    logout_all: "signed out everywhere",
    logout_device: "signed out from another device",
    idle_timeout: "no activity",
    expired: "time limit reached",
    revoked: "ended by an administrator",
    key_removed: "signing key retired",
    user_removed: "account removed",
    provider_logout: "signed out at the identity provider",
    provider_revoked: "refused by the identity provider"
  };

  function clock(seconds) {
    seconds = Math.max(0, Math.ceil(seconds));
    var m = Math.floor(seconds / 60);
    var s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function words(seconds) {
    if (seconds == null) return "";
    seconds = Math.max(0, Math.round(seconds));
    var units = [[86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
    for (var i = 0; i < units.length; i++) {
      if (seconds >= units[i][0] || i === units.length - 1) {
        var n = Math.floor(seconds / units[i][0]);
        return n + " " + units[i][1] + (n === 1 ? "" : "s");
      }
    }
    return "";
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  }

  function build() {
    if (ui) return ui;
    var host = el("div", { id: "hubgate-session" });
    var root = host.attachShadow({ mode: "open" });
    if ("adoptedStyleSheets" in Document.prototype && typeof CSSStyleSheet === "function") {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } else {
      root.appendChild(el("style", {}, CSS));
    }
    var bar = el("div", { class: "bar", role: "status", part: "warning", hidden: "" });
    var barText = el("span", { id: "warning-text" });
    var stay = el("button", { type: "button", id: "stay" }, "Stay signed in");
    stay.addEventListener("click", stayed);
    bar.append(barText, stay);

    var veil = el("div", { class: "veil", hidden: "" });
    var dialog = el("div", { class: "dialog", role: "alertdialog", "aria-modal": "true", "aria-labelledby": "end-title", id: "end-dialog" });
    var title = el("h2", { id: "end-title" }, "You are being signed out");
    var reason = el("p", { id: "end-reason" });
    var idle = el("p", { id: "end-idle", class: "muted" });
    var next = el("p", { id: "end-next", class: "muted" }, "Taking you to the sign-in page…");
    dialog.append(title, reason, idle, next);
    veil.append(dialog);

    var panel = el("div", { class: "panel", id: "panel", role: "dialog", "aria-label": "hubgate session", hidden: "" });
    root.append(bar, veil, panel);
    document.body.appendChild(host);
    ui = { host: host, bar: bar, barText: barText, stay: stay, veil: veil, reason: reason, idle: idle, panel: panel };
    return ui;
  }

  function secondsSinceRead() {
    return (performance.now() - readAt) / 1000;
  }

  /** The nearer end: idle (which "Stay signed in" moves) or absolute (which nothing moves). */
  function nextEnd() {
    if (!state) return null;
    var passed = secondsSinceRead();
    var absolute = state.expires_in_seconds - passed;
    if (state.idle_seconds_left != null && state.idle_seconds_left - passed < absolute) {
      return { left: state.idle_seconds_left - passed, idle: true };
    }
    return { left: absolute, idle: false };
  }

  function apply(answer, age) {
    state = answer;
    readAt = performance.now() - (age || 0) * 1000;
    render();
    schedule();
  }

  function schedule() {
    clearTimeout(pollTimer);
    clearTimeout(deadlineTimer);
    if (ended) return;
    var poll = ((state && state.poll_seconds) || 30) * 1000;
    pollTimer = setTimeout(read, Math.min(poll, 30000));
    var end = nextEnd();
    // Asked again right after the end: the gateway, not this tab's clock, says it is over.
    if (end) deadlineTimer = setTimeout(read, Math.max(0, end.left * 1000) + 300);
  }

  function render() {
    if (!state || ended) return;
    var end = nextEnd();
    var warn = state.warn_before_seconds || 0;
    var u = build();
    if (end && warn > 0 && end.left <= warn && end.left > 0) {
      u.barText.textContent = end.idle
        ? "You will be signed out in " + clock(end.left) + " for inactivity"
        : "Your session ends in " + clock(end.left) + " (time limit)";
      u.stay.hidden = !end.idle;
      u.bar.hidden = false;
    } else {
      u.bar.hidden = true;
    }
    if (!u.panel.hidden) fillPanel();
  }

  function request(method, path, body) {
    var init = { method: method, credentials: "include", cache: "no-store", headers: Object.assign({}, HEADERS) };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
      init.keepalive = true;
    }
    return fetch(base + path, init);
  }

  function answered(response) {
    return response.json().then(function (answer) {
      if (answer.signed_in === false) {
        showEnd(answer, true);
      } else if (response.ok) {
        apply(answer);
      } else {
        schedule();
      }
      return answer;
    });
  }

  function read() {
    if (ended) return;
    request("GET", "/api/session").then(answered).catch(schedule);
  }

  function stayed() {
    request("POST", "/api/session/touch")
      .then(answered)
      .then(function (answer) {
        if (channel && answer && answer.signed_in !== false) {
          channel.postMessage({ kind: "touched", state: answer, at: Date.now() });
        }
      })
      .catch(schedule);
  }

  function reportType(reason) {
    if (reason === "logout" || reason === "logout_all" || reason === "logout_device") return "user_action";
    if (reason === "idle_timeout" || reason === "expired") return "token_expired";
    if (reason) return "auth_error";
    return "unknown";
  }

  /** The session is over: the dialog, then the sign-in page. `first`: this tab found out. */
  function showEnd(answer, first) {
    if (ended) return;
    ended = answer;
    clearTimeout(pollTimer);
    clearTimeout(deadlineTimer);
    var reason = answer.end_reason;
    var u = build();
    u.bar.hidden = true;
    u.reason.textContent = answer.message || REASONS[reason] || "Your session has ended.";
    u.idle.textContent = answer.idle_seconds != null ? "Idle for " + words(answer.idle_seconds) + "." : "";
    u.idle.hidden = answer.idle_seconds == null;
    u.veil.hidden = false;
    if (!u.panel.hidden) fillPanel();
    if (first) {
      if (channel) channel.postMessage({ kind: "ended", answer: answer });
      request("POST", "/api/logout-event", {
        type: reportType(reason),
        message: "session.js showed the sign-out dialog (" + (reason || "no session") + ")",
        location: location.pathname,
        idle_minutes: answer.idle_seconds != null ? Math.round(answer.idle_seconds / 6) / 10 : undefined
      }).catch(function () {});
    }
    setTimeout(function () {
      var target = new URL(answer.login_url || base + "/login", location.href);
      if (target.origin === location.origin) {
        target.searchParams.set("next", location.pathname + location.search);
      }
      location.assign(target.href);
    }, REDIRECT_AFTER_MS);
  }

  function row(list, term, value) {
    list.append(el("dt", {}, term), el("dd", {}, value));
  }

  function fillPanel() {
    var p = build().panel;
    p.textContent = "";
    p.append(el("h2", {}, "hubgate session"));
    var facts = el("dl");
    if (state && !ended) {
      var passed = secondsSinceRead();
      row(facts, "User", state.user);
      row(facts, "Groups", (state.groups || []).join(", ") || "—");
      row(facts, "Signed in", words(state.session_age_seconds + passed) + " ago");
      row(facts, "Idle time left", state.idle_seconds_left == null ? "no idle timeout" : clock(state.idle_seconds_left - passed));
      row(facts, "Session ends in", words(state.expires_in_seconds - passed));
      (state.apps || []).forEach(function (app) {
        if (app.token_seconds_left != null) row(facts, app.name + " token", clock(app.token_seconds_left - passed));
      });
    } else {
      row(facts, "Status", "signed out");
    }
    p.append(facts);
    p.append(el("h3", {}, "Recent sign-outs"));
    var ends = (state && state.recent_sign_outs) || [];
    var list = el("ul", { id: "panel-sign-outs" });
    ends.slice(0, 10).forEach(function (end) {
      list.append(
        el("li", {}, new Date(end.at * 1000).toLocaleString() + " — " + (REASON_WORDS[end.reason] || end.reason) + ", idle " + words(end.idle_seconds) + (end.device ? " · " + end.device : ""))
      );
    });
    if (!ends.length) list.append(el("li", { class: "muted" }, "none in the last 30 days"));
    p.append(list);
    p.append(el("p", { class: "muted" }, "Ctrl+Shift+D closes this panel."));
  }

  function togglePanel() {
    var p = build().panel;
    p.hidden = !p.hidden;
    if (!p.hidden) fillPanel();
  }

  function start() {
    document.addEventListener("keydown", function (event) {
      if (event.ctrlKey && event.shiftKey && (event.key === "D" || event.key === "d")) {
        event.preventDefault();
        togglePanel();
      }
    });
    if (channel) {
      channel.onmessage = function (event) {
        var m = event.data || {};
        if (m.kind === "touched" && m.state) apply(m.state, (Date.now() - m.at) / 1000);
        if (m.kind === "ended" && m.answer) showEnd(m.answer, false);
      };
    }
    setInterval(render, 1000);
    read();
  }

  window.hubgateSession = { read: read, panel: togglePanel };
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
