//! The Redis session store: any number of gateway instances share sessions through one Redis, a
//! Redis Cluster, or a Sentinel-managed primary (see `redis_link.rs`).
//!
//! Layout under `key_prefix` (default `hubgate:`), where `{b}` is the session's bucket (0–1023, a
//! Redis hash tag: the user's bucket, which the session id carries in its first 10 bits):
//! - `{b}:session:<id>`  hash: user, groups (JSON), email, created_at, expires_at, last_seen (ms),
//!   remember_me, device and ip (where the sign-in came from), and `token:<app>` = expiry of the newest token per app. Expires by itself a
//!   while after the session's deadline, so nothing leaks even if no instance ever sweeps it.
//! - `{b}:user:<name>`   set of that user's session ids (logout-all, admin revoke).
//! - `{b}:deadlines`     sorted set: session id → when it goes idle or expires (what the sweeper reads).
//! - `{b}:ended:<id>`    the reason a session ended, kept a day so a returning user is told why.
//! - `{b}:ends:<name>`, `{b}:reports:<name>`, `{b}:owner:<id>`: recent sign-outs, see
//!   `recent_ends_redis.rs`.
//! - `{b}:apitoken:<digest>`, `{b}:apitokens:<name>`: API tokens, see `api_tokens/redis.rs`.
//! - `note:<name>`       small values with their own expiry (single-key commands, any slot): which
//!   user an OpenID provider's subject or session belongs to, and logout-token ids already used.
//! - revocations: `<id> <reason>` on every end, so every instance purges its cache — sharded
//!   channel `{b}:revocations` (SPUBLISH) on a cluster, channel `revocations` (PUBLISH) otherwise.
//!
//! Every multi-step change is one Lua script, so a change is all-or-nothing and two instances
//! ending the same session record it once. A script's keys, declared or derived (the user's set),
//! all carry one bucket's tag: one slot, so the same scripts run on a standalone server and on a
//! cluster. Keys of the layout before buckets (`session:<id>`, `deadlines`, ...) are ended by the
//! sweeper of a standalone or Sentinel deployment with reason `revoked` (docs/CONFIG.md, upgrade).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::Script;

use super::redis_link::{unavailable, Link};
use super::{
    user_bucket, EndReason, Lookup, ProviderLink, Session, SessionId, SessionStore, StoreError,
    BUCKETS,
};
use crate::config::SessionConfig;
use crate::time::Timestamp;

/// Session records outlive their deadline by this much, so the sweeper (not Redis' expiry) ends
/// them and records why.
const BACKSTOP: Duration = Duration::from_secs(600);
const TOMBSTONE_SECS: u64 = 24 * 3600;
/// Sessions ended per sweep at most; the rest wait for the next sweep.
const SWEEP_BATCH: usize = 500;
/// Buckets read at once by the sweeper and revoke-all.
const BUCKETS_IN_FLIGHT: usize = 64;

const CREATE: &str = r"
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1";

// Moves last_seen forward only, then the deadline and the record's expiry with it.
const TOUCH: &str = r"
local current = redis.call('HGET', KEYS[1], 'last_seen')
if not current then return 0 end
local seen = tonumber(ARGV[2])
if seen <= tonumber(current) then return 1 end
redis.call('HSET', KEYS[1], 'last_seen', ARGV[2])
local deadline = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
local idle = tonumber(ARGV[3])
if idle > 0 then deadline = math.min(deadline, seen + idle) end
redis.call('ZADD', KEYS[2], deadline, ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.max(deadline - tonumber(ARGV[5]), 0) + tonumber(ARGV[4]))
return 1";

// Sets fields of a live session only (an ended one is never brought back by a late write).
const SET_FIELDS: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1";

