//! At-least-once delivery without double counting, under concurrency: the same events delivered
//! to several ingest invocations at the same moment (DynamoDB's conditional commit on moto), and
//! several `provguard ingest` processes on one state file (SQLite's write lock).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Barrier};

use lambda_runtime::{Context, LambdaEvent};
use provguard_core::alert::SnsSink;
use provguard_core::baseline::ScopeKey;
use provguard_core::detect::DetectConfig;
use provguard_core::store::memory::MemoryStore;
use provguard_core::store::{BaselineStore, DynamoDbStore, EventStore, VerdictStore};
use provguard_core::webhook::WebhookSecrets;
use provguard_core::{Mode, Pipeline};
use provguard_ingest::{Deps as IngestDeps, Emf, IngestEvent, IngestResponse, Summary};
use serde_json::{Value, json};

use crate::aws::{Calls, dynamodb, t, topic_with_queues};
use crate::faults::provisioning_records;
use crate::lambda::{Aws, HISTORY_END};
use crate::support::{normalizer, provguard, root};

/// Ingest invocations delivered each event at once.
const INVOCATIONS: usize = 6;

/// A moto server of this test's own that handles one request at a time. moto's threaded server
/// checks a transaction's conditions and applies its writes without a lock, so two racing
/// conditional writes can both pass there — a race DynamoDB, whose transactions are
/// serializable, does not have. Served one at a time, the requests of concurrent invocations
/// still interleave (both read, then both commit), so the only races left are provguard's.
struct SerialMoto(std::process::Child);

impl Drop for SerialMoto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const SERIAL_MOTO: &str = "import sys\n\
from werkzeug.serving import run_simple\n\
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app\n\
run_simple('127.0.0.1', int(sys.argv[1]), DomainDispatcherApplication(create_backend_app), threaded=False)\n";

