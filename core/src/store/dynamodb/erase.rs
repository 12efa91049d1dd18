//! Erasing one person's data on the table ([`crate::erase`]): their events' partitions
//! (`EVENT#`, `REMEDIATION#`), log and alert index entries, the links that held them, their
//! entries in every recent list and their own recent lists, awaited confirmations, and the
//! dead letters that mention them. Pending verdicts are sealed first, so the audit chain holds
//! every verdict before its erasure record follows it.

use super::*;
use crate::audit::{self, AuditKind};

impl DynamoDbStore {
    /// Deletes every item of a partition.
    fn delete_all(&self, pk: &str) -> Result<(), StoreError> {
        let deletes = self
            .query_all(pk, &Sk::Any, true)?
            .iter()
            .map(|i| Self::delete_request(key(pk, need_s(i, "sk")?)))
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(deletes)
    }

    /// Removes one event's entry from a recent list (moving its revision on, so a commit that
    /// read the list before is scored again).
    fn drop_recent_entry(&self, k: Item, event_id: &str) -> Result<(), StoreError> {
        let sent = self.rt.block_on(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(k))
                .update_expression("REMOVE #e ADD #rev :one")
                .condition_expression("attribute_exists(pk)")
                .expression_attribute_names("#e", recent_attr(event_id))
                .expression_attribute_names("#rev", REV)
                .expression_attribute_values(":one", num(1))
                .send(),
        );
        // A list that is gone already holds nothing of the event.
        condition_held(sent, "UpdateItem")?;
        Ok(())
    }
}

