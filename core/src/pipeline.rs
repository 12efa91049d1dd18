//! The pipeline every host runs: raw input → records → normalize → enrich → score → learn →
//! commit (event, verdict, baselines in one atomic, idempotent write).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::baseline::{Baseline, ScopeKey};
use crate::context::Context;
use crate::detect::{self, DetectConfig, Evidence};
use crate::event::{Event, EventSummary};
use crate::normalize::{BadInput, Normalized, Normalizer, RawRecord, split_input};
use crate::store::{Commit, CommitOutcome, DeadLetter, ReadRequest, Store, StoreError};
use crate::verdict::{ContextNote, Verdict};

/// Score then learn, or learn only (history backfill: no verdicts, no alerts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Score,
    Learn,
}

/// Counts for one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub records: u64,
    pub events: u64,
    pub verdicts: u64,
    pub alerts: u64,
    pub learned: u64,
    pub duplicates: u64,
    pub dropped: u64,
    pub dead_lettered: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.records += o.records;
        self.events += o.events;
        self.verdicts += o.verdicts;
        self.alerts += o.alerts;
        self.learned += o.learned;
        self.duplicates += o.duplicates;
        self.dropped += o.dropped;
        self.dead_lettered += o.dead_lettered;
    }
}

/// What became of one event.
#[derive(Debug)]
pub enum EventOutcome {
    Scored(Box<Verdict>),
    Learned,
    Duplicate,
}

pub struct Pipeline<S> {
    store: S,
    normalizer: Normalizer,
    cfg: DetectConfig,
    ctx: Context,
    /// Write-through cache of baselines; this process is the only writer while it runs.
    cache: HashMap<ScopeKey, Baseline>,
    /// In a batch ([`Pipeline::begin_batch`]): the baselines changed since it began, written
    /// once when it ends instead of with every event.
    batch: Option<std::collections::HashSet<ScopeKey>>,
    /// What is processed now came by webhook (see [`Pipeline::set_webhook_delivery`]).
    webhook: bool,
    /// Per tenant, its commit sequence after this pipeline's last commit there (stores with
    /// concurrent writers): when a snapshot finds it elsewhere, another writer changed the
    /// tenant meanwhile and the cached baselines are read again.
    seen_seq: HashMap<String, u64>,
}

/// Times an event is scored again because another writer changed what it was scored on, before
/// the invocation gives up (and is retried as a whole).
const MAX_CONFLICTS: u32 = 40;

/// Waits before scoring an event again after a conflict: exponential from 5 ms up to 400 ms,
/// with jitter from the event id and the clock so racing writers spread out.
fn conflict_backoff(attempt: u32, event_id: &str) {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(event_id.as_bytes());
    h.write_u32(attempt);
    let cap = (5u64 << attempt.min(7)).min(400);
    let ms = cap / 2 + h.finish() % (cap / 2 + 1);
    std::thread::sleep(std::time::Duration::from_millis(ms));
}

impl<S> std::fmt::Debug for Pipeline<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("normalizer", &self.normalizer)
            .finish_non_exhaustive()
    }
}

/// Largest number of recent events of one principal read for scoring.
const RECENT_LIMIT: usize = 200;
/// Entries of each principal's history attached to an alert.
const HISTORY_LIMIT: usize = 10;
/// At most this many of the tenant's events are read for a tenant-level burst (a burst of
/// more still counts this many).
const TENANT_RECENT_LIMIT: usize = 100;

impl<S: Store> Pipeline<S> {
    /// Builds a pipeline; loads the context from the store once.
    pub fn new(store: S, normalizer: Normalizer, cfg: DetectConfig) -> Result<Self, StoreError> {
        let ctx = store.context()?;
        Ok(Pipeline {
            store,
            normalizer,
            cfg,
            ctx,
            cache: HashMap::new(),
            batch: None,
            webhook: false,
            seen_seq: HashMap::new(),
        })
    }

    /// Says whether what is processed next came by webhook, where only a shared secret vouches
    /// for it. Unless `learn_unconfirmed_webhooks` is set, a scored webhook event of a source
    /// with a provider audit log (Okta, Entra, Google) is kept out of the baselines with an
    /// [`UNCONFIRMED`](crate::verdict::UNCONFIRMED) note until its provider's record confirms
    /// it. Hosts that can confirm (the AWS functions) set it; it stays set until changed.
    pub fn set_webhook_delivery(&mut self, webhook: bool) {
        self.webhook = webhook;
    }

