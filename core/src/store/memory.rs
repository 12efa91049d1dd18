//! In-memory adapter for unit tests and benchmarks. Same contract as the durable adapters.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::*;

type Index = Vec<(DateTime<Utc>, String)>;

/// Inserts in (time, id) order; events mostly come in time order, so mostly at the end.
fn index_insert(index: &mut Index, time: DateTime<Utc>, id: &str) {
    let at = index.partition_point(|(t, i)| (*t, i.as_str()) <= (time, id));
    index.insert(at, (time, id.to_owned()));
}

#[derive(Debug, Default)]
struct Inner {
    events: HashMap<String, Event>,
    order: Vec<String>,
    /// (time, id) of the events per (tenant, actor key) and (tenant, target key), in order,
    /// for the recent lists.
    by_actor: HashMap<(String, String), Index>,
    by_target: HashMap<(String, String), Index>,
    /// (time, id) of the events per tenant, in order, for the tenant's activity.
    by_tenant: HashMap<String, Index>,
    verdicts: HashMap<String, Verdict>,
    /// The changes each alert held (its episode's later changes), in commit order.
    held: HashMap<String, Vec<String>>,
    baselines: HashMap<ScopeKey, Baseline>,
    people: Vec<Person>,
    approvals: Vec<Approval>,
    change_windows: Vec<ChangeWindow>,
    domains: Vec<String>,
    dead: BTreeMap<String, DeadLetter>,
    dead_order: Vec<String>,
    dropped: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every baseline held, e.g. to seed another store with what was learned here.
    pub fn all_baselines(&self) -> HashMap<ScopeKey, Baseline> {
        self.lock().baselines.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[allow(clippy::too_many_arguments)]
fn newest_first(
    inner: &Inner,
    index: &HashMap<(String, String), Index>,
    tenant: &str,
    key: &str,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
    window: Option<(DateTime<Utc>, usize)>,
) -> Vec<EventSummary> {
    let Some(ids) = index.get(&(tenant.to_owned(), key.to_owned())) else {
        return Vec::new();
    };
    let end = ids.partition_point(|(t, _)| *t <= until);
    ids[..end]
        .iter()
        .rev()
        .take_while(|(t, _)| *t >= since)
        .take(limit)
        .enumerate()
        .take_while(|(i, (t, _))| window.is_none_or(|(since, keep)| *t >= since || *i < keep))
        .filter_map(|(_, (_, id))| inner.events.get(id))
        .map(|e| {
            let mut s = EventSummary::from(e);
            mark_alerts(&mut s, inner.verdicts.get(&e.id));
            s
        })
        .collect()
}

impl EventStore for MemoryStore {
    fn has_event(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().events.contains_key(id))
    }

    fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        Ok(self.lock().events.get(id).cloned())
    }

    fn recent_by_actor(
        &self,
        tenant: &str,
        actor_key: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, StoreError> {
        let inner = self.lock();
        Ok(newest_first(
            &inner,
            &inner.by_actor,
            tenant,
            actor_key,
            since,
            until,
            limit,
            None,
        ))
    }

    fn recent_by_target(
        &self,
        tenant: &str,
        target_key: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, StoreError> {
        let inner = self.lock();
        Ok(newest_first(
            &inner,
            &inner.by_target,
            tenant,
            target_key,
            since,
            until,
            limit,
            None,
        ))
    }

    fn scan_events(
        &self,
        since: DateTime<Utc>,
        f: &mut dyn FnMut(Event, bool),
    ) -> Result<u64, StoreError> {
        let items: Vec<(Event, bool)> = {
            let inner = self.lock();
            let mut evs: Vec<&Event> = inner.events.values().filter(|e| e.time >= since).collect();
            evs.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
            evs.into_iter()
                .map(|e| {
                    let excluded = inner.verdicts.get(&e.id).is_some_and(Verdict::excluded);
                    (e.clone(), excluded)
                })
                .collect()
        };
        let n = items.len() as u64;
        for (e, x) in items {
            f(e, x);
        }
        Ok(n)
    }
}

impl VerdictStore for MemoryStore {
    fn verdict(&self, event_id: &str) -> Result<Option<Verdict>, StoreError> {
        Ok(self.lock().verdicts.get(event_id).cloned())
    }

    fn alerts(&self, since: Option<DateTime<Utc>>) -> Result<Vec<Verdict>, StoreError> {
        let inner = self.lock();
        let mut out: Vec<Verdict> = inner
            .verdicts
            .values()
            .filter(|v| v.alert && since.is_none_or(|s| v.time >= s))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.time.cmp(&b.time).then(a.event_id.cmp(&b.event_id)));
        Ok(out)
    }

    fn set_feedback(
        &self,
        event_id: &str,
        feedback: Feedback,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(match self.lock().verdicts.get_mut(event_id) {
            Some(v) => {
                v.feedback = Some(FeedbackRecord {
                    label: feedback,
                    note: note.map(str::to_owned),
                    at,
                });
                true
            }
            None => false,
        })
    }

    fn held_by(&self, lead: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.lock().held.get(lead).cloned().unwrap_or_default())
    }
}

