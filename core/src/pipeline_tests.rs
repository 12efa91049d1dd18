//! Behaviour of the whole pipeline on a small synthetic organisation: each detector fires on the
//! anomaly it exists for, with the numbers in its sentence, and stays quiet on normal work.

use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use chrono_tz::America::New_York;
use serde_json::json;

use super::*;
use crate::context::{Approval, ChangeWindow, Person};
use crate::event::Privilege;
use crate::privilege::PrivilegeTable;
use crate::store::{
    BaselineStore, ContextImport, ContextStore, EventStore, MemoryStore, VerdictStore,
};
use crate::verdict::Feedback;

fn person(email: &str, dept: &str, team: &str, start: Option<&str>) -> Person {
    Person {
        email: email.into(),
        user_id: None,
        display_name: Some(email.split('@').next().unwrap().replace('.', " ")),
        department: Some(dept.into()),
        team: Some(team.into()),
        title: None,
        manager: None,
        employment_type: Some("employee".into()),
        timezone: Some("America/New_York".into()),
        start_date: start.map(|s| s.parse::<NaiveDate>().unwrap()),
        team_since: None,
    }
}

struct Org {
    pipeline: Pipeline<MemoryStore>,
    seq: u32,
}

const ADMIN: &str = "ann.admin@acme.example";
const HELPDESK: &str = "hal.help@acme.example";

/// An event as the normalizer would hand it over (privilege from the tables).
fn ev(
    id: &str,
    time: DateTime<Utc>,
    action: &str,
    actor: &str,
    target: &str,
    ent: Option<(&str, &str)>,
    channel: &str,
) -> Event {
    serde_json::from_value(json!({
        "id": id, "source": "okta", "tenant": "acme", "time": time,
        "action": action, "outcome": "success",
        "actor": {"email": actor, "kind": "human"},
        "target": {"email": target, "kind": "human"},
        "entitlement": ent.map(|(name, kind)| json!({"name": name, "kind": kind, "privilege": "unknown"})),
        "channel": channel
    }))
    .map(|mut e: Event| {
        if let Some(x) = e.entitlement.as_mut() {
            PrivilegeTable::default().classify(x);
        }
        e
    })
    .unwrap()
}

fn ny(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    New_York
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// The directory of the test organisation.
fn org_people() -> Vec<Person> {
    let mut people = vec![
        person(ADMIN, "IT", "Identity", None),
        person(HELPDESK, "IT", "Helpdesk", None),
        person("nia.new@acme.example", "IT", "Identity", None),
        person(
            "jonathan.smith@acme.example",
            "Engineering",
            "Platform",
            None,
        ),
        person(
            "hira.hire@acme.example",
            "Sales",
            "Enterprise",
            Some("2026-03-02"),
        ),
    ];
    for i in 0..10 {
        people.push(person(
            &format!("eng{i}@acme.example"),
            "Engineering",
            "Platform",
            None,
        ));
        people.push(person(
            &format!("sales{i}@acme.example"),
            "Sales",
            "Enterprise",
            None,
        ));
    }
    people
}

impl Org {
    /// 60 weekdays of normal work: the admin and the helpdesk grant department groups to
    /// Engineering and Sales people during New York business hours.
    fn new(approvals: Vec<Approval>, windows: Vec<ChangeWindow>) -> Org {
        Org::with_config(approvals, windows, DetectConfig::default())
    }

    fn with_config(approvals: Vec<Approval>, windows: Vec<ChangeWindow>, cfg: DetectConfig) -> Org {
        let store = MemoryStore::new();
        let people = org_people();
        store
            .import_context(&ContextImport {
                people: Some(people),
                approvals: Some(approvals),
                change_windows: Some(windows),
                domains: Some(vec!["acme.example".into()]),
            })
            .unwrap();
        let normalizer = Normalizer::new(&[], PrivilegeTable::default()).unwrap();
        let pipeline = Pipeline::new(store, normalizer, cfg).unwrap();
        let mut org = Org { pipeline, seq: 0 };
        let mut day = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let mut n = 0u32;
        while n < 60 {
            if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                for slot in 0..4u32 {
                    let i = (n * 4 + slot) % 10;
                    let (actor, target, group) = if slot % 2 == 0 {
                        (ADMIN, format!("eng{i}@acme.example"), "eng-all")
                    } else {
                        (HELPDESK, format!("sales{i}@acme.example"), "sales-all")
                    };
                    let t = ny(day.year(), day.month(), day.day(), 9 + slot * 2, 15);
                    let id = org.next_id();
                    org.learn(ev(
                        &id,
                        t,
                        "add_to_group",
                        actor,
                        &target,
                        Some((group, "group")),
                        "console",
                    ));
                }
                n += 1;
            }
            day = day.succ_opt().unwrap();
        }
        org
    }

    fn next_id(&mut self) -> String {
        self.seq += 1;
        format!("h{}", self.seq)
    }

    fn learn(&mut self, e: Event) {
        let now = e.time;
        self.pipeline.process_event(&e, Mode::Learn, now).unwrap();
    }

    fn score(&mut self, e: Event) -> Verdict {
        let now = e.time;
        match self.pipeline.process_event(&e, Mode::Score, now).unwrap() {
            EventOutcome::Scored(v) => *v,
            other => panic!("{other:?}"),
        }
    }
}

fn reason<'a>(v: &'a Verdict, code: &str) -> &'a crate::verdict::Reason {
    v.reasons
        .iter()
        .find(|r| r.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:#?}", v.reasons))
}

/// Monday 2026-04-06 in New York.
fn monday(h: u32, m: u32) -> DateTime<Utc> {
    ny(2026, 4, 6, h, m)
}

#[test]
fn normal_work_does_not_alert() {
    let mut org = Org::new(vec![], vec![]);
    let v = org.score(ev(
        "n1",
        monday(11, 10),
        "add_to_group",
        ADMIN,
        "eng3@acme.example",
        Some(("eng-all", "group")),
        "console",
    ));
    assert!(!v.alert, "{v:#?}");
    assert!(v.reasons.is_empty(), "{v:#?}");
}

#[test]
fn a_rare_group_for_the_department_alerts_with_the_counts() {
    let mut org = Org::new(vec![], vec![]);
    let v = org.score(ev(
        "r1",
        monday(11, 10),
        "add_to_group",
        HELPDESK,
        "sales4@acme.example",
        Some(("prod-db-admins", "group")),
        "console",
    ));
    assert!(v.alert, "{v:#?}");
    let r = reason(&v, "rare_entitlement_for_department");
    assert!(
        r.detail
            .starts_with("0 of 120 grants to the Enterprise team were prod-db-admins"),
        "{}",
        r.detail
    );
    assert_eq!(v.privilege, Some(Privilege::Admin), "admin by name");
    assert!(v.reason_codes().contains(&"rare_entitlement_for_actor"));
}

