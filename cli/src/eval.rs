//! `provguard eval`: detection quality of a scored period against its labels.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use provguard_core::Verdict;
use provguard_core::eval::{self, Label, Report, TargetCheck};
use provguard_core::store::{EventStore, SqliteStore};

fn read_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{}: line {}", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

/// Evaluates one or more runs (state, labels, verdicts), pooled.
pub fn run(
    states: &[std::path::PathBuf],
    labels: &[std::path::PathBuf],
    verdicts: &[std::path::PathBuf],
    json: bool,
    check: bool,
    holds: Option<&Path>,
) -> Result<ExitCode> {
    if states.len() != labels.len() || states.len() != verdicts.len() {
        anyhow::bail!(
            "give --state, --labels and --verdicts once per run (the same number of each)"
        );
    }
    let mut all_labels: Vec<Label> = Vec::new();
    let mut all_verdicts: Vec<Verdict> = Vec::new();
    let mut comparisons = std::collections::HashMap::new();
    for ((state, labels), verdicts) in states.iter().zip(labels).zip(verdicts) {
        let l: Vec<Label> = read_lines(labels)?;
        let v: Vec<Verdict> = read_lines(verdicts)?;
        let store = SqliteStore::open(state)?;
        let wanted: HashSet<String> = v.iter().map(|x| x.event_id.clone()).collect();
        let mut log = Vec::new();
        store.scan_events(chrono::DateTime::<chrono::Utc>::MIN_UTC, &mut |e, _| {
            log.push(e)
        })?;
        comparisons.extend(eval::comparisons(log, &wanted));
        all_labels.extend(l);
        all_verdicts.extend(v);
    }
    let report = eval::evaluate(&all_verdicts, &all_labels, &comparisons);
    let mut targets = eval::check_targets(&report);
    if let Some(path) = holds {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let holds = eval::Holds::from_toml(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        eval::apply_holds(&mut targets, &holds)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    if json {
        let doc = serde_json::json!({"report": report, "targets": targets});
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
    } else {
        writeln!(out, "{}", render(&report, &targets))?;
    }
    if report.missing > 0 {
        anyhow::bail!(
            "{} labelled events have no verdict: is {} the output of ingesting the labelled period?",
            report.missing,
            "--verdicts"
        );
    }
    let met = targets.iter().all(TargetCheck::passes);
    Ok(if check && !met {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn render(r: &Report, targets: &[TargetCheck]) -> String {
    use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
    let mut s = format!(
        "{} events: {} routine, {} decoys, {} labelled anomalies, {} other changes inside injected bursts\n\
         alerts {} · false alerts {} ({:.2} per 10,000 routine) · precision {:.3} · top reason correct {:.1} %\n\
         decoy alert rate {:.2} % (first-seen {:.2} %, static rules {:.2} % at the same false-alert budget)\n\n",
        r.events,
        r.routine,
        r.decoys,
        r.events - r.routine - r.decoys - r.in_bursts,
        r.in_bursts,
        r.alerts,
        r.false_alerts,
        r.false_alerts_per_10k,
        r.precision,
        100.0 * r.top_reason_correct,
        100.0 * r.decoy_alert_rate,
        100.0 * r.first_seen_decoy_alert_rate,
        100.0 * r.static_rules_decoy_alert_rate,
    );
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "class",
        "units",
        "recall",
        "top reason ok",
        "first-seen recall",
        "static-rules recall",
    ]);
    for (class, c) in &r.classes {
        t.add_row(vec![
            class.clone(),
            c.units.to_string(),
            format!("{:.3}", c.recall),
            format!("{:.0} %", 100.0 * c.top_reason_correct),
            format!("{:.3}", c.first_seen_recall),
            format!("{:.3}", c.static_rules_recall),
        ]);
    }
    s.push_str(&t.to_string());
    s.push_str(
        "\n\ncalibration (share of events with p below the threshold; the targets judge routine events):\n",
    );
    s.push_str("  threshold  routine   all benign (routine and decoys)\n");
    for ((th, share), (_, all)) in r.calibration_routine.iter().zip(&r.calibration) {
        s.push_str(&format!("  p < {th:<7e}{share:.2e}  {all:.2e}\n"));
    }
    s.push_str("\ntargets:\n");
    for t in targets {
        let status = match (t.met, t.held_at) {
            (true, None) => "met".to_owned(),
            (true, Some(_)) => "met; its hold can go".to_owned(),
            (false, Some(h)) if t.passes() => format!("held at {h}"),
            (false, Some(h)) => format!("MISSED, worse than held {h}"),
            (false, None) => "MISSED".to_owned(),
        };
        s.push_str(&format!("  [{status}] {} — {}", t.target, t.value));
        if t.held_at.is_some() && !t.met {
            s.push_str(&format!(" ({} = {:.3})", t.key, t.measured));
        }
        s.push('\n');
    }
    s
}
