//! Conformance against the shared corpus of real-shaped events (../shared/corpus): every
//! provisioning event yields the expected id, action, actor, target and entitlement and a verdict;
//! non-provisioning events are dropped and counted; nothing is dead-lettered.
//!
//! The corpus lives outside the repository. When it is absent the test says so and passes,
//! unless `PROVGUARD_REQUIRE_CORPUS` is set (CI sets it).

use std::collections::BTreeMap;
use std::path::PathBuf;

use provguard_core::store::{DeadLetterStore, MemoryStore, VerdictStore};
use provguard_core::{Mode, Pipeline};
use serde::Deserialize;
use serde_json::Value;

use crate::support::{SOURCES, normalize_file, normalizer, root};

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expect {
    Drop { drop: bool },
    Events(Vec<Expected>),
}

#[derive(Debug, Deserialize)]
struct Expected {
    id: String,
    action: String,
    actor: Option<String>,
    target: Option<String>,
    entitlement: Option<String>,
}

// The skip message is for the person running the tests.
#[allow(clippy::print_stderr)]
fn corpus_dir() -> Option<PathBuf> {
    let dir = root().join("..").join("shared").join("corpus");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("PROVGUARD_REQUIRE_CORPUS").is_none(),
        "PROVGUARD_REQUIRE_CORPUS is set but {} does not exist",
        dir.display()
    );
    eprintln!("skipping corpus conformance: {} not found", dir.display());
    None
}

/// A principal matches when the expectation equals (case-insensitively) its id, name or email;
/// `null` expects none of them.
fn principal_matches(p: &Value, expected: Option<&str>) -> bool {
    let fields =
        ["id", "name", "email"].map(|k| p.get(k).and_then(Value::as_str).map(str::to_owned));
    match expected {
        None => fields.iter().all(Option::is_none),
        Some(x) => fields.iter().flatten().any(|f| f.eq_ignore_ascii_case(x)),
    }
}

#[test]
fn every_corpus_event_normalizes_as_expected() {
    let Some(dir) = corpus_dir() else { return };
    let mut n = normalizer();
    let mut failures = Vec::new();
    let mut checked = 0;
    for source in SOURCES {
        let exp_path = root()
            .join("tests/integration/corpus")
            .join(format!("{source}.json"));
        let expectations: BTreeMap<String, Expect> =
            serde_json::from_str(&std::fs::read_to_string(&exp_path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", exp_path.display()));
        let mut files: Vec<_> = std::fs::read_dir(dir.join(source))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|f| f.ends_with(".json"))
            .collect();
        files.sort();
        for file in &files {
            checked += 1;
            let Some(expect) = expectations.get(file) else {
                failures.push(format!("{source}/{file}: no expectation written"));
                continue;
            };
            // The source is detected from the event's shape, as in production.
            let got = normalize_file(&mut n, &dir.join(source).join(file), None);
            if !got.dead.is_empty() {
                failures.push(format!("{source}/{file}: dead-lettered: {:?}", got.dead));
                continue;
            }
            match expect {
                Expect::Drop { drop } => {
                    if *drop && (!got.events.is_empty() || got.dropped == 0) {
                        failures.push(format!(
                            "{source}/{file}: expected a drop, got {} events",
                            got.events.len()
                        ));
                    }
                }
                Expect::Events(exp) => {
                    if exp.len() != got.events.len() {
                        failures.push(format!(
                            "{source}/{file}: expected {} events, got {}",
                            exp.len(),
                            got.events.len()
                        ));
                        continue;
                    }
                    for (e, g) in exp.iter().zip(&got.events) {
                        let g = serde_json::to_value(g).unwrap();
                        let ent_ok = match (&e.entitlement, g.get("entitlement")) {
                            (None, Some(Value::Null) | None) => true,
                            (Some(x), Some(ent)) => ["id", "name"].iter().any(|k| {
                                ent.get(*k)
                                    .and_then(Value::as_str)
                                    .is_some_and(|v| v.eq_ignore_ascii_case(x))
                            }),
                            _ => false,
                        };
                        let ok = g["id"] == e.id
                            && g["action"] == e.action
                            && g["source"] == source
                            && principal_matches(&g["actor"], e.actor.as_deref())
                            && principal_matches(&g["target"], e.target.as_deref())
                            && ent_ok;
                        if !ok {
                            failures.push(format!(
                                "{source}/{file}: expected {e:?}\n got {}",
                                serde_json::to_string_pretty(&g).unwrap()
                            ));
                        }
                    }
                }
            }
        }
        for name in expectations.keys() {
            if !files.contains(name) {
                failures.push(format!("{source}: expectation for missing file {name}"));
            }
        }
    }
    assert!(checked >= 60, "only {checked} corpus files found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_corpus_provisioning_event_gets_one_verdict() {
    let Some(dir) = corpus_dir() else { return };
    let mut n = normalizer();
    let mut expected_ids = Vec::new();
    let mut expected_drops = 0;
    let mut inputs = Vec::new();
    for source in SOURCES {
        let mut files: Vec<_> = std::fs::read_dir(dir.join(source))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let got = normalize_file(&mut n, &f, None);
            expected_ids.extend(got.events.iter().map(|e| e.id.clone()));
            expected_drops += got.dropped;
            inputs.push(std::fs::read(&f).unwrap());
        }
    }
    // Fixtures are independent examples, not one stream (several reuse the same placeholder id,
    // e.g. Google's uniqueQualifier 1), so each file gets its own state.
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut verdict_ids = Vec::new();
    let mut total = provguard_core::Stats::default();
    let mut dropped = 0;
    let compiled = normalizer();
    for bytes in &inputs {
        let mut pipeline =
            Pipeline::new(MemoryStore::new(), compiled.clone(), Default::default()).unwrap();
        let mut ids = Vec::new();
        let s = pipeline
            .process_bytes(bytes, None, Mode::Score, now, &mut |v| {
                ids.push(v.event_id.clone())
            })
            .unwrap();
        total.add(&s);
        assert_eq!(s.dead_lettered, 0, "{:?}", pipeline.store().dead_letters());
        for id in &ids {
            assert!(
                pipeline.store().verdict(id).unwrap().is_some(),
                "{id} in the audit trail"
            );
        }
        dropped += pipeline
            .store()
            .dropped()
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>();
        verdict_ids.extend(ids);
    }
    assert_eq!(total.dead_lettered, 0);
    assert_eq!(total.dropped as usize, expected_drops);
    assert_eq!(verdict_ids, expected_ids, "one verdict per event, in order");
    assert_eq!(total.duplicates, 0);
    assert_eq!(
        dropped as usize, expected_drops,
        "drops are counted in the store"
    );
}
