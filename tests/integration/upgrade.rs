//! A table written by the previous layout (schema 1: one baseline per scope, no revisions, no
//! generations) opened by this build: migrated, then rebuilt from its own log, losing nothing.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use base64::Engine;
use provguard_core::baseline::{Baseline, ScopeKey};
use provguard_core::detect::DetectConfig;
use provguard_core::store::dynamodb::TABLE_SCHEMA;
use provguard_core::store::{BaselineStore, EventStore, VerdictStore};
use provguard_core::{Mode, Pipeline};
use serde_json::Value;

use crate::aws::t;
use crate::lambda::Aws;
use crate::support::{normalizer, root};

fn attribute(v: &Value) -> AttributeValue {
    let (kind, x) = v.as_object().unwrap().iter().next().unwrap();
    match kind.as_str() {
        "S" => AttributeValue::S(x.as_str().unwrap().to_owned()),
        "N" => AttributeValue::N(x.as_str().unwrap().to_owned()),
        "BOOL" => AttributeValue::Bool(x.as_bool().unwrap()),
        "B" => AttributeValue::B(Blob::new(
            base64::engine::general_purpose::STANDARD
                .decode(x.as_str().unwrap())
                .unwrap(),
        )),
        "M" => AttributeValue::M(
            x.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), attribute(v)))
                .collect(),
        ),
        "L" => AttributeValue::L(x.as_array().unwrap().iter().map(attribute).collect()),
        "NULL" => AttributeValue::Null(true),
        other => panic!("attribute type {other}"),
    }
}

/// Writes the fixture's items into the table.
fn load_layout_1(a: &Aws) -> usize {
    let mut text = String::new();
    flate2::read::GzDecoder::new(
        std::fs::File::open(root().join("tests/fixtures/table-layout-1.jsonl.gz")).unwrap(),
    )
    .read_to_string(&mut text)
    .unwrap();
    let items: Vec<_> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), attribute(v)))
                .collect::<std::collections::HashMap<_, _>>()
        })
        .collect();
    for chunk in items.chunks(25) {
        let writes: Vec<WriteRequest> = chunk
            .iter()
            .map(|i| {
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(i.clone()))
                            .build()
                            .unwrap(),
                    )
                    .build()
            })
            .collect();
        let out = a
            .block_on(
                a.ddb
                    .batch_write_item()
                    .request_items(&a.table, writes)
                    .send(),
            )
            .unwrap();
        assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()));
    }
    items.len()
}

/// Events, grants, and grants per entitlement.
type Counts = (u64, u64, Vec<(String, u64)>);

/// Per scope, the plain counts a baseline keeps (events, grants, each entitlement): the same
/// whatever order the events were learned in.
fn counts(all: Vec<(ScopeKey, Baseline)>) -> BTreeMap<String, Counts> {
    all.into_iter()
        .map(|(k, b)| {
            (
                k.0,
                (
                    b.events.n,
                    b.grants.n,
                    b.entitlements
                        .iter()
                        .map(|(e, c)| (e.clone(), c.n))
                        .collect(),
                ),
            )
        })
        .collect()
}

