//! Recent sign-outs in Redis, in the user's bucket like the rest of their sessions, so every key
//! of one user stays in one slot of a Redis Cluster:
//! - `{b}:ends:<name>`    list of JSON end records, newest first, trimmed to `KEPT`; the whole list
//!   expires `KEPT_FOR` after its newest entry.
//! - `{b}:reports:<name>` the same for front-end reports.
//! - `{b}:owner:<id>`     whose session `id` was, kept as long as its end's reason (`{b}` is the
//!   id's bucket, which for every session made since buckets is its user's).

use std::sync::LazyLock;

use async_trait::async_trait;
use redis::Script;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::recent_ends::{
    EndHistory, EndRecord, FrontEndReport, RecentEnds, KEPT, KEPT_FOR, OWNER_KEPT_FOR,
};
use super::{user_bucket, RedisStore, SessionId, StoreError};

/// Push, trim and refresh the expiry of one list in one step, so two instances recording at once
/// never leave it over its cap or without an expiry.
static PUSH_CAPPED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1",
    )
});

impl RedisStore {
    fn history_key(&self, list: &str, user: &str) -> String {
        format!("{}{list}:{user}", self.bucket_tag(user_bucket(user)))
    }

    fn owner_key(&self, id: &SessionId) -> String {
        format!("{}owner:{}", self.bucket_tag(id.bucket()), id.as_str())
    }

    async fn push_capped(&self, key: String, entry: &impl Serialize) -> Result<(), StoreError> {
        let json = serde_json::to_string(entry)
            .map_err(|e| StoreError::Corrupt(format!("recent sign-out not encodable: {e}")))?;
        let mut invocation = PUSH_CAPPED.key(key);
        invocation
            .arg(json)
            .arg(KEPT)
            .arg(KEPT_FOR.as_millis() as u64);
        self.invoke::<i64>(&invocation).await.map(drop)
    }

    /// The list's entries that still decode (a record written by a newer version with a reason
    /// this one does not know is left out, not an error).
    async fn read_list<T: DeserializeOwned>(&self, key: String) -> Result<Vec<T>, StoreError> {
        let entries: Vec<String> = self
            .query(redis::cmd("LRANGE").arg(key).arg(0).arg(KEPT as isize - 1))
            .await?;
        Ok(entries
            .iter()
            .filter_map(|e| serde_json::from_str(e).ok())
            .collect())
    }
}

#[async_trait]
impl EndHistory for RedisStore {
    async fn record_end(
        &self,
        user: &str,
        id: &SessionId,
        end: &EndRecord,
    ) -> Result<(), StoreError> {
        let owner = redis::cmd("SET")
            .arg(self.owner_key(id))
            .arg(user)
            .arg("PX")
            .arg(OWNER_KEPT_FOR.as_millis() as u64)
            .clone();
        self.query::<String>(&owner).await?;
        self.push_capped(self.history_key("ends", user), end).await
    }

    async fn record_report(&self, user: &str, report: &FrontEndReport) -> Result<(), StoreError> {
        self.push_capped(self.history_key("reports", user), report)
            .await
    }

    async fn recent(&self, user: &str) -> Result<RecentEnds, StoreError> {
        Ok(RecentEnds {
            ends: self.read_list(self.history_key("ends", user)).await?,
            reports: self.read_list(self.history_key("reports", user)).await?,
        })
    }

    async fn ended_owner(&self, id: &SessionId) -> Result<Option<String>, StoreError> {
        self.query(redis::cmd("GET").arg(self.owner_key(id))).await
    }
}
