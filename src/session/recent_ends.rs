//! Recent sign-outs: the last [`KEPT`] ends of each user's sessions (reason, when, session age,
//! idle time at the end, where it was noticed, the device) and what the user's front ends reported
//! seeing (`POST <hub>/api/logout-event`), kept [`KEPT_FOR`]. What answers "why was alice signed
//! out at 14:32?" — on the session page, in `/hub/api/session` and in the admin API.
//!
//! Front-end reports have their own list: a front end that reports too much can never push the
//! server's own records of ends out.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{EndReason, SessionId, StoreError};
use crate::time::Timestamp;

/// Ends kept per user, and front-end reports kept per user.
pub const KEPT: usize = 20;
/// How long a user's recent sign-outs are kept after the newest one.
pub const KEPT_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long the owner of an ended session is remembered, so a front end's report that comes after
/// the end (the dialog it showed) still finds the user. As long as the end's reason is kept.
pub const OWNER_KEPT_FOR: Duration = Duration::from_secs(24 * 3600);
/// Users whose history the memory store keeps at most (least recently used go first).
const MEMORY_USERS: u64 = 100_000;

/// A session as named in records, pages and the admin API: a digest of its id, never the id
/// itself (which is a bearer secret), stable enough to match an end with its reports and to
/// pick a device to sign out.
pub fn session_ref(id: &SessionId) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::new()
        .chain_update(b"hubgate session ref\0")
        .chain_update(id.as_str().as_bytes())
        .finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// One end of a session, as recorded when it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndRecord {
    pub reason: EndReason,
    /// Milliseconds since the epoch.
    pub at: Timestamp,
    pub session: String,
    pub session_age_seconds: u64,
    pub idle_seconds: u64,
    pub app: Option<String>,
    pub path: Option<String>,
    pub device: String,
    pub ip: String,
}

/// What a front end says it saw (`type` in `POST <hub>/api/logout-event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportType {
    UserAction,
    TokenExpired,
    RefreshFailed,
    AuthError,
    Unknown,
}

impl ReportType {
    pub const ALL: [ReportType; 5] = [
        ReportType::UserAction,
        ReportType::TokenExpired,
        ReportType::RefreshFailed,
        ReportType::AuthError,
        ReportType::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportType::UserAction => "user_action",
            ReportType::TokenExpired => "token_expired",
            ReportType::RefreshFailed => "refresh_failed",
            ReportType::AuthError => "auth_error",
            ReportType::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        ReportType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// A front end's report, with what the gateway knows of who sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrontEndReport {
    #[serde(rename = "type")]
    pub kind: ReportType,
    pub at: Timestamp,
    /// [`session_ref`] of the session the report came with.
    pub session: String,
    pub message: String,
    pub location: String,
    pub idle_minutes: Option<f64>,
    pub app: Option<String>,
    pub device: String,
    pub ip: String,
}

/// A user's recent sign-outs, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecentEnds {
    pub ends: Vec<EndRecord>,
    pub reports: Vec<FrontEndReport>,
}

impl RecentEnds {
    /// Only what is younger than [`KEPT_FOR`] at `now`, at most `limit` of each.
    pub fn within(mut self, now: Timestamp, limit: usize) -> Self {
        let fresh = |at: Timestamp| now.since(at) < KEPT_FOR;
        self.ends.retain(|e| fresh(e.at));
        self.reports.retain(|r| fresh(r.at));
        self.ends.truncate(limit);
        self.reports.truncate(limit);
        self
    }

    /// The end of the session `session` (a [`session_ref`]), if recorded.
    pub fn end_of(&self, session: &str) -> Option<&EndRecord> {
        self.ends.iter().find(|e| e.session == session)
    }

    /// The reports that came with the session `session`.
    pub fn reports_of<'a>(&'a self, session: &'a str) -> impl Iterator<Item = &'a FrontEndReport> {
        self.reports.iter().filter(move |r| r.session == session)
    }
}

/// Where recent sign-outs are kept: beside the sessions, in the same store.
#[async_trait]
pub trait EndHistory: Send + Sync {
    /// Records the end of `user`'s session `id`, and that `id` was `user`'s.
    async fn record_end(
        &self,
        user: &str,
        id: &SessionId,
        end: &EndRecord,
    ) -> Result<(), StoreError>;
    async fn record_report(&self, user: &str, report: &FrontEndReport) -> Result<(), StoreError>;
    /// Newest first, at most [`KEPT`] of each (possibly older than [`KEPT_FOR`]: see
    /// [`RecentEnds::within`]).
    async fn recent(&self, user: &str) -> Result<RecentEnds, StoreError>;
    /// Whose session `id` was, if it ended within [`OWNER_KEPT_FOR`].
    async fn ended_owner(&self, id: &SessionId) -> Result<Option<String>, StoreError>;
}

