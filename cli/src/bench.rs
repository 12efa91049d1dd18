//! The benchmark harness: a simulated organisation's history warms the baselines, then its test
//! period is timed record by record, from raw bytes to a committed verdict. `provguard bench`
//! prints the figures as one table; the criterion benches in `cli/benches` use the same workload.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use provguard_core::context::{self, Approval, ChangeWindow};
use provguard_core::detect::{self, DetectConfig};
use provguard_core::normalize::{Normalized, split_input};
use provguard_core::store::{ContextImport, ContextStore, Ledger as _, Store};
use provguard_core::{Config, Event, Mode, Normalizer, Pipeline};

use crate::simulate::{self, SimulateArgs};

/// One raw record of the test period, as the bytes a webhook or a log line would carry.
#[derive(Debug, Clone)]
pub struct Record {
    /// The file it came from, which names its source (`okta`, `cloudtrail`, `entra`, …).
    pub source: &'static str,
    pub bytes: Vec<u8>,
}

/// A simulated organisation: context, history files and the test period's records.
#[derive(Debug)]
pub struct Workload {
    pub context: ContextImport,
    /// (file name, bytes) of the history period.
    pub history: Vec<(String, Vec<u8>)>,
    /// The test period's records in time order within each source.
    pub test: Vec<Record>,
    /// When the test period ends: the `now` of every run.
    pub now: DateTime<Utc>,
}

/// Source names of the simulator's files.
pub const SOURCES: &[&str] = &["okta", "cloudtrail", "entra", "gworkspace", "scim"];

fn source_of(name: &str) -> Option<&'static str> {
    let stem = Path::new(name).file_name()?.to_str()?;
    SOURCES.iter().copied().find(|s| stem.starts_with(s))
}

impl Workload {
    /// Simulates an organisation of `people` with `days` of history and `test_days` to time.
    pub fn simulate(seed: u64, people: usize, days: u32, test_days: u32) -> Result<Self> {
        let out = simulate::generate(&SimulateArgs {
            seed,
            out: Default::default(),
            people,
            days,
            test_days,
        })?;
        let mut w = Workload {
            context: ContextImport::default(),
            history: Vec::new(),
            test: Vec::new(),
            now: Utc::now(),
        };
        for (path, bytes) in out.files {
            let name = path.display().to_string();
            let dir = path
                .parent()
                .and_then(|p| p.file_name())
                .and_then(|p| p.to_str())
                .unwrap_or_default();
            let file = path
                .file_name()
                .and_then(|f| f.to_str())
                .unwrap_or_default();
            match (dir, file) {
                ("context", "directory.csv") => {
                    w.context.people = Some(context::read_directory(&name, &bytes[..])?);
                }
                ("context", "approvals.jsonl") => {
                    w.context.approvals = Some(context::read_jsonl::<Approval>(&name, &bytes[..])?);
                }
                ("context", "change_windows.jsonl") => {
                    w.context.change_windows =
                        Some(context::read_jsonl::<ChangeWindow>(&name, &bytes[..])?);
                }
                ("context", "domains.txt") => {
                    w.context.domains = Some(context::read_domains(&bytes[..])?);
                }
                ("history", _) => w.history.push((name, bytes)),
                ("test", _) => {
                    let source = source_of(&name)
                        .with_context(|| format!("no source for simulated file {name}"))?;
                    for piece in split_input(&bytes) {
                        let record = piece.map_err(|b| anyhow::anyhow!("{name}: {}", b.reason))?;
                        w.test.push(Record {
                            source,
                            bytes: serde_json::to_vec(&record.value)?,
                        });
                    }
                }
                _ => {}
            }
        }
        if w.test.is_empty() {
            bail!("the simulated test period has no records");
        }
        Ok(w)
    }

    /// Imports the context into `store` and learns the history: a pipeline with warm baselines.
    pub fn warm<S: Store>(
        &self,
        store: S,
        normalizer: Normalizer,
        cfg: DetectConfig,
    ) -> Result<Pipeline<S>> {
        store.import_context(&self.context)?;
        let mut pipeline = Pipeline::new(store, normalizer, cfg)?;
        pipeline.begin_batch()?;
        for (_, bytes) in &self.history {
            pipeline.process_bytes(bytes, None, Mode::Learn, self.now, &mut |_| {})?;
        }
        pipeline.end_batch()?;
        Ok(pipeline)
    }