impl BaselineStore for MemoryStore {
    fn baselines(&self, keys: &[ScopeKey]) -> Result<HashMap<ScopeKey, Baseline>, StoreError> {
        let inner = self.lock();
        Ok(keys
            .iter()
            .filter_map(|k| inner.baselines.get(k).map(|b| (k.clone(), b.clone())))
            .collect())
    }

    fn put_baselines(&self, items: &[(&ScopeKey, &Baseline)]) -> Result<(), StoreError> {
        let mut i = self.lock();
        for (k, b) in items {
            i.baselines.insert((*k).clone(), (*b).clone());
        }
        Ok(())
    }

    fn replace_baselines(&self, all: &HashMap<ScopeKey, Baseline>) -> Result<(), StoreError> {
        self.lock().baselines = all.clone();
        Ok(())
    }

    fn baseline_count(&self) -> Result<u64, StoreError> {
        Ok(self.lock().baselines.len() as u64)
    }

    fn scan_baselines(&self) -> Result<Vec<(ScopeKey, Baseline)>, StoreError> {
        let mut all: Vec<_> = self.lock().baselines.clone().into_iter().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }
}

impl ContextStore for MemoryStore {
    fn context(&self) -> Result<Context, StoreError> {
        let i = self.lock();
        Ok(Context::new(
            i.people.clone(),
            i.approvals.clone(),
            i.change_windows.clone(),
            i.domains.clone(),
        ))
    }

    fn import_context(&self, import: &ContextImport) -> Result<(), StoreError> {
        let mut i = self.lock();
        if let Some(p) = &import.people {
            i.people = p.clone();
        }
        if let Some(a) = &import.approvals {
            i.approvals = a.clone();
        }
        if let Some(w) = &import.change_windows {
            i.change_windows = w.clone();
        }
        if let Some(d) = &import.domains {
            i.domains = d.clone();
        }
        Ok(())
    }
}

impl DeadLetterStore for MemoryStore {
    fn dead_letter(&self, dl: &DeadLetter) -> Result<(), StoreError> {
        let key = dead_letter_key(dl);
        let mut i = self.lock();
        if !i.dead.contains_key(&key) {
            i.dead.insert(key.clone(), dl.clone());
            i.dead_order.push(key);
        }
        Ok(())
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let i = self.lock();
        Ok(i.dead_order.iter().map(|k| i.dead[k].clone()).collect())
    }

    fn count_dropped(&self, source: &str, n: u64) -> Result<(), StoreError> {
        *self.lock().dropped.entry(source.to_owned()).or_default() += n;
        Ok(())
    }

    fn dropped(&self) -> Result<Vec<(String, u64)>, StoreError> {
        Ok(self
            .lock()
            .dropped
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect())
    }
}

