//! Evaluation: detection quality on labelled data (`provguard simulate` writes the labels).
//!
//! Inputs are the verdicts of a scored period, the labels of its injected anomalies and decoys,
//! and the event log (for the product-style comparisons). Unlabelled events are routine.
//!
//! Units: one event, except `bulk_burst`, where one burst (the labelled events of one actor less
//! than 30 minutes apart) is one unit: a burst is caught when any of its events alerts, as
//! provguard pages once per burst.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::event::{Event, Privilege};
use crate::verdict::Verdict;

/// One line of `labels.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub event_id: String,
    pub class: String,
}

/// The reason codes that name each injected class (the top reason should be one of them).
pub fn expected_reasons(class: &str) -> &'static [&'static str] {
    match class {
        "off_hours_admin" => &["off_hours"],
        "rare_entitlement_department" => &["rare_entitlement_for_department", "first_in_tenant"],
        "lookalike_domain" => &["email_lookalike_domain"],
        "local_part_typo" => &["email_typo"],
        "missing_approval" => &["missing_approval"],
        "bulk_burst" => &["volume_burst"],
        "self_grant" => &["self_grant"],
        "create_then_admin" => &["escalation_chain"],
        "new_actor_privileged" => &["new_actor"],
        "slow_drip" => &[
            "rare_entitlement_for_actor",
            "rare_entitlement_for_department",
            "first_in_tenant",
            "missing_approval",
        ],
        _ => &[],
    }
}

pub fn is_decoy(class: &str) -> bool {
    class.starts_with("decoy_")
}

/// Classes whose detection needs business context or department baselines.
pub const CONTEXT_CLASSES: &[&str] = &["rare_entitlement_department", "missing_approval"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassResult {
    pub units: usize,
    pub detected: usize,
    pub recall: f64,
    /// Share of detected units whose top reason names the class.
    pub top_reason_correct: f64,
    /// Recall of the product-style comparisons at provguard's false-alert budget.
    pub first_seen_recall: f64,
    pub static_rules_recall: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub events: usize,
    pub routine: usize,
    pub false_alerts: usize,
    pub false_alerts_per_10k: f64,
    pub alerts: usize,
    pub true_alerts: usize,
    pub precision: f64,
    /// Share of true alerts whose top reason names their class.
    pub top_reason_correct: f64,
    pub decoys: usize,
    pub decoy_alerts: usize,
    pub decoy_alert_rate: f64,
    pub decoy_alert_rate_by_class: BTreeMap<String, f64>,
    pub classes: BTreeMap<String, ClassResult>,
    /// Benign events (routine and decoys): share with p-value below each threshold.
    pub calibration: Vec<(f64, f64)>,
    /// Routine events alone: share with p-value below each threshold. The calibration targets
    /// are judged on these: routine events are drawn the way history is, the null the p-values
    /// are calibrated under; decoys are picked for being unusual, and the context that explains
    /// most of them (onboarding, change windows) raises their p-values on purpose, so their
    /// share depends on how many the simulation injects. Decoys are judged by their alert rate.
    #[serde(default)]
    pub calibration_routine: Vec<(f64, f64)>,
    /// Decoy alert rate of the comparisons at provguard's false-alert budget.
    pub first_seen_decoy_alert_rate: f64,
    pub static_rules_decoy_alert_rate: f64,
    /// Labels whose event has no verdict (a broken simulation, or a wrong verdicts file).
    pub missing: usize,
    /// Unlabelled changes made by an injected burst's actor during it, counted with the burst
    /// (not as routine events).
    #[serde(default)]
    pub in_bursts: usize,
}

/// Scores of the two product-style comparisons for one event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Comparison {
    /// "First time this principal did this": 2 = actor never seen, 1 = actor never did this
    /// action with this entitlement, 0 = seen before.
    pub first_seen: f64,
    /// "Alert on every admin grant": 2 = admin grant, 1 = elevated grant, 0 = otherwise.
    pub static_rules: f64,
}