    /// The test records of one source.
    pub fn of_source<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
        self.test.iter().filter(move |r| r.source == source)
    }
}

/// The bundled normalizer and the default detection settings.
pub fn defaults() -> Result<(Normalizer, Config)> {
    let cfg = Config::default();
    let normalizer = Normalizer::new(&[], cfg.privileges.clone())?;
    Ok((normalizer, cfg))
}

/// The floor: parsing the record's bytes into a JSON value.
pub fn parse(r: &Record) -> serde_json::Value {
    serde_json::from_slice(&r.bytes).unwrap_or_default()
}

/// Normalizes a record's bytes into events (parse included).
pub fn normalize(normalizer: &mut Normalizer, r: &Record, now: DateTime<Utc>) -> Vec<Event> {
    let mut out = Vec::new();
    for piece in split_input(&r.bytes).into_iter().flatten() {
        if let Normalized::Events(events) = normalizer.normalize(&piece, None, now) {
            out.extend(events);
        }
    }
    out
}

/// The whole pipeline for one record: parse, normalize, enrich, score, learn, commit.
pub fn process<S: Store>(p: &mut Pipeline<S>, r: &Record, now: DateTime<Utc>) -> Result<u64> {
    let mut verdicts = 0u64;
    for piece in split_input(&r.bytes) {
        p.process_piece(piece, None, Mode::Score, now, &mut |_| verdicts += 1)?;
    }
    Ok(verdicts)
}

/// `n` records of the test period in order, repeated under new event ids past its end, so none
/// is a duplicate of another.
pub fn unique_records(test: &[Record], n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let r = &test[i % test.len()];
            let round = i / test.len();
            if round == 0 {
                return r.clone();
            }
            let mut v: serde_json::Value = serde_json::from_slice(&r.bytes).unwrap_or_default();
            let tag = format!("-r{round}");
            let field = match r.source {
                "okta" => v.get_mut("uuid"),
                "cloudtrail" => v.get_mut("eventID"),
                "entra" => v.get_mut("id"),
                "gworkspace" => v.get_mut("id").and_then(|i| i.get_mut("uniqueQualifier")),
                _ => None,
            };
            match field {
                Some(serde_json::Value::String(s)) => s.push_str(&tag),
                Some(other) => *other = serde_json::Value::String(format!("{other}{tag}")),
                // Records identified by their content hash: any change gives a new id.
                None => {
                    if let Some(o) = v.as_object_mut() {
                        o.insert("benchCopy".into(), round.into());
                    }
                }
            }
            Record {
                source: r.source,
                bytes: serde_json::to_vec(&v).unwrap_or_default(),
            }
        })
        .collect()
}

/// The history's normalized events.
pub fn history_events(w: &Workload) -> Result<Vec<Event>> {
    let (mut normalizer, _) = defaults()?;
    Ok(w.history
        .iter()
        .flat_map(|(_, bytes)| split_input(bytes))
        .flatten()
        .flat_map(|rec| match normalizer.normalize(&rec, None, w.now) {
            Normalized::Events(e) => e,
            _ => Vec::new(),
        })
        .collect())
}

/// Rebaselines a SQLite state file in this process; returns the time it took.
pub fn rebaseline_once(state: &Path) -> Result<Duration> {
    let (normalizer, cfg) = defaults()?;
    let store = provguard_core::store::SqliteStore::open(state)?;
    let mut p = Pipeline::new(store, normalizer, cfg.detect)?;
    let start = Instant::now();
    p.rebaseline(Utc::now(), 36_500)?;
    Ok(start.elapsed())
}

/// Scores an event against the pipeline's current baselines without learning or storing it.
pub fn score_only(events: &[Event], baselines: &WarmState) -> usize {
    let mut alerts = 0;
    for e in events {
        let enriched = detect::enrich(e, &baselines.ctx, &baselines.cfg);
        let evidence = detect::Evidence {
            baselines: &baselines.baselines,
            actor_recent: &[],
            target_recent: &[],
            tenant_recent: &[],
            ctx: &baselines.ctx,
            burst_alerted: None,
            off_hours_alerted: None,
        };
        alerts += usize::from(detect::score(&enriched, &evidence, &baselines.cfg).alert);
    }
    alerts
}

