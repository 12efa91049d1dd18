//! Baseline generations: a rebaseline builds a tenant's next generation beside the live one and
//! switches a pointer, so ingest never writes into a generation being replaced and nothing it
//! learns meanwhile is lost.
//!
//! | item | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | a tenant's activity, commit sequence and live generation | `RECENT#tenant#<tenant>#` | `RECENT` | `rev` the commit sequence, `gen` the live generation (absent: 0), the activity entries; never expires |
//! | baseline of generation 0 / of generation g ≥ 1 | `BASELINE#<0–f>` | `<scope key>` / `G<g>#<scope key>` | `scope`, `z`, `rev` |
//! | what a commit or a release taught the baselines | `JOURNAL#<tenant>` | `<sequence, 12 digits>` | `id`, `d` log day, `lsk` log sort key, `kind` learn/release, `s` statistic (when it joined the calibration); `ttl` 7 days |
//! | the tenants (written by a tenant's first commit) | `TENANTS` | `<tenant>` | `tenant` |
//!
//! Every commit of a tenant moves its sequence by one (a condition on the sequence read), and
//! every commit or release that changes baselines journals itself under its new sequence in the
//! same transaction. A rebuild:
//! 1. reads each listed tenant's sequence S and generation G ([`DynamoDbStore::cut`]);
//! 2. replays the log, taking an event only if it was committed at or before S and was learned
//!    by then (committed learned, or held and released at or before S);
//! 3. per tenant, replays the journal after S onto the rebuilt scopes, writes them as generation
//!    G+1, and switches the pointer to G+1 on the condition that the sequence is still the one
//!    it caught up to (else it catches up again), then deletes generation G
//!    ([`DynamoDbStore::switch_generations`]). A commit that read G loses its condition on the
//!    sequence and is scored again on G+1.

use std::collections::BTreeMap;

use super::*;
use crate::detect::{GLOBAL, is_pooled};

/// How long journal entries are kept: far longer than any rebuild runs.
const JOURNAL_DAYS: i64 = 7;
/// Rounds of catching up with a busy tenant before a rebuild gives up on it for this run.
const MAX_CATCH_UP_ROUNDS: u32 = 50;

/// What [`DynamoDbStore::switch_generations`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Switched {
    /// Scopes written in the new generations (the pooled scope included).
    pub scopes: usize,
    /// Tenants switched to a new generation.
    pub tenants: usize,
    /// Events that arrived during the rebuild, learned from the journal.
    pub caught_up: u64,
    /// Tenants left on their generation (another rebuild switched them first).
    pub skipped: Vec<String>,
}

fn journal_pk(tenant: &str) -> String {
    format!("JOURNAL#{}", key_part(tenant))
}

fn seq_sk(seq: u64) -> String {
    format!("{seq:012}")
}

/// The journal entry of a commit or a release that changed baselines, under the tenant's new
/// sequence.
pub(super) fn journal_entry(
    tenant: &str,
    seq: u64,
    e: &Event,
    stat: Option<f64>,
    kind: &str,
) -> Item {
    let mut item = key(journal_pk(tenant), seq_sk(seq));
    item.insert("id".into(), s(e.id.clone()));
    item.insert("d".into(), s(day(e.time)));
    item.insert("lsk".into(), s(time_sk(e.time, &e.id)));
    item.insert("kind".into(), s(kind));
    if let Some(stat) = stat.filter(|v| v.is_finite()) {
        item.insert("s".into(), AttributeValue::N(stat.to_string()));
    }
    item.insert(
        "ttl".into(),
        num((Utc::now() + Duration::days(JOURNAL_DAYS)).timestamp()),
    );
    item
}

/// The tenant's entry in the list of tenants.
pub(super) fn tenant_entry(tenant: &str) -> Item {
    let mut item = key("TENANTS", key_part(tenant));
    item.insert("tenant".into(), s(tenant));
    item
}

/// The live generation an activity item names (0: none).
pub(super) fn generation_of(item: &Item) -> u64 {
    get_n(item, "gen").unwrap_or(0).max(0) as u64
}

/// The generation a scope is read and written in: the pooled scope (no tenant's) stays in 0.
pub(super) fn scope_gen(k: &ScopeKey, tenant_gen: u64) -> u64 {
    if is_pooled(k) { 0 } else { tenant_gen }
}

/// Scope keys grouped by tenant.
pub(super) fn by_tenant(keys: &[ScopeKey]) -> BTreeMap<String, Vec<ScopeKey>> {
    let mut out: BTreeMap<String, Vec<ScopeKey>> = BTreeMap::new();
    for k in keys {
        out.entry(k.tenant_id().to_owned())
            .or_default()
            .push(k.clone());
    }
    out
}