// Ends one session of bucket `tag` once: removes it, leaves the reason, tells every instance.
// Shared by END and END_USER; every key it touches starts with `tag` (one slot).
const END_ONE: &str = r"
local function end_one(tag, id, reason, ttl, publish, channel)
  local session = tag .. 'session:' .. id
  local fields = redis.call('HGETALL', session)
  if #fields == 0 then return false end
  redis.call('DEL', session)
  redis.call('ZREM', tag .. 'deadlines', id)
  redis.call('SET', tag .. 'ended:' .. id, reason, 'EX', ttl)
  for i = 1, #fields, 2 do
    if fields[i] == 'user' then redis.call('SREM', tag .. 'user:' .. fields[i + 1], id) end
  end
  redis.call(publish, channel, id .. ' ' .. reason)
  return fields
end
";

// KEYS: session, deadlines, ended (declared for routing; END_ONE derives the same names).
// ARGV: tag, id, reason, ttl, publish, channel [, legacy prefix].
// With a legacy prefix (one server only: those keys carry no tag), a session of the layout before
// buckets is ended too, its reason left where a returning user's lookup finds it.
const END: &str = r"
local ended = end_one(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
if ended or not ARGV[7] then return ended end
local old = ARGV[7] .. 'session:' .. ARGV[2]
local fields = redis.call('HGETALL', old)
redis.call('ZREM', ARGV[7] .. 'deadlines', ARGV[2])
if #fields == 0 then return false end
redis.call('DEL', old)
redis.call('SET', ARGV[1] .. 'ended:' .. ARGV[2], ARGV[3], 'EX', ARGV[4])
for i = 1, #fields, 2 do
  if fields[i] == 'user' then redis.call('SREM', ARGV[7] .. 'user:' .. fields[i + 1], ARGV[2]) end
end
redis.call(ARGV[5], ARGV[6], ARGV[2] .. ' ' .. ARGV[3])
return fields";

// Every session of one user, in one script on one node. KEYS: the user's set, the bucket's
// deadlines. ARGV: tag, reason, ttl, publish, channel. Returns {id, fields...} per session ended.
const END_USER: &str = r"
local ended = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fields = end_one(ARGV[1], id, ARGV[2], ARGV[3], ARGV[4], ARGV[5])
  if fields then
    table.insert(fields, 1, id)
    table.insert(ended, fields)
  end
end
redis.call('DEL', KEYS[1])
return ended";

struct Keys {
    prefix: String,
    /// On a cluster, one sharded channel per bucket; otherwise one channel.
    sharded: bool,
}

impl Keys {
    /// `<prefix>{b}:` — the hash tag every key of bucket `b` starts with.
    fn tag(&self, bucket: u16) -> String {
        format!("{}{{{bucket}}}:", self.prefix)
    }
    fn session(&self, id: &SessionId) -> String {
        format!("{}session:{}", self.tag(id.bucket()), id.as_str())
    }
    fn user(&self, user: &str) -> String {
        format!("{}user:{user}", self.tag(user_bucket(user)))
    }
    fn deadlines(&self, bucket: u16) -> String {
        format!("{}deadlines", self.tag(bucket))
    }
    fn ended(&self, id: &SessionId) -> String {
        format!("{}ended:{}", self.tag(id.bucket()), id.as_str())
    }
    fn channel(&self, bucket: u16) -> String {
        if self.sharded {
            format!("{}revocations", self.tag(bucket))
        } else {
            format!("{}revocations", self.prefix)
        }
    }
    /// Every channel an instance listens on.
    fn channels(&self) -> Vec<String> {
        if self.sharded {
            (0..BUCKETS).map(|b| self.channel(b)).collect()
        } else {
            vec![self.channel(0)]
        }
    }
    fn publish(&self) -> &'static str {
        if self.sharded {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }
    fn note(&self, name: &str) -> String {
        format!("{}note:{name}", self.prefix)
    }
    /// The sorted set of the layout before buckets, still swept on one server after an upgrade.
    fn legacy_deadlines(&self) -> String {
        format!("{}deadlines", self.prefix)
    }
}

pub struct RedisStore {
    link: Link,
    keys: Keys,
    idle_timeout: Option<Duration>,
    scripts: Scripts,
    /// Set once no session of the layout before buckets is left (at once on a cluster, which
    /// never had one): the sweeper stops looking.
    legacy_gone: AtomicBool,
}

struct Scripts {
    create: Script,
    touch: Script,
    set_fields: Script,
    end: Script,
    end_user: Script,
}

/// A session ended somewhere (possibly on another instance).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub id: SessionId,
    pub reason: EndReason,
}