/// Everything the scorer reads, taken from a warm in-memory store.
#[derive(Debug)]
pub struct WarmState {
    pub baselines: std::collections::HashMap<
        provguard_core::baseline::ScopeKey,
        provguard_core::baseline::Baseline,
    >,
    pub ctx: provguard_core::context::Context,
    pub cfg: DetectConfig,
}

impl WarmState {
    pub fn from_memory(
        store: &provguard_core::store::MemoryStore,
        cfg: DetectConfig,
    ) -> Result<Self> {
        Ok(WarmState {
            baselines: store.all_baselines(),
            ctx: store.context()?,
            cfg,
        })
    }
}

/// Quantile of sorted durations.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Per-record timings of one run.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub records: usize,
    pub total: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

impl Timing {
    pub fn per_sec(&self) -> f64 {
        self.records as f64 / self.total.as_secs_f64().max(1e-12)
    }
    pub fn mean(&self) -> Duration {
        self.total / self.records.max(1) as u32
    }
}

/// Times `f` once per record.
pub fn time_each<T>(records: &[T], mut f: impl FnMut(&T) -> Result<()>) -> Result<Timing> {
    let mut each = Vec::with_capacity(records.len());
    let start = Instant::now();
    for r in records {
        let t = Instant::now();
        f(r)?;
        each.push(t.elapsed());
    }
    let total = start.elapsed();
    each.sort_unstable();
    Ok(Timing {
        records: records.len(),
        total,
        p50: quantile(&each, 0.5),
        p99: quantile(&each, 0.99),
    })
}

/// Peak resident memory of this process so far (Linux `VmHWM`), in bytes.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Arguments of `provguard bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// People in the simulated organisation whose test period is timed.
    #[arg(long, default_value_t = 2000)]
    pub people: usize,
    /// Days of history learned before timing.
    #[arg(long, default_value_t = 60)]
    pub days: u32,
    /// Days of the timed test period.
    #[arg(long = "test-days", default_value_t = 7)]
    pub test_days: u32,
    /// Seed of the simulated organisation.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Sizes of the stored event logs to rebaseline (each in a child process, for its memory).
    #[arg(long = "rebaseline", value_delimiter = ',', default_values_t = [100_000u64, 1_000_000u64])]
    pub rebaseline: Vec<u64>,
    /// A Lambda `bootstrap` of the ingest function: its size, and its cold start to the first
    /// verdict through a local Runtime API (needs the function's environment: `PROVGUARD_TABLE`
    /// and an `AWS_ENDPOINT_URL` DynamoDB such as moto).
    #[arg(long)]
    pub bootstrap: Option<std::path::PathBuf>,
    /// The deployed (stripped arm64) ingest `bootstrap`, for its size when `--bootstrap` is a
    /// build for this machine.
    #[arg(long = "deployed-bootstrap")]
    pub deployed_bootstrap: Option<std::path::PathBuf>,
    /// Small sizes for a quick check that everything runs (figures are not representative).
    #[arg(long)]
    pub quick: bool,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Internal: rebaseline the SQLite state file given, in this process, and print JSON.
    #[arg(long, hide = true)]
    pub child_rebaseline: Option<std::path::PathBuf>,
}

/// One line of the table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub measure: String,
    pub result: String,
    pub target: String,
    /// Whether the target is met (`None`: no target, or not measured).
    pub met: Option<bool>,
    /// The figure itself, in the unit the target names.
    pub value: Option<f64>,
}

fn row(measure: impl Into<String>, result: impl Into<String>) -> Row {
    Row {
        measure: measure.into(),
        result: result.into(),
        target: String::new(),
        met: None,
        value: None,
    }
}

impl Row {
    fn target(mut self, target: &str, value: f64, met: bool) -> Self {
        self.target = target.to_owned();
        self.value = Some(value);
        self.met = Some(met);
        self
    }
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// What a child process reports after a rebaseline.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct RebaselineReport {
    events: u64,
    scopes: usize,
    secs: f64,
    peak_rss: Option<u64>,
}