/// Computes the comparisons for every event of `wanted`, walking the whole event log in time
/// order (history included) so "first seen" means first in the log.
pub fn comparisons(
    log: impl IntoIterator<Item = Event>,
    wanted: &HashSet<String>,
) -> HashMap<String, Comparison> {
    let mut actors: HashSet<String> = HashSet::new();
    let mut combos: HashSet<(String, &'static str, String)> = HashSet::new();
    let mut out = HashMap::new();
    for e in log {
        let actor = e.actor_key();
        let ent = e.entitlement.as_ref().map(|x| x.key()).unwrap_or_default();
        let combo = (actor.clone(), e.action.as_str(), ent);
        if wanted.contains(&e.id) {
            let first_seen = if !actors.contains(&actor) {
                2.0
            } else if !combos.contains(&combo) {
                1.0
            } else {
                0.0
            };
            let static_rules = if e.action.is_grant() {
                match e.privilege() {
                    Privilege::Admin => 2.0,
                    Privilege::Elevated => 1.0,
                    _ => 0.0,
                }
            } else {
                0.0
            };
            out.insert(
                e.id.clone(),
                Comparison {
                    first_seen,
                    static_rules,
                },
            );
        }
        actors.insert(actor);
        combos.insert(combo);
    }
    out
}

/// The probability each event alerts when a detector with these scores may raise at most
/// `budget` alerts on routine events: strictly higher scores alert, ties at the threshold alert
/// with the share of the budget left (random tie-breaking, in expectation).
fn alert_probability(routine_scores: &[f64], budget: usize) -> impl Fn(f64) -> f64 + use<> {
    let mut sorted = routine_scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // Find the threshold score t: count(routine > t) <= budget < count(routine >= t).
    let mut threshold = f64::INFINITY;
    let mut tie_share = 0.0;
    let distinct: Vec<f64> = {
        let mut d = sorted.clone();
        d.dedup();
        d
    };
    let mut above = 0usize;
    for s in distinct {
        let at = sorted.iter().filter(|&&x| x == s).count();
        if above + at > budget {
            threshold = s;
            tie_share = (budget - above) as f64 / at as f64;
            break;
        }
        above += at;
        threshold = f64::NEG_INFINITY; // everything so far alerts
    }
    move |score: f64| {
        if score > threshold {
            1.0
        } else if score == threshold {
            tie_share
        } else {
            0.0
        }
    }
}

/// Evaluates verdicts against labels.
pub fn evaluate(
    verdicts: &[Verdict],
    labels: &[Label],
    comparisons: &HashMap<String, Comparison>,
) -> Report {
    let label_of: HashMap<&str, &str> = labels
        .iter()
        .map(|l| (l.event_id.as_str(), l.class.as_str()))
        .collect();
    let by_id: HashMap<&str, &Verdict> =
        verdicts.iter().map(|v| (v.event_id.as_str(), v)).collect();
    let mut r = Report {
        events: verdicts.len(),
        missing: labels
            .iter()
            .filter(|l| !by_id.contains_key(l.event_id.as_str()))
            .count(),
        ..Report::default()
    };

    // Injected bursts, a unit per actor and episode (changes less than 30 minutes apart). An
    // unlabelled change the actor made during the episode (from 10 minutes before its first
    // change, the burst window, to its last) is part of it: the burst detector counts every
    // change in the window, so whichever of them crosses the line carries the burst's alert.
    let mut burst_units: Vec<Vec<&Verdict>> = Vec::new();
    {
        let mut by_actor: BTreeMap<&str, Vec<&Verdict>> = BTreeMap::new();
        for v in verdicts {
            if label_of.get(v.event_id.as_str()) == Some(&"bulk_burst") {
                by_actor.entry(v.actor.as_str()).or_default().push(v);
            }
        }
        for (_, mut evs) in by_actor {
            evs.sort_by_key(|v| v.time);
            let mut group: Vec<&Verdict> = Vec::new();
            for v in evs {
                if group
                    .last()
                    .is_some_and(|last| (v.time - last.time).num_minutes() >= 30)
                {
                    burst_units.push(std::mem::take(&mut group));
                }
                group.push(v);
            }
            if !group.is_empty() {
                burst_units.push(group);
            }
        }
    }
    let mut in_burst: HashSet<&str> = HashSet::new();
    for v in verdicts {
        if label_of.contains_key(v.event_id.as_str()) {
            continue;
        }
        if let Some(unit) = burst_units.iter_mut().find(|u| {
            u[0].actor == v.actor
                && u[0].time - chrono::Duration::minutes(BURST_WINDOW_MINUTES) <= v.time
                && v.time <= u[u.len() - 1].time
        }) {
            unit.push(v);
            in_burst.insert(v.event_id.as_str());
        }
    }
    r.in_bursts = in_burst.len();

    let routine: Vec<&Verdict> = verdicts
        .iter()
        .filter(|v| {
            !label_of.contains_key(v.event_id.as_str()) && !in_burst.contains(v.event_id.as_str())
        })
        .collect();
    r.routine = routine.len();
    r.false_alerts = routine.iter().filter(|v| v.alert).count();
    r.false_alerts_per_10k = per_10k(r.false_alerts, r.routine);
    r.alerts = verdicts.iter().filter(|v| v.alert).count();

    // Comparisons run at provguard's false-alert budget.
    let budget = r.false_alerts;
    let cmp = |id: &str| comparisons.get(id).copied().unwrap_or_default();
    let fs_alert = alert_probability(
        &routine
            .iter()
            .map(|v| cmp(&v.event_id).first_seen)
            .collect::<Vec<_>>(),
        budget,
    );
    let sr_alert = alert_probability(
        &routine
            .iter()
            .map(|v| cmp(&v.event_id).static_rules)
            .collect::<Vec<_>>(),
        budget,
    );

    // Units per class.
    let mut units: BTreeMap<String, Vec<Vec<&Verdict>>> = BTreeMap::new();
    if !burst_units.is_empty() {
        units.insert("bulk_burst".into(), burst_units);
    }
    let mut decoy_events: BTreeMap<String, Vec<&Verdict>> = BTreeMap::new();
    for v in verdicts {
        let Some(class) = label_of.get(v.event_id.as_str()) else {
            continue;
        };
        // Bursts are in `burst_units` above.
        if is_decoy(class) {
            decoy_events.entry((*class).to_owned()).or_default().push(v);
        } else if *class != "bulk_burst" {
            units.entry((*class).to_owned()).or_default().push(vec![v]);
        }
    }
    let (mut true_alerts, mut top_ok) = (0usize, 0usize);
    for (class, list) in &units {
        let expected = expected_reasons(class);
        let mut c = ClassResult {
            units: list.len(),
            ..ClassResult::default()
        };
        let (mut fs, mut sr, mut correct) = (0.0, 0.0, 0usize);
        for unit in list {
            let alerted: Vec<&&Verdict> = unit.iter().filter(|v| v.alert).collect();
            // One alert per burst: a burst whose changes were held by an alert that names the
            // burst (one on another injected change of the actor's, a lookalike account made
            // in the middle of it, say) was caught by that alert.
            let holder = || {
                unit.iter()
                    .filter_map(|v| v.held_by.as_deref())
                    .filter_map(|id| by_id.get(id))
                    .find(|lead| {
                        lead.alert && lead.reasons.iter().any(|r| r.code == "volume_burst")
                    })
            };
            let first = alerted.first().map(|v| **v).or_else(|| {
                if class == "bulk_burst" {
                    holder().copied()
                } else {
                    None
                }
            });
            if let Some(first) = first {
                c.detected += 1;
                if first
                    .reasons
                    .first()
                    .is_some_and(|top| expected.contains(&top.code.as_str()))
                {
                    correct += 1;
                }
            }
            true_alerts += alerted.len();
            // A unit is caught by a comparison with the best chance among its events.
            fs += unit
                .iter()
                .map(|v| fs_alert(cmp(&v.event_id).first_seen))
                .fold(0.0, f64::max);
            sr += unit
                .iter()
                .map(|v| sr_alert(cmp(&v.event_id).static_rules))
                .fold(0.0, f64::max);
        }
        top_ok += correct;
        c.recall = ratio(c.detected, c.units);
        c.top_reason_correct = ratio(correct, c.detected);
        c.first_seen_recall = fs / c.units.max(1) as f64;
        c.static_rules_recall = sr / c.units.max(1) as f64;
        r.classes.insert(class.clone(), c);
    }
    let detected_units: usize = r.classes.values().map(|c| c.detected).sum();
    r.true_alerts = true_alerts;
    r.precision = ratio(true_alerts, r.alerts);
    r.top_reason_correct = ratio(top_ok, detected_units);

    let (mut fs_decoy, mut sr_decoy) = (0.0, 0.0);
    for (class, evs) in &decoy_events {
        let alerts = evs.iter().filter(|v| v.alert).count();
        r.decoys += evs.len();
        r.decoy_alerts += alerts;
        r.decoy_alert_rate_by_class
            .insert(class.clone(), ratio(alerts, evs.len()));
        for v in evs {
            fs_decoy += fs_alert(cmp(&v.event_id).first_seen);
            sr_decoy += sr_alert(cmp(&v.event_id).static_rules);
        }
    }
    r.decoy_alert_rate = ratio(r.decoy_alerts, r.decoys);
    r.first_seen_decoy_alert_rate = fs_decoy / r.decoys.max(1) as f64;
    r.static_rules_decoy_alert_rate = sr_decoy / r.decoys.max(1) as f64;

    let benign = |keep: fn(Option<&&str>) -> bool| -> Vec<(f64, f64)> {
        let ps: Vec<f64> = verdicts
            .iter()
            .filter(|v| {
                keep(label_of.get(v.event_id.as_str())) && !in_burst.contains(v.event_id.as_str())
            })
            .map(|v| v.p_value)
            .collect();
        CALIBRATION_THRESHOLDS
            .into_iter()
            .map(|t| (t, ratio(ps.iter().filter(|&&p| p < t).count(), ps.len())))
            .collect()
    };
    r.calibration = benign(|c| c.is_none_or(|c| is_decoy(c)));
    r.calibration_routine = benign(|c| c.is_none());
    r
}

/// The burst window the simulated organisations are scored with (`burst_window_minutes`): an
/// unlabelled change this long before an injected burst's first change is in its window.
const BURST_WINDOW_MINUTES: i64 = 10;

/// The p-value thresholds of the calibration table.
const CALIBRATION_THRESHOLDS: [f64; 5] = [0.1, 0.05, 0.01, 1e-3, 1e-4];

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn per_10k(a: usize, b: usize) -> f64 {
    ratio(a, b) * 10_000.0
}

/// A target and whether the report meets it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    /// Stable name, for holds: `false_alerts_per_10k`, `decoy_alert_rate`, `recall:<class>`,
    /// `top_reason_correct`, `calibration:<threshold>`, `vs_products:<class>`.
    pub key: String,
    pub target: String,
    pub value: String,
    /// The figure the target is judged on (for calibration: decades between the routine share
    /// and the threshold; for the comparison with products: recall less twice the best of them).
    pub measured: f64,
    /// Whether a larger `measured` is better.
    pub higher_is_better: bool,
    pub met: bool,
    /// The level a missed target is held at (see [`apply_holds`]), when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_at: Option<f64>,
}

