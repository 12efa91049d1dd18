//! The audit trail's hash chain on DynamoDB (see [`crate::audit`] for the chain itself).
//!
//! Chaining every commit would serialize all ingest invocations on one head item, so commits
//! only leave a marker (`SEAL#PENDING`, in the commit's own transaction; feedback leaves one
//! too), and sealing appends the marked verdicts and feedback to the chain in batches, oldest
//! first: one transaction per batch puts the numbered records (each only if absent), moves the
//! head (only from the seq it read, so two sealers cannot fork the chain) and deletes the
//! markers. A verdict record's body is the SHA-256 of the verdict as stored; a feedback record's
//! body is the feedback itself. The rebaseline function seals on every run;
//! `provguard audit seal --dynamodb-table` seals on demand.

use sha2::{Digest, Sha256};

use super::*;
use crate::audit::{self, AuditKind, AuditRecord, AuditReport, Head, Verifier};

/// Partition of the markers of verdicts and feedback not yet sealed.
pub(super) const SEAL_PENDING: &str = "SEAL#PENDING";
/// Partition of the chain: records `R#<seq, 12 digits>` and the head `HEAD`.
const AUDIT_PK: &str = "AUDIT";
const HEAD_SK: &str = "HEAD";
/// Records per sealing transaction: a put and a marker delete each, plus the head (≤ 100).
const SEAL_BATCH: usize = 49;
/// Sealing transactions retried when another sealer moved the head first.
const SEAL_RETRIES: u32 = 5;

fn record_sk(seq: u64) -> String {
    format!("R#{seq:012}")
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The marker a commit (kind verdict) or a feedback (kind feedback) leaves for sealing.
pub(super) fn seal_marker(event_id: &str, kind: AuditKind, at: DateTime<Utc>) -> Item {
    let mut m = key(
        SEAL_PENDING,
        format!("{}#{}#{}", ts(at), key_part(event_id), kind.as_str()),
    );
    m.insert("id".into(), s(event_id));
    m.insert("kind".into(), s(kind.as_str()));
    m.insert("at".into(), num(at.timestamp_millis()));
    m
}

/// What a seal did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SealReport {
    /// Records appended to the chain.
    pub sealed: u64,
    /// Markers were left (the `max` was reached).
    pub more: bool,
    /// The head's record number after sealing.
    pub head_seq: u64,
    /// The head after sealing (`seq:hash`; None while the chain is empty). Hosts write it
    /// outside the table (the function's log, the CLI's output), so `audit verify --head` has
    /// a copy the table's writers cannot edit.
    pub head: Option<Head>,
}

impl DynamoDbStore {
    fn audit_head(&self) -> Result<Option<Head>, StoreError> {
        let Some(item) = self.get(key(AUDIT_PK, HEAD_SK))? else {
            return Ok(None);
        };
        Ok(Some(Head {
            seq: get_n(&item, "seq").ok_or_else(|| malformed(&item, "seq"))? as u64,
            hash: need_s(&item, "hash")?.to_owned(),
        }))
    }

