//! Confirmation of an automatic remediation's change at its provider.
//!
//! Webhook deliveries are authenticated by shared secrets only, so whoever holds one could post
//! a change that never happened and have provguard revert a grant someone legitimately holds.
//! Before an automatic request (`"automatic": true`, sent by the ingest function) is executed,
//! the change it reverts must be on record at its provider, naming the same action, target and
//! entitlement:
//!
//! | source | confirmed by |
//! |---|---|
//! | `okta` | the System Log event with the event's `uuid`: `GET /api/v1/logs?filter=uuid eq "<id>"` (scope `okta.logs.read`) |
//! | `entra` | the Graph audit record with the event's id: `GET /auditLogs/directoryAudits/{id}` (permission `AuditLog.Read.All`) |
//! | `gworkspace` | the Reports API admin activity whose `id.uniqueQualifier` is the event's id, listed for a minute either side of its time: `GET /admin/reports/v1/activity/users/all/applications/admin?startTime=…&endTime=…` (scope `admin.reports.audit.readonly`) |
//! | `cloudtrail` | its delivery: an EventBridge event from an AWS source (`aws.*`), which PutEvents cannot forge; delivered any other way it cannot be confirmed |
//! | anything else (SCIM, custom mappings) | nothing: no provider log to ask, so never executed automatically |
//!
//! The provider's record is run through the bundled normalizer of its source, the same program
//! that made the stored event from the delivery, and the event of the same id is compared field
//! by field (action, outcome, target id and e-mail, the entitlement's id where the stored event
//! has one). A record that differs — a real id reused with another target — refuses the request.
//!
//! Providers publish audit records minutes late (Entra, Google), so a change not found yet is
//! not refused at once: the request is held ([`DynamoDbStore::await_confirmation`]), status
//! `awaiting_confirmation`, and the scheduled sweep ([`crate::sweep`]) sends it through again
//! until [`WAIT`] after the event was ingested; then it is refused, saying what was looked up
//! and what was found. Every attempt is an entry (`confirmation`) of the remediation audit
//! trail. Requests made by operators (`automatic` false, the default) are not gated.
//!
//! [`DynamoDbStore::await_confirmation`]: provguard_core::store::DynamoDbStore::await_confirmation

use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use provguard_core::Normalizer;
use provguard_core::event::Event;
use provguard_core::normalize::{Normalized, RawRecord};
use provguard_core::privilege::PrivilegeTable;
use provguard_core::remediate::segment;
use provguard_core::store::StoreError;
use provguard_core::store::dynamodb::PendingConfirmation;
use provguard_core::time;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::{Deps, Idp, Request, Status, config};

/// How long after the event was ingested its change may still be confirmed.
pub const WAIT: Duration =
    Duration::minutes(provguard_core::store::dynamodb::CONFIRMATION_WAIT_MINUTES);

/// The Reports API is listed this long either side of a Google event's time.
const GOOGLE_SLACK: Duration = Duration::minutes(1);
/// Pages of Reports API activities read per lookup (1,000 activities each).
const GOOGLE_MAX_PAGES: usize = 10;

/// How the event of an automatic request reached the ingest function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// An EventBridge event from one of AWS's own sources (`aws.*`).
    #[serde(rename = "eventbridge")]
    EventBridge,
    /// A webhook request (Function URL or HTTP API).
    Webhook,
    /// Any other invocation (another EventBridge source, a direct invoke).
    Direct,
}

impl Delivery {
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::EventBridge => "eventbridge",
            Delivery::Webhook => "webhook",
            Delivery::Direct => "direct",
        }
    }
}

/// What one confirmation attempt concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The provider's record matches the stored event (or the delivery cannot be forged).
    Confirmed(String),
    /// Not on record yet, or the provider could not be asked: tried again until the wait ends.
    /// `outcome` is `not_found` or `unavailable`.
    NotYet {
        outcome: &'static str,
        detail: String,
    },
    /// The provider's record under this id is another change.
    Mismatch(String),
    /// Nothing can confirm this change.
    Unconfirmable(String),
}

