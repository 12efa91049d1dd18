//! Raw bytes → records → VRL → typed [`Event`]s.
//!
//! Containers (JSON Lines, arrays, CloudTrail log files, Okta Event Hook deliveries, Graph list
//! responses, Azure Monitor exports, gzip) are split in Rust; each record then goes through the
//! VRL program of its source. Programs are compiled once, at start-up, and fail loudly with VRL's
//! own diagnostics. One [`Runtime`] is reused and cleared between records.
//!
//! `abort` in a program means "not a provisioning event": the record is dropped on purpose. A
//! runtime error, or output that does not match the event schema, dead-letters the record.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use chrono::{DateTime, Utc};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use vrl::compiler::runtime::{Runtime, Terminate};
use vrl::compiler::{Function, Program, TargetValue, TimeZone};
use vrl::value::{Secrets, Value as VrlValue};

use crate::event::Event;
use crate::privilege::PrivilegeTable;

/// The bundled programs, one per source.
pub const BUNDLED: &[(&str, &str)] = &[
    ("cloudtrail", include_str!("../vrl/cloudtrail.vrl")),
    ("okta", include_str!("../vrl/okta.vrl")),
    ("entra", include_str!("../vrl/entra.vrl")),
    ("gworkspace", include_str!("../vrl/gworkspace.vrl")),
    ("scim", include_str!("../vrl/scim.vrl")),
];

/// Functions a normalizer may not call even if the VRL build offers them: they read the host's
/// environment or reach the network, which a mapping of untrusted input has no business doing.
const DENIED_FUNCTIONS: &[&str] = &[
    "get_env_var",
    "get_hostname",
    "get_timezone_name",
    "dns_lookup",
    "reverse_dns",
    "http_request",
    "random_bytes",
];

/// Largest decompressed input accepted from one gzip file.
pub const MAX_DECOMPRESSED: u64 = 512 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("VRL program `{name}` does not compile:\n{diagnostics}")]
    Compile { name: String, diagnostics: String },
    #[error("no normalizer named `{0}` (bundled: cloudtrail, okta, entra, gworkspace, scim)")]
    UnknownSource(String),
}

/// One raw record, split out of its container.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub value: Json,
    /// The Okta Event Hook delivery's `source` URL, when the record came from one.
    pub envelope_source: Option<String>,
}

/// A piece of input that could not even be parsed into a record.
#[derive(Debug, Clone, PartialEq)]
pub struct BadInput {
    pub raw: String,
    pub reason: String,
}

/// What became of one record.
#[derive(Debug)]
pub enum Normalized {
    Events(Vec<Event>),
    /// Not a provisioning event (the program called `abort`).
    Dropped {
        source: String,
        reason: String,
    },
    /// Could not be normalized; keep it for replay.
    DeadLetter {
        source: Option<String>,
        reason: String,
    },
}

#[derive(Clone)]
struct Compiled {
    program: Program,
    wants_sha256: bool,
    wants_now: bool,
}

impl Compiled {
    fn new(name: &str, src: &str, fns: &[Box<dyn Function>]) -> Result<Self, NormalizeError> {
        Ok(Compiled {
            program: compile(name, src, fns)?,
            wants_sha256: src.contains("%sha256"),
            wants_now: src.contains("%now"),
        })
    }
}

/// A program, compiled when first needed: compiling VRL costs about 0.1 s a program, so a host
/// that sees one source (a cold start, say) compiles one. Only bundled programs wait: they are
/// known to compile; a user's mapping is compiled up front so its errors show at once.
#[derive(Clone)]
enum Slot {
    Ready(Box<Compiled>),
    Bundled(&'static str),
}

/// The compiled normalizers of a host.
pub struct Normalizer {
    programs: HashMap<String, Slot>,
    privileges: PrivilegeTable,
    runtime: Runtime,
    timezone: TimeZone,
}

/// A clone shares nothing mutable: it gets its own runtime.
impl Clone for Normalizer {
    fn clone(&self) -> Self {
        Normalizer {
            programs: self.programs.clone(),
            privileges: self.privileges.clone(),
            runtime: Runtime::default(),
            timezone: self.timezone,
        }
    }
}

impl std::fmt::Debug for Normalizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.programs.keys().collect();
        names.sort();
        f.debug_struct("Normalizer")
            .field("programs", &names)
            .finish()
    }
}

