//! Automatic remediation executes only a change confirmed at its provider: the remediate
//! function through its handlers (requests and the scheduled sweep) on moto, with Okta's System
//! Log, Microsoft Graph's directory audits and Google's Reports API served by a local HTTP
//! server that answers as those APIs do from the records a test has "published"; and the ingest
//! function's automatic requests, which say how their event arrived.
//!
//! Skipped like the other AWS tests when moto is not reachable and `PROVGUARD_REQUIRE_AWS` is not
//! `1`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lambda_runtime::{Context, LambdaEvent};
use provguard_core::event::Event;
use provguard_core::normalize::{Normalized, RawRecord};
use provguard_core::store::{Commit, Ledger};
use provguard_core::verdict::Severity;
use provguard_core::webhook::WebhookSecrets;
use provguard_remediate::sweep::{Answer, Sweep};
use provguard_remediate::{AuditEntry, Idp, Report, Status};
use serde_json::{Value, json};

use crate::aws::{Calls, t, topic_with_queues, unique};
use crate::lambda::{
    Aws, Requests, all_providers_at, attached_policies, http, ingest, ingest_deps, invoke_sample,
    remediate, remediate_deps, seed_demo_baselines, summary,
};
use crate::remediate::{DEMO_ACCOUNT, give_admin, iam_in};
use crate::support::normalizer;

/// When the tests' events are ingested, and the remediate function's clock at first.
const RECEIVED: &str = "2026-11-03T09:00:00Z";
const ADMIN_POLICY: &str = "arn:aws:iam::aws:policy/AdministratorAccess";
const PROD_ADMINS: &str = "00g1prodadmins0demo7";

/// One request the provider server saw: method, path, decoded query, Authorization.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    auth: String,
}

impl Seen {
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the server has on record (tests publish into it while it runs).
#[derive(Default)]
struct Records {
    okta_logs: Vec<Value>,
    directory_audits: HashMap<String, Value>,
    admin_activities: Vec<Value>,
}

/// A local stand-in for Okta, Microsoft Graph (and its token endpoint) and Google: the audit
/// logs answer from [`Records`], filtered as the real APIs filter; deletes answer 204. Stops
/// when dropped.
struct Provider {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    records: Arc<Mutex<Records>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.thread.take() {
            let _ = h.join();
        }
    }
}

/// `application/x-www-form-urlencoded` decoding of one query component.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn respond(status: u16, body: Value) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    tiny_http::Response::from_string(body.to_string()).with_status_code(status)
}

fn within(time: &Value, start: Option<&str>, end: Option<&str>) -> bool {
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let Some(at) = time.as_str().map(parse) else {
        return false;
    };
    start.is_some_and(|s| parse(s) <= at) && end.is_some_and(|e| at <= parse(e))
}