#[test]
fn an_admin_grant_at_night_is_off_hours_in_the_actors_time_zone() {
    let mut org = Org::new(vec![], vec![]);
    // Teach the admin's unknown-tier habits first: the history was all `unknown` tier groups.
    let v = org.score(ev(
        "o1",
        monday(2, 10),
        "add_to_group",
        ADMIN,
        "eng2@acme.example",
        Some(("eng-all", "group")),
        "console",
    ));
    let r = reason(&v, "off_hours");
    assert!(
        r.detail.contains("at Mon 02:10 (America/New_York); 0.0 of"),
        "{}",
        r.detail
    );
    assert!(
        r.detail.contains("on a weekday within 2 hours"),
        "{}",
        r.detail
    );
    assert_eq!(r.scope.as_deref(), Some("actor:ann.admin@acme.example"));
}

#[test]
fn self_grants_and_escalation_chains_are_flagged() {
    let mut org = Org::new(vec![], vec![]);
    let v = org.score(ev(
        "s1",
        monday(11, 0),
        "grant_role",
        ADMIN,
        ADMIN,
        Some(("Super Administrator", "role")),
        "console",
    ));
    assert!(v.alert);
    assert!(reason(&v, "self_grant").detail.contains("to themselves"));

    org.score(ev(
        "c1",
        monday(13, 0),
        "create_account",
        HELPDESK,
        "temp.contractor@acme.example",
        None,
        "console",
    ));
    let v = org.score(ev(
        "c2",
        monday(13, 12),
        "grant_role",
        HELPDESK,
        "temp.contractor@acme.example",
        Some(("Super Administrator", "role")),
        "console",
    ));
    let r = reason(&v, "escalation_chain");
    assert!(
        r.detail.contains("12 minutes earlier (event c1)"),
        "{}",
        r.detail
    );
    assert!(
        v.history.iter().any(|h| h.id == "c1"),
        "history carries the chain"
    );
}

#[test]
fn a_guest_made_a_member_then_given_admin_is_an_escalation_chain() {
    let mut org = Org::new(vec![], vec![]);
    let guest = "rui.costa_partner.example#ext#@acme.onmicrosoft.com";
    let mut conversion = ev(
        "g1",
        monday(10, 0),
        "grant_role",
        HELPDESK,
        guest,
        Some((crate::detect::GUEST_TO_MEMBER, "role")),
        "console",
    );
    conversion.entitlement.as_mut().unwrap().privilege = Privilege::Standard;
    org.score(conversion);
    let admin_grant = |id: &str, target: &str, days: i64| {
        ev(
            id,
            monday(11, 0) + Duration::days(days),
            "grant_role",
            ADMIN,
            target,
            Some(("Super Administrator", "role")),
            "console",
        )
    };
    let v = org.score(admin_grant("g2", guest, 3));
    let r = reason(&v, "escalation_chain");
    assert!(
        r.detail.contains(
            "was a guest made a member 3 days earlier (by hal.help@acme.example, event g1) and is now granted Super Administrator (admin)"
        ),
        "{}",
        r.detail
    );
    assert!(
        v.history.iter().any(|h| h.id == "g1"),
        "history carries the chain"
    );

    // The same grant to a member who never was a guest, or long after the conversion, is not one.
    let v = org.score(admin_grant("g3", "eng1@acme.example", 3));
    assert!(
        v.reasons.iter().all(|r| r.code != "escalation_chain"),
        "{v:#?}"
    );
    let v = org.score(admin_grant("g4", guest, 45));
    assert!(
        v.reasons.iter().all(|r| r.code != "escalation_chain"),
        "{v:#?}"
    );
}

#[test]
fn an_off_hours_session_alerts_once_for_its_hour() {
    let mut org = Org::new(vec![], vec![]);
    let night = |id: &str, t: DateTime<Utc>, target: &str| {
        ev(
            id,
            t,
            "add_to_group",
            ADMIN,
            target,
            Some(("eng-all", "group")),
            "console",
        )
    };
    let first = org.score(night("o1", monday(2, 10), "eng2@acme.example"));
    assert!(first.alert, "{first:#?}");
    reason(&first, "off_hours");
    // Half an hour later, the same admin at work again: one session, not a second page.
    let v = org.score(night("o2", monday(2, 40), "eng3@acme.example"));
    assert!(!v.alert, "{v:#?}");
    assert!(
        v.context.iter().any(|c| c.kind == "off_hours_session"
            && c.detail
                .contains("already alerted for its hour as event o1")),
        "{v:#?}"
    );
    // A privileged grant at an odd hour pages on its own.
    let v = org.score(ev(
        "o2a",
        monday(2, 45),
        "grant_role",
        ADMIN,
        "eng5@acme.example",
        Some(("Super Administrator", "role")),
        "console",
    ));
    reason(&v, "off_hours");
    assert!(
        v.context.iter().all(|c| c.kind != "off_hours_session"),
        "{v:#?}"
    );
    // Another actor at the same hour is not in the admin's session.
    let v = org.score(ev(
        "o3",
        monday(2, 50),
        "add_to_group",
        HELPDESK,
        "sales3@acme.example",
        Some(("sales-all", "group")),
        "console",
    ));
    assert!(reason(&v, "off_hours").p_value < 1e-2, "{v:#?}");
    assert!(
        v.context.iter().all(|c| c.kind != "off_hours_session"),
        "{v:#?}"
    );
    // The next night is another session (its hour is judged afresh).
    let v = org.score(night(
        "o4",
        monday(2, 10) + Duration::days(1),
        "eng4@acme.example",
    ));
    reason(&v, "off_hours");
    assert!(
        v.context.iter().all(|c| c.kind != "off_hours_session"),
        "{v:#?}"
    );
}

/// `n` group additions by the helpdesk, one every 30 seconds from `start`.
fn helpdesk_burst(org: &mut Org, prefix: &str, start: DateTime<Utc>, n: i64) -> Vec<Verdict> {
    (0..n)
        .map(|i| {
            org.score(ev(
                &format!("{prefix}{i}"),
                start + Duration::seconds(30 * i),
                "add_to_group",
                HELPDESK,
                &format!("sales{}@acme.example", i % 10),
                Some(("sales-all", "group")),
                "console",
            ))
        })
        .collect()
}

/// Eight grants of sales-all by the helpdesk, 30 seconds apart, on Monday at 11:00.
fn sales_burst(org: &mut Org, id_prefix: &str) -> Vec<Verdict> {
    helpdesk_burst(org, id_prefix, monday(11, 0), 8)
}

/// The organisation with the Sales people's directory rows showing a move on `since`.
fn org_with_sales_moved(since: &str) -> Org {
    let mut org = Org::new(vec![], vec![]);
    let people = org_people()
        .into_iter()
        .map(|mut p| {
            if p.email.starts_with("sales") {
                p.team_since = Some(since.parse().unwrap());
            }
            p
        })
        .collect();
    org.pipeline
        .store()
        .import_context(&ContextImport {
            people: Some(people),
            ..ContextImport::default()
        })
        .unwrap();
    org.pipeline.refresh().unwrap();
    org
}

