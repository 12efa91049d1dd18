//! Erasing one person's data (`provguard erase --subject EMAIL|ID`): every event where they are
//! the actor or the target goes, with its verdict, feedback, log entries and the places its
//! summary was copied to (recent lists, other alerts' histories); their directory entry and the
//! approvals naming them go; dead letters mentioning them go; the baselines are rebuilt from
//! what is left, so no scope keeps their habits. The audit trail records the erasure (one record
//! per event, ids and hashes only) and still verifies.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::event::Event;
use crate::pipeline::Pipeline;
use crate::store::{ContextImport, Store, StoreError};
use crate::verdict::Verdict;

/// What an erasure removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErasureReport {
    /// Events removed (the subject was their actor or target).
    pub events: usize,
    /// Other verdicts whose alert history listed one of them, rewritten without it.
    pub redacted: usize,
    pub dead_letters: u64,
    /// Directory entries and approvals removed from the context.
    pub people: usize,
    pub approvals: usize,
    /// Baselines after the rebuild.
    pub scopes: usize,
}

fn same(a: Option<&str>, subject: &str) -> bool {
    a.is_some_and(|a| a.trim().eq_ignore_ascii_case(subject))
}

/// Whether the subject (an e-mail address or an id, case-insensitive) is the event's actor or
/// target.
pub fn involves(e: &Event, subject: &str) -> bool {
    let subject = subject.trim();
    [
        e.actor.email.as_deref(),
        e.actor.id.as_deref(),
        e.target.email.as_deref(),
        e.target.id.as_deref(),
    ]
    .into_iter()
    .any(|v| same(v, subject))
        || e.actor_key().eq_ignore_ascii_case(subject)
        || e.target_key().eq_ignore_ascii_case(subject)
}

/// What stands in for the subject wherever another record named them.
pub const ERASED_NAME: &str = "(erased)";

/// `text` with every occurrence of `subject` (ASCII case-insensitive) replaced.
pub fn scrub(text: &str, subject: &str) -> String {
    let subject = subject.trim().to_ascii_lowercase();
    if subject.is_empty() {
        return text.to_owned();
    }
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(i) = lower[at..].find(&subject) {
        out.push_str(&text[at..at + i]);
        out.push_str(ERASED_NAME);
        at += i + subject.len();
    }
    out.push_str(&text[at..]);
    out
}

/// `v` without the erased events in its history and with the subject's name replaced wherever
/// it appears (an approval they gave, a note); `None` when it held neither.
pub fn redact(v: &Verdict, erased: &HashSet<&str>, subject: &str) -> Option<Verdict> {
    let mut out = v.clone();
    out.history.retain(|s| !erased.contains(s.id.as_str()));
    let json = serde_json::to_string(&out).ok()?;
    let scrubbed = scrub(&json, subject);
    if scrubbed != json {
        out = serde_json::from_str(&scrubbed).ok()?;
    } else if out.history.len() == v.history.len() {
        return None;
    }
    Some(out)
}

/// A verdict's body as the stores keep it (its feedback kept apart).
pub fn stored_body(v: &Verdict) -> Result<String, serde_json::Error> {
    let mut v = v.clone();
    v.feedback = None;
    serde_json::to_string(&v)
}

/// Whether a verdict names the subject or lists an erased event.
pub fn mentions(v: &Verdict, erased: &HashSet<String>, subject: &str) -> bool {
    v.history.iter().any(|s| erased.contains(&s.id))
        || serde_json::to_string(v).is_ok_and(|j| {
            j.to_ascii_lowercase()
                .contains(&subject.trim().to_ascii_lowercase())
        })
}

impl<S: Store> Pipeline<S> {
    /// Erases the subject's data (see the module docs), then rebuilds the baselines over the
    /// rolling window ending at `now` from what is left.
    pub fn erase(
        &mut self,
        subject: &str,
        now: DateTime<Utc>,
        window_days: i64,
    ) -> Result<ErasureReport, StoreError> {
        let store = self.store();
        let events = store.events_involving(subject)?;
        let ids: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let owned: HashSet<String> = ids.iter().map(|s| (*s).to_owned()).collect();
        let redacted: Vec<Verdict> = store
            .verdicts_mentioning(subject, &owned)?
            .iter()
            .filter(|v| !ids.contains(v.event_id.as_str()))
            .filter_map(|v| redact(v, &ids, subject))
            .collect();
        let dead_letters = store.erase_events(subject, &events, &redacted, now)?;
        // The directory entry and the approvals that name them.
        let ctx = store.context()?;
        // Their directory entry and the approvals for them go; where they are someone's
        // manager or approved someone else's access, their name does (the approval stays).
        let people: Vec<_> = ctx
            .people
            .iter()
            .filter(|p| !(same(Some(&p.email), subject) || same(p.user_id.as_deref(), subject)))
            .cloned()
            .map(|mut p| {
                if same(p.manager.as_deref(), subject) {
                    p.manager = None;
                }
                p
            })
            .collect();
        let approvals: Vec<_> = ctx
            .approvals
            .iter()
            .filter(|a| !same(Some(&a.target), subject))
            .cloned()
            .map(|mut a| {
                if same(a.approved_by.as_deref(), subject) {
                    a.approved_by = Some(ERASED_NAME.to_owned());
                }
                a
            })
            .collect();
        let mut report = ErasureReport {
            events: events.len(),
            redacted: redacted.len(),
            dead_letters,
            people: ctx.people.len() - people.len(),
            approvals: ctx.approvals.len() - approvals.len(),
            scopes: 0,
        };
        let people_changed = people != ctx.people;
        let approvals_changed = approvals != ctx.approvals;
        if people_changed || approvals_changed {
            store.import_context(&ContextImport {
                people: people_changed.then_some(people),
                approvals: approvals_changed.then_some(approvals),
                ..ContextImport::default()
            })?;
        }
        self.refresh()?;
        report.scopes = self.rebaseline(now, window_days)?.2;
        Ok(report)
    }
}
