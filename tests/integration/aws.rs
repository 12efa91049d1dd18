//! The AWS adapters against moto over the real wire protocol: `DynamoDbStore` (the shared store
//! conformance checks, idempotency, one read and one write per event, context imports, dead
//! letters, alerts and the paged event log) and `SnsSink` (SNS → SQS fan-out with a filter policy,
//! the message structure on the wire, no second publish of an alert).
//!
//! moto is reached at `AWS_ENDPOINT_URL` (default `http://127.0.0.1:5000`) with dummy credentials.
//! When it cannot be reached the tests fail if `PROVGUARD_REQUIRE_AWS=1` (as `scripts/test` sets
//! it) and are skipped otherwise. Each test makes its own table, topic and queues.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use provguard_core::alert::sns::SnsMessage;
use provguard_core::alert::{AlertSink, PublishOutcome, SnsSink};
use provguard_core::baseline::{Baseline, ScopeKey};
use provguard_core::context::{Approval, ChangeWindow, Person};
use provguard_core::detect::DetectConfig;
use provguard_core::event::Event;
use provguard_core::pipeline::EventOutcome;
use provguard_core::store::conformance;
use provguard_core::store::dynamodb::{TABLE_SCHEMA, create_table};
use provguard_core::store::{
    BaselineStore, Commit, CommitOutcome, ContextImport, ContextStore, DeadLetter, DeadLetterStore,
    DynamoDbStore, EventStore, Feedback, Ledger, VerdictStore,
};
use provguard_core::{Mode, Pipeline, Verdict};
use serde_json::{Value, json};

use crate::support::normalizer;

const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:5000";

/// A runtime and an SDK configuration pointing at moto.
pub(crate) struct Moto {
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) config: aws_config::SdkConfig,
}

/// moto, or `None` (skip) when it is not reachable and not required.
#[allow(clippy::print_stderr)]
pub(crate) fn moto() -> Option<Moto> {
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_owned());
    if let Err(why) = reachable(&endpoint) {
        assert!(
            std::env::var("PROVGUARD_REQUIRE_AWS").as_deref() != Ok("1"),
            "PROVGUARD_REQUIRE_AWS=1 but moto is not reachable at {endpoint} ({why}); start it with \
             `moto_server -H 127.0.0.1 -p 5000` (pip install 'moto[server,dynamodb,sns,sqs]') or run `bash scripts/test`"
        );
        eprintln!("skipping AWS tests: moto is not reachable at {endpoint} ({why})");
        return None;
    }
    Some(moto_at(&endpoint))
}

/// A runtime and an SDK configuration for the moto server at `endpoint`.
pub(crate) fn moto_at(endpoint: &str) -> Moto {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let config = rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "provguard-tests",
            ))
            .load(),
    );
    Moto { rt, config }
}

pub(crate) fn reachable(endpoint: &str) -> Result<(), String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or(rest);
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    let addr = host
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// A name no other test (or run against the same moto) uses.
pub(crate) fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    format!(
        "pg-{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Records the operation of every request sent (one entry per HTTP request, retries included).
#[derive(Debug, Clone, Default)]
pub(crate) struct Calls {
    ops: Arc<Mutex<Vec<String>>>,
    pub(crate) bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Calls {
    /// The operations recorded since the last call.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.ops.lock().unwrap())
    }

    pub(crate) fn clear(&self) {
        self.ops.lock().unwrap().clear();
        self.bodies.lock().unwrap().clear();
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "provguard-tests-calls"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = ctx.request();
        self.ops.lock().unwrap().push(operation(req));
        if let Some(b) = req.body().bytes() {
            self.bodies.lock().unwrap().push(b.to_vec());
        }
        Ok(())
    }
}

/// The operation a request calls: JSON protocols name it in a header, query protocols in the
/// form body.
pub(crate) fn operation(req: &aws_sdk_dynamodb::config::http::HttpRequest) -> String {
    match req.headers().get("x-amz-target") {
        Some(target) => target.rsplit('.').next().unwrap_or(target).to_owned(),
        None => req
            .body()
            .bytes()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|form| form.split('&').find_map(|kv| kv.strip_prefix("Action=")))
            .unwrap_or("?")
            .to_owned(),
    }
}

pub(crate) fn dynamodb(m: &Moto, calls: Option<&Calls>) -> aws_sdk_dynamodb::Client {
    let mut conf = aws_sdk_dynamodb::config::Builder::from(&m.config);
    if let Some(c) = calls {
        conf = conf.interceptor(c.clone());
    }
    aws_sdk_dynamodb::Client::from_conf(conf.build())
}