impl Provider {
    fn start() -> Provider {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let base = format!("http://{}", server.server_addr().to_ip().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let records: Arc<Mutex<Records>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (log, on_record, stopped) = (seen.clone(), records.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                let Ok(Some(mut req)) = server.recv_timeout(std::time::Duration::from_millis(50))
                else {
                    continue;
                };
                let mut body = String::new();
                req.as_reader().read_to_string(&mut body).unwrap();
                let (path, query) = match req.url().split_once('?') {
                    Some((p, q)) => (p.to_owned(), q.to_owned()),
                    None => (req.url().to_owned(), String::new()),
                };
                let seen = Seen {
                    method: req.method().to_string(),
                    path: path.clone(),
                    query: query
                        .split('&')
                        .filter(|kv| !kv.is_empty())
                        .map(|kv| {
                            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                            (decode(k), decode(v))
                        })
                        .collect(),
                    auth: req
                        .headers()
                        .iter()
                        .find(|h| h.field.equiv("Authorization"))
                        .map(|h| h.value.to_string())
                        .unwrap_or_default(),
                };
                log.lock().unwrap().push(seen.clone());
                let records = on_record.lock().unwrap();
                let resp = match (seen.method.as_str(), path.as_str()) {
                    ("POST", p) if p.ends_with("/oauth2/v2.0/token") => respond(
                        200,
                        json!({"access_token": "graph-token", "token_type": "Bearer"}),
                    ),
                    ("GET", "/api/v1/logs") if seen.auth == "SSWS okta-token" => {
                        // Okta's filter expression, for the one form it is asked.
                        match seen
                            .param("filter")
                            .and_then(|f| f.strip_prefix("uuid eq \""))
                            .and_then(|f| f.strip_suffix('"'))
                        {
                            Some(uuid) => respond(
                                200,
                                Value::Array(
                                    records
                                        .okta_logs
                                        .iter()
                                        .filter(|r| r["uuid"] == uuid)
                                        .cloned()
                                        .collect(),
                                ),
                            ),
                            None => respond(400, json!({"errorCode": "E0000031"})),
                        }
                    }
                    ("GET", p)
                        if p.starts_with("/v1.0/auditLogs/directoryAudits/")
                            && seen.auth == "Bearer graph-token" =>
                    {
                        let id = decode(&p["/v1.0/auditLogs/directoryAudits/".len()..]);
                        match records.directory_audits.get(&id) {
                            Some(r) => {
                                let mut r = r.clone();
                                r["@odata.context"] = json!(
                                    "https://graph.microsoft.com/v1.0/$metadata#auditLogs/directoryAudits/$entity"
                                );
                                respond(200, r)
                            }
                            None => {
                                respond(404, json!({"error": {"code": "Request_ResourceNotFound"}}))
                            }
                        }
                    }
                    ("GET", "/admin/reports/v1/activity/users/all/applications/admin")
                        if seen.auth == "Bearer google-token" =>
                    {
                        let items: Vec<Value> = records
                            .admin_activities
                            .iter()
                            .filter(|a| {
                                within(
                                    &a["id"]["time"],
                                    seen.param("startTime"),
                                    seen.param("endTime"),
                                )
                            })
                            .cloned()
                            .collect();
                        respond(
                            200,
                            json!({"kind": "admin#reports#activities", "items": items}),
                        )
                    }
                    ("GET", _) => respond(401, json!({"error": "unauthorized"})),
                    ("DELETE", _) => respond(204, Value::Null),
                    _ => respond(200, json!({})),
                };
                drop(records);
                let _ = req.respond(resp);
            }
        });
        Provider {
            base,
            seen,
            records,
            stop,
            thread: Some(thread),
        }
    }

    fn idp(&self) -> Idp {
        all_providers_at(&self.base)
    }

    /// What was asked since the last call.
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    fn publish(&self, f: impl FnOnce(&mut Records)) {
        f(&mut self.records.lock().unwrap());
    }
}

/// (method, path) of what the server saw, token requests left out.
fn calls(seen: &[Seen]) -> Vec<(String, String)> {
    seen.iter()
        .filter(|s| !s.path.ends_with("/oauth2/v2.0/token"))
        .map(|s| (s.method.clone(), s.path.clone()))
        .collect()
}

fn pair(m: &str, p: &str) -> (String, String) {
    (m.to_owned(), p.to_owned())
}

/// Stores the events `record` normalizes to (as the ingest function does), ingested at
/// [`RECEIVED`]; returns them.
fn ingested(a: &Aws, source: &str, record: &Value, envelope: Option<&str>) -> Vec<Event> {
    let raw = RawRecord {
        value: record.clone(),
        envelope_source: envelope.map(str::to_owned),
    };
    let Normalized::Events(events) = normalizer().normalize(&raw, Some(source), t(RECEIVED)) else {
        panic!("{source} record not normalized: {record}");
    };
    for e in &events {
        a.store()
            .commit(&Commit {
                event: e,
                verdict: None,
                baselines: vec![],
                ingested_at: t(RECEIVED),
                actor_recent: &[],
                target_recent: &[],
                tenant_recent: &[],
            })
            .unwrap();
    }
    events
}

/// An Okta System Log event: `user` added to `group`.
fn okta_log(uuid: &str, user: &str, email: &str, group: &str) -> Value {
    json!({
        "uuid": uuid, "published": "2026-11-03T08:59:41.120Z",
        "eventType": "group.user_membership.add", "version": "0",
        "displayMessage": "Add user to group membership", "severity": "INFO",
        "actor": {"id": "00uqdLo8025p36CUYX13", "type": "User", "alternateId": "anna.schmidt@acmerocket.example", "displayName": "Anna Schmidt"},
        "client": {"ipAddress": "198.51.100.40", "userAgent": {"rawUserAgent": "Mozilla/5.0"}},
        "outcome": {"result": "SUCCESS"},
        "target": [
            {"id": user, "type": "User", "alternateId": email, "displayName": email},
            {"id": group, "type": "UserGroup", "alternateId": "unknown", "displayName": "prod-db-admins"}
        ]
    })
}

/// The Okta hook that delivered an event (its tenant is the org host).
const OKTA_HOOK: &str = "https://acmerocket.okta.com/api/v1/eventHooks/who9demo0hook0001";

