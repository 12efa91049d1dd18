//! The hostile-input battery: each case is fed to the pipeline on a real (SQLite) store, next to a
//! good record, and its documented response is checked — a clear reason kept with the rejected
//! text as a dead letter (or a count of records dropped on purpose), the good record processed,
//! nothing else lost. The README's "Reliability and security" section lists the same cases.

use chrono::{DateTime, Duration, Utc};
use provguard_core::baseline::ScopeKey;
use provguard_core::detect::DetectConfig;
use provguard_core::normalize::split_input;
use provguard_core::privilege::PrivilegeTable;
use provguard_core::store::memory::MemoryStore;
use provguard_core::store::{BaselineStore, DeadLetter, DeadLetterStore, EventStore, SqliteStore};
use provguard_core::webhook::{self, Outcome, Request, WebhookSecrets};
use provguard_core::{Mode, Normalizer, Pipeline, Stats};
use serde_json::{Value, json};

use crate::support::{normalizer, provguard, root};

fn okta() -> Value {
    let text = std::fs::read_to_string(root().join("samples/okta/grant_super_admin.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The sample with another uuid (another event).
fn okta_as(uuid: &str) -> Value {
    let mut v = okta();
    v["uuid"] = json!(uuid);
    v
}

fn now() -> DateTime<Utc> {
    "2025-05-07T00:00:00Z".parse().unwrap()
}

struct Run {
    stats: Stats,
    dead: Vec<DeadLetter>,
    pipeline: Pipeline<SqliteStore>,
}

impl Run {
    /// Asserts how many events were scored and how many records dead-lettered.
    fn expect(&self, verdicts: u64, dead_lettered: u64) {
        let got = (self.stats.verdicts, self.stats.dead_lettered);
        assert_eq!(got, (verdicts, dead_lettered), "{:?}", self.stats);
    }
}

fn run_with(normalizer: Normalizer, bytes: &[u8], mode: Mode) -> Run {
    let store = SqliteStore::open_in_memory().unwrap();
    let mut pipeline = Pipeline::new(store, normalizer, DetectConfig::default()).unwrap();
    let stats = pipeline
        .process_bytes(bytes, None, mode, now(), &mut |_| {})
        .unwrap();
    let dead = pipeline.store().dead_letters().unwrap();
    // Nothing is lost: every record is an event, a drop or a dead letter.
    assert!(
        stats.events + stats.dropped + stats.dead_lettered >= stats.records,
        "{stats:?}"
    );
    Run {
        stats,
        dead,
        pipeline,
    }
}

fn run(bytes: &[u8]) -> Run {
    run_with(normalizer(), bytes, Mode::Score)
}

/// `bad` then a good record, as JSON Lines: the good one is scored, `bad` is one dead letter
/// whose reason contains `why` and which keeps `kept` of the rejected text.
fn rejected_beside_a_good_record(bad: &str, why: &str, kept: &str) {
    let good = okta_as("good-1").to_string();
    let r = run(format!("{bad}\n{good}\n").as_bytes());
    r.expect(1, 1);
    assert!(r.pipeline.store().has_event("good-1").unwrap());
    assert_eq!(r.dead.len(), 1);
    assert!(r.dead[0].reason.contains(why), "{:?}", r.dead[0].reason);
    assert!(r.dead[0].raw.contains(kept), "{:?}", r.dead[0].raw);
}

#[test]
fn malformed_and_truncated_json_is_dead_lettered_with_its_text() {
    rejected_beside_a_good_record(r#"{"uuid": broken"#, "line 1: malformed JSON", "broken");
    let whole = okta_as("cut-1").to_string();
    let cut = &whole[..whole.len() / 2];
    rejected_beside_a_good_record(cut, "malformed JSON", &cut[..40]);
    // A file that is one truncated document: one dead letter, nothing else.
    let r = run(cut.as_bytes());
    assert_eq!((r.stats.records, r.stats.dead_lettered), (1, 1));
    assert!(
        r.dead[0].reason.contains("EOF while parsing"),
        "{}",
        r.dead[0].reason
    );
}

#[test]
fn invalid_utf8_is_replaced_and_the_record_still_processed() {
    // Bytes that are not UTF-8 inside a string value: read as U+FFFD, never a panic, and the
    // record (valid apart from that) is scored.
    let mut bytes = okta_as("utf8-1").to_string().into_bytes();
    let at = bytes.windows(5).position(|w| w == b"Marco").unwrap();
    bytes[at] = 0xff;
    bytes[at + 1] = 0xfe;
    let r = run(&bytes);
    r.expect(1, 0);
    let e = r.pipeline.store().event("utf8-1").unwrap().unwrap();
    let actor = serde_json::to_string(&e.actor).unwrap();
    assert!(
        actor.contains('\u{fffd}') || !actor.contains("rco"),
        "{actor}"
    );
}

#[test]
fn a_10_mb_body_is_refused_at_the_webhook_and_a_10_mb_record_is_handled() {
    // Webhooks: over 1 MB is answered 413 before authentication or parsing.
    let big = "x".repeat(10 * 1024 * 1024);
    let req = Request {
        method: "POST".into(),
        path: "/okta".into(),
        body: big.clone().into_bytes(),
        ..Request::default()
    };
    let secrets = WebhookSecrets::from_vars([("PROVGUARD_OKTA_SECRET", "s")]);
    match webhook::route(&req, &secrets, now()) {
        Outcome::Respond { status, body, .. } => {
            assert_eq!(status, 413, "{body}");
            assert!(body.contains("body too large"), "{body}");
        }
        Outcome::Ingest { .. } => panic!("a 10 MB body reached the pipeline"),
    }
    // From a file (the CLI reads any size): a 10 MB field in an otherwise good record is
    // carried as data, the event scored, its stored form without the irrelevant bulk.
    let mut v = okta_as("big-1");
    v["debugContext"]["debugData"]["padding"] = json!(big);
    let r = run(v.to_string().as_bytes());
    r.expect(1, 0);
    let stored = r.pipeline.store().event("big-1").unwrap().unwrap();
    assert!(serde_json::to_string(&stored).unwrap().len() < 100_000);
}

#[test]
fn deep_nesting_is_refused_by_the_parser_and_moderate_nesting_is_carried() {
    // Past serde_json's recursion limit (128): a dead letter, no stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = run(deep.as_bytes());
    assert_eq!(r.stats.dead_lettered, 1, "{:?}", r.stats);
    assert!(
        r.dead[0].reason.contains("recursion limit"),
        "{}",
        r.dead[0].reason
    );
    // 100 levels inside a good record: processed.
    let mut v = okta_as("nested-1");
    let mut inner = json!("leaf");
    for _ in 0..100 {
        inner = json!({ "n": inner });
    }
    v["debugContext"]["debugData"]["nested"] = inner;
    let r = run(v.to_string().as_bytes());
    r.expect(1, 0);
}

#[test]
fn wrong_types_and_missing_fields_are_dead_lettered_with_the_field_named() {
    // The time is required: missing, or not a timestamp, the reason names the field.
    let mut wrong = okta_as("types-1");
    wrong["published"] = json!(12345);
    let mut missing = okta_as("types-2");
    missing.as_object_mut().unwrap().remove("published");
    let mut garbled = okta_as("types-3");
    garbled["published"] = json!("yesterday at noon");
    let mut trail: Value = serde_json::from_str(
        &std::fs::read_to_string(
            root().join("samples/cloudtrail/sso_admin_attach_user_policy.json"),
        )
        .unwrap(),
    )
    .unwrap();
    trail.as_object_mut().unwrap().remove("eventTime");
    let r = run(format!("{wrong}\n{missing}\n{garbled}\n{trail}\n").as_bytes());
    r.expect(0, 4);
    let reasons: Vec<&str> = r.dead.iter().map(|d| d.reason.as_str()).collect();
    assert!(
        reasons[0].contains("without a `published` time"),
        "{reasons:?}"
    );
    // (Without it, the record no longer looks like Okta's at all.)
    assert!(reasons[1].contains("cannot tell the source"), "{reasons:?}");
    assert!(
        reasons[2].contains("`published` is not a timestamp: yesterday at noon"),
        "{reasons:?}"
    );
    assert!(reasons[3].contains("without eventTime"), "{reasons:?}");

    // A grant whose actor or target is missing is kept with an unknown principal and scored:
    // an admin grant by no one in particular is exactly what to look at, not to drop.
    let mut no_target = okta_as("missing-1");
    no_target.as_object_mut().unwrap().remove("target");
    let mut no_actor = okta_as("missing-2");
    no_actor.as_object_mut().unwrap().remove("actor");
    let r = run(format!("{no_target}\n{no_actor}\n").as_bytes());
    r.expect(2, 0);
    let store = r.pipeline.store();
    let e1 = store.event("missing-1").unwrap().unwrap();
    let e2 = store.event("missing-2").unwrap().unwrap();
    assert_eq!(json!(e1.target.kind), json!("unknown"));
    assert_eq!(json!(e2.actor.kind), json!("unknown"));
}

#[test]
fn unknown_event_types_are_dropped_and_counted_and_unknown_shapes_dead_lettered() {
    let mut other_type = okta_as("type-1");
    other_type["eventType"] = json!("user.session.start");
    let r = run(format!("{other_type}\n{{\"hello\":\"world\"}}\n").as_bytes());
    assert_eq!(
        (r.stats.dropped, r.stats.dead_lettered),
        (1, 1),
        "{:?}",
        r.stats
    );
    assert_eq!(
        r.pipeline.store().dropped().unwrap(),
        [("okta".to_owned(), 1)]
    );
    assert!(r.dead[0].reason.contains("source"), "{}", r.dead[0].reason);
}

#[test]
fn a_time_far_in_the_future_is_dead_lettered_and_one_far_in_the_past_cannot_move_baselines() {
    let mut future = okta_as("future-1");
    future["published"] = json!("2999-01-01T00:00:00Z");
    let r = run(future.to_string().as_bytes());
    r.expect(0, 1);
    assert!(
        r.dead[0].reason.contains("2999-01-01"),
        "{}",
        r.dead[0].reason
    );
    assert!(
        r.dead[0].reason.contains("more than 60 minutes after"),
        "{}",
        r.dead[0].reason
    );
    assert!(!r.pipeline.store().has_event("future-1").unwrap());

    // Learned after a recent event, one from 1971 is stored and weighs nothing against the
    // present: the tenant baseline keeps the recent event's reference time.
    let mut past = okta_as("past-1");
    past["published"] = json!("1971-01-01T00:00:00Z");
    let recent = okta_as("recent-1");
    let r = run_with(
        normalizer(),
        format!("{recent}\n{past}\n").as_bytes(),
        Mode::Learn,
    );
    assert_eq!(
        (r.stats.learned, r.stats.dead_lettered),
        (2, 0),
        "{:?}",
        r.stats
    );
    let e = r.pipeline.store().event("recent-1").unwrap().unwrap();
    let key = ScopeKey::tenant(&e.tenant);
    let b = &r
        .pipeline
        .store()
        .baselines(std::slice::from_ref(&key))
        .unwrap()[&key];
    assert_eq!(b.t_ref, e.time.timestamp(), "{b:?}");
}

#[test]
fn duplicate_and_out_of_order_deliveries_count_once_and_learn_the_same() {
    // Ten events, delivered in order, then again in reverse with every one twice.
    let events: Vec<Value> = (0..10)
        .map(|i| {
            let mut v = okta_as(&format!("order-{i}"));
            let t = now() - Duration::hours(10 - i);
            v["published"] = json!(t.to_rfc3339());
            v
        })
        .collect();
    let learn = |vs: Vec<&Value>| {
        let text: Vec<String> = vs.into_iter().map(Value::to_string).collect();
        let mut p =
            Pipeline::new(MemoryStore::new(), normalizer(), DetectConfig::default()).unwrap();
        let s = p
            .process_bytes(
                text.join("\n").as_bytes(),
                None,
                Mode::Learn,
                now(),
                &mut |_| {},
            )
            .unwrap();
        (s, p.store().all_baselines())
    };
    let (_, a) = learn(events.iter().collect());
    let (stats, b) = learn(events.iter().rev().flat_map(|v| [v, v]).collect());
    assert_eq!((stats.learned, stats.duplicates), (10, 10), "{stats:?}");
    // The same baselines either way: counts equal, decayed weights equal to rounding.
    assert_eq!(a.len(), b.len());
    for (k, x) in &a {
        let y = &b[k];
        assert_eq!(
            (x.events.n, x.grants.n, x.t_ref),
            (y.events.n, y.grants.n, y.t_ref),
            "{k:?}"
        );
        let (wx, wy) = (x.events.w, y.events.w);
        assert!(
            (wx - wy).abs() <= 1e-9 * wx.abs().max(1.0),
            "{k:?}: {wx} vs {wy}"
        );
    }
}

#[test]
fn a_huge_batch_is_processed_whole_in_bounded_batches() {
    // 6,000 records in one JSON array, through `provguard learn`: read, split and committed in
    // groups of 5,000 (so across a group boundary), all learned, none lost.
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<Value> = (0..6_000)
        .map(|i| {
            let mut v = okta_as(&format!("bulk-{i}"));
            v["actor"]["alternateId"] = json!(format!("admin{}@acme.example", i % 40));
            v["target"][0]["alternateId"] = json!(format!("user{i}@acme.example"));
            v["target"][0]["id"] = json!(format!("00u{i:017}"));
            v["published"] = json!((now() - Duration::minutes(6_000 - i)).to_rfc3339());
            v
        })
        .collect();
    let bytes = serde_json::to_vec(&all).unwrap();
    assert_eq!(split_input(&bytes).len(), 6_000);
    let input = dir.path().join("bulk.json");
    std::fs::write(&input, bytes).unwrap();
    let state = dir.path().join("s.db");
    provguard()
        .arg("learn")
        .arg("--state")
        .arg(&state)
        .arg(&input)
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "6000 records: 6000 events (0 verdicts, 0 alerts, 6000 learned, 0 duplicates skipped)",
        ));
    let store = SqliteStore::open(&state).unwrap();
    assert!(store.has_event("bulk-0").unwrap() && store.has_event("bulk-5999").unwrap());
}

fn with_mapping(src: &str) -> Normalizer {
    Normalizer::new(&[("hr".into(), src.into())], PrivilegeTable::default()).unwrap()
}

#[test]
fn a_mapping_that_fails_at_run_time_or_yields_an_invalid_event_is_dead_lettered() {
    // A run-time error (the record's field is not JSON): the error text is the reason.
    let failing = with_mapping(
        r#". = parse_json!(string!(.payload))
           .source = "hr""#,
    );
    let store = SqliteStore::open_in_memory().unwrap();
    let mut p = Pipeline::new(store, failing, DetectConfig::default()).unwrap();
    let s = p
        .process_bytes(
            br#"{"payload": "{not json"}"#,
            Some("hr"),
            Mode::Score,
            now(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(s.dead_lettered, 1, "{s:?}");
    let d = &p.store().dead_letters().unwrap()[0];
    assert_eq!(d.source.as_deref(), Some("hr"));
    assert!(d.reason.contains("unable to parse json"), "{}", d.reason);
    assert!(d.raw.contains("{not json"), "{}", d.raw);

    // An event without the required fields (no actor, an unknown action).
    let invalid = with_mapping(
        r#". = {"id": .id, "source": "hr", "tenant": "acme", "time": now(), "action": "promote_everyone", "outcome": "success"}"#,
    );
    let store = SqliteStore::open_in_memory().unwrap();
    let mut p = Pipeline::new(store, invalid, DetectConfig::default()).unwrap();
    let s = p
        .process_bytes(
            br#"{"id": "hr-1"}"#,
            Some("hr"),
            Mode::Score,
            now(),
            &mut |_| {},
        )
        .unwrap();
    assert_eq!((s.verdicts, s.dead_lettered), (0, 1), "{s:?}");
    let d = &p.store().dead_letters().unwrap()[0];
    assert!(
        d.reason.contains("does not match the event schema")
            && d.reason.contains("promote_everyone"),
        "{}",
        d.reason
    );
    assert!(!p.store().has_event("hr:hr-1").unwrap());
}

#[test]
fn a_mapping_that_calls_the_environment_does_not_compile() {
    let err = Normalizer::new(
        &[(
            "leak".into(),
            r#". = {"secret": get_env_var!("AWS_SECRET_ACCESS_KEY")}"#.into(),
        )],
        PrivilegeTable::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("get_env_var"), "{err}");
}

#[test]
fn one_stray_line_among_400_events_costs_one_record_not_the_file() {
    let mut bytes = Vec::new();
    for i in 0..200 {
        bytes.extend_from_slice(okta_as(&format!("line-{i}")).to_string().as_bytes());
        bytes.push(b'\n');
    }
    // A log line and a line of bytes that are not UTF-8, in the middle of the file.
    bytes.extend_from_slice(b"2026-11-02 02:00:00 INFO export finished part 1 of 2\n");
    bytes.extend_from_slice(&[0xff, 0xfe, 0xfd, b' ', 0xc3, 0x28, 0x80, b'\n']);
    for i in 200..400 {
        bytes.extend_from_slice(okta_as(&format!("line-{i}")).to_string().as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    let r = run(&bytes);
    r.expect(400, 2);
    assert_eq!(r.stats.records, 402, "{:?}", r.stats);
    let mut reasons: Vec<&str> = r.dead.iter().map(|d| d.reason.as_str()).collect();
    reasons.sort();
    assert!(
        reasons[0].starts_with("line 201: malformed JSON"),
        "{reasons:?}"
    );
    assert!(
        reasons[1].starts_with("line 202: malformed JSON"),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("not UTF-8"), "{reasons:?}");
    assert!(r.dead.iter().any(|d| d.raw.contains("export finished")));
    for i in [0, 199, 200, 399] {
        assert!(r.pipeline.store().has_event(&format!("line-{i}")).unwrap());
    }
}

#[test]
fn every_kind_of_bad_line_is_its_own_dead_letter_with_its_line_number() {
    let good = |i: usize| okta_as(&format!("mixed-{i}")).to_string();
    let half = good(99);
    let lines = [
        // A plain-text line first: the file is still read as JSON Lines.
        "exported by hr-sync v2".to_owned(),
        good(1),
        half[..half.len() / 3].to_owned(),
        "{{{{{{{{{{{{{{{{{{{{".to_owned(),
        String::new(),
        good(2),
        "]]]]".to_owned(),
        r#"{"uuid": "cut-mid-string"#.to_owned(),
        good(3),
    ];
    let r = run(lines.join("\n").as_bytes());
    r.expect(3, 5);
    let mut at: Vec<String> = r
        .dead
        .iter()
        .map(|d| d.reason.split(':').next().unwrap().to_owned())
        .collect();
    at.sort();
    assert_eq!(at, ["line 1", "line 3", "line 4", "line 7", "line 8"]);
    // A file that is one document with a stray line after it: the document is read.
    let doc = serde_json::to_string_pretty(&okta_as("pretty-1")).unwrap();
    let r = run(format!("{doc}\nexport done\n").as_bytes());
    r.expect(1, 1);
    assert!(r.dead[0].reason.contains("line "), "{}", r.dead[0].reason);
    assert!(r.dead[0].raw.contains("export done"));
}

#[test]
fn a_time_before_1970_is_dead_lettered_not_a_panic() {
    for t in [
        "-262143-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
    ] {
        let mut early = okta_as("early-1");
        early["published"] = json!(t);
        let r = run(format!("{early}\n{}\n", okta_as("fine-1")).as_bytes());
        r.expect(1, 1);
        assert!(
            r.dead[0].reason.contains("before 1970"),
            "{}",
            r.dead[0].reason
        );
        assert!(!r.pipeline.store().has_event("early-1").unwrap());
    }
}

#[test]
fn a_custom_mapping_cannot_claim_another_source_or_its_ids() {
    let claims_okta = with_mapping(
        r#". = {"id": .id, "source": "okta", "tenant": "acme", "time": now(), "action": "add_to_group",
               "outcome": "success", "actor": {"email": "a@acme.example", "kind": "human"},
               "target": {"id": "00u1", "email": "b@acme.example", "kind": "human"},
               "entitlement": {"id": "00g1", "name": "Admins", "kind": "group"}, "channel": "api"}"#,
    );
    let store = SqliteStore::open_in_memory().unwrap();
    let mut p = Pipeline::new(store, claims_okta, DetectConfig::default()).unwrap();
    let mut verdicts = Vec::new();
    p.process_bytes(
        br#"{"id": "00ab1cd2ef3GH4ij5k6"}"#,
        Some("hr"),
        Mode::Score,
        now(),
        &mut |v| verdicts.push(v.clone()),
    )
    .unwrap();
    assert_eq!(verdicts.len(), 1);
    let e = p.store().event("hr:00ab1cd2ef3GH4ij5k6").unwrap().unwrap();
    assert_eq!(e.source, "hr");
    assert_eq!(verdicts[0].source, "hr");
    assert!(!p.store().has_event("00ab1cd2ef3GH4ij5k6").unwrap());
    // So no remediation plan is made for it at Okta.
    assert!(
        provguard_core::remediate::plan(&e, provguard_core::remediate::Remedy::Revert).is_err()
    );
}
