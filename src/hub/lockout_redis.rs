//! The sign-in lockout's counts in Redis, with `session.store = "redis"`: every instance counts
//! into the same place, so N instances allow `login_max_failures` guesses, not N times that.
//!
//! One hash per user name or address, `<key_prefix>{lockout}:<user:name | ip:addr>`: failures in
//! the current window and when it started, attempts in flight, and the end of a lockout. One Lua
//! script makes each step (check and reserve, or record an outcome) atomic across instances, and
//! keeps each hash expiring with whatever it still holds, so nothing outlives its window. The
//! script touches a user's and an address's key together, so all of them share the hash tag
//! `{lockout}`: one slot on a Redis Cluster (sign-in attempts are few next to requests).
//!
//! The window is fixed (it starts at the first failure), where the in-process count slides: the
//! limit holds the same way, a locked-out guesser waits the same.

use std::time::Duration;

use redis::Script;

use super::lockout::Limits;
use crate::config::SessionConfig;
use crate::session::redis_link::Link;
use crate::session::StoreError;
use crate::time::Timestamp;

/// A place held by an attempt whose instance died mid-check is given back after this long.
const IN_FLIGHT_TTL: Duration = Duration::from_secs(60);

// ARGV: op (begin | fail | success | release), now (ms), max failures, window (ms), lockout (ms),
// in-flight ttl (ms). KEYS: the attempt's keys; for `success`, KEYS[1] is the user's.
// begin answers 0 (go ahead), -1 (too many in flight: retry shortly) or the ms still locked.
const STEP: &str = r"
local op, now, max = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local window, lockout, in_flight_ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local function num(v) return tonumber(v or 0) or 0 end
local function recent(k)
  local f, s = unpack(redis.call('HMGET', k, 'f', 's'))
  if s and now - num(s) < window then return num(f) end
  return 0
end
local function settle(k)
  local f, s, n, l = unpack(redis.call('HMGET', k, 'f', 's', 'n', 'l'))
  local ttl = 0
  if num(n) > 0 then ttl = in_flight_ttl end
  if f and s then ttl = math.max(ttl, num(s) + window - now) end
  if l then ttl = math.max(ttl, num(l) - now) end
  if ttl > 0 then redis.call('PEXPIRE', k, math.ceil(ttl)) else redis.call('DEL', k) end
end
if op == 'begin' then
  local wait = 0
  for _, k in ipairs(KEYS) do wait = math.max(wait, num(redis.call('HGET', k, 'l')) - now) end
  if wait > 0 then return math.ceil(wait) end
  for _, k in ipairs(KEYS) do
    if recent(k) + num(redis.call('HGET', k, 'n')) >= max then return -1 end
  end
  for _, k in ipairs(KEYS) do redis.call('HINCRBY', k, 'n', 1); settle(k) end
  return 0
end
for _, k in ipairs(KEYS) do
  if num(redis.call('HINCRBY', k, 'n', -1)) <= 0 then redis.call('HDEL', k, 'n') end
end
if op == 'fail' then
  for _, k in ipairs(KEYS) do
    local count = recent(k)
    if count == 0 then redis.call('HSET', k, 's', now) end
    if count + 1 >= max then
      redis.call('HDEL', k, 'f', 's')
      redis.call('HSET', k, 'l', now + lockout)
    else
      redis.call('HSET', k, 'f', count + 1)
    end
  end
elseif op == 'success' then
  redis.call('HDEL', KEYS[1], 'f', 's', 'l')
end
for _, k in ipairs(KEYS) do settle(k) end
return 0";

pub struct SharedCounts {
    link: Result<Link, String>,
    key_prefix: String,
    step: Script,
}

impl SharedCounts {
    /// Reaches Redis the way the session store does (`redis_mode`), on its own connection.
    pub fn new(session: &SessionConfig) -> Self {
        SharedCounts {
            // The same addresses are checked when the session store starts; a bad one stops
            // the gateway there, so this error is never met while serving.
            link: Link::new(session),
            key_prefix: format!("{}{{lockout}}:", session.key_prefix),
            step: Script::new(STEP),
        }
    }

    /// Runs one step of the script for `keys` (unprefixed: `user:alice`, `ip:192.0.2.1`).
    pub async fn run(
        &self,
        op: &str,
        keys: &[String],
        now: Timestamp,
        limits: &Limits,
    ) -> Result<i64, StoreError> {
        let link = self
            .link
            .as_ref()
            .map_err(|e| StoreError::Unavailable(e.clone()))?;
        let mut invocation = self.step.prepare_invoke();
        for key in keys {
            invocation.key(format!("{}{key}", self.key_prefix));
        }
        invocation
            .arg(op)
            .arg(now.0)
            .arg(limits.max_failures)
            .arg(limits.window.as_millis() as u64)
            .arg(limits.lockout.as_millis() as u64)
            .arg(IN_FLIGHT_TTL.as_millis() as u64);
        // Boxed: the sign-in future that awaits this stays shallow enough for the compiler.
        Box::pin(link.bounded(async {
            let mut conn = link.connection().await?;
            invocation
                .invoke_async(&mut conn)
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))
        }))
        .await
    }
}
