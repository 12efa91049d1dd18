//! Shared by the property tests and the fuzz targets: the project's raw samples and the
//! invariants every normalization outcome must hold.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use chrono::{TimeZone, Utc};
use provguard_core::Normalizer;
use provguard_core::normalize::{Normalized, RawRecord, split_input};
use provguard_core::privilege::PrivilegeTable;
use serde_json::Value;

pub const SOURCES: &[&str] = &["okta", "cloudtrail", "entra", "gworkspace", "scim"];

/// Every raw sample record of the bundled sources.
pub fn samples() -> &'static [Value] {
    static S: OnceLock<Vec<Value>> = OnceLock::new();
    S.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples");
        let mut out = Vec::new();
        for source in SOURCES {
            let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(source))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    name.ends_with(".json") && !name.ends_with(".normalized.json")
                })
                .collect();
            files.sort();
            for f in files {
                for piece in split_input(&std::fs::read(&f).unwrap()) {
                    out.push(piece.unwrap().value);
                }
            }
        }
        assert!(out.len() > 20, "samples found: {}", out.len());
        out
    })
}

/// Normalizes `value` by source detection and by every bundled program: typed events with ids
/// that survive a serialization round trip, or a drop or dead letter with a reason.
pub fn check(normalizer: &mut Normalizer, value: Value) {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let record = RawRecord {
        value,
        envelope_source: None,
    };
    for source in std::iter::once(None).chain(SOURCES.iter().map(|s| Some(*s))) {
        match normalizer.normalize(&record, source, now) {
            Normalized::Events(events) => {
                for e in events {
                    assert!(!e.id.is_empty(), "an event without an id: {e:?}");
                    let back: provguard_core::Event =
                        serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
                    assert_eq!(back, e);
                }
            }
            Normalized::Dropped { reason, .. } => assert!(!reason.is_empty()),
            Normalized::DeadLetter { reason, .. } => assert!(!reason.is_empty()),
        }
    }
}

pub fn normalizer() -> Normalizer {
    Normalizer::new(&[], PrivilegeTable::default()).unwrap()
}
