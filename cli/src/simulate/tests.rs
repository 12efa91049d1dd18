use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use provguard_core::Event;
use provguard_core::event::Action;

use super::clock::ZONES;
use super::*;

fn args(seed: u64) -> SimulateArgs {
    SimulateArgs {
        seed,
        out: PathBuf::new(),
        people: 300,
        days: 21,
        test_days: 7,
    }
}

/// One organisation shared by the tests that only read it.
fn shared() -> &'static Output {
    static OUT: OnceLock<Output> = OnceLock::new();
    OUT.get_or_init(|| generate(&args(11)).expect("generates"))
}

fn file<'a>(out: &'a Output, rel: &str) -> &'a [u8] {
    &out.files
        .iter()
        .find(|(p, _)| p == Path::new(rel))
        .unwrap_or_else(|| panic!("no {rel}"))
        .1
}

/// Normalizes every file of a period: (events, dead letters with their reasons).
fn normalize_period(out: &Output, period: &str) -> (Vec<Event>, Vec<String>) {
    let mut n = Normalizer::new(&[], Default::default()).unwrap();
    let now = "2030-01-01T00:00:00Z".parse().unwrap();
    let mut events = Vec::new();
    let mut dead = Vec::new();
    for (path, bytes) in &out.files {
        if !path.starts_with(period) {
            continue;
        }
        for piece in split_input(bytes) {
            let Ok(rec) = piece else {
                dead.push(format!("{}: unreadable", path.display()));
                continue;
            };
            match n.normalize(&rec, None, now) {
                Normalized::Events(evs) => events.extend(evs),
                Normalized::Dropped { .. } => {}
                Normalized::DeadLetter { reason, .. } => {
                    dead.push(format!("{}: {reason}", path.display()))
                }
            }
        }
    }
    (events, dead)
}