impl TargetCheck {
    /// Met, or missed but no worse than the level it is held at.
    pub fn passes(&self) -> bool {
        self.met
            || self.held_at.is_some_and(|h| {
                if self.higher_is_better {
                    self.measured >= h
                } else {
                    self.measured <= h
                }
            })
    }
}

/// The quality targets (issue "detection that earns trust"), checked against a report.
pub fn check_targets(r: &Report) -> Vec<TargetCheck> {
    let mut out = Vec::new();
    let mut push =
        |key: String, target: String, value: String, measured: f64, higher: bool, met: bool| {
            out.push(TargetCheck {
                key,
                target,
                value,
                measured,
                higher_is_better: higher,
                met,
                held_at: None,
            });
        };
    push(
        "false_alerts_per_10k".into(),
        "false alerts <= 1 per 10,000 routine events".into(),
        format!("{:.2}", r.false_alerts_per_10k),
        r.false_alerts_per_10k,
        false,
        r.false_alerts_per_10k <= 1.0,
    );
    push(
        "decoy_alert_rate".into(),
        "decoys alert <= 1 %".into(),
        format!("{:.2} %", 100.0 * r.decoy_alert_rate),
        r.decoy_alert_rate,
        false,
        r.decoy_alert_rate <= 0.01,
    );
    let floors: &[(&str, f64)] = &[
        ("lookalike_domain", 0.95),
        ("local_part_typo", 0.95),
        ("self_grant", 0.95),
        ("create_then_admin", 0.95),
        ("missing_approval", 0.95),
        ("bulk_burst", 0.95),
        ("off_hours_admin", 0.85),
        ("rare_entitlement_department", 0.85),
        ("new_actor_privileged", 0.85),
        ("slow_drip", 0.6),
    ];
    for (class, floor) in floors {
        if let Some(c) = r.classes.get(*class) {
            push(
                format!("recall:{class}"),
                format!("recall {class} >= {floor}"),
                format!("{:.3} ({}/{})", c.recall, c.detected, c.units),
                c.recall,
                true,
                c.recall >= *floor,
            );
        }
    }
    push(
        "top_reason_correct".into(),
        "top reason correct >= 90 % of true alerts".into(),
        format!("{:.1} %", 100.0 * r.top_reason_correct),
        r.top_reason_correct,
        true,
        r.top_reason_correct >= 0.9,
    );
    for (t, share) in &r.calibration_routine {
        if *t == 1e-2 || *t == 1e-3 {
            // How far the share is from the threshold, in decades either way (no benign event
            // below it counts as a whole decade short).
            let off = if *share > 0.0 {
                (share / t).log10().abs()
            } else {
                1.0
            };
            push(
                format!("calibration:{t:e}"),
                format!("routine share with p < {t:e} within 1.5x of {t:e}"),
                format!("{share:.2e}"),
                off,
                false,
                *share <= t * 1.5 && *share >= t / 1.5,
            );
        }
    }
    for class in CONTEXT_CLASSES {
        if let Some(c) = r.classes.get(*class) {
            let best = c.first_seen_recall.max(c.static_rules_recall);
            push(
                format!("vs_products:{class}"),
                format!("recall {class} >= 2x the product-style comparisons"),
                format!(
                    "{:.3} vs first-seen {:.3}, static rules {:.3}",
                    c.recall, c.first_seen_recall, c.static_rules_recall
                ),
                c.recall - 2.0 * best,
                true,
                c.recall > 0.0 && c.recall >= 2.0 * best,
            );
        }
    }
    out
}