/// Whether a log item stays out of a rebuild that starts at `cut`.
pub(super) fn excluded_at(item: &Item, e: &Event, cut: Option<&Cut>) -> bool {
    let x = get_bool(item, "x").unwrap_or(false);
    let Some(cut) = cut else {
        return x;
    };
    // A tenant first seen after the rebuild began is not rebuilt this time.
    let Some(tc) = cut.tenants.get(&e.tenant) else {
        return true;
    };
    let seq = tc.seq as i64;
    if get_n(item, "q").is_some_and(|q| q > seq) {
        // Committed after the cut: it comes from the journal.
        return true;
    }
    if get_bool(item, "h") == Some(true) {
        // Held out when committed: learned only if released by the cut.
        return get_n(item, "rq").is_none_or(|rq| rq > seq);
    }
    x
}

/// One entry of a tenant's journal.
struct Entry {
    seq: u64,
    day: String,
    log_sk: String,
    stat: Option<f64>,
}

impl DynamoDbStore {
    /// The tenant's live generation as this process last read it (0 when it never did).
    pub(super) fn cached_gen(&self, tenant: &str) -> u64 {
        lock(&self.gens).get(tenant).copied().unwrap_or(0)
    }

    /// The tenant's live generation, read once per process (snapshots keep it current).
    pub(super) fn gen_of(&self, tenant: &str) -> Result<u64, StoreError> {
        if tenant == GLOBAL {
            return Ok(0);
        }
        if let Some(g) = lock(&self.gens).get(tenant) {
            return Ok(*g);
        }
        let g = self
            .get(recent_key("tenant", tenant, ""))?
            .as_ref()
            .map_or(0, generation_of);
        lock(&self.gens).insert(tenant.to_owned(), g);
        Ok(g)
    }