impl Check {
    /// The audit trail's outcome of the attempt.
    pub fn outcome(&self) -> &'static str {
        match self {
            Check::Confirmed(_) => "confirmed",
            Check::NotYet { outcome, .. } => outcome,
            Check::Mismatch(_) => "mismatch",
            Check::Unconfirmable(_) => "unconfirmable",
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            Check::Confirmed(d) | Check::Mismatch(d) | Check::Unconfirmable(d) => d,
            Check::NotYet { detail, .. } => detail,
        }
    }
}

/// What the gate decided for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Confirmed (or not automatic): the remediation goes on.
    Proceed,
    /// Ends the request with this status and message.
    Stop(Status, String),
}

/// The bundled normalizers, compiled once per process and reused (the runtime is cleared
/// between records by the normalizer itself).
fn normalizer() -> &'static Mutex<Normalizer> {
    static N: OnceLock<Mutex<Normalizer>> = OnceLock::new();
    N.get_or_init(|| {
        // Only mappings are compiled here (none): bundled programs compile on first use.
        let n = Normalizer::new(&[], PrivilegeTable::default())
            .unwrap_or_else(|e| unreachable!("no mappings to compile: {e}"));
        Mutex::new(n)
    })
}

/// Compiles the normalizers of the sources confirmed at a provider (call once at start-up, so
/// the first confirmation does not pay for it).
pub fn prepare() {
    lock(normalizer()).prepare(["okta", "entra", "gworkspace"]);
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The provider's id of an event: the event's id without the `#<n>` the pipeline appends to the
/// second and later events of one record.
pub fn record_id(event_id: &str) -> &str {
    match event_id.rsplit_once('#') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => event_id,
    }
}

fn shown(v: Option<&str>) -> &str {
    v.unwrap_or("(none)")
}

/// How the provider's event differs from the stored one (empty: the same change).
pub fn differences(stored: &Event, record: &Event) -> Vec<String> {
    let mut out = Vec::new();
    if record.action != stored.action {
        out.push(format!(
            "it records {}, not {}",
            record.action, stored.action
        ));
    }
    if record.outcome != stored.outcome {
        out.push(format!("its outcome is {:?}", record.outcome).to_lowercase());
    }
    let (s, r) = (&stored.target, &record.target);
    if s.id.is_none() && s.email.is_none() {
        out.push("the stored event names its target by neither id nor e-mail".to_owned());
    }
    if s.id != r.id {
        out.push(format!(
            "its target id is {}, not {}",
            shown(r.id.as_deref()),
            shown(s.id.as_deref())
        ));
    }
    let same_email = match (&s.email, &r.email) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        (a, b) => a == b,
    };
    if !same_email {
        out.push(format!(
            "its target e-mail is {}, not {}",
            shown(r.email.as_deref()),
            shown(s.email.as_deref())
        ));
    }
    if let Some(id) = stored.entitlement.as_ref().and_then(|e| e.id.as_deref()) {
        let theirs = record.entitlement.as_ref().and_then(|e| e.id.as_deref());
        if theirs != Some(id) {
            out.push(format!("its entitlement id is {}, not {id}", shown(theirs)));
        }
    }
    out
}