/// The VRL functions normalizers may use.
pub fn functions() -> Vec<Box<dyn Function>> {
    vrl::stdlib::all()
        .into_iter()
        .filter(|f| !DENIED_FUNCTIONS.contains(&f.identifier()))
        .collect()
}

/// Compiles one program, rendering diagnostics the way VRL's own tools do.
pub fn compile(
    name: &str,
    source: &str,
    fns: &[Box<dyn Function>],
) -> Result<Program, NormalizeError> {
    match vrl::compiler::compile(source, fns) {
        Ok(result) => Ok(result.program),
        Err(diagnostics) => Err(NormalizeError::Compile {
            name: name.to_owned(),
            diagnostics: vrl::diagnostic::Formatter::new(source, diagnostics).to_string(),
        }),
    }
}

impl Normalizer {
    /// Compiles the bundled programs plus `mappings` (name, VRL source); a mapping named like a
    /// bundled source replaces it.
    pub fn new(
        mappings: &[(String, String)],
        privileges: PrivilegeTable,
    ) -> Result<Self, NormalizeError> {
        let fns = functions();
        let mut programs = HashMap::new();
        for (name, src) in BUNDLED {
            if !mappings.iter().any(|(n, _)| n == name) {
                programs.insert((*name).to_owned(), Slot::Bundled(src));
            }
        }
        for (name, src) in mappings {
            let compiled = Compiled::new(name, src, &fns)?;
            programs.insert(name.clone(), Slot::Ready(Box::new(compiled)));
        }
        Ok(Normalizer {
            programs,
            privileges,
            runtime: Runtime::default(),
            timezone: TimeZone::Named(chrono_tz::UTC),
        })
    }