fn lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn labels(out: &Output) -> BTreeMap<String, String> {
    lines(file(out, "labels.jsonl"))
        .into_iter()
        .map(|v| {
            (
                v["event_id"].as_str().unwrap().to_owned(),
                v["class"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_same_seed_gives_byte_identical_output() {
    let a = shared();
    let b = generate(&args(11)).unwrap();
    assert_eq!(a.files.len(), b.files.len());
    for ((pa, ba), (pb, bb)) in a.files.iter().zip(&b.files) {
        assert_eq!(pa, pb);
        assert!(ba == bb, "{} differs between two runs", pa.display());
    }
}

#[test]
fn different_seeds_give_different_organisations() {
    let a = shared();
    let b = generate(&args(12)).unwrap();
    for rel in [
        "context/directory.csv",
        "history/okta.jsonl",
        "test/entra.jsonl",
    ] {
        assert_ne!(file(a, rel), file(&b, rel), "{rel}");
    }
}

#[test]
fn every_generated_record_normalizes_without_dead_letters() {
    let out = shared();
    for period in ["history", "test"] {
        let (events, dead) = normalize_period(out, period);
        assert!(dead.is_empty(), "{period}: {dead:#?}");
        let sources: BTreeSet<&str> = events.iter().map(|e| e.source.as_str()).collect();
        assert_eq!(
            sources.into_iter().collect::<Vec<_>>(),
            ["cloudtrail", "entra", "gworkspace", "okta", "scim"],
            "{period}"
        );
    }
}

#[test]
fn labels_name_existing_test_events_and_cover_every_class() {
    let out = shared();
    let (test, _) = normalize_period(out, "test");
    let (history, _) = normalize_period(out, "history");
    let ids: BTreeSet<&str> = test.iter().map(|e| e.id.as_str()).collect();
    let hist_ids: BTreeSet<&str> = history.iter().map(|e| e.id.as_str()).collect();
    let labels = labels(out);
    for id in labels.keys() {
        assert!(ids.contains(id.as_str()), "label for unknown event {id}");
        assert!(
            !hist_ids.contains(id.as_str()),
            "label for a history event {id}"
        );
    }
    let classes: BTreeSet<&str> = labels.values().map(String::as_str).collect();
    for c in Class::ALL {
        assert!(
            classes.contains(c.as_str()),
            "no {} in the labels",
            c.as_str()
        );
    }
    // every event id is unique across both periods (ingest is idempotent on ids)
    let all: Vec<&str> = test.iter().chain(&history).map(|e| e.id.as_str()).collect();
    let unique: BTreeSet<&str> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len());
}

#[test]
fn decoys_are_present_and_shaped_as_described() {
    let out = shared();
    let (test, _) = normalize_period(out, "test");
    let labels = labels(out);
    let of = |class: &str| -> Vec<&Event> {
        test.iter()
            .filter(|e| labels.get(&e.id).is_some_and(|c| c == class))
            .collect()
    };
    let onboarding = of("decoy_onboarding");
    let created = onboarding
        .iter()
        .filter(|e| e.action == Action::CreateAccount && e.source == "okta")
        .count();
    assert!((10..=40).contains(&created), "{created} hires in the wave");
    assert!(
        onboarding
            .iter()
            .all(|e| e.actor.kind == provguard_core::event::PrincipalKind::Service)
    );
    let windows = lines(file(out, "context/change_windows.jsonl"));
    for e in of("decoy_change_window") {
        let actor = e.actor.email.as_deref().unwrap();
        assert!(
            windows.iter().any(|w| {
                let s: DateTime<Utc> = w["start"].as_str().unwrap().parse().unwrap();
                let end: DateTime<Utc> = w["end"].as_str().unwrap().parse().unwrap();
                s <= e.time
                    && e.time <= end
                    && w["actors"].as_array().unwrap().iter().any(|a| a == actor)
            }),
            "change-window event {} outside its window",
            e.id
        );
    }
    assert!(of("decoy_change_window").len() >= 20);
    assert!(
        of("decoy_reorg")
            .iter()
            .all(|e| e.actor.kind == provguard_core::event::PrincipalKind::Human)
    );
    assert!(
        of("decoy_night_automation")
            .iter()
            .all(|e| e.channel == "terraform")
    );
}

#[test]
fn routine_privileged_grants_have_an_approval_on_file() {
    let out = shared();
    let approvals = lines(file(out, "context/approvals.jsonl"));
    let labels = labels(out);
    let mut unapproved = Vec::new();
    let mut checked = 0;
    for period in ["history", "test"] {
        let (events, _) = normalize_period(out, period);
        for e in &events {
            let Some(ent) = &e.entitlement else { continue };
            if !e.action.is_grant()
                || !ent.privilege.is_privileged()
                || matches!(e.channel.as_str(), "service" | "pim")
                || e.approval_ref.is_some()
                || labels.contains_key(&e.id)
            {
                continue;
            }
            checked += 1;
            let targets: Vec<String> = [&e.target.email, &e.target.id, &e.target.name]
                .into_iter()
                .flatten()
                .map(|s| s.to_lowercase())
                .collect();
            let ents: Vec<String> = [&ent.name, &ent.id]
                .into_iter()
                .flatten()
                .map(|s| s.to_lowercase())
                .collect();
            let ok = approvals.iter().any(|a| {
                let at: DateTime<Utc> = a["approved_at"].as_str().unwrap().parse().unwrap();
                let exp: DateTime<Utc> = a["expires_at"].as_str().unwrap().parse().unwrap();
                targets.contains(&a["target"].as_str().unwrap().to_lowercase())
                    && ents.contains(&a["entitlement"].as_str().unwrap().to_lowercase())
                    && at <= e.time
                    && e.time <= exp
            });
            if !ok {
                unapproved.push(format!(
                    "{} {} {} -> {}",
                    e.time,
                    e.actor.label(),
                    ent.label(),
                    e.target.label()
                ));
            }
        }
    }
    assert!(checked > 20, "only {checked} routine privileged grants");
    assert!(unapproved.is_empty(), "{unapproved:#?}");
}

#[test]
fn injected_anomalies_look_as_described() {
    let out = shared();
    let (test, _) = normalize_period(out, "test");
    let labels = labels(out);
    let directory = String::from_utf8_lossy(file(out, "context/directory.csv")).into_owned();
    let header: Vec<&str> = directory.lines().next().unwrap().split(',').collect();
    let tz_column = header.iter().position(|h| *h == "timezone").unwrap();
    let tz: BTreeMap<&str, &str> = directory
        .lines()
        .skip(1)
        .map(|l| {
            // Display names and titles may hold commas: count from the end.
            let f: Vec<&str> = l.split(',').collect();
            (f[0], f[f.len() - (header.len() - tz_column)])
        })
        .collect();
    let domains = String::from_utf8_lossy(file(out, "context/domains.txt")).into_owned();
    let config = provguard_core::Config::from_toml(
        std::str::from_utf8(file(out, "context/config.toml")).unwrap(),
        Path::new("context/config.toml"),
    )
    .expect("config.toml is a valid configuration");
    let sensitive = &config.detect.sensitive_entitlements;
    assert!(!sensitive.is_empty());
    let mut per_actor_burst: BTreeMap<&str, usize> = BTreeMap::new();
    for e in &test {
        let Some(class) = labels.get(&e.id) else {
            continue;
        };
        match class.as_str() {
            "off_hours_admin" => {
                let actor = e.actor.email.as_deref().unwrap();
                let zone = ZONES
                    .iter()
                    .find(|z| Some(&z.name) == tz.get(actor))
                    .unwrap();
                let h = zone.local_hour(e.time);
                assert!((1.0..4.6).contains(&h), "off-hours grant at {h:.2} local");
                assert_eq!(e.privilege(), provguard_core::event::Privilege::Admin);
            }
            "self_grant" => assert!(e.is_self_change(), "{e:?}"),
            "lookalike_domain" | "local_part_typo" => {
                assert_eq!(e.action, Action::CreateAccount);
                let email = e.target.email.as_deref().unwrap();
                let domain = email.rsplit('@').next().unwrap();
                let own = domains.lines().any(|d| d == domain);
                assert_eq!(own, class == "local_part_typo", "{email}");
                assert!(!tz.contains_key(email), "{email} is a directory address");
            }
            "bulk_burst" => {
                *per_actor_burst
                    .entry(e.actor.email.as_deref().unwrap())
                    .or_default() += 1
            }
            "rare_entitlement_department" => {
                let ent = e.entitlement.as_ref().unwrap();
                assert!(sensitive.contains(ent), "{ent:?} is not in config.toml");
            }
            "new_actor_privileged" | "create_then_admin" | "missing_approval" => {
                assert!(e.privilege().is_privileged(), "{class}: {e:?}");
            }
            _ => {}
        }
    }
    assert!(
        per_actor_burst.values().all(|n| *n >= 20),
        "{per_actor_burst:?}"
    );
}

#[test]
fn run_writes_the_documented_layout() {
    let dir = std::env::temp_dir().join(format!("provguard-simulate-{}", std::process::id()));
    let mut a = args(5);
    a.people = 150;
    a.days = 10;
    a.test_days = 3;
    a.out = dir.clone();
    run(&a).unwrap();
    for rel in [
        "context/directory.csv",
        "context/approvals.jsonl",
        "context/change_windows.jsonl",
        "context/domains.txt",
        "context/config.toml",
        "history/okta.jsonl",
        "history/cloudtrail.json.gz",
        "history/entra.jsonl",
        "history/gworkspace.jsonl",
        "history/scim.jsonl",
        "test/okta.jsonl",
        "test/cloudtrail.json.gz",
        "test/entra.jsonl",
        "test/gworkspace.jsonl",
        "test/scim.jsonl",
        "labels.jsonl",
    ] {
        assert!(dir.join(rel).is_file(), "{rel}");
    }
    let csv = std::fs::read_to_string(dir.join("context/directory.csv")).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "email,user_id,display_name,department,team,title,manager,employment_type,timezone,start_date,team_since"
    );
    let gz = std::fs::read(dir.join("test/cloudtrail.json.gz")).unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn rejects_sizes_out_of_range() {
    let mut a = args(1);
    a.people = 10;
    assert!(generate(&a).is_err());
}