/// Compares the provider's records (those carrying the event's provider id) with the stored
/// event: `looked_up` says what was asked, for the audit trail and the refusal.
fn compare(
    source: &str,
    event: &Event,
    records: &[Json],
    looked_up: &str,
    now: DateTime<Utc>,
) -> Check {
    let mut why = Vec::new();
    let mut n = lock(normalizer());
    for r in records {
        let raw = RawRecord {
            value: r.clone(),
            envelope_source: None,
        };
        match n.normalize(&raw, Some(source), now) {
            Normalized::Events(events) => match events.iter().find(|e| e.id == event.id) {
                Some(theirs) => {
                    let diff = differences(event, theirs);
                    return if diff.is_empty() {
                        Check::Confirmed(format!(
                            "{looked_up}: the record names the same change ({} {} {})",
                            event.action,
                            event.target.label(),
                            event
                                .entitlement
                                .as_ref()
                                .map_or("(no entitlement)", |e| e.label())
                        ))
                    } else {
                        Check::Mismatch(format!(
                            "{looked_up}: the record with this id is another change: {}",
                            diff.join("; ")
                        ))
                    };
                }
                None => why.push(format!(
                    "it yields no event with id {} (only {})",
                    event.id,
                    events
                        .iter()
                        .map(|e| e.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
            Normalized::Dropped { reason, .. } => {
                why.push(format!("it is not a provisioning change ({reason})"));
            }
            Normalized::DeadLetter { reason, .. } => {
                why.push(format!("it cannot be read ({reason})"));
            }
        }
    }
    Check::Mismatch(format!(
        "{looked_up}: the record with this id is not this change: {}",
        why.join("; ")
    ))
}

/// One attempt to confirm `event` (blocking: provider calls within the [`Idp`] budget).
pub fn check(idp: &Idp, event: &Event, delivery: Option<Delivery>, now: DateTime<Utc>) -> Check {
    let id = record_id(&event.id);
    match event.source.as_str() {
        "cloudtrail" => match delivery {
            Some(Delivery::EventBridge) => Check::Confirmed(
                "delivered by EventBridge from an AWS source, which PutEvents cannot forge"
                    .to_owned(),
            ),
            other => Check::Unconfirmable(format!(
                "a CloudTrail event is confirmed only by its EventBridge delivery from an AWS source, and this one came by {}",
                other.map_or("an unstated path", Delivery::as_str)
            )),
        },
        "okta" => idp.confirm_okta(event, id, now),
        "entra" => idp.confirm_entra(event, id, now),
        "gworkspace" => idp.confirm_google(event, id, now),
        other => Check::Unconfirmable(format!(
            "{other} events have no provider log to confirm them by"
        )),
    }
}

fn not_configured(provider: &str, var: &str) -> Check {
    Check::Unconfirmable(format!(
        "{provider} is not configured ({var}), so its audit log cannot be read"
    ))
}

fn unavailable(looked_up: &str, why: String) -> Check {
    Check::NotYet {
        outcome: "unavailable",
        detail: format!("{looked_up}: {why}"),
    }
}

fn not_found(looked_up: &str, what: &str) -> Check {
    Check::NotYet {
        outcome: "not_found",
        detail: format!("{looked_up}: {what}"),
    }
}

/// The body of an error answer, shortened for the audit trail.
fn answer_text(resp: &mut ureq::http::Response<ureq::Body>) -> String {
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    text.chars().take(300).collect()
}

/// Sends one audit-log GET and reads its JSON answer. A 404 is `not_found(missing)` when the
/// lookup is by id (`missing` says what is not there); anything else that is not a readable
/// success leaves the change unconfirmed for now (`unavailable`).
fn get_json(
    looked_up: &str,
    call: ureq::RequestBuilder<ureq::typestate::WithoutBody>,
    missing: Option<&str>,
) -> Result<Json, Check> {
    let mut resp = call
        .header("Accept", "application/json")
        .call()
        .map_err(|e| unavailable(looked_up, format!("request failed: {e}")))?;
    match (resp.status().as_u16(), missing) {
        (200..=299, _) => resp
            .body_mut()
            .read_json::<Json>()
            .map_err(|e| unavailable(looked_up, format!("the answer is unreadable: {e}"))),
        (404, Some(what)) => Err(not_found(looked_up, what)),
        (status, _) => {
            let text = answer_text(&mut resp);
            Err(unavailable(looked_up, format!("HTTP {status}: {text}")))
        }
    }
}

impl Idp {
    fn confirm_okta(&self, event: &Event, uuid: &str, now: DateTime<Utc>) -> Check {
        let Some(o) = &self.okta else {
            return not_configured("Okta", config::vars::OKTA_URL);
        };
        // The id goes into a filter expression: only the characters of Okta's uuids.
        if uuid.is_empty()
            || uuid.len() > 64
            || !uuid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Check::Unconfirmable(format!("{uuid:?} is not an Okta System Log uuid"));
        }
        let filter = format!("uuid eq \"{uuid}\"");
        let looked_up = format!("Okta System Log GET /api/v1/logs?filter={filter}");
        let call = self
            .agent
            .get(format!("{}/api/v1/logs", o.url))
            .query("filter", &filter)
            .header("Authorization", format!("SSWS {}", o.token));
        let records: Vec<Json> = match get_json(&looked_up, call, None) {
            Ok(Json::Array(list)) => list
                .into_iter()
                .filter(|r| r["uuid"].as_str() == Some(uuid))
                .collect(),
            Ok(_) => return unavailable(&looked_up, "the answer is not a list".into()),
            Err(check) => return check,
        };
        if records.is_empty() {
            return not_found(&looked_up, &format!("no System Log event has uuid {uuid}"));
        }
        compare("okta", event, &records, &looked_up, now)
    }

    fn confirm_entra(&self, event: &Event, id: &str, now: DateTime<Utc>) -> Check {
        let Some(e) = &self.entra else {
            return not_configured("Entra", config::vars::ENTRA_TENANT);
        };
        let path = format!("/auditLogs/directoryAudits/{}", segment(id));
        let looked_up = format!("Microsoft Graph GET {path}");
        let token = match self.entra_token(e) {
            Ok(t) => t,
            Err(why) => return unavailable(&looked_up, why),
        };
        let call = self
            .agent
            .get(format!("{}{path}", e.graph_url))
            .header("Authorization", format!("Bearer {token}"));
        let missing = format!("no directory audit record has id {id}");
        match get_json(&looked_up, call, Some(&missing)) {
            Ok(record) => compare("entra", event, &[record], &looked_up, now),
            Err(check) => check,
        }
    }

    fn confirm_google(&self, event: &Event, id: &str, now: DateTime<Utc>) -> Check {
        let Some(g) = &self.google else {
            return not_configured("Google", config::vars::GOOGLE_TOKEN);
        };
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        // The time is the sender's: shifted without overflowing.
        let (start, end) = (
            at(time::before(event.time, GOOGLE_SLACK)),
            at(time::after(event.time, GOOGLE_SLACK)),
        );
        let path = "/admin/reports/v1/activity/users/all/applications/admin";
        let looked_up = format!("Google Reports API GET {path}?startTime={start}&endTime={end}");
        let mut records = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..GOOGLE_MAX_PAGES {
            let mut call = self
                .agent
                .get(format!("{}{path}", g.url))
                .query("startTime", &start)
                .query("endTime", &end)
                .query("maxResults", "1000")
                .header("Authorization", format!("Bearer {}", g.token));
            if let Some(p) = &page {
                call = call.query("pageToken", p);
            }
            let body = match get_json(&looked_up, call, None) {
                Ok(b) => b,
                Err(check) => return check,
            };
            for item in body["items"].as_array().into_iter().flatten() {
                // As the normalizer reads it: a string or a number.
                let uq = match &item["id"]["uniqueQualifier"] {
                    Json::String(s) => s.clone(),
                    Json::Number(n) => n.to_string(),
                    _ => continue,
                };
                if uq == id {
                    records.push(item.clone());
                }
            }
            match body["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => page = Some(t.to_owned()),
                _ => break,
            }
        }
        if records.is_empty() {
            return not_found(
                &looked_up,
                &format!("no admin activity has id.uniqueQualifier {id}"),
            );
        }
        compare("gworkspace", event, &records, &looked_up, now)
    }
}

/// The gate before an automatic request's execution (see the module docs): one attempt,
/// recorded with `audit(kind, outcome, detail)`; a change not found yet is held for the sweep.
pub(crate) fn gate(
    deps: &Deps,
    req: &Request,
    event: &Event,
    at: DateTime<Utc>,
    audit: &dyn Fn(&str, &str, &str) -> Result<(), StoreError>,
) -> Result<Gate, StoreError> {
    if !req.automatic {
        return Ok(Gate::Proceed);
    }
    let check = check(&deps.idp, event, req.delivery, at);
    audit("confirmation", check.outcome(), check.detail())?;
    Ok(match check {
        Check::Confirmed(_) => Gate::Proceed,
        Check::Mismatch(d) => Gate::Stop(
            Status::Refused,
            format!("refused: the change is not confirmed at its provider: {d}"),
        ),
        Check::Unconfirmable(d) => Gate::Stop(
            Status::Refused,
            format!(
                "refused: an automatic remediation runs only once its change is confirmed, and {d}"
            ),
        ),
        Check::NotYet { detail, .. } => {
            let received = deps
                .store
                .event_ingested_at(&req.event_id)?
                .unwrap_or(event.time);
            let until = time::after(received, WAIT);
            if at >= until {
                Gate::Stop(
                    Status::Refused,
                    format!(
                        "refused: not confirmed within {} minutes of receipt ({}): {detail}",
                        WAIT.num_minutes(),
                        received.to_rfc3339_opts(SecondsFormat::Secs, true)
                    ),
                )
            } else {
                deps.store.await_confirmation(&PendingConfirmation {
                    event_id: req.event_id.clone(),
                    remedy: req.action.as_str().to_owned(),
                    until,
                    request: serde_json::to_value(req)?,
                })?;
                Gate::Stop(
                    Status::AwaitingConfirmation,
                    format!(
                        "awaiting confirmation until {} (checked again by the sweep): {detail}",
                        until.to_rfc3339_opts(SecondsFormat::Secs, true)
                    ),
                )
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn okta_event(target: &str, group: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "id": "7e6d5c4b-b8a9-11f1-9c3d-2e1f0a9b8c7d", "source": "okta", "tenant": "okta",
            "time": "2026-11-03T14:10:02.448Z", "action": "add_to_group", "outcome": "success",
            "actor": {"kind": "human"},
            "target": {"id": target, "email": "megan.shaw@acmerocket.example", "kind": "human"},
            "entitlement": {"id": group, "kind": "group"}, "channel": "console"
        }))
        .unwrap()
    }

    #[test]
    fn the_provider_id_drops_the_suffix_of_later_events_of_a_record() {
        assert_eq!(record_id("abc#2"), "abc");
        assert_eq!(record_id("abc"), "abc");
        assert_eq!(record_id("a#b"), "a#b");
        assert_eq!(record_id("abc#"), "abc#");
    }

    #[test]
    fn requests_say_how_their_event_arrived() {
        let r = crate::parse(serde_json::json!({"event_id": "e1", "action": "revert",
            "automatic": true, "delivery": "eventbridge"}))
        .unwrap();
        assert!(r.automatic);
        assert_eq!(r.delivery, Some(Delivery::EventBridge));
        let operator =
            crate::parse(serde_json::json!({"event_id": "e1", "action": "revert"})).unwrap();
        assert!(!operator.automatic);
        assert_eq!(operator.delivery, None);
        assert!(
            crate::parse(serde_json::json!({"event_id": "e1", "action": "revert",
            "delivery": "carrier-pigeon"}))
            .is_err()
        );
    }

    #[test]
    fn another_target_or_entitlement_under_the_same_id_is_a_difference() {
        let stored = okta_event("00ucq4HjHQaO0IefjDed", "00g1prodadmins0demo7");
        assert!(differences(&stored, &stored).is_empty());
        let other = okta_event("00uceo0000000000000a", "00g1prodadmins0demo7");
        let d = differences(&stored, &other);
        assert_eq!(
            d,
            ["its target id is 00uceo0000000000000a, not 00ucq4HjHQaO0IefjDed"]
        );
        let other = okta_event("00ucq4HjHQaO0IefjDed", "00gother0group000001");
        assert_eq!(
            differences(&stored, &other),
            ["its entitlement id is 00gother0group000001, not 00g1prodadmins0demo7"]
        );
        let mut removal = stored.clone();
        removal.action = provguard_core::event::Action::RemoveFromGroup;
        assert_eq!(
            differences(&stored, &removal),
            ["it records remove_from_group, not add_to_group"]
        );
    }

    #[test]
    fn cloudtrail_is_confirmed_by_its_delivery_and_unknown_sources_never() {
        let idp = Idp::new(None, None, None);
        let mut e = okta_event("00ucq4HjHQaO0IefjDed", "00g1prodadmins0demo7");
        e.source = "cloudtrail".into();
        let now = Utc::now();
        assert!(matches!(
            check(&idp, &e, Some(Delivery::EventBridge), now),
            Check::Confirmed(_)
        ));
        for d in [Some(Delivery::Webhook), Some(Delivery::Direct), None] {
            assert!(matches!(check(&idp, &e, d, now), Check::Unconfirmable(_)));
        }
        e.source = "scim".into();
        assert!(matches!(
            check(&idp, &e, Some(Delivery::EventBridge), now),
            Check::Unconfirmable(_)
        ));
        // A provider that is not configured cannot confirm anything.
        e.source = "okta".into();
        assert!(matches!(
            check(&idp, &e, None, now),
            Check::Unconfirmable(_)
        ));
    }

    #[test]
    fn a_google_event_at_the_end_of_time_is_looked_up_without_overflowing() {
        let idp = Idp::new(
            None,
            None,
            Some(crate::config::Google {
                url: "http://127.0.0.1:9".into(),
                token: "t".into(),
            }),
        )
        .with_timeout(std::time::Duration::from_secs(1));
        let mut e = okta_event("00ucq4HjHQaO0IefjDed", "00g1prodadmins0demo7");
        e.source = "gworkspace".into();
        for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
            e.time = t;
            let c = check(&idp, &e, None, Utc::now());
            assert_eq!(c.outcome(), "unavailable", "{c:?}");
        }
    }

    /// Every sample record of the sources confirmed at a provider confirms each event it
    /// normalizes to: the comparison reads what the normalizer reads.
    #[test]
    fn every_sample_confirms_the_events_it_normalizes_to() {
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples");
        let mut n = Normalizer::new(&[], PrivilegeTable::default()).unwrap();
        let now: DateTime<Utc> = "2026-11-03T09:00:00Z".parse().unwrap();
        let mut compared = 0;
        for source in ["okta", "entra", "gworkspace"] {
            for f in std::fs::read_dir(samples.join(source)).unwrap() {
                let path = f.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if !name.ends_with(".json") || name.ends_with(".normalized.json") {
                    continue;
                }
                let bytes = std::fs::read(&path).unwrap();
                for piece in provguard_core::normalize::split_input(&bytes) {
                    let Ok(record) = piece else { continue };
                    let Normalized::Events(events) = n.normalize(&record, Some(source), now) else {
                        continue;
                    };
                    for e in &events {
                        let check = compare(
                            source,
                            e,
                            std::slice::from_ref(&record.value),
                            "sample",
                            now,
                        );
                        assert!(
                            matches!(check, Check::Confirmed(_)),
                            "{name} {}: {check:?}",
                            e.id
                        );
                        compared += 1;
                    }
                }
            }
        }
        assert!(compared >= 10, "{compared}");
    }
}