#[test]
fn a_re_org_the_directory_records_is_not_a_burst_but_what_it_grants_is_still_judged() {
    // The same eight changes as the burst below, for people the directory has moving that
    // Monday: a re-org done by hand.
    let mut org = org_with_sales_moved("2026-04-06");
    let verdicts = sales_burst(&mut org, "m");
    assert!(verdicts.iter().all(|v| !v.alert), "{verdicts:#?}");
    assert!(
        verdicts
            .iter()
            .all(|v| v.reasons.iter().all(|r| r.code != "volume_burst")),
        "{verdicts:#?}"
    );

    // The helpdesk's first grant of an Engineering group: rare for the actor, which the move
    // explains, and rare for the target's department, which it does not.
    let v = org.score(ev(
        "m-eng",
        monday(11, 20),
        "add_to_group",
        HELPDESK,
        "sales3@acme.example",
        Some(("eng-all", "group")),
        "console",
    ));
    let note = v
        .context
        .iter()
        .find(|n| n.kind == "move")
        .expect("a move note");
    assert!(
        note.detail
            .contains("moved to Enterprise on 2026-04-06 (directory)")
            && note.detail.contains("explains rare_entitlement_for_actor"),
        "{}",
        note.detail
    );
    assert!(
        v.reasons
            .iter()
            .all(|r| r.code != "rare_entitlement_for_actor"),
        "{v:#?}"
    );
    reason(&v, "rare_entitlement_for_department");

    // A privileged grant to a mover is judged as any other.
    let v = org.score(ev(
        "m-admin",
        monday(11, 30),
        "grant_role",
        HELPDESK,
        "sales3@acme.example",
        Some(("Super Administrator", "role")),
        "console",
    ));
    assert!(v.context.iter().all(|n| n.kind != "move"), "{v:#?}");
    assert!(v.alert, "{v:#?}");

    // A move long ago explains nothing: the same changes are a burst.
    let mut org = org_with_sales_moved("2025-06-02");
    let verdicts = sales_burst(&mut org, "b");
    assert_eq!(
        verdicts.iter().filter(|v| v.alert).count(),
        1,
        "{verdicts:#?}"
    );
    assert!(
        verdicts
            .iter()
            .all(|v| v.context.iter().all(|n| n.kind != "move"))
    );
}

#[test]
fn a_burst_alerts_once_with_its_size_and_a_change_window_explains_it() {
    let mut org = Org::new(vec![], vec![]);
    let verdicts = sales_burst(&mut org, "b");
    let alerted: Vec<&Verdict> = verdicts.iter().filter(|v| v.alert).collect();
    assert_eq!(alerted.len(), 1, "one alert per burst: {verdicts:#?}");
    let first = alerted[0];
    let r = reason(first, "volume_burst");
    assert!(
        r.detail.contains(&format!(
            "made {} changes in 10 minutes",
            first.event_id[1..].parse::<usize>().unwrap() + 1
        )),
        "{}",
        r.detail
    );
    assert!(r.detail.contains("before, at most"), "{}", r.detail);
    let last = verdicts.last().unwrap();
    assert!(
        last.context.iter().any(|c| c.kind == "burst"
            && c.detail
                .contains(&format!("already alerted as event {}", first.event_id))
            && c.detail.contains("8 changes so far")),
        "{last:#?}"
    );

    let window = ChangeWindow {
        id: "CHG-7".into(),
        start: monday(10, 0),
        end: monday(12, 0),
        actors: vec![HELPDESK.into()],
        description: Some("Q2 sales re-org".into()),
    };
    let mut org = Org::new(vec![], vec![window]);
    let v = sales_burst(&mut org, "w").pop().unwrap();
    assert!(!v.alert, "{v:#?}");
    assert!(v.context.iter().any(|c| c.kind == "change_window"));
}

#[test]
fn a_wave_in_a_change_window_does_not_set_the_bar_for_a_burst_outside_one() {
    // Five days before, the helpdesk added 30 people to a group in 15 minutes inside a change
    // window, learned as history.
    let window = ChangeWindow {
        id: "CHG-3".into(),
        start: ny(2026, 4, 1, 9, 0),
        end: ny(2026, 4, 1, 12, 0),
        actors: vec![HELPDESK.into()],
        description: Some("device group migration".into()),
    };
    let mut org = Org::new(vec![], vec![window]);
    for i in 0..30 {
        let id = format!("wave{i}");
        org.learn(ev(
            &id,
            ny(2026, 4, 1, 10, 0) + Duration::seconds(30 * i),
            "add_to_group",
            HELPDESK,
            &format!("sales{}@acme.example", i % 10),
            Some(("sales-all", "group")),
            "console",
        ));
    }
    // Eight at once outside any window is still a burst for this actor.
    let verdicts = sales_burst(&mut org, "b");
    assert_eq!(
        verdicts.iter().filter(|v| v.alert).count(),
        1,
        "{verdicts:#?}"
    );
    assert!(
        reason(verdicts.iter().find(|v| v.alert).unwrap(), "volume_burst")
            .detail
            .contains("before, at most 1 in any 10 minutes"),
        "{verdicts:#?}"
    );
}

#[test]
fn a_bursts_later_changes_are_not_learned_so_a_second_burst_alerts_again() {
    let mut org = Org::new(vec![], vec![]);
    let first = helpdesk_burst(&mut org, "a", monday(11, 0), 12);
    assert_eq!(first.iter().filter(|v| v.alert).count(), 1, "{first:#?}");
    // The changes after the alert are part of it: kept out of baselines, as the alert is.
    let held: Vec<&Verdict> = first.iter().filter(|v| v.is_held()).collect();
    assert!(
        held.len() >= 5 && held.iter().all(|v| v.excluded()),
        "{first:#?}"
    );
    // Two days later a smaller burst pages too: the first did not teach its size (learned, its
    // eleven changes would have been "the busiest 10 minutes before").
    let second = helpdesk_burst(&mut org, "b", monday(11, 0) + Duration::days(2), 10);
    assert_eq!(second.iter().filter(|v| v.alert).count(), 1, "{second:#?}");
}

#[test]
fn marking_a_bursts_alert_benign_releases_its_later_changes_into_the_baselines() {
    let mut org = Org::new(vec![], vec![]);
    let first = helpdesk_burst(&mut org, "a", monday(11, 0), 12);
    let lead = first.iter().find(|v| v.alert).expect("the burst alerts");
    let held: Vec<&str> = first
        .iter()
        .filter(|v| v.held_by.as_deref() == Some(lead.event_id.as_str()))
        .map(|v| v.event_id.as_str())
        .collect();
    assert!(held.len() >= 5, "{first:#?}");
    // One of them was already looked at and marked on its own: it keeps its own feedback.
    let own = held[0];
    let now = monday(12, 0);
    assert_eq!(
        org.pipeline
            .feedback(own, Feedback::Benign, Some("checked"), now)
            .unwrap(),
        Some(0)
    );
    let released = org
        .pipeline
        .feedback(
            &lead.event_id,
            Feedback::Benign,
            Some("planned re-org"),
            now,
        )
        .unwrap();
    assert_eq!(released, Some(held.len() - 1));
    for id in &held {
        let v = org.pipeline.store().verdict(id).unwrap().unwrap();
        let fb = v.feedback.as_ref().expect("marked");
        assert_eq!(fb.label, Feedback::Benign);
        let expected = if *id == own {
            "checked".to_owned()
        } else {
            format!("released with {}, marked benign", lead.event_id)
        };
        assert_eq!(fb.note.as_deref(), Some(expected.as_str()));
        assert!(!v.excluded(), "{v:#?}");
    }
    // Nothing is released twice.
    assert_eq!(
        org.pipeline
            .feedback(&lead.event_id, Feedback::Benign, None, now)
            .unwrap(),
        Some(0)
    );
    // The whole burst is in the baselines now, as if it had never alerted: the same burst two
    // days later is within the actor's learned peak and does not page (it does when the first
    // stays held: `a_bursts_later_changes_are_not_learned_so_a_second_burst_alerts_again`).
    let second = helpdesk_burst(&mut org, "b", monday(11, 0) + Duration::days(2), 10);
    assert!(second.iter().all(|v| !v.alert), "{second:#?}");
}

