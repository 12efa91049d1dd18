//! Storage ports, named for their roles, and their adapters (memory, SQLite).
//!
//! Contract shared by every adapter:
//! - [`Ledger::commit`] writes an event, its verdict and the baselines it changed atomically, and
//!   is idempotent on the event id: a second commit of the same id writes nothing and reports
//!   [`CommitOutcome::Duplicate`], so a re-delivered event is never counted twice.
//! - Reads never observe half a commit.
//! - Errors keep their source; nothing is flattened into strings.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::baseline::{Baseline, ScopeKey};
use crate::context::{Approval, ChangeWindow, Context, Person};
use crate::event::{Event, EventSummary};
use crate::verdict::Verdict;

#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod memory;
pub mod sqlite;

#[cfg(feature = "aws")]
pub use dynamodb::DynamoDbStore;
pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("SQLite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored JSON is unreadable: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot open the state file {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the state file {path} was written by a newer provguard (schema {found}, this build knows {known})"
    )]
    Schema {
        path: String,
        found: i64,
        known: i64,
    },
    #[error(
        "the DynamoDB table {table} was written by a newer provguard (table schema {found}, this build knows up to {known}): upgrade this CLI or function before it reads or writes the table"
    )]
    TableSchema {
        table: String,
        found: i64,
        known: i64,
    },
    /// Another writer changed a baseline since it was read: read it again and re-apply.
    #[error("{what} changed since it was read (another writer got there first)")]
    Conflict { what: String },
    /// A DynamoDB call failed or an AWS limit was hit (feature `aws`); the SDK error is the source.
    #[error("DynamoDB {op} failed")]
    DynamoDb {
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// A record that could not be processed, kept with its reason so it can be replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub received_at: DateTime<Utc>,
    pub source: Option<String>,
    pub reason: String,
    /// The raw record exactly as received (or as much of the input as could be read).
    pub raw: String,
}

/// What scoring one event needs to read: one batched read in every adapter.
#[derive(Debug, Clone)]
pub struct ReadRequest<'a> {
    pub event_id: &'a str,
    pub tenant: &'a str,
    pub actor_key: &'a str,
    pub target_key: &'a str,
    /// Baselines to load (adapters may skip those the caller already holds).
    pub scopes: &'a [ScopeKey],
    /// Recent events of the actor and the target from this time on (up to the event's time).
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// At most this many recent events per principal, newest first.
    pub limit: usize,
    /// The detectors look at events from this time on (burst and escalation windows); older
    /// ones, back to `since`, only serve as an alert's history, so adapters that read event by
    /// event may stop after `keep_older` of them.
    pub window_since: DateTime<Utc>,
    pub keep_older: usize,
    /// The tenant's activity from this time on (the tenant-level burst window and the look-back
    /// that tells a burst under way), newest first, at most `tenant_limit` entries.
    pub tenant_since: DateTime<Utc>,
    pub tenant_limit: usize,
}

/// The answer to a [`ReadRequest`].
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The event id is already in the log.
    pub exists: bool,
    pub baselines: HashMap<ScopeKey, Baseline>,
    /// Newest first.
    pub actor_recent: Vec<EventSummary>,
    /// Newest first.
    pub target_recent: Vec<EventSummary>,
    /// The tenant's events in `[tenant_since, until]`, newest first, as [`EventSummary::activity`]
    /// (who did what when; no entitlement).
    pub tenant_recent: Vec<EventSummary>,
    /// The tenant's commit sequence as read (stores with concurrent writers): every commit of
    /// the tenant moves it by one, so a caller that finds it moved by more than its own
    /// commits knows another writer changed the tenant's baselines and reads cached ones again.
    pub tenant_seq: Option<u64>,
}

/// One atomic write: an event, its verdict (none when only learning) and changed baselines.
#[derive(Debug, Clone)]
pub struct Commit<'a> {
    pub event: &'a Event,
    pub verdict: Option<&'a Verdict>,
    pub baselines: Vec<(&'a ScopeKey, &'a Baseline)>,
    pub ingested_at: DateTime<Utc>,
    /// The snapshot the event was scored on (adapters that keep recent-event lists per
    /// principal extend these instead of reading them again).
    pub actor_recent: &'a [EventSummary],
    pub target_recent: &'a [EventSummary],
    pub tenant_recent: &'a [EventSummary],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    Written,
    /// The event id was already in the log; nothing was written.
    Duplicate,
    /// Another writer changed what the event was scored on (a baseline, a recent list) since
    /// the snapshot; nothing was written: take a new snapshot and score the event again.
    Conflict,
}