/// Holds: targets not met yet, each kept at its measured level so that it cannot get worse
/// while it is worked on. A TOML table of target keys to levels:
///
/// ```toml
/// [hold]
/// false_alerts_per_10k = 3.6
/// "calibration:1e-3" = 0.2
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holds {
    #[serde(default)]
    pub hold: BTreeMap<String, f64>,
}

impl Holds {
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// Sets `held_at` on the checks the holds name; an error names a hold that matches no target
/// (a typo would otherwise hold nothing).
pub fn apply_holds(checks: &mut [TargetCheck], holds: &Holds) -> Result<(), String> {
    for (key, level) in &holds.hold {
        let Some(c) = checks.iter_mut().find(|c| &c.key == key) else {
            let known: Vec<&str> = checks.iter().map(|c| c.key.as_str()).collect();
            return Err(format!(
                "hold {key:?} names no target (targets: {})",
                known.join(", ")
            ));
        };
        c.held_at = Some(*level);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(
        id: &str,
        actor: &str,
        minute: i64,
        alert: bool,
        code: Option<&str>,
        p: f64,
    ) -> Verdict {
        let mut v: Verdict = serde_json::from_value(serde_json::json!({
            "event_id": id, "source": "okta", "tenant": "t",
            "time": chrono::DateTime::<chrono::Utc>::from_timestamp(1_700_000_000 + minute * 60, 0).unwrap(),
            "action": "grant_role", "actor": actor, "target": "x", "entitlement": null, "privilege": null,
            "score": if alert { 80 } else { 0 }, "p_value": p, "severity": "info", "alert": alert,
            "reasons": [], "context": []
        }))
        .unwrap();
        if let Some(c) = code {
            v.reasons.push(crate::verdict::Reason {
                code: c.into(),
                detail: String::new(),
                p_value: p,
                scope: None,
            });
        }
        v
    }

    #[test]
    fn counts_recall_false_alerts_decoys_and_bursts_as_units() {
        let mut vs = vec![
            verdict("a", "ann", 0, true, Some("self_grant"), 1e-4),
            verdict("b", "bob", 0, false, None, 1.0),
            verdict("d", "hr", 0, true, Some("volume_burst"), 1e-3),
            verdict("b1", "eve", 0, false, None, 1.0),
            // The burst's alert falls on a change of eve's the simulation did not inject: it is
            // the burst's, not a false alert.
            verdict("e1", "eve", 1, true, Some("volume_burst"), 1e-6),
            verdict("b2", "eve", 1, false, None, 1.0),
            verdict("b3", "eve", 2, false, None, 1.0),
        ];
        for i in 0..96 {
            vs.push(verdict(
                &format!("r{i}"),
                "ann",
                i,
                i == 0,
                Some("off_hours"),
                if i < 2 { 0.005 } else { 1.0 },
            ));
        }
        let labels = [
            ("a", "self_grant"),
            ("b", "self_grant"),
            ("d", "decoy_onboarding"),
            ("b1", "bulk_burst"),
            ("b2", "bulk_burst"),
            ("b3", "bulk_burst"),
        ]
        .map(|(e, c)| Label {
            event_id: e.into(),
            class: c.into(),
        });
        let r = evaluate(&vs, &labels, &HashMap::new());
        assert_eq!(r.routine, 96);
        assert_eq!(r.in_bursts, 1);
        assert_eq!(r.false_alerts, 1);
        assert!((r.false_alerts_per_10k - 10_000.0 / 96.0).abs() < 1e-6);
        assert_eq!(r.classes["self_grant"].recall, 0.5);
        assert_eq!(r.classes["bulk_burst"].units, 1);
        assert_eq!(r.classes["bulk_burst"].recall, 1.0);
        assert_eq!(r.decoy_alert_rate, 1.0);
        assert_eq!(r.top_reason_correct, 1.0);
        // 3 of 97 benign p-values (two routine, one decoy) are below 0.01; 2 of 96 routine.
        let (_, share) = r.calibration.iter().find(|(t, _)| *t == 0.01).unwrap();
        assert!((share - 3.0 / 97.0).abs() < 1e-9);
        let (_, share) = r
            .calibration_routine
            .iter()
            .find(|(t, _)| *t == 0.01)
            .unwrap();
        assert!((share - 2.0 / 96.0).abs() < 1e-9);
        // The targets are judged on the routine share.
        let check = check_targets(&r)
            .into_iter()
            .find(|c| c.key == "calibration:1e-2")
            .unwrap();
        assert!((check.measured - (2.0 / 96.0 / 0.01f64).log10()).abs() < 1e-9);
    }

    #[test]
    fn a_burst_held_by_an_alert_that_names_it_is_caught() {
        // zed's burst: the alert falls on a lookalike account zed made in the middle of it, and
        // holds the burst's later changes; a second burst is held by an alert that does not name
        // a burst (an off-hours session's), which does not count.
        let mut lead = verdict("l", "zed", 1, true, Some("lookalike_domain"), 1e-9);
        lead.reasons.push(crate::verdict::Reason {
            code: "volume_burst".into(),
            detail: String::new(),
            p_value: 1e-4,
            scope: None,
        });
        let mut vs = vec![lead, verdict("b0", "zed", 0, false, None, 1.0)];
        for (i, m) in [2, 3].into_iter().enumerate() {
            let mut v = verdict(&format!("b{}", i + 1), "zed", m, false, None, 1.0);
            v.held_by = Some("l".into());
            vs.push(v);
        }
        vs.push(verdict("o", "yan", 0, true, Some("off_hours"), 1e-6));
        let mut held = verdict("c0", "yan", 1, false, None, 1.0);
        held.held_by = Some("o".into());
        vs.push(held);
        let labels = [
            ("l", "lookalike_domain"),
            ("b0", "bulk_burst"),
            ("b1", "bulk_burst"),
            ("b2", "bulk_burst"),
            ("o", "off_hours_admin"),
            ("c0", "bulk_burst"),
        ]
        .map(|(e, c)| Label {
            event_id: e.into(),
            class: c.into(),
        });
        let r = evaluate(&vs, &labels, &HashMap::new());
        let bursts = &r.classes["bulk_burst"];
        assert_eq!((bursts.units, bursts.detected), (2, 1));
        // Caught, but its alert's top reason is the lookalike.
        assert_eq!(bursts.top_reason_correct, 0.0);
        assert_eq!(r.classes["lookalike_domain"].recall, 1.0);
    }

    #[test]
    fn comparisons_share_the_false_alert_budget_with_ties_split() {
        let f = alert_probability(&[2.0, 1.0, 1.0, 0.0], 2);
        assert_eq!(f(2.0), 1.0);
        assert_eq!(f(1.0), 0.5);
        assert_eq!(f(0.0), 0.0);
        let none = alert_probability(&[0.0, 0.0], 0);
        assert_eq!(none(0.0), 0.0);
        assert_eq!(none(1.0), 1.0);
    }

    #[test]
    fn a_missed_target_passes_only_when_held_and_no_worse_than_its_hold() {
        let report = Report {
            false_alerts_per_10k: 3.6,
            calibration_routine: vec![(1e-2, 0.008), (1e-3, 0.00155)],
            top_reason_correct: 0.95,
            ..Report::default()
        };
        let mut checks = check_targets(&report);
        let get = |c: &[TargetCheck], key: &str| c.iter().find(|t| t.key == key).unwrap().clone();
        assert!(!get(&checks, "false_alerts_per_10k").passes());
        assert!(get(&checks, "calibration:1e-2").passes());
        let cal = get(&checks, "calibration:1e-3");
        assert!(!cal.met && (cal.measured - 1.55f64.log10()).abs() < 1e-9);

        let holds =
            Holds::from_toml("[hold]\nfalse_alerts_per_10k = 3.6\n\"calibration:1e-3\" = 0.15\n")
                .unwrap();
        apply_holds(&mut checks, &holds).unwrap();
        // Held at its level: passes; held tighter than it measures: still fails.
        assert!(get(&checks, "false_alerts_per_10k").passes());
        assert!(!get(&checks, "calibration:1e-3").passes());
        // A recall held at a floor passes above it, not below.
        let mut recall = get(&checks, "top_reason_correct");
        recall.met = false;
        recall.held_at = Some(0.9);
        assert!(recall.passes());
        recall.held_at = Some(0.99);
        assert!(!recall.passes());

        // A hold naming no target is an error, not a silent pass; unknown tables too.
        let typo = Holds::from_toml("[hold]\nfalse_alert = 9.0\n").unwrap();
        let err = apply_holds(&mut checks, &typo).unwrap_err();
        assert!(
            err.contains("false_alert") && err.contains("false_alerts_per_10k"),
            "{err}"
        );
        assert!(Holds::from_toml("[holds]\nx = 1.0\n").is_err());
    }
}