    /// Compiles the named bundled programs not compiled yet, on as many threads as there are
    /// cores (a file that mixes sources would otherwise compile them one after another as
    /// records of each turn up). Names without a program, and programs that fail, are left for
    /// `normalize` to report.
    pub fn prepare<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        let mut waiting: Vec<(String, &'static str)> = Vec::new();
        for name in names {
            if let Some(Slot::Bundled(src)) = self.programs.get(name) {
                if !waiting.iter().any(|(n, _)| n == name) {
                    waiting.push((name.to_owned(), src));
                }
            }
        }
        if waiting.len() < 2 {
            return;
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(waiting.len());
        let per_thread = waiting.len().div_ceil(threads);
        let compiled: Vec<(String, Compiled)> = std::thread::scope(|scope| {
            let handles: Vec<_> = waiting
                .chunks(per_thread)
                .map(|chunk| {
                    scope.spawn(move || {
                        let fns = functions();
                        chunk
                            .iter()
                            .filter_map(|(name, src)| {
                                Compiled::new(name, src, &fns)
                                    .ok()
                                    .map(|c| (name.clone(), c))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        for (name, c) in compiled {
            self.programs.insert(name, Slot::Ready(Box::new(c)));
        }
    }

    pub fn has_source(&self, name: &str) -> bool {
        self.programs.contains_key(name)
    }

    /// Normalizes one record with the named program, or the one its shape calls for.
    pub fn normalize(
        &mut self,
        record: &RawRecord,
        source: Option<&str>,
        now: DateTime<Utc>,
    ) -> Normalized {
        let name = match source
            .map(str::to_owned)
            .or_else(|| detect_source(&record.value))
        {
            Some(name) => name,
            None => {
                return Normalized::DeadLetter {
                    source: None,
                    reason: "cannot tell the source from the event's shape; pass --source".into(),
                };
            }
        };
        let Some(slot) = self.programs.get_mut(&name) else {
            return Normalized::DeadLetter {
                source: Some(name.clone()),
                reason: format!("no normalizer named `{name}`"),
            };
        };
        if let Slot::Bundled(src) = slot {
            match Compiled::new(&name, src, &functions()) {
                Ok(c) => *slot = Slot::Ready(Box::new(c)),
                Err(e) => {
                    return Normalized::DeadLetter {
                        source: Some(name.clone()),
                        reason: e.to_string(),
                    };
                }
            }
        }
        let Slot::Ready(compiled) = &*slot else {
            unreachable!("compiled just above")
        };

        let mut metadata = BTreeMap::new();
        if compiled.wants_sha256 {
            metadata.insert(
                "sha256".into(),
                VrlValue::from(sha256_canonical(&record.value)),
            );
        }
        if compiled.wants_now {
            metadata.insert("now".into(), VrlValue::Timestamp(now));
        }
        if let Some(src) = &record.envelope_source {
            metadata.insert("envelope_source".into(), VrlValue::from(src.as_str()));
        }
        let mut target = TargetValue {
            value: vrl_value(&record.value),
            metadata: VrlValue::Object(metadata),
            secrets: Secrets::default(),
        };
        self.runtime.clear();
        let result = self
            .runtime
            .resolve(&mut target, &compiled.program, &self.timezone);
        match result {
            Ok(_) => {}
            Err(Terminate::Abort(e)) => {
                return Normalized::Dropped {
                    source: name,
                    reason: abort_reason(&e.to_string()),
                };
            }
            Err(e) => {
                return Normalized::DeadLetter {
                    source: Some(name),
                    reason: format!("normalizer error: {e}"),
                };
            }
        }
        // A user's mapping (not one replacing a bundled program) speaks for its own source
        // only: it cannot claim to be `okta` and so pick the provider remediation acts at,
        // nor take the id of another source's event.
        let custom = (!BUNDLED.iter().any(|(n, _)| *n == name)).then_some(name.as_str());
        match self.to_events(target.value, custom) {
            Ok(events) => Normalized::Events(events),
            Err(reason) => Normalized::DeadLetter {
                source: Some(name),
                reason,
            },
        }
    }

    /// The typed boundary: VRL output → `Event`s, with ids made unique within the record and
    /// privilege tiers taken from the table. Events of a custom `mapping` take its name as
    /// their source and have their ids prefixed with `<mapping>:`.
    fn to_events(&self, out: VrlValue, mapping: Option<&str>) -> Result<Vec<Event>, String> {
        let json: Json = out
            .try_into()
            .map_err(|e| format!("normalizer output is not JSON: {e:?}"))?;
        let items = match json {
            Json::Array(items) => items,
            Json::Object(_) => vec![json],
            other => {
                return Err(format!(
                    "normalizer output must be an object or an array of objects, got {}",
                    json_kind(&other)
                ));
            }
        };
        let mut events = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let mut event: Event = serde_json::from_value(item).map_err(|e| {
                format!("normalizer output #{i} does not match the event schema: {e}")
            })?;
            if event.id.is_empty() {
                return Err(format!("normalizer output #{i} has an empty id"));
            }
            if let Some(m) = mapping {
                if event.source != m {
                    event.source = m.to_owned();
                }
                if !(event.id.starts_with(m) && event.id[m.len()..].starts_with(':')) {
                    event.id = format!("{m}:{}", event.id);
                }
            }
            if events.iter().any(|e: &Event| e.id == event.id) {
                event.id = format!("{}#{i}", event.id);
            }
            if let Some(ent) = event.entitlement.as_mut() {
                self.privileges.classify(ent);
            }
            events.push(event);
        }
        Ok(events)
    }
}

/// The record as VRL's value, converted as VRL's own `From<serde_json::Value>` does (integers
/// that fit in an `i64`, floats, larger numbers as their text) but from a reference: no copy of
/// the whole record first.
fn vrl_value(v: &Json) -> VrlValue {
    match v {
        Json::Null => VrlValue::Null,
        Json::Bool(b) => VrlValue::Boolean(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => VrlValue::Integer(i),
            (None, Some(f)) if n.is_f64() => VrlValue::from_f64_or_zero(f),
            _ => VrlValue::from(n.to_string()),
        },
        Json::String(s) => VrlValue::from(s.as_str()),
        Json::Array(items) => VrlValue::Array(items.iter().map(vrl_value).collect()),
        Json::Object(map) => VrlValue::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().into(), vrl_value(v)))
                .collect(),
        ),
    }
}

fn abort_reason(msg: &str) -> String {
    // VRL renders a bare `abort` as "aborted"; keep custom messages as they are.
    let m = msg.trim();
    if m.is_empty() || m == "aborted" {
        "not a provisioning event".to_owned()
    } else {
        m.to_owned()
    }
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Picks a bundled source from a record's shape.
pub fn detect_source(v: &Json) -> Option<String> {
    let o = v.as_object()?;
    let has = |k: &str| o.contains_key(k);
    let name = if (has("eventSource") && has("eventName"))
        || (has("detail-type")
            && o.get("detail")
                .is_some_and(|d| d.get("eventSource").is_some()))
    {
        "cloudtrail"
    } else if has("uuid") && has("eventType") && has("published") {
        "okta"
    } else if o.get("kind").and_then(Json::as_str) == Some("admin#reports#activity")
        || o.get("id")
            .is_some_and(|id| id.get("applicationName").is_some())
    {
        "gworkspace"
    } else if has("activityDisplayName")
        || (has("operationName") && has("properties"))
        || o.get("properties")
            .is_some_and(|p| p.get("activityDisplayName").is_some())
    {
        "entra"
    } else if (has("method") && has("path")) || has("schemas") || has("Operations") {
        "scim"
    } else {
        return None;
    };
    Some(name.to_owned())
}

/// Hex SHA-256 of the value as compact JSON with object keys sorted (the id of id-less sources).
pub fn sha256_canonical(v: &Json) -> String {
    let mut buf = Vec::with_capacity(1024);
    write_canonical(v, &mut buf);
    hex::encode(Sha256::digest(&buf))
}

fn write_canonical(v: &Json, out: &mut Vec<u8>) {
    match v {
        Json::Object(map) => {
            out.push(b'{');
            // serde_json's map keeps keys sorted unless its `preserve_order` feature is on.
            let mut keys: Vec<&String> = map.keys().collect();
            if !keys.is_sorted() {
                keys.sort();
            }
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing a string or a scalar into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, k);
                out.push(b':');
                write_canonical(&map[*k], out);
            }
            out.push(b'}');
        }
        Json::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        scalar => {
            let _ = serde_json::to_writer(&mut *out, scalar);
        }
    }
}

/// Splits raw input (any of the accepted file shapes, optionally gzip) into records.
/// Pieces that are not JSON objects come back as [`BadInput`], so nothing is lost.
///
/// The input is one JSON document (an object, an array, or a known container) when it parses
/// as one. Otherwise it is read as JSON Lines when it has more than one non-blank line and at
/// least one of them is a complete JSON value on its own: every line is then its own record,
/// and every line that is not one (a log line, bytes that are not UTF-8, a half-written record)
/// is its own [`BadInput`] with its line number, so one stray line costs one record, not the
/// file. Failing that, it is read as JSON values one after another (concatenated documents);
/// what cannot be read is one [`BadInput`] with its line.
pub fn split_input(bytes: &[u8]) -> Vec<Result<RawRecord, BadInput>> {
    split_input_limited(bytes, MAX_DECOMPRESSED)
}

/// [`split_input`] with gzip input refused when it inflates past `max_inflated` bytes (a
/// webhook body is limited far below a file).
pub fn split_input_limited(bytes: &[u8], max_inflated: u64) -> Vec<Result<RawRecord, BadInput>> {
    let decompressed;
    let bytes = if is_gzip(bytes) {
        match gunzip(bytes, max_inflated) {
            Ok(out) => {
                decompressed = out;
                &decompressed[..]
            }
            Err(e) => {
                return vec![Err(BadInput {
                    raw: String::new(),
                    reason: e.to_string(),
                })];
            }
        }
    } else {
        bytes
    };
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_start_matches('\u{feff}').trim();
    if trimmed.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let whole_err = match serde_json::from_str::<Json>(trimmed) {
        Ok(v) => {
            split_value(v, None, &mut out);
            return out;
        }
        Err(e) => e,
    };
    if split_lines(&text, &mut out) {
        return out;
    }
    split_stream(trimmed, whole_err, &mut out);
    out
}

/// Whether `bytes` start with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Why gzip input was not inflated.
#[derive(Debug, thiserror::Error)]
pub enum GunzipError {
    #[error("gzip input inflates past {0} bytes (the limit for this input); refused unread")]
    TooLarge(u64),
    #[error("gzip input cannot be decompressed: {0}")]
    Corrupt(#[source] std::io::Error),
}

/// Inflates gzip `bytes` (all members), refusing output larger than `max` bytes: a small
/// compressed body can inflate a thousandfold.
pub fn gunzip(bytes: &[u8], max: u64) -> Result<Vec<u8>, GunzipError> {
    let mut out = Vec::new();
    let mut dec = flate2::read::MultiGzDecoder::new(bytes).take(max.saturating_add(1));
    dec.read_to_end(&mut out).map_err(GunzipError::Corrupt)?;
    if out.len() as u64 > max {
        return Err(GunzipError::TooLarge(max));
    }
    Ok(out)
}

/// JSON Lines (see [`split_input`]): `false`, with `out` untouched, when `text` is not.
fn split_lines(text: &str, out: &mut Vec<Result<RawRecord, BadInput>>) -> bool {
    let mut parsed: Vec<(usize, &str, Result<Json, serde_json::Error>)> = Vec::new();
    let mut any_value = false;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (n, line) in text.split('\n').enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let v = serde_json::from_str::<Json>(line);
        any_value |= v.is_ok();
        parsed.push((n + 1, line, v));
    }
    if parsed.len() < 2 || !any_value {
        return false;
    }
    for (n, line, v) in parsed {
        match v {
            Ok(v) => split_value(v, None, out),
            Err(e) => {
                let utf8 = if line.contains('\u{fffd}') {
                    " (the line holds bytes that are not UTF-8)"
                } else {
                    ""
                };
                out.push(Err(BadInput {
                    raw: line.to_owned(),
                    reason: format!("line {n}: malformed JSON: {e}{utf8}"),
                }));
            }
        }
    }
    true
}

/// JSON values one after another; the first that cannot be read ends the input as one
/// [`BadInput`] holding the rest (with the line it starts on).
fn split_stream(
    trimmed: &str,
    whole_err: serde_json::Error,
    out: &mut Vec<Result<RawRecord, BadInput>>,
) {
    let mut values = serde_json::Deserializer::from_str(trimmed).into_iter::<Json>();
    let mut read = 0;
    loop {
        let at = values.byte_offset();
        match values.next() {
            None => return,
            Some(Ok(v)) => {
                split_value(v, None, out);
                read += 1;
            }
            Some(Err(e)) => {
                let rest = trimmed[at..].trim_start();
                let reason = if read == 0 {
                    format!("malformed JSON: {whole_err}")
                } else {
                    let start = trimmed.len() - rest.len();
                    let line = trimmed[..start].matches('\n').count() + 1;
                    format!("line {line}: malformed JSON after {read} document(s): {e}")
                };
                out.push(Err(BadInput {
                    raw: rest.to_owned(),
                    reason,
                }));
                return;
            }
        }
    }
}

/// Splits one parsed value into records (see the module docs for the containers).
pub fn split_value(v: Json, envelope: Option<&str>, out: &mut Vec<Result<RawRecord, BadInput>>) {
    match v {
        Json::Array(items) => {
            for item in items {
                split_value(item, envelope, out);
            }
        }
        Json::Object(mut map) => {
            if let Some(Json::Array(_)) = map.get("Records") {
                if let Some(Json::Array(items)) = map.remove("Records") {
                    for item in items {
                        split_value(item, None, out);
                    }
                }
                return;
            }
            let hook_events = map
                .get_mut("data")
                .and_then(|d| d.get_mut("events"))
                .filter(|e| e.is_array())
                .map(Json::take);
            if let Some(Json::Array(items)) = hook_events {
                let source = map.get("source").and_then(Json::as_str).map(str::to_owned);
                for item in items {
                    split_value(item, source.as_deref(), out);
                }
                return;
            }
            for key in ["value", "records", "items"] {
                let is_list = map
                    .get(key)
                    .is_some_and(|v| v.as_array().is_some_and(|a| a.iter().all(Json::is_object)))
                    && match key {
                        "records" => true,
                        "items" => {
                            map.get("kind").and_then(Json::as_str)
                                == Some("admin#reports#activities")
                        }
                        _ => map.contains_key("@odata.context") || map.len() <= 2,
                    };
                if is_list {
                    if let Some(Json::Array(items)) = map.remove(key) {
                        for item in items {
                            split_value(item, envelope, out);
                        }
                    }
                    return;
                }
            }
            out.push(Ok(RawRecord {
                value: Json::Object(map),
                envelope_source: envelope.map(str::to_owned),
            }));
        }
        other => out.push(Err(BadInput {
            raw: other.to_string(),
            reason: format!("expected a JSON object, got {}", json_kind(&other)),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_convert_to_vrl_values_as_vrl_converts_them() {
        let v = json!({
            "s": "text", "i": -3, "big": 18446744073709551615u64, "f": 1.5, "b": true, "n": null,
            "a": [1, "two", {"x": [] }], "o": {"nested": {"k": 0.0}}
        });
        assert_eq!(vrl_value(&v), VrlValue::from(v.clone()));
    }

    #[test]
    fn prepare_compiles_the_named_programs_side_by_side_and_they_normalize_as_compiled_lazily() {
        let mut prepared = Normalizer::new(&[], PrivilegeTable::default()).unwrap();
        let mut lazy = prepared.clone();
        prepared.prepare(["okta", "scim", "okta", "no-such-source"]);
        let ready =
            |n: &Normalizer, name: &str| matches!(n.programs.get(name), Some(Slot::Ready(_)));
        assert!(ready(&prepared, "okta") && ready(&prepared, "scim"));
        assert!(!ready(&prepared, "cloudtrail") && !ready(&lazy, "okta"));
        let now: DateTime<Utc> = "2024-05-01T12:00:00Z".parse().unwrap();
        for sample in [
            include_str!("../../samples/okta/grant_super_admin.json"),
            include_str!("../../samples/scim/bulk_provision.json"),
        ] {
            let (recs, bad) = records(sample);
            assert!(bad.is_empty());
            for r in &recs {
                let a = prepared.normalize(r, None, now);
                assert!(matches!(a, Normalized::Events(_)), "{a:?}");
                let b = lazy.normalize(r, None, now);
                assert_eq!(format!("{a:?}"), format!("{b:?}"));
            }
        }
    }

    fn records(input: &str) -> (Vec<RawRecord>, Vec<BadInput>) {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        for r in split_input(input.as_bytes()) {
            match r {
                Ok(r) => ok.push(r),
                Err(b) => bad.push(b),
            }
        }
        (ok, bad)
    }

    #[test]
    fn every_bundled_program_compiles() {
        let fns = functions();
        for (name, src) in BUNDLED {
            if let Err(e) = compile(name, src, &fns) {
                panic!("{e}");
            }
        }
    }

    #[test]
    fn env_and_network_functions_are_not_available() {
        let fns = functions();
        let err = compile("x", r#". = get_env_var!("HOME")"#, &fns).unwrap_err();
        assert!(err.to_string().contains("get_env_var"), "{err}");
    }

    #[test]
    fn compile_errors_render_diagnostics() {
        let err = compile("mine", ". = upcase(", &functions()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("mine") && msg.contains("error"), "{msg}");
    }

    #[test]
    fn splits_json_lines_and_keeps_bad_lines() {
        let (ok, bad) = records("{\"a\":1}\n{oops\n[{\"b\":2},{\"c\":3}]\n");
        assert_eq!(ok.len(), 3);
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].reason.starts_with("line 2: malformed JSON"),
            "{}",
            bad[0].reason
        );
        assert_eq!(bad[0].raw, "{oops");
    }

    #[test]
    fn splits_google_activity_lists_and_graph_lists() {
        let (ok, _) = records(
            r#"{"kind":"admin#reports#activities","etag":"x","items":[{"kind":"admin#reports#activity"},{"kind":"admin#reports#activity"}]}"#,
        );
        assert_eq!(ok.len(), 2);
        let (ok, _) =
            records(r#"{"@odata.context":"x","value":[{"id":"1"},{"id":"2"},{"id":"3"}]}"#);
        assert_eq!(ok.len(), 3);
    }

    #[test]
    fn splits_cloudtrail_log_files_and_okta_hooks() {
        let (ok, _) = records(r#"{"Records":[{"eventName":"A"},{"eventName":"B"}]}"#);
        assert_eq!(ok.len(), 2);
        let (ok, _) = records(
            r#"{"source":"https://acme.okta.com/api/v1/eventHooks/x","data":{"events":[{"uuid":"1"},{"uuid":"2"}]}}"#,
        );
        assert_eq!(ok.len(), 2);
        assert_eq!(
            ok[1].envelope_source.as_deref(),
            Some("https://acme.okta.com/api/v1/eventHooks/x")
        );
    }

    #[test]
    fn gzip_input_is_decompressed() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(br#"{"Records":[{"eventName":"A"}]}"#)
            .unwrap();
        let gz = enc.finish().unwrap();
        let out = split_input(&gz);
        assert_eq!(out.len(), 1);
        assert!(out[0].is_ok());
        // Past the limit it is refused, not cut short and read as a truncated document.
        let out = split_input_limited(&gz, 10);
        assert_eq!(out.len(), 1);
        let Err(bad) = &out[0] else { panic!() };
        assert!(
            bad.reason.contains("inflates past 10 bytes"),
            "{}",
            bad.reason
        );
        assert!(split_input_limited(&gz, 31)[0].is_ok());
    }

    #[test]
    fn a_malformed_document_is_one_bad_input() {
        let (ok, bad) = records("{\n  \"a\": 1,\n  oops\n}");
        assert!(ok.is_empty());
        assert_eq!(bad.len(), 1);
        assert!(bad[0].reason.starts_with("malformed JSON"));
    }

    #[test]
    fn canonical_hash_ignores_key_order() {
        let a = sha256_canonical(&json!({"b": 1, "a": [1, {"y": 2, "x": 1}]}));
        let b = sha256_canonical(&json!({"a": [1, {"x": 1, "y": 2}], "b": 1}));
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn detects_sources_by_shape() {
        assert_eq!(
            detect_source(&json!({"eventSource": "iam.amazonaws.com", "eventName": "CreateUser"})),
            Some("cloudtrail".into())
        );
        assert_eq!(
            detect_source(
                &json!({"detail-type": "AWS API Call via CloudTrail", "detail": {"eventSource": "iam.amazonaws.com"}})
            ),
            Some("cloudtrail".into())
        );
        assert_eq!(
            detect_source(
                &json!({"uuid": "u", "eventType": "user.lifecycle.create", "published": "t"})
            ),
            Some("okta".into())
        );
        assert_eq!(
            detect_source(&json!({"kind": "admin#reports#activity"})),
            Some("gworkspace".into())
        );
        assert_eq!(
            detect_source(&json!({"activityDisplayName": "Add user"})),
            Some("entra".into())
        );
        assert_eq!(
            detect_source(&json!({"method": "POST", "path": "/Users", "body": {}})),
            Some("scim".into())
        );
        assert_eq!(detect_source(&json!({"hello": 1})), None);
    }

    #[test]
    fn custom_mapping_runs_and_output_is_typed() {
        let prog = r#"
            if .kind != "grant" { abort }
            . = {
              "id": string!(.id), "source": "hr", "tenant": "acme", "time": .at,
              "action": "grant_role", "outcome": "success",
              "actor": {"email": .by, "kind": "human"},
              "target": {"email": .to, "kind": "human"},
              "entitlement": {"name": .role, "kind": "role", "privilege": "unknown"},
              "approval_ref": null, "channel": "api"
            }
        "#;
        let mut n =
            Normalizer::new(&[("hr".into(), prog.into())], PrivilegeTable::default()).unwrap();
        let now = Utc::now();
        let rec = |v: Json| RawRecord {
            value: v,
            envelope_source: None,
        };
        let out = n.normalize(
            &rec(json!({"kind": "grant", "id": "7", "at": "2024-05-01T10:00:00Z", "by": "a@x.io", "to": "b@x.io", "role": "Global Administrator"})),
            Some("hr"),
            now,
        );
        let Normalized::Events(events) = out else {
            panic!("{out:?}")
        };
        assert_eq!(
            events[0].entitlement.as_ref().unwrap().privilege,
            crate::event::Privilege::Admin
        );
        assert!(matches!(
            n.normalize(&rec(json!({"kind": "login"})), Some("hr"), now),
            Normalized::Dropped { .. }
        ));
        let Normalized::DeadLetter { reason, .. } =
            n.normalize(&rec(json!({"kind": "grant"})), Some("hr"), now)
        else {
            panic!()
        };
        assert!(reason.contains("normalizer error"), "{reason}");
    }

    #[test]
    fn output_with_a_misspelt_field_is_dead_lettered() {
        let prog = r#". = {"id": "1", "source": "x", "tenant": "t", "time": "2024-01-01T00:00:00Z",
            "action": "grant_role", "outcome": "success", "actor": {"kind": "human"},
            "target": {"kind": "human"}, "entitlemnt": null, "channel": "api"}"#;
        let mut n =
            Normalizer::new(&[("x".into(), prog.into())], PrivilegeTable::default()).unwrap();
        let out = n.normalize(
            &RawRecord {
                value: json!({}),
                envelope_source: None,
            },
            Some("x"),
            Utc::now(),
        );
        let Normalized::DeadLetter { reason, .. } = out else {
            panic!("{out:?}")
        };
        assert!(reason.contains("entitlemnt"), "{reason}");
    }
}