    /// The baselines among `keys` (of one tenant) in generation `gen`.
    pub(super) fn baselines_in(
        &self,
        keys: &[ScopeKey],
        generation: u64,
    ) -> Result<HashMap<ScopeKey, Baseline>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        self.batch_get(
            keys.iter()
                .map(|k| baseline_key(k, scope_gen(k, generation)))
                .collect(),
        )?
        .iter()
        .map(decode_baseline)
        .collect()
    }

    /// The listed tenants.
    fn tenants(&self) -> Result<Vec<String>, StoreError> {
        self.query_all("TENANTS", &Sk::Any, false)?
            .iter()
            .map(|i| need_s(i, "tenant").map(str::to_owned))
            .collect()
    }

    /// Each listed tenant's sequence and live generation, read now.
    pub(super) fn tenant_state(&self, tenants: &[String]) -> Result<Cut, StoreError> {
        let items = self.batch_get(
            tenants
                .iter()
                .map(|t| recent_key("tenant", t, ""))
                .collect(),
        )?;
        let mut cut = Cut::default();
        for t in tenants {
            let k = recent_key("tenant", t, "");
            let item = items.iter().find(|i| i.get("pk") == k.get("pk"));
            cut.tenants.insert(
                t.clone(),
                TenantCut {
                    seq: rev_of(item),
                    generation: item.map_or(0, generation_of),
                    calibration: None,
                },
            );
        }
        Ok(cut)
    }

    /// Starts a rebuild: where each tenant stands now, with its calibration as of that
    /// sequence (read between two reads of the sequence that agree: every change of the
    /// calibration moves the sequence in the same transaction).
    pub fn cut(&self) -> Result<Cut, StoreError> {
        let tenants = self.tenants()?;
        let mut cut = Cut::default();
        for t in tenants {
            let key = ScopeKey::tenant(&t);
            for attempt in 0..MAX_ATTEMPTS * 4 {
                let before = self
                    .tenant_state(std::slice::from_ref(&t))?
                    .tenants
                    .remove(&t)
                    .unwrap_or_default();
                let b = self.baselines_in(std::slice::from_ref(&key), before.generation)?;
                let after = self
                    .tenant_state(std::slice::from_ref(&t))?
                    .tenants
                    .remove(&t)
                    .unwrap_or_default();
                if after == before {
                    cut.tenants.insert(
                        t.clone(),
                        TenantCut {
                            calibration: b.get(&key).map(|b| b.calibration.clone()),
                            ..before
                        },
                    );
                    break;
                }
                backoff(attempt.min(3));
            }
        }
        Ok(cut)
    }

    /// Journal entries of `tenant` after `after` up to `upto`, in order.
    fn journal(&self, tenant: &str, after: u64, upto: u64) -> Result<Vec<Entry>, StoreError> {
        let items = self.query_all(&journal_pk(tenant), &Sk::AtLeast(seq_sk(after + 1)), false)?;
        let mut out = Vec::new();
        for i in items {
            let seq = need_s(&i, "sk")?.parse::<u64>().unwrap_or(0);
            if seq > upto {
                break;
            }
            out.push(Entry {
                seq,
                day: need_s(&i, "d")?.to_owned(),
                log_sk: need_s(&i, "lsk")?.to_owned(),
                stat: i
                    .get("s")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok()),
            });
        }
        Ok(out)
    }

    /// Every baseline item's key, scope and generation (keys and scope only).
    fn baseline_index(&self) -> Result<Vec<(Item, ScopeKey, u64)>, StoreError> {
        let mut out = Vec::new();
        for shard in 0..BASELINE_SHARDS {
            let pk = format!("BASELINE#{shard:x}");
            let mut start = None;
            loop {
                let page = self
                    .rt
                    .block_on(
                        self.client
                            .query()
                            .table_name(&self.table)
                            .consistent_read(true)
                            .key_condition_expression("#pk = :pk")
                            .projection_expression("#pk, #sk, #scope")
                            .expression_attribute_names("#pk", "pk")
                            .expression_attribute_names("#sk", "sk")
                            .expression_attribute_names("#scope", "scope")
                            .expression_attribute_values(":pk", s(pk.clone()))
                            .set_exclusive_start_key(start)
                            .send(),
                    )
                    .map_err(sdk("Query"))?;
                for item in page.items() {
                    let sk = need_s(item, "sk")?;
                    let generation = sk
                        .strip_prefix('G')
                        .and_then(|r| r.split_once('#'))
                        .and_then(|(g, _)| g.parse::<u64>().ok())
                        .unwrap_or(0);
                    let scope = ScopeKey(need_s(item, "scope")?.to_owned());
                    out.push((key(pk.clone(), sk), scope, generation));
                }
                match page.last_evaluated_key {
                    Some(k) => start = Some(k.clone()),
                    None => break,
                }
            }
        }
        Ok(out)
    }

    /// The live generation of each tenant that has baselines.
    fn live_gens<'a>(
        &self,
        tenants: impl IntoIterator<Item = &'a str>,
    ) -> Result<HashMap<String, u64>, StoreError> {
        let list: Vec<String> = tenants
            .into_iter()
            .filter(|t| *t != GLOBAL)
            .map(str::to_owned)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let state = self.tenant_state(&list)?;
        let mut out: HashMap<String, u64> = state
            .tenants
            .into_iter()
            .map(|(t, c)| (t, c.generation))
            .collect();
        out.insert(GLOBAL.to_owned(), 0);
        lock(&self.gens).extend(out.iter().map(|(t, g)| (t.clone(), *g)));
        Ok(out)
    }

    /// Every live baseline (each tenant's live generation), sorted by scope.
    pub(super) fn live_baselines(&self) -> Result<Vec<(ScopeKey, Baseline)>, StoreError> {
        let index = self.baseline_index()?;
        let live = self.live_gens(index.iter().map(|(_, k, _)| k.tenant_id()))?;
        let keys: Vec<Item> = index
            .into_iter()
            .filter(|(_, k, g)| live.get(k.tenant_id()) == Some(g))
            .map(|(item, _, _)| item)
            .collect();
        let mut all = self
            .batch_get(keys)?
            .iter()
            .map(decode_baseline)
            .collect::<Result<Vec<_>, _>>()?;
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }

    /// How many live baselines there are.
    pub(super) fn live_baseline_count(&self) -> Result<u64, StoreError> {
        let index = self.baseline_index()?;
        let live = self.live_gens(index.iter().map(|(_, k, _)| k.tenant_id()))?;
        Ok(index
            .iter()
            .filter(|(_, k, g)| live.get(k.tenant_id()) == Some(g))
            .count() as u64)
    }

    /// Makes a rebuilt set live. Per tenant of the cut: the journal after its sequence is
    /// learned into its scopes (`catch_up`, which returns the scopes an event changed), the
    /// scopes are written as the next generation, and the tenant's pointer switches to it on
    /// the condition that its sequence did not move since the journal was read (else it
    /// catches up again); the old generation is then deleted. The pooled scope is written in
    /// generation 0. Scopes of tenants not in the cut are ignored.
    pub fn switch_generations(
        &self,
        cut: &Cut,
        mut all: HashMap<ScopeKey, Baseline>,
        catch_up: &mut CatchUp<'_>,
        pool: Option<f64>,
    ) -> Result<Switched, StoreError> {
        let mut report = Switched::default();
        let index = self.baseline_index()?;
        // A pooled scope in the set is written as it is; with `pool`, one is built once every
        // tenant has caught up.
        let given: Vec<(ScopeKey, Baseline)> = all
            .iter()
            .filter(|(k, _)| is_pooled(k))
            .map(|(k, b)| (k.clone(), b.clone()))
            .collect();
        all.retain(|k, _| !is_pooled(k));
        let mut tenant_scopes: Vec<(ScopeKey, Baseline)> = Vec::new();
        let mut per_tenant: BTreeMap<String, HashMap<ScopeKey, Baseline>> = BTreeMap::new();
        for (k, b) in all {
            per_tenant
                .entry(k.tenant_id().to_owned())
                .or_default()
                .insert(k, b);
        }
        for (tenant, tc) in &cut.tenants {
            let mut scopes = per_tenant.remove(tenant).unwrap_or_default();
            let next = tc.generation + 1;
            let tc = tc.clone();
            // Whatever an interrupted rebuild left in the next generation goes first.
            let leftovers: Vec<WriteRequest> = index
                .iter()
                .filter(|(_, k, g)| k.tenant_id() == tenant && *g == next)
                .map(|(item, _, _)| Self::delete_request(item.clone()))
                .collect::<Result<_, _>>()?;
            self.batch_write(leftovers)?;
            let mut caught = tc.seq;
            let mut dirty: Vec<ScopeKey> = scopes.keys().cloned().collect();
            let mut switched = false;
            for _ in 0..MAX_CATCH_UP_ROUNDS {
                let now = self
                    .tenant_state(std::slice::from_ref(tenant))?
                    .tenants
                    .remove(tenant)
                    .unwrap_or_default();
                if now.generation != tc.generation {
                    break;
                }
                for entry in self.journal(tenant, caught, now.seq)? {
                    let Some(item) = self.get(key(log_pk(&entry.day), entry.log_sk.clone()))?
                    else {
                        continue;
                    };
                    let e: Event = serde_json::from_str(need_s(&item, "b")?)?;
                    dirty.extend(catch_up(&e, entry.stat, &mut scopes));
                    report.caught_up += 1;
                    caught = entry.seq;
                }
                caught = caught.max(now.seq);
                dirty.sort();
                dirty.dedup();
                let mut puts = Vec::with_capacity(dirty.len());
                for k in dirty.drain(..) {
                    if let Some(b) = scopes.get(&k) {
                        let b = Baseline {
                            rev: Rev(0),
                            ..b.clone()
                        };
                        puts.push(Self::put_request(baseline_item(&k, &b, next)?)?);
                    }
                }
                self.batch_write(puts)?;
                if self.switch(tenant, tc.generation, now.seq, next)? {
                    switched = true;
                    break;
                }
            }
            if !switched {
                report.skipped.push(tenant.clone());
                continue;
            }
            lock(&self.gens).insert(tenant.clone(), next);
            report.tenants += 1;
            report.scopes += scopes.len();
            tenant_scopes.extend(
                scopes
                    .iter()
                    .filter(|(k, _)| k.as_str().ends_with("|tenant|"))
                    .map(|(k, b)| (k.clone(), b.clone())),
            );
            let old: Vec<WriteRequest> = index
                .iter()
                .filter(|(_, k, g)| k.tenant_id() == tenant && *g == tc.generation)
                .map(|(item, _, _)| Self::delete_request(item.clone()))
                .collect::<Result<_, _>>()?;
            self.batch_write(old)?;
        }
        let pooled = match pool {
            Some(h) => crate::detect::pool(tenant_scopes.iter().map(|(k, b)| (k, b)), h)
                .map(|b| (ScopeKey::tenant(GLOBAL), b))
                .into_iter()
                .collect(),
            None => given,
        };
        let mut puts = Vec::new();
        for (k, b) in &pooled {
            let b = Baseline {
                rev: Rev(0),
                ..b.clone()
            };
            puts.push(Self::put_request(baseline_item(k, &b, 0)?)?);
        }
        self.batch_write(puts)?;
        report.scopes += pooled.len();
        Ok(report)
    }

    /// Points `tenant` at generation `next`, moving its sequence on (so a commit that read the
    /// old generation is scored again), if it is still at generation `gen` and sequence `seq`.
    fn switch(
        &self,
        tenant: &str,
        generation: u64,
        seq: u64,
        next: u64,
    ) -> Result<bool, StoreError> {
        let (rev_cond, mut names, mut values) = rev_condition(seq);
        names.insert("#gen".into(), "gen".into());
        values.insert(":next".into(), num(seq as i64 + 1));
        values.insert(":g".into(), num(next as i64));
        let gen_cond = if generation == 0 {
            "attribute_not_exists(#gen)".to_owned()
        } else {
            values.insert(":old".into(), num(generation as i64));
            "#gen = :old".to_owned()
        };
        let sent = self.rt.block_on(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(recent_key("tenant", tenant, "")))
                .update_expression("SET #gen = :g, #rev = :next")
                .condition_expression(format!("{rev_cond} AND {gen_cond}"))
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .send(),
        );
        condition_held(sent, "UpdateItem")
    }

    /// Reads the baselines among `keys` (all of `tenant`) in its live generation, lets `apply`
    /// change them, and writes them back in one transaction with the tenant's sequence moved
    /// on and, for a release, a journal entry and the log item's release sequence (`rq`).
    /// Returns false when another writer got in between (nothing was written).
    pub(super) fn try_update(
        &self,
        tenant: &str,
        keys: &[ScopeKey],
        released: Option<(&Event, f64)>,
        apply: &mut dyn FnMut(&mut HashMap<ScopeKey, Baseline>),
    ) -> Result<Option<HashMap<ScopeKey, Baseline>>, StoreError> {
        let activity = self.get(recent_key("tenant", tenant, ""))?;
        let (seq, generation) = (
            rev_of(activity.as_ref()),
            activity.as_ref().map_or(0, generation_of),
        );
        lock(&self.gens).insert(tenant.to_owned(), generation);
        let mut m = self.baselines_in(keys, generation)?;
        apply(&mut m);
        m.retain(|k, _| !is_pooled(k));
        let mut writes = Vec::new();
        for (k, b) in &m {
            writes.push(
                self.conditional_put(baseline_item(k, b, scope_gen(k, generation))?, b.rev.0)?,
            );
        }
        let (cond, names, mut values) = rev_condition(seq);
        values.insert(":next".into(), num(seq as i64 + 1));
        let bump = Update::builder()
            .table_name(&self.table)
            .set_key(Some(recent_key("tenant", tenant, "")))
            .update_expression("SET #rev = :next")
            .condition_expression(cond)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .build()
            .map_err(sdk("TransactWriteItems"))?;
        writes.push(TransactWriteItem::builder().update(bump).build());
        if let Some((e, stat)) = released {
            writes.push(self.plain_put(journal_entry(
                tenant,
                seq + 1,
                e,
                Some(stat),
                "release",
            ))?);
            let mark = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(log_pk(&day(e.time)), time_sk(e.time, &e.id))))
                .update_expression("SET #rq = :rq")
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#rq", "rq")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":rq", num(seq as i64 + 1))
                .build()
                .map_err(sdk("TransactWriteItems"))?;
            writes.push(TransactWriteItem::builder().update(mark).build());
        }
        let sent = self.rt.block_on(
            self.client
                .transact_write_items()
                .set_transact_items(Some(writes))
                .send(),
        );
        match sent {
            Ok(_) => {
                for b in m.values_mut() {
                    b.rev.0 += 1;
                }
                Ok(Some(m))
            }
            Err(err) => match cancellation_codes(&err) {
                Some(codes) if codes.iter().any(lost_race) => Ok(None),
                _ => Err(sdk("TransactWriteItems")(err)),
            },
        }
    }

    /// The tenants that have baselines (of any generation).
    pub(super) fn baseline_tenants(&self) -> Result<Vec<String>, StoreError> {
        let mut out: Vec<String> = self
            .baseline_index()?
            .iter()
            .map(|(_, k, _)| k.tenant_id().to_owned())
            .filter(|t| t != GLOBAL)
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Lists the tenants of a table written before they were listed (from its tenant
    /// baselines), so its first rebuild finds them.
    pub(super) fn list_tenants(&self) -> Result<usize, StoreError> {
        let index = self.baseline_index()?;
        let mut tenants: Vec<&str> = index
            .iter()
            .filter(|(_, k, _)| k.as_str().ends_with("|tenant|") && !is_pooled(k))
            .map(|(_, k, _)| k.tenant_id())
            .collect();
        tenants.sort();
        tenants.dedup();
        // One PutItem each (every function's role may put; a table has few tenants).
        for t in &tenants {
            self.put(tenant_entry(t))?;
        }
        Ok(tenants.len())
    }
}
