//! Faults between provguard and AWS, injected by a local HTTP proxy in front of moto: every
//! request is forwarded unless a rule picks it, and a picked one is answered as the service answers
//! when it throttles (`ThrottlingException`, SNS `Throttling`) or fails (HTTP 500). The clients are
//! built as the functions build theirs (the SDK's default retry policy), so what is tested is the
//! retry with backoff the functions get, and what provguard does when retries run out.
//!
//! Skipped like the other AWS tests when moto is not reachable.

use std::sync::{Arc, Mutex};

use lambda_runtime::{Context, LambdaEvent};
use provguard_core::alert::SnsSink;
use provguard_core::detect::DetectConfig;
use provguard_core::normalize::{Normalized, RawRecord, split_input};
use provguard_core::store::memory::MemoryStore;
use provguard_core::store::{DynamoDbStore, EventStore, VerdictStore};
use provguard_core::webhook::WebhookSecrets;
use provguard_core::{Mode, Pipeline, Verdict};
use provguard_ingest::{Deps as IngestDeps, Emf, IngestEvent, IngestResponse};

use crate::aws::{Moto, receive, t, topic_with_queues};
use crate::lambda::{
    ADMIN_AT_2AM, Aws, HISTORY_END, demo_cloudtrail, invoke_sample, seed_demo_baselines,
};
use crate::support::normalizer;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The service's throttling error (HTTP 400).
    Throttle,
    /// HTTP 500.
    ServerError,
}

/// One request the proxy saw: its operation, the SDK's attempt number, the fault injected.
type Seen = (String, u32, Option<Fault>);
type Rule = Box<dyn FnMut(&str, u32) -> Option<Fault> + Send>;

