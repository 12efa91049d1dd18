//! Automatic remediations waiting for their change to be confirmed at its provider (the
//! remediate function's gate): one item per (event, remedy) in one partition, sorted by the
//! time the wait ends, so the scheduled sweep reads the most urgent first. Adapter methods, not
//! ports: only the remediate function uses them.
//!
//! The wait's end is derived from the event's ingest time, so every request for the same change
//! computes the same key: putting and deleting are idempotent and need no read first.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;

/// Partition of the remediations waiting for confirmation.
const PENDING_PK: &str = "CONFIRM#PENDING";

/// How long after an event was ingested its provider may still confirm it, minutes (Entra and
/// Google publish audit records minutes late).
pub const CONFIRMATION_WAIT_MINUTES: i64 = 30;

/// The `remedy` of a pending item that asks for no remediation: a routine webhook event kept out
/// of the baselines until its provider confirms it, then released.
pub const RELEASE: &str = "release";

/// A remediation request held until its change is confirmed at its provider, or `until`.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingConfirmation<T> {
    pub event_id: String,
    pub remedy: String,
    /// When the wait ends (the request is then refused unless confirmed).
    pub until: DateTime<Utc>,
    /// The request, as the function received it (the sweep sends it through again).
    pub request: T,
}

fn pending_key(event_id: &str, remedy: &str, until: DateTime<Utc>) -> Item {
    key(
        PENDING_PK,
        format!("{}#{}#{remedy}", ts(until), key_part(event_id)),
    )
}

impl DynamoDbStore {
    /// When the event was ingested (the time the pipeline committed it with), if it is stored.
    pub fn event_ingested_at(&self, event_id: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self
            .get(key(event_pk(event_id), "EVENT"))?
            .and_then(|i| get_s(&i, "ing").and_then(parse_ts)))
    }

    /// Holds a request for the sweep (replaces the same one: the key is the event, the remedy
    /// and the end of the wait).
    pub fn await_confirmation<T: Serialize>(
        &self,
        p: &PendingConfirmation<T>,
    ) -> Result<(), StoreError> {
        let mut item = pending_key(&p.event_id, &p.remedy, p.until);
        item.insert("id".into(), s(p.event_id.clone()));
        item.insert("remedy".into(), s(p.remedy.clone()));
        item.insert("until".into(), s(ts(p.until)));
        item.insert("b".into(), s(serde_json::to_string(&p.request)?));
        check_item(
            || format!("the pending confirmation of {}", p.event_id),
            &item,
        )?;
        self.put(item)
    }

    /// Every held request, the one whose wait ends first first.
    pub fn pending_confirmations<T: DeserializeOwned>(
        &self,
    ) -> Result<Vec<PendingConfirmation<T>>, StoreError> {
        self.query_all(PENDING_PK, &Sk::Any, false)?
            .iter()
            .map(|i| {
                Ok(PendingConfirmation {
                    event_id: need_s(i, "id")?.to_owned(),
                    remedy: need_s(i, "remedy")?.to_owned(),
                    until: parse_ts(need_s(i, "until")?).ok_or_else(|| malformed(i, "until"))?,
                    request: from_json(need_s(i, "b")?)?,
                })
            })
            .collect()
    }

    /// Stops holding a request (done with, one way or the other); nothing if it is not held.
    pub fn forget_confirmation<T>(&self, p: &PendingConfirmation<T>) -> Result<(), StoreError> {
        self.rt
            .block_on(
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(pending_key(&p.event_id, &p.remedy, p.until)))
                    .send(),
            )
            .map_err(sdk("DeleteItem"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_keys_sort_by_the_end_of_the_wait() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let sk = |id: &str, until: &str| {
            get_s(&pending_key(id, "revert", t(until)), "sk")
                .unwrap()
                .to_owned()
        };
        assert!(sk("zzz", "2026-11-03T09:30:00Z") < sk("aaa", "2026-11-03T09:31:00Z"));
        // An event id cannot run into the remedy.
        assert_eq!(
            sk("a#b", "2026-11-03T09:30:00Z"),
            "2026-11-03T09:30:00.000000000Z#a%23b#revert"
        );
    }
}