/// A new table and a store on it.
fn store(m: &Moto, calls: Option<&Calls>) -> DynamoDbStore {
    let client = dynamodb(m, calls);
    let name = unique("table");
    assert!(
        m.rt.block_on(create_table(&client, &name)).unwrap(),
        "a new table"
    );
    let s = DynamoDbStore::new(client, name, m.rt.handle().clone());
    if let Some(c) = calls {
        c.take();
    }
    s
}

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn verdict(e: &Event, alert: bool, severity: &str, reason: &str) -> Verdict {
    serde_json::from_value(json!({
        "event_id": e.id, "source": e.source, "tenant": e.tenant, "time": e.time,
        "action": e.action, "actor": e.actor.label(), "target": e.target.label(),
        "entitlement": "Super Administrator", "privilege": "admin",
        "score": if alert { 80 } else { 5 }, "p_value": 0.001, "severity": severity,
        "alert": alert,
        "reasons": if reason.is_empty() { json!([]) } else {
            json!([{"code": reason, "detail": format!("{reason} because of the numbers"), "p_value": 0.001}])
        },
        // An alert's context as the e-mail shows it (a non-alerting change with this note
        // would be part of an alerted burst, held out of baselines).
        "context": if alert {
            json!([{"kind": "burst", "detail": "part of the burst already alerted as event e0; 6 changes so far (p = 1.0e-6)", "effect": "lowered"}])
        } else {
            json!([])
        },
    }))
    .unwrap()
}

fn commit(s: &DynamoDbStore, e: &Event, v: Option<&Verdict>) -> CommitOutcome {
    s.commit(&Commit {
        event: e,
        verdict: v,
        baselines: vec![],
        ingested_at: t("2024-08-01T00:00:00Z"),
        actor_recent: &[],
        target_recent: &[],
        tenant_recent: &[],
    })
    .unwrap()
}

#[test]
fn dynamodb_store_meets_the_store_contract() {
    let Some(m) = moto() else { return };
    let s = store(&m, None);
    conformance::run(&s);
    // Creating the table again leaves it as it is.
    assert!(
        !m.rt
            .block_on(create_table(&dynamodb(&m, None), s.table()))
            .unwrap()
    );
}

#[test]
fn a_redelivered_event_writes_nothing_and_is_reported_as_a_duplicate() {
    let Some(m) = moto() else { return };
    let s = store(&m, None);
    // The documented calling convention: the store runs inside spawn_blocking.
    let checked = m.rt.block_on(m.rt.spawn_blocking(move || {
        let e = conformance::event(
            "d1",
            "ann@acme.example",
            "bob@acme.example",
            "2024-05-01T10:00:00Z",
        );
        let v = verdict(&e, true, "high", "volume_burst");
        let key = ScopeKey::tenant("acme");
        let mut b = Baseline::default();
        b.events.n = 1;
        let first = Commit {
            event: &e,
            verdict: Some(&v),
            baselines: vec![(&key, &b)],
            ingested_at: t("2024-05-01T10:00:01Z"),
            actor_recent: &[],
            target_recent: &[],
            tenant_recent: &[],
        };
        assert_eq!(s.commit(&first).unwrap(), CommitOutcome::Written);

        let quiet = verdict(&e, false, "info", "");
        let mut b2 = b.clone();
        b2.events.n = 99;
        let again = Commit {
            verdict: Some(&quiet),
            baselines: vec![(&key, &b2)],
            ingested_at: t("2024-05-02T00:00:00Z"),
            ..first.clone()
        };
        assert_eq!(s.commit(&again).unwrap(), CommitOutcome::Duplicate);

        // Nothing changed: verdict, baseline, recent lists, log, alerts.
        assert_eq!(s.verdict("d1").unwrap().unwrap(), v);
        assert_eq!(
            s.baselines(std::slice::from_ref(&key)).unwrap()[&key]
                .events
                .n,
            1
        );
        let since = t("2024-04-01T00:00:00Z");
        let until = t("2024-06-01T00:00:00Z");
        let recent = s
            .recent_by_actor("acme", "ann@acme.example", since, until, 10)
            .unwrap();
        assert_eq!(recent.len(), 1);
        assert!(recent[0].burst_alert);
        assert_eq!(s.scan_events(since, &mut |_, _| {}).unwrap(), 1);
        assert_eq!(s.alerts(None).unwrap(), vec![v]);
    }));
    checked.unwrap();
}

