//! The audit trail's hash chain.
//!
//! Every verdict and every piece of feedback is appended as a numbered record whose hash covers
//! the previous record's hash, its own number, kind, event id, time and body (the verdict or
//! feedback exactly as stored). Changing or removing a record breaks every link after it, so
//! [`Verifier`] finds an edited record, a gap, a reordering or a cut tail; the last record's
//! `seq:hash` (the head) can be kept elsewhere and checked later with an anchor, which also
//! catches a trail rewritten from the start.
//!
//! The verifier also compares the trail with the verdicts a store serves: a verdict changed,
//! removed or added after the fact, or feedback that differs from its record, is reported.
//!
//! The chain keeps hashes, not content: a verdict record's body is the verdict's SHA-256 (on
//! DynamoDB) or the verdict as stored (state files), a feedback record's body `sha256:<hex>` of
//! the feedback (older trails hold the feedback itself, which still verifies). An erasure
//! (`provguard erase`) appends one `erasure` record per event it removed (`{"erased":true}`:
//! from then on its verdict and feedback must be absent) or whose verdict it redacted
//! (`{"redacted":"<SHA-256 of the new verdict>"}`), so the trail still verifies and says
//! what was erased, and when, without saying whose data it was.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    Verdict,
    Feedback,
    Erasure,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Verdict => "verdict",
            AuditKind::Feedback => "feedback",
            AuditKind::Erasure => "erasure",
        }
    }

    pub fn parse(s: &str) -> Option<AuditKind> {
        match s {
            "verdict" => Some(AuditKind::Verdict),
            "feedback" => Some(AuditKind::Feedback),
            "erasure" => Some(AuditKind::Erasure),
            _ => None,
        }
    }
}

/// One record of the trail, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    /// Milliseconds since the Unix epoch: when the record was written.
    pub at_ms: i64,
    /// As stored; a kind this build does not know is reported, not trusted.
    pub kind: String,
    pub event_id: String,
    pub body: String,
    /// Hex SHA-256 of the previous record ([`GENESIS`] for the first).
    pub prev: String,
    /// Hex SHA-256 of this record, see [`link`].
    pub hash: String,
}

/// The hash of a record: SHA-256 over its fields, each length-prefixed so no two different
/// records hash the same input.
pub fn link(prev: &str, seq: u64, kind: &str, event_id: &str, at_ms: i64, body: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        prev.as_bytes(),
        kind.as_bytes(),
        event_id.as_bytes(),
        body.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(seq.to_be_bytes());
    h.update(at_ms.to_be_bytes());
    hex::encode(h.finalize())
}