/// The request ingest sends for an alert that arrived by `delivery`.
fn automatic(event_id: &str, delivery: &str) -> Value {
    json!({
        "event_id": event_id, "action": "revert", "dry_run": false,
        "reason": "automatic: high alert (score 81)", "requested_by": "provguard-ingest",
        "automatic": true, "delivery": delivery
    })
}

/// The scheduled sweep, through the function's entry point, at `clock`.
fn sweep(a: &Aws, deps: &provguard_remediate::Deps) -> Sweep {
    let schedule = json!({
        "version": "0", "id": "5f4e3d2c-1b0a-4c9d-8e7f-6a5b4c3d2e1f",
        "detail-type": "Scheduled Event", "source": "aws.events", "account": "111122223333",
        "time": "2026-11-03T09:05:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:111122223333:rule/provguard-remediate-sweep"],
        "detail": {}
    });
    match a
        .block_on(provguard_remediate::sweep::dispatch(
            deps,
            LambdaEvent::new(schedule, Context::default()),
        ))
        .unwrap()
    {
        Answer::Sweep(s) => s,
        Answer::Report(r) => panic!("a report: {r:#?}"),
    }
}

fn trail(a: &Aws, event_id: &str) -> Vec<(String, String)> {
    let audit: Vec<AuditEntry> = a.store().remediation_audit(event_id).unwrap();
    audit.into_iter().map(|e| (e.kind, e.outcome)).collect()
}

fn has(trail: &[(String, String)], kind: &str, outcome: &str) -> bool {
    trail.iter().any(|(k, o)| k == kind && o == outcome)
}

fn assert_status(r: &Report, status: Status) {
    assert_eq!(r.status, status, "{r:#?}");
}

fn okta_delete(group: &str, user: &str) -> (String, String) {
    pair("DELETE", &format!("/api/v1/groups/{group}/users/{user}"))
}

#[test]
fn a_webhook_okta_event_waits_for_its_system_log_record_and_the_sweep_then_reverts_it() {
    let Some(a) = Aws::new() else { return };
    let okta = Provider::start();
    let (uuid, user, email) = (
        "9c8b7a6d-b8ab-11f1-9c3d-2e1f0a9b8c7d",
        "00ucq4HjHQaO0IefjDed",
        "megan.shaw@acmerocket.example",
    );
    let record = okta_log(uuid, user, email, PROD_ADMINS);
    ingested(&a, "okta", &record, Some(OKTA_HOOK));
    let mut deps = remediate_deps(&a, &["okta:*"], okta.idp());

    // The System Log has no such event yet: held, nothing executed.
    let r = remediate(&a, &deps, automatic(uuid, "webhook"));
    assert_status(&r, Status::AwaitingConfirmation);
    assert!(r.message.contains("2026-11-03T09:30:00Z"), "{}", r.message);
    assert!(r.steps.is_empty());
    let asked = okta.take();
    assert_eq!(calls(&asked), [pair("GET", "/api/v1/logs")]);
    assert_eq!(
        asked[0].param("filter"),
        Some(&*format!("uuid eq \"{uuid}\""))
    );
    assert_eq!(asked[0].auth, "SSWS okta-token");

    // Five minutes on, still not published: still held.
    deps.clock = || t("2026-11-03T09:05:00Z");
    let s = sweep(&a, &deps);
    assert_eq!((s.held, s.reports.len()), (1, 1), "{s:#?}");
    assert_status(&s.reports[0], Status::AwaitingConfirmation);
    assert_eq!(calls(&okta.take()), [pair("GET", "/api/v1/logs")]);

    // Okta publishes it; the next sweep confirms it and the revert runs the normal way.
    okta.publish(|r| r.okta_logs.push(record.clone()));
    deps.clock = || t("2026-11-03T09:10:00Z");
    let s = sweep(&a, &deps);
    assert_eq!(s.reports.len(), 1, "{s:#?}");
    assert_status(&s.reports[0], Status::Executed);
    assert_eq!(
        calls(&okta.take()),
        [pair("GET", "/api/v1/logs"), okta_delete(PROD_ADMINS, user)]
    );

    // Done with: the next sweep holds nothing and asks nothing.
    deps.clock = || t("2026-11-03T09:15:00Z");
    let s = sweep(&a, &deps);
    assert_eq!((s.held, s.reports.len()), (0, 0), "{s:#?}");
    assert!(okta.take().is_empty());

    // Every attempt is in the audit trail.
    let trail = trail(&a, uuid);
    for (kind, outcome) in [
        ("confirmation", "not_found"),
        ("request", "awaiting_confirmation"),
        ("confirmation", "confirmed"),
        ("step", "done"),
        ("result", "executed"),
    ] {
        assert!(
            has(&trail, kind, outcome),
            "{kind} {outcome} not in {trail:?}"
        );
    }
    assert_eq!(
        trail.iter().filter(|(k, _)| k == "confirmation").count(),
        3,
        "{trail:?}"
    );
    a.assert_least_privilege();
}

