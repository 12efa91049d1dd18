//! Fuzz targets (bolero) for the normalizers and the webhook request router.
//!
//! Under `cargo test` each target runs a bounded number of random inputs
//! (`PROVGUARD_FUZZ_ITERATIONS`, default 1,000), which CI does on every run; with a fuzzing
//! toolchain, `cargo bolero test -p provguard-core --test fuzz <target>` runs the same target
//! coverage-guided for as long as wanted.
//!
//! Properties: splitting and normalizing any bytes never panics and every outcome is typed
//! events with ids, a drop or a dead letter with a reason; the router never panics, never admits
//! a request that does not carry the route's credential, and never refuses as unauthorized one
//! that does.

mod common;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use bolero::check;
use chrono::{DateTime, Utc};
use common::{check as check_record, normalizer, samples};
use provguard_core::Normalizer;
use provguard_core::normalize::split_input;
use provguard_core::webhook::{self, Outcome, Request, WebhookSecrets};

fn iterations() -> usize {
    std::env::var("PROVGUARD_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

thread_local!(static N: RefCell<Normalizer> = RefCell::new(normalizer()));

/// Splits `bytes` as a file would be and normalizes every record by every program.
fn split_and_normalize(bytes: &[u8]) {
    for piece in split_input(bytes) {
        match piece {
            Ok(record) => N.with(|n| check_record(&mut n.borrow_mut(), record.value)),
            Err(bad) => assert!(!bad.reason.is_empty()),
        }
    }
}

#[test]
fn fuzz_split_and_normalize_any_bytes() {
    check!()
        .with_iterations(iterations())
        .for_each(|bytes: &[u8]| split_and_normalize(bytes));
}

/// One byte edit: overwrite, insert or delete at a position.
type Edit = (u16, u8, u8);

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for &(at, op, byte) in edits {
        if bytes.is_empty() {
            bytes.push(byte);
            continue;
        }
        let i = usize::from(at) % bytes.len();
        match op % 3 {
            0 => bytes[i] = byte,
            1 => bytes.insert(i, byte),
            _ => {
                bytes.remove(i);
            }
        }
    }
    bytes
}

#[test]
fn fuzz_normalize_samples_with_byte_edits() {
    check!()
        .with_type::<(u16, Vec<Edit>)>()
        .with_iterations(iterations())
        .for_each(|(pick, edits)| {
            let all = samples();
            let sample = &all[usize::from(*pick) % all.len()];
            let bytes = apply(serde_json::to_vec(sample).unwrap(), edits);
            split_and_normalize(&bytes);
        });
}

const KEY: &str = "hr-k3y-0123456789";

fn secrets() -> WebhookSecrets {
    WebhookSecrets::from_vars([
        ("PROVGUARD_OKTA_SECRET", "okta-s3cret-0123456789"),
        ("PROVGUARD_GOOGLE_CHANNEL_TOKEN", "goog-t0ken-0123456789"),
        ("PROVGUARD_SCIM_TOKEN", "scim-t0ken-0123456789"),
        ("PROVGUARD_ENTRA_CLIENT_STATE", "entra-st4te-0123456789"),
        ("PROVGUARD_HMAC_HR", KEY),
    ])
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get"];
const ROUTES: &[&str] = &[
    "/okta",
    "/entra",
    "/google",
    "/scim",
    "/scim/Users",
    "/hook/hr",
    "/hook/nope",
    "/health",
    "/",
];

/// A fuzzed request: method, route (+ suffix), headers, body, and whether to add the route's
/// credential.
type Input = (u8, u8, String, Vec<(String, String)>, Vec<u8>, bool);

/// The header that carries `path`'s credential, when it is a header.
fn credential(path: &str, body: &[u8], now: DateTime<Utc>) -> Vec<(String, String)> {
    let h = |k: &str, v: String| (k.to_owned(), v);
    if path == "/okta" {
        vec![h("authorization", "okta-s3cret-0123456789".into())]
    } else if path == "/google" {
        vec![h("x-goog-channel-token", "goog-t0ken-0123456789".into())]
    } else if path.starts_with("/scim") {
        vec![h("authorization", "Bearer scim-t0ken-0123456789".into())]
    } else if path == "/hook/hr" {
        let ts = now.timestamp().to_string();
        let sig = webhook::sign(KEY, &ts, body);
        vec![
            h("x-provguard-timestamp", ts),
            h("x-provguard-signature", sig),
        ]
    } else {
        Vec::new()
    }
}

#[test]
fn fuzz_webhook_routes() {
    let secrets = secrets();
    let now: DateTime<Utc> = "2026-05-01T12:00:00Z".parse().unwrap();
    // Both sides of the property must be exercised, not just hold vacuously.
    let admitted = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    check!()
        .with_type::<Input>()
        .with_iterations(iterations())
        .for_each(|(m, r, suffix, headers, body, with_credential)| {
            let base = ROUTES[usize::from(*r) % ROUTES.len()];
            // Mostly the route itself, sometimes with the fuzzed suffix.
            let path = if suffix.len() % 4 == 0 {
                format!("{base}{suffix}")
            } else {
                base.to_owned()
            };
            let mut req = Request {
                method: METHODS[usize::from(*m) % METHODS.len()].to_owned(),
                path: path.clone(),
                body: body.clone(),
                ..Request::default()
            };
            for (k, v) in headers {
                req.headers.insert(k.to_ascii_lowercase(), v.clone());
            }
            let added = if *with_credential {
                credential(&path, body, now)
            } else {
                Vec::new()
            };
            for (k, v) in &added {
                req.headers.insert(k.clone(), v.clone());
            }
            let outcome = webhook::route(&req, &secrets, now);
            let presented = !added.is_empty();
            match &outcome {
                Outcome::Ingest { .. } => {
                    assert!(presented, "admitted without a credential: {req:?}");
                    admitted.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Respond { status, .. } => {
                    if *status == 401 {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    if presented && req.method == "POST" && body.len() <= webhook::MAX_BODY {
                        assert_ne!(*status, 401, "refused with the credential: {req:?}");
                    }
                }
            }
        });
    if iterations() >= 1_000 {
        let (a, r) = (admitted.into_inner(), refused.into_inner());
        assert!(a > 0 && r > 0, "admitted {a}, refused {r}");
    }
}