impl RedisStore {
    /// Checks the addresses only; the connection is made on first use and remade by itself after
    /// an outage, so the gateway starts (and answers `/ready` with 503) while Redis is down.
    pub fn new(config: &SessionConfig) -> Result<Self, String> {
        let link = Link::new(config)?;
        let sharded = link.sharded();
        Ok(RedisStore {
            link,
            keys: Keys {
                prefix: config.key_prefix.clone(),
                sharded,
            },
            idle_timeout: config.idle_timeout,
            scripts: Scripts {
                create: Script::new(CREATE),
                touch: Script::new(TOUCH),
                set_fields: Script::new(SET_FIELDS),
                end: Script::new(&format!("{END_ONE}{END}")),
                end_user: Script::new(&format!("{END_ONE}{END_USER}")),
            },
            legacy_gone: AtomicBool::new(sharded),
        })
    }

    /// `<prefix>{b}:`: keys beginning with it share bucket `b`'s slot (`recent_ends_redis.rs`).
    pub(crate) fn bucket_tag(&self, bucket: u16) -> String {
        self.keys.tag(bucket)
    }

    /// Runs one store operation under the link's time limit.
    async fn run<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.link.bounded(work).await
    }

    fn deadline(&self, expires_at: Timestamp, last_seen: Timestamp) -> Timestamp {
        match self.idle_timeout {
            Some(idle) => expires_at.min(last_seen.plus(idle)),
            None => expires_at,
        }
    }

    fn record_ttl_ms(&self, deadline: Timestamp, now: Timestamp) -> u64 {
        (now.until(deadline) + BACKSTOP).as_millis() as u64
    }

    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.run(async {
            let mut conn = self.link.connection().await?;
            invocation
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)
        })
        .await
    }

    pub(crate) async fn query<T: redis::FromRedisValue>(
        &self,
        command: &redis::Cmd,
    ) -> Result<T, StoreError> {
        self.run(async {
            let mut conn = self.link.connection().await?;
            command.query_async(&mut conn).await.map_err(unavailable)
        })
        .await
    }

    /// The ids `command(deadlines key)` answers, over every bucket (each on its own node).
    async fn ids_in_every_bucket(
        &self,
        command: impl Fn(String) -> redis::Cmd,
    ) -> Result<Vec<String>, StoreError> {
        let answers: Vec<Result<Vec<String>, StoreError>> = futures_util::stream::iter(0..BUCKETS)
            .map(|bucket| {
                let command = command(self.keys.deadlines(bucket));
                async move { self.query::<Vec<String>>(&command).await }
            })
            .buffer_unordered(BUCKETS_IN_FLIGHT)
            .collect()
            .await;
        let mut ids = Vec::new();
        for answer in answers {
            ids.extend(answer?);
        }
        Ok(ids)
    }

    /// Ends each of `ids` (skipping malformed ones), returning those this call ended.
    async fn end_ids(
        &self,
        ids: Vec<String>,
        reason: EndReason,
    ) -> Result<Vec<Session>, StoreError> {
        let mut ended = Vec::new();
        for id in ids.iter().filter_map(|id| SessionId::parse(id)) {
            if let Some(session) = self.end(&id, reason).await? {
                ended.push(session);
            }
        }
        Ok(ended)
    }

    /// Sessions of the layout before buckets, for the sweeper to end with reason `revoked`
    /// (their records cannot be found by bucket), a batch per sweep.
    async fn legacy_sessions(&self) -> Result<Vec<(SessionId, EndReason)>, StoreError> {
        if self.legacy_gone.load(Ordering::Relaxed) {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = self
            .query(
                redis::cmd("ZRANGE")
                    .arg(self.keys.legacy_deadlines())
                    .arg(0)
                    .arg(SWEEP_BATCH as isize - 1),
            )
            .await?;
        if ids.is_empty() {
            self.legacy_gone.store(true, Ordering::Relaxed);
        } else {
            tracing::warn!(
                sessions = ids.len(),
                "ending sessions stored before the bucketed Redis layout (reason: revoked)"
            );
        }
        Ok(ids
            .iter()
            .filter_map(|id| SessionId::parse(id))
            .map(|id| (id, EndReason::Revoked))
            .collect())
    }

    /// A stream of revocations from every instance. Ends when the subscription is lost; the
    /// caller then forgets what it cached and subscribes again.
    pub async fn subscribe(
        &self,
    ) -> Result<impl futures_util::Stream<Item = Revocation> + Send + 'static, StoreError> {
        let messages = self
            .run(async { self.link.subscribe(self.keys.channels()).await })
            .await?;
        Ok(messages.filter_map(|payload| async move {
            let (id, reason) = payload.split_once(' ')?;
            Some(Revocation {
                id: SessionId::parse(id)?,
                reason: EndReason::parse(reason)?,
            })
        }))
    }
}