#[test]
fn a_change_its_provider_never_records_is_refused_after_thirty_minutes() {
    let Some(a) = Aws::new() else { return };
    let okta = Provider::start();
    let (uuid, user) = (
        "0a1b2c3d-b8ac-11f1-9c3d-2e1f0a9b8c7d",
        "00uceo00000000000001",
    );
    // A forged delivery: the CEO added to the admins at 03:00; Okta never logged it.
    ingested(
        &a,
        "okta",
        &okta_log(uuid, user, "ceo@acmerocket.example", PROD_ADMINS),
        Some(OKTA_HOOK),
    );
    let mut deps = remediate_deps(&a, &["okta:*"], okta.idp());
    assert_status(
        &remediate(&a, &deps, automatic(uuid, "webhook")),
        Status::AwaitingConfirmation,
    );
    deps.clock = || t("2026-11-03T09:29:59Z");
    let s = sweep(&a, &deps);
    assert_status(&s.reports[0], Status::AwaitingConfirmation);

    deps.clock = || t("2026-11-03T09:30:01Z");
    let s = sweep(&a, &deps);
    assert_eq!(s.reports.len(), 1, "{s:#?}");
    let refused = &s.reports[0];
    assert_status(refused, Status::Refused);
    for needle in [
        "not confirmed within 30 minutes",
        "Okta System Log",
        &format!("filter=uuid eq \"{uuid}\""),
        &format!("no System Log event has uuid {uuid}"),
    ] {
        assert!(
            refused.message.contains(needle),
            "{needle}: {}",
            refused.message
        );
    }
    // Nothing but lookups was sent; nothing is held any more.
    let asked = okta.take();
    assert_eq!(calls(&asked).len(), 3, "{asked:#?}");
    assert!(asked.iter().all(|s| s.method == "GET"), "{asked:#?}");
    let s = sweep(&a, &deps);
    assert_eq!(s.held, 0, "{s:#?}");
    assert!(okta.take().is_empty());
    assert!(has(&trail(&a, uuid), "request", "refused"));
    a.assert_least_privilege();
}

#[test]
fn a_real_system_log_uuid_reused_with_another_target_or_group_is_not_confirmed() {
    let Some(a) = Aws::new() else { return };
    let okta = Provider::start();
    // Real changes: Bob added to the admins; the CEO added to another group.
    let (bob_uuid, ceo_uuid) = (
        "1b2c3d4e-b8ad-11f1-9c3d-2e1f0a9b8c7d",
        "2c3d4e5f-b8ad-11f1-9c3d-2e1f0a9b8c7d",
    );
    let ceo = "00uceo00000000000002";
    okta.publish(|r| {
        r.okta_logs.push(okta_log(
            bob_uuid,
            "00ubob00000000000001",
            "bob@acmerocket.example",
            PROD_ADMINS,
        ));
        r.okta_logs.push(okta_log(
            ceo_uuid,
            ceo,
            "ceo@acmerocket.example",
            "00gmarketing00000001",
        ));
    });
    // Forged deliveries reusing their uuids: the CEO added to the admins, twice over.
    for uuid in [bob_uuid, ceo_uuid] {
        ingested(
            &a,
            "okta",
            &okta_log(uuid, ceo, "ceo@acmerocket.example", PROD_ADMINS),
            Some(OKTA_HOOK),
        );
    }
    let deps = remediate_deps(&a, &["okta:*"], okta.idp());

    let r = remediate(&a, &deps, automatic(bob_uuid, "webhook"));
    assert_status(&r, Status::Refused);
    assert!(
        r.message
            .contains(&format!("its target id is 00ubob00000000000001, not {ceo}")),
        "{}",
        r.message
    );
    let r = remediate(&a, &deps, automatic(ceo_uuid, "webhook"));
    assert_status(&r, Status::Refused);
    assert!(
        r.message.contains(&format!(
            "its entitlement id is 00gmarketing00000001, not {PROD_ADMINS}"
        )),
        "{}",
        r.message
    );
    // Looked up, nothing removed, nothing held for later.
    assert_eq!(
        calls(&okta.take()),
        [pair("GET", "/api/v1/logs"), pair("GET", "/api/v1/logs")]
    );
    assert_eq!(sweep(&a, &deps).held, 0);
    assert!(has(&trail(&a, bob_uuid), "confirmation", "mismatch"));
    a.assert_least_privilege();
}

