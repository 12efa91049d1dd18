//! State of the scheduled and on-demand Lambda jobs in the same table (see the table in the
//! parent module): the rebaseline's resume checkpoint with its staged baselines, and remediation
//! results, audit entries and the hourly execution counter. These are adapter methods, not ports:
//! only the Lambda functions use them.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;

/// A remediation that is still `running` after this long is taken to have died with its
/// invocation (Lambda's limit is 15 minutes) and may be run again.
const REMEDIATION_STALE_SECS: i64 = 15 * 60;
/// Hourly remediation counters expire after two days.
const RATE_TTL_SECS: i64 = 2 * 86_400;

/// Where a paged rebaseline stopped, so the next invocation continues the same run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RebaselineCheckpoint {
    /// Generation of this checkpoint (1 for the first); each save increments it, so two
    /// invocations racing on the same run cannot both advance it.
    pub seq: u64,
    /// The end of the rolling window of the run (the schedule time of its first invocation).
    pub now: DateTime<Utc>,
    /// The start of the window.
    pub since: DateTime<Utc>,
    /// The event-log page key to resume after (`None`: start of the window).
    pub page_key: Option<String>,
    /// Events used and left out so far, pages read so far.
    pub used: u64,
    pub left_out: u64,
    pub pages: u64,
    /// Where each tenant stood when the run began (`generations.rs`); a checkpoint saved
    /// before cuts were kept has none, and its run starts over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<Cut>,
}

/// The stored state of a remediation of one event with one remedy.
#[derive(Debug, Clone, PartialEq)]
pub enum RemediationState<T> {
    /// An invocation is executing it now.
    Running,
    /// Finished (successfully or not): the report it produced.
    Finished { failed: bool, report: T },
}

/// What [`DynamoDbStore::begin_remediation`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum RemediationStart<T> {
    /// The caller holds the remediation and must finish it.
    Begun,
    /// It was done (or is being done) before.
    Existing(RemediationState<T>),
}

fn remediation_key(event_id: &str, remedy: &str) -> Item {
    key(
        format!("REMEDIATION#{}", key_part(event_id)),
        format!("RESULT#{remedy}"),
    )
}

fn rebaseline_stage_pk(seq: u64) -> String {
    format!("REBASELINE#{seq:010}")
}

/// A rebaseline in progress: its checkpoint and the baselines accumulated so far.
pub type RebaselineProgress = (RebaselineCheckpoint, HashMap<ScopeKey, Baseline>);

impl DynamoDbStore {
    // --- rebaseline checkpoint

    /// The checkpoint of a rebaseline in progress and the baselines it has accumulated, if any.
    pub fn rebaseline_checkpoint(&self) -> Result<Option<RebaselineProgress>, StoreError> {
        let Some(item) = self.get(key("REBASELINE", "STATE"))? else {
            return Ok(None);
        };
        let cp: RebaselineCheckpoint = serde_json::from_str(need_s(&item, "b")?)?;
        let mut staged = HashMap::new();
        for item in self.query_all(&rebaseline_stage_pk(cp.seq), &Sk::Any, false)? {
            let (k, b) = decode_baseline(&item)?;
            staged.insert(k, b);
        }
        Ok(Some((cp, staged)))
    }