/// The newest record's number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Head {
    type Err = String;
    fn from_str(s: &str) -> Result<Head, String> {
        let (seq, hash) = s
            .split_once(':')
            .ok_or_else(|| format!("expected SEQ:HASH, got {s:?}"))?;
        let seq = seq
            .parse()
            .map_err(|_| format!("the record number {seq:?} is not a number"))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("{hash:?} is not a hex SHA-256"));
        }
        Ok(Head {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditReport {
    pub records: u64,
    pub verdicts: u64,
    pub feedback: u64,
    pub head: Option<Head>,
    /// Verdicts and feedback written but not yet sealed into the chain (stores that seal in
    /// batches; always 0 for state files, which chain as they write).
    #[serde(default)]
    pub pending: u64,
    /// Empty when the trail is intact.
    pub problems: Vec<String>,
}

impl AuditReport {
    pub fn intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a trail record by record (in `seq` order), then against the head the store keeps, an
/// optional anchor, and the verdicts the store serves.
#[derive(Debug, Default)]
pub struct Verifier {
    report: AuditReport,
    prev: Option<String>,
    next_seq: u64,
    /// Per event: the hash of its verdict's body, and the digest of its newest feedback.
    verdicts: HashMap<String, [u8; 32]>,
    feedback: HashMap<String, [u8; 32]>,
    /// Events erased: no verdict or feedback may be served for them.
    erased: std::collections::HashSet<String>,
    anchor: Option<Head>,
    anchor_seen: bool,
    /// Events whose newest feedback is not sealed yet: not compared.
    unsealed_feedback: std::collections::HashSet<String>,
}

fn digest(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// The body of a record that vouches for `content` (a verdict or feedback as stored): its
/// SHA-256, so the chain keeps no content an erasure would have to remove.
pub fn hashed(content: &str) -> String {
    format!("sha256:{}", hex::encode(digest(content)))
}

/// The digest a record's body vouches for: a `sha256:` body or a bare hex SHA-256 (DynamoDB's
/// verdict records) as written, else the SHA-256 of the content an older record holds itself.
fn vouched(body: &str) -> [u8; 32] {
    let hex_part = body.strip_prefix("sha256:").unwrap_or(body);
    if hex_part.len() == 64 {
        if let Some(d) = hex::decode(hex_part)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
        {
            return d;
        }
    }
    digest(body)
}

/// The body of an erasure record for an event whose verdict was removed.
pub const ERASED: &str = r#"{"erased":true}"#;

/// The body of an erasure record for a verdict rewritten without the erased events.
pub fn redacted_body(new_verdict: &str) -> String {
    serde_json::json!({ "redacted": hashed(new_verdict) }).to_string()
}

impl Verifier {
    /// `anchor`: a head recorded earlier; the trail must still hold that record unchanged.
    pub fn new(anchor: Option<Head>) -> Verifier {
        Verifier {
            next_seq: 1,
            anchor,
            ..Verifier::default()
        }
    }

    /// Records a problem found outside the chain (e.g. an unreadable kept head).
    pub fn problem(&mut self, p: String) {
        self.report.problems.push(p);
    }

    /// The next record, in `seq` order.
    pub fn record(&mut self, r: &AuditRecord) {
        self.report.records += 1;
        if r.seq != self.next_seq {
            if r.seq > self.next_seq {
                let (a, b) = (self.next_seq, r.seq - 1);
                self.problem(if a == b {
                    format!("record {a} is missing")
                } else {
                    format!("records {a} to {b} are missing")
                });
            } else {
                self.problem(format!("record {} is out of order", r.seq));
            }
        } else if let Some(prev) = &self.prev {
            if &r.prev != prev {
                self.problem(format!(
                    "record {} does not follow record {}: the chain was rewritten from here",
                    r.seq,
                    r.seq - 1
                ));
            }
        } else if r.prev != GENESIS {
            self.problem(format!(
                "record {} does not start the chain: records before it were removed",
                r.seq
            ));
        }
        if link(&r.prev, r.seq, &r.kind, &r.event_id, r.at_ms, &r.body) != r.hash {
            self.problem(format!(
                "record {} ({} of event {}) was edited: its hash does not match its content",
                r.seq, r.kind, r.event_id
            ));
        }
        if let Some(a) = &self.anchor {
            if a.seq == r.seq {
                self.anchor_seen = true;
                if a.hash != r.hash {
                    let msg = format!(
                        "record {} is not the one anchored as {a}: the trail was rewritten",
                        r.seq
                    );
                    self.problem(msg);
                }
            }
        }
        match AuditKind::parse(&r.kind) {
            Some(AuditKind::Verdict) => {
                self.report.verdicts += 1;
                if self
                    .verdicts
                    .insert(r.event_id.clone(), vouched(&r.body))
                    .is_some()
                {
                    self.problem(format!(
                        "record {} is a second verdict for event {}",
                        r.seq, r.event_id
                    ));
                }
            }
            Some(AuditKind::Feedback) => {
                self.report.feedback += 1;
                if !self.verdicts.contains_key(&r.event_id) {
                    self.problem(format!(
                        "record {} is feedback on event {}, which has no verdict before it",
                        r.seq, r.event_id
                    ));
                }
                self.feedback.insert(r.event_id.clone(), vouched(&r.body));
            }
            Some(AuditKind::Erasure) => {
                let body: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
                if body.get("erased").and_then(|v| v.as_bool()) == Some(true) {
                    self.verdicts.remove(&r.event_id);
                    self.feedback.remove(&r.event_id);
                    self.erased.insert(r.event_id.clone());
                } else if let Some(h) = body.get("redacted").and_then(|v| v.as_str()) {
                    if self
                        .verdicts
                        .insert(r.event_id.clone(), vouched(h))
                        .is_none()
                    {
                        self.problem(format!(
                            "record {} redacts event {}, which has no verdict before it",
                            r.seq, r.event_id
                        ));
                    }
                } else {
                    self.problem(format!("record {} is an erasure it cannot read", r.seq));
                }
            }
            None => self.problem(format!("record {} has an unknown kind {:?}", r.seq, r.kind)),
        }
        self.prev = Some(r.hash.clone());
        self.next_seq = r.seq.max(self.next_seq) + 1;
        self.report.head = Some(Head {
            seq: r.seq,
            hash: r.hash.clone(),
        });
    }

    /// Feedback on `event_id` written since the last seal: the served feedback may differ from
    /// its newest record. Call before [`Verifier::served`].
    pub fn unsealed_feedback(&mut self, event_id: &str) {
        self.report.pending += 1;
        self.unsealed_feedback.insert(event_id.to_owned());
    }

    /// Verdicts written since the last seal (not in the chain yet).
    pub fn unsealed_verdicts(&mut self, n: u64) {
        self.report.pending += n;
    }

    /// Every verdict the store serves: its stored body and its feedback (as the JSON of a
    /// [`crate::verdict::FeedbackRecord`]), in any order. Call [`Verifier::finish`] after.
    pub fn served(&mut self, event_id: &str, body: &str, feedback: Option<&str>) {
        match self.verdicts.remove(event_id) {
            None if self.erased.contains(event_id) => self.problem(format!(
                "the verdict for event {event_id} is served although it was erased"
            )),
            None => self.problem(format!(
                "the verdict for event {event_id} is not in the audit trail"
            )),
            Some(h) if h != digest(body) => self.problem(format!(
                "the verdict for event {event_id} was changed after it was recorded"
            )),
            Some(_) => {}
        }
        let recorded = self.feedback.remove(event_id);
        if self.unsealed_feedback.contains(event_id) {
            return;
        }
        if recorded != feedback.map(digest) {
            self.problem(match (recorded, feedback) {
                (None, Some(_)) => {
                    format!("feedback on event {event_id} is not in the audit trail")
                }
                (Some(_), None) => {
                    format!("feedback on event {event_id} was removed after it was recorded")
                }
                _ => format!("feedback on event {event_id} differs from its newest record"),
            });
        }
    }

    /// `kept`: the head the store keeps beside the trail (None when it keeps none).
    pub fn finish(mut self, kept: Option<Head>) -> AuditReport {
        let mut missing: Vec<String> = self.verdicts.drain().map(|(id, _)| id).collect();
        missing.sort();
        for id in missing {
            self.problem(format!(
                "the verdict for event {id} is in the audit trail but was removed from the state"
            ));
        }
        let mut dropped_feedback: Vec<String> = self.feedback.drain().map(|(id, _)| id).collect();
        dropped_feedback.sort();
        for id in dropped_feedback {
            self.problem(format!(
                "feedback on event {id} was removed after it was recorded"
            ));
        }
        match (&kept, &self.report.head) {
            (Some(k), Some(h)) if k.seq > h.seq => {
                let n = k.seq - h.seq;
                self.problem(format!(
                    "the newest {n} record{} {} removed (the trail ended at {k})",
                    if n == 1 { "" } else { "s" },
                    if n == 1 { "was" } else { "were" },
                ));
            }
            (Some(k), Some(h)) if k != h => self.problem(format!(
                "the newest record is not the one written last ({k}): the trail was altered"
            )),
            (Some(k), None) => self.problem(format!(
                "the trail is empty but ended at {k}: every record was removed"
            )),
            _ => {}
        }
        if let Some(a) = &self.anchor {
            if !self.anchor_seen {
                let msg = format!("the anchored record {a} is not in the trail");
                self.problem(msg);
            }
        }
        self.report
    }
}

/// A feedback record's body.
pub fn feedback_body(
    label: crate::verdict::Feedback,
    note: Option<&str>,
    at: DateTime<Utc>,
) -> String {
    let r = crate::verdict::FeedbackRecord {
        label,
        note: note.map(str::to_owned),
        at: DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at),
    };
    serde_json::to_string(&r).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let (kind, id, body) = if seq == 3 {
                    (
                        "feedback",
                        "e1".to_owned(),
                        r#"{"label":"benign"}"#.to_owned(),
                    )
                } else {
                    ("verdict", format!("e{seq}"), format!("{{\"v\":{seq}}}"))
                };
                let hash = link(&prev, seq, kind, &id, seq as i64, &body);
                let r = AuditRecord {
                    seq,
                    at_ms: seq as i64,
                    kind: kind.into(),
                    event_id: id,
                    body,
                    prev: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                r
            })
            .collect()
    }

    fn verify(records: &[AuditRecord], kept: Option<Head>, anchor: Option<Head>) -> AuditReport {
        let mut v = Verifier::new(anchor);
        for r in records {
            v.record(r);
        }
        for r in records.iter().filter(|r| r.kind == "verdict") {
            let fb = (r.event_id == "e1").then_some(r#"{"label":"benign"}"#);
            v.served(&r.event_id, &r.body, fb);
        }
        v.finish(kept)
    }

    fn head(r: &AuditRecord) -> Head {
        Head {
            seq: r.seq,
            hash: r.hash.clone(),
        }
    }

    #[test]
    fn an_intact_chain_verifies_and_names_its_head() {
        let c = chain(5);
        let rep = verify(&c, Some(head(&c[4])), Some(head(&c[1])));
        assert!(rep.intact(), "{:?}", rep.problems);
        assert_eq!((rep.records, rep.verdicts, rep.feedback), (5, 4, 1));
        assert_eq!(rep.head, Some(head(&c[4])));
        let shown = head(&c[4]).to_string();
        assert_eq!(shown.parse::<Head>().unwrap(), head(&c[4]));
    }

    #[test]
    fn an_edit_a_gap_a_cut_tail_and_a_rewrite_are_each_found() {
        let c = chain(6);
        let mut edited = c.clone();
        edited[3].body = r#"{"v":400}"#.into();
        let rep = verify(&edited, Some(head(&c[5])), None);
        // (The served verdict is the edited one, so only the chain shows the edit.)
        assert_eq!(rep.problems.len(), 1, "{:?}", rep.problems);
        assert!(rep.problems[0].contains("record 4 (verdict of event e4) was edited"));

        let mut gap = c.clone();
        gap.remove(2);
        let rep = verify(&gap, Some(head(&c[5])), None);
        assert!(
            rep.problems.iter().any(|p| p == "record 3 is missing"),
            "{rep:?}"
        );

        let cut = &c[..4];
        let rep = verify(cut, Some(head(&c[5])), None);
        assert!(
            rep.problems
                .iter()
                .any(|p| p.starts_with("the newest 2 records were removed")),
            "{rep:?}"
        );

        // Rewritten from record 2 with valid hashes: only an anchor from before shows it.
        let mut rewritten = c.clone();
        rewritten[1].body = r#"{"v":"forged"}"#.into();
        let mut prev = rewritten[0].hash.clone();
        for r in &mut rewritten[1..] {
            r.prev = prev.clone();
            r.hash = link(&r.prev, r.seq, &r.kind, &r.event_id, r.at_ms, &r.body);
            prev = r.hash.clone();
        }
        let kept = head(&rewritten[5]);
        let clean = verify(&rewritten, Some(kept.clone()), None);
        assert!(clean.intact(), "{clean:?}");
        let rep = verify(&rewritten, Some(kept), Some(head(&c[3])));
        assert!(
            rep.problems[0].contains("is not the one anchored"),
            "{rep:?}"
        );
    }

    #[test]
    fn verdicts_and_feedback_served_must_match_the_trail() {
        let c = chain(4);
        let mut v = Verifier::new(None);
        for r in &c {
            v.record(r);
        }
        v.served("e1", r#"{"v":1}"#, Some(r#"{"label":"malicious"}"#));
        v.served("e2", r#"{"v":2}"#, None);
        v.served("e9", r#"{"v":9}"#, None);
        let rep = v.finish(Some(head(&c[3])));
        assert_eq!(
            rep.problems,
            [
                "feedback on event e1 differs from its newest record",
                "the verdict for event e9 is not in the audit trail",
                "the verdict for event e4 is in the audit trail but was removed from the state",
            ]
        );
    }
}