#[test]
fn an_entra_role_grant_confirmed_by_its_directory_audit_is_reverted() {
    let Some(a) = Aws::new() else { return };
    let graph = Provider::start();
    let id = "Directory_5b6c7d8e-0f1a-4b2c-9d3e-4f5a6b7c8d9e_ZK3Q1_402718833";
    let user = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
    let global_admin = "62e90394-69f5-4237-9190-012177145e10";
    let record = json!({
        "id": id, "category": "RoleManagement", "correlationId": "5b6c7d8e-0f1a-4b2c-9d3e-4f5a6b7c8d9e",
        "result": "success", "resultReason": "", "activityDisplayName": "Add member to role",
        "activityDateTime": "2026-11-03T08:59:12.5531904Z", "loggedByService": "Core Directory",
        "operationType": "Assign",
        "initiatedBy": {"user": {"id": "0e9d8c7b-6a5f-4e4d-8c3b-2a1f0e9d8c7b", "displayName": "Anna Schmidt",
            "userPrincipalName": "anna.schmidt@acmerocket.example", "ipAddress": "203.0.113.77"}, "app": null},
        "targetResources": [
            {"id": user, "displayName": "Megan Shaw", "type": "User",
             "userPrincipalName": "megan.shaw@acmerocket.example", "modifiedProperties": [
                {"displayName": "Role.ObjectID", "oldValue": null, "newValue": "\"b4f2a1c9-3e8d-4a6f-9b2c-1d0e9f8a7b6c\""},
                {"displayName": "Role.DisplayName", "oldValue": null, "newValue": "\"Global Administrator\""},
                {"displayName": "Role.TemplateId", "oldValue": null, "newValue": format!("\"{global_admin}\"")}
             ]},
            {"id": "b4f2a1c9-3e8d-4a6f-9b2c-1d0e9f8a7b6c", "displayName": null, "type": "Role", "modifiedProperties": []}
        ],
        "additionalDetails": [{"key": "User-Agent", "value": "Mozilla/5.0"}]
    });
    let events = ingested(&a, "entra", &record, None);
    assert_eq!(
        events[0].entitlement.as_ref().unwrap().id.as_deref(),
        Some(global_admin)
    );
    graph.publish(|r| {
        r.directory_audits.insert(id.to_owned(), record.clone());
    });
    let deps = remediate_deps(&a, &["entra:*"], graph.idp());

    let r = remediate(&a, &deps, automatic(id, "webhook"));
    assert_status(&r, Status::Executed);
    let asked = graph.take();
    assert_eq!(
        calls(&asked),
        [
            pair("GET", &format!("/v1.0/auditLogs/directoryAudits/{id}")),
            pair(
                "DELETE",
                &format!(
                    "/v1.0/directoryRoles(roleTemplateId='{global_admin}')/members/{user}/$ref"
                )
            ),
        ]
    );
    let lookup = asked
        .iter()
        .find(|s| s.path.contains("directoryAudits"))
        .unwrap();
    assert_eq!(lookup.auth, "Bearer graph-token");
    assert!(has(&trail(&a, id), "confirmation", "confirmed"));
    a.assert_least_privilege();
}