/// The serial moto and a fresh table on it; `None` (skip) as the other AWS tests skip.
fn serial_moto() -> Option<(SerialMoto, Aws)> {
    crate::aws::moto()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("python3")
        .args(["-c", SERIAL_MOTO, &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 runs moto (installed by scripts/test)");
    let server = SerialMoto(child);
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while crate::aws::reachable(&endpoint).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "a serial moto did not start on {endpoint}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Some((server, Aws::on(crate::aws::moto_at(&endpoint))))
}

#[test]
fn the_same_events_delivered_to_six_concurrent_invocations_count_once() {
    let Some((_server, a)) = serial_moto() else {
        return;
    };
    let (topic, _) = topic_with_queues(&a.m, &[]);
    let (records, ids) = provisioning_records(5);
    // Each as EventBridge delivers a CloudTrail record.
    let payloads: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "version": "0", "id": format!("delivery-{i}"),
                "detail-type": "AWS API Call via CloudTrail", "source": "aws.iam",
                "account": r.value["recipientAccountId"], "time": r.value["eventTime"],
                "region": "us-east-1", "resources": [], "detail": r.value,
            })
        })
        .collect();

    let barrier = Barrier::new(INVOCATIONS);
    let calls = Calls::default();
    let summaries: Vec<Vec<Summary>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..INVOCATIONS)
            .map(|_| {
                let (a, topic, payloads, barrier, calls) =
                    (&a, &topic, &payloads, &barrier, &calls);
                scope.spawn(move || {
                    // Each invocation environment has its own clients, pipeline and caches.
                    let sns = aws_sdk_sns::Client::new(&a.m.config);
                    let sink = SnsSink::new(sns, topic.clone(), a.m.rt.handle().clone(), a.store());
                    let store = DynamoDbStore::new(
                        dynamodb(&a.m, Some(calls)),
                        a.table.clone(),
                        a.m.rt.handle().clone(),
                    );
                    let pipeline =
                        Pipeline::new(store, normalizer(), DetectConfig::default()).unwrap();
                    let deps = IngestDeps::new(pipeline, Arc::new(sink), WebhookSecrets::default())
                        .with_metrics(Emf::new(std::io::sink()));
                    let mut out = Vec::new();
                    for p in payloads {
                        barrier.wait();
                        let event: IngestEvent = serde_json::from_value(p.clone()).unwrap();
                        // An invocation that fails (a transaction conflict) is retried, as
                        // Lambda retries an asynchronous invocation.
                        let mut attempts = 0;
                        let s = loop {
                            attempts += 1;
                            match a.block_on(provguard_ingest::handle(
                                &deps,
                                LambdaEvent::new(event.clone(), Context::default()),
                            )) {
                                Ok(IngestResponse::Summary(s)) => break s,
                                Ok(other) => panic!("{other:?}"),
                                Err(e) if attempts < 5 => {
                                    let _ = e;
                                }
                                Err(e) => panic!("still failing after 5 attempts: {e}"),
                            }
                        };
                        out.push(s);
                    }
                    out
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });

    // Per event: exactly one invocation scored it; the others found it stored.
    for (i, id) in ids.iter().enumerate() {
        let scored: u64 = summaries.iter().map(|s| s[i].verdicts).sum();
        let duplicates: u64 = summaries.iter().map(|s| s[i].duplicates).sum();
        assert_eq!(
            (scored, duplicates),
            (1, INVOCATIONS as u64 - 1),
            "event {id}: {summaries:?}"
        );
        assert!(a.store().verdict(id).unwrap().is_some(), "{id}");
    }

    // Some invocations read the event as new and lost the commit to another one: the race the
    // conditional write is for was run, not avoided.
    let commits = calls
        .take()
        .iter()
        .filter(|op| *op == "TransactWriteItems")
        .count();
    assert!(commits > ids.len(), "{commits} commits");

    // The baselines counted each event once: the same as one delivery each, in order.
    let mut reference =
        Pipeline::new(MemoryStore::new(), normalizer(), DetectConfig::default()).unwrap();
    for r in &records {
        reference
            .process_record(r, None, Mode::Score, t(HISTORY_END), &mut |_| {})
            .unwrap();
    }
    let tenant = a.store().event(&ids[0]).unwrap().unwrap().tenant;
    let key = ScopeKey::tenant(&tenant);
    let counted = |s: &dyn BaselineStore| {
        let b = s.baselines(std::slice::from_ref(&key)).unwrap();
        (b[&key].events.n, b[&key].grants.n)
    };
    assert_eq!(counted(&a.store()), counted(reference.store()));
    assert_eq!(counted(&a.store()).0, 5);
}

/// The EventBridge delivery of a CloudTrail record.
fn eventbridge(i: usize, r: &provguard_core::normalize::RawRecord) -> Value {
    json!({
        "version": "0", "id": format!("delivery-{i}"),
        "detail-type": "AWS API Call via CloudTrail", "source": "aws.iam",
        "account": r.value["recipientAccountId"], "time": r.value["eventTime"],
        "region": "us-east-1", "resources": [], "detail": r.value,
    })
}

/// The ingest function's dependencies as one invocation environment holds them: its own
/// clients, pipeline and caches.
fn ingest_deps(a: &Aws, topic: &str, calls: Option<&Calls>) -> IngestDeps {
    let sns = aws_sdk_sns::Client::new(&a.m.config);
    let sink = SnsSink::new(sns, topic.to_owned(), a.m.rt.handle().clone(), a.store());
    let store = DynamoDbStore::new(
        dynamodb(&a.m, calls),
        a.table.clone(),
        a.m.rt.handle().clone(),
    );
    let pipeline = Pipeline::new(store, normalizer(), DetectConfig::default()).unwrap();
    IngestDeps::new(pipeline, Arc::new(sink), WebhookSecrets::default())
        .with_metrics(Emf::new(std::io::sink()))
}

/// The event log's entries in commit order: (the tenant's commit sequence, event id).
pub(crate) fn commit_order(a: &Aws) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = a
            .block_on(
                a.ddb
                    .scan()
                    .table_name(&a.table)
                    .filter_expression("begins_with(pk, :log)")
                    .expression_attribute_values(
                        ":log",
                        aws_sdk_dynamodb::types::AttributeValue::S("LOG#".into()),
                    )
                    .set_exclusive_start_key(start)
                    .send(),
            )
            .unwrap();
        for item in page.items() {
            let q = item
                .get("q")
                .and_then(|v| v.as_n().ok())
                .expect("a commit sequence");
            let body: Value = serde_json::from_str(item["b"].as_s().unwrap()).unwrap();
            out.push((q.parse().unwrap(), body["id"].as_str().unwrap().to_owned()));
        }
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    out.sort();
    out
}

/// Every baseline as `provguard baselines export` writes it, as JSON.
pub(crate) fn exported(s: &dyn BaselineStore) -> Vec<Value> {
    provguard_core::baseline::export(s.scan_baselines().unwrap(), None, None, 30.0)
        .iter()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect()
}

/// Two exports alike to 1e-9, scope by scope.
fn assert_same_exports(got: &[Value], want: &[Value]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            crate::aws::same_numbers(g, w, 1e-9),
            "{}\n{g}\n{w}",
            g["scope"]
        );
    }
}

/// How many of these stored events were learned (scored without being held out, and
/// learnable at all).
fn learned(a: &Aws, ids: &[String]) -> u64 {
    ids.iter()
        .filter(|id| {
            !a.store().verdict(id).unwrap().unwrap().excluded()
                && provguard_core::detect::learnable(&a.store().event(id).unwrap().unwrap())
        })
        .count() as u64
}