#[test]
fn a_burst_that_outlasts_its_window_alerts_once() {
    // 30 grants, one every 40 seconds: 20 minutes, two burst windows.
    let mut org = Org::new(vec![], vec![]);
    let verdicts: Vec<Verdict> = (0..30)
        .map(|i| {
            org.score(ev(
                &format!("l{i}"),
                monday(11, 0) + Duration::seconds(40 * i),
                "add_to_group",
                HELPDESK,
                &format!("sales{}@acme.example", i % 10),
                Some(("sales-all", "group")),
                "console",
            ))
        })
        .collect();
    let alerted: Vec<&str> = verdicts
        .iter()
        .filter(|v| v.alert)
        .map(|v| v.event_id.as_str())
        .collect();
    assert_eq!(alerted.len(), 1, "{alerted:?}");
    let last = verdicts.last().unwrap();
    assert!(
        last.context.iter().any(|c| c.kind == "burst"
            && c.detail
                .contains(&format!("already alerted as event {}", alerted[0]))),
        "{last:#?}"
    );
}

#[test]
fn a_burst_spread_over_actors_alerts_once_for_the_tenant_naming_the_top_contributors() {
    // Each actor stays under their own burst size; together they make 10 in 5 minutes.
    let cfg = DetectConfig {
        burst_min_events: 6,
        tenant_burst_min_events: 8,
        ..DetectConfig::default()
    };
    let mut org = Org::with_config(vec![], vec![], cfg);
    let verdicts: Vec<Verdict> = (0..10)
        .map(|i| {
            let (actor, target, group) = if i % 2 == 0 {
                (ADMIN, format!("eng{i}@acme.example"), "eng-all")
            } else {
                (HELPDESK, format!("sales{i}@acme.example"), "sales-all")
            };
            org.score(ev(
                &format!("t{i}"),
                monday(11, 0) + Duration::seconds(30 * i),
                "add_to_group",
                actor,
                &target,
                Some((group, "group")),
                "console",
            ))
        })
        .collect();
    let alerted: Vec<&Verdict> = verdicts.iter().filter(|v| v.alert).collect();
    assert_eq!(alerted.len(), 1, "one alert for the burst: {verdicts:#?}");
    assert_eq!(
        alerted[0].event_id, "t7",
        "the eighth change makes the burst"
    );
    let r = reason(alerted[0], "volume_burst");
    assert_eq!(r.scope.as_deref(), Some("tenant:acme"), "{r:#?}");
    assert!(
        r.detail.contains(
            "acme saw 8 changes in 10 minutes from 2 actors (top: ann.admin@acme.example 4, hal.help@acme.example 4)"
        ),
        "{}",
        r.detail
    );
    assert!(
        r.detail.contains("before, at most 1 in any 10 minutes"),
        "{}",
        r.detail
    );
    // Below the size nothing is said; after the alert the rest of the burst is noted, not paged.
    assert!(
        verdicts[..7].iter().all(|v| v.reasons.is_empty()),
        "{verdicts:#?}"
    );
    let last = verdicts.last().unwrap();
    assert!(
        last.context.iter().any(|c| c.kind == "burst"
            && c.detail.contains("already alerted as event t7")
            && c.detail.contains("10 changes in the tenant so far")),
        "{last:#?}"
    );

    // Most of it from one actor is that actor's burst (judged by their own habit), not the tenant's.
    let cfg = DetectConfig {
        burst_min_events: 50,
        tenant_burst_min_events: 8,
        ..DetectConfig::default()
    };
    let mut org = Org::with_config(vec![], vec![], cfg);
    let one_sided = (0..10).map(|i| {
        org.score(ev(
            &format!("o{i}"),
            monday(11, 0) + Duration::seconds(30 * i),
            "add_to_group",
            if i == 0 { ADMIN } else { HELPDESK },
            &format!("sales{i}@acme.example"),
            Some(("sales-all", "group")),
            "console",
        ))
    });
    assert!(
        one_sided
            .into_iter()
            .all(|v| v.reasons.iter().all(|r| r.code != "volume_burst"))
    );

    // The same pace at the default size (20) is not a tenant-level burst.
    let mut org = Org::new(vec![], vec![]);
    let quiet = (0..10).map(|i| {
        org.score(ev(
            &format!("q{i}"),
            monday(11, 0) + Duration::seconds(30 * i),
            "add_to_group",
            if i % 2 == 0 { ADMIN } else { HELPDESK },
            &format!("eng{i}@acme.example"),
            Some(("eng-all", "group")),
            "console",
        ))
    });
    assert!(quiet.into_iter().all(|v| !v.alert));
}

#[test]
fn privileged_grants_need_an_approval_when_approvals_are_loaded() {
    let approval = Approval {
        ticket: "SEC-42".into(),
        target: "eng1@acme.example".into(),
        entitlement: "AdministratorAccess".into(),
        approved_by: Some("ciso@acme.example".into()),
        approved_at: Some(monday(8, 0)),
        expires_at: Some(monday(8, 0) + Duration::days(2)),
    };
    let mut org = Org::new(vec![approval], vec![]);
    let grant = |id: &str, target: &str| {
        ev(
            id,
            monday(11, 0),
            "grant_role",
            ADMIN,
            target,
            Some(("AdministratorAccess", "policy")),
            "console",
        )
    };
    let v = org.score(grant("a1", "eng2@acme.example"));
    assert!(
        reason(&v, "missing_approval")
            .detail
            .contains("no approval on file for eng2@acme.example to receive AdministratorAccess")
    );
    let v = org.score(grant("a2", "eng1@acme.example"));
    assert!(!v.reason_codes().contains(&"missing_approval"), "{v:#?}");
    assert!(
        v.context
            .iter()
            .any(|c| c.kind == "approval" && c.detail.contains("SEC-42 by ciso@acme.example"))
    );
}

