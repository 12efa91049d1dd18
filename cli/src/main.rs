//! `provguard`: catch anomalous identity provisioning on a laptop, no AWS needed.

use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use provguard_core::context::{self, Approval, ChangeWindow};
use provguard_core::normalize::{Normalized, split_input};
use provguard_core::store::{
    BaselineStore, ContextImport, ContextStore, DeadLetterStore, EventStore, SqliteStore,
    VerdictStore,
};
use provguard_core::{Config, Mode, Normalizer, Pipeline, Stats, Verdict};

mod demo;
mod eval;
mod serve;
mod table;

use provguard::{bench, simulate};

/// The pipeline (and VRL's compiler, on a cold start) allocates many small values: mimalloc
/// serves them faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "provguard", version, about = "Catch anomalous identity provisioning", long_about = None)]
struct Cli {
    /// Configuration file (TOML): privilege tiers, thresholds, extra mappings.
    #[arg(long, global = true, env = "PROVGUARD_CONFIG")]
    config: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Learn a bundled demo organisation, replay a day with planted anomalies, print the alerts.
    Demo {
        /// Where to keep the demo's state (replaced on every run).
        #[arg(long, default_value = "provguard-demo.db")]
        state: PathBuf,
    },
    /// Load business context (directory, approvals, change windows, own domains).
    #[command(subcommand)]
    Context(ContextCmd),
    /// Learn baselines from history without scoring or alerting.
    Learn {
        #[command(flatten)]
        input: InputArgs,
    },
    /// Score then learn each event in input order; one verdict JSON line per event on stdout.
    Ingest {
        #[command(flatten)]
        input: InputArgs,
    },
    /// Recompute baselines from the stored event log.
    Rebaseline {
        #[command(flatten)]
        state: StateArgs,
        /// End of the rolling window (RFC 3339); default: now.
        #[arg(long)]
        now: Option<DateTime<Utc>>,
        /// Length of the rolling window, days.
        #[arg(long, default_value_t = 180)]
        window_days: i64,
    },
    /// Erase one person's data: every event where they are the actor or the target, with its
    /// verdict and feedback, their directory entry, the approvals naming them, the dead letters
    /// mentioning them; alerts that listed their events lose those entries; the baselines are
    /// rebuilt from what is left. The audit trail records the erasure (ids and hashes only)
    /// and still verifies. Prints what was removed (JSON).
    Erase {
        #[command(flatten)]
        state: StateArgs,
        /// The person: an e-mail address or an identity provider id (case-insensitive).
        #[arg(long)]
        subject: String,
        /// End of the rebuilt baselines' rolling window (RFC 3339); default: now.
        #[arg(long)]
        now: Option<DateTime<Utc>>,
        /// Length of the rolling window, days.
        #[arg(long, default_value_t = 180)]
        window_days: i64,
    },
    /// List alerts from the audit trail (JSON lines).
    Alerts {
        #[command(flatten)]
        state: StateArgs,
        /// Only alerts for events at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<DateTime<Utc>>,
        /// Print a table instead of JSON lines.
        #[arg(long)]
        table: bool,
    },
    /// Explain one event's verdict: reasons, context and its event history.
    Explain {
        #[command(flatten)]
        state: StateArgs,
        event_id: String,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Normalize input without storing anything; prints the events as a JSON array.
    Normalize {
        #[arg(long)]
        source: Option<String>,
        /// Extra source: NAME=path/to/mapping.vrl (repeatable).
        #[arg(long = "mapping", value_name = "NAME=FILE")]
        mappings: Vec<String>,
        /// Ingest time for sources whose records carry no time (RFC 3339).
        #[arg(long)]
        now: Option<DateTime<Utc>>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Mark a verdict benign or malicious; a benign alert then joins the baselines.
    Feedback {
        #[command(flatten)]
        state: StateArgs,
        event_id: String,
        #[arg(value_enum)]
        label: FeedbackLabel,
        /// Why (kept in the audit trail).
        #[arg(long)]
        note: Option<String>,
    },
    /// Serve the webhook routes locally (Okta, Entra, Google, SCIM, signed custom mappings);
    /// verdicts go to stdout as JSON lines. Secrets come from PROVGUARD_* variables.
    Serve {
        #[arg(long)]
        state: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: String,
        /// Extra source: NAME=path/to/mapping.vrl (repeatable); signed requests reach it at
        /// /hook/NAME with the key in PROVGUARD_HMAC_<NAME>.
        #[arg(long = "mapping", value_name = "NAME=FILE")]
        mappings: Vec<String>,
        /// Stop after this many requests (for scripted use).
        #[arg(long, hide = true)]
        max_requests: Option<usize>,
    },
    /// Measure detection quality: verdicts of a labelled period against its labels.
    /// Repeat --state, --labels and --verdicts to pool several runs.
    Eval {
        #[arg(long, required = true)]
        state: Vec<PathBuf>,
        /// `labels.jsonl` ({"event_id","class"}) as written by `provguard simulate`.
        #[arg(long, required = true)]
        labels: Vec<PathBuf>,
        /// The verdicts `provguard ingest` wrote for the labelled period.
        #[arg(long, required = true)]
        verdicts: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Exit with status 1 when a quality target is missed.
        #[arg(long)]
        check: bool,
        /// With --check: targets not met yet held at a level instead (TOML: `[hold]` table of
        /// target keys to levels), so they cannot get worse; a missed target not held fails.
        #[arg(long, value_name = "FILE", requires = "check")]
        holds: Option<PathBuf>,
    },
    /// Write a synthetic organisation's provisioning history, test period, context and labels
    Simulate(simulate::SimulateArgs),
    /// Benchmark the hot path on a simulated organisation: parse floor, normalize, score, the
    /// whole pipeline (in memory and on SQLite), `ingest` end to end, rebaseline of large logs;
    /// prints one table. Build with `--release`
    Bench(bench::BenchArgs),
    /// The audit trail: verify its hash chain against the verdicts the state serves.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// What provguard has learned as normal, per scope.
    #[command(subcommand)]
    Baselines(BaselinesCmd),
    /// List dead-lettered records with their reasons (JSON lines), for inspection or replay.
    DeadLetters {
        #[command(flatten)]
        state: StateArgs,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum FeedbackLabel {
    Benign,
    Malicious,
}

#[derive(Debug, Subcommand)]
enum BaselinesCmd {
    /// Every baseline as JSON Lines, sorted by scope (`tenant|kind|value`): `{"scope", "at",
    /// "baseline"}` with the counters decayed to one reference time, so two states that learned
    /// the same events print the same lines.
    Export {
        #[command(flatten)]
        state: StateArgs,
        /// Only scopes whose key starts with this (`acme|tenant|`, `acme|actor|`, …).
        #[arg(long, value_name = "PREFIX")]
        scope: Option<String>,
        /// The reference time (RFC 3339); default: the newest among the scopes exported.
        #[arg(long)]
        at: Option<DateTime<Utc>>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCmd {
    /// Check every record's hash and link, the head kept beside the trail, and that each
    /// verdict and its feedback match their records; exit status 1 when anything was altered.
    Verify {
        #[command(flatten)]
        state: StateArgs,
        /// A head printed by an earlier verify (SEQ:HASH), kept elsewhere: the trail must still
        /// hold that record unchanged (this also catches a trail rewritten from the start).
        #[arg(long, value_name = "SEQ:HASH")]
        head: Option<provguard_core::audit::Head>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Chain the verdicts and feedback committed to a deployed stack's table since the last seal
    /// (the rebaseline function does it on every run; state files chain as they write).
    #[cfg(feature = "aws")]
    Seal {
        #[arg(long, value_name = "TABLE")]
        dynamodb_table: String,
    },
}

#[derive(Debug, Subcommand)]
enum ContextCmd {
    /// Import context files; each given kind replaces what the state held.
    Import {
        #[command(flatten)]
        state: StateArgs,
        #[arg(long)]
        directory: Option<PathBuf>,
        #[arg(long)]
        approvals: Option<PathBuf>,
        #[arg(long = "change-windows")]
        change_windows: Option<PathBuf>,
        #[arg(long)]
        domains: Option<PathBuf>,
    },
}

/// Where the state lives: a local SQLite file, or a deployed stack's DynamoDB table.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
struct StateArgs {
    /// State file (SQLite); created if missing.
    #[arg(long)]
    state: Option<PathBuf>,
    /// A deployed stack's DynamoDB table (its TableName output) instead of a state file, reached
    /// with the credentials and region of the environment (AWS_PROFILE, AWS_REGION, …).
    #[cfg(feature = "aws")]
    #[arg(long, value_name = "TABLE")]
    dynamodb_table: Option<String>,
}

impl StateArgs {
    fn describe(&self) -> String {
        #[cfg(feature = "aws")]
        if let Some(t) = &self.dynamodb_table {
            return format!("DynamoDB table {t}");
        }
        self.state
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    /// The flags that name this state again, for hints printed to the user.
    fn flag(&self) -> String {
        #[cfg(feature = "aws")]
        if let Some(t) = &self.dynamodb_table {
            return format!("--dynamodb-table {t}");
        }
        format!(
            "--state {}",
            self.state
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    }
}

/// An opened state.
enum Opened {
    Sqlite(SqliteStore),
    #[cfg(feature = "aws")]
    DynamoDb(provguard_core::store::DynamoDbStore),
}

fn open(state: &StateArgs) -> Result<Opened> {
    #[cfg(feature = "aws")]
    if let Some(table) = &state.dynamodb_table {
        return Ok(Opened::DynamoDb(open_table(table)?));
    }
    match &state.state {
        Some(path) => Ok(Opened::Sqlite(open_store(path)?)),
        None => bail!("give --state FILE or --dynamodb-table TABLE"),
    }
}

/// The DynamoDB store on `table`, its calls run on a runtime that lives as long as the process.
#[cfg(feature = "aws")]
fn open_table(table: &str) -> Result<provguard_core::store::DynamoDbStore> {
    use std::sync::OnceLock;
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let rt = match RT.get() {
        Some(rt) => rt,
        None => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("cannot start the AWS client runtime")?;
            RT.get_or_init(|| rt)
        }
    };
    let sdk = rt.block_on(aws_config::load_defaults(
        aws_config::BehaviorVersion::latest(),
    ));
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let store = provguard_core::store::DynamoDbStore::new(client, table, rt.handle().clone());
    // A table a newer provguard wrote is refused before anything is read or written.
    store.check_schema()?;
    Ok(store)
}

/// Runs `$body` with `$s` bound to the opened store, whichever kind it is.
macro_rules! on_store {
    ($state:expr, |$s:ident| $body:expr) => {
        match open($state)? {
            Opened::Sqlite($s) => $body,
            #[cfg(feature = "aws")]
            Opened::DynamoDb($s) => $body,
        }
    };
}

#[derive(Debug, Args)]
struct InputArgs {
    #[command(flatten)]
    state: StateArgs,
    /// Normalizer to use instead of detecting the source from each event's shape.
    #[arg(long)]
    source: Option<String>,
    /// Extra source: NAME=path/to/mapping.vrl (repeatable).
    #[arg(long = "mapping", value_name = "NAME=FILE")]
    mappings: Vec<String>,
    /// Ingest time (RFC 3339) for sources whose records carry no time; default: now.
    #[arg(long)]
    now: Option<DateTime<Utc>>,
    /// Input files: JSON Lines, a JSON array, one JSON object, a CloudTrail log file (.gz too),
    /// an Okta Event Hook delivery. `-` reads standard input.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PROVGUARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn load_config(path: Option<&Path>) -> Result<Config> {
    Ok(Config::load_optional(path)?)
}

/// Compiles the bundled programs plus configured and command-line mappings.
fn build_normalizer(cfg: &Config, flags: &[String]) -> Result<Normalizer> {
    let mut mappings: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, file: &Path| -> Result<()> {
        let src = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read mapping `{name}` from {}", file.display()))?;
        mappings.retain(|(n, _)| n != name);
        mappings.push((name.to_owned(), src));
        Ok(())
    };
    for (name, file) in &cfg.mappings {
        add(name, file)?;
    }
    for flag in flags {
        let Some((name, file)) = flag.split_once('=') else {
            bail!("--mapping expects NAME=FILE, got `{flag}`");
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("--mapping name `{name}` must be letters, digits, `_` or `-`");
        }
        add(name, Path::new(file))?;
    }
    Ok(Normalizer::new(&mappings, cfg.privileges.clone())?)
}

fn open_store(path: &Path) -> Result<SqliteStore> {
    Ok(SqliteStore::open(path)?)
}

/// Reads every input up front so a missing file fails before anything is processed.
fn read_inputs(files: &[PathBuf]) -> Result<Vec<(String, Vec<u8>)>> {
    for f in files {
        if f.as_os_str() != "-" && !f.is_file() {
            bail!("input file {} does not exist or is not a file", f.display());
        }
    }
    let mut out = Vec::new();
    for f in files {
        if f.as_os_str() == "-" {
            let mut buf = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .context("cannot read standard input")?;
            out.push(("-".to_owned(), buf));
        } else {
            let bytes = std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?;
            out.push((f.display().to_string(), bytes));
        }
    }
    Ok(out)
}

fn check_source(normalizer: &Normalizer, source: Option<&str>) -> Result<()> {
    if let Some(s) = source {
        if !normalizer.has_source(s) {
            bail!(
                "unknown --source `{s}` (bundled: cloudtrail, okta, entra, gworkspace, scim; add others with --mapping {s}=FILE.vrl)"
            );
        }
    }
    Ok(())
}

/// A record counter on stderr, drawn only when stderr is a terminal.
fn progress(files: usize) -> indicatif::ProgressBar {
    let pb =
        indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let template = if files > 1 {
        "{bar:30} {pos}/{len} records · {per_sec} · {wide_msg}"
    } else {
        "{bar:30} {pos}/{len} records · {per_sec}"
    };
    pb.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    pb
}

fn summary(stats: &Stats) -> String {
    format!(
        "{} records: {} events ({} verdicts, {} alerts, {} learned, {} duplicates skipped), {} dropped (not provisioning), {} dead-lettered",
        stats.records,
        stats.events,
        stats.verdicts,
        stats.alerts,
        stats.learned,
        stats.duplicates,
        stats.dropped,
        stats.dead_lettered
    )
}

fn run_input(cli_config: Option<&Path>, input: &InputArgs, mode: Mode) -> Result<ExitCode> {
    let cfg = load_config(cli_config)?;
    let normalizer = build_normalizer(&cfg, &input.mappings)?;
    check_source(&normalizer, input.source.as_deref())?;
    let inputs = read_inputs(&input.files)?;
    let stats = on_store!(&input.state, |store| {
        let pipeline = Pipeline::new(store, normalizer, cfg.detect.clone())?;
        feed(pipeline, input, &inputs, mode)?
    });
    let mut stderr = std::io::stderr().lock();
    writeln!(stderr, "{}", summary(&stats))?;
    if stats.dead_lettered > 0 {
        writeln!(
            stderr,
            "dead-lettered records are kept with their reasons: provguard dead-letters {}",
            input.state.flag()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Records per group commit of `learn` and `ingest`.
const BATCH_RECORDS: usize = 5_000;

/// Runs the inputs through the pipeline, verdicts to stdout as JSON lines.
fn feed<S: provguard_core::store::Store>(
    mut pipeline: Pipeline<S>,
    input: &InputArgs,
    inputs: &[(String, Vec<u8>)],
    mode: Mode,
) -> Result<Stats> {
    let now = input.now.unwrap_or_else(Utc::now);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut write_err: Option<std::io::Error> = None;
    let mut stats = Stats::default();
    let pb = progress(inputs.len());
    // Group commits: a batch of records becomes durable at once (an interrupted run leaves
    // whole batches; rerunning it skips what was stored).
    pipeline.begin_batch()?;
    let mut in_batch = 0usize;
    for (name, bytes) in inputs {
        pb.set_message(name.clone());
        let pieces = split_input(bytes);
        pb.inc_length(pieces.len() as u64);
        // The programs this input needs, compiled side by side before its first record.
        let mut sources: Vec<String> = Vec::new();
        for r in pieces.iter().flatten() {
            let name = match &input.source {
                Some(s) => Some(s.clone()),
                None => provguard_core::normalize::detect_source(&r.value),
            };
            if let Some(n) = name {
                if !sources.contains(&n) {
                    sources.push(n);
                }
            }
        }
        pipeline.prepare_sources(sources.iter().map(String::as_str));
        for piece in pieces {
            if in_batch == BATCH_RECORDS {
                pipeline.end_batch()?;
                pipeline.begin_batch()?;
                in_batch = 0;
            }
            in_batch += 1;
            let s =
                pipeline.process_piece(piece, input.source.as_deref(), mode, now, &mut |v| {
                    if write_err.is_none() {
                        let line = serde_json::to_string(v).unwrap_or_default();
                        if let Err(e) = writeln!(out, "{line}") {
                            write_err = Some(e);
                        }
                    }
                })?;
            stats.add(&s);
            pb.inc(1);
        }
    }
    pipeline.end_batch()?;
    if mode == Mode::Learn {
        // History changes every tenant: the scope pooled over them is built again.
        pipeline.pool_tenants()?;
    }
    pb.finish_and_clear();
    if let Some(e) = write_err {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("cannot write verdicts to stdout");
        }
    }
    out.flush().ok();
    Ok(stats)
}

fn run(cli: Cli) -> Result<ExitCode> {
    let config = cli.config.as_deref();
    match cli.command {
        Command::Demo { state } => demo::run(config, &state),
        Command::Context(ContextCmd::Import {
            state,
            directory,
            approvals,
            change_windows,
            domains,
        }) => {
            if directory.is_none()
                && approvals.is_none()
                && change_windows.is_none()
                && domains.is_none()
            {
                bail!(
                    "nothing to import: give --directory, --approvals, --change-windows and/or --domains"
                );
            }
            let import = read_context(
                directory.as_deref(),
                approvals.as_deref(),
                change_windows.as_deref(),
                domains.as_deref(),
            )?;
            on_store!(&state, |store| store.import_context(&import)?);
            let mut stderr = std::io::stderr().lock();
            writeln!(stderr, "{}", describe_import(&import))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Learn { input } => run_input(config, &input, Mode::Learn),
        Command::Ingest { input } => run_input(config, &input, Mode::Score),
        Command::Rebaseline {
            state,
            now,
            window_days,
        } => {
            if window_days <= 0 {
                bail!("--window-days must be positive");
            }
            let cfg = load_config(config)?;
            let normalizer = build_normalizer(&cfg, &[])?;
            let now = now.unwrap_or_else(Utc::now);
            let (used, left_out, scopes) = on_store!(&state, |store| {
                Pipeline::new(store, normalizer, cfg.detect)?.rebaseline(now, window_days)?
            });
            let mut stderr = std::io::stderr().lock();
            writeln!(
                stderr,
                "rebaselined {scopes} scopes from {used} events ({left_out} alerting events left out) over {window_days} days ending {}",
                now.to_rfc3339()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Erase {
            state,
            subject,
            now,
            window_days,
        } => {
            if subject.trim().len() < 3 {
                bail!("--subject must name one person (an e-mail address or an id)");
            }
            if window_days <= 0 {
                bail!("--window-days must be positive");
            }
            let cfg = load_config(config)?;
            let normalizer = build_normalizer(&cfg, &[])?;
            let now = now.unwrap_or_else(Utc::now);
            let report =
                match open(&state)? {
                    Opened::Sqlite(store) => {
                        let mut p = Pipeline::new(store, normalizer, cfg.detect)?;
                        let report = p.erase(&subject, now, window_days)?;
                        // Removed content is gone from the file too, not only from its tables.
                        p.store().compact()?;
                        report
                    }
                    #[cfg(feature = "aws")]
                    Opened::DynamoDb(store) => Pipeline::new(store, normalizer, cfg.detect)?
                        .erase(&subject, now, window_days)?,
                };
            writeln!(
                std::io::stdout().lock(),
                "{}",
                serde_json::to_string(&report)?
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Alerts {
            state,
            since,
            table: as_table,
        } => {
            let alerts = on_store!(&state, |store| store.alerts(since)?);
            let mut out = std::io::stdout().lock();
            if as_table {
                writeln!(out, "{}", table::alerts(&alerts))?;
            } else {
                for v in &alerts {
                    writeln!(out, "{}", serde_json::to_string(v)?)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain {
            state,
            event_id,
            json,
        } => {
            let (v, event) = on_store!(&state, |store| {
                let Some(v) = store.verdict(&event_id)? else {
                    if store.has_event(&event_id)? {
                        bail!("event {event_id} was learned from history and has no verdict");
                    }
                    bail!("no event {event_id} in {}", state.describe());
                };
                (v, store.event(&event_id)?)
            });
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                writeln!(out, "{}", table::explain(&v, event.as_ref()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Normalize {
            source,
            mappings,
            now,
            files,
        } => normalize(config, source.as_deref(), &mappings, now, &files),
        Command::Feedback {
            state,
            event_id,
            label,
            note,
        } => {
            let cfg = load_config(config)?;
            let normalizer = build_normalizer(&cfg, &[])?;
            let fb = match label {
                FeedbackLabel::Benign => provguard_core::verdict::Feedback::Benign,
                FeedbackLabel::Malicious => provguard_core::verdict::Feedback::Malicious,
            };
            let released = on_store!(&state, |store| {
                Pipeline::new(store, normalizer, cfg.detect)?.feedback(
                    &event_id,
                    fb,
                    note.as_deref(),
                    Utc::now(),
                )?
            });
            let Some(released) = released else {
                bail!("no verdict for event {event_id} in {}", state.describe());
            };
            let mut stderr = std::io::stderr().lock();
            writeln!(stderr, "recorded: {event_id} is {}", fb.as_str())?;
            if released > 0 {
                writeln!(
                    stderr,
                    "released with it: {released} later change{} of the episode it alerted for, now in the baselines",
                    if released == 1 { "" } else { "s" }
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            state,
            addr,
            mappings,
            max_requests,
        } => serve::run(config, &state, &addr, &mappings, max_requests),
        Command::Eval {
            state,
            labels,
            verdicts,
            json,
            check,
            holds,
        } => eval::run(&state, &labels, &verdicts, json, check, holds.as_deref()),
        Command::Simulate(args) => {
            simulate::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => {
            bench::run(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(AuditCmd::Verify { state, head, json }) => {
            let report = match open(&state)? {
                Opened::Sqlite(store) => store.verify_audit(head)?,
                #[cfg(feature = "aws")]
                Opened::DynamoDb(store) => store.verify_audit(head)?,
            };
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
            } else {
                writeln!(out, "{}", table::audit(&report))?;
            }
            Ok(if report.intact() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        #[cfg(feature = "aws")]
        Command::Audit(AuditCmd::Seal { dynamodb_table }) => {
            let report = open_table(&dynamodb_table)?.seal_audit(usize::MAX)?;
            let mut stderr = std::io::stderr().lock();
            writeln!(
                stderr,
                "sealed {} verdicts and feedback into the audit chain (head at record {}); keep \
                 the head below outside the table and check it with `audit verify --head`",
                report.sealed, report.head_seq
            )?;
            // The head on standard output, alone, for a script to keep.
            if let Some(head) = &report.head {
                writeln!(std::io::stdout().lock(), "{head}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Baselines(BaselinesCmd::Export { state, scope, at }) => {
            let cfg = load_config(config)?;
            let all = on_store!(&state, |store| store.scan_baselines()?);
            let lines = provguard_core::baseline::export(
                all,
                scope.as_deref(),
                at.map(|t| t.timestamp()),
                cfg.detect.half_life_days,
            );
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            for line in &lines {
                serde_json::to_writer(&mut out, line)?;
                writeln!(out)?;
            }
            out.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DeadLetters { state } => {
            let dead = on_store!(&state, |store| store.dead_letters()?);
            let mut out = std::io::stdout().lock();
            for d in dead {
                writeln!(out, "{}", serde_json::to_string(&d)?)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn normalize(
    config: Option<&Path>,
    source: Option<&str>,
    mappings: &[String],
    now: Option<DateTime<Utc>>,
    files: &[PathBuf],
) -> Result<ExitCode> {
    let cfg = load_config(config)?;
    let mut normalizer = build_normalizer(&cfg, mappings)?;
    check_source(&normalizer, source)?;
    let now = now.unwrap_or_else(Utc::now);
    let mut events = Vec::new();
    let mut stderr = std::io::stderr().lock();
    let mut failed = false;
    for (name, bytes) in read_inputs(files)? {
        for piece in split_input(&bytes) {
            match piece {
                Ok(record) => match normalizer.normalize(&record, source, now) {
                    Normalized::Events(evs) => events.extend(evs),
                    Normalized::Dropped { source, reason } => {
                        writeln!(stderr, "{name}: dropped ({source}): {reason}")?;
                    }
                    Normalized::DeadLetter { source, reason } => {
                        failed = true;
                        writeln!(
                            stderr,
                            "{name}: dead letter ({}): {reason}",
                            source.as_deref().unwrap_or("?")
                        )?;
                    }
                },
                Err(bad) => {
                    failed = true;
                    writeln!(stderr, "{name}: dead letter: {}", bad.reason)?;
                }
            }
        }
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(&events)?)?;
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn open_text(path: &Path) -> Result<BufReader<std::fs::File>> {
    Ok(BufReader::new(std::fs::File::open(path).with_context(
        || format!("cannot open {}", path.display()),
    )?))
}

fn read_context(
    directory: Option<&Path>,
    approvals: Option<&Path>,
    change_windows: Option<&Path>,
    domains: Option<&Path>,
) -> Result<ContextImport> {
    let mut import = ContextImport::default();
    if let Some(p) = directory {
        import.people = Some(context::read_directory(
            &p.display().to_string(),
            open_text(p)?,
        )?);
    }
    if let Some(p) = approvals {
        import.approvals = Some(context::read_jsonl::<Approval>(
            &p.display().to_string(),
            open_text(p)?,
        )?);
    }
    if let Some(p) = change_windows {
        import.change_windows = Some(context::read_jsonl::<ChangeWindow>(
            &p.display().to_string(),
            open_text(p)?,
        )?);
    }
    if let Some(p) = domains {
        let lines: Vec<String> = open_text(p)?
            .lines()
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot read {}", p.display()))?;
        import.domains = Some(context::read_domains(lines.join("\n").as_bytes())?);
    }
    Ok(import)
}

fn describe_import(import: &ContextImport) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &import.people {
        parts.push(format!("{} people", p.len()));
    }
    if let Some(a) = &import.approvals {
        parts.push(format!("{} approvals", a.len()));
    }
    if let Some(w) = &import.change_windows {
        parts.push(format!("{} change windows", w.len()));
    }
    if let Some(d) = &import.domains {
        parts.push(format!("{} domains", d.len()));
    }
    format!("imported {}", parts.join(", "))
}

/// Verdicts of one run, for the demo's table.
pub(crate) fn collect_verdicts(
    pipeline: &mut Pipeline<SqliteStore>,
    bytes: &[u8],
    mode: Mode,
    now: DateTime<Utc>,
) -> Result<(Stats, Vec<Verdict>)> {
    let mut verdicts = Vec::new();
    let stats =
        pipeline.process_bytes(bytes, None, mode, now, &mut |v| verdicts.push(v.clone()))?;
    Ok((stats, verdicts))
}

pub(crate) use {describe_import as describe_context_import, summary as stats_summary};
