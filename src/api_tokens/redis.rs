//! API tokens in Redis, in the owner's bucket like their sessions (one slot of a Redis Cluster):
//! - `{b}:apitoken:<digest>`  the token's JSON record, or `revoked`; expires by itself a day after
//!   the token does (or a day after its revocation), so nothing is left behind.
//! - `{b}:apitokens:<name>`   hash: token id → digest, the owner's tokens (lists, revocations).
//!
//! Each change is one script, so a revocation never leaves the record live without its index
//! entry or the other way round.

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;

use super::{ApiToken, Stored, TokenStore, EXPIRED_KEPT_FOR, REVOKED_KEPT_FOR};
use crate::session::{user_bucket, RedisStore, StoreError};
use crate::time::Timestamp;

/// The mark left where a revoked token's record was.
const REVOKED: &str = "revoked";

/// KEYS: record, index. ARGV: record JSON, its lifetime (ms), id, digest.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1",
    )
});

/// KEYS: index. ARGV: tag, mark's lifetime (ms), mark, then the ids to revoke (none: every one).
/// Every key it touches starts with the owner's tag (one slot).
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ids = {}
if #ARGV > 3 then
  for i = 4, #ARGV do table.insert(ids, ARGV[i]) end
else
  ids = redis.call('HKEYS', KEYS[1])
end
local revoked = 0
for _, id in ipairs(ids) do
  local digest = redis.call('HGET', KEYS[1], id)
  if digest then
    redis.call('HDEL', KEYS[1], id)
    redis.call('SET', ARGV[1] .. 'apitoken:' .. digest, ARGV[3], 'PX', ARGV[2])
    revoked = revoked + 1
  end
end
return revoked",
    )
});

impl RedisStore {
    fn token_key(&self, bucket: u16, digest: &str) -> String {
        format!("{}apitoken:{digest}", self.bucket_tag(bucket))
    }

    fn token_index(&self, user: &str) -> String {
        format!("{}apitokens:{user}", self.bucket_tag(user_bucket(user)))
    }

    async fn revoke_ids(&self, user: &str, ids: &[&str]) -> Result<usize, StoreError> {
        let mut invocation = REVOKE.key(self.token_index(user));
        invocation
            .arg(self.bucket_tag(user_bucket(user)))
            .arg(REVOKED_KEPT_FOR.as_millis() as u64)
            .arg(REVOKED);
        for id in ids {
            invocation.arg(*id);
        }
        self.invoke::<usize>(&invocation).await
    }
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn put(&self, digest: &str, token: &ApiToken) -> Result<(), StoreError> {
        let json = serde_json::to_string(token)
            .map_err(|e| StoreError::Corrupt(format!("API token not encodable: {e}")))?;
        let lifetime = Timestamp::now().until(token.expires_at) + EXPIRED_KEPT_FOR;
        let mut invocation = PUT.key(self.token_key(user_bucket(&token.user), digest));
        invocation
            .key(self.token_index(&token.user))
            .arg(json)
            .arg(lifetime.as_millis() as u64)
            .arg(&token.id)
            .arg(digest);
        self.invoke::<i64>(&invocation).await.map(drop)
    }

    async fn find(&self, digest: &str, bucket: u16) -> Result<Stored, StoreError> {
        let record: Option<String> = self
            .query(redis::cmd("GET").arg(self.token_key(bucket, digest)))
            .await?;
        Ok(match record.as_deref() {
            None => Stored::Unknown,
            Some(REVOKED) => Stored::Revoked,
            Some(json) => serde_json::from_str(json)
                .map(Stored::Live)
                .map_err(|_| StoreError::Corrupt("unreadable API token record".into()))?,
        })
    }

    async fn list(&self, user: &str) -> Result<Vec<ApiToken>, StoreError> {
        let index: Vec<(String, String)> = self
            .query(redis::cmd("HGETALL").arg(self.token_index(user)))
            .await?;
        if index.is_empty() {
            return Ok(Vec::new());
        }
        let bucket = user_bucket(user);
        let keys: Vec<String> = index
            .iter()
            .map(|(_, digest)| self.token_key(bucket, digest))
            .collect();
        let records: Vec<Option<String>> = self.query(redis::cmd("MGET").arg(keys)).await?;
        let mut tokens = Vec::new();
        let mut gone = Vec::new();
        for ((id, _), record) in index.iter().zip(records) {
            match record.as_deref().map(serde_json::from_str::<ApiToken>) {
                Some(Ok(token)) => tokens.push(token),
                // Expired out of Redis: its index entry goes too.
                None => gone.push(id.as_str()),
                Some(Err(_)) => {}
            }
        }
        if !gone.is_empty() {
            let command = redis::cmd("HDEL")
                .arg(self.token_index(user))
                .arg(&gone)
                .clone();
            self.query::<i64>(&command).await?;
        }
        Ok(tokens)
    }

    async fn revoke(&self, user: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self.revoke_ids(user, &[id]).await? > 0)
    }

    async fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        self.revoke_ids(user, &[]).await
    }
}