/// `provguard bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    if let Some(state) = &args.child_rebaseline {
        return child_rebaseline(state);
    }
    let (people, days, rebaseline_sizes) = if args.quick {
        (200, 14, vec![2_000])
    } else {
        (args.people, args.days, args.rebaseline.clone())
    };
    let (mut normalizer, cfg) = defaults()?;
    let mut stderr = std::io::stderr().lock();
    use std::io::Write as _;
    writeln!(
        stderr,
        "bench: simulating {people} people, {days} days of history, {} test days (seed {})",
        args.test_days, args.seed
    )?;
    let w = Workload::simulate(args.seed, people, days, args.test_days)?;
    let mut rows = Vec::new();

    // The floor and normalization, per source.
    let floor = time_each(&w.test, |r| {
        std::hint::black_box(parse(r));
        Ok(())
    })?;
    rows.push(row(
        format!(
            "parse floor: serde_json → Value ({} records)",
            floor.records
        ),
        format!(
            "{:.0}/s · mean {} · p99 {}",
            floor.per_sec(),
            us(floor.mean()),
            us(floor.p99)
        ),
    ));
    // Each bundled program compiles on its first record; compile them before timing.
    for source in SOURCES {
        if let Some(r) = w.of_source(source).next() {
            normalize(&mut normalizer, r, w.now);
        }
    }
    let mut events = 0usize;
    for source in SOURCES {
        let recs: Vec<&Record> = w.of_source(source).collect();
        if recs.is_empty() {
            continue;
        }
        let f = time_each(&recs, |r| {
            std::hint::black_box(parse(r));
            Ok(())
        })?;
        let t = time_each(&recs, |r| {
            events += std::hint::black_box(normalize(&mut normalizer, r, w.now)).len();
            Ok(())
        })?;
        rows.push(row(
            format!("normalize {source} ({} records)", t.records),
            format!(
                "mean {} · p99 {} · {:.1}× its parse",
                us(t.mean()),
                us(t.p99),
                t.mean().as_secs_f64() / f.mean().as_secs_f64().max(1e-12)
            ),
        ));
    }
    writeln!(
        stderr,
        "bench: {} test records, {events} events",
        w.test.len()
    )?;

    // Scoring alone, on the warm in-memory baselines.
    let mem = w.warm(
        provguard_core::store::MemoryStore::new(),
        defaults()?.0,
        cfg.detect.clone(),
    )?;
    let warm = WarmState::from_memory(mem.store(), cfg.detect.clone())?;
    let normalized: Vec<Vec<Event>> = w
        .test
        .iter()
        .map(|r| normalize(&mut normalizer, r, w.now))
        .collect();
    let s = time_each(&normalized, |evs| {
        std::hint::black_box(score_only(evs, &warm));
        Ok(())
    })?;
    rows.push(row(
        "score with warm baselines (enrich + detectors), per record",
        format!("mean {} · p99 {}", us(s.mean()), us(s.p99)),
    ));
    drop(warm);

    // The whole pipeline, in memory and on SQLite: a commit per event, then group commits.
    let mut mem = mem;
    let p1 = time_each(&w.test, |r| process(&mut mem, r, w.now).map(|_| ()))?;
    drop(mem);
    rows.push(row(
        "pipeline, in-memory store, a commit per event: events/s · p50 · p99",
        format!("{:.0}/s · {} · {}", p1.per_sec(), us(p1.p50), us(p1.p99)),
    ));
    let mut mem = w.warm(
        provguard_core::store::MemoryStore::new(),
        defaults()?.0,
        cfg.detect.clone(),
    )?;
    mem.begin_batch()?;
    let p = time_each(&w.test, |r| process(&mut mem, r, w.now).map(|_| ()))?;
    mem.end_batch()?;
    let ratio = p.mean().as_secs_f64() / floor.mean().as_secs_f64().max(1e-12);
    rows.push(
        row(
            "pipeline, in-memory store, group commit: events/s on one core",
            format!("{:.0}/s", p.per_sec()),
        )
        .target("≥ 100,000/s", p.per_sec(), p.per_sec() >= 100_000.0),
    );
    rows.push(
        row(
            "pipeline, in-memory store: p50 · p99 per record",
            format!("{} · {}", us(p.p50), us(p.p99)),
        )
        .target(
            "p99 ≤ 50 µs",
            p.p99.as_secs_f64() * 1e6,
            p.p99 <= Duration::from_micros(50),
        ),
    );
    rows.push(
        row(
            "pipeline ÷ parse floor (mean per record)",
            format!("{ratio:.1}×"),
        )
        .target("≤ 4×", ratio, ratio <= 4.0),
    );
    drop(mem);

    let dir = tempfile_dir()?;
    let db = dir.join("bench.db");
    let mut sq = w.warm(
        provguard_core::store::SqliteStore::open(&db)?,
        defaults()?.0,
        cfg.detect.clone(),
    )?;
    let p = time_each(&w.test, |r| process(&mut sq, r, w.now).map(|_| ()))?;
    rows.push(row(
        "pipeline, SQLite store, a commit per event: events/s · p50 · p99",
        format!("{:.0}/s · {} · {}", p.per_sec(), us(p.p50), us(p.p99)),
    ));
    drop(sq);
    let db = dir.join("bench-batch.db");
    let mut sq = w.warm(
        provguard_core::store::SqliteStore::open(&db)?,
        defaults()?.0,
        cfg.detect.clone(),
    )?;
    let start = Instant::now();
    sq.begin_batch()?;
    let p = time_each(&w.test, |r| process(&mut sq, r, w.now).map(|_| ()))?;
    sq.end_batch()?;
    let total = start.elapsed().as_secs_f64();
    rows.push(row(
        "pipeline, SQLite store, group commit (as learn/ingest run): events/s · p50 · p99",
        format!(
            "{:.0}/s · {} · {}",
            p.records as f64 / total,
            us(p.p50),
            us(p.p99)
        ),
    ));
    drop(sq);

    // `provguard ingest` end to end: a new process reading the test period from files.
    let ingest = ingest_end_to_end(&w, &dir)?;
    rows.push(
        row(
            "provguard ingest into SQLite, end to end from files",
            format!(
                "{:.0} events/s ({} events in {:.2} s)",
                ingest.0, ingest.1, ingest.2
            ),
        )
        .target("≥ 20,000/s", ingest.0, ingest.0 >= 20_000.0),
    );

    // Rebaseline over stored logs of growing size, each in its own process.
    let history_events = history_events(&w)?;
    for n in &rebaseline_sizes {
        let file = dir.join(format!("log-{n}.db"));
        fill_log(&file, &history_events, *n)?;
        let r = rebaseline_in_child(&file)?;
        let per_m = r.secs * 1e6 / r.events.max(1) as f64;
        let mut line = row(
            format!("rebaseline {} stored events (SQLite)", r.events),
            format!(
                "{:.2} s · {:.2} s per million · {} scopes · peak {}",
                r.secs,
                per_m,
                r.scopes,
                r.peak_rss.map_or("?".into(), mib)
            ),
        );
        if *n >= 1_000_000 {
            let mem_ok = r.peak_rss.is_some_and(|m| m <= 1 << 30);
            line = line.target("≤ 10 s, ≤ 1 GiB", r.secs, r.secs <= 10.0 && mem_ok);
        }
        rows.push(line);
        std::fs::remove_file(&file).ok();
    }

    if let Some(boot) = args.deployed_bootstrap.as_ref().or(args.bootstrap.as_ref()) {
        let size = std::fs::metadata(boot)
            .with_context(|| format!("cannot read {}", boot.display()))?
            .len();
        rows.push(
            row(
                format!("ingest bootstrap size ({})", boot.display()),
                format!("{} ({:.1} MB)", mib(size), size as f64 / 1e6),
            )
            .target("≤ 12 MB", size as f64 / 1e6, size <= 12_000_000),
        );
    }
    if let Some(boot) = &args.bootstrap {
        match cold_start(boot) {
            Ok(d) => rows.push(
                row(
                    "ingest cold start: process start → first verdict",
                    format!("{:.1} ms", d.as_secs_f64() * 1e3),
                )
                .target(
                    "≤ 20 ms",
                    d.as_secs_f64() * 1e3,
                    d <= Duration::from_millis(20),
                ),
            ),
            Err(e) => rows.push(row("ingest cold start", format!("not measured: {e:#}"))),
        }
    }
    rows.push(row(
        "peak memory of this run",
        peak_rss().map_or("?".into(), mib),
    ));
    std::fs::remove_dir_all(&dir).ok();

    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
    } else {
        let mut table = comfy_table::Table::new();
        table.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED);
        table.set_header(["measure", "result", "target", "met"]);
        for r in &rows {
            table.add_row([
                r.measure.clone(),
                r.result.clone(),
                r.target.clone(),
                match r.met {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => String::new(),
                },
            ]);
        }
        writeln!(out, "{table}")?;
        writeln!(
            out,
            "machine: {} logical CPUs; one thread; release build; {} records of a simulated organisation of {people} (seed {})",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            w.test.len(),
            args.seed
        )?;
    }
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("provguard-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Writes the context and history, learns them with `provguard learn`, then times
/// `provguard ingest` of the test period: (events/s, events, seconds).
fn ingest_end_to_end(w: &Workload, dir: &Path) -> Result<(f64, usize, f64)> {
    let exe = std::env::current_exe()?;
    let state = dir.join("ingest.db");
    let mut hist = Vec::new();
    for (i, (_, bytes)) in w.history.iter().enumerate() {
        let f = dir.join(format!("history-{i}"));
        std::fs::write(&f, bytes)?;
        hist.push(f);
    }
    let test = dir.join("test.jsonl");
    let mut body = Vec::new();
    for r in &w.test {
        body.extend_from_slice(&r.bytes);
        body.push(b'\n');
    }
    std::fs::write(&test, &body)?;
    let status = std::process::Command::new(&exe)
        .arg("learn")
        .arg("--state")
        .arg(&state)
        .args(&hist)
        .stderr(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        bail!("provguard learn failed: {status}");
    }
    let start = Instant::now();
    let out = std::process::Command::new(&exe)
        .arg("ingest")
        .arg("--state")
        .arg(&state)
        .arg(&test)
        .stderr(std::process::Stdio::null())
        .output()?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("provguard ingest failed: {}", out.status);
    }
    let verdicts = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    Ok((verdicts as f64 / secs, verdicts, secs))
}