#[test]
fn the_pipeline_reads_once_and_writes_once_per_event() {
    let Some(m) = moto() else { return };
    let calls = Calls::default();
    let s = store(&m, Some(&calls));
    let mut p = Pipeline::new(s, normalizer(), DetectConfig::default()).unwrap();
    calls.take();
    let now = t("2024-05-02T00:00:00Z");
    let events = [
        conformance::event(
            "p1",
            "ann@acme.example",
            "bob@acme.example",
            "2024-05-01T10:00:00Z",
        ),
        conformance::event(
            "p2",
            "ann@acme.example",
            "cy@acme.example",
            "2024-05-01T10:05:00Z",
        ),
        conformance::event(
            "p3",
            "dan@acme.example",
            "bob@acme.example",
            "2024-05-01T10:06:00Z",
        ),
    ];
    for e in &events {
        let out = p.process_event(e, Mode::Score, now).unwrap();
        assert!(matches!(out, EventOutcome::Scored(_)), "{out:?}");
        assert_eq!(
            calls.take(),
            ["BatchGetItem", "TransactWriteItems"],
            "{}",
            e.id
        );
    }
    // A re-delivered event: the read says it exists, nothing is written.
    let out = p.process_event(&events[0], Mode::Score, now).unwrap();
    assert!(matches!(out, EventOutcome::Duplicate), "{out:?}");
    assert_eq!(calls.take(), ["BatchGetItem"]);

    // The recent lists the commits kept up to date.
    let s = p.store();
    let since = t("2024-04-01T00:00:00Z");
    let ids = |v: Vec<provguard_core::event::EventSummary>| {
        v.into_iter().map(|s| s.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(s
            .recent_by_actor("acme", "ann@acme.example", since, now, 10)
            .unwrap()),
        ["p2", "p1"]
    );
    assert_eq!(
        ids(s
            .recent_by_target("acme", "bob@acme.example", since, now, 10)
            .unwrap()),
        ["p3", "p1"]
    );
    assert!(s.baseline_count().unwrap() > 0, "events were learned");

    // Forty days on, the commit trims entries that left the look-back window from the list.
    let later = conformance::event(
        "p4",
        "ann@acme.example",
        "eve@acme.example",
        "2024-06-10T10:00:00Z",
    );
    let now = t("2024-06-11T00:00:00Z");
    calls.take();
    p.process_event(&later, Mode::Score, now).unwrap();
    assert_eq!(calls.take(), ["BatchGetItem", "TransactWriteItems"]);
    assert_eq!(
        ids(p
            .store()
            .recent_by_actor("acme", "ann@acme.example", since, now, 10)
            .unwrap()),
        ["p4"]
    );
}

fn person(email: &str, dept: &str) -> Person {
    serde_json::from_value(json!({"email": email, "department": dept})).unwrap()
}

#[test]
fn context_imports_replace_each_kind_whole() {
    let Some(m) = moto() else { return };
    let s = store(&m, None);
    // More than one BatchWriteItem's worth (25) of people.
    let people: Vec<Person> = (0..60)
        .map(|i| person(&format!("p{i:02}@acme.example"), "Sales"))
        .collect();
    let approvals: Vec<Approval> = (0..3)
        .map(|i| {
            serde_json::from_value(json!({"ticket": format!("CHG-{i}"), "target": "bob@acme.example", "entitlement": "admins"}))
                .unwrap()
        })
        .collect();
    let windows: Vec<ChangeWindow> = vec![
        serde_json::from_value(
            json!({"id": "w1", "start": "2024-05-01T00:00:00Z", "end": "2024-05-02T00:00:00Z"}),
        )
        .unwrap(),
    ];
    s.import_context(&ContextImport {
        people: Some(people.clone()),
        approvals: Some(approvals.clone()),
        change_windows: Some(windows.clone()),
        domains: Some(vec!["Acme.example".into(), "acme.io".into()]),
    })
    .unwrap();
    let ctx = s.context().unwrap();
    assert_eq!(ctx.people, people);
    assert_eq!(ctx.approvals, approvals);
    assert_eq!(ctx.change_windows, windows);
    assert_eq!(ctx.domains, ["acme.example", "acme.io"]);

    // A new directory replaces the old one whole; other kinds stay.
    let fewer = vec![
        person("zed@acme.example", "IT"),
        person("amy@acme.example", "HR"),
    ];
    s.import_context(&ContextImport {
        people: Some(fewer),
        ..Default::default()
    })
    .unwrap();
    let ctx = s.context().unwrap();
    assert_eq!(
        ctx.people
            .iter()
            .map(|p| p.email.as_str())
            .collect::<Vec<_>>(),
        ["amy@acme.example", "zed@acme.example"]
    );
    assert_eq!(ctx.approvals, approvals);
    assert_eq!(
        ctx.person(["ZED@acme.example"])
            .unwrap()
            .department
            .as_deref(),
        Some("IT")
    );
    // The old generation is gone from the table, not just hidden.
    let left =
        m.rt.block_on(
            dynamodb(&m, None)
                .query()
                .table_name(s.table())
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", AttributeValue::S("CONTEXT#people".into()))
                .send(),
        )
        .unwrap();
    assert_eq!(left.count, 2);
    // An empty import empties the kind.
    s.import_context(&ContextImport {
        approvals: Some(vec![]),
        ..Default::default()
    })
    .unwrap();
    assert!(s.context().unwrap().approvals.is_empty());
}

#[test]
fn dead_letters_are_kept_once_in_order_and_oversized_ones_are_cut() {
    let Some(m) = moto() else { return };
    let s = store(&m, None);
    let dl = |at: &str, raw: String| DeadLetter {
        received_at: t(at),
        source: Some("okta".into()),
        reason: "malformed JSON".into(),
        raw,
    };
    let a = dl("2024-05-01T10:00:00.123456789Z", "{oops".into());
    let b = dl("2024-05-01T11:00:00Z", "{also bad".into());
    s.dead_letter(&b).unwrap();
    s.dead_letter(&a).unwrap();
    s.dead_letter(&b).unwrap();
    assert_eq!(s.dead_letters().unwrap(), vec![a.clone(), b.clone()]);
    let huge = dl("2024-05-01T12:00:00Z", "x".repeat(500_000));
    s.dead_letter(&huge).unwrap();
    let all = s.dead_letters().unwrap();
    assert_eq!(all.len(), 3);
    assert!(all[2].raw.len() < 400_000);
    assert!(
        all[2].reason.contains("cut from 500000"),
        "{}",
        all[2].reason
    );
    s.count_dropped("cloudtrail", 5).unwrap();
    s.count_dropped("okta", 1).unwrap();
    s.count_dropped("cloudtrail", 2).unwrap();
    assert_eq!(
        s.dropped().unwrap(),
        [("cloudtrail".to_owned(), 7), ("okta".to_owned(), 1)]
    );
}

#[test]
fn alerts_and_the_event_log_read_in_time_order_across_days_and_months() {
    let Some(m) = moto() else { return };
    let s = store(&m, None);
    let at = [
        ("l1", "2024-05-31T23:59:59Z", true),
        ("l2", "2024-06-01T00:00:00Z", false),
        ("l3", "2024-06-01T00:00:00Z", true),
        ("l4", "2024-06-02T08:00:00Z", false),
        ("l5", "2024-07-01T00:00:00.5Z", true),
    ];
    // Committed out of order.
    for (id, time, alert) in at.iter().rev() {
        let e = conformance::event(id, "ann@acme.example", "bob@acme.example", time);
        let v = verdict(
            &e,
            *alert,
            if *alert { "high" } else { "info" },
            "off_hours",
        );
        assert_eq!(commit(&s, &e, Some(&v)), CommitOutcome::Written);
    }
    let ids = |vs: Vec<Verdict>| vs.into_iter().map(|v| v.event_id).collect::<Vec<_>>();
    assert_eq!(ids(s.alerts(None).unwrap()), ["l1", "l3", "l5"]);
    assert_eq!(
        ids(s.alerts(Some(t("2024-06-01T00:00:00Z"))).unwrap()),
        ["l3", "l5"]
    );

    // The paged log resumes where it stopped, in (time, id) order.
    let since = t("2024-05-01T00:00:00Z");
    let mut seen = Vec::new();
    let mut key: Option<String> = None;
    let mut pages = 0;
    loop {
        let (events, next) = s.scan_events_page(since, key.as_deref(), 2).unwrap();
        pages += 1;
        seen.extend(events.into_iter().map(|(e, x)| (e.id, x)));
        match next {
            Some(k) => key = Some(k),
            None => break,
        }
    }
    assert!(pages >= 3, "{pages} pages");
    let expect = |l1: bool| {
        vec![
            ("l1".to_owned(), l1),
            ("l2".to_owned(), false),
            ("l3".to_owned(), true),
            ("l4".to_owned(), false),
            ("l5".to_owned(), true),
        ]
    };
    assert_eq!(seen, expect(true));
    let (later, _) = s
        .scan_events_page(t("2024-06-01T00:00:00Z"), None, 10)
        .unwrap();
    assert_eq!(later.len(), 4);

    // Feedback reaches the verdict, the alert list and the log.
    assert!(
        s.set_feedback(
            "l1",
            Feedback::Benign,
            Some("planned"),
            t("2024-08-01T00:00:00Z")
        )
        .unwrap()
    );
    assert!(
        !s.set_feedback("nope", Feedback::Benign, None, t("2024-08-01T00:00:00Z"))
            .unwrap()
    );
    let first = &s.alerts(None).unwrap()[0];
    assert_eq!(
        first.feedback.as_ref().unwrap().note.as_deref(),
        Some("planned")
    );
    let mut all = Vec::new();
    s.scan_events(since, &mut |e, x| all.push((e.id, x)))
        .unwrap();
    assert_eq!(all, expect(false));
}

// ---------------------------------------------------------------------------------------------
// SNS

/// Form or JSON request bodies: the `Message` parameter of a Publish.
pub(crate) fn published_message(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    if text.starts_with('{') {
        let v: Value = serde_json::from_str(text).ok()?;
        return v["Message"].as_str().map(str::to_owned);
    }
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    text.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "Message")
        .map(|(_, v)| decode(v))
}