/// A forwarding proxy to moto on 127.0.0.1 that injects faults; stops when dropped.
pub(crate) struct FaultProxy {
    url: String,
    server: Arc<tiny_http::Server>,
    seen: Arc<Mutex<Vec<Seen>>>,
    rule: Arc<Mutex<Rule>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy to the endpoint `m` uses, injecting nothing until [`FaultProxy::set_rule`].
    pub(crate) fn start(m: &Moto) -> FaultProxy {
        let upstream = m
            .config
            .endpoint_url()
            .expect("the tests' SDK configuration names moto's endpoint")
            .trim_end_matches('/')
            .to_owned();
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
        let url = format!("http://{}", server.server_addr().to_ip().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let rule: Arc<Mutex<Rule>> = Arc::new(Mutex::new(Box::new(|_: &str, _: u32| None)));
        let thread = {
            let (server, seen, rule) = (Arc::clone(&server), Arc::clone(&seen), Arc::clone(&rule));
            std::thread::spawn(move || {
                let agent = ureq::Agent::config_builder()
                    .timeout_global(Some(std::time::Duration::from_secs(30)))
                    .http_status_as_error(false)
                    .build()
                    .new_agent();
                for req in server.incoming_requests() {
                    serve(&agent, &upstream, req, &seen, &rule);
                }
            })
        };
        FaultProxy {
            url,
            server,
            seen,
            rule,
            thread: Some(thread),
        }
    }

    /// From now on, `rule(operation, attempt)` picks the requests to fail.
    pub(crate) fn set_rule(&self, rule: impl FnMut(&str, u32) -> Option<Fault> + Send + 'static) {
        *self.rule.lock().unwrap() = Box::new(rule);
    }

    /// The requests seen since the last call.
    pub(crate) fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    /// The tests' SDK configuration with the proxy as the endpoint.
    pub(crate) fn sdk_config(&self, m: &Moto) -> aws_config::SdkConfig {
        m.config.to_builder().endpoint_url(&self.url).build()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header<'a>(req: &'a tiny_http::Request, name: &str) -> Option<&'a str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn serve(
    agent: &ureq::Agent,
    upstream: &str,
    mut req: tiny_http::Request,
    seen: &Mutex<Vec<Seen>>,
    rule: &Mutex<Rule>,
) {
    let mut body = Vec::new();
    if req.as_reader().read_to_end(&mut body).is_err() {
        return;
    }
    let json_protocol = header(&req, "x-amz-target").is_some();
    let op = match header(&req, "x-amz-target") {
        Some(target) => target.rsplit('.').next().unwrap_or(target).to_owned(),
        None => std::str::from_utf8(&body)
            .ok()
            .and_then(|form| form.split('&').find_map(|kv| kv.strip_prefix("Action=")))
            .unwrap_or("?")
            .to_owned(),
    };
    // "attempt=2; max=3"
    let attempt = header(&req, "amz-sdk-request")
        .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("attempt=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    let fault = (rule.lock().unwrap())(&op, attempt);
    seen.lock().unwrap().push((op, attempt, fault));
    if let Some(fault) = fault {
        let (status, content_type, text) = match (fault, json_protocol) {
            (Fault::Throttle, true) => (
                400,
                "application/x-amz-json-1.0",
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
            ),
            (Fault::ServerError, true) => (
                500,
                "application/x-amz-json-1.0",
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#,
            ),
            (Fault::Throttle, false) => (
                400,
                "text/xml",
                r#"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>fault</RequestId></ErrorResponse>"#,
            ),
            (Fault::ServerError, false) => (
                500,
                "text/xml",
                r#"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>Internal failure</Message></Error><RequestId>fault</RequestId></ErrorResponse>"#,
            ),
        };
        let resp = tiny_http::Response::from_string(text)
            .with_status_code(status)
            .with_header(tiny_http::Header::from_bytes("Content-Type", content_type).unwrap());
        let _ = req.respond(resp);
        return;
    }
    let mut out = ureq::http::Request::builder()
        .method(req.method().as_str())
        .uri(format!("{upstream}{}", req.url()));
    for h in req.headers() {
        let name = h.field.as_str().as_str();
        if ![
            "host",
            "content-length",
            "connection",
            "transfer-encoding",
            "expect",
        ]
        .iter()
        .any(|skip| name.eq_ignore_ascii_case(skip))
        {
            out = out.header(name, h.value.as_str());
        }
    }
    let answer = agent.run(out.body(body).unwrap()).and_then(|mut r| {
        Ok((
            r.status().as_u16(),
            r.headers().clone(),
            r.body_mut().read_to_vec()?,
        ))
    });
    let resp = match answer {
        Ok((status, headers, bytes)) => {
            let mut resp = tiny_http::Response::from_data(bytes).with_status_code(status);
            for (name, value) in &headers {
                if ["content-length", "transfer-encoding", "connection"]
                    .iter()
                    .any(|skip| name.as_str().eq_ignore_ascii_case(skip))
                {
                    continue;
                }
                if let Ok(h) = tiny_http::Header::from_bytes(name.as_str(), value.as_bytes()) {
                    resp = resp.with_header(h);
                }
            }
            resp
        }
        Err(e) => tiny_http::Response::from_string(format!("proxy: {e}")).with_status_code(502),
    };
    let _ = req.respond(resp);
}

/// The first `n` records of the demo's CloudTrail history that are provisioning events, and
/// their event ids.
pub(crate) fn provisioning_records(n: usize) -> (Vec<RawRecord>, Vec<String>) {
    let mut normalizer = normalizer();
    let mut ids = Vec::new();
    let records: Vec<RawRecord> = split_input(&demo_cloudtrail(usize::MAX))
        .into_iter()
        .map(|r| r.unwrap())
        .filter(|r| match normalizer.normalize(r, None, t(HISTORY_END)) {
            Normalized::Events(e) => {
                ids.push(e[0].id.clone());
                true
            }
            _ => false,
        })
        .take(n)
        .collect();
    assert_eq!(records.len(), n);
    ids.truncate(n);
    (records, ids)
}

fn count(seen: &[Seen], f: impl Fn(&Seen) -> bool) -> usize {
    seen.iter().filter(|s| f(s)).count()
}

/// Verdicts without their timing-dependent parts, for comparing runs.
fn comparable(mut v: Verdict) -> Verdict {
    v.history.clear();
    v
}

#[test]
fn dynamodb_throttling_and_server_errors_are_retried_and_nothing_is_lost_or_counted_twice() {
    let Some(a) = Aws::new() else { return };
    let proxy = FaultProxy::start(&a.m);
    let client = aws_sdk_dynamodb::Client::new(&proxy.sdk_config(&a.m));
    let store = DynamoDbStore::new(client, a.table.clone(), a.m.rt.handle().clone());
    let mut p = Pipeline::new(store, normalizer(), DetectConfig::default()).unwrap();
    // Thirteen records of the demo history that are provisioning events, as JSON Lines.
    let (records, events) = provisioning_records(13);
    let lines: Vec<String> = records.iter().map(|r| r.value.to_string()).collect();
    let log = lines.join("\n").into_bytes();
    let first_twelve = lines[..12].join("\n").into_bytes();
    let thirteenth = events[12].clone();

    // The same records without faults, in memory: what the verdicts must be.
    let mut reference =
        Pipeline::new(MemoryStore::new(), normalizer(), DetectConfig::default()).unwrap();
    let mut expected = Vec::new();
    reference
        .process_bytes(&first_twelve, None, Mode::Score, t(HISTORY_END), &mut |v| {
            expected.push(comparable(v.clone()));
        })
        .unwrap();

    // Every third call is throttled at its first attempt, and every sixth fails again with a
    // 500 at its second: the SDK's backoff and third attempt get each one through.
    let mut calls = 0u32;
    proxy.set_rule(move |_, attempt| {
        if attempt == 1 {
            calls += 1;
        }
        match attempt {
            1 if calls.is_multiple_of(3) => Some(Fault::Throttle),
            2 if calls.is_multiple_of(6) => Some(Fault::ServerError),
            _ => None,
        }
    });
    let mut got = Vec::new();
    let s = p
        .process_bytes(&first_twelve, None, Mode::Score, t(HISTORY_END), &mut |v| {
            got.push(comparable(v.clone()));
        })
        .unwrap();
    assert_eq!(
        (s.verdicts, s.duplicates, s.dead_lettered),
        (12, 0, 0),
        "{s:?}"
    );
    assert_eq!(got, expected, "faults change no verdict");
    let seen = proxy.take();
    let throttled = count(&seen, |s| s.2 == Some(Fault::Throttle));
    let failed = count(&seen, |s| s.2 == Some(Fault::ServerError));
    assert!(throttled >= 6 && failed >= 3, "{seen:?}");
    // Each fault was followed by the next attempt of the same call.
    assert_eq!(count(&seen, |s| s.1 == 2), throttled, "{seen:?}");
    assert_eq!(count(&seen, |s| s.1 == 3), failed, "{seen:?}");
    let direct = a.store();
    for v in &expected {
        assert!(
            direct.verdict(&v.event_id).unwrap().is_some(),
            "{}",
            v.event_id
        );
    }

    // Re-delivered through the same faults: every event is recognised, none counted again.
    let again = p
        .process_bytes(
            &first_twelve,
            None,
            Mode::Score,
            t(HISTORY_END),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((again.verdicts, again.duplicates), (0, 12), "{again:?}");

    // When every attempt of the commit fails, the call fails with the store's error and the
    // event is not half-written; once DynamoDB recovers, a retry stores it once.
    proxy.set_rule(|op, _| (op == "TransactWriteItems").then_some(Fault::ServerError));
    let err = p
        .process_bytes(&log, None, Mode::Score, t(HISTORY_END), &mut |_| {})
        .unwrap_err();
    let msg = provguard_core::error_chain(&err);
    assert!(msg.contains("DynamoDB TransactWriteItems failed"), "{msg}");
    let seen = proxy.take();
    assert_eq!(
        count(&seen, |s| s.0 == "TransactWriteItems"),
        3,
        "the SDK's three attempts: {seen:?}"
    );
    assert!(!direct.has_event(&thirteenth).unwrap());
    assert!(direct.verdict(&thirteenth).unwrap().is_none());
    proxy.set_rule(|_, _| None);
    let retried = p
        .process_bytes(&log, None, Mode::Score, t(HISTORY_END), &mut |_| {})
        .unwrap();
    assert_eq!(
        (retried.verdicts, retried.duplicates),
        (1, 12),
        "{retried:?}"
    );
    assert!(direct.verdict(&thirteenth).unwrap().is_some());
}

#[test]
fn an_alert_sns_refuses_is_kept_and_published_when_the_invocation_is_retried() {
    let Some(a) = Aws::new() else { return };
    seed_demo_baselines(&a);
    let (topic, queues) = topic_with_queues(&a.m, &[("all", None)]);
    let sqs = aws_sdk_sqs::Client::new(&a.m.config);
    let proxy = FaultProxy::start(&a.m);
    let sns = aws_sdk_sns::Client::new(&proxy.sdk_config(&a.m));
    let sink = SnsSink::new(sns, topic, a.m.rt.handle().clone(), a.store());
    let pipeline = Pipeline::new(a.store(), normalizer(), DetectConfig::default()).unwrap();
    let deps = IngestDeps::new(pipeline, Arc::new(sink), WebhookSecrets::default())
        .with_metrics(Emf::new(std::io::sink()));
    let invoke = || {
        let event: IngestEvent =
            serde_json::from_value(invoke_sample("eventbridge-attach-admin-2am.json")).unwrap();
        a.block_on(provguard_ingest::handle(
            &deps,
            LambdaEvent::new(event, Context::default()),
        ))
    };

    // SNS throttles, then fails: the SDK tries three times, then the invocation fails (so Lambda
    // retries it) with the alert already in the audit trail.
    proxy.set_rule(|op, attempt| match (op, attempt) {
        ("Publish", 1) => Some(Fault::Throttle),
        ("Publish", _) => Some(Fault::ServerError),
        _ => None,
    });
    let err = invoke().expect_err("the invocation fails while SNS does");
    let msg = provguard_core::error_chain(&err);
    assert!(msg.contains("publishing an alert failed"), "{msg}");
    let seen = proxy.take();
    assert_eq!(
        seen.iter().map(|s| s.1).collect::<Vec<_>>(),
        [1, 2, 3],
        "{seen:?}"
    );
    let v = a
        .store()
        .verdict(ADMIN_AT_2AM)
        .unwrap()
        .expect("the verdict is kept");
    assert!(v.alert, "{v:?}");
    assert!(receive(&a.m, &sqs, &queues["all"], 1, 1).is_empty());

    // SNS is back: the retried invocation finds the event stored and publishes its alert once.
    proxy.set_rule(|_, _| None);
    let IngestResponse::Summary(s) = invoke().unwrap() else {
        panic!("an EventBridge invocation answers with a summary")
    };
    assert_eq!((s.verdicts, s.duplicates, s.published), (0, 1, 1), "{s:?}");
    let got = receive(&a.m, &sqs, &queues["all"], 1, 5);
    assert_eq!(got.len(), 1);
    let sent: Verdict = serde_json::from_str(got[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(sent.event_id, ADMIN_AT_2AM);

    // A further retry publishes nothing.
    proxy.take();
    let IngestResponse::Summary(s) = invoke().unwrap() else {
        panic!("a summary")
    };
    assert_eq!(s.published, 0, "{s:?}");
    assert!(proxy.take().iter().all(|s| s.0 != "Publish"));
    assert!(receive(&a.m, &sqs, &queues["all"], 1, 1).is_empty());
}
