//! `provguard erase --subject`: one person's data leaves every record, on a state file and on
//! a table, and the audit trail still verifies with the erasure recorded in it.

use std::io::Read;

use predicates::prelude::*;

use provguard_core::context;
use provguard_core::detect::DetectConfig;
use provguard_core::store::{BaselineStore, ContextStore, VerdictStore};
use provguard_core::{Mode, Pipeline};
use serde_json::Value;

use crate::aws::t;
use crate::lambda::Aws;
use crate::support::{normalizer, provguard, root};

/// An IT director of the demo organisation: the target of the replay's first alert, the
/// manager of six people, the approver of several grants, named in other verdicts' context.
const SUBJECT: &str = "rebecca.stone@acmerocket.example";
const SUBJECT_ID: &str = "00uzHJ6AI6TJgvWGwKdr";
const SUBJECT_NAME: &str = "Rebecca Stone";
/// Her alert, given feedback whose note names her.
const HER_ALERT: &str = "48cc2e60-d68c-11f1-b656-8d111738f7d9";

fn traces(haystack: &[u8]) -> Vec<&'static str> {
    let lower = String::from_utf8_lossy(haystack).to_lowercase();
    [SUBJECT, SUBJECT_ID, SUBJECT_NAME]
        .into_iter()
        .filter(|needle| lower.contains(&needle.to_lowercase()))
        .collect()
}

#[test]
fn erasing_a_person_from_a_state_file_leaves_no_trace_and_a_verifiable_trail() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let s = state.to_str().unwrap();
    let ctx = root().join("samples/demo/context");
    let history = root().join("samples/demo/history");
    provguard()
        .args(["context", "import", "--state", s, "--directory"])
        .arg(ctx.join("directory.csv"))
        .arg("--approvals")
        .arg(ctx.join("approvals.jsonl"))
        .arg("--change-windows")
        .arg(ctx.join("change_windows.jsonl"))
        .arg("--domains")
        .arg(ctx.join("domains.txt"))
        .assert()
        .success();
    provguard()
        .args(["learn", "--state", s, "--now", "2026-11-02T00:00:00Z"])
        .arg(history.join("okta.jsonl.gz"))
        .arg(history.join("entra.jsonl.gz"))
        .arg(history.join("cloudtrail.json.gz"))
        .assert()
        .success();
    provguard()
        .args(["ingest", "--state", s, "--now", "2026-11-02T18:00:00Z"])
        .arg(root().join("samples/demo/replay/day.jsonl"))
        .assert()
        .success();
    provguard()
        .args(["feedback", "--state", s, HER_ALERT, "benign", "--note"])
        .arg(format!("{SUBJECT} was on call"))
        .assert()
        .success();
    let alerts = |s: &str| {
        let out = provguard().args(["alerts", "--state", s]).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let before = alerts(s);
    assert!(before.contains(HER_ALERT));
    assert_eq!(
        traces(&std::fs::read(&state).unwrap()),
        [SUBJECT, SUBJECT_ID, SUBJECT_NAME]
    );

    let out = provguard()
        .args([
            "erase",
            "--state",
            s,
            "--now",
            "2026-11-03T00:00:00Z",
            "--subject",
        ])
        .arg(SUBJECT.to_uppercase())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["events"].as_u64().unwrap() > 10, "{report}");
    assert_eq!(report["people"], 1, "{report}");
    assert!(report["redacted"].as_u64().unwrap() >= 1, "{report}");

    // The trail verifies, with the erasure in it.
    provguard()
        .args(["audit", "verify", "--state", s])
        .assert()
        .success()
        .stdout(predicate::str::contains("intact"));
    // Nothing of her is left in the file: no event, verdict, note, directory entry, approval,
    // baseline scope, nor a free page or write-ahead log holding one.
    for f in std::fs::read_dir(dir.path()).unwrap() {
        let f = f.unwrap().path();
        assert!(
            traces(&std::fs::read(&f).unwrap()).is_empty(),
            "{} still holds {:?}",
            f.display(),
            traces(&std::fs::read(&f).unwrap())
        );
    }
    let after = alerts(s);
    assert!(!after.contains(HER_ALERT));
    assert!(after.lines().count() < before.lines().count());
    // Other alerts stay.
    assert!(after.contains("0c5b568d-d6a7-11f1-8c0c-d23f128b2f33"));
}