/// A SQLite state file holding `n` events: the history's events, repeated under new ids.
pub fn fill_log(file: &Path, events: &[Event], n: u64) -> Result<()> {
    use provguard_core::store::Commit;
    if events.is_empty() {
        bail!("no history events to fill the log with");
    }
    std::fs::remove_file(file).ok();
    let store = provguard_core::store::SqliteStore::open(file)?;
    let now = Utc::now();
    let mut written = 0u64;
    let mut round = 0u64;
    'fill: loop {
        for e in events {
            if written >= n {
                break 'fill;
            }
            let mut e = e.clone();
            if round > 0 {
                e.id = format!("{}~{round}", e.id);
            }
            store.commit(&Commit {
                event: &e,
                verdict: None,
                baselines: Vec::new(),
                ingested_at: now,
                actor_recent: &[],
                target_recent: &[],
                tenant_recent: &[],
            })?;
            written += 1;
        }
        round += 1;
    }
    Ok(())
}

fn rebaseline_in_child(file: &Path) -> Result<RebaselineReport> {
    let out = std::process::Command::new(std::env::current_exe()?)
        .arg("bench")
        .arg("--child-rebaseline")
        .arg(file)
        .stderr(std::process::Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("rebaseline child failed: {}", out.status);
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn child_rebaseline(state: &Path) -> Result<()> {
    let (normalizer, cfg) = defaults()?;
    let store = provguard_core::store::SqliteStore::open(state)?;
    let mut p = Pipeline::new(store, normalizer, cfg.detect)?;
    let now = Utc::now();
    let start = Instant::now();
    let (events, _, scopes) = p.rebaseline(now, 36_500)?;
    let report = RebaselineReport {
        events,
        scopes,
        secs: start.elapsed().as_secs_f64(),
        peak_rss: peak_rss(),
    };
    use std::io::Write as _;
    writeln!(
        std::io::stdout().lock(),
        "{}",
        serde_json::to_string(&report)?
    )?;
    Ok(())
}

/// A fresh table for the cold start on the DynamoDB of the environment (`AWS_ENDPOINT_URL`:
/// moto, say).
#[cfg(feature = "aws")]
fn bench_table() -> Result<String> {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        bail!("set PROVGUARD_TABLE, or AWS_ENDPOINT_URL to a local DynamoDB such as moto");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let name = format!("provguard-bench-{}", std::process::id());
    rt.block_on(async {
        let conf = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = aws_sdk_dynamodb::Client::new(&conf);
        provguard_core::store::dynamodb::create_table(&client, &name).await
    })?;
    Ok(name)
}

#[cfg(not(feature = "aws"))]
fn bench_table() -> Result<String> {
    bail!("set PROVGUARD_TABLE to the function's table")
}

/// The sample EventBridge delivery the cold start is timed with.
const COLD_START_EVENT: &str =
    include_str!("../../samples/invoke/eventbridge-attach-admin-2am.json");

/// Starts the bootstrap against a local Lambda Runtime API serving one invocation; returns the
/// time from process start to its response.
fn cold_start(bootstrap: &Path) -> Result<Duration> {
    let server = tiny_http::Server::http("127.0.0.1:0")
        .map_err(|e| anyhow::anyhow!("cannot listen on 127.0.0.1: {e}"))?;
    let addr = server.server_addr().to_ip().context("no address")?;
    let mut cmd = std::process::Command::new(bootstrap);
    if std::env::var_os("PROVGUARD_TABLE").is_none() {
        cmd.env("PROVGUARD_TABLE", bench_table()?);
    }
    if std::env::var_os("PROVGUARD_TOPIC_ARN").is_none() {
        // The sample event does not alert on an empty table, so nothing is published.
        cmd.env(
            "PROVGUARD_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:provguard-bench",
        );
    }
    let log = std::env::temp_dir().join(format!("provguard-cold-start-{}.log", std::process::id()));
    let log_file = std::fs::File::create(&log)?;
    let start = Instant::now();
    let mut child = cmd
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "provguard-ingest")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/provguard-ingest")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .stdout(std::process::Stdio::null())
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("cannot start {}", bootstrap.display()))?;
    let result = (|| -> Result<Duration> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let Some(mut req) = server.recv_timeout(Duration::from_millis(200))? else {
                if let Some(status) = child.try_wait()? {
                    bail!("the bootstrap exited before answering: {status}");
                }
                if Instant::now() > deadline {
                    bail!("no answer within 30 s");
                }
                continue;
            };
            let url = req.url().to_owned();
            if url.ends_with("/invocation/next") {
                let deadline_ms = (Utc::now() + chrono::Duration::seconds(30)).timestamp_millis();
                let h = |k: &str, v: &str| {
                    tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).expect("valid header")
                };
                let resp = tiny_http::Response::from_string(COLD_START_EVENT)
                    .with_header(h("Lambda-Runtime-Aws-Request-Id", "bench-1"))
                    .with_header(h("Lambda-Runtime-Deadline-Ms", &deadline_ms.to_string()))
                    .with_header(h(
                        "Lambda-Runtime-Invoked-Function-Arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:provguard-ingest",
                    ))
                    .with_header(h("Content-Type", "application/json"));
                req.respond(resp)?;
            } else if url.ends_with("/response") {
                let elapsed = start.elapsed();
                let mut body = String::new();
                req.as_reader().read_to_string(&mut body)?;
                req.respond(tiny_http::Response::empty(202))?;
                return Ok(elapsed);
            } else {
                let mut body = String::new();
                req.as_reader().read_to_string(&mut body)?;
                req.respond(tiny_http::Response::empty(202))?;
                bail!("the bootstrap reported an error at {url}: {body}");
            }
        }
    })();
    child.kill().ok();
    child.wait().ok();
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    std::fs::remove_file(&log).ok();
    result.with_context(|| {
        let last = stderr.lines().last().unwrap_or_default();
        format!("its last log line: {last}")
    })
}