impl Erase for MemoryStore {
    fn events_involving(&self, subject: &str) -> Result<Vec<Event>, StoreError> {
        let inner = self.lock();
        let mut out: Vec<Event> = inner
            .events
            .values()
            .filter(|e| crate::erase::involves(e, subject))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.time.cmp(&b.time).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    fn verdicts_mentioning(
        &self,
        subject: &str,
        erased: &std::collections::HashSet<String>,
    ) -> Result<Vec<Verdict>, StoreError> {
        Ok(self
            .lock()
            .verdicts
            .values()
            .filter(|v| crate::erase::mentions(v, erased, subject))
            .cloned()
            .collect())
    }

    fn erase_events(
        &self,
        subject: &str,
        events: &[Event],
        redacted: &[Verdict],
        _at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let ids: std::collections::HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
        for id in &ids {
            inner.events.remove(*id);
            inner.verdicts.remove(*id);
            inner.held.remove(*id);
        }
        inner.order.retain(|id| !ids.contains(id.as_str()));
        for index in [&mut inner.by_actor, &mut inner.by_target] {
            for list in index.values_mut() {
                list.retain(|(_, id)| !ids.contains(id.as_str()));
            }
            index.retain(|_, list| !list.is_empty());
        }
        for list in inner.by_tenant.values_mut() {
            list.retain(|(_, id)| !ids.contains(id.as_str()));
        }
        for list in inner.held.values_mut() {
            list.retain(|id| !ids.contains(id.as_str()));
        }
        for v in redacted {
            if let Some(stored) = inner.verdicts.get_mut(&v.event_id) {
                let feedback = stored.feedback.take();
                *stored = v.clone();
                stored.feedback = feedback;
            }
        }
        let needle = subject.trim().to_lowercase();
        let gone: Vec<String> = inner
            .dead
            .iter()
            .filter(|(_, d)| d.raw.to_lowercase().contains(&needle))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            inner.dead.remove(k);
        }
        inner.dead_order.retain(|k| !gone.contains(k));
        Ok(gone.len() as u64)
    }
}

/// One writer: a rebuild replaces the baselines as it found them.
impl Rebuild for MemoryStore {}

impl Ledger for MemoryStore {
    fn snapshot(&self, req: &ReadRequest<'_>) -> Result<Snapshot, StoreError> {
        let inner = self.lock();
        Ok(Snapshot {
            tenant_seq: None,
            exists: inner.events.contains_key(req.event_id),
            baselines: req
                .scopes
                .iter()
                .filter_map(|k| inner.baselines.get(k).map(|b| (k.clone(), b.clone())))
                .collect(),
            actor_recent: newest_first(
                &inner,
                &inner.by_actor,
                req.tenant,
                req.actor_key,
                req.since,
                req.until,
                req.limit,
                Some((req.window_since, req.keep_older)),
            ),
            target_recent: newest_first(
                &inner,
                &inner.by_target,
                req.tenant,
                req.target_key,
                req.since,
                req.until,
                req.limit,
                Some((req.window_since, req.keep_older)),
            ),
            tenant_recent: inner
                .by_tenant
                .get(req.tenant)
                .map(|ids| {
                    let end = ids.partition_point(|(t, _)| *t <= req.until);
                    ids[..end]
                        .iter()
                        .rev()
                        .take_while(|(t, _)| *t >= req.tenant_since)
                        .take(req.tenant_limit)
                        .filter_map(|(_, id)| inner.events.get(id))
                        .map(|e| {
                            let burst = inner.verdicts.get(&e.id).is_some_and(is_burst_alert);
                            EventSummary::activity(e, burst)
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    fn commit(&self, c: &Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let mut i = self.lock();
        if i.events.contains_key(&c.event.id) {
            return Ok(CommitOutcome::Duplicate);
        }
        i.events.insert(c.event.id.clone(), c.event.clone());
        i.order.push(c.event.id.clone());
        let tenant = c.event.tenant.clone();
        let (t, id) = (c.event.time, c.event.id.as_str());
        index_insert(
            i.by_actor
                .entry((tenant.clone(), c.event.actor_key()))
                .or_default(),
            t,
            id,
        );
        index_insert(
            i.by_target
                .entry((tenant.clone(), c.event.target_key()))
                .or_default(),
            t,
            id,
        );
        index_insert(i.by_tenant.entry(tenant).or_default(), t, id);
        if let Some(v) = c.verdict {
            if let Some(lead) = &v.held_by {
                i.held
                    .entry(lead.clone())
                    .or_default()
                    .push(v.event_id.clone());
            }
            i.verdicts.insert(v.event_id.clone(), v.clone());
        }
        for (k, b) in &c.baselines {
            i.baselines.insert((*k).clone(), (*b).clone());
        }
        Ok(CommitOutcome::Written)
    }

    /// Nothing here outlives the process, so a batch is whole by construction; the pipeline
    /// then writes each changed baseline once per batch instead of once per event.
    fn begin_batch(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_store_meets_the_store_contract() {
        super::super::conformance::run(&super::MemoryStore::new());
    }
}