#[test]
fn account_creation_checks_email_hygiene() {
    let mut org = Org::new(vec![], vec![]);
    let v = org.score(ev(
        "e1",
        monday(11, 0),
        "create_account",
        HELPDESK,
        "maria@acme-example.com",
        None,
        "console",
    ));
    assert!(v.reason_codes().is_empty() || !v.reason_codes().contains(&"email_typo"));
    let v = org.score(ev(
        "e2",
        monday(11, 5),
        "create_account",
        HELPDESK,
        "maria@acrne.example",
        None,
        "console",
    ));
    assert!(v.alert, "{v:#?}");
    assert!(
        reason(&v, "email_lookalike_domain")
            .detail
            .contains("acme.example")
    );

    let v = org.score(ev(
        "e3",
        monday(11, 10),
        "create_account",
        HELPDESK,
        "jonathan.smiht@acme.example",
        None,
        "console",
    ));
    assert!(
        reason(&v, "email_typo")
            .detail
            .contains("jonathan.smith@acme.example (edit distance 1)"),
        "{v:#?}"
    );
}

#[test]
fn a_new_actor_granting_privileges_is_flagged() {
    let mut org = Org::new(vec![], vec![]);
    let v = org.score(ev(
        "na1",
        monday(11, 0),
        "grant_role",
        "nia.new@acme.example",
        "eng5@acme.example",
        Some(("Global Administrator", "role")),
        "console",
    ));
    let r = reason(&v, "new_actor");
    assert!(
        r.detail.contains("never made a provisioning change"),
        "{}",
        r.detail
    );
    assert!(v.alert);
}

#[test]
fn onboarding_lowers_a_new_hires_first_grants() {
    let mut org = Org::new(vec![], vec![]);
    // hira.hire starts 2026-03-02; a rare standard group two days later is explained.
    let t = ny(2026, 3, 4, 11, 0);
    let v = org.score(ev(
        "ob1",
        t,
        "assign_app",
        HELPDESK,
        "hira.hire@acme.example",
        Some(("gong", "app")),
        "console",
    ));
    assert!(v.context.iter().any(|c| c.kind == "onboarding"), "{v:#?}");
    assert!(!v.alert, "{v:#?}");
}

#[test]
fn changes_for_people_onboarding_do_not_make_a_burst_of_the_others() {
    // The helpdesk gives one person eight apps in four minutes, then makes a routine change for
    // someone else in the same minutes.
    let run = |target: &str| -> Vec<Verdict> {
        let mut org = Org::new(vec![], vec![]);
        let t = ny(2026, 3, 4, 11, 0);
        let mut out: Vec<Verdict> = (0..8)
            .map(|i| {
                let app = format!("app{i}");
                org.score(ev(
                    &format!("ob{i}"),
                    t + Duration::seconds(30 * i),
                    "assign_app",
                    HELPDESK,
                    target,
                    Some((&app, "app")),
                    "console",
                ))
            })
            .collect();
        out.push(org.score(ev(
            "ob-other",
            t + Duration::minutes(5),
            "add_to_group",
            HELPDESK,
            "sales3@acme.example",
            Some(("sales-all", "group")),
            "console",
        )));
        out
    };
    let burst = |vs: &[Verdict]| {
        vs.iter()
            .any(|v| v.reasons.iter().any(|r| r.code == "volume_burst"))
    };
    // For a hire starting that week (hira.hire starts 2026-03-02) the apps are the onboarding
    // wave the directory explains, and the other change is judged on its own: no burst.
    let wave = run("hira.hire@acme.example");
    assert!(!burst(&wave) && wave.iter().all(|v| !v.alert), "{wave:#?}");
    // For someone long in post the same nine changes are a burst.
    let not_starting = run("jonathan.smith@acme.example");
    assert!(burst(&not_starting), "{not_starting:#?}");
}

#[test]
fn duplicates_are_not_counted_twice_and_alerts_stay_out_of_baselines() {
    let mut org = Org::new(vec![], vec![]);
    let key = crate::baseline::ScopeKey::tenant("acme");
    let before = org
        .pipeline
        .store()
        .baselines(std::slice::from_ref(&key))
        .unwrap()[&key]
        .events
        .n;
    let normal = ev(
        "d1",
        monday(11, 0),
        "add_to_group",
        ADMIN,
        "eng3@acme.example",
        Some(("eng-all", "group")),
        "console",
    );
    assert!(matches!(
        org.pipeline
            .process_event(&normal, Mode::Score, monday(11, 0))
            .unwrap(),
        EventOutcome::Scored(_)
    ));
    assert!(matches!(
        org.pipeline
            .process_event(&normal, Mode::Score, monday(11, 0))
            .unwrap(),
        EventOutcome::Duplicate
    ));
    let after = org
        .pipeline
        .store()
        .baselines(std::slice::from_ref(&key))
        .unwrap()[&key]
        .events
        .n;
    assert_eq!(after, before + 1);

    let v = org.score(ev(
        "d2",
        monday(11, 5),
        "grant_role",
        ADMIN,
        ADMIN,
        Some(("Super Administrator", "role")),
        "console",
    ));
    assert!(v.alert);
    let after_alert = org
        .pipeline
        .store()
        .baselines(std::slice::from_ref(&key))
        .unwrap()[&key]
        .events
        .n;
    assert_eq!(
        after_alert, after,
        "an alerting event must not teach the model"
    );
    assert!(
        org.pipeline.store().has_event("d2").unwrap(),
        "but it is in the log"
    );
}

#[test]
fn rebaseline_reproduces_online_learning() {
    let mut org = Org::new(vec![], vec![]);
    let now = monday(0, 0);
    let keys = [
        crate::baseline::ScopeKey::tenant("acme"),
        crate::baseline::ScopeKey::actor("acme", ADMIN),
        crate::baseline::ScopeKey::target_department("acme", "Sales"),
    ];
    let online = org.pipeline.store().baselines(&keys).unwrap();
    let (used, left_out, _) = org.pipeline.rebaseline(now, 180).unwrap();
    assert_eq!((used, left_out), (240, 0));
    let rebuilt = org.pipeline.store().baselines(&keys).unwrap();
    for k in &keys {
        let (mut a, b) = (online[k].clone(), rebuilt[k].clone());
        a.decay_to(now.timestamp(), 30.0);
        assert_eq!(a.events.n, b.events.n, "{k:?}");
        assert!((a.events.w - b.events.w).abs() < 1e-6, "{k:?}");
        assert_eq!(a.entitlements.len(), b.entitlements.len());
    }
}

