//! Properties of the input side on hostile data: splitting any bytes and normalizing any record
//! never panics, and whatever comes out is either typed events with ids, a drop with a reason or
//! a dead letter with a reason. Records are the project's samples with one part replaced, removed
//! or retyped (so the programs' deep paths run), and arbitrary JSON.

mod common;

use common::{check, normalizer, samples};
use proptest::prelude::*;
use provguard_core::Normalizer;
use provguard_core::normalize::split_input;
use serde_json::{Map, Value};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        prop_oneof![
            Just(""),
            Just("2026-13-45T99:99:99Z"),
            Just("1970-01-01T00:00:00Z"),
            Just("9999-12-31T23:59:59Z"),
            Just("ann@acme.example"),
            Just("аnn@аcme.example"),
            Just("xn--80ak6aa92e.com"),
            Just("AdministratorAccess"),
            Just("arn:aws:iam::123456789012:role/x"),
        ]
        .prop_map(|s| Value::String(s.into())),
    ]
}

fn json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// The number of nodes of a value (the root included).
fn nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(nodes).sum(),
        Value::Object(o) => o.values().map(nodes).sum(),
        _ => 0,
    }
}

/// How one node is changed.
#[derive(Debug, Clone)]
enum Change {
    Replace(Value),
    Remove,
}

/// Applies `change` to the node numbered `target` in pre-order; returns true once applied.
fn mutate(v: &mut Value, target: &mut usize, change: &Change) -> bool {
    match v {
        Value::Object(o) => {
            let keys: Vec<String> = o.keys().cloned().collect();
            for k in keys {
                if *target == 0 {
                    match change {
                        Change::Replace(x) => {
                            o.insert(k, x.clone());
                        }
                        Change::Remove => {
                            o.remove(&k);
                        }
                    }
                    return true;
                }
                *target -= 1;
                if mutate(o.get_mut(&k).unwrap(), target, change) {
                    return true;
                }
            }
            false
        }
        Value::Array(a) => {
            for i in 0..a.len() {
                if *target == 0 {
                    match change {
                        Change::Replace(x) => a[i] = x.clone(),
                        Change::Remove => {
                            a.remove(i);
                        }
                    }
                    return true;
                }
                *target -= 1;
                if mutate(&mut a[i], target, change) {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn a_sample_with_one_part_changed_never_panics(
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        replace in any::<bool>(),
        with in json(),
    ) {
        thread_local!(static N: std::cell::RefCell<Normalizer> = std::cell::RefCell::new(normalizer()));
        let mut v = pick.get(samples()).clone();
        let mut target = at.index(nodes(&v).max(2) - 1);
        let change = if replace { Change::Replace(with) } else { Change::Remove };
        mutate(&mut v, &mut target, &change);
        N.with(|n| check(&mut n.borrow_mut(), v));
    }

    #[test]
    fn arbitrary_json_never_panics(v in json()) {
        thread_local!(static N: std::cell::RefCell<Normalizer> = std::cell::RefCell::new(normalizer()));
        N.with(|n| check(&mut n.borrow_mut(), v));
    }

    #[test]
    fn splitting_any_bytes_never_panics_and_keeps_what_it_rejects(
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        noise in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let whole = serde_json::to_vec(pick.get(samples())).unwrap();
        let mut bytes = whole[..cut.index(whole.len() + 1)].to_vec();
        bytes.extend_from_slice(&noise);
        for piece in split_input(&bytes) {
            if let Err(bad) = piece {
                // Nothing is lost: the rejected text and why it was rejected are kept.
                prop_assert!(!bad.reason.is_empty());
                prop_assert!(!bad.raw.is_empty() || bytes.iter().all(|b| b.is_ascii_whitespace()) || bad.reason.contains("gzip"));
            }
        }
    }
}
