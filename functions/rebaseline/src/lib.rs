//! The rebaseline Lambda: on a schedule, recomputes every baseline from the event log over the
//! rolling window ending at the schedule time (the event's `time`, never the clock), with the
//! same decay as the online updates and as `provguard rebaseline` ([`Pipeline::rebaseline`]),
//! leaving out alerting events not marked benign.
//!
//! The log is read page by page ([`DynamoDbStore::scan_events_page`]). When the invocation nears
//! its deadline (`context.deadline` minus a reserve), it saves a checkpoint — the page key, the
//! counts and the baselines accumulated so far, staged in the table — and returns; the next
//! invocation continues the same run (same window), whatever its own schedule time. Only when the
//! log is exhausted are the baselines replaced. A run that finished less than the minimum
//! interval ago is not started again, so the function can be scheduled often (e.g. hourly) to
//! finish long runs quickly while recomputing about once a day.
//!
//! Every run first seals the verdicts and feedback committed since the last into the audit
//! trail's hash chain ([`DynamoDbStore::seal_audit`]).
//!
//! Its [`Deps`] has no alert sink: this function cannot page anyone.
//!
//! [`Pipeline::rebaseline`]: provguard_core::Pipeline::rebaseline

pub mod config;

/// The AWS actions this function's code calls, all on its DynamoDB table: paging through the
/// event log, reading the context and the old calibration, replacing the baselines (batched
/// writes and deletes), and the checkpoint and last-run items. infra/template.yaml grants exactly these (and what the Lambda
/// service itself needs for the dead-letter queue); the integration tests check both.
pub const AWS_ACTIONS: &[&str] = &[
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    // Sealing the audit chain (records, head and markers in one transaction).
    "dynamodb:TransactWriteItems",
    // Switching a tenant to its rebuilt baseline generation.
    "dynamodb:UpdateItem",
];

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent};
use provguard_core::baseline::{Baseline, ScopeKey};
use provguard_core::detect::{self, DetectConfig};
use provguard_core::error_chain as chain;
use provguard_core::store::dynamodb::{RebaselineCheckpoint, Switched};
use provguard_core::store::{ContextStore, DynamoDbStore, StoreError};
use serde::{Deserialize, Serialize};

/// The schedule event: an EventBridge "Scheduled Event" (rule schedule) or an EventBridge
/// Scheduler invocation whose input carries `{"time": "<aws.scheduler.scheduled-time>"}`. Only
/// `time` is read.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Schedule {
    pub time: DateTime<Utc>,
}

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The log was read to the end and the baselines were replaced.
    Finished,
    /// Stopped before the deadline; the next invocation continues.
    Paused,
    /// Another invocation advanced the same run meanwhile; this one's work was discarded.
    Superseded,
    /// The last run finished less than the minimum interval ago; nothing was done.
    UpToDate,
}

/// What the invocation did (also its response).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub status: Status,
    /// Whether this invocation continued a run an earlier one started.
    pub resumed: bool,
    /// The run's window.
    pub now: DateTime<Utc>,
    pub since: DateTime<Utc>,
    /// Pages read by this invocation, and by the run so far.
    pub pages: u64,
    pub pages_total: u64,
    /// Events used and left out by the run so far.
    pub used: u64,
    pub left_out: u64,
    /// Baselines written (when finished).
    pub scopes: usize,
    /// Events committed while the run read the log, learned from the tenants' journals
    /// before the switch to the rebuilt generation (when finished).
    #[serde(default)]
    pub caught_up: u64,
    /// Verdicts and feedback sealed into the audit chain by this invocation.
    #[serde(default)]
    pub sealed: u64,
    /// The audit chain's head after sealing (`seq:hash`), also written to the log on every
    /// run: a copy outside the table for `provguard audit verify --head`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_head: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// DynamoDB failed: the scheduled invocation is retried and the run resumes from its last
    /// checkpoint.
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("the blocking task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: match e {
                Error::Store(_) => "StoreUnavailable",
                Error::Join(_) => "Internal",
            }
            .to_owned(),
            error_message: chain(&e),
        }
    }
}