pub use crate::verdict::{Feedback, FeedbackRecord};

/// The event log.
pub trait EventStore {
    /// Whether the log holds an event with this id.
    fn has_event(&self, id: &str) -> Result<bool, StoreError>;
    fn event(&self, id: &str) -> Result<Option<Event>, StoreError>;
    /// Events made by `actor_key` in `[since, until]`, newest first, at most `limit`.
    fn recent_by_actor(
        &self,
        tenant: &str,
        actor_key: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, StoreError>;
    /// Events whose target is `target_key` in `[since, until]`, newest first, at most `limit`.
    fn recent_by_target(
        &self,
        tenant: &str,
        target_key: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, StoreError>;
    /// Calls `f` for every event at or after `since`, oldest first, with whether it must stay out
    /// of baselines (it alerted and was not marked benign).
    fn scan_events(
        &self,
        since: DateTime<Utc>,
        f: &mut dyn FnMut(Event, bool),
    ) -> Result<u64, StoreError>;
}

/// The audit trail: every verdict, and feedback on it.
pub trait VerdictStore {
    fn verdict(&self, event_id: &str) -> Result<Option<Verdict>, StoreError>;
    /// Alerting verdicts with event time at or after `since`, oldest first.
    fn alerts(&self, since: Option<DateTime<Utc>>) -> Result<Vec<Verdict>, StoreError>;
    /// Records feedback; returns false when there is no verdict for the event.
    fn set_feedback(
        &self,
        event_id: &str,
        feedback: Feedback,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// The events whose verdicts `lead`'s alert held (`Verdict::held_by`): the later changes of
    /// the burst or off-hours session it alerted for (in no particular order).
    fn held_by(&self, lead: &str) -> Result<Vec<String>, StoreError>;
}

/// Learned baselines, by scope.
pub trait BaselineStore {
    /// The baselines that exist among `keys` (one batched read).
    fn baselines(&self, keys: &[ScopeKey]) -> Result<HashMap<ScopeKey, Baseline>, StoreError>;
    /// Writes these baselines (insert or replace) in one transaction.
    fn put_baselines(&self, items: &[(&ScopeKey, &Baseline)]) -> Result<(), StoreError>;
    /// Replaces every baseline (rebaseline) in one transaction.
    fn replace_baselines(&self, all: &HashMap<ScopeKey, Baseline>) -> Result<(), StoreError>;
    fn baseline_count(&self) -> Result<u64, StoreError>;
    /// Every baseline, sorted by scope key (`provguard baselines export`; a full read, not for
    /// the hot path).
    fn scan_baselines(&self) -> Result<Vec<(ScopeKey, Baseline)>, StoreError>;
    /// Reads the baselines among `keys` (all of one tenant), lets `apply` change them and
    /// writes them back as one change no other writer interleaves with (read and applied
    /// again when one did). `released`: the stored event (and its statistic) this change
    /// learns after feedback released it, which stores with a journal record. Returns what
    /// was written.
    fn update_baselines(
        &self,
        keys: &[ScopeKey],
        released: Option<(&Event, f64)>,
        apply: &mut dyn FnMut(&mut HashMap<ScopeKey, Baseline>),
    ) -> Result<HashMap<ScopeKey, Baseline>, StoreError> {
        let _ = released;
        let mut m = self.baselines(keys)?;
        apply(&mut m);
        let items: Vec<(&ScopeKey, &Baseline)> = m.iter().collect();
        self.put_baselines(&items)?;
        for b in m.values_mut() {
            b.rev.0 += 1;
        }
        Ok(m)
    }
}

/// Where a rebuild of the baselines starts, per tenant (stores with concurrent writers): the
/// tenant's commit sequence and live baseline generation when it began. Events committed after
/// it reach the rebuild from the store's journal, not from its scan of the log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cut {
    pub tenants: std::collections::BTreeMap<String, TenantCut>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantCut {
    pub seq: u64,
    pub generation: u64,
    /// The tenant's calibration as it stood at `seq`: gathered as events were scored, it is
    /// carried into the rebuild, and what the journal adds after `seq` is added to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<crate::baseline::Calibration>,
}

/// Learns an event that arrived during a rebuild (with its statistic, when it joined the
/// calibration) into the rebuilt baselines; returns the scopes it changed.
pub type CatchUp<'a> =
    dyn FnMut(&Event, Option<f64>, &mut HashMap<ScopeKey, Baseline>) -> Vec<ScopeKey> + 'a;

/// Rebuilding every baseline from the log (rebaseline) without losing what other writers learn
/// meanwhile.
/// The defaults suit a store with one writer: no cut, the log as it is, the set replaced.
pub trait Rebuild: EventStore + BaselineStore {
    /// Starts a rebuild. `None` where the store keeps other writers out until
    /// [`Rebuild::finish_rebuild`] (SQLite holds its write lock; memory has one writer);
    /// otherwise where each tenant stands now.
    fn begin_rebuild(&self) -> Result<Option<Cut>, StoreError> {
        Ok(None)
    }
    /// Calls `f` for every event at or after `since`, oldest first, with whether it stays out
    /// of the rebuild: it had not been learned by the cut (it alerted and was not released by
    /// then, or it was committed after it, or its tenant is not in the cut).
    fn scan_rebuild(
        &self,
        since: DateTime<Utc>,
        cut: Option<&Cut>,
        f: &mut dyn FnMut(Event, bool),
    ) -> Result<u64, StoreError> {
        let _ = cut;
        self.scan_events(since, f)
    }
    /// Makes the rebuilt baselines live, learning first (`catch_up`) what was committed after
    /// the cut; `pool`: the half-life to build the scope pooled over the tenants with, from
    /// their rebuilt scopes (`None`: no pooled scope). Returns the scopes written.
    fn finish_rebuild(
        &self,
        cut: Option<&Cut>,
        all: HashMap<ScopeKey, Baseline>,
        catch_up: &mut CatchUp<'_>,
        pool: Option<f64>,
    ) -> Result<usize, StoreError> {
        let _ = (cut, catch_up);
        let all = with_pool(all, pool);
        self.replace_baselines(&all)?;
        Ok(all.len())
    }
}

/// `all` with the scope pooled over its tenants added (`pool`: its half-life), for stores
/// that replace their baselines at once.
pub(crate) fn with_pool(
    mut all: HashMap<ScopeKey, Baseline>,
    pool: Option<f64>,
) -> HashMap<ScopeKey, Baseline> {
    all.retain(|k, _| !crate::detect::is_pooled(k));
    if let Some(pooled) = pool.and_then(|h| crate::detect::pool(all.iter(), h)) {
        all.insert(ScopeKey::tenant(crate::detect::GLOBAL), pooled);
    }
    all
}

/// Removing one person's data (`provguard erase`, [`crate::erase`]).
pub trait Erase {
    /// Every stored event whose actor or target is the subject ([`crate::erase::involves`]).
    fn events_involving(&self, subject: &str) -> Result<Vec<Event>, StoreError>;
    /// The verdicts that name the subject or list an `erased` event in their history
    /// ([`crate::erase::mentions`]; feedback not filled in).
    fn verdicts_mentioning(
        &self,
        subject: &str,
        erased: &std::collections::HashSet<String>,
    ) -> Result<Vec<Verdict>, StoreError>;
    /// Removes `events` with everything stored about them (log entries, verdicts, feedback,
    /// holds, recent-list entries, remediation records), puts the `redacted` verdicts in place
    /// of the stored ones, records one erasure per event (and per redacted verdict) in the
    /// audit trail, and removes the dead letters whose raw record mentions the subject.
    /// Returns how many dead letters it removed.
    fn erase_events(
        &self,
        subject: &str,
        events: &[Event],
        redacted: &[Verdict],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError>;
}

/// Business context (DESIGN §4). Each `Some` replaces that kind wholesale; `None` keeps it.
pub trait ContextStore {
    fn context(&self) -> Result<Context, StoreError>;
    fn import_context(&self, import: &ContextImport) -> Result<(), StoreError>;
}

#[derive(Debug, Clone, Default)]
pub struct ContextImport {
    pub people: Option<Vec<Person>>,
    pub approvals: Option<Vec<Approval>>,
    pub change_windows: Option<Vec<ChangeWindow>>,
    pub domains: Option<Vec<String>>,
}

/// Records that could not be processed, and counts of those dropped on purpose.
pub trait DeadLetterStore {
    /// Keeps a dead letter; the same raw record from the same source is kept once.
    fn dead_letter(&self, dl: &DeadLetter) -> Result<(), StoreError>;
    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError>;
    /// Counts a record dropped on purpose (not a provisioning event), per source.
    fn count_dropped(&self, source: &str, n: u64) -> Result<(), StoreError>;
    fn dropped(&self) -> Result<Vec<(String, u64)>, StoreError>;
}

/// The hot path: one read and one atomic write per event.
pub trait Ledger {
    /// Everything scoring needs, in one batched read.
    fn snapshot(&self, req: &ReadRequest<'_>) -> Result<Snapshot, StoreError>;
    /// Writes an event, its verdict and baselines atomically; idempotent on the event id.
    fn commit(&self, c: &Commit<'_>) -> Result<CommitOutcome, StoreError>;
    /// Opens a group commit: the commits (and any writes) until [`Ledger::end_batch`] become
    /// durable together, or not at all, and no other writer gets in between. Returns false
    /// (and does nothing) on stores without such transactions.
    fn begin_batch(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// Makes the open batch durable.
    fn end_batch(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Whether a verdict alerted for a volume burst.
pub(crate) fn is_burst_alert(v: &Verdict) -> bool {
    v.alert && v.reasons.iter().any(|r| r.code == "volume_burst")
}

/// Whether a verdict alerted for its hour.
pub(crate) fn is_off_hours_alert(v: &Verdict) -> bool {
    v.alert && v.reasons.iter().any(|r| r.code == "off_hours")
}

/// Marks a summary with what its event's verdict alerted for.
pub(crate) fn mark_alerts(s: &mut EventSummary, v: Option<&Verdict>) {
    s.burst_alert = v.is_some_and(is_burst_alert);
    s.off_hours_alert = v.is_some_and(is_off_hours_alert);
}

/// Everything a full pipeline host needs.
pub trait Store:
    EventStore
    + VerdictStore
    + BaselineStore
    + ContextStore
    + DeadLetterStore
    + Ledger
    + Rebuild
    + Erase
{
}
impl<
    T: EventStore
        + VerdictStore
        + BaselineStore
        + ContextStore
        + DeadLetterStore
        + Ledger
        + Rebuild
        + Erase,
> Store for T
{
}

/// Dead letters are deduplicated on this key.
pub(crate) fn dead_letter_key(dl: &DeadLetter) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(dl.source.as_deref().unwrap_or("").as_bytes());
    h.update([0]);
    h.update(dl.raw.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(any(test, feature = "testing"))]
pub mod conformance {
    //! The same behavioural checks, run against every adapter (feature `testing` exposes them to
    //! the integration tests, which run them against DynamoDB on moto).
    use super::*;
    use crate::event::Event;
    use chrono::NaiveDate;

    pub fn event(id: &str, actor: &str, target: &str, time: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "id": id, "source": "okta", "tenant": "acme", "time": time,
            "action": "grant_role", "outcome": "success",
            "actor": {"email": actor, "kind": "human"},
            "target": {"email": target, "kind": "human"},
            "entitlement": {"name": "Super Administrator", "kind": "role", "privilege": "admin"},
            "channel": "console"
        }))
        .unwrap()
    }

    pub fn verdict_for(e: &Event, alert: bool) -> Verdict {
        Verdict {
            event_id: e.id.clone(),
            source: e.source.clone(),
            tenant: e.tenant.clone(),
            time: e.time,
            action: e.action,
            actor: e.actor.label().into(),
            target: e.target.label().into(),
            entitlement: None,
            privilege: None,
            score: if alert { 80 } else { 0 },
            p_value: 1.0,
            severity: crate::verdict::Severity::Info,
            alert,
            reasons: if alert {
                ["volume_burst", "off_hours"]
                    .map(|code| crate::verdict::Reason {
                        code: code.into(),
                        detail: String::new(),
                        p_value: 1e-6,
                        scope: None,
                    })
                    .into()
            } else {
                vec![]
            },
            context: vec![],
            history: vec![],
            feedback: None,
            held_by: None,
            statistic: 0.0,
        }
    }

    pub fn run(store: &dyn Store) {
        let now: DateTime<Utc> = "2024-06-01T00:00:00Z".parse().unwrap();
        let e1 = event(
            "e1",
            "ann@acme.example",
            "bob@acme.example",
            "2024-05-01T10:00:00Z",
        );
        let e2 = event(
            "e2",
            "ann@acme.example",
            "cy@acme.example",
            "2024-05-01T11:00:00Z",
        );
        let v1 = verdict_for(&e1, true);
        let key = ScopeKey::tenant("acme");
        let mut b = Baseline::default();
        b.events.n = 1;
        let c = Commit {
            event: &e1,
            verdict: Some(&v1),
            baselines: vec![(&key, &b)],
            ingested_at: now,
            actor_recent: &[],
            target_recent: &[],
            tenant_recent: &[],
        };
        assert_eq!(store.commit(&c).unwrap(), CommitOutcome::Written);
        // Idempotent: the same id again writes nothing, even with other baselines.
        let mut b2 = b.clone();
        b2.events.n = 99;
        let again = Commit {
            baselines: vec![(&key, &b2)],
            ..c.clone()
        };
        assert_eq!(store.commit(&again).unwrap(), CommitOutcome::Duplicate);
        assert_eq!(
            store.baselines(std::slice::from_ref(&key)).unwrap()[&key]
                .events
                .n,
            1
        );
        // An event and its verdict, nothing else.
        let commit_plain = |e: &Event, v: &Verdict| {
            store
                .commit(&Commit {
                    event: e,
                    verdict: Some(v),
                    baselines: vec![],
                    ingested_at: now,
                    actor_recent: &[],
                    target_recent: &[],
                    tenant_recent: &[],
                })
                .unwrap()
        };
        commit_plain(&e2, &verdict_for(&e2, false));

        // One read gives existence, baselines and both principals' recent events.
        let scopes = [key.clone(), ScopeKey::tenant("nobody")];
        let snap = store
            .snapshot(&ReadRequest {
                event_id: "e1",
                tenant: "acme",
                actor_key: "ann@acme.example",
                target_key: "bob@acme.example",
                scopes: &scopes,
                since: "2024-04-01T00:00:00Z".parse().unwrap(),
                until: now,
                limit: 10,
                window_since: "2024-04-01T00:00:00Z".parse().unwrap(),
                keep_older: 10,
                tenant_since: "2024-05-01T10:30:00Z".parse().unwrap(),
                tenant_limit: 10,
            })
            .unwrap();
        assert!(snap.exists);
        // The tenant's activity: every actor's events in its own (shorter) window, as keys.
        assert_eq!(
            snap.tenant_recent
                .iter()
                .map(|s| (s.id.as_str(), s.actor.as_str(), s.target.as_str()))
                .collect::<Vec<_>>(),
            [("e2", "ann@acme.example", "cy@acme.example")]
        );
        assert_eq!(snap.tenant_recent[0], EventSummary::activity(&e2, false));
        assert_eq!(snap.baselines.len(), 1);
        assert_eq!(
            snap.actor_recent
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>(),
            ["e2", "e1"]
        );
        assert_eq!(snap.target_recent.len(), 1);
        assert!(snap.target_recent[0].burst_alert, "e1 alerted for a burst");
        assert!(snap.target_recent[0].off_hours_alert, "and for its hour");
        assert!(!snap.actor_recent[0].burst_alert);
        assert!(!snap.actor_recent[0].off_hours_alert);

        assert!(store.has_event("e1").unwrap());
        assert!(!store.has_event("nope").unwrap());
        assert_eq!(store.event("e2").unwrap().unwrap(), e2);
        let since = "2024-04-01T00:00:00Z".parse().unwrap();
        let recent = store
            .recent_by_actor("acme", "ann@acme.example", since, now, 10)
            .unwrap();
        assert_eq!(
            recent.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["e2", "e1"]
        );
        let t = store
            .recent_by_target("acme", "cy@acme.example", since, now, 10)
            .unwrap();
        assert_eq!(t.len(), 1);

        // Alerts and feedback.
        assert_eq!(store.alerts(None).unwrap().len(), 1);
        let mut seen = Vec::new();
        store
            .scan_events(since, &mut |e, excluded| seen.push((e.id, excluded)))
            .unwrap();
        assert_eq!(seen, [("e1".to_owned(), true), ("e2".to_owned(), false)]);
        assert!(
            store
                .set_feedback("e1", Feedback::Benign, Some("planned"), now)
                .unwrap()
        );
        assert!(
            !store
                .set_feedback("zz", Feedback::Benign, None, now)
                .unwrap()
        );
        seen.clear();
        store
            .scan_events(since, &mut |e, excluded| seen.push((e.id, excluded)))
            .unwrap();
        assert_eq!(seen[0], ("e1".to_owned(), false));

        // A change of an episode that alerted (its context names the event that did) stays out
        // of baselines until it is marked benign itself.
        let e3 = event(
            "e3",
            "ann@acme.example",
            "dee@acme.example",
            "2024-05-01T12:00:00Z",
        );
        let mut v3 = verdict_for(&e3, false);
        v3.context.push(crate::verdict::ContextNote {
            kind: "burst".into(),
            detail: "part of the burst already alerted as event e1".into(),
            effect: "lowered".into(),
        });
        v3.held_by = Some("e1".into());
        commit_plain(&e3, &v3);
        // Listed under the alert that held it, so feedback on that alert can release it.
        assert_eq!(store.held_by("e1").unwrap(), ["e3"]);
        assert!(store.held_by("e3").unwrap().is_empty());
        assert_eq!(
            store.verdict("e3").unwrap().unwrap().held_by.as_deref(),
            Some("e1")
        );
        let held = || {
            let mut out = Vec::new();
            store
                .scan_events(since, &mut |e, excluded| {
                    if e.id == "e3" {
                        out.push(excluded)
                    }
                })
                .unwrap();
            out
        };
        assert_eq!(held(), [true]);
        assert!(
            store
                .set_feedback("e3", Feedback::Benign, None, now)
                .unwrap()
        );
        assert_eq!(held(), [false]);
        let fb = store.verdict("e1").unwrap().unwrap().feedback.unwrap();
        assert_eq!(
            (fb.label, fb.note.as_deref()),
            (Feedback::Benign, Some("planned"))
        );
        // A baseline is written back over the copy it was read from.
        let mut b2 = store.baselines(std::slice::from_ref(&key)).unwrap()[&key].clone();
        b2.events.n = 99;
        store.put_baselines(&[(&key, &b2)]).unwrap();
        assert_eq!(
            store.baselines(std::slice::from_ref(&key)).unwrap()[&key]
                .events
                .n,
            99
        );

        // Baselines are replaced wholesale.
        let mut all = HashMap::new();
        all.insert(ScopeKey::tenant("other"), Baseline::default());
        store.replace_baselines(&all).unwrap();
        assert_eq!(store.baseline_count().unwrap(), 1);
        assert!(store.baselines(&[key]).unwrap().is_empty());

        // Dead letters are kept once; drops are counted.
        let dl = DeadLetter {
            received_at: now,
            source: Some("okta".into()),
            reason: "malformed JSON".into(),
            raw: "{oops".into(),
        };
        store.dead_letter(&dl).unwrap();
        store.dead_letter(&dl).unwrap();
        assert_eq!(store.dead_letters().unwrap(), vec![dl]);
        store.count_dropped("okta", 2).unwrap();
        store.count_dropped("okta", 1).unwrap();
        assert_eq!(store.dropped().unwrap(), vec![("okta".to_owned(), 3)]);

        // Context import replaces per kind.
        store
            .import_context(&ContextImport {
                domains: Some(vec!["acme.example".into()]),
                ..Default::default()
            })
            .unwrap();
        store
            .import_context(&ContextImport {
                people: Some(vec![Person {
                    email: "ann@acme.example".into(),
                    user_id: None,
                    display_name: None,
                    department: Some("IT".into()),
                    team: None,
                    title: None,
                    manager: None,
                    employment_type: None,
                    timezone: None,
                    start_date: None,
                    team_since: NaiveDate::from_ymd_opt(2026, 7, 20),
                }]),
                ..Default::default()
            })
            .unwrap();
        let ctx = store.context().unwrap();
        assert_eq!(ctx.domains, ["acme.example"]);
        assert_eq!(
            ctx.person(["ANN@acme.example"])
                .unwrap()
                .department
                .as_deref(),
            Some("IT")
        );
        assert_eq!(
            ctx.person(["ann@acme.example"]).unwrap().team_since,
            NaiveDate::from_ymd_opt(2026, 7, 20)
        );
    }
}