#[test]
fn a_privileged_grant_outside_the_actors_usual_workflow_is_flagged() {
    let mut org = Org::new(vec![], vec![]);
    // The admin grants AdministratorAccess only through the provisioning workflow...
    for k in 0..30u32 {
        let id = org.next_id();
        let t = monday(10, 0) - Duration::hours(i64::from(24 * (1 + k % 14) + k % 5));
        org.learn(ev(
            &id,
            t,
            "grant_role",
            ADMIN,
            &format!("eng{}@acme.example", k % 10),
            Some(("AdministratorAccess", "policy")),
            "workflow",
        ));
    }
    let grant = |id: &str, channel: &str| {
        ev(
            id,
            monday(11, 0),
            "grant_role",
            ADMIN,
            "eng3@acme.example",
            Some(("AdministratorAccess", "policy")),
            channel,
        )
    };
    let usual = org.score(grant("w1", "workflow"));
    assert!(
        !usual.reason_codes().contains(&"outside_workflow"),
        "{usual:#?}"
    );
    // ...so one straight from the console stands out, with the counts.
    let v = org.score(grant("w2", "console"));
    let r = reason(&v, "outside_workflow");
    assert!(
        r.detail
            .contains("granted AdministratorAccess (admin) through console; 0.0 of")
            && r.detail.contains("(usually workflow)"),
        "{}",
        r.detail
    );
    assert_eq!(r.scope.as_deref(), Some("actor:ann.admin@acme.example"));
}

#[test]
fn taking_access_away_at_night_is_not_off_hours() {
    let mut org = Org::new(vec![], vec![]);
    let v = org.score(ev(
        "r1",
        monday(2, 10),
        "remove_from_group",
        ADMIN,
        "eng2@acme.example",
        Some(("eng-all", "group")),
        "console",
    ));
    assert!(!v.reason_codes().contains(&"off_hours"), "{v:#?}");
    let v = org.score(ev(
        "r2",
        monday(2, 20),
        "add_to_group",
        ADMIN,
        "eng2@acme.example",
        Some(("eng-all", "group")),
        "console",
    ));
    assert!(v.reason_codes().contains(&"off_hours"), "{v:#?}");
}

/// Learns `n` Admin grants of `AdministratorAccess` to Engineering people on the Mondays before
/// 2026-04-06, the first `approved` of them with an approval on file.
fn org_with_privileged_history(n: u32, approved: u32) -> Org {
    let approvals = (0..approved)
        .map(|i| Approval {
            ticket: format!("SEC-{i}"),
            target: format!("eng{}@acme.example", i % 10),
            entitlement: "AdministratorAccess".into(),
            approved_by: Some("ciso@acme.example".into()),
            approved_at: Some(monday(8, 0) - Duration::days(7 * (i as i64 + 1))),
            expires_at: Some(monday(8, 0) - Duration::days(7 * i as i64 + 6)),
        })
        .collect();
    let mut org = Org::new(approvals, vec![]);
    for i in 0..n {
        let id = org.next_id();
        org.learn(ev(
            &id,
            monday(10, 0) - Duration::days(7 * (i as i64 + 1)),
            "grant_role",
            ADMIN,
            &format!("eng{}@acme.example", i % 10),
            Some(("AdministratorAccess", "policy")),
            "console",
        ));
    }
    org
}

#[test]
fn skipping_an_established_approval_workflow_alerts_on_its_own() {
    let grant = |id: &str| {
        ev(
            id,
            monday(10, 30),
            "grant_role",
            ADMIN,
            "eng3@acme.example",
            Some(("AdministratorAccess", "policy")),
            "console",
        )
    };
    // Every privileged grant before had an approval: skipping it breaks the tenant's practice.
    let mut org = org_with_privileged_history(24, 24);
    let v = org.score(grant("m1"));
    let r = reason(&v, "missing_approval");
    assert!(
        r.detail
            .contains("24 of 24 privileged grants before it had one"),
        "{}",
        r.detail
    );
    assert!(v.alert, "{v:#?}");

    // Where most privileged grants go without one, a missing approval is no news.
    let mut org = org_with_privileged_history(24, 4);
    let v = org.score(grant("m2"));
    assert!(!v.reason_codes().contains(&"missing_approval"), "{v:#?}");
    assert!(!v.alert, "{v:#?}");
}

#[test]
fn a_group_that_never_left_its_department_is_flagged_when_it_does() {
    let mut org = Org::new(vec![], vec![]);
    // eng-all went to Engineering 120 times and never anywhere else.
    let v = org.score(ev(
        "s1",
        monday(11, 10),
        "add_to_group",
        HELPDESK,
        "sales4@acme.example",
        Some(("eng-all", "group")),
        "console",
    ));
    let r = reason(&v, "rare_entitlement_for_department");
    assert!(
        r.detail.starts_with(
            "eng-all had gone to one other department in 120 grants and never to Sales"
        ),
        "{}",
        r.detail
    );
    assert!(r.p_value < 0.01, "{r:?}");
}

#[test]
fn a_group_named_after_the_targets_team_is_their_own_teams_group() {
    // Neither group was ever granted in the tenant; one is named after the Platform team that
    // the directory puts jonathan.smith in (a move, a new team, a directory sync's first run).
    let score = |group: &str| {
        let mut org = Org::new(vec![], vec![]);
        org.score(ev(
            "g1",
            monday(11, 10),
            "add_to_group",
            ADMIN,
            "jonathan.smith@acme.example",
            Some((group, "group")),
            "api",
        ))
    };
    let own = score("platform-team");
    let other = score("platform-secrets");
    let note = own
        .context
        .iter()
        .find(|n| n.kind == "department_group")
        .unwrap_or_else(|| panic!("{own:#?}"));
    assert!(
        note.detail
            .starts_with("platform-team is named after jonathan smith's team, Platform"),
        "{}",
        note.detail
    );
    assert!(other.context.iter().all(|n| n.kind != "department_group"));
    assert!(
        note.detail
            .contains("lowers first_in_tenant (p 4.1e-3 → 4.1e-1)"),
        "{}",
        note.detail
    );
    assert!(other.context.iter().all(|n| n.kind != "department_group"));
    assert!(other.alert, "{other:#?}");
    assert!(!own.alert, "{own:#?}");
}

#[test]
fn a_sensitive_entitlement_reaching_a_new_department_alerts_unless_approved() {
    let cfg = DetectConfig {
        sensitive_entitlements: vec!["ENG-ALL".to_owned()].into(),
        ..DetectConfig::default()
    };
    let grant = |id: &str, target: &str| {
        ev(
            id,
            monday(11, 10),
            "add_to_group",
            HELPDESK,
            target,
            Some(("eng-all", "group")),
            "console",
        )
    };
    let mut org = Org::with_config(vec![], vec![], cfg.clone());
    let v = org.score(grant("x1", "sales4@acme.example"));
    assert!(v.alert, "{v:#?}");
    let r = reason(&v, "rare_entitlement_for_department");
    assert_eq!(
        r.detail,
        "eng-all is a sensitive entitlement (configuration) and reached one department in 120 grants, never Sales; no approval on file for it"
    );
    assert_eq!(r.p_value, 1e-4);
    // Within the departments it reached, a sensitive grant is ordinary.
    let v = org.score(grant("x2", "eng4@acme.example"));
    assert!(!v.alert, "{v:#?}");
    assert!(
        !v.reason_codes()
            .contains(&"rare_entitlement_for_department")
    );

    // An approval on file for the grant makes it an approved exception.
    let approval = Approval {
        ticket: "ACC-7".into(),
        target: "sales4@acme.example".into(),
        entitlement: "eng-all".into(),
        approved_by: Some("ann.admin@acme.example".into()),
        approved_at: Some(monday(9, 0)),
        expires_at: Some(monday(17, 0)),
    };
    let mut org = Org::with_config(vec![approval], vec![], cfg);
    let v = org.score(grant("x3", "sales4@acme.example"));
    assert!(!v.alert, "{v:#?}");
    let note = v.context.iter().find(|n| n.kind == "approval").unwrap();
    assert!(
        note.detail
            .contains("never Sales; approved in ACC-7 by ann.admin@acme.example"),
        "{}",
        note.detail
    );

    // Without the configuration the same grant is judged by how far eng-all had spread.
    let mut org = Org::new(vec![], vec![]);
    let v = org.score(grant("x4", "sales4@acme.example"));
    assert!(
        reason(&v, "rare_entitlement_for_department")
            .detail
            .starts_with("eng-all had gone to one other department")
    );
}