/// The memory store's history: per user, the two capped lists; users not heard of for
/// [`KEPT_FOR`] are forgotten, and at most [`MEMORY_USERS`] are kept.
pub struct MemoryHistory {
    users: moka::sync::Cache<String, Arc<Mutex<UserHistory>>>,
    owners: moka::sync::Cache<SessionId, String>,
}

#[derive(Default)]
struct UserHistory {
    ends: VecDeque<EndRecord>,
    reports: VecDeque<FrontEndReport>,
}

impl Default for MemoryHistory {
    fn default() -> Self {
        MemoryHistory {
            users: moka::sync::Cache::builder()
                .max_capacity(MEMORY_USERS)
                .time_to_idle(KEPT_FOR)
                .build(),
            owners: moka::sync::Cache::builder()
                .max_capacity(MEMORY_USERS)
                .time_to_live(OWNER_KEPT_FOR)
                .build(),
        }
    }
}

impl MemoryHistory {
    fn change(&self, user: &str, change: impl FnOnce(&mut UserHistory)) {
        let history = self.users.get_with(user.to_string(), Arc::default);
        // Every change is one push and one truncate: a poisoned lock holds a whole history.
        let mut history = history.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut history);
    }
}

fn push_capped<T>(list: &mut VecDeque<T>, item: T) {
    list.push_front(item);
    list.truncate(KEPT);
}

#[async_trait]
impl EndHistory for MemoryHistory {
    async fn record_end(
        &self,
        user: &str,
        id: &SessionId,
        end: &EndRecord,
    ) -> Result<(), StoreError> {
        self.owners.insert(id.clone(), user.to_string());
        self.change(user, |h| push_capped(&mut h.ends, end.clone()));
        Ok(())
    }

    async fn record_report(&self, user: &str, report: &FrontEndReport) -> Result<(), StoreError> {
        self.change(user, |h| push_capped(&mut h.reports, report.clone()));
        Ok(())
    }

    async fn recent(&self, user: &str) -> Result<RecentEnds, StoreError> {
        let Some(history) = self.users.get(user) else {
            return Ok(RecentEnds::default());
        };
        let history = history.lock().unwrap_or_else(|p| p.into_inner());
        Ok(RecentEnds {
            ends: history.ends.iter().cloned().collect(),
            reports: history.reports.iter().cloned().collect(),
        })
    }

    async fn ended_owner(&self, id: &SessionId) -> Result<Option<String>, StoreError> {
        Ok(self.owners.get(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(at: u64, session: &str) -> EndRecord {
        EndRecord {
            reason: EndReason::IdleTimeout,
            at: Timestamp(at),
            session: session.into(),
            session_age_seconds: 60,
            idle_seconds: 30,
            app: None,
            path: None,
            device: "Firefox 128 on Linux".into(),
            ip: "127.0.0.1".into(),
        }
    }

    #[tokio::test]
    async fn memory_keeps_the_newest_ends_capped_and_their_owners() {
        let history = MemoryHistory::default();
        let id = SessionId::generate();
        for i in 0..(KEPT as u64 + 5) {
            history
                .record_end("alice", &id, &end(i, &format!("s{i}")))
                .await
                .unwrap();
        }
        let recent = history.recent("alice").await.unwrap();
        assert_eq!(recent.ends.len(), KEPT);
        assert_eq!(recent.ends[0].session, format!("s{}", KEPT + 4));
        assert_eq!(
            history.ended_owner(&id).await.unwrap().as_deref(),
            Some("alice")
        );
        assert_eq!(history.recent("bob").await.unwrap(), RecentEnds::default());
    }

    #[test]
    fn old_records_are_left_out() {
        let now = Timestamp(KEPT_FOR.as_millis() as u64 + 10_000);
        let recent = RecentEnds {
            ends: vec![end(now.0 - 1, "new"), end(5_000, "old")],
            reports: Vec::new(),
        }
        .within(now, 50);
        assert_eq!(recent.ends.len(), 1);
        assert_eq!(recent.ends[0].session, "new");
    }

    #[test]
    fn session_refs_are_stable_and_reveal_nothing_of_the_id() {
        let id = SessionId::generate();
        assert_eq!(session_ref(&id), session_ref(&id));
        assert_eq!(session_ref(&id).len(), 16);
        assert!(!id.as_str().contains(&session_ref(&id)));
    }
}
