//! Human-readable renderings of verdicts.

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use provguard_core::{Event, Verdict};

fn width() -> u16 {
    comfy_table::Table::new().width().unwrap_or(160).max(100)
}

/// One row per alert: when, how bad, who did what to whom, and why.
pub fn alerts(alerts: &[Verdict]) -> String {
    if alerts.is_empty() {
        return "no alerts".into();
    }
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(width())
        .set_header(vec!["time (UTC)", "severity", "actor", "change", "reasons"]);
    for v in alerts {
        let change = format!(
            "{} {}{}",
            v.action,
            v.target,
            v.entitlement
                .as_deref()
                .map(|e| format!(" → {e}"))
                .unwrap_or_default()
        );
        let reasons = v
            .reasons
            .iter()
            .map(|r| format!("{}: {}", r.code, r.detail))
            .collect::<Vec<_>>()
            .join("\n");
        t.add_row(vec![
            v.time.format("%Y-%m-%d %H:%M").to_string(),
            format!("{} ({})", v.severity, v.score),
            v.actor.clone(),
            change,
            reasons,
        ]);
    }
    t.to_string()
}

/// A verdict in full, with the event's history.
pub fn explain(v: &Verdict, event: Option<&Event>) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "event {} ({}, tenant {})\n{}  {} {} {}{}\nseverity {} · score {} · p-value {:.2e} · alert {}\n",
        v.event_id,
        v.source,
        v.tenant,
        v.time.to_rfc3339(),
        v.actor,
        v.action,
        v.target,
        v.entitlement
            .as_deref()
            .map(|e| format!(" → {e} ({})", v.privilege.map(|p| p.as_str()).unwrap_or("unknown")))
            .unwrap_or_default(),
        v.severity,
        v.score,
        v.p_value,
        if v.alert { "yes" } else { "no" }
    ));
    if let Some(e) = event {
        s.push_str(&format!(
            "channel {}{}\n",
            e.channel,
            e.actor
                .ip
                .as_deref()
                .map(|ip| format!(" · from {ip}"))
                .unwrap_or_default()
        ));
    }
    s.push_str("\nreasons:\n");
    if v.reasons.is_empty() {
        s.push_str("  (none)\n");
    }
    for r in &v.reasons {
        s.push_str(&format!(
            "  - {} (p = {:.2e}{}): {}\n",
            r.code,
            r.p_value,
            r.scope
                .as_deref()
                .map(|x| format!(", {x}"))
                .unwrap_or_default(),
            r.detail
        ));
    }
    if !v.context.is_empty() {
        s.push_str("\ncontext:\n");
        for c in &v.context {
            s.push_str(&format!("  - {} ({}): {}\n", c.kind, c.effect, c.detail));
        }
    }
    if let Some(f) = &v.feedback {
        s.push_str(&format!(
            "\nfeedback: {} at {}{}\n",
            f.label.as_str(),
            f.at.to_rfc3339(),
            f.note
                .as_deref()
                .map(|n| format!(" — {n}"))
                .unwrap_or_default()
        ));
    }
    if !v.history.is_empty() {
        s.push_str("\nhistory (target and actor):\n");
        for h in &v.history {
            s.push_str(&format!(
                "  {}  {:<22} {} → {}{}  [{}]\n",
                h.time.format("%Y-%m-%d %H:%M"),
                h.action.as_str(),
                h.actor,
                h.target,
                h.entitlement
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default(),
                h.id
            ));
        }
    }
    s
}

/// An audit verification report, for people.
pub fn audit(r: &provguard_core::audit::AuditReport) -> String {
    let mut s = format!(
        "audit trail {}: {} records ({} verdicts, {} feedback)",
        if r.intact() { "intact" } else { "ALTERED" },
        r.records,
        r.verdicts,
        r.feedback
    );
    if r.pending > 0 {
        s.push_str(&format!(
            "\n{} verdicts or feedback not sealed yet (the next seal chains them)",
            r.pending
        ));
    }
    for p in &r.problems {
        s.push_str("\n  - ");
        s.push_str(p);
    }
    if let Some(h) = &r.head {
        s.push_str(&format!(
            "\nhead: {h}\n(keep the head elsewhere; `provguard audit verify --head {h}` checks it later)"
        ));
    }
    s
}