/// Eight invocations at once on disjoint events of one tenant: every commit is conditioned on
/// the revisions it read, a writer that lost the race scores its event again on what is stored
/// now, so the baselines are those of one sequential run in the order the commits took effect
/// (the tenant's commit sequence in the log), and no event goes uncounted.
#[test]
fn eight_concurrent_invocations_on_disjoint_events_lose_no_update() {
    let Some((_server, a)) = serial_moto() else {
        return;
    };
    const WRITERS: usize = 8;
    let (topic, _) = topic_with_queues(&a.m, &[]);
    let (records, ids) = provisioning_records(64);
    let payloads: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| eventbridge(i, r))
        .collect();
    let barrier = Barrier::new(WRITERS);
    let calls = Calls::default();
    let summaries: Vec<Summary> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (a, topic, payloads, barrier, calls) =
                    (&a, &topic, &payloads, &barrier, &calls);
                scope.spawn(move || {
                    let deps = ingest_deps(a, topic, Some(calls));
                    barrier.wait();
                    // Writer w takes every eighth event: disjoint sets, all of one tenant.
                    payloads
                        .iter()
                        .skip(w)
                        .step_by(WRITERS)
                        .map(|p| {
                            let event: IngestEvent = serde_json::from_value(p.clone()).unwrap();
                            match a.block_on(provguard_ingest::handle(
                                &deps,
                                LambdaEvent::new(event, Context::default()),
                            )) {
                                Ok(IngestResponse::Summary(s)) => s,
                                other => panic!("an invocation failed: {other:?}"),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(summaries.iter().map(|s| s.verdicts).sum::<u64>(), 64);
    assert_eq!(summaries.iter().map(|s| s.duplicates).sum::<u64>(), 0);

    // The writers raced: more commits were sent than events stored.
    let commits = calls
        .take()
        .iter()
        .filter(|op| *op == "TransactWriteItems")
        .count();
    assert!(commits > ids.len(), "{commits} commits: no race was run");

    // The commits took one order: the tenant's sequence numbers them 1..=64.
    let order = commit_order(&a);
    assert_eq!(
        order.iter().map(|(q, _)| *q).collect::<Vec<_>>(),
        (1..=64).collect::<Vec<i64>>()
    );
    let mut stored: Vec<&String> = order.iter().map(|(_, id)| id).collect();
    stored.sort();
    let mut all: Vec<&String> = ids.iter().collect();
    all.sort();
    assert_eq!(stored, all);

    // One pipeline taking the events one at a time in that order ends with the same
    // baselines, to 1e-9: nothing was lost, nothing counted twice.
    let by_id: BTreeMap<&str, &provguard_core::normalize::RawRecord> =
        ids.iter().map(String::as_str).zip(records.iter()).collect();
    let mut reference =
        Pipeline::new(MemoryStore::new(), normalizer(), DetectConfig::default()).unwrap();
    for (_, id) in &order {
        reference
            .process_record(
                by_id[id.as_str()],
                None,
                Mode::Score,
                t(HISTORY_END),
                &mut |_| {},
            )
            .unwrap();
    }
    assert_same_exports(&exported(&a.store()), &exported(reference.store()));
    // The tenant counted every event that was learned (none is lost to a last writer).
    let tenant = a.store().event(&ids[0]).unwrap().unwrap().tenant;
    let key = ScopeKey::tenant(&tenant);
    let learned = learned(&a, &ids);
    let b = a.store().baselines(std::slice::from_ref(&key)).unwrap();
    assert_eq!(b[&key].events.n, learned);
}

#[test]
fn concurrent_ingest_processes_on_one_state_file_store_and_score_each_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let history = root().join("samples/demo/history");
    let files = ["cloudtrail.json.gz", "okta.jsonl.gz", "entra.jsonl.gz"];
    // Four processes, each with all three files in its own order, started together.
    let orders = [[0, 1, 2], [2, 1, 0], [1, 0, 2], [0, 2, 1]];
    let children: Vec<std::process::Child> = orders
        .iter()
        .map(|order| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("provguard"))
                .arg("ingest")
                .arg("--state")
                .arg(&state)
                .arg("--now")
                .arg(HISTORY_END)
                .args(order.iter().map(|&i| history.join(files[i])))
                .env_remove("PROVGUARD_CONFIG")
                .env_remove("PROVGUARD_LOG")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Each child's output is drained on its own thread: a child blocked on a full pipe while
    // holding the write lock would stall the others.
    let outputs: Vec<std::process::Output> = children
        .into_iter()
        .map(|c| std::thread::spawn(move || c.wait_with_output().unwrap()))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let mut scored: BTreeMap<String, usize> = BTreeMap::new();
    for out in outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            *scored
                .entry(v["event_id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    let twice: Vec<_> = scored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "scored more than once: {twice:?}");

    // Every event of the three files is stored and scored: as many as one process alone finds.
    let alone = dir.path().join("alone.db");
    let out = provguard()
        .arg("ingest")
        .arg("--state")
        .arg(&alone)
        .arg("--now")
        .arg(HISTORY_END)
        .args(files.iter().map(|f| history.join(f)))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let expected: BTreeSet<String> = String::from_utf8_lossy(&out)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(expected.len() > 2_000, "{}", expected.len());
    assert_eq!(scored.keys().cloned().collect::<BTreeSet<_>>(), expected);

    // The audit trail holds one verdict record per event and is intact.
    let report: Value = serde_json::from_slice(
        &provguard()
            .args(["audit", "verify", "--json", "--state"])
            .arg(&state)
            .assert()
            .success()
            .get_output()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        report["verdicts"].as_u64(),
        Some(expected.len() as u64),
        "{report}"
    );
}

/// A rebaseline runs (the real function, a page of two events at a time) while ingest goes on:
/// the events committed after its cut reach the rebuilt generation from the tenant's journal
/// before the switch, so the baselines it leaves are the log's — exactly what a second, quiet
/// rebuild of the same window makes of it — and ingest carries on in the new generation.
#[test]
fn a_rebaseline_while_ingest_goes_on_loses_nothing() {
    let Some((_server, a)) = serial_moto() else {
        return;
    };
    let (topic, _) = topic_with_queues(&a.m, &[]);
    let (records, ids) = provisioning_records(48);
    let payloads: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(i, r)| eventbridge(i, r))
        .collect();
    let deps = ingest_deps(&a, &topic, None);
    let ingest = |p: &Value| {
        let event: IngestEvent = serde_json::from_value(p.clone()).unwrap();
        match a.block_on(provguard_ingest::handle(
            &deps,
            LambdaEvent::new(event, Context::default()),
        )) {
            Ok(IngestResponse::Summary(s)) => assert_eq!(s.verdicts, 1, "{s:?}"),
            other => panic!("an invocation failed: {other:?}"),
        }
    };
    // The first half is in the log before the rebaseline starts.
    for p in &payloads[..24] {
        ingest(p);
    }
    let rebaseline = provguard_rebaseline::Deps {
        store: Arc::new(a.store()),
        detect: DetectConfig::default(),
        window_days: 3650,
        page_size: 2,
        reserve: std::time::Duration::from_secs(5),
        min_interval: chrono::Duration::zero(),
    };
    let scheduled = t(HISTORY_END);
    let run = |deps: &provguard_rebaseline::Deps| {
        provguard_rebaseline::run(deps, scheduled, 0, || 0).unwrap()
    };
    // The second half is ingested, in time order, while it runs.
    let barrier = Barrier::new(2);
    let report = std::thread::scope(|scope| {
        let r = scope.spawn(|| {
            barrier.wait();
            run(&rebaseline)
        });
        barrier.wait();
        for p in &payloads[24..] {
            ingest(p);
        }
        r.join().unwrap()
    });
    assert_eq!(report.status, provguard_rebaseline::Status::Finished);
    // The race was run: events committed after the cut came from the journal.
    assert!(report.caught_up > 0, "{report:?}");
    let after_run = exported(&a.store());

    // A quiet rebuild of the same window, from the log alone, makes the same baselines: the
    // run lost none of what ingest learned meanwhile, and counted nothing twice.
    let again = run(&rebaseline);
    assert_eq!(again.status, provguard_rebaseline::Status::Finished);
    assert_eq!(again.caught_up, 0);
    assert_same_exports(&after_run, &exported(&a.store()));
    // Every learned event is counted once in the tenant's baseline.
    let tenant = a.store().event(&ids[0]).unwrap().unwrap().tenant;
    let key = ScopeKey::tenant(&tenant);
    let learned = learned(&a, &ids);
    let b = a.store().baselines(std::slice::from_ref(&key)).unwrap();
    assert_eq!(b[&key].events.n, learned);

    // Ingest goes on in the new generation (its cached one is found stale and read again).
    let (more, more_ids) = provisioning_records(49);
    ingest(&eventbridge(48, &more[48]));
    let b = a.store().baselines(std::slice::from_ref(&key)).unwrap();
    let counted = u64::from(
        !a.store()
            .verdict(&more_ids[48])
            .unwrap()
            .unwrap()
            .excluded()
            && provguard_core::detect::learnable(&a.store().event(&more_ids[48]).unwrap().unwrap()),
    );
    assert_eq!(b[&key].events.n, learned + counted);
}