/// HR-driven automation (`actor`, through `channel`) learned for 40 weekdays: its group rules
/// add ten people to eng-all each morning, when HR updates the directory. Then an HR change on a
/// Saturday night, and a wave of 30 additions on the next Monday morning.
fn hr_automation(cfg: DetectConfig, actor: &str, channel: &str) -> (Verdict, Vec<Verdict>) {
    let mut org = Org::with_config(vec![], vec![], cfg);
    let bot = |id: &str, t: DateTime<Utc>, target: &str| {
        let mut e = ev(
            id,
            t,
            "add_to_group",
            actor,
            target,
            Some(("eng-all", "group")),
            channel,
        );
        e.actor.kind = crate::event::PrincipalKind::Service;
        e
    };
    let mut day = NaiveDate::from_ymd_opt(2026, 2, 2).unwrap();
    for i in 0..40 {
        while matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            day = day.succ_opt().unwrap();
        }
        for k in 0..10 {
            let id = org.next_id();
            let target = format!("eng{}@acme.example", (i + k) % 10);
            let t = ny(day.year(), day.month(), day.day(), 8, 5 + k);
            org.learn(bot(&id, t, &target));
        }
        day = day.succ_opt().unwrap();
    }
    let night = org.score(bot("b1", ny(2026, 4, 11, 3, 30), "eng4@acme.example"));
    let wave = (0..30)
        .map(|k| {
            let t = ny(2026, 4, 13, 8, 0) + Duration::seconds(10 * k);
            org.score(bot(
                &format!("w{k}"),
                t,
                &format!("eng{}@acme.example", k % 10),
            ))
        })
        .collect();
    (night, wave)
}

#[test]
fn hr_driven_automation_at_night_is_timed_by_the_directory_not_by_choice() {
    let (night, wave) = hr_automation(DetectConfig::default(), "system@okta.example", "workflow");
    assert!(!night.reason_codes().contains(&"off_hours"), "{night:#?}");
    let note = night
        .context
        .iter()
        .find(|n| n.kind == "workflow")
        .unwrap_or_else(|| panic!("{night:#?}"));
    assert!(
        note.detail.contains("explains off_hours"),
        "{}",
        note.detail
    );
    assert!(!night.alert);
    // Its waves are the directory's too: three times its busiest morning is no burst.
    assert!(wave.iter().all(|v| !v.alert), "{wave:#?}");
    let last = wave.last().unwrap();
    assert!(!last.reason_codes().contains(&"volume_burst"), "{last:#?}");
    assert!(
        last.context
            .iter()
            .any(|n| n.kind == "workflow" && n.detail.contains("explains volume_burst")),
        "{last:#?}"
    );
}

#[test]
fn a_configured_directory_sync_account_is_judged_as_the_identity_providers_workflow() {
    let sync = "directory-sync@acme-it.iam.gserviceaccount.com";
    // A service account calling the API: without the configuration, its night run and its
    // wave are findings like anyone's.
    let (night, wave) = hr_automation(DetectConfig::default(), sync, "api");
    assert!(night.reason_codes().contains(&"off_hours"), "{night:#?}");
    assert!(
        wave.iter()
            .any(|v| v.reason_codes().contains(&"volume_burst")),
        "{wave:#?}"
    );
    // Named in `workflow_actors` (any case), they are the directory's timing.
    let cfg = DetectConfig {
        workflow_actors: vec![sync.to_uppercase()],
        ..DetectConfig::default()
    };
    let (night, wave) = hr_automation(cfg, sync, "api");
    assert!(!night.reason_codes().contains(&"off_hours"), "{night:#?}");
    assert!(night.context.iter().any(|n| n.kind == "workflow"));
    assert!(
        wave.iter()
            .all(|v| !v.alert && !v.reason_codes().contains(&"volume_burst")),
        "{wave:#?}"
    );
}

#[test]
fn a_streamed_burst_does_not_vouch_for_itself_in_the_calibration() {
    let mut org = Org::new(vec![], vec![]);
    // Four more days of routine grants, one every 20 minutes, so the tenant's scores join its
    // calibration (past its 300-event warm-up).
    for day in 0..4 {
        for slot in 0..20 {
            let id = org.next_id();
            let t = ny(2026, 3, 30, 9, 0) + Duration::days(day) + Duration::minutes(20 * slot);
            let target = format!("eng{}@acme.example", slot % 10);
            org.learn(ev(
                &id,
                t,
                "add_to_group",
                ADMIN,
                &target,
                Some(("eng-all", "group")),
                "console",
            ));
        }
    }
    let tenant = [ScopeKey::tenant("acme")];
    let calibrated = |org: &Org| {
        org.pipeline.store().baselines(&tenant).unwrap()[&tenant[0]]
            .calibration
            .n
    };
    let before = calibrated(&org);
    let verdicts = sales_burst(&mut org, "b");
    let growing = verdicts
        .iter()
        .filter(|v| !v.alert && v.reason_codes().contains(&"volume_burst"))
        .count();
    assert!(
        growing > 0,
        "the burst is seen before it alerts: {verdicts:#?}"
    );
    // Neither do the changes after the alert: they are held with it.
    let joined = verdicts
        .iter()
        .filter(|v| !v.alert && !v.is_held() && !v.reason_codes().contains(&"volume_burst"))
        .count() as u64;
    assert_eq!(calibrated(&org) - before, joined);
}

/// Forty grants and a night-time admin grant, as a file backfill would bring them.
fn backfill() -> Vec<Event> {
    let mut out = Vec::new();
    for i in 0..40u32 {
        let day = 5 + (i / 4);
        let (actor, target, group) = if i % 2 == 0 {
            (ADMIN, format!("eng{}@acme.example", i % 10), "eng-all")
        } else {
            (
                HELPDESK,
                format!("sales{}@acme.example", i % 10),
                "sales-all",
            )
        };
        out.push(ev(
            &format!("b{i}"),
            ny(2026, 1, day, 9 + (i % 4) * 2, 15),
            "add_to_group",
            actor,
            &target,
            Some((group, "group")),
            "console",
        ));
    }
    out.push(ev(
        "b-night",
        ny(2026, 1, 20, 2, 40),
        "grant_role",
        HELPDESK,
        "sales3@acme.example",
        Some(("Super Administrator", "role")),
        "console",
    ));
    out
}