/// A topic with SQS subscribers (`None`: no filter policy) receiving the SNS envelope, as a
/// deployment wires them.
pub(crate) fn topic_with_queues(
    m: &Moto,
    queues: &[(&'static str, Option<&str>)],
) -> (String, HashMap<&'static str, String>) {
    let sns = aws_sdk_sns::Client::new(&m.config);
    let sqs = aws_sdk_sqs::Client::new(&m.config);
    let topic =
        m.rt.block_on(sns.create_topic().name(unique("alerts")).send())
            .unwrap()
            .topic_arn
            .unwrap();
    let mut urls = HashMap::new();
    for (name, filter) in queues {
        let url =
            m.rt.block_on(sqs.create_queue().queue_name(unique(name)).send())
                .unwrap()
                .queue_url
                .unwrap();
        let arn =
            m.rt.block_on(
                sqs.get_queue_attributes()
                    .queue_url(&url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                    .send(),
            )
            .unwrap()
            .attributes
            .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
                .clone();
        let mut sub = sns
            .subscribe()
            .topic_arn(&topic)
            .protocol("sqs")
            .endpoint(arn)
            .attributes("RawMessageDelivery", "false");
        if let Some(f) = filter {
            sub = sub.attributes("FilterPolicy", *f);
        }
        m.rt.block_on(sub.send()).unwrap();
        urls.insert(*name, url);
    }
    (topic, urls)
}

/// Up to `want` notifications, long-polling at most `polls` times (one second each).
pub(crate) fn receive(
    m: &Moto,
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    want: usize,
    polls: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..polls {
        if out.len() >= want {
            break;
        }
        let got =
            m.rt.block_on(
                sqs.receive_message()
                    .queue_url(url)
                    .max_number_of_messages(10)
                    .wait_time_seconds(1)
                    .send(),
            )
            .unwrap();
        for msg in got.messages.unwrap_or_default() {
            out.push(serde_json::from_str(msg.body.as_deref().unwrap()).unwrap());
        }
    }
    out
}

#[test]
fn sns_fans_out_by_severity_and_publishes_each_alert_once() {
    let Some(m) = moto() else { return };
    let guard = store(&m, None);
    let calls = Calls::default();
    let sns = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(&m.config)
            .interceptor(calls.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::new(&m.config);
    let (topic, queues) = topic_with_queues(
        &m,
        &[
            ("all", None),
            ("paging", Some(r#"{"severity":["high","critical"]}"#)),
        ],
    );

    let sink = SnsSink::new(sns, topic, m.rt.handle().clone(), &guard);
    let hi_event = conformance::event(
        "s-high",
        "ann@acme.example",
        "bob@acme.example",
        "2024-05-01T02:00:00Z",
    );
    let lo_event = conformance::event(
        "s-low",
        "ann@acme.example",
        "cy@acme.example",
        "2024-05-01T03:00:00Z",
    );
    let high = verdict(&hi_event, true, "high", "escalation_chain");
    let low = verdict(&lo_event, true, "low", "off_hours");
    let quiet = verdict(&lo_event, false, "info", "");
    calls.clear();
    assert_eq!(sink.publish(&high).unwrap(), PublishOutcome::Published);
    assert_eq!(sink.publish(&low).unwrap(), PublishOutcome::Published);
    assert_eq!(sink.publish(&quiet).unwrap(), PublishOutcome::NotAlert);
    assert_eq!(calls.take().len(), 2, "one Publish per alert");

    // The high alert reaches both queues; the low one only the unfiltered queue.
    let all = receive(&m, &sqs, &queues["all"], 2, 5);
    let mut paging = receive(&m, &sqs, &queues["paging"], 1, 5);
    paging.extend(receive(&m, &sqs, &queues["paging"], 1, 1));
    let ids = |msgs: &[Value]| {
        let mut v: Vec<String> = msgs
            .iter()
            .map(|n| {
                let back: Verdict = serde_json::from_str(n["Message"].as_str().unwrap()).unwrap();
                back.event_id
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&all), ["s-high", "s-low"]);
    assert_eq!(ids(&paging), ["s-high"]);
    // The SQS body is the SNS envelope carrying the full verdict and the filterable attributes.
    let n = &paging[0];
    assert_eq!(n["Type"], "Notification");
    let back: Verdict = serde_json::from_str(n["Message"].as_str().unwrap()).unwrap();
    assert_eq!(back, high);
    assert_eq!(n["MessageAttributes"]["severity"]["Value"], "high");
    assert_eq!(
        n["MessageAttributes"]["reason"]["Value"],
        "escalation_chain"
    );
    assert_eq!(n["MessageAttributes"]["source"]["Value"], "okta");

    // What went over the wire has every protocol's body.
    let bodies = std::mem::take(&mut *calls.bodies.lock().unwrap());
    let sent = published_message(&bodies[0]).expect("a Publish with a Message");
    assert_eq!(sent, SnsMessage::for_verdict(&high).unwrap().message);
    let doc: Value = serde_json::from_str(&sent).unwrap();
    for key in ["default", "sqs", "lambda"] {
        let v: Verdict = serde_json::from_str(doc[key].as_str().unwrap()).unwrap();
        assert_eq!(v, high, "{key}");
    }
    let email = doc["email"].as_str().unwrap();
    assert!(
        email.contains("escalation_chain because of the numbers"),
        "{email}"
    );
    assert!(email.contains("Part of a burst: 6 changes"), "{email}");
    assert!(email.contains("provguard explain s-high"), "{email}");
    let chat: Value = serde_json::from_str(doc["https"].as_str().unwrap()).unwrap();
    assert_eq!(chat["version"], "1.0");
    assert_eq!(chat["source"], "custom");
    assert_eq!(chat["content"]["textType"], "client-markdown");

    // A retried invocation does not publish the same alert again.
    assert_eq!(
        sink.publish(&high).unwrap(),
        PublishOutcome::AlreadyPublished
    );
    assert!(calls.take().is_empty(), "no Publish call");
    assert!(receive(&m, &sqs, &queues["all"], 1, 1).is_empty());
}

#[test]
fn publish_claims_expire_in_a_week_and_stale_ones_are_taken_over() {
    use provguard_core::alert::{Claim, PublishGuard};
    let Some(m) = moto() else { return };
    let s = store(&m, None);
    assert_eq!(s.claim("c1").unwrap(), Claim::Granted);
    assert_eq!(s.claim("c1").unwrap(), Claim::InFlight);
    s.release("c1").unwrap();
    assert_eq!(s.claim("c1").unwrap(), Claim::Granted);
    s.confirm("c1").unwrap();
    assert_eq!(s.claim("c1").unwrap(), Claim::Published);
    s.release("c1").unwrap();
    assert_eq!(
        s.claim("c1").unwrap(),
        Claim::Published,
        "a sent claim is never released"
    );

    let client = dynamodb(&m, None);
    let item =
        m.rt.block_on(
            client
                .get_item()
                .table_name(s.table())
                .key("pk", AttributeValue::S("ALERT#c1".into()))
                .key("sk", AttributeValue::S("PUBLISH".into()))
                .send(),
        )
        .unwrap()
        .item
        .unwrap();
    let ttl: i64 = item["ttl"].as_n().unwrap().parse().unwrap();
    let week = Utc::now().timestamp() + 7 * 86_400;
    assert!(
        (ttl - week).abs() < 120,
        "ttl {ttl}, a week from now {week}"
    );

    // A claim whose holder died ten minutes ago is taken over.
    let stale = Utc::now().timestamp() - 600;
    m.rt.block_on(
        client
            .put_item()
            .table_name(s.table())
            .item("pk", AttributeValue::S("ALERT#c2".into()))
            .item("sk", AttributeValue::S("PUBLISH".into()))
            .item("state", AttributeValue::S("pending".into()))
            .item("at", AttributeValue::N(stale.to_string()))
            .send(),
    )
    .unwrap();
    assert_eq!(s.claim("c2").unwrap(), Claim::Granted);
}

/// `provguard … --dynamodb-table` runs the same pipeline as `--state`: the demo's context, part of
/// its CloudTrail history learned (moto copies the whole table on every transaction, so a long
/// history would only be slow), its replay day scored — the same verdicts and alerts on the table
/// as in a SQLite file; explain and feedback work on it too.
#[test]
fn the_cli_on_a_dynamodb_table_gives_what_it_gives_on_a_state_file() {
    let Some(m) = moto() else { return };
    let client = dynamodb(&m, None);
    let table = unique("cli");
    assert!(m.rt.block_on(create_table(&client, &table)).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_owned());
    let demo = crate::support::root().join("samples/demo");
    let history = dir.path().join("history.json");
    {
        let mut gz = flate2::read::GzDecoder::new(
            std::fs::File::open(demo.join("history/cloudtrail.json.gz")).unwrap(),
        );
        let mut log: Value = serde_json::from_reader(&mut gz).unwrap();
        let records = log["Records"].as_array_mut().unwrap();
        let keep = records.len().saturating_sub(120);
        records.drain(..keep);
        std::fs::write(&history, serde_json::to_vec(&log).unwrap()).unwrap();
    }
    let history = history.to_str().unwrap();
    // `args` with the target's flags after the subcommand's words.
    let run = |words: &[&str], target: &[&str], args: &[&str]| -> String {
        let out = crate::support::provguard()
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .current_dir(&demo)
            .args(words)
            .args(target)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{words:?} {target:?} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let on_table = ["--dynamodb-table", table.as_str()];
    let on_file = ["--state", db.to_str().unwrap()];
    let mut outputs = Vec::new();
    for target in [&on_file[..], &on_table[..]] {
        run(
            &["context", "import"],
            target,
            &[
                "--directory",
                "context/directory.csv",
                "--approvals",
                "context/approvals.jsonl",
                "--change-windows",
                "context/change_windows.jsonl",
                "--domains",
                "context/domains.txt",
            ],
        );
        run(&["learn"], target, &[history]);
        let verdicts = run(
            &["ingest"],
            target,
            &["--now", "2026-11-03T12:00:00Z", "replay/day.jsonl"],
        );
        let alerts = run(&["alerts"], target, &[]);
        outputs.push((verdicts, alerts));
    }
    // What each learned: the same baselines, line by line, from either store.
    let exported: Vec<Vec<Value>> = [&on_file[..], &on_table[..]]
        .iter()
        .map(|target| {
            run(&["baselines", "export"], target, &[])
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        })
        .collect();
    assert!(exported[0].len() > 20, "{}", exported[0].len());
    assert_eq!(exported[0].len(), exported[1].len());
    for (a, b) in exported[0].iter().zip(&exported[1]) {
        assert_eq!(a["scope"], b["scope"]);
        assert!(same_numbers(a, b, 1e-9), "{a}\n{b}");
    }
    let tenant: Vec<Value> = run(
        &["baselines", "export"],
        &on_table,
        &["--scope", "111122223333|tenant|"],
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(tenant.len(), 1, "{tenant:?}");
    let (file, on_dynamodb) = (&outputs[0], &outputs[1]);
    assert!(file.0.lines().count() > 50, "{}", file.0);
    assert_eq!(
        file.0, on_dynamodb.0,
        "verdicts differ between the file and the table"
    );
    assert!(file.1.lines().count() > 0, "the replay day alerts");
    assert_eq!(
        file.1, on_dynamodb.1,
        "alerts differ between the file and the table"
    );

    let first: Value = serde_json::from_str(on_dynamodb.1.lines().next().unwrap()).unwrap();
    let id = first["event_id"].as_str().unwrap();
    let explained = run(&["explain"], &on_table, &[id]);
    assert!(explained.contains(id), "{explained}");
    run(
        &["feedback"],
        &on_table,
        &[id, "benign", "--note", "known change"],
    );
    let after = run(&["explain"], &on_table, &[id, "--json"]);
    let v: Value = serde_json::from_str(&after).unwrap();
    assert_eq!(v["feedback"]["label"], "benign", "{v}");

    // The audit trail: sealed on demand, then verified like the file's.
    // `audit seal` prints the head alone on standard output: a copy outside the table, which
    // `audit verify --head` checks the table against.
    let printed = run(&["audit", "seal"], &on_table, &[]);
    let head = printed.trim();
    assert!(
        head.parse::<provguard_core::audit::Head>().is_ok(),
        "{printed:?}"
    );
    let checked: Value = serde_json::from_str(&run(
        &["audit", "verify"],
        &on_table,
        &["--head", head, "--json"],
    ))
    .unwrap();
    assert_eq!(checked["problems"], json!([]), "{checked}");
    let verified = format!(
        "{}:{}",
        checked["head"]["seq"],
        checked["head"]["hash"].as_str().unwrap_or_default()
    );
    assert_eq!(verified, head, "{checked}");
    for target in [&on_file[..], &on_table[..]] {
        let report: Value =
            serde_json::from_str(&run(&["audit", "verify"], target, &["--json"])).unwrap();
        assert_eq!(report["problems"], json!([]), "{report}");
        assert_eq!(report["pending"], 0, "{report}");
        assert_eq!(
            report["verdicts"].as_u64(),
            Some(file.0.lines().count() as u64),
            "{report}"
        );
    }
}

/// Two JSON values alike but for numbers within `rel` of each other (floating-point sums made
/// in another order).
pub(crate) fn same_numbers(a: &Value, b: &Value, rel: f64) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= rel * x.abs().max(y.abs()).max(f64::MIN_POSITIVE)
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_numbers(x, y, rel))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_numbers(v, w, rel)))
        }
        _ => a == b,
    }
}

#[test]
fn the_audit_trail_is_sealed_into_a_hash_chain_and_tampering_is_found() {
    let Some(m) = moto() else { return };
    let client = dynamodb(&m, None);
    let table = unique("table");
    assert!(m.rt.block_on(create_table(&client, &table)).unwrap());
    let s = DynamoDbStore::new(client.clone(), table.clone(), m.rt.handle().clone());
    // 60 verdicts (more than one sealing transaction holds) and feedback on one.
    for i in 0..60 {
        let e = conformance::event(
            &format!("a{i}"),
            "ann@acme.example",
            &format!("u{i}@acme.example"),
            &format!("2024-05-01T10:{:02}:00Z", i % 60),
        );
        let alert = i % 7 == 0;
        let v = verdict(&e, alert, if alert { "high" } else { "info" }, "");
        assert_eq!(commit(&s, &e, Some(&v)), CommitOutcome::Written);
    }
    let at = t("2024-08-02T00:00:00Z");
    assert!(
        s.set_feedback("a0", Feedback::Benign, Some("planned"), at)
            .unwrap()
    );
    let rep = s.verify_audit(None).unwrap();
    assert!(rep.intact(), "{:?}", rep.problems);
    assert_eq!((rep.records, rep.pending), (0, 61), "{rep:?}");

    let sealed = s.seal_audit(usize::MAX).unwrap();
    assert_eq!(
        (sealed.sealed, sealed.head_seq, sealed.more),
        (61, 61, false)
    );
    let again = s.seal_audit(usize::MAX).unwrap();
    assert_eq!(again.sealed, 0, "nothing twice");
    // Every seal names the head, sealing or not: what hosts write outside the table.
    assert_eq!(again.head, sealed.head);
    let rep = s.verify_audit(None).unwrap();
    assert_eq!(rep.head, sealed.head);
    assert!(rep.intact(), "{:?}", rep.problems);
    assert_eq!(
        (rep.records, rep.verdicts, rep.feedback, rep.pending),
        (61, 60, 1, 0)
    );
    let head = rep.head.clone().unwrap();

    // Feedback after a seal is pending until the next, not a problem.
    assert!(s.set_feedback("a7", Feedback::Malicious, None, at).unwrap());
    let rep = s.verify_audit(Some(head.clone())).unwrap();
    assert!(rep.intact() && rep.pending == 1, "{rep:?}");
    s.seal_audit(usize::MAX).unwrap();
    let rep = s.verify_audit(Some(head)).unwrap();
    assert!(
        rep.intact() && rep.pending == 0 && rep.records == 62,
        "{rep:?}"
    );

    // Behind provguard's back: a verdict edited, feedback rewritten, a sealed record deleted,
    // a verdict deleted.
    let set = |pk: &str, attr: &str, value: &str| {
        m.rt.block_on(
            client
                .update_item()
                .table_name(&table)
                .key("pk", AttributeValue::S(pk.into()))
                .key("sk", AttributeValue::S("VERDICT".into()))
                .update_expression("SET #a = :v")
                .expression_attribute_names("#a", attr)
                .expression_attribute_values(":v", AttributeValue::S(value.into()))
                .send(),
        )
        .unwrap();
    };
    let delete = |pk: &str, sk: &str| {
        m.rt.block_on(
            client
                .delete_item()
                .table_name(&table)
                .key("pk", AttributeValue::S(pk.into()))
                .key("sk", AttributeValue::S(sk.into()))
                .send(),
        )
        .unwrap();
    };
    let v3 = s.verdict("a3").unwrap().unwrap();
    let mut quiet = v3.clone();
    quiet.score = 0;
    set("EVENT#a3", "b", &serde_json::to_string(&quiet).unwrap());
    set(
        "EVENT#a0",
        "fb",
        r#"{"label":"malicious","at":"2024-08-02T00:00:00Z"}"#,
    );
    delete("AUDIT", "R#000000000010");
    delete("EVENT#a5", "VERDICT");
    let rep = s.verify_audit(None).unwrap();
    let p = rep.problems.join("\n");
    for found in [
        "the verdict for event a3 was changed after it was recorded",
        "feedback on event a0 differs from its newest record",
        "record 10 is missing",
        "the verdict for event a5 is in the audit trail but was removed from the state",
    ] {
        assert!(p.contains(found), "{found:?} not in:\n{p}");
    }
}

#[test]
fn a_table_a_newer_provguard_wrote_is_refused_and_an_unversioned_one_is_stamped() {
    use provguard_core::store::StoreError;
    let Some(m) = moto() else { return };
    let client = dynamodb(&m, None);
    let table = unique("schema");
    assert!(m.rt.block_on(create_table(&client, &table)).unwrap());
    let s = DynamoDbStore::new(client.clone(), table.clone(), m.rt.handle().clone());
    // Written before versions were kept: data, and no schema item.
    let e = conformance::event(
        "s1",
        "ann@acme.example",
        "bob@acme.example",
        "2024-08-01T00:00:00Z",
    );
    commit(&s, &e, None);
    let version = || {
        m.rt.block_on(
            client
                .get_item()
                .table_name(&table)
                .key("pk", AttributeValue::S("META".into()))
                .key("sk", AttributeValue::S("SCHEMA".into()))
                .send(),
        )
        .unwrap()
        .item
        .and_then(|i| i.get("version").and_then(|v| v.as_n().ok().cloned()))
    };
    assert_eq!(version(), None);
    assert_eq!(s.check_schema().unwrap(), TABLE_SCHEMA);
    assert_eq!(version(), Some(TABLE_SCHEMA.to_string()));
    assert!(s.has_event("s1").unwrap(), "the data is read as it was");
    assert_eq!(s.check_schema().unwrap(), TABLE_SCHEMA, "stamped once");

    // A newer provguard moved the table on: this build refuses it, the store and the CLI alike.
    m.rt.block_on(
        client
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("META".into()))
            .item("sk", AttributeValue::S("SCHEMA".into()))
            .item("version", AttributeValue::N((TABLE_SCHEMA + 1).to_string()))
            .send(),
    )
    .unwrap();
    let err = s.check_schema().unwrap_err();
    assert!(
        matches!(err, StoreError::TableSchema { found, .. } if found == TABLE_SCHEMA + 1),
        "{err}"
    );
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| DEFAULT_ENDPOINT.to_owned());
    let out = crate::support::provguard()
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .args(["alerts", "--dynamodb-table", table.as_str()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("written by a newer provguard") && stderr.contains("upgrade"),
        "{stderr}"
    );
}