fn session_from_fields(
    id: &SessionId,
    fields: &BTreeMap<String, String>,
) -> Result<Session, StoreError> {
    let get = |name: &str| {
        fields
            .get(name)
            .ok_or_else(|| StoreError::Corrupt(format!("session record without {name}")))
    };
    let time = |name: &str| -> Result<Timestamp, StoreError> {
        get(name)?
            .parse()
            .map(Timestamp)
            .map_err(|_| StoreError::Corrupt(format!("session record with a bad {name}")))
    };
    let app_tokens = fields
        .iter()
        .filter_map(|(k, v)| {
            Some((
                k.strip_prefix("token:")?.to_string(),
                Timestamp(v.parse().ok()?),
            ))
        })
        .collect();
    Ok(Session {
        id: id.clone(),
        user: get("user")?.clone(),
        groups: serde_json::from_str(get("groups")?)
            .map_err(|_| StoreError::Corrupt("session record with bad groups".into()))?,
        email: fields.get("email").cloned().unwrap_or_default(),
        created_at: time("created_at")?,
        expires_at: time("expires_at")?,
        last_seen: time("last_seen")?,
        remember_me: fields.get("remember_me").is_some_and(|v| v == "1"),
        app_tokens,
        from: Box::new(super::SignedInFrom {
            device: fields.get("device").cloned().unwrap_or_default(),
            ip: fields.get("ip").cloned().unwrap_or_default(),
        }),
        provider: fields.get("provider").map(|provider| {
            Box::new(ProviderLink {
                provider: provider.clone(),
                subject: fields.get("provider_sub").cloned().unwrap_or_default(),
                provider_session: fields.get("provider_sid").cloned(),
                id_token: fields.get("id_token").cloned(),
                refresh_token: fields.get("refresh_token").cloned(),
                checked_at: fields
                    .get("provider_checked")
                    .and_then(|t| t.parse().ok())
                    .map_or(Timestamp(0), Timestamp),
            })
        }),
    })
}

fn fields_from_pairs(pairs: Vec<String>) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    let mut iter = pairs.into_iter();
    while let (Some(k), Some(v)) = (iter.next(), iter.next()) {
        fields.insert(k, v);
    }
    fields
}

