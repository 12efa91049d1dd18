//! Every sample normalizes to its golden twin. `PROVGUARD_BLESS=1` rewrites the twins for review
//! in `git diff`.

use crate::support::{SOURCES, normalize_file, normalizer, root};

#[test]
fn every_sample_matches_its_golden_twin() {
    let bless = std::env::var_os("PROVGUARD_BLESS").is_some();
    let mut n = normalizer();
    let mut failures = Vec::new();
    for source in SOURCES {
        let dir = root().join("samples").join(source);
        let mut cases: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.ends_with(".json") && !name.ends_with(".normalized.json")
            })
            .collect();
        cases.sort();
        assert!(cases.len() >= 4, "{source}: only {} samples", cases.len());
        let mut dropped_cases = 0;
        for case in cases {
            let result = normalize_file(&mut n, &case, Some(source));
            assert!(
                result.dead.is_empty(),
                "{}: dead-lettered: {:?}",
                case.display(),
                result.dead
            );
            if result.events.is_empty() {
                dropped_cases += 1;
            }
            let actual = serde_json::to_string_pretty(&result.events).unwrap() + "\n";
            let twin = case.with_extension("normalized.json");
            if bless {
                std::fs::write(&twin, &actual).unwrap();
                continue;
            }
            match std::fs::read_to_string(&twin) {
                Ok(expected) if expected == actual => {}
                Ok(expected) => failures.push(format!(
                    "{} differs from its twin\n--- expected\n{expected}\n--- actual\n{actual}",
                    case.display()
                )),
                Err(e) => failures.push(format!("{}: no twin ({e})", case.display())),
            }
        }
        assert!(
            dropped_cases >= 1,
            "{source}: no sample of a dropped (non-provisioning) event"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn sources_are_detected_from_the_shape_of_every_sample() {
    let mut n = normalizer();
    for source in SOURCES {
        let dir = root().join("samples").join(source);
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.ends_with(".json") || name.ends_with(".normalized.json") {
                continue;
            }
            let detected = normalize_file(&mut n, &path, None);
            let forced = normalize_file(&mut n, &path, Some(source));
            assert!(detected.dead.is_empty(), "{name}: {:?}", detected.dead);
            assert_eq!(detected.events, forced.events, "{name}");
        }
    }
}
