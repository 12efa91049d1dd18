//! `provguard demo`: a bundled organisation's history is learned, then a day with planted
//! anomalies is replayed and its alerts are printed. Everything is embedded: no network, no AWS.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use provguard_core::context::{self, Approval, ChangeWindow};
use provguard_core::store::{ContextImport, ContextStore, SqliteStore};
use provguard_core::{Mode, Pipeline, Stats};

use crate::{build_normalizer, collect_verdicts, load_config, stats_summary, table};

const DIRECTORY: &str = include_str!("../../samples/demo/context/directory.csv");
const APPROVALS: &str = include_str!("../../samples/demo/context/approvals.jsonl");
const CHANGE_WINDOWS: &str = include_str!("../../samples/demo/context/change_windows.jsonl");
const DOMAINS: &str = include_str!("../../samples/demo/context/domains.txt");
const HISTORY: &[(&str, &[u8])] = &[
    (
        "history/okta.jsonl.gz",
        include_bytes!("../../samples/demo/history/okta.jsonl.gz"),
    ),
    (
        "history/cloudtrail.json.gz",
        include_bytes!("../../samples/demo/history/cloudtrail.json.gz"),
    ),
    (
        "history/entra.jsonl.gz",
        include_bytes!("../../samples/demo/history/entra.jsonl.gz"),
    ),
];
const REPLAY: &[u8] = include_bytes!("../../samples/demo/replay/day.jsonl");

/// The demo's history ends here; the replayed day follows.
const HISTORY_END: &str = "2026-11-02T00:00:00Z";

fn remove_state(state: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = state.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot replace {}", state.display()));
            }
        }
    }
    Ok(())
}

pub fn run(config: Option<&Path>, state: &Path) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let cfg = load_config(config)?;
    let normalizer = build_normalizer(&cfg, &[])?;
    remove_state(state)?;
    let store = SqliteStore::open(state)?;
    let import = ContextImport {
        people: Some(context::read_directory(
            "directory.csv",
            DIRECTORY.as_bytes(),
        )?),
        approvals: Some(context::read_jsonl::<Approval>(
            "approvals.jsonl",
            APPROVALS.as_bytes(),
        )?),
        change_windows: Some(context::read_jsonl::<ChangeWindow>(
            "change_windows.jsonl",
            CHANGE_WINDOWS.as_bytes(),
        )?),
        domains: Some(context::read_domains(DOMAINS.as_bytes())?),
    };
    store.import_context(&import)?;
    let mut err = std::io::stderr().lock();
    writeln!(err, "context: {}", crate::describe_context_import(&import))?;

    let mut pipeline = Pipeline::new(store, normalizer, cfg.detect.clone())?;
    let history_end: DateTime<Utc> = HISTORY_END.parse()?;
    let mut learned = Stats::default();
    for (name, bytes) in HISTORY {
        let (s, _) = collect_verdicts(&mut pipeline, bytes, Mode::Learn, history_end)
            .with_context(|| format!("learning {name}"))?;
        learned.add(&s);
    }
    writeln!(err, "learned history: {}", stats_summary(&learned))?;
    let (used, _, scopes) = pipeline.rebaseline(history_end, 180)?;
    writeln!(err, "rebaselined {scopes} scopes from {used} events")?;

    let (stats, verdicts) = collect_verdicts(&mut pipeline, REPLAY, Mode::Score, history_end)?;
    writeln!(err, "replayed 2026-11-02: {}", stats_summary(&stats))?;
    drop(err);

    let alerts: Vec<_> = verdicts.into_iter().filter(|v| v.alert).collect();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", table::alerts(&alerts))?;
    writeln!(
        out,
        "\n{} alerts among {} events scored in {:.1} s.\nstate: {}\nnext: provguard explain --state {} {}",
        alerts.len(),
        stats.verdicts,
        started.elapsed().as_secs_f64(),
        state.display(),
        state.display(),
        alerts.first().map_or("<EVENT_ID>", |v| v.event_id.as_str())
    )?;
    Ok(ExitCode::SUCCESS)
}