#[async_trait]
impl SessionStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn create(&self, s: &Session) -> Result<(), StoreError> {
        if s.id.bucket() != user_bucket(&s.user) {
            // Ending the user's sessions reads them from the user's bucket.
            return Err(StoreError::Corrupt(
                "a session id outside its user's bucket (use SessionId::generate_for)".into(),
            ));
        }
        let now = Timestamp::now();
        let deadline = self.deadline(s.expires_at, s.last_seen);
        let groups = serde_json::to_string(&s.groups).unwrap_or_else(|_| "[]".into());
        let mut invocation = self.scripts.create.key(self.keys.session(&s.id));
        invocation
            .key(self.keys.user(&s.user))
            .key(self.keys.deadlines(s.id.bucket()))
            .arg(s.id.as_str())
            .arg(self.record_ttl_ms(deadline, now))
            .arg(deadline.0);
        let mut fields: Vec<(&str, String)> = vec![
            ("user", s.user.clone()),
            ("groups", groups),
            ("email", s.email.clone()),
            ("created_at", s.created_at.0.to_string()),
            ("expires_at", s.expires_at.0.to_string()),
            ("last_seen", s.last_seen.0.to_string()),
            (
                "remember_me",
                if s.remember_me { "1" } else { "0" }.to_string(),
            ),
            ("device", s.from.device.clone()),
            ("ip", s.from.ip.clone()),
        ];
        if let Some(link) = &s.provider {
            fields.push(("provider", link.provider.clone()));
            fields.push(("provider_sub", link.subject.clone()));
            fields.extend(
                link.provider_session
                    .clone()
                    .map(|sid| ("provider_sid", sid)),
            );
            fields.extend(link.id_token.clone().map(|token| ("id_token", token)));
            fields.extend(link.refresh_token.clone().map(|t| ("refresh_token", t)));
            fields.push(("provider_checked", link.checked_at.0.to_string()));
        }
        for (name, value) in fields {
            invocation.arg(name).arg(value);
        }
        self.invoke::<i64>(&invocation).await.map(drop)
    }

    async fn lookup(&self, id: &SessionId) -> Result<Lookup, StoreError> {
        // One round trip: the record, and why it ended if it did.
        let mut pipe = redis::pipe();
        pipe.hgetall(self.keys.session(id)).get(self.keys.ended(id));
        let (pairs, ended): (Vec<String>, Option<String>) = self
            .run(async {
                let mut conn = self.link.connection().await?;
                pipe.query_async(&mut conn).await.map_err(unavailable)
            })
            .await?;
        if !pairs.is_empty() {
            return session_from_fields(id, &fields_from_pairs(pairs)).map(Lookup::Live);
        }
        Ok(match ended.as_deref().and_then(EndReason::parse) {
            Some(reason) => Lookup::Ended(reason),
            None => Lookup::Unknown,
        })
    }

    async fn touch(&self, id: &SessionId, last_seen: Timestamp) -> Result<(), StoreError> {
        let idle_ms = self.idle_timeout.map_or(0, |d| d.as_millis() as u64);
        let mut invocation = self.scripts.touch.key(self.keys.session(id));
        invocation
            .key(self.keys.deadlines(id.bucket()))
            .arg(id.as_str())
            .arg(last_seen.0)
            .arg(idle_ms)
            .arg(BACKSTOP.as_millis() as u64)
            .arg(Timestamp::now().0);
        self.invoke::<i64>(&invocation).await.map(drop)
    }

    async fn record_token(
        &self,
        id: &SessionId,
        app: &str,
        expires_at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut invocation = self.scripts.set_fields.key(self.keys.session(id));
        invocation.arg(format!("token:{app}")).arg(expires_at.0);
        self.invoke::<i64>(&invocation).await.map(drop)
    }

    async fn end(&self, id: &SessionId, reason: EndReason) -> Result<Option<Session>, StoreError> {
        let mut invocation = self.scripts.end.key(self.keys.session(id));
        invocation
            .key(self.keys.deadlines(id.bucket()))
            .key(self.keys.ended(id))
            .arg(self.keys.tag(id.bucket()))
            .arg(id.as_str())
            .arg(reason.as_str())
            .arg(TOMBSTONE_SECS)
            .arg(self.keys.publish())
            .arg(self.keys.channel(id.bucket()));
        if !self.legacy_gone.load(Ordering::Relaxed) {
            invocation.arg(&self.keys.prefix);
        }
        match self.invoke::<Option<Vec<String>>>(&invocation).await? {
            Some(pairs) => session_from_fields(id, &fields_from_pairs(pairs)).map(Some),
            None => Ok(None),
        }
    }

    async fn end_user(&self, user: &str, reason: EndReason) -> Result<Vec<Session>, StoreError> {
        let bucket = user_bucket(user);
        let mut invocation = self.scripts.end_user.key(self.keys.user(user));
        invocation
            .key(self.keys.deadlines(bucket))
            .arg(self.keys.tag(bucket))
            .arg(reason.as_str())
            .arg(TOMBSTONE_SECS)
            .arg(self.keys.publish())
            .arg(self.keys.channel(bucket));
        let ended: Vec<Vec<String>> = self.invoke(&invocation).await?;
        let mut sessions = Vec::with_capacity(ended.len());
        for mut record in ended {
            let Some(id) = (!record.is_empty())
                .then(|| record.remove(0))
                .and_then(|id| SessionId::parse(&id))
            else {
                continue;
            };
            sessions.push(session_from_fields(&id, &fields_from_pairs(record))?);
        }
        Ok(sessions)
    }

    async fn end_all(&self, reason: EndReason) -> Result<Vec<Session>, StoreError> {
        let ids = self
            .ids_in_every_bucket(|deadlines| {
                redis::cmd("ZRANGE").arg(deadlines).arg(0).arg(-1).clone()
            })
            .await?;
        self.end_ids(ids, reason).await
    }

    async fn stale(
        &self,
        now: Timestamp,
        idle_timeout: Option<Duration>,
    ) -> Result<Vec<(SessionId, EndReason)>, StoreError> {
        let mut stale = self.legacy_sessions().await?;
        let mut ids = self
            .ids_in_every_bucket(|deadlines| {
                redis::cmd("ZRANGEBYSCORE")
                    .arg(deadlines)
                    .arg("-inf")
                    .arg(now.0)
                    .arg("LIMIT")
                    .arg(0)
                    .arg(SWEEP_BATCH)
                    .clone()
            })
            .await?;
        ids.truncate(SWEEP_BATCH);
        for id in ids.iter().filter_map(|id| SessionId::parse(id)) {
            match self.lookup(&id).await? {
                Lookup::Live(session) => {
                    if let Some(reason) =
                        session.limit_reached(session.last_seen, idle_timeout, now)
                    {
                        stale.push((id, reason));
                    }
                }
                // Expired by Redis itself (the backstop) or already ended: just drop the entry.
                _ => self
                    .query::<i64>(
                        redis::cmd("ZREM")
                            .arg(self.keys.deadlines(id.bucket()))
                            .arg(id.as_str()),
                    )
                    .await
                    .map(drop)?,
            }
        }
        Ok(stale)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.query::<String>(&redis::cmd("PING")).await.map(drop)
    }

    async fn user_sessions(&self, user: &str) -> Result<Vec<Session>, StoreError> {
        let ids: Vec<String> = self
            .query(redis::cmd("SMEMBERS").arg(self.keys.user(user)))
            .await?;
        let mut sessions = Vec::new();
        for id in ids.iter().filter_map(|id| SessionId::parse(id)) {
            if let Lookup::Live(session) = self.lookup(&id).await? {
                sessions.push(session);
            }
        }
        Ok(sessions)
    }

    async fn put_note(&self, name: &str, value: &str, ttl: Duration) -> Result<(), StoreError> {
        let command = redis::cmd("SET")
            .arg(self.keys.note(name))
            .arg(value)
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .clone();
        self.query::<String>(&command).await.map(drop)
    }

    async fn note(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.query(redis::cmd("GET").arg(self.keys.note(name)))
            .await
    }

    async fn record_provider_check(
        &self,
        id: &SessionId,
        at: Timestamp,
        refresh_token: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut invocation = self.scripts.set_fields.key(self.keys.session(id));
        invocation.arg("provider_checked").arg(at.0);
        if let Some(token) = refresh_token {
            invocation.arg("refresh_token").arg(token);
        }
        self.invoke::<i64>(&invocation).await.map(drop)
    }

    async fn first_use(&self, name: &str, ttl: Duration) -> Result<bool, StoreError> {
        let command = redis::cmd("SET")
            .arg(self.keys.note(name))
            .arg("1")
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .clone();
        let set: Option<String> = self.query(&command).await?;
        Ok(set.is_some())
    }
}
