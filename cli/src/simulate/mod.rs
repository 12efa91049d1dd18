//! `provguard simulate`: a deterministic synthetic organisation's provisioning history and test
//! period, as raw events in the real source formats, with its business context and the labels
//! of the anomalies injected into the test period (and of the decoys that must not alert).
//!
//! Used to measure detection quality. The organisation is modelled on how provisioning works,
//! not on how provguard detects: people, their departments and usual access, the IT staff and
//! automation that provision them, and the anomalies a security team wants caught.
//!
//! Output layout (a public contract):
//!
//! ```text
//! DIR/context/directory.csv        HR directory (the header of DESIGN §4, and `team_since`)
//! DIR/context/approvals.jsonl      approvals of privileged grants
//! DIR/context/change_windows.jsonl change windows naming their actors
//! DIR/context/domains.txt          own e-mail domains
//! DIR/context/config.toml          provguard configuration: the groups and apps the organisation
//!                                  holds sensitive (`[detect] sensitive_entitlements`), its
//!                                  directory sync's account (`workflow_actors`)
//! DIR/history/{okta.jsonl, cloudtrail.json.gz, entra.jsonl, gworkspace.jsonl, scim.jsonl}
//! DIR/test/   {the same files for the test period}
//! DIR/labels.jsonl                 {"event_id", "class"} per labelled test event (normalized ids)
//! ```

mod catalog;
mod clock;
mod lookalike;
mod org;
mod random;
mod render;
mod story;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use chrono::{Duration, NaiveDate};
use provguard_core::Normalizer;
use provguard_core::normalize::{Normalized, split_input};

use catalog::{Catalog, Src};
use org::{Org, Window};
use random::Rand;
use render::Renderer;
use story::{Class, Story, day_start};

/// Arguments of `provguard simulate`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Seed: the same seed gives byte-identical output on every platform.
    #[arg(long)]
    pub seed: u64,
    /// Output directory (created if missing; the files it writes are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// People in the organisation's directory (100 to 50,000).
    #[arg(long, default_value_t = 500)]
    pub people: usize,
    /// Days of history (the learning period before the test period).
    #[arg(long, default_value_t = 60)]
    pub days: u32,
    /// Days of the test period (scored; anomalies and decoys are injected here).
    #[arg(long = "test-days", default_value_t = 7)]
    pub test_days: u32,
}

/// The raw files of one period, one per source, plus the label of each record in order.
#[derive(Debug, Default)]
struct Period {
    okta: String,
    entra: String,
    google: String,
    scim: String,
    cloudtrail: Vec<String>,
    labels: BTreeMap<&'static str, Vec<Option<Class>>>,
    records: usize,
}

impl Period {
    fn push(
        &mut self,
        src: Src,
        record: &serde_json::Value,
        label: Option<Class>,
        keep_labels: bool,
    ) {
        let line = record.to_string();
        let (name, buf) = match src {
            Src::Okta => ("okta.jsonl", &mut self.okta),
            Src::Entra => ("entra.jsonl", &mut self.entra),
            Src::Google => ("gworkspace.jsonl", &mut self.google),
            Src::Scim => ("scim.jsonl", &mut self.scim),
            Src::Aws => {
                self.cloudtrail.push(line);
                if keep_labels {
                    self.labels
                        .entry("cloudtrail.json.gz")
                        .or_default()
                        .push(label);
                }
                self.records += 1;
                return;
            }
        };
        buf.push_str(&line);
        buf.push('\n');
        if keep_labels {
            self.labels.entry(name).or_default().push(label);
        }
        self.records += 1;
    }

    /// (file name, uncompressed bytes) per source.
    fn files(&self) -> Vec<(&'static str, Vec<u8>)> {
        let ct = format!("{{\"Records\":[{}]}}\n", self.cloudtrail.join(","));
        vec![
            ("okta.jsonl", self.okta.clone().into_bytes()),
            ("cloudtrail.json.gz", ct.into_bytes()),
            ("entra.jsonl", self.entra.clone().into_bytes()),
            ("gworkspace.jsonl", self.google.clone().into_bytes()),
            ("scim.jsonl", self.scim.clone().into_bytes()),
        ]
    }
}