#[test]
fn a_google_group_grant_is_confirmed_from_the_reports_api_once_published() {
    let Some(a) = Aws::new() else { return };
    let google = Provider::start();
    let uq = "-3894513275129001";
    let group = "prod-admins@acmerocket.example";
    let member = "megan.shaw@acmerocket.example";
    let activity = json!({
        "kind": "admin#reports#activity",
        "id": {"time": "2026-11-03T08:58:30.118Z", "uniqueQualifier": uq, "applicationName": "admin", "customerId": "C03az79cb"},
        "actor": {"callerType": "USER", "email": "anna.schmidt@acmerocket.example", "profileId": "105250506097979753968"},
        "ipAddress": "203.0.113.77",
        "events": [{"type": "GROUP_SETTINGS", "name": "ADD_GROUP_MEMBER", "parameters": [
            {"name": "USER_EMAIL", "value": member}, {"name": "GROUP_EMAIL", "value": group}
        ]}]
    });
    ingested(&a, "gworkspace", &activity, None);
    let mut deps = remediate_deps(&a, &["gworkspace:*"], google.idp());

    // Not in the Reports API yet (Google publishes minutes late).
    let r = remediate(&a, &deps, automatic(uq, "webhook"));
    assert_status(&r, Status::AwaitingConfirmation);
    let asked = google.take();
    assert_eq!(
        calls(&asked),
        [pair(
            "GET",
            "/admin/reports/v1/activity/users/all/applications/admin"
        )]
    );
    // Listed around the event's time.
    assert_eq!(
        asked[0].param("startTime"),
        Some("2026-11-03T08:57:30.118Z")
    );
    assert_eq!(asked[0].param("endTime"), Some("2026-11-03T08:59:30.118Z"));
    assert_eq!(asked[0].auth, "Bearer google-token");

    google.publish(|r| r.admin_activities.push(activity.clone()));
    deps.clock = || t("2026-11-03T09:05:00Z");
    let s = sweep(&a, &deps);
    assert_eq!(s.reports.len(), 1, "{s:#?}");
    assert_status(&s.reports[0], Status::Executed);
    assert_eq!(
        calls(&google.take())[1],
        pair(
            "DELETE",
            &format!("/admin/directory/v1/groups/{group}/members/{member}")
        )
    );
    a.assert_least_privilege();
}

/// An AttachUserPolicy of AdministratorAccess to a user of its own, as EventBridge delivers it
/// (in the demo organisation's account, where the function's credentials act).
fn cloudtrail_grant(a: &Aws, iam: &aws_sdk_iam::Client) -> (String, String) {
    let user = unique("ct-user");
    let event_id = unique("ct-event");
    let mut envelope = invoke_sample("eventbridge-attach-admin-2am.json");
    envelope["detail"]["requestParameters"]["userName"] = json!(user);
    envelope["detail"]["eventID"] = json!(event_id);
    let events = ingested(a, "cloudtrail", &envelope, None);
    assert_eq!(events[0].id, event_id);
    give_admin(a, iam, &user);
    (event_id, user)
}

#[test]
fn a_cloudtrail_event_is_confirmed_by_its_eventbridge_delivery_alone() {
    let Some(a) = Aws::new() else { return };
    let provider = Provider::start();
    let iam = iam_in(&a, Some(DEMO_ACCOUNT));
    let deps = remediate_deps(&a, &["iam:DetachUserPolicy"], provider.idp());

    // Delivered by EventBridge from aws.iam: executed, no provider asked.
    let (event_id, user) = cloudtrail_grant(&a, &iam);
    let r = remediate(&a, &deps, automatic(&event_id, "eventbridge"));
    assert_status(&r, Status::Executed);
    assert!(attached_policies(&a, &iam, &user).is_empty());
    assert!(has(&trail(&a, &event_id), "confirmation", "confirmed"));

    // The same record posted to a webhook (or put on a bus by anyone): never confirmed.
    for delivery in ["webhook", "direct"] {
        let (event_id, user) = cloudtrail_grant(&a, &iam);
        let r = remediate(&a, &deps, automatic(&event_id, delivery));
        assert_status(&r, Status::Refused);
        assert!(r.message.contains("EventBridge"), "{}", r.message);
        assert_eq!(attached_policies(&a, &iam, &user), [ADMIN_POLICY]);
        assert!(has(&trail(&a, &event_id), "confirmation", "unconfirmable"));
    }
    assert!(
        provider.take().is_empty(),
        "no provider is asked about CloudTrail"
    );
    assert_eq!(sweep(&a, &deps).held, 0);
    a.assert_least_privilege();
}