#[test]
fn a_layout_1_table_is_migrated_and_rebuilt_from_its_log_losing_nothing() {
    let Some(a) = Aws::new() else { return };
    assert!(load_layout_1(&a) > 1000);
    let s = a.store();

    // Before: what the old build left (its baselines are generation 0 of the new model).
    let alerts_before = s.alerts(None).unwrap();
    assert_eq!(alerts_before.len(), 8);
    let before = s.scan_baselines().unwrap();
    let tenant_scopes: Vec<ScopeKey> = before
        .iter()
        .filter(|(k, _)| k.as_str().ends_with("|tenant|") && !k.as_str().starts_with('*'))
        .map(|(k, _)| k.clone())
        .collect();
    assert!(tenant_scopes.len() >= 2, "{tenant_scopes:?}");
    let calibration_before: Vec<_> = tenant_scopes
        .iter()
        .map(|k| {
            before
                .iter()
                .find(|(s, _)| s == k)
                .unwrap()
                .1
                .calibration
                .clone()
        })
        .collect();
    let counts_before = counts(
        before
            .into_iter()
            .filter(|(k, _)| !k.as_str().starts_with('*'))
            .collect(),
    );
    let (mut logged, mut held_out) = (0u64, 0u64);
    s.scan_events(t("2016-01-01T00:00:00Z"), &mut |_, excluded| {
        logged += 1;
        held_out += u64::from(excluded);
    })
    .unwrap();
    assert_eq!(logged, 450);
    assert!(held_out >= 7, "{held_out}");
    let audit = s.verify_audit(None).unwrap();
    assert!(
        audit.intact() && audit.verdicts == 76 && audit.feedback == 1,
        "{audit:?}"
    );

    // Opening it migrates: the tenants are listed, the version is stamped.
    assert_eq!(s.check_schema().unwrap(), TABLE_SCHEMA);
    assert_eq!(a.store().check_schema().unwrap(), TABLE_SCHEMA, "once");
    let listed = a
        .block_on(
            a.ddb
                .query()
                .table_name(&a.table)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", AttributeValue::S("TENANTS".into()))
                .send(),
        )
        .unwrap();
    assert_eq!(listed.count() as usize, tenant_scopes.len());

    // The next rebaseline rebuilds every tenant from the log into generation 1.
    let deps = provguard_rebaseline::Deps {
        store: Arc::new(a.store()),
        detect: DetectConfig::default(),
        window_days: 3650,
        page_size: 100,
        reserve: std::time::Duration::from_secs(5),
        min_interval: chrono::Duration::hours(20),
    };
    let report = provguard_rebaseline::run(&deps, t("2026-11-03T00:00:00Z"), 0, || 0).unwrap();
    assert_eq!(
        report.status,
        provguard_rebaseline::Status::Finished,
        "{report:?}"
    );
    // Every event of the log, those held out (alerts and their episodes not marked benign)
    // left out as the old build left them out.
    assert_eq!(
        (report.used, report.left_out),
        (logged - held_out, held_out),
        "{report:?}"
    );

    // Nothing learned is lost: every scope counts what the old baselines counted, and the
    // calibrations gathered as events were scored carry over.
    let after = a.store().scan_baselines().unwrap();
    let calibration_after: Vec<_> = tenant_scopes
        .iter()
        .map(|k| {
            after
                .iter()
                .find(|(s, _)| s == k)
                .unwrap()
                .1
                .calibration
                .clone()
        })
        .collect();
    assert_eq!(calibration_after, calibration_before);
    assert_eq!(
        counts(
            after
                .into_iter()
                .filter(|(k, _)| !k.as_str().starts_with('*'))
                .collect()
        ),
        counts_before
    );
    // The old generation is gone: every baseline item is generation 1 now.
    let baseline_items = a
        .block_on(a.ddb.scan().table_name(&a.table).send())
        .unwrap()
        .items()
        .iter()
        .filter(|i| i["pk"].as_s().unwrap().starts_with("BASELINE#"))
        .map(|i| i["sk"].as_s().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert!(
        baseline_items
            .iter()
            .all(|sk| sk.starts_with("G1#") || sk.starts_with("*")),
        "{baseline_items:?}"
    );

    // The history is all there: alerts, feedback, the audit chain.
    let store = a.store();
    assert_eq!(store.alerts(None).unwrap(), alerts_before);
    assert!(store.verify_audit(None).unwrap().intact());

    // And ingest goes on in the new generation.
    let mut p = Pipeline::new(a.store(), normalizer(), DetectConfig::default()).unwrap();
    let replay = std::fs::read(root().join("samples/demo/replay/day.jsonl")).unwrap();
    let again = p
        .process_bytes(
            &replay,
            None,
            Mode::Score,
            t("2026-11-03T00:00:00Z"),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(again.duplicates, 76, "{again:?}");
    let first = store.event(&alerts_before[0].event_id).unwrap().unwrap();
    assert!(
        store
            .verdict(&first.id)
            .unwrap()
            .unwrap()
            .feedback
            .is_some()
    );
}
