//! Paths and helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use provguard_core::normalize::{Normalized, split_input};
use provguard_core::privilege::PrivilegeTable;
use provguard_core::{Event, Normalizer};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

pub const SOURCES: [&str; 5] = ["cloudtrail", "okta", "entra", "gworkspace", "scim"];

pub fn normalizer() -> Normalizer {
    Normalizer::new(&[], PrivilegeTable::default()).expect("bundled programs compile")
}

/// What one input file became.
#[derive(Debug, Default)]
pub struct FileResult {
    pub events: Vec<Event>,
    pub dropped: usize,
    pub dead: Vec<String>,
}

pub fn normalize_file(n: &mut Normalizer, path: &Path, source: Option<&str>) -> FileResult {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let now = "2026-01-01T00:00:00Z".parse().unwrap();
    let mut out = FileResult::default();
    for piece in split_input(&bytes) {
        match piece {
            Ok(rec) => match n.normalize(&rec, source, now) {
                Normalized::Events(evs) => out.events.extend(evs),
                Normalized::Dropped { .. } => out.dropped += 1,
                Normalized::DeadLetter { reason, .. } => out.dead.push(reason),
            },
            Err(bad) => out.dead.push(bad.reason),
        }
    }
    out
}

/// The `provguard` binary (built by `cargo build`; see the README's test command).
pub fn provguard() -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("provguard")
        .expect("the provguard binary is built (cargo build --workspace)");
    cmd.env_remove("PROVGUARD_CONFIG")
        .env_remove("PROVGUARD_LOG");
    cmd
}
