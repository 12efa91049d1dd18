//! The scheduled sweep of automatic requests awaiting confirmation, and the function's entry
//! point, which tells the schedule from a request.
//!
//! An EventBridge schedule (`rate(5 minutes)`, infra/template.yaml) invokes the function with a
//! "Scheduled Event". The sweep sends every held request ([`crate::confirm`]) through
//! [`crate::remediate`] again, the one whose wait ends first first: confirmed now, it proceeds
//! through the normal flow (allow-list, idempotency, hourly cap); past its wait, it is refused.
//! A request that ended either way, or any other way, is no longer held. Near the invocation's
//! deadline the sweep stops starting requests; the rest wait for the next run.
//!
//! The sweep only re-checks what automatic requests left behind: invoked by anyone else, it can
//! execute nothing that was not already asked for.
//!
//! It also confirms the routine webhook deliveries the ingest function held out of the baselines
//! (pending items whose remedy is [`RELEASE`]): one confirmed at its provider is released by
//! feedback `benign` naming the provider's record, so the next rebaseline learns it; one its
//! provider contradicts, or that no record confirms within the wait, stays out (an analyst may
//! still mark it benign).

use chrono::{DateTime, Utc};
use lambda_runtime::LambdaEvent;
use provguard_core::error_chain as chain;
use provguard_core::store::dynamodb::{PendingConfirmation, RELEASE};
use provguard_core::store::{EventStore, StoreError, VerdictStore};
use provguard_core::verdict::Feedback;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::{Deps, Error, Report, Status};

/// Time kept in hand at the end of an invocation: one held request's provider lookup and steps,
/// each call within its budget ([`crate::IDP_TIMEOUT`]).
pub const RESERVE_MS: u64 = 25_000;

/// What one sweep did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    pub at: DateTime<Utc>,
    /// Requests held when the sweep began.
    pub held: usize,
    /// What became of each request sent through again, in order.
    pub reports: Vec<Report>,
    /// Stopped near the deadline: the rest are left for the next sweep.
    pub more: bool,
    /// Held webhook deliveries checked at their provider, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub releases: Vec<Release>,
}

/// What became of a webhook delivery held out of the baselines until confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub event_id: String,
    /// `released` (confirmed and released into the baselines), `waiting` (not on record yet;
    /// checked again), `kept_out` (contradicted, unconfirmable, or not confirmed in time) or
    /// `nothing_to_do` (gone, already released or marked).
    pub outcome: String,
    pub detail: String,
}

/// What the function answers: a request's report, or what a sweep did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Answer {
    Report(Box<Report>),
    Sweep(Sweep),
}

/// Whether a payload is an EventBridge schedule's (`source` `aws.events`, `detail-type`
/// `Scheduled Event`).
pub fn is_schedule(payload: &Json) -> bool {
    payload["source"] == "aws.events" && payload["detail-type"] == "Scheduled Event"
}

fn wall_ms() -> u64 {
    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0)
}

/// The function's entry point: a schedule runs the sweep, anything else is a request
/// ([`crate::handle`]).
pub async fn dispatch(deps: &Deps, event: LambdaEvent<Json>) -> Result<Answer, Error> {
    if !is_schedule(&event.payload) {
        return crate::handle(deps, event)
            .await
            .map(|r| Answer::Report(Box::new(r)));
    }
    let context = event.context;
    let deadline = context.deadline;
    let d = deps.clone();
    let swept = tokio::task::spawn_blocking(move || sweep(&d, deadline, wall_ms)).await?;
    match &swept {
        Ok(s) => {
            for r in &s.reports {
                tracing::info!(request_id = %context.request_id, event_id = %r.event_id, action = ?r.action, status = ?r.status, message = %r.message, "held remediation checked again");
            }
            tracing::info!(request_id = %context.request_id, held = s.held, checked = s.reports.len(), more = s.more, "confirmation sweep");
        }
        Err(e) => {
            tracing::error!(request_id = %context.request_id, error = %chain(e), "confirmation sweep failed");
        }
    }
    Ok(Answer::Sweep(swept?))
}