    fn unconfirmed(&self, event: &Event) -> Option<ContextNote> {
        if !self.webhook || self.cfg.learn_unconfirmed_webhooks {
            return None;
        }
        let log = match event.source.as_str() {
            "okta" => "Okta System Log event",
            "entra" => "Entra directory audit",
            "gworkspace" => "Google Reports activity",
            _ => return None,
        };
        Some(ContextNote {
            kind: crate::verdict::UNCONFIRMED.to_owned(),
            detail: format!(
                "delivered by webhook: kept out of the baselines until its {log} confirms it"
            ),
            effect: "held".to_owned(),
        })
    }

    /// Starts a group commit (a file backfill, say) where the store has one (SQLite): events
    /// and verdicts are written as they come, the baselines they change once at
    /// [`Pipeline::end_batch`], and the whole batch becomes durable together, so an interrupted
    /// batch leaves nothing half-written and a rerun is idempotent. Elsewhere (DynamoDB, where
    /// other writers run meanwhile) every event keeps its own atomic commit.
    pub fn begin_batch(&mut self) -> Result<(), StoreError> {
        if self.batch.is_none() && self.store.begin_batch()? {
            self.batch = Some(Default::default());
        }
        Ok(())
    }

    /// Writes the baselines the batch changed and makes it durable.
    pub fn end_batch(&mut self) -> Result<(), StoreError> {
        let Some(dirty) = self.batch.take() else {
            return Ok(());
        };
        let items: Vec<(&ScopeKey, &Baseline)> = dirty
            .iter()
            .filter_map(|k| self.cache.get_key_value(k))
            .collect();
        if !items.is_empty() {
            self.store.put_baselines(&items)?;
        }
        self.store.end_batch()
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn normalizer(&self) -> &Normalizer {
        &self.normalizer
    }

    /// Compiles the programs of these sources ahead of their records ([`Normalizer::prepare`]).
    pub fn prepare_sources<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        self.normalizer.prepare(names);
    }

    /// Reloads the context (after an import) and forgets cached baselines (after a rebaseline).
    pub fn refresh(&mut self) -> Result<(), StoreError> {
        self.ctx = self.store.context()?;
        self.cache.clear();
        Ok(())
    }

    /// Processes a whole input (any accepted file shape). Every verdict goes to `on_verdict`
    /// in input order; bad pieces are dead-lettered, never lost.
    pub fn process_bytes(
        &mut self,
        bytes: &[u8],
        source: Option<&str>,
        mode: Mode,
        now: DateTime<Utc>,
        on_verdict: &mut dyn FnMut(&Verdict),
    ) -> Result<Stats, StoreError> {
        let mut stats = Stats::default();
        for piece in split_input(bytes) {
            let s = self.process_piece(piece, source, mode, now, on_verdict)?;
            stats.add(&s);
        }
        Ok(stats)
    }

    /// Processes one piece of split input: a record, or input that could not be parsed (kept
    /// as a dead letter).
    pub fn process_piece(
        &mut self,
        piece: Result<RawRecord, BadInput>,
        source: Option<&str>,
        mode: Mode,
        now: DateTime<Utc>,
        on_verdict: &mut dyn FnMut(&Verdict),
    ) -> Result<Stats, StoreError> {
        match piece {
            Ok(record) => self.process_record(&record, source, mode, now, on_verdict),
            Err(bad) => {
                tracing::warn!(reason = %bad.reason, "input dead-lettered");
                self.store.dead_letter(&DeadLetter {
                    received_at: now,
                    source: source.map(str::to_owned),
                    reason: bad.reason,
                    raw: bad.raw,
                })?;
                Ok(Stats {
                    records: 1,
                    dead_lettered: 1,
                    ..Stats::default()
                })
            }
        }
    }