/// Everything `simulate` writes, in memory.
#[derive(Debug)]
pub struct Output {
    /// (path relative to the output directory, bytes).
    pub files: Vec<(PathBuf, Vec<u8>)>,
    pub summary: String,
}

/// Monday of the first test week: a seed-dependent week of 2025–2026, so daylight-saving
/// changes and month ends fall in some runs.
fn test_start(seed: u64) -> NaiveDate {
    let base = NaiveDate::from_ymd_opt(2025, 9, 1).expect("a Monday");
    base + Duration::weeks((seed % 52) as i64)
}

/// The configuration a security team would keep: its sensitive groups and apps (data it guards:
/// finance reports, HR records, board papers, payment systems, production admin groups) by the
/// names the events carry, and its directory sync's account. Administrator roles are tiered by
/// the built-in privilege table.
fn sensitive_config(cat: &Catalog, org: &Org) -> String {
    use catalog::Kind;
    let mut names: Vec<&str> = cat
        .ents
        .iter()
        .filter(|e| {
            e.sensitive && !matches!(e.kind, Kind::OktaRole | Kind::EntraRole | Kind::GoogleRole)
        })
        .map(|e| e.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    let list = names
        .iter()
        // A JSON string is a TOML basic string (the same escapes).
        .map(|n| format!("    {},\n", serde_json::Value::from(*n)))
        .collect::<String>();
    format!(
        "# provguard configuration of the simulated organisation (provguard --config FILE).\n\
         [detect]\n\
         # Groups and apps the organisation holds sensitive: one reaching a department it had not\n\
         # reached alerts unless an approval for it is on file.\n\
         sensitive_entitlements = [\n{list}]\n\
         # Its own HR-driven provisioning that the sources do not mark as such: the Google\n\
         # directory sync's service account.\n\
         workflow_actors = [{}]\n",
        serde_json::Value::from(render::google_sync_account(&org.company))
    )
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(5));
    enc.write_all(bytes)?;
    Ok(enc.finish()?)
}