/// Counts, entitlement counts, event weight and hour-histogram weight of a baseline.
type Summary = (u64, u64, Vec<(String, u64)>, f64, f64);

fn sqlite_pipeline(path: &std::path::Path) -> Pipeline<crate::store::SqliteStore> {
    let store = crate::store::SqliteStore::open(path).unwrap();
    let normalizer = Normalizer::new(&[], PrivilegeTable::default()).unwrap();
    Pipeline::new(store, normalizer, DetectConfig::default()).unwrap()
}

#[test]
fn a_batch_gives_the_same_verdicts_and_baselines_and_is_durable_only_whole() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        crate::baseline::ScopeKey::tenant("acme"),
        crate::baseline::ScopeKey::actor("acme", HELPDESK),
    ];
    let run = |name: &str, batched: bool| {
        let mut p = sqlite_pipeline(&dir.path().join(name));
        if batched {
            p.begin_batch().unwrap();
        }
        let mut verdicts = Vec::new();
        for e in backfill() {
            if let EventOutcome::Scored(v) = p.process_event(&e, Mode::Score, e.time).unwrap() {
                verdicts.push(serde_json::to_string(&v).unwrap());
            }
        }
        p.end_batch().unwrap();
        // Compared at one time: the batch keeps baselines decayed to its last event.
        let end = ny(2026, 2, 1, 0, 0).timestamp();
        let b = p.store().baselines(&keys).unwrap();
        let b: Vec<Summary> = keys
            .iter()
            .map(|k| {
                let mut b = b[k].clone();
                b.decay_to(end, 30.0);
                let ents = b
                    .entitlements
                    .iter()
                    .map(|(e, c)| (e.clone(), c.n))
                    .collect();
                (
                    b.events.n,
                    b.grants.n,
                    ents,
                    b.events.w,
                    b.hours_total("human:*"),
                )
            })
            .collect();
        (verdicts, b)
    };
    let (one_by_one, b1) = run("single.db", false);
    let (batched, b2) = run("batched.db", true);
    assert_eq!(one_by_one.len(), 41);
    assert_eq!(one_by_one, batched);
    for (a, b) in b1.iter().zip(&b2) {
        assert_eq!((a.0, a.1, &a.2), (b.0, b.1, &b.2), "same counts");
        assert!(
            (a.3 - b.3).abs() < 1e-9 && (a.4 - b.4).abs() < 1e-9,
            "{a:?} {b:?}"
        );
    }

    // A batch that never ends (the process died) leaves nothing behind, and a rerun counts
    // every event once.
    let path = dir.path().join("interrupted.db");
    {
        let mut p = sqlite_pipeline(&path);
        p.begin_batch().unwrap();
        for e in backfill().iter().take(10) {
            p.process_event(e, Mode::Learn, e.time).unwrap();
        }
    }
    let mut p = sqlite_pipeline(&path);
    assert!(!p.store().has_event("b0").unwrap());
    assert_eq!(p.store().baseline_count().unwrap(), 0);
    p.begin_batch().unwrap();
    for e in backfill().iter().take(10).chain(backfill().iter().take(10)) {
        p.process_event(e, Mode::Learn, e.time).unwrap();
    }
    p.end_batch().unwrap();
    let b = p.store().baselines(&keys[..1]).unwrap();
    assert_eq!(b[&keys[0]].events.n, 10);
}

#[test]
fn a_webhook_delivery_waits_for_its_provider_before_it_is_learned_unless_configured_not_to() {
    let key = crate::baseline::ScopeKey::tenant("acme");
    let count = |org: &Org| {
        org.pipeline
            .store()
            .baselines(std::slice::from_ref(&key))
            .unwrap()[&key]
            .events
            .n
    };
    let routine = |id: &str| {
        ev(
            id,
            monday(11, 10),
            "add_to_group",
            ADMIN,
            "eng3@acme.example",
            Some(("eng-all", "group")),
            "console",
        )
    };
    let mut org = Org::new(vec![], vec![]);
    let before = count(&org);
    org.pipeline.set_webhook_delivery(true);
    let v = org.score(routine("w1"));
    assert!(
        !v.alert && v.awaits_confirmation() && v.excluded(),
        "{v:#?}"
    );
    assert_eq!(count(&org), before, "not learned");
    // Marked benign once confirmed: released into the baselines.
    org.pipeline
        .feedback(
            "w1",
            crate::verdict::Feedback::Benign,
            Some("confirmed"),
            monday(11, 20),
        )
        .unwrap();
    assert!(count(&org) > before);
    // The same delivery by EventBridge, or a file, is learned at once.
    org.pipeline.set_webhook_delivery(false);
    let v = org.score(routine("w2"));
    assert!(!v.awaits_confirmation() && !v.excluded(), "{v:#?}");

    let cfg = DetectConfig {
        learn_unconfirmed_webhooks: true,
        ..DetectConfig::default()
    };
    let mut org = Org::with_config(vec![], vec![], cfg);
    let before = count(&org);
    org.pipeline.set_webhook_delivery(true);
    let v = org.score(routine("w3"));
    assert!(!v.awaits_confirmation(), "{v:#?}");
    assert!(count(&org) > before);
}

#[test]
fn the_pooled_scope_is_never_written_per_event_but_built_from_the_tenants() {
    let mut p = Pipeline::new(
        MemoryStore::new(),
        Normalizer::new(&[], PrivilegeTable::default()).unwrap(),
        DetectConfig::default(),
    )
    .unwrap();
    for e in backfill() {
        p.process_event(&e, Mode::Learn, e.time).unwrap();
    }
    let pooled = crate::baseline::ScopeKey::tenant(crate::detect::GLOBAL);
    let tenant = crate::baseline::ScopeKey::tenant("acme");
    assert!(
        p.store()
            .baselines(std::slice::from_ref(&pooled))
            .unwrap()
            .is_empty(),
        "no event writes the pooled scope"
    );
    assert!(p.pool_tenants().unwrap());
    let b = p
        .store()
        .baselines(&[pooled.clone(), tenant.clone()])
        .unwrap();
    // One tenant: the pool is its calibration, spread table and approval record.
    assert_eq!(b[&pooled].calibration, b[&tenant].calibration);
    assert_eq!(b[&pooled].spread, b[&tenant].spread);
    assert_eq!(b[&pooled].unapproved, b[&tenant].unapproved);
    assert_eq!(b[&pooled].events.n, b[&tenant].events.n);
    assert!(b[&pooled].entitlements.is_empty());

    // Off: each tenant stands alone.
    let mut alone = Pipeline::new(
        MemoryStore::new(),
        Normalizer::new(&[], PrivilegeTable::default()).unwrap(),
        DetectConfig {
            pool_tenants: false,
            ..DetectConfig::default()
        },
    )
    .unwrap();
    for e in backfill() {
        alone.process_event(&e, Mode::Learn, e.time).unwrap();
    }
    assert!(!alone.pool_tenants().unwrap());
    assert!(alone.store().baselines(&[pooled]).unwrap().is_empty());
}