/// One sweep (blocking). `deadline_ms` is the invocation's deadline (0: none known);
/// `clock_ms` reads the wall clock it is compared with.
pub fn sweep(deps: &Deps, deadline_ms: u64, clock_ms: fn() -> u64) -> Result<Sweep, StoreError> {
    let at = (deps.clock)();
    let held = deps.store.pending_confirmations::<Json>()?;
    let mut out = Sweep {
        at,
        held: held.len(),
        reports: Vec::with_capacity(held.len()),
        more: false,
        releases: Vec::new(),
    };
    for p in held {
        if deadline_ms > 0 && clock_ms().saturating_add(RESERVE_MS) >= deadline_ms {
            out.more = true;
            break;
        }
        if p.remedy == RELEASE {
            let r = release(deps, &p, at)?;
            if r.outcome != "waiting" {
                deps.store.forget_confirmation(&p)?;
            }
            out.releases.push(r);
            continue;
        }
        let report = crate::remediate(deps, p.request.clone())?;
        if report.status != Status::AwaitingConfirmation {
            deps.store.forget_confirmation(&p)?;
        }
        out.reports.push(report);
    }
    Ok(out)
}

/// One attempt to confirm a held webhook delivery and release it into the baselines.
fn release(
    deps: &Deps,
    p: &PendingConfirmation<Json>,
    at: DateTime<Utc>,
) -> Result<Release, StoreError> {
    let done = |outcome: &str, detail: String| Release {
        event_id: p.event_id.clone(),
        outcome: outcome.to_owned(),
        detail,
    };
    let (Some(verdict), Some(event)) = (
        deps.store.verdict(&p.event_id)?,
        deps.store.event(&p.event_id)?,
    ) else {
        return Ok(done("nothing_to_do", "no stored event has this id".into()));
    };
    if !verdict.awaits_confirmation() || verdict.feedback.is_some() {
        return Ok(done(
            "nothing_to_do",
            "not held for confirmation (alerted, part of an episode, or already marked)".into(),
        ));
    }
    let check = crate::confirm::check(
        &deps.idp,
        &event,
        Some(crate::confirm::Delivery::Webhook),
        at,
    );
    deps.store.audit_remediation(
        &p.event_id,
        at,
        &crate::AuditEntry {
            at,
            kind: "confirmation".into(),
            action: None,
            dry_run: true,
            requested_by: Some("provguard-remediate sweep".into()),
            reason: Some("a webhook delivery held out of the baselines until confirmed".into()),
            outcome: check.outcome().into(),
            detail: check.detail().into(),
        },
    )?;
    Ok(match check {
        crate::confirm::Check::Confirmed(d) => {
            let note = format!("confirmed at its provider ({d}): released into the baselines");
            deps.store
                .set_feedback(&p.event_id, Feedback::Benign, Some(&note), at)?;
            done("released", d)
        }
        crate::confirm::Check::NotYet { detail, .. } if at < p.until => done("waiting", detail),
        crate::confirm::Check::NotYet { detail, .. } => {
            tracing::warn!(event_id = %p.event_id, %detail, "webhook delivery not confirmed in time; kept out of the baselines");
            done("kept_out", detail)
        }
        crate::confirm::Check::Mismatch(d) | crate::confirm::Check::Unconfirmable(d) => {
            tracing::warn!(event_id = %p.event_id, detail = %d, "webhook delivery not confirmed; kept out of the baselines");
            done("kept_out", d)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_schedule_event_starts_a_sweep() {
        let schedule = serde_json::json!({
            "version": "0", "id": "9a8b", "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "111122223333", "time": "2026-11-04T03:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:111122223333:rule/x"], "detail": {}
        });
        assert!(is_schedule(&schedule));
        assert!(!is_schedule(
            &serde_json::json!({"event_id": "e1", "action": "revert"})
        ));
        let mut cloudtrail = schedule.clone();
        cloudtrail["source"] = "aws.iam".into();
        assert!(!is_schedule(&cloudtrail));
    }
}