#[test]
fn an_operator_request_is_executed_without_confirmation() {
    let Some(a) = Aws::new() else { return };
    let okta = Provider::start();
    let (uuid, user) = (
        "3d4e5f6a-b8ae-11f1-9c3d-2e1f0a9b8c7d",
        "00uoperator000000001",
    );
    // Not in the System Log: the automatic request is held.
    ingested(
        &a,
        "okta",
        &okta_log(uuid, user, "lee@acmerocket.example", PROD_ADMINS),
        Some(OKTA_HOOK),
    );
    let mut deps = remediate_deps(&a, &["okta:*"], okta.idp());
    assert_status(
        &remediate(&a, &deps, automatic(uuid, "webhook")),
        Status::AwaitingConfirmation,
    );
    assert_eq!(calls(&okta.take()), [pair("GET", "/api/v1/logs")]);

    // An operator who reviewed the change reverts it: executed at once, nothing looked up.
    let r = remediate(
        &a,
        &deps,
        json!({"event_id": uuid, "action": "revert", "dry_run": false,
               "requested_by": "secops", "automatic": false}),
    );
    assert_status(&r, Status::Executed);
    assert_eq!(calls(&okta.take()), [okta_delete(PROD_ADMINS, user)]);

    // The held request is then answered with that result, and nothing is called again.
    deps.clock = || t("2026-11-03T09:05:00Z");
    let s = sweep(&a, &deps);
    assert_eq!(s.reports.len(), 1, "{s:#?}");
    assert!(
        s.reports[0].earlier && s.reports[0].status == Status::Executed,
        "{s:#?}"
    );
    assert!(okta.take().is_empty());
    assert_eq!(sweep(&a, &deps).held, 0);
}

