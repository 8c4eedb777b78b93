//! API tokens in memory, for the memory session store: gone with the process, like its sessions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{ApiToken, Stored, TokenStore, EXPIRED_KEPT_FOR, REVOKED_KEPT_FOR};
use crate::session::StoreError;
use crate::time::Timestamp;

#[derive(Default)]
struct Records {
    /// Digest → the token, or when its revocation is forgotten.
    by_digest: HashMap<String, Entry>,
    /// User → token id → digest.
    by_user: HashMap<String, BTreeMap<String, String>>,
}

enum Entry {
    Live(ApiToken),
    Revoked { forget_at: Timestamp },
}

impl Entry {
    /// Still to be told apart from an unknown token at `now`.
    fn remembered_at(&self, now: Timestamp) -> bool {
        match self {
            Entry::Live(t) => now < t.expires_at.plus(EXPIRED_KEPT_FOR),
            Entry::Revoked { forget_at } => now < *forget_at,
        }
    }
}

impl Records {
    /// Lets go of revocations and expiries old enough to be forgotten, so the map stays as large
    /// as the live tokens (each user has at most `max_per_user`). Run when a token is made, the
    /// only way the map grows: not on every list, which would walk every user's tokens.
    fn forget_old(&mut self, now: Timestamp) {
        let mut gone = Vec::new();
        self.by_digest.retain(|digest, entry| {
            let keep = entry.remembered_at(now);
            if !keep {
                gone.push(digest.clone());
            }
            keep
        });
        if gone.is_empty() {
            return;
        }
        self.by_user.retain(|_, ids| {
            ids.retain(|_, digest| !gone.contains(digest));
            !ids.is_empty()
        });
    }

    fn revoke_digest(&mut self, digest: &str, now: Timestamp) {
        self.by_digest.insert(
            digest.to_string(),
            Entry::Revoked {
                forget_at: now.plus(REVOKED_KEPT_FOR),
            },
        );
    }
}

#[derive(Default)]
pub struct MemoryTokens {
    records: Mutex<Records>,
}

impl MemoryTokens {
    fn records(&self) -> std::sync::MutexGuard<'_, Records> {
        // A panic while holding the lock leaves plain maps behind: still usable.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl TokenStore for MemoryTokens {
    async fn put(&self, digest: &str, token: &ApiToken) -> Result<(), StoreError> {
        let mut records = self.records();
        records.forget_old(Timestamp::now());
        records
            .by_user
            .entry(token.user.clone())
            .or_default()
            .insert(token.id.clone(), digest.to_string());
        records
            .by_digest
            .insert(digest.to_string(), Entry::Live(token.clone()));
        Ok(())
    }

    async fn find(&self, digest: &str, _bucket: u16) -> Result<Stored, StoreError> {
        Ok(match self.records().by_digest.get(digest) {
            Some(Entry::Live(token)) => Stored::Live(token.clone()),
            Some(Entry::Revoked { .. }) => Stored::Revoked,
            None => Stored::Unknown,
        })
    }

    async fn list(&self, user: &str) -> Result<Vec<ApiToken>, StoreError> {
        let records = self.records();
        let now = Timestamp::now();
        let Some(ids) = records.by_user.get(user) else {
            return Ok(Vec::new());
        };
        Ok(ids
            .values()
            .filter_map(|digest| match records.by_digest.get(digest) {
                Some(entry @ Entry::Live(token)) if entry.remembered_at(now) => Some(token.clone()),
                _ => None,
            })
            .collect())
    }

    async fn revoke(&self, user: &str, id: &str) -> Result<bool, StoreError> {
        let mut records = self.records();
        let Some(digest) = records.by_user.get_mut(user).and_then(|ids| ids.remove(id)) else {
            return Ok(false);
        };
        records.revoke_digest(&digest, Timestamp::now());
        Ok(true)
    }

    async fn revoke_user(&self, user: &str) -> Result<usize, StoreError> {
        let mut records = self.records();
        let Some(ids) = records.by_user.remove(user) else {
            return Ok(0);
        };
        let now = Timestamp::now();
        for digest in ids.values() {
            records.revoke_digest(digest, now);
        }
        Ok(ids.len())
    }
}