#[test]
fn erasing_a_person_from_a_table_leaves_no_trace_and_a_verifiable_trail() {
    let Some(a) = Aws::new() else { return };
    let store = a.store();
    let dir = root().join("samples/demo/context");
    let open = |f: &str| std::io::BufReader::new(std::fs::File::open(dir.join(f)).unwrap());
    store
        .import_context(&provguard_core::store::ContextImport {
            people: Some(context::read_directory("directory.csv", open("directory.csv")).unwrap()),
            approvals: Some(
                context::read_jsonl("approvals.jsonl", open("approvals.jsonl")).unwrap(),
            ),
            change_windows: None,
            domains: Some(context::read_domains(open("domains.txt")).unwrap()),
        })
        .unwrap();
    let mut p = Pipeline::new(a.store(), normalizer(), DetectConfig::default()).unwrap();
    let mut okta = Vec::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(root().join("samples/demo/history/okta.jsonl.gz")).unwrap(),
    )
    .read_to_end(&mut okta)
    .unwrap();
    // The last 150 lines of the history (a transaction a record on moto).
    let text = String::from_utf8(okta).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len() - 150..].join("\n");
    p.process_bytes(
        tail.as_bytes(),
        None,
        Mode::Learn,
        t("2026-11-02T00:00:00Z"),
        &mut |_| {},
    )
    .unwrap();
    let replay = std::fs::read(root().join("samples/demo/replay/day.jsonl")).unwrap();
    p.process_bytes(
        &replay,
        None,
        Mode::Score,
        t("2026-11-02T18:00:00Z"),
        &mut |_| {},
    )
    .unwrap();
    p.feedback(
        HER_ALERT,
        provguard_core::verdict::Feedback::Benign,
        Some(&format!("{SUBJECT} was on call")),
        t("2026-11-02T19:00:00Z"),
    )
    .unwrap();
    a.store().seal_audit(usize::MAX).unwrap();
    assert!(a.store().verify_audit(None).unwrap().intact());
    let dump = |a: &Aws| -> Vec<u8> {
        // Every item, packed baselines unpacked.
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let page = a
                .block_on(
                    a.ddb
                        .scan()
                        .table_name(&a.table)
                        .set_exclusive_start_key(start)
                        .send(),
                )
                .unwrap();
            for item in page.items() {
                for (k, v) in item {
                    out.extend_from_slice(k.as_bytes());
                    match v {
                        aws_sdk_dynamodb::types::AttributeValue::B(b) => {
                            let mut json = Vec::new();
                            flate2::read::GzDecoder::new(b.as_ref())
                                .read_to_end(&mut json)
                                .unwrap();
                            out.extend(json);
                        }
                        other => out.extend(format!("{other:?}").into_bytes()),
                    }
                }
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return out;
            }
        }
    };
    assert!(!traces(&dump(&a)).is_empty());
    let alerts_before = a.store().alerts(None).unwrap().len();

    let report = p.erase(SUBJECT, t("2026-11-03T00:00:00Z"), 180).unwrap();
    assert!(report.events >= 1 && report.people == 1, "{report:?}");
    let audit = a.store().verify_audit(None).unwrap();
    assert!(audit.intact() && audit.pending == 0, "{audit:?}");
    assert_eq!(traces(&dump(&a)), Vec::<&str>::new());
    let alerts = a.store().alerts(None).unwrap();
    assert!(alerts.len() < alerts_before);
    assert!(alerts.iter().all(|v| v.event_id != HER_ALERT));
    assert!(a.store().verdict(HER_ALERT).unwrap().is_none());
    // The rebuilt baselines serve ingest on.
    assert!(a.store().baseline_count().unwrap() > 10);
}