fn jsonl<T: serde::Serialize>(items: &[T]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for i in items {
        serde_json::to_writer(&mut out, i)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Generates the organisation, its history and test period, in memory.
pub fn generate(args: &SimulateArgs) -> Result<Output> {
    if !(100..=50_000).contains(&args.people) {
        bail!(
            "--people must be between 100 and 50,000 (got {})",
            args.people
        );
    }
    if args.days < 7 || args.test_days < 1 || args.days > 730 || args.test_days > 90 {
        bail!("--days must be 7..=730 and --test-days 1..=90");
    }
    let ts = test_start(args.seed);
    let w = Window {
        hist_start: ts - Duration::days(i64::from(args.days)),
        test_start: ts,
        test_end: ts + Duration::days(i64::from(args.test_days)),
    };
    let org = Org::build(&mut Rand::new(args.seed, 0), args.people, w);
    let cat = Catalog::build(&org, &mut Rand::new(args.seed, 1));
    let mut story = Story::new(org, cat, w, args.seed);
    story.run();

    let mut renderer = Renderer::new(&story.org, &story.cat, args.seed);
    let mut history = Period::default();
    let mut test = Period::default();
    let test_t = day_start(w.test_start);
    for ev in &story.events {
        let is_test = ev.t >= test_t;
        for rec in renderer.render(ev, &story.org, &story.cat) {
            if is_test {
                test.push(ev.src, &rec, ev.label, true);
            } else {
                history.push(ev.src, &rec, None, false);
            }
        }
    }

    // labels: the normalized ids of the labelled test records' events
    let mut normalizer = Normalizer::new(&[], Default::default())
        .context("the bundled normalizers do not compile")?;
    let now = day_start(w.test_end);
    let mut labels = Vec::new();
    let mut test_events = 0usize;
    let test_files = test.files();
    for (name, bytes) in &test_files {
        let want = test.labels.get(name).map(Vec::as_slice).unwrap_or(&[]);
        let pieces = split_input(bytes);
        if pieces.len() != want.len() {
            bail!(
                "{name}: {} records read back, {} written",
                pieces.len(),
                want.len()
            );
        }
        for (piece, label) in pieces.into_iter().zip(want) {
            let record =
                piece.map_err(|b| anyhow::anyhow!("{name}: unreadable record: {}", b.reason))?;
            match normalizer.normalize(&record, None, now) {
                Normalized::Events(evs) => {
                    test_events += evs.len();
                    if let Some(c) = label {
                        if evs.is_empty() {
                            bail!("{name}: a labelled {} record yields no event", c.as_str());
                        }
                        labels.extend(evs.into_iter().map(|e| (e.id, c.as_str())));
                    }
                }
                Normalized::Dropped { reason, .. } => {
                    if let Some(c) = label {
                        bail!(
                            "{name}: a labelled {} record was dropped: {reason}",
                            c.as_str()
                        );
                    }
                }
                Normalized::DeadLetter { reason, .. } => {
                    bail!(
                        "{name}: a generated record is dead-lettered: {reason}\n{}",
                        record.value
                    );
                }
            }
        }
    }

    let mut files: Vec<(PathBuf, Vec<u8>)> = vec![
        (
            PathBuf::from("context/directory.csv"),
            story.org.directory_csv().into_bytes(),
        ),
        (
            PathBuf::from("context/approvals.jsonl"),
            jsonl(&story.approvals)?,
        ),
        (
            PathBuf::from("context/change_windows.jsonl"),
            jsonl(&story.windows)?,
        ),
        (
            PathBuf::from("context/domains.txt"),
            story
                .org
                .domains
                .iter()
                .map(|d| format!("{d}\n"))
                .collect::<String>()
                .into_bytes(),
        ),
        (
            PathBuf::from("context/config.toml"),
            sensitive_config(&story.cat, &story.org).into_bytes(),
        ),
    ];
    for (dir, period) in [("history", &history), ("test", &test)] {
        let period_files = if dir == "test" {
            test_files.clone()
        } else {
            period.files()
        };
        for (name, bytes) in period_files {
            let bytes = if name.ends_with(".gz") {
                gzip(&bytes)?
            } else {
                bytes
            };
            files.push((Path::new(dir).join(name), bytes));
        }
    }
    let mut label_lines = String::new();
    for (id, class) in &labels {
        // {"event_id","class"} in the documented order
        label_lines.push_str(&format!(
            "{{\"event_id\":{},\"class\":{}}}\n",
            serde_json::Value::from(id.as_str()),
            serde_json::Value::from(*class)
        ));
    }
    files.push((PathBuf::from("labels.jsonl"), label_lines.into_bytes()));

    let mut per_class: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, c) in &labels {
        *per_class.entry(c).or_default() += 1;
    }
    let classes: Vec<String> = Class::ALL
        .iter()
        .map(|c| format!("{} {}", c.as_str(), per_class.get(c.as_str()).unwrap_or(&0)))
        .collect();
    let directory = story.org.people.iter().filter(|p| p.in_directory()).count();
    let summary = format!(
        "simulate: seed {} · {} · {directory} people in the directory · history {}..{} {} records · test {}..{} {} records, {test_events} events · labelled events: {}",
        args.seed,
        story.org.domains[0],
        w.hist_start,
        w.test_start - Duration::days(1),
        history.records,
        w.test_start,
        w.test_end - Duration::days(1),
        test.records,
        classes.join(", "),
    );
    Ok(Output { files, summary })
}

/// `provguard simulate`: writes the files and prints a one-line summary on stderr.
pub fn run(args: &SimulateArgs) -> Result<()> {
    let out = generate(args)?;
    for (rel, bytes) in &out.files {
        let path = args.out.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    writeln!(std::io::stderr().lock(), "{}", out.summary)?;
    Ok(())
}

#[cfg(test)]
mod tests;