    /// Processes one raw record.
    pub fn process_record(
        &mut self,
        record: &RawRecord,
        source: Option<&str>,
        mode: Mode,
        now: DateTime<Utc>,
        on_verdict: &mut dyn FnMut(&Verdict),
    ) -> Result<Stats, StoreError> {
        let mut stats = Stats {
            records: 1,
            ..Stats::default()
        };
        match self.normalizer.normalize(record, source, now) {
            Normalized::Events(events) => {
                let horizon = crate::time::after(
                    now.max(Utc::now()),
                    crate::time::minutes(self.cfg.max_future_minutes),
                );
                let misdated = |e: &Event| e.time > horizon || e.time < DateTime::UNIX_EPOCH;
                if let Some(e) = events.iter().find(|e| misdated(e)) {
                    let reason = if e.time < DateTime::UNIX_EPOCH {
                        format!(
                            "event {} is dated {}, before 1970: a wrong clock or a forged time (not scored, so it cannot skew the baselines)",
                            e.id,
                            e.time.to_rfc3339(),
                        )
                    } else {
                        format!(
                            "event {} is dated {}, more than {} minutes after it was received: a wrong clock or a forged time (not scored, so it cannot skew the baselines)",
                            e.id,
                            e.time.to_rfc3339(),
                            self.cfg.max_future_minutes
                        )
                    };
                    stats.dead_lettered += 1;
                    tracing::warn!(source = %e.source, %reason, "record dead-lettered");
                    self.store.dead_letter(&DeadLetter {
                        received_at: now,
                        source: Some(e.source.clone()),
                        reason,
                        raw: record.value.to_string(),
                    })?;
                    return Ok(stats);
                }
                for event in events {
                    stats.events += 1;
                    match self.process_event(&event, mode, now)? {
                        EventOutcome::Scored(v) => {
                            stats.verdicts += 1;
                            stats.alerts += u64::from(v.alert);
                            on_verdict(&v);
                        }
                        EventOutcome::Learned => stats.learned += 1,
                        EventOutcome::Duplicate => stats.duplicates += 1,
                    }
                }
            }
            Normalized::Dropped { source, reason } => {
                stats.dropped += 1;
                tracing::debug!(%source, %reason, "record dropped");
                self.store.count_dropped(&source, 1)?;
            }
            Normalized::DeadLetter {
                source: src,
                reason,
            } => {
                stats.dead_lettered += 1;
                tracing::warn!(source = src.as_deref().unwrap_or("?"), %reason, "record dead-lettered");
                self.store.dead_letter(&DeadLetter {
                    received_at: now,
                    source: src,
                    reason,
                    raw: record.value.to_string(),
                })?;
            }
        }
        Ok(stats)
    }

    /// Scores (in [`Mode::Score`]) and learns one normalized event; idempotent on its id.
    /// Where another writer changed what the event was scored on before its commit (DynamoDB,
    /// several invocations at once), nothing was written: it is scored again on what is stored
    /// now, so every commit is as if the writers had taken turns and no update is lost.
    pub fn process_event(
        &mut self,
        event: &Event,
        mode: Mode,
        now: DateTime<Utc>,
    ) -> Result<EventOutcome, StoreError> {
        for attempt in 0..MAX_CONFLICTS {
            if let Some(outcome) = self.try_event(event, mode, now)? {
                return Ok(outcome);
            }
            conflict_backoff(attempt, &event.id);
        }
        Err(StoreError::Conflict {
            what: format!(
                "what event {} is scored on, {MAX_CONFLICTS} times over,",
                event.id
            ),
        })
    }