    /// Saves a checkpoint as generation `cp.seq` over generation `cp.seq - 1` (0: none): the
    /// baselines are staged under the new generation (BatchWriteItem, 25 per call), then the
    /// state item flips to it with a condition on the previous generation, then the previous
    /// stage is deleted. Returns false, and stores nothing, when another invocation moved the
    /// run on meanwhile. A crash between the steps leaves an unreferenced stage behind, never a
    /// checkpoint whose baselines and page key disagree.
    pub fn save_rebaseline_checkpoint(
        &self,
        cp: &RebaselineCheckpoint,
        baselines: &HashMap<ScopeKey, Baseline>,
    ) -> Result<bool, StoreError> {
        let prev = cp.seq.saturating_sub(1);
        let pk = rebaseline_stage_pk(cp.seq);
        let mut puts = Vec::with_capacity(baselines.len());
        for (k, b) in baselines {
            let mut item = baseline_item(k, b, 0)?;
            item.insert("pk".into(), s(pk.clone()));
            item.insert("sk".into(), s(key_part(k.as_str()).into_owned()));
            puts.push(Self::put_request(item)?);
        }
        self.batch_write(puts)?;
        let mut state = key("REBASELINE", "STATE");
        state.insert("seq".into(), num(cp.seq as i64));
        state.insert("b".into(), s(serde_json::to_string(cp)?));
        let put = self.rt.block_on(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(state))
                .condition_expression("attribute_not_exists(#pk) OR #seq = :prev")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#seq", "seq")
                .expression_attribute_values(":prev", num(prev as i64))
                .send(),
        );
        if condition_held(put, "PutItem")? {
            if prev > 0 {
                self.delete_partition(&rebaseline_stage_pk(prev))?;
            }
            Ok(true)
        } else {
            self.delete_partition(&pk)?;
            Ok(false)
        }
    }

    /// Ends the run whose last saved generation is `seq` (0: it never saved one): deletes the
    /// state item (if still at `seq`) and its stage, and records `now` as the end of the window
    /// of the last finished run. Returns false when another invocation owns the run now.
    pub fn finish_rebaseline(&self, seq: u64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        if seq > 0 {
            let deleted = self.rt.block_on(
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key("REBASELINE", "STATE")))
                    .condition_expression("#seq = :seq")
                    .expression_attribute_names("#seq", "seq")
                    .expression_attribute_values(":seq", num(seq as i64))
                    .send(),
            );
            match condition_held(deleted, "DeleteItem")? {
                true => self.delete_partition(&rebaseline_stage_pk(seq))?,
                false => {
                    return Ok(false);
                }
            }
        }
        let mut last = key("REBASELINE", "LAST");
        last.insert("now".into(), s(ts(now)));
        self.put(last)?;
        Ok(true)
    }

    /// The end of the window of the last finished rebaseline, if any.
    pub fn last_rebaseline(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .get(key("REBASELINE", "LAST"))?
            .and_then(|i| get_s(&i, "now").and_then(parse_ts)))
    }

    fn delete_partition(&self, pk: &str) -> Result<(), StoreError> {
        let mut deletes = Vec::new();
        for item in self.query_all(pk, &Sk::Any, true)? {
            deletes.push(Self::delete_request(key(pk, need_s(&item, "sk")?))?);
        }
        self.batch_write(deletes)
    }

    // --- remediation

    /// Claims the remediation of `event_id` with `remedy` (a conditional put of a `running`
    /// result item): granted when none exists, the earlier one failed, or a `running` one is
    /// stale (its invocation died). Otherwise the stored state, so a second identical request
    /// reports the earlier result instead of acting again.
    pub fn begin_remediation<T: DeserializeOwned>(
        &self,
        event_id: &str,
        remedy: &str,
        at: DateTime<Utc>,
    ) -> Result<RemediationStart<T>, StoreError> {
        let mut item = remediation_key(event_id, remedy);
        item.insert("state".into(), s("running"));
        item.insert("at".into(), num(at.timestamp()));
        let put = self.rt.block_on(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(
                    "attribute_not_exists(#pk) OR #state = :failed OR (#state = :running AND #at < :stale)",
                )
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#at", "at")
                .expression_attribute_values(":failed", s("failed"))
                .expression_attribute_values(":running", s("running"))
                .expression_attribute_values(":stale", num(at.timestamp() - REMEDIATION_STALE_SECS))
                .send(),
        );
        match condition_held(put, "PutItem")? {
            true => Ok(RemediationStart::Begun),
            false => Ok(RemediationStart::Existing(
                self.remediation(event_id, remedy)?
                    .unwrap_or(RemediationState::Running),
            )),
        }
    }

    /// The stored state of a remediation, if any.
    pub fn remediation<T: DeserializeOwned>(
        &self,
        event_id: &str,
        remedy: &str,
    ) -> Result<Option<RemediationState<T>>, StoreError> {
        let Some(item) = self.get(remediation_key(event_id, remedy))? else {
            return Ok(None);
        };
        Ok(Some(match (get_s(&item, "state"), get_s(&item, "b")) {
            (Some("running"), _) | (_, None) => RemediationState::Running,
            (state, Some(b)) => RemediationState::Finished {
                failed: state == Some("failed"),
                report: serde_json::from_str(b)?,
            },
        }))
    }

    /// Records the result of a remediation begun with [`Self::begin_remediation`]; a failed one
    /// may be begun again.
    pub fn finish_remediation<T: Serialize>(
        &self,
        event_id: &str,
        remedy: &str,
        failed: bool,
        report: &T,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut item = remediation_key(event_id, remedy);
        item.insert("state".into(), s(if failed { "failed" } else { "done" }));
        item.insert("at".into(), num(at.timestamp()));
        item.insert("b".into(), s(serde_json::to_string(report)?));
        check_item(|| format!("the remediation report of {event_id}"), &item)?;
        self.put(item)
    }

    /// Appends one entry to the remediation audit trail of `event_id` (every request and every
    /// executed step). Entries sort by time, then by a per-process counter.
    pub fn audit_remediation<T: Serialize>(
        &self,
        event_id: &str,
        at: DateTime<Utc>,
        entry: &T,
    ) -> Result<(), StoreError> {
        static N: AtomicU64 = AtomicU64::new(0);
        let mut item = key(
            format!("REMEDIATION#{}", key_part(event_id)),
            format!(
                "AUDIT#{}#{:06}-{}",
                ts(at),
                N.fetch_add(1, Ordering::Relaxed) % 1_000_000,
                std::process::id()
            ),
        );
        item.insert("b".into(), s(serde_json::to_string(entry)?));
        check_item(|| format!("a remediation audit entry of {event_id}"), &item)?;
        self.put(item)
    }

    /// The remediation audit trail of `event_id`, oldest first.
    pub fn remediation_audit<T: DeserializeOwned>(
        &self,
        event_id: &str,
    ) -> Result<Vec<T>, StoreError> {
        self.query_all(
            &format!("REMEDIATION#{}", key_part(event_id)),
            &Sk::BeginsWith("AUDIT#".into()),
            false,
        )?
        .iter()
        .map(|i| from_json(need_s(i, "b")?))
        .collect()
    }

    /// Takes one of the `cap` remediation executions allowed in the UTC hour of `at` (an atomic
    /// counter with a condition); false when the hour's cap is reached. A cap of 0 allows none
    /// (nothing is written: the condition alone would let the hour's first one through).
    pub fn take_remediation_slot(&self, at: DateTime<Utc>, cap: u32) -> Result<bool, StoreError> {
        if cap == 0 {
            return Ok(false);
        }
        let hour = at.format("%Y-%m-%dT%H").to_string();
        let updated = self.rt.block_on(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key("RATE#REMEDIATION", hour)))
                .update_expression("ADD #n :one SET #ttl = :ttl")
                .condition_expression("attribute_not_exists(#n) OR #n < :cap")
                .expression_attribute_names("#n", "n")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":one", num(1))
                .expression_attribute_values(":cap", num(i64::from(cap)))
                .expression_attribute_values(":ttl", num(at.timestamp() + RATE_TTL_SECS))
                .send(),
        );
        condition_held(updated, "UpdateItem")
    }

    /// Remediations executed in the UTC hour of `at`.
    pub fn remediations_this_hour(&self, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let hour = at.format("%Y-%m-%dT%H").to_string();
        Ok(self
            .get(key("RATE#REMEDIATION", hour))?
            .and_then(|i| get_n(&i, "n"))
            .unwrap_or(0) as u64)
    }
}