/// What the function uses: the store, the detection settings and the run's limits. No alert
/// sink.
#[derive(Debug, Clone)]
pub struct Deps {
    pub store: Arc<DynamoDbStore>,
    pub detect: DetectConfig,
    pub window_days: i64,
    /// Events per page of the log.
    pub page_size: usize,
    /// Stop when less than this is left before the deadline (room for a page and a checkpoint).
    pub reserve: std::time::Duration,
    /// Do not start a new run within this long of the last finished one.
    pub min_interval: Duration,
}

/// Verdicts and feedback sealed into the audit chain per invocation at most (the rest waits
/// for the next).
pub const SEAL_PER_RUN: usize = 20_000;

/// Milliseconds since the Unix epoch, the unit of `Context::deadline`.
fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs (or continues) a rebaseline until done or until the deadline nears.
pub async fn handle(deps: &Deps, event: LambdaEvent<Schedule>) -> Result<Report, Error> {
    let (schedule, context) = event.into_parts();
    let deps = deps.clone();
    let deadline = context.deadline;
    let report =
        tokio::task::spawn_blocking(move || run(&deps, schedule.time, deadline, wall_ms)).await?;
    match &report {
        Ok(r) => {
            tracing::info!(request_id = %context.request_id, status = ?r.status, resumed = r.resumed, sealed = r.sealed, pages = r.pages, pages_total = r.pages_total, used = r.used, left_out = r.left_out, scopes = r.scopes, window_end = %r.now, "rebaseline");
        }
        Err(e) => {
            tracing::error!(request_id = %context.request_id, error = %chain(e), "rebaseline failed; it resumes from its last checkpoint");
        }
    }
    report
}

/// The run itself (blocking). `deadline_ms` is the invocation's deadline (0: none known);
/// `clock_ms` reads the wall clock it is compared with.
pub fn run(
    deps: &Deps,
    scheduled: DateTime<Utc>,
    deadline_ms: u64,
    clock_ms: fn() -> u64,
) -> Result<Report, Error> {
    let store = &deps.store;
    let cfg = &deps.detect;
    // First, the audit trail: what was committed since the last run is chained.
    let seal = store.seal_audit(SEAL_PER_RUN)?;
    let sealed = seal.sealed;
    if let Some(head) = &seal.head {
        // The head leaves the table: a copy in the log that a writer of the table cannot
        // change, for `provguard audit verify --head SEQ:HASH`.
        tracing::info!(audit_head = %head, sealed, "audit chain sealed");
    }
    let audit_head = seal.head.as_ref().map(ToString::to_string);
    let (mut cp, mut all, resumed) = match store.rebaseline_checkpoint()? {
        Some((cp, staged)) if cp.cut.is_some() => (cp, staged, true),
        // A run saved before cuts were kept starts over (under its own checkpoint, so a
        // racing invocation still cannot advance it twice).
        Some((cp, _)) => (
            RebaselineCheckpoint {
                page_key: None,
                used: 0,
                left_out: 0,
                pages: 0,
                cut: Some(store.cut()?),
                ..cp
            },
            HashMap::new(),
            true,
        ),
        None => {
            if let Some(last) = store.last_rebaseline()? {
                if scheduled < provguard_core::time::after(last, deps.min_interval) {
                    return Ok(Report {
                        status: Status::UpToDate,
                        resumed: false,
                        now: last,
                        since: provguard_core::time::before(
                            last,
                            provguard_core::time::days(deps.window_days),
                        ),
                        pages: 0,
                        pages_total: 0,
                        used: 0,
                        left_out: 0,
                        scopes: 0,
                        caught_up: 0,
                        sealed,
                        audit_head: audit_head.clone(),
                    });
                }
            }
            let cp = RebaselineCheckpoint {
                seq: 0,
                now: scheduled,
                since: provguard_core::time::before(
                    scheduled,
                    provguard_core::time::days(deps.window_days),
                ),
                page_key: None,
                used: 0,
                left_out: 0,
                pages: 0,
                // Where each tenant stands: what is committed after it reaches the run from
                // the journal when it finishes.
                cut: Some(store.cut()?),
            };
            (cp, HashMap::new(), false)
        }
    };
    let ctx = store.context()?;
    let mut pages = 0u64;
    let report = |cp: &RebaselineCheckpoint, status, pages, scopes| Report {
        status,
        resumed,
        now: cp.now,
        since: cp.since,
        pages,
        pages_total: cp.pages,
        used: cp.used,
        left_out: cp.left_out,
        scopes,
        caught_up: 0,
        sealed,
        audit_head: audit_head.clone(),
    };
    loop {
        let (events, next) = store.log_page(
            cp.since,
            cp.page_key.as_deref(),
            deps.page_size,
            cp.cut.as_ref(),
        )?;
        for (event, excluded) in events {
            // As in Pipeline::rebaseline: alerting events not marked benign, and events after
            // the window's end, stay out.
            if excluded || event.time > cp.now {
                cp.left_out += 1;
                continue;
            }
            let e = detect::enrich(&event, &ctx, cfg);
            detect::learn(&e, &mut all, cfg, None);
            cp.used += 1;
        }
        pages += 1;
        cp.pages += 1;
        let Some(key) = next else {
            let switched = finish(store, cfg, &ctx, &cp, all)?;
            if !store.finish_rebaseline(cp.seq, cp.now)? {
                return Ok(report(&cp, Status::Superseded, pages, 0));
            }
            return Ok(Report {
                caught_up: switched.caught_up,
                ..report(&cp, Status::Finished, pages, switched.scopes)
            });
        };
        cp.page_key = Some(key);
        let left = deadline_ms.saturating_sub(clock_ms());
        if deadline_ms > 0 && left < deps.reserve.as_millis() as u64 {
            cp.seq += 1;
            if !store.save_rebaseline_checkpoint(&cp, &all)? {
                return Ok(report(&cp, Status::Superseded, pages, 0));
            }
            return Ok(report(&cp, Status::Paused, pages, 0));
        }
    }
}