    /// One attempt at [`Pipeline::process_event`]; `None` after a conflict.
    fn try_event(
        &mut self,
        event: &Event,
        mode: Mode,
        now: DateTime<Utc>,
    ) -> Result<Option<EventOutcome>, StoreError> {
        let enriched = detect::enrich(event, &self.ctx, &self.cfg);
        let scopes = detect::scopes(&enriched);
        let missing: Vec<ScopeKey> = scopes
            .iter()
            .map(|(k, _)| k)
            .filter(|k| !self.cache.contains_key(*k))
            .cloned()
            .collect();
        let cfg = &self.cfg;
        let lookback = crate::time::days(cfg.history_days)
            .max(crate::time::minutes(cfg.burst_window_minutes))
            .max(crate::time::minutes(cfg.escalation_window_minutes));
        // The detectors' windows; the tenant's activity is read that far back too, so a burst
        // that outlasts its window is still the one that alerted.
        let detector_since = crate::time::before(
            event.time,
            crate::time::minutes(cfg.burst_window_minutes.max(cfg.escalation_window_minutes)),
        );
        // One batched read: does the event exist, the baselines not cached, recent events.
        let snapshot = self.store.snapshot(&ReadRequest {
            event_id: &event.id,
            tenant: &event.tenant,
            actor_key: &enriched.actor_key,
            target_key: &enriched.target_key,
            scopes: &missing,
            since: crate::time::before(event.time, lookback),
            until: event.time,
            limit: RECENT_LIMIT,
            window_since: detector_since,
            keep_older: HISTORY_LIMIT,
            tenant_since: detector_since,
            tenant_limit: TENANT_RECENT_LIMIT,
        })?;
        if snapshot.exists {
            return Ok(Some(EventOutcome::Duplicate));
        }
        if let Some(seq) = snapshot.tenant_seq {
            if self.seen_seq.get(&event.tenant) != Some(&seq) {
                // Another writer committed in this tenant since this pipeline last did: its
                // cached baselines of the tenant may be stale.
                let stale: Vec<ScopeKey> = scopes
                    .iter()
                    .map(|(k, _)| k)
                    .filter(|k| !missing.contains(k) && self.cache.contains_key(*k))
                    .cloned()
                    .collect();
                if !stale.is_empty() {
                    let fresh = self.store.baselines(&stale)?;
                    for k in stale {
                        let b = fresh.get(&k).cloned().unwrap_or_default();
                        self.cache.insert(k, b);
                    }
                }
            }
        }
        for k in missing {
            let b = snapshot.baselines.get(&k).cloned().unwrap_or_default();
            self.cache.insert(k, b);
        }
        // The event's baselines move out of the cache (no copies), decayed to the event's time
        // so the scorer reads them as they are; they go back once the commit is written.
        let t = event.time.timestamp();
        let mut working: HashMap<ScopeKey, Baseline> = HashMap::with_capacity(scopes.len());
        for (k, _) in &scopes {
            if let Some(mut b) = self.cache.remove(k) {
                if b.events.n > 0 {
                    b.decay_to(t, cfg.half_life_days);
                    working.insert(k.clone(), b);
                } else {
                    self.cache.insert(k.clone(), b);
                }
            }
        }

        // Scored in both modes: learning needs the statistic for the tenant's calibration.
        let burst_alerted = self.burst_alerted(event, &snapshot.actor_recent);
        let off_hours_alerted = self.off_hours_alerted(event, &snapshot.actor_recent);
        let evidence = Evidence {
            baselines: &working,
            actor_recent: &snapshot.actor_recent,
            target_recent: &snapshot.target_recent,
            ctx: &self.ctx,
            burst_alerted: burst_alerted.as_deref(),
            off_hours_alerted: off_hours_alerted.as_deref(),
            tenant_recent: &snapshot.tenant_recent,
        };
        let mut scored = detect::score(&enriched, &evidence, &self.cfg);
        // The calibration is the distribution of benign scores. History is taken as normal, so
        // a history event joins it whatever it scores when its findings are all of habit (hour,
        // rarity): the benign tail history shows (an on-call weekend's odd app) is what keeps
        // the like of it from paging later. One that would have alerted on a rule (a missing
        // approval, a self-grant, a new actor) stays out, as when streamed: a few unapproved
        // grants in the history do not make the next one normal. A streamed event that alerted
        // stays out until it is marked benign.
        // A burst's events stay out of it: they are one change repeated, and the first of them
        // in the calibration would vouch for the rest (a burst that starts just under the alert
        // line would teach the calibration to take it).
        let codes = scored.reason_codes();
        let in_burst = codes.contains(&"volume_burst");
        let joins = match mode {
            Mode::Learn => {
                !scored.alert || codes.iter().all(|c| detect::HABIT_FINDINGS.contains(c))
            }
            Mode::Score => !scored.alert && !in_burst,
        };
        let statistic = joins.then_some(scored.statistic);
        let verdict = match mode {
            // History is taken as normal: learned whatever it scores, never alerting.
            Mode::Learn => None,
            Mode::Score => {
                if scored.alert {
                    scored.history = history(&snapshot.target_recent, &snapshot.actor_recent);
                }
                scored.context.extend(self.unconfirmed(event));
                Some(scored)
            }
        };

        // Alerting events stay out of baselines until marked benign, and so do the later
        // changes of the episode that alerted (a burst, an off-hours session): they are the same
        // anomaly, and learning them would teach its size (an actor's second burst two days
        // later would be within "the busiest 10 minutes before").
        let learn =
            verdict.as_ref().is_none_or(|v| !v.alert && !v.is_held()) && detect::learnable(event);
        if learn {
            detect::learn(&enriched, &mut working, &self.cfg, statistic);
        }
        // The pooled scope is read, never written per event (`learn` and `rebaseline` build it).
        let changed: Vec<(&ScopeKey, &Baseline)> = if learn && self.batch.is_none() {
            working
                .iter()
                .filter(|(k, _)| !detect::is_pooled(k))
                .collect()
        } else {
            Vec::new()
        };
        let outcome = self.store.commit(&Commit {
            event,
            verdict: verdict.as_ref(),
            baselines: changed,
            ingested_at: now,
            actor_recent: &snapshot.actor_recent,
            target_recent: &snapshot.target_recent,
            tenant_recent: &snapshot.tenant_recent,
        })?;
        match outcome {
            CommitOutcome::Written => {}
            // Another writer stored the event first: these baselines are stale; they are read
            // again from the store next time.
            CommitOutcome::Duplicate => return Ok(Some(EventOutcome::Duplicate)),
            CommitOutcome::Conflict => {
                for (k, _) in &scopes {
                    self.cache.remove(k);
                }
                self.seen_seq.remove(&event.tenant);
                return Ok(None);
            }
        }
        if let Some(seq) = snapshot.tenant_seq {
            self.seen_seq.insert(event.tenant.clone(), seq + 1);
        }
        if let (true, Some(dirty)) = (learn, self.batch.as_mut()) {
            dirty.extend(working.keys().cloned());
        }
        if learn && self.batch.is_none() {
            for (k, b) in working.iter_mut() {
                if !detect::is_pooled(k) {
                    b.rev.0 += 1;
                }
            }
        }
        self.cache.extend(working);
        Ok(Some(match verdict {
            Some(v) => EventOutcome::Scored(Box::new(v)),
            None => EventOutcome::Learned,
        }))
    }