/// Signed webhook requests already processed (`REPLAY#<key>`), so the same request sent again
/// inside its replay window is refused; each expires with the window.
impl DynamoDbStore {
    fn replay_item_key(replay_key: &str) -> Item {
        key(format!("REPLAY#{}", key_part(replay_key)), "REPLAY")
    }

    /// Claims a signed request before it is processed: a conditional put that succeeds for the
    /// first claim of `replay_key` (or one whose window closed before `now`, its item not yet
    /// removed by TTL). False when another delivery already claimed it, so two concurrent
    /// deliveries of one request cannot both be processed. The claim lasts until `until` (the
    /// request's timestamp plus the replay window: after that the signature is stale anyway).
    pub fn claim_replay(
        &self,
        replay_key: &str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut item = Self::replay_item_key(replay_key);
        item.insert("ttl".into(), num(until.timestamp()));
        let put = self.rt.block_on(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk) OR #ttl < :now")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#ttl", "ttl")
                .expression_attribute_values(":now", num(now.timestamp()))
                .send(),
        );
        condition_held(put, "PutItem")
    }

    /// Gives a claim back when processing failed, so the sender's retry is not refused.
    pub fn release_replay(&self, replay_key: &str) -> Result<(), StoreError> {
        self.rt
            .block_on(
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::replay_item_key(replay_key)))
                    .send(),
            )
            .map_err(sdk("DeleteItem"))?;
        Ok(())
    }
}