impl Erase for DynamoDbStore {
    /// Reads the whole log.
    fn events_involving(&self, subject: &str) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for d in self.log_days(None)? {
            for item in self.query_all(&log_pk(&d), &Sk::Any, false)? {
                let e: Event = serde_json::from_str(need_s(&item, "b")?)?;
                if crate::erase::involves(&e, subject) {
                    out.push(e);
                }
            }
        }
        Ok(out)
    }

    /// Reads every verdict (by the log's event ids).
    fn verdicts_mentioning(
        &self,
        subject: &str,
        erased: &std::collections::HashSet<String>,
    ) -> Result<Vec<Verdict>, StoreError> {
        let mut out = Vec::new();
        for d in self.log_days(None)? {
            let keys = self
                .query_all(&log_pk(&d), &Sk::Any, false)?
                .iter()
                .map(|i| {
                    let e: Event = serde_json::from_str(need_s(i, "b")?)?;
                    Ok(key(event_pk(&e.id), "VERDICT"))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            for item in self.batch_get(keys)? {
                let v: Verdict = serde_json::from_str(need_s(&item, "b")?)?;
                if crate::erase::mentions(&v, erased, subject) {
                    out.push(v);
                }
            }
        }
        Ok(out)
    }

    fn erase_events(
        &self,
        subject: &str,
        events: &[Event],
        redacted: &[Verdict],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        // Everything committed so far is chained before its erasure is.
        self.seal_audit(usize::MAX)?;
        let mut markers = Vec::new();
        let mut n = 0i64;
        let mut marker = |id: &str, body: String| {
            n += 1;
            let at = at + Duration::microseconds(n);
            let mut m = super::audit::seal_marker(id, AuditKind::Erasure, at);
            m.insert("body".into(), s(body));
            markers.push(m);
        };
        for e in events {
            let verdict = self.get(key(event_pk(&e.id), "VERDICT"))?;
            if let Some(v) = verdict.as_ref().map(Self::decode_verdict).transpose()? {
                if v.alert {
                    self.batch_write(vec![Self::delete_request(key(
                        alerts_pk(v.time),
                        time_sk(v.time, &e.id),
                    ))?])?;
                }
                if let Some(lead) = &v.held_by {
                    self.batch_write(vec![Self::delete_request(key(
                        event_pk(lead),
                        format!("HELD#{}", time_sk(v.time, &e.id)),
                    ))?])?;
                }
                marker(&e.id, audit::ERASED.to_owned());
            }
            self.delete_all(&event_pk(&e.id))?;
            self.delete_all(&format!("REMEDIATION#{}", key_part(&e.id)))?;
            self.batch_write(vec![Self::delete_request(key(
                log_pk(&day(e.time)),
                time_sk(e.time, &e.id),
            ))?])?;
            for (role, principal) in [
                ("actor", e.actor_key()),
                ("target", e.target_key()),
                ("tenant", String::new()),
            ] {
                self.drop_recent_entry(recent_key(role, &e.tenant, &principal), &e.id)?;
            }
        }
        // The subject's own recent lists go whole; the others lost their entries above.
        let subject_keys: Vec<String> = events
            .iter()
            .flat_map(|e| {
                let mut keys = Vec::new();
                if [e.actor.email.as_deref(), e.actor.id.as_deref()]
                    .into_iter()
                    .flatten()
                    .any(|v| v.eq_ignore_ascii_case(subject.trim()))
                {
                    keys.push(e.actor_key());
                }
                if [e.target.email.as_deref(), e.target.id.as_deref()]
                    .into_iter()
                    .flatten()
                    .any(|v| v.eq_ignore_ascii_case(subject.trim()))
                {
                    keys.push(e.target_key());
                }
                keys
            })
            .collect();
        let own: Vec<WriteRequest> = events
            .iter()
            .flat_map(|e| {
                subject_keys.iter().flat_map(move |k| {
                    ["actor", "target"].map(|role| recent_key(role, &e.tenant, k))
                })
            })
            .map(|k| (get_s(&k, "pk").unwrap_or_default().to_owned(), k))
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_values()
            .map(Self::delete_request)
            .collect::<Result<_, _>>()?;
        self.batch_write(own)?;
        // Awaited confirmations of these events.
        let ids: std::collections::HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let confirm = self
            .query_all("CONFIRM#PENDING", &Sk::Any, false)?
            .into_iter()
            .filter(|i| get_s(i, "id").is_some_and(|id| ids.contains(id)))
            .map(|i| Self::delete_request(key("CONFIRM#PENDING", need_s(&i, "sk")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(confirm)?;
        // Other alerts, without the erased events in their history.
        for v in redacted {
            let body = crate::erase::stored_body(v)?;
            let mut keys = vec![key(event_pk(&v.event_id), "VERDICT")];
            if v.alert {
                keys.push(key(alerts_pk(v.time), time_sk(v.time, &v.event_id)));
            }
            for k in keys {
                self.rt
                    .block_on(
                        self.client
                            .update_item()
                            .table_name(&self.table)
                            .set_key(Some(k))
                            .update_expression("SET #b = :b")
                            .condition_expression("attribute_exists(pk)")
                            .expression_attribute_names("#b", "b")
                            .expression_attribute_values(":b", s(body.clone()))
                            .send(),
                    )
                    .map_err(sdk("UpdateItem"))?;
            }
            marker(&v.event_id, audit::redacted_body(&body));
        }
        let needle = subject.trim().to_lowercase();
        let dead: Vec<WriteRequest> = self
            .query_all("DEADLETTER", &Sk::Any, false)?
            .into_iter()
            .filter(|i| {
                ["raw", "reason"]
                    .iter()
                    .any(|a| get_s(i, a).is_some_and(|v| v.to_lowercase().contains(&needle)))
            })
            .map(|i| Self::delete_request(key("DEADLETTER", need_s(&i, "sk")?)))
            .collect::<Result<_, StoreError>>()?;
        let removed = dead.len() as u64;
        self.batch_write(dead)?;
        let puts = markers
            .into_iter()
            .map(Self::put_request)
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(puts)?;
        self.seal_audit(usize::MAX)?;
        Ok(removed)
    }
}