#[test]
fn ingest_says_how_an_automatically_remediated_event_arrived() {
    let Some(a) = Aws::new() else { return };
    seed_demo_baselines(&a);
    let (topic, _) = topic_with_queues(&a.m, &[]);
    let (deps, _) = ingest_deps(
        &a,
        &topic,
        &Calls::default(),
        WebhookSecrets::from_vars([("PROVGUARD_HMAC_CLOUDTRAIL", "ct-hook-key")]),
    );
    let requested = Requests::default();
    let deps = deps.with_auto_remediation(Arc::new(requested.clone()), Severity::High);
    let take = || std::mem::take(&mut *requested.0.lock().unwrap());
    let sample = invoke_sample("eventbridge-attach-admin-2am.json");
    let with_id = |id: &str| {
        let mut e = sample.clone();
        e["detail"]["eventID"] = json!(id);
        e
    };

    // From aws.iam through EventBridge.
    let s = summary(ingest(&a, &deps, sample.clone()));
    assert_eq!(s.alerts, 1, "{s:?}");
    let asked = take();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(
        (
            &asked[0]["automatic"],
            &asked[0]["delivery"],
            &asked[0]["dry_run"]
        ),
        (&json!(true), &json!("eventbridge"), &json!(false)),
        "{}",
        asked[0]
    );

    // The same kind of record put on a bus under another source: not AWS's own delivery.
    let mut forged = with_id("0f1e2d3c-4b5a-4697-8877-665544332211");
    forged["source"] = json!("acme.provisioning");
    let s = summary(ingest(&a, &deps, forged));
    assert_eq!(s.alerts, 1, "{s:?}");
    let asked = take();
    assert_eq!(
        (&asked[0]["automatic"], &asked[0]["delivery"]),
        (&json!(true), &json!("direct"))
    );

    // And posted to a webhook route by the holder of its key.
    let body = with_id("1a2b3c4d-5e6f-4708-9a1b-2c3d4e5f6a7b").to_string();
    let received = 1_793_700_000_000i64;
    let ts = (received / 1000).to_string();
    let sig = provguard_core::webhook::sign("ct-hook-key", &ts, body.as_bytes());
    let request = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/hook/cloudtrail", "rawQueryString": "",
        "headers": {"content-type": "application/json", "x-provguard-timestamp": ts, "x-provguard-signature": sig},
        "requestContext": {"http": {"method": "POST", "path": "/hook/cloudtrail"}, "timeEpoch": received},
        "body": body, "isBase64Encoded": false
    });
    let (status, answer) = http(ingest(&a, &deps, request));
    assert_eq!(
        (status, answer["alerts"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );
    let asked = take();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(
        (&asked[0]["automatic"], &asked[0]["delivery"]),
        (&json!(true), &json!("webhook"))
    );
    // The remediate function accepts what ingest sends.
    provguard_remediate::parse(asked[0].clone()).unwrap();
}

/// Which stored events the rebaseline would leave out (`scan_events`' flag), by id.
fn left_out(a: &Aws) -> HashMap<String, bool> {
    use provguard_core::store::EventStore as _;
    let mut out = HashMap::new();
    a.store()
        .scan_events(t("2026-01-01T00:00:00Z"), &mut |e, excluded| {
            out.insert(e.id, excluded);
        })
        .unwrap();
    out
}

#[test]
fn a_webhook_delivery_is_learned_only_once_its_provider_confirms_it() {
    use provguard_core::baseline::ScopeKey;
    use provguard_core::store::{BaselineStore as _, EventStore as _, VerdictStore as _};
    let Some(a) = Aws::new() else { return };
    let okta = Provider::start();
    let (topic, _) = topic_with_queues(&a.m, &[]);
    let secrets = WebhookSecrets::from_vars([("PROVGUARD_OKTA_SECRET", "okta-secret")]);
    let (ingest_deps, _) = ingest_deps(&a, &topic, &Calls::default(), secrets);
    let email = "megan.shaw@acmerocket.example";
    let real = okta_log(
        "5d4c3b2a-b8ac-11f1-9c3d-2e1f0a9b8c7d",
        "00ucq4HjHQaO0IefjDed",
        email,
        PROD_ADMINS,
    );
    let forged = okta_log(
        "6e5d4c3b-b8ac-11f1-9c3d-2e1f0a9b8c7d",
        "00ucq4HjHQaO0IefjDed",
        email,
        PROD_ADMINS,
    );
    let hook = json!({
        "eventType": "com.okta.event_hook", "eventTypeVersion": "1.0", "source": OKTA_HOOK,
        "data": {"events": [real, forged]}
    });
    let request = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/okta", "rawQueryString": "",
        "headers": {"content-type": "application/json", "authorization": "okta-secret"},
        "requestContext": {"http": {"method": "POST", "path": "/okta"}, "timeEpoch": t(RECEIVED).timestamp_millis()},
        "body": hook.to_string(), "isBase64Encoded": false
    });
    let (status, answer) = http(ingest(&a, &ingest_deps, request));
    assert_eq!(
        (status, answer["verdicts"].as_u64()),
        (200, Some(2)),
        "{answer}"
    );
    let (real_id, forged_id) = (
        real["uuid"].as_str().unwrap(),
        forged["uuid"].as_str().unwrap(),
    );
    let store = a.store();
    let verdict = |id: &str| store.verdict(id).unwrap().unwrap();
    for id in [real_id, forged_id] {
        let v = verdict(id);
        assert!(!v.alert, "routine: {v:?}");
        assert!(v.awaits_confirmation(), "{v:?}");
        assert!(
            v.context
                .iter()
                .any(|c| c.kind == "unconfirmed" && c.detail.contains("Okta System Log"))
        );
    }
    // Neither was learned: no baseline of the tenant exists, and a rebaseline leaves both out.
    let tenant = store.event(real_id).unwrap().unwrap().tenant;
    let key = ScopeKey::tenant(&tenant);
    assert!(
        !store
            .baselines(std::slice::from_ref(&key))
            .unwrap()
            .contains_key(&key)
    );
    let out = left_out(&a);
    assert_eq!((out[real_id], out[forged_id]), (true, true), "{out:?}");

    // Okta has published the real one; the sweep confirms it and releases it, and keeps waiting
    // for the other.
    okta.publish(|r| r.okta_logs.push(real.clone()));
    let mut deps = remediate_deps(&a, &[], okta.idp());
    deps.clock = || t("2026-11-03T09:05:00Z");
    let s = sweep(&a, &deps);
    let outcome = |s: &Sweep, id: &str| {
        s.releases
            .iter()
            .find(|r| r.event_id == id)
            .map(|r| r.outcome.clone())
    };
    assert_eq!(outcome(&s, real_id).as_deref(), Some("released"), "{s:#?}");
    assert_eq!(outcome(&s, forged_id).as_deref(), Some("waiting"), "{s:#?}");
    assert!(s.reports.is_empty(), "nothing is remediated: {s:#?}");
    let fb = verdict(real_id).feedback.unwrap();
    assert!(fb.note.unwrap().contains("confirmed at its provider"));
    let out = left_out(&a);
    assert_eq!((out[real_id], out[forged_id]), (false, true), "{out:?}");
    assert!(has(&trail(&a, real_id), "confirmation", "confirmed"));

    // Past the wait the other is dropped from the sweep and stays out of the baselines.
    deps.clock = || t("2026-11-03T09:31:00Z");
    let s = sweep(&a, &deps);
    assert_eq!(
        outcome(&s, forged_id).as_deref(),
        Some("kept_out"),
        "{s:#?}"
    );
    assert!(verdict(forged_id).feedback.is_none());
    assert!(left_out(&a)[forged_id]);
    deps.clock = || t("2026-11-03T09:36:00Z");
    assert!(sweep(&a, &deps).releases.is_empty());
    // No DELETE or any other write went to the provider: only System Log reads.
    assert!(
        okta.take()
            .iter()
            .all(|s| s.method == "GET" && s.path == "/api/v1/logs")
    );
    a.assert_least_privilege();
}