    /// Appends the pending verdicts and feedback to the chain, oldest first, until none are
    /// left or about `max` are sealed.
    pub fn seal_audit(&self, max: usize) -> Result<SealReport, StoreError> {
        let mut report = SealReport::default();
        let mut conflicts = 0;
        loop {
            let (marks, next) =
                self.query_page(SEAL_PENDING, &Sk::Any, Some(SEAL_BATCH as i32), None, false)?;
            if marks.is_empty() {
                break;
            }
            if report.sealed as usize >= max {
                report.more = true;
                break;
            }
            let ids: Vec<String> = marks
                .iter()
                .map(|m| need_s(m, "id").map(str::to_owned))
                .collect::<Result<_, _>>()?;
            let verdicts: HashMap<String, Item> = self
                .batch_get(ids.iter().map(|id| key(event_pk(id), "VERDICT")).collect())?
                .into_iter()
                .filter_map(|i| get_s(&i, "pk").map(str::to_owned).map(|pk| (pk, i)))
                .collect();
            let head = self.audit_head()?;
            let (mut seq, mut prev) = head
                .as_ref()
                .map_or((0, audit::GENESIS.to_owned()), |h| (h.seq, h.hash.clone()));
            let mut writes = Vec::with_capacity(marks.len() * 2 + 1);
            for (m, id) in marks.iter().zip(&ids) {
                let kind = need_s(m, "kind")?;
                let at = get_n(m, "at").unwrap_or_default();
                let v = verdicts.get(&event_pk(id));
                // A verdict removed before it was sealed is sealed as missing, so verification
                // reports it.
                let body = match (kind, v) {
                    ("feedback", Some(v)) => audit::hashed(get_s(v, "fb").unwrap_or_default()),
                    // An erasure carries its body on its marker.
                    ("erasure", _) => need_s(m, "body")?.to_owned(),
                    (_, Some(v)) => sha256_hex(need_s(v, "b")?),
                    (_, None) => "missing when sealed".to_owned(),
                };
                seq += 1;
                let hash = audit::link(&prev, seq, kind, id, at, &body);
                let mut record = key(AUDIT_PK, record_sk(seq));
                record.insert("seq".into(), num(seq as i64));
                record.insert("at".into(), num(at));
                record.insert("kind".into(), s(kind));
                record.insert("id".into(), s(id.clone()));
                record.insert("body".into(), s(body));
                record.insert("prev".into(), s(prev.clone()));
                record.insert("hash".into(), s(hash.clone()));
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(record))
                    .condition_expression("attribute_not_exists(pk)")
                    .build()
                    .map_err(sdk("TransactWriteItems"))?;
                writes.push(TransactWriteItem::builder().put(put).build());
                let marker_key = key(SEAL_PENDING, need_s(m, "sk")?);
                let delete = aws_sdk_dynamodb::types::Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(marker_key))
                    .build()
                    .map_err(sdk("TransactWriteItems"))?;
                writes.push(TransactWriteItem::builder().delete(delete).build());
                prev = hash;
            }
            let mut head_item = key(AUDIT_PK, HEAD_SK);
            head_item.insert("seq".into(), num(seq as i64));
            head_item.insert("hash".into(), s(prev.clone()));
            let mut put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(head_item));
            put = match &head {
                None => put.condition_expression("attribute_not_exists(pk)"),
                Some(h) => put
                    .condition_expression("#seq = :seq")
                    .expression_attribute_names("#seq", "seq")
                    .expression_attribute_values(":seq", num(h.seq as i64)),
            };
            writes.push(
                TransactWriteItem::builder()
                    .put(put.build().map_err(sdk("TransactWriteItems"))?)
                    .build(),
            );
            let sent = self.rt.block_on(
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(writes))
                    .send(),
            );
            match sent {
                Ok(_) => {
                    report.sealed += marks.len() as u64;
                    report.head_seq = seq;
                    report.head = Some(Head { seq, hash: prev });
                }
                Err(err) => {
                    let conflict = matches!(
                        err.as_service_error(),
                        Some(TransactWriteItemsError::TransactionCanceledException(_))
                    );
                    if conflict && conflicts < SEAL_RETRIES {
                        // Another sealer moved the head (or took these markers): read again.
                        conflicts += 1;
                        backoff(conflicts);
                        continue;
                    }
                    return Err(sdk("TransactWriteItems")(err));
                }
            }
            if next.is_none() {
                break;
            }
        }
        if report.head.is_none() {
            report.head = self.audit_head()?;
            report.head_seq = report.head.as_ref().map_or(0, |h| h.seq);
        }
        Ok(report)
    }

    /// Verifies the chain (every record's hash and link, the head, an optional anchor) and that
    /// every sealed verdict and feedback is still what the table serves.
    pub fn verify_audit(&self, anchor: Option<Head>) -> Result<AuditReport, StoreError> {
        let mut v = Verifier::new(anchor);
        let mut ids: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        let mut start = None;
        loop {
            let (items, next) =
                self.query_page(AUDIT_PK, &Sk::BeginsWith("R#".into()), None, start, false)?;
            for item in &items {
                let r = AuditRecord {
                    seq: get_n(item, "seq").ok_or_else(|| malformed(item, "seq"))? as u64,
                    at_ms: get_n(item, "at").unwrap_or_default(),
                    kind: need_s(item, "kind")?.to_owned(),
                    event_id: need_s(item, "id")?.to_owned(),
                    body: need_s(item, "body")?.to_owned(),
                    prev: need_s(item, "prev")?.to_owned(),
                    hash: need_s(item, "hash")?.to_owned(),
                };
                if seen.insert(r.event_id.clone()) {
                    ids.push(r.event_id.clone());
                }
                v.record(&r);
            }
            match next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        // Markers: verdicts not sealed yet, and feedback newer than its record.
        let mut unsealed = 0;
        for m in self.query_all(SEAL_PENDING, &Sk::Any, false)? {
            if get_s(&m, "kind") == Some("feedback") {
                v.unsealed_feedback(need_s(&m, "id")?);
            } else {
                unsealed += 1;
            }
        }
        v.unsealed_verdicts(unsealed);
        let served: HashMap<String, Item> = self
            .batch_get(ids.iter().map(|id| key(event_pk(id), "VERDICT")).collect())?
            .into_iter()
            .filter_map(|i| get_s(&i, "pk").map(str::to_owned).map(|pk| (pk, i)))
            .collect();
        for id in &ids {
            if let Some(item) = served.get(&event_pk(id)) {
                v.served(id, need_s(item, "b")?, get_s(item, "fb"));
            }
        }
        Ok(v.finish(self.audit_head()?))
    }
}