    /// Records an analyst's feedback in the audit trail. An alerting event marked benign joins
    /// the baselines now (it was kept out of them so an attacker could not teach the model), and
    /// so do the changes its alert held (a burst's or an off-hours session's later changes) that
    /// have no feedback of their own: each is marked benign in the trail with a note naming the
    /// alert. A held change can also be marked on its own. Returns `None` when the event has no
    /// verdict, else how many held changes were released with it.
    pub fn feedback(
        &mut self,
        event_id: &str,
        feedback: crate::verdict::Feedback,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>, StoreError> {
        let Some(previous) = self.store.verdict(event_id)? else {
            return Ok(None);
        };
        self.store.set_feedback(event_id, feedback, note, now)?;
        if feedback != crate::verdict::Feedback::Benign || !previous.excluded() {
            return Ok(Some(0));
        }
        self.learn_released(event_id, previous.statistic)?;
        let mut released = 0;
        if previous.alert {
            let why = format!("released with {event_id}, marked benign");
            for id in self.store.held_by(event_id)? {
                let Some(held) = self.store.verdict(&id)? else {
                    continue;
                };
                if held.feedback.is_some() || !held.excluded() {
                    continue;
                }
                self.store.set_feedback(&id, feedback, Some(&why), now)?;
                self.learn_released(&id, held.statistic)?;
                released += 1;
            }
        }
        Ok(Some(released))
    }

    /// Learns a stored event that had been kept out of the baselines.
    fn learn_released(&mut self, event_id: &str, statistic: f64) -> Result<(), StoreError> {
        let Some(event) = self.store.event(event_id)? else {
            return Ok(());
        };
        let enriched = detect::enrich(&event, &self.ctx, &self.cfg);
        let keys: Vec<ScopeKey> = detect::scopes(&enriched)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        // One change no other writer interleaves with (read and applied again when one does),
        // recorded as a release where the store journals (a rebaseline under way learns it).
        let cfg = &self.cfg;
        let written =
            self.store
                .update_baselines(&keys, Some((&event, statistic)), &mut |working| {
                    detect::learn(&enriched, working, cfg, Some(statistic));
                    working.retain(|k, _| !detect::is_pooled(k));
                })?;
        for k in &keys {
            self.cache.remove(k);
        }
        self.cache.extend(written);
        self.seen_seq.remove(&event.tenant);
        Ok(())
    }

    /// The first event of the actor's burst under way that already alerted for it.
    fn burst_alerted(&self, event: &Event, actor_recent: &[EventSummary]) -> Option<String> {
        let window = crate::time::minutes(self.cfg.burst_window_minutes);
        detect::ongoing_burst_alert(actor_recent, event.time, window, &event.id)
            .map(|s| s.id.clone())
    }

    /// The actor's latest change within the off-hours session that alerted for its hour. A
    /// session covers ordinary changes: an admin or elevated grant at an odd hour pages on its
    /// own, whatever came before it.
    fn off_hours_alerted(&self, event: &Event, actor_recent: &[EventSummary]) -> Option<String> {
        if event.privilege().is_privileged() {
            return None;
        }
        let session = crate::time::minutes(self.cfg.off_hours_session_hours.saturating_mul(60));
        actor_recent
            .iter()
            .filter(|s| {
                s.off_hours_alert
                    && s.id != event.id
                    && s.time <= event.time
                    && event.time - s.time <= session
            })
            .max_by_key(|s| s.time)
            .map(|s| s.id.clone())
    }

    /// Builds the scope pooled over all tenants ([`detect::pool`]) from the stored tenant
    /// scopes and writes it (after `learn`; `rebaseline` builds it as part of its run). Does
    /// nothing with `pool_tenants` off. Returns whether it wrote one.
    pub fn pool_tenants(&mut self) -> Result<bool, StoreError> {
        if !self.cfg.pool_tenants {
            return Ok(false);
        }
        let key = ScopeKey::tenant(detect::GLOBAL);
        let mut attempt = 0;
        loop {
            let all = self.store.scan_baselines()?;
            let Some(mut pooled) =
                detect::pool(all.iter().map(|(k, b)| (k, b)), self.cfg.half_life_days)
            else {
                return Ok(false);
            };
            pooled.rev = all
                .iter()
                .find(|(k, _)| *k == key)
                .map_or_else(Default::default, |(_, b)| b.rev);
            match self.store.put_baselines(&[(&key, &pooled)]) {
                Ok(()) => {
                    pooled.rev.0 += 1;
                    self.cache.insert(key, pooled);
                    return Ok(true);
                }
                Err(StoreError::Conflict { .. }) if attempt + 1 < MAX_CONFLICTS => {
                    conflict_backoff(attempt, "*");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Recomputes every baseline from the event log over the rolling window ending at `now`:
    /// events in the last `window_days`, decayed to `now`, leaving out alerting events not marked
    /// benign. Returns (events used, events left out, scopes written).
    pub fn rebaseline(
        &mut self,
        now: DateTime<Utc>,
        window_days: i64,
    ) -> Result<(u64, u64, usize), StoreError> {
        let since = crate::time::before(now, crate::time::days(window_days));
        let mut all: HashMap<ScopeKey, Baseline> = HashMap::new();
        let (mut used, mut left_out) = (0u64, 0u64);
        let ctx = &self.ctx;
        let cfg = &self.cfg;
        // Where other writers may go on meanwhile (DynamoDB), the rebuild starts at a cut and
        // catches up with what they commit; elsewhere it holds them off until it finishes.
        let cut = self.store.begin_rebuild()?;
        self.store
            .scan_rebuild(since, cut.as_ref(), &mut |event, excluded| {
                if excluded || event.time > now {
                    left_out += 1;
                    return;
                }
                let e = detect::enrich(&event, ctx, cfg);
                detect::learn(&e, &mut all, cfg, None);
                used += 1;
            })?;
        let t = now.timestamp();
        // The calibration was gathered as events were scored (their statistics depend on the
        // baselines of the time, which a rebuild cannot reproduce): it carries over.
        let tenant_keys: Vec<ScopeKey> = all
            .keys()
            .filter(|k| k.as_str().contains("|tenant|"))
            .cloned()
            .collect();
        let old = match &cut {
            Some(_) => HashMap::new(),
            None => self.store.baselines(&tenant_keys)?,
        };
        for (k, b) in all.iter_mut() {
            b.decay_to(t, cfg.half_life_days);
            let carried = match &cut {
                Some(cut) => cut
                    .tenants
                    .get(k.tenant_id())
                    .and_then(|c| c.calibration.clone()),
                None => old.get(k).map(|o| o.calibration.clone()),
            };
            if let (true, Some(c)) = (k.as_str().ends_with("|tenant|"), carried) {
                b.calibration = c;
            }
        }
        let pool = cfg.pool_tenants.then_some(cfg.half_life_days);
        let scopes = self.store.finish_rebuild(
            cut.as_ref(),
            all,
            &mut |e, stat, m| detect::catch_up(e, stat, m, ctx, cfg),
            pool,
        )?;
        self.cache.clear();
        self.seen_seq.clear();
        Ok((used, left_out, scopes))
    }
}

fn history(target: &[EventSummary], actor: &[EventSummary]) -> Vec<EventSummary> {
    let mut out: Vec<EventSummary> = Vec::new();
    for s in target
        .iter()
        .take(HISTORY_LIMIT)
        .chain(actor.iter().take(HISTORY_LIMIT))
    {
        if !out.iter().any(|o| o.id == s.id) {
            out.push(s.clone());
        }
    }
    out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
    out
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