/// Decays everything to the window's end, carries the tenants' calibrations over as they
/// stood at the run's cut (they were gathered as events were scored), builds the pooled scope,
/// and switches each tenant to the rebuilt generation after learning what was committed since
/// the cut ([`DynamoDbStore::switch_generations`]).
fn finish(
    store: &DynamoDbStore,
    cfg: &DetectConfig,
    ctx: &provguard_core::context::Context,
    cp: &RebaselineCheckpoint,
    mut all: HashMap<ScopeKey, Baseline>,
) -> Result<Switched, Error> {
    let cut = cp.cut.clone().unwrap_or_default();
    let t = cp.now.timestamp();
    for (k, b) in all.iter_mut() {
        b.decay_to(t, cfg.half_life_days);
        let carried = cut
            .tenants
            .get(k.tenant_id())
            .and_then(|c| c.calibration.clone());
        if let (true, Some(c)) = (k.as_str().ends_with("|tenant|"), carried) {
            b.calibration = c;
        }
    }
    // The scope pooled over all tenants is built here (once every tenant caught up), never
    // per event.
    let switched = store.switch_generations(
        &cut,
        all,
        &mut |e, stat, m| detect::catch_up(e, stat, m, ctx, cfg),
        cfg.pool_tenants.then_some(cfg.half_life_days),
    )?;
    tracing::info!(
        tenants = switched.tenants,
        caught_up = switched.caught_up,
        skipped = ?switched.skipped,
        "baselines switched to their rebuilt generation"
    );
    Ok(switched)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_schedule_forms_carry_the_time() {
        let rule: Schedule = serde_json::from_value(serde_json::json!({
            "version": "0", "id": "53dc4d37", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2026-11-02T03:00:00Z",
            "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/r"],
            "detail": {}
        }))
        .unwrap();
        let scheduler: Schedule =
            serde_json::from_value(serde_json::json!({"time": "2026-11-02T03:00:00Z"})).unwrap();
        assert_eq!(rule, scheduler);
    }
}
