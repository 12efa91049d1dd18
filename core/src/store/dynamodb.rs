//! DynamoDB adapter (feature `aws`): the store of the Lambda functions. Same contract as the
//! memory and SQLite adapters (the shared conformance checks run against it on moto).
//!
//! # Calling convention
//!
//! The ports are synchronous; [`DynamoDbStore`] holds a tokio [`Handle`] and runs every SDK call
//! with `Handle::block_on`. Call it from a **blocking context**: inside
//! `tokio::task::spawn_blocking` (how the Lambda handlers run the pipeline) or on a plain thread.
//! Never call it from inside an async task: `block_on` panics there, and even where it would not,
//! it would stall a runtime worker.
//!
//! # Table (single-table design)
//!
//! Key attributes `pk` (S, partition) and `sk` (S, sort); `ttl` (N, epoch seconds) only on
//! short-lived items, with TTL enabled on it ([`create_table`]). No secondary indexes. Key parts
//! taken from data have `%` and `#` escaped and are replaced by a SHA-256 when longer than 400
//! bytes (DynamoDB allows 2,048 bytes per partition key and 1,024 per sort key).
//!
//! | item | `pk` | `sk` | other attributes | size |
//! |---|---|---|---|---|
//! | event (idempotency marker) | `EVENT#<id>` | `EVENT` | `tenant`, `t` time, `ing` ingest time, `b` event JSON | ~1 KB |
//! | verdict (audit trail) | `EVENT#<id>` | `VERDICT` | `t`, `alert` BOOL, `b` verdict JSON, `fb` feedback JSON | 1–10 KB |
//! | a change an alert held (its burst's or off-hours session's later ones) | `EVENT#<alert's id>` | `HELD#<time, ns>#<id>` | `id` the held event's id | tiny |
//! | event log, one partition per UTC day | `LOG#<yyyy-mm-dd>` | `<time, ns>#<id>` | `b` event JSON, `x` BOOL: kept out of baselines | ~1 KB |
//! | days that have a log partition | `LOGDAYS` | `<yyyy-mm-dd>` | — | tiny |
//! | alerts, one partition per UTC month | `ALERTS#<yyyy-mm>` | `<time, ns>#<id>` | `b` verdict JSON, `fb` | 1–10 KB |
//! | recent events of a principal | `RECENT#actor#<tenant>#<key>` or `RECENT#target#…` | `RECENT` | `e:<event id>` = summary JSON per event; `ttl` | ≤ 200 × ~250 B |
//! | the tenant's activity (tenant-level bursts), commit sequence and live baseline generation | `RECENT#tenant#<tenant>#` | `RECENT` | `e:<event id>` = short summary JSON (keys, no entitlement) per event in the burst window; `rev` the commit sequence; `gen`; never expires | ≤ 100 × ~150 B |
//! | baseline, 16 write shards, per tenant generation (`generations.rs`) | `BASELINE#<0–f>` | `<scope key>` (generation 0) or `G<n>#<scope key>` | `scope`, `z` gzip'd baseline JSON (B), `rev` revision | ≤ 400 KB, enforced |
//! | what a commit or release taught the baselines (`generations.rs`) | `JOURNAL#<tenant>` | `<sequence, 12 digits>` | `id`, `d`, `lsk` (the log entry), `kind`, `s` statistic; `ttl` 7 days | tiny |
//! | the tenants | `TENANTS` | `<tenant>` | `tenant` | tiny |
//! | context generation pointer | `CONTEXT` | `CURRENT` | `seq` counter; `people`, `approvals`, `change_windows`, `domains` = live generation | tiny |
//! | context item | `CONTEXT#<kind>` | `<generation, 10 digits>#<key>` | `b` JSON (domains: the domain) | < 1 KB |
//! | dead letter | `DEADLETTER` | `<dedup key>` | `at`, `source`, `reason`, `raw` (cut to 350 KB) | ≤ 400 KB |
//! | drop counter | `DROPPED` | `<source>` | `n` (UpdateItem ADD) | tiny |
//! | alert publish claim | `ALERT#<event id>` | `PUBLISH` | `state` pending/sent, `at`; `ttl` 7 days | tiny |
//! | rebaseline resume checkpoint (`jobs.rs`) | `REBASELINE` | `STATE` | `seq` generation, `b` checkpoint JSON (window, page key, counts) | tiny |
//! | last finished rebaseline | `REBASELINE` | `LAST` | `now`: the end of its window | tiny |
//! | rebaseline staged baselines | `REBASELINE#<seq, 10 digits>` | `<scope key>` | `scope`, `z` as baselines | ≤ 400 KB, enforced |
//! | remediation result (idempotency) | `REMEDIATION#<event id>` | `RESULT#<remedy>` | `state` running/done/failed, `at`, `b` report JSON | ≤ 400 KB, enforced |
//! | remediation audit entry | `REMEDIATION#<event id>` | `AUDIT#<time, ns>#<n>` | `b` entry JSON (request, plan, each step's outcome) | small |
//! | automatic remediation awaiting confirmation at its provider (`confirm.rs`) | `CONFIRM#PENDING` | `<end of the wait, ns>#<event id>#<remedy>` | `id`, `remedy`, `until`, `b` request JSON | small |
//! | audit chain record (`audit.rs`) | `AUDIT` | `R#<seq, 12 digits>` | `seq`, `at`, `kind` verdict/feedback, `id`, `body` (verdict SHA-256 or feedback JSON), `prev`, `hash` | small |
//! | audit chain head | `AUDIT` | `HEAD` | `seq`, `hash` (moved only from the seq read) | tiny |
//! | verdict or feedback not yet sealed | `SEAL#PENDING` | `<time, ns>#<event id>#<kind>` | `id`, `kind`, `at` | tiny |
//! | signed webhook request processed (`jobs.rs`) | `REPLAY#<SHA-256 of its signature>` | `REPLAY` | `ttl`: the end of its replay window | tiny |
//! | remediation hourly counter | `RATE#REMEDIATION` | `<yyyy-mm-ddThh>` | `n` (conditional ADD); `ttl` 2 days | tiny |
//! | the table's schema version ([`DynamoDbStore::check_schema`]) | `META` | `SCHEMA` | `version` N | tiny |
//!
//! # Per event: one read, one write
//!
//! [`Ledger::snapshot`] is one `BatchGetItem` (strongly consistent): the event marker, the
//! baselines not cached by the caller and the actor's, target's and tenant's `RECENT` items. [`Ledger::commit`]
//! is one `TransactWriteItems`: the marker with `attribute_not_exists(pk)` (first, so its
//! cancellation reason is the first), the log item, the verdict, the alert index item, the audit seal
//! marker, the hold item when the verdict is held by an earlier alert, the three `RECENT` items (an `UpdateItem` that sets this event's entry and removes entries that fell out
//! of the window or the count limit, so concurrent writers never lose each other's entries), the
//! changed baselines and, on the first event of a UTC day seen by this process, its `LOGDAYS` item.
//! A re-delivered event fails the condition, the whole transaction is cancelled, nothing is
//! written and the commit reports [`CommitOutcome::Duplicate`]. Each commit carries a fresh
//! `ClientRequestToken`, so an SDK retry of a commit that did succeed is answered as a success
//! instead of looking like a duplicate. Any other cancellation (e.g. `TransactionConflict`, when
//! two commits touch the same baseline at once) is a [`StoreError::DynamoDb`] to retry.
//!
//! To trim the `RECENT` lists without reading them again, the store remembers the whole lists a
//! snapshot read until that event's commit (a few dozen snapshots at most); a commit without a
//! snapshot only adds its entry.
//!
//! # Not atomic at scale
//!
//! DynamoDB transactions hold at most 100 items, so [`BaselineStore::put_baselines`] is atomic
//! per 100 baselines and [`BaselineStore::replace_baselines`] writes the new set before deleting
//! stale scopes (a reader may briefly see new and old baselines side by side, never none).
//! Context imports are atomic per kind: items are written under a new generation and the
//! pointer flips in one write.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, DeleteRequest, KeySchemaElement, KeyType,
    KeysAndAttributes, Put, PutRequest, ReturnValue, ScalarAttributeType, TimeToLiveSpecification,
    TransactWriteItem, Update, WriteRequest,
};
use chrono::{DateTime, Duration, Utc};
use tokio::runtime::Handle;

use super::*;
use crate::alert::{AlertError, Claim, PublishGuard};
use crate::baseline::Rev;

type Item = HashMap<String, AttributeValue>;

/// DynamoDB's item size limit (400 KB, attribute names included).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// TransactWriteItems: at most 100 items and 4 MB per transaction.
const MAX_TRANSACTION_ITEMS: usize = 100;
const MAX_TRANSACTION_BYTES: usize = 4 * 1024 * 1024;
/// BatchGetItem: at most 100 keys (and 16 MB of answers) per call.
const MAX_BATCH_GET_KEYS: usize = 100;
/// BatchWriteItem: at most 25 puts or deletes per call.
const MAX_BATCH_WRITE_ITEMS: usize = 25;
/// Calls repeated for unprocessed keys/items (throttling) before giving up.
const MAX_ATTEMPTS: u32 = 8;
/// Baselines are spread over this many partitions so writes do not pile onto one.
const BASELINE_SHARDS: u8 = 16;

/// The layout of the table this build reads and writes (the item kinds above). A table without
/// the `META`/`SCHEMA` item was written before versions were kept, in layout 1. A build meeting a
/// newer version refuses the table; one meeting an older version migrates it first.
///
/// 2: revisions on baselines and `RECENT` items, per-tenant commit sequence and baseline
/// generation, the journal and the list of tenants (`generations.rs`). A layout-1 table is a
/// valid generation 0: migrating lists its tenants and clears the last rebaseline, so the next
/// one rebuilds every baseline from the log.
pub const TABLE_SCHEMA: i64 = 2;
/// Longest key part used as is; longer ones are replaced by their SHA-256.
const MAX_KEY_PART: usize = 400;
/// Dead-letter raw text kept per item (the rest of a 400 KB item is attributes and headroom).
const MAX_DEAD_LETTER_RAW: usize = 350 * 1024;
/// Recent-event lists when no snapshot told the window and limit (commits without a snapshot).
const DEFAULT_RECENT_WINDOW_DAYS: i64 = 31;
const DEFAULT_RECENT_LIMIT: usize = 200;
/// The tenant's activity list when no snapshot told its window and limit.
const DEFAULT_TENANT_WINDOW_MINUTES: i64 = 60;
const DEFAULT_TENANT_LIMIT: usize = 100;
/// Alert publish claims expire after a week; a pending claim is stale after five minutes.
const CLAIM_TTL_SECS: i64 = 7 * 86_400;
const CLAIM_STALE_SECS: i64 = 300;
/// At most this many snapshots awaiting their commit are remembered.
const MAX_PENDING: usize = 64;

/// Why a DynamoDB operation could not be done, beside the SDK's own errors.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{what} would be {bytes} bytes; a DynamoDB item holds at most 400 KB")]
    ItemTooLarge { what: String, bytes: usize },
    #[error(
        "the commit of event {event_id} would write {items} items and {bytes} bytes; a DynamoDB transaction holds at most 100 items and 4 MB"
    )]
    TransactionTooLarge {
        event_id: String,
        items: usize,
        bytes: usize,
    },
    #[error("{remaining} requests were still unprocessed after {attempts} attempts (throttled)")]
    Unprocessed { remaining: usize, attempts: u32 },
    #[error("the item {pk} / {sk} is malformed: {what}")]
    Malformed {
        pk: String,
        sk: String,
        what: String,
    },
    #[error("the page key {0:?} was not made by this store")]
    BadPageKey(String),
}

fn sdk<E: std::error::Error + Send + Sync + 'static>(
    op: &'static str,
) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::DynamoDb {
        op,
        source: Box::new(e),
    }
}

/// Errors of the calls that take a condition expression.
trait ConditionalError {
    fn condition_failed(&self) -> bool;
}

macro_rules! conditional_error {
    ($($t:ty),*) => {$(
        impl ConditionalError for $t {
            fn condition_failed(&self) -> bool {
                self.is_conditional_check_failed_exception()
            }
        }
    )*};
}

conditional_error!(
    aws_sdk_dynamodb::operation::put_item::PutItemError,
    aws_sdk_dynamodb::operation::update_item::UpdateItemError,
    aws_sdk_dynamodb::operation::delete_item::DeleteItemError
);

/// Whether a conditional call went through (`true`) or found its condition false (`false`);
/// any other failure is an error of `op`.
fn condition_held<T, E, R>(
    sent: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
    op: &'static str,
) -> Result<bool, StoreError>
where
    E: ConditionalError + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match sent {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(E::condition_failed) => Ok(false),
        Err(e) => Err(sdk(op)(e)),
    }
}

/// Why a transaction was cancelled: `None` when it was not, else each item's reason code in
/// item order.
fn cancellation_codes<R>(
    err: &aws_sdk_dynamodb::error::SdkError<TransactWriteItemsError, R>,
) -> Option<Vec<Option<String>>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(tc)) => Some(
            tc.cancellation_reasons()
                .iter()
                .map(|r| r.code().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

/// Whether a cancellation reason says another writer got there first (a revision condition,
/// or a transaction holding the item at that moment).
fn lost_race(code: &Option<String>) -> bool {
    matches!(
        code.as_deref(),
        Some("ConditionalCheckFailed" | "TransactionConflict")
    )
}

fn table_err(op: &'static str, e: TableError) -> StoreError {
    StoreError::DynamoDb {
        op,
        source: Box::new(e),
    }
}

/// Events of the log in time order, and the key to resume after them (`None`: no more).
pub type EventPage = (Vec<(Event, bool)>, Option<String>);

/// What a snapshot read, kept until the event's commit so it can trim the recent lists.
#[derive(Debug, Clone)]
struct Pending {
    /// Revisions of the actor's, target's and tenant's `RECENT` items as read.
    revs: [u64; 3],
    /// The tenant's live baseline generation as read.
    generation: u64,
    actor: Vec<EventSummary>,
    target: Vec<EventSummary>,
    window: Duration,
    limit: usize,
    tenant: Vec<EventSummary>,
    tenant_window: Duration,
    tenant_limit: usize,
}

/// The DynamoDB store. See the module docs for the table and the calling convention.
#[derive(Debug)]
pub struct DynamoDbStore {
    client: Client,
    table: String,
    rt: Handle,
    /// Days whose `LOGDAYS` item this process wrote or saw.
    known_days: Mutex<HashSet<String>>,
    /// Whole recent lists read by snapshots, by event id, until that event's commit.
    pending: Mutex<HashMap<String, Pending>>,
    /// Each tenant's live baseline generation as last read (`generations.rs`).
    gens: Mutex<HashMap<String, u64>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Keys and attribute values.

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn num(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A key part from data: `%` and `#` escaped (so parts never run together), hashed when long.
fn key_part(raw: &str) -> Cow<'_, str> {
    let escaped = if raw.contains(['%', '#']) {
        Cow::Owned(raw.replace('%', "%25").replace('#', "%23"))
    } else {
        Cow::Borrowed(raw)
    };
    if escaped.len() <= MAX_KEY_PART {
        return escaped;
    }
    use sha2::{Digest, Sha256};
    Cow::Owned(format!("~{}", hex::encode(Sha256::digest(raw.as_bytes()))))
}

/// Times as fixed-width RFC 3339 with nanoseconds, so text order is time order.
fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

fn parse_ts(v: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn day(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

fn event_pk(id: &str) -> String {
    format!("EVENT#{}", key_part(id))
}

fn log_pk(d: &str) -> String {
    format!("LOG#{d}")
}

fn time_sk(t: DateTime<Utc>, id: &str) -> String {
    format!("{}#{}", ts(t), key_part(id))
}

fn alerts_pk(t: DateTime<Utc>) -> String {
    format!("ALERTS#{}", t.format("%Y-%m"))
}

fn recent_key(role: &str, tenant: &str, principal: &str) -> Item {
    key(
        format!("RECENT#{role}#{}#{}", key_part(tenant), key_part(principal)),
        "RECENT",
    )
}

/// A baseline's key in generation `gen` of its tenant: generation 0 (the tables written before
/// generations) keys it by scope alone, a later one prefixes the sort key with `G<gen>#` (a
/// scope's own `#` is escaped, so the two cannot meet).
fn baseline_key(scope: &ScopeKey, generation: u64) -> Item {
    use sha2::{Digest, Sha256};
    let shard = Sha256::digest(scope.as_str().as_bytes())[0] % BASELINE_SHARDS;
    let part = key_part(scope.as_str());
    let sk = if generation == 0 {
        part.into_owned()
    } else {
        format!("G{generation}#{part}")
    };
    key(format!("BASELINE#{shard:x}"), sk)
}

fn recent_attr(event_id: &str) -> String {
    format!("e:{}", key_part(event_id))
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn get_bool(item: &Item, name: &str) -> Option<bool> {
    match item.get(name) {
        Some(AttributeValue::Bool(v)) => Some(*v),
        _ => None,
    }
}

fn malformed(item: &Item, what: &str) -> StoreError {
    table_err(
        "decode",
        TableError::Malformed {
            pk: get_s(item, "pk").unwrap_or("?").to_owned(),
            sk: get_s(item, "sk").unwrap_or("?").to_owned(),
            what: what.to_owned(),
        },
    )
}

fn need_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    get_s(item, name).ok_or_else(|| malformed(item, &format!("no string attribute {name}")))
}

/// DynamoDB's size of an item: attribute names plus values (numbers counted generously).
fn item_size(item: &Item) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(x) => x.len(),
            AttributeValue::N(x) => x.len().div_ceil(2) + 1,
            AttributeValue::B(x) => x.as_ref().len(),
            AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
            AttributeValue::L(xs) => 3 + xs.iter().map(|x| 1 + value(x)).sum::<usize>(),
            AttributeValue::M(m) => {
                3 + m.iter().map(|(k, x)| 1 + k.len() + value(x)).sum::<usize>()
            }
            AttributeValue::Ss(xs) => xs.iter().map(String::len).sum(),
            AttributeValue::Ns(xs) => xs.iter().map(|x| x.len().div_ceil(2) + 1).sum(),
            AttributeValue::Bs(xs) => xs.iter().map(|x| x.as_ref().len()).sum(),
            _ => 0,
        }
    }
    item.iter().map(|(k, v)| k.len() + value(v)).sum()
}

/// Refuses an item over 400 KB with a message naming it.
fn check_item(what: impl FnOnce() -> String, item: &Item) -> Result<usize, StoreError> {
    let bytes = item_size(item);
    if bytes > MAX_ITEM_BYTES {
        return Err(table_err(
            "write",
            TableError::ItemTooLarge {
                what: what(),
                bytes,
            },
        ));
    }
    Ok(bytes)
}

fn baseline_item(scope: &ScopeKey, b: &Baseline, generation: u64) -> Result<Item, StoreError> {
    let json = serde_json::to_vec(b)?;
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    let _ = z.write_all(&json);
    let packed = z.finish().unwrap_or_default();
    let mut item = baseline_key(scope, generation);
    item.insert("scope".into(), s(scope.as_str()));
    item.insert("z".into(), AttributeValue::B(Blob::new(packed)));
    item.insert(REV.into(), num(b.rev.0 as i64 + 1));
    check_item(|| format!("the baseline {}", scope.as_str()), &item)?;
    Ok(item)
}

fn decode_baseline(item: &Item) -> Result<(ScopeKey, Baseline), StoreError> {
    let scope = ScopeKey(need_s(item, "scope")?.to_owned());
    let Some(AttributeValue::B(z)) = item.get("z") else {
        return Err(malformed(item, "no packed baseline"));
    };
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(z.as_ref())
        .read_to_end(&mut json)
        .map_err(|e| malformed(item, &format!("baseline does not unpack: {e}")))?;
    let mut b: Baseline = serde_json::from_slice(&json)?;
    b.rev = Rev(rev_of(Some(item)));
    Ok((scope, b))
}

/// The attribute holding an item's revision (baselines, `RECENT` lists): moved by one with
/// every write, which is conditioned on the revision read.
const REV: &str = "rev";

/// An item's revision; 0 when there is no item, or it was written before revisions were kept.
fn rev_of(item: Option<&Item>) -> u64 {
    item.and_then(|i| get_n(i, REV)).unwrap_or(0).max(0) as u64
}

/// The condition that an item is still at revision `rev` (0: absent, or without one), with
/// its names and values.
fn rev_condition(
    rev: u64,
) -> (
    String,
    HashMap<String, String>,
    HashMap<String, AttributeValue>,
) {
    let names = HashMap::from([("#rev".to_owned(), REV.to_owned())]);
    if rev == 0 {
        ("attribute_not_exists(#rev)".into(), names, HashMap::new())
    } else {
        (
            "#rev = :rev".into(),
            names,
            HashMap::from([(":rev".to_owned(), num(rev as i64))]),
        )
    }
}

fn decode_recent(item: Option<&Item>) -> Result<Vec<EventSummary>, StoreError> {
    let mut out = Vec::new();
    for (name, v) in item.into_iter().flatten() {
        if let (true, AttributeValue::S(json)) = (name.starts_with("e:"), v) {
            out.push(serde_json::from_str(json)?);
        }
    }
    Ok(out)
}

fn newest_first(list: &mut [EventSummary]) {
    list.sort_by(|a, b| b.time.cmp(&a.time).then(b.id.cmp(&a.id)));
}

/// The entries of a recent list in `[since, until]`, newest first, at most `limit`.
fn window(
    mut list: Vec<EventSummary>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: usize,
) -> Vec<EventSummary> {
    list.retain(|s| s.time >= since && s.time <= until);
    newest_first(&mut list);
    list.truncate(limit);
    list
}

/// How a commit changes one recent list.
#[derive(Debug, PartialEq)]
struct RecentPlan {
    /// Whether the new entry is kept (an event older than the window is not).
    keep_new: bool,
    /// Ids of stored entries to remove.
    remove: Vec<String>,
    /// Expiry of the item: newest entry kept + window + a day.
    ttl: i64,
}

/// Keeps the newest `limit` entries within `window` of the newest one.
fn plan_recent(
    stored: &[EventSummary],
    new: &EventSummary,
    window: Duration,
    limit: usize,
) -> RecentPlan {
    let mut all: Vec<&EventSummary> = stored.iter().filter(|s| s.id != new.id).collect();
    all.push(new);
    all.sort_by(|a, b| b.time.cmp(&a.time).then(b.id.cmp(&a.id)));
    let newest = all[0].time;
    let mut keep_new = false;
    let mut remove = Vec::new();
    for (i, e) in all.iter().enumerate() {
        let kept = i < limit.max(1) && e.time >= crate::time::before(newest, window);
        if e.id == new.id {
            keep_new = kept;
        } else if !kept {
            remove.push(e.id.clone());
        }
    }
    RecentPlan {
        keep_new,
        remove,
        ttl: crate::time::after(crate::time::after(newest, window), Duration::days(1)).timestamp(),
    }
}

/// A `ClientRequestToken` unique to one commit call (the SDK resends it on its own retries).
fn request_token(event_id: &str, ingested_at: DateTime<Utc>) -> String {
    use sha2::{Digest, Sha256};
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    h.update(event_id.as_bytes());
    h.update([0]);
    h.update(ts(ingested_at).as_bytes());
    h.update(CALLS.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(ts(Utc::now()).as_bytes());
    // At most 36 characters.
    hex::encode(h.finalize())[..36].to_owned()
}

fn backoff(attempt: u32) {
    // Exponential, 50 ms doubling up to 2 s; runs on the caller's blocking thread.
    std::thread::sleep(std::time::Duration::from_millis(
        (50u64 << attempt.min(6)).min(2_000),
    ));
}

fn cut_raw(dl: &DeadLetter) -> (Cow<'_, str>, Cow<'_, str>) {
    if dl.raw.len() <= MAX_DEAD_LETTER_RAW {
        return (Cow::Borrowed(&dl.raw), Cow::Borrowed(&dl.reason));
    }
    let mut end = MAX_DEAD_LETTER_RAW;
    while !dl.raw.is_char_boundary(end) {
        end -= 1;
    }
    (
        Cow::Borrowed(&dl.raw[..end]),
        Cow::Owned(format!(
            "{} (raw text cut from {} to {end} bytes to fit a DynamoDB item)",
            dl.reason,
            dl.raw.len()
        )),
    )
}

/// A condition on the sort key of a query.
enum Sk {
    Any,
    BeginsWith(String),
    AtLeast(String),
}

fn from_json<T: serde::de::DeserializeOwned>(b: &str) -> Result<T, StoreError> {
    Ok(serde_json::from_str(b)?)
}

/// Creates the table (on-demand billing, TTL on `ttl`) and waits until it is active. Returns false
/// when it already existed (then it is left as it is).
pub async fn create_table(client: &Client, name: &str) -> Result<bool, StoreError> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(sdk("CreateTable"))
    };
    let schema = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(sdk("CreateTable"))
    };
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(schema("pk", KeyType::Hash)?)
        .key_schema(schema("sk", KeyType::Range)?)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            return Ok(false);
        }
        Err(e) => return Err(sdk("CreateTable")(e)),
    }
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(std::time::Duration::from_secs(300))
        .await
        .map_err(sdk("DescribeTable"))?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("ttl")
                .enabled(true)
                .build()
                .map_err(sdk("UpdateTimeToLive"))?,
        )
        .send()
        .await
        .map_err(sdk("UpdateTimeToLive"))?;
    Ok(true)
}

/// The schema version item's key.
fn schema_key() -> Item {
    key("META", "SCHEMA")
}

impl DynamoDbStore {
    /// Checks the table's schema version before anything else reads or writes it (every host
    /// calls this once, when it opens the table): a table a newer provguard wrote is refused
    /// with [`StoreError::TableSchema`], whose message says to upgrade; a new table, or one
    /// written before versions were kept, is stamped with [`TABLE_SCHEMA`] (a conditional put,
    /// so two hosts starting together cannot disagree). Returns the version in force.
    pub fn check_schema(&self) -> Result<i64, StoreError> {
        let found = self.get(schema_key())?.and_then(|i| get_n(&i, "version"));
        match found {
            Some(v) if v > TABLE_SCHEMA => Err(StoreError::TableSchema {
                table: self.table.clone(),
                found: v,
                known: TABLE_SCHEMA,
            }),
            Some(TABLE_SCHEMA) => Ok(TABLE_SCHEMA),
            older => {
                // Layout 1 (stamped, or written before versions): list its tenants, and make
                // the next rebaseline a full rebuild from the log.
                self.list_tenants()?;
                for sk in ["LAST", "STATE"] {
                    self.rt
                        .block_on(
                            self.client
                                .delete_item()
                                .table_name(&self.table)
                                .set_key(Some(key("REBASELINE", sk)))
                                .send(),
                        )
                        .map_err(sdk("DeleteItem"))?;
                }
                let mut item = schema_key();
                item.insert("version".into(), num(TABLE_SCHEMA));
                let (cond, values) = match older {
                    Some(v) => (
                        "#v = :old",
                        Some(HashMap::from([(":old".to_owned(), num(v))])),
                    ),
                    None => ("attribute_not_exists(#v)", None),
                };
                let put = self.rt.block_on(
                    self.client
                        .put_item()
                        .table_name(&self.table)
                        .set_item(Some(item))
                        .condition_expression(cond)
                        .expression_attribute_names("#v", "version")
                        .set_expression_attribute_values(values)
                        .send(),
                );
                match condition_held(put, "PutItem")? {
                    true => Ok(TABLE_SCHEMA),
                    // Another host stamped it first: read what it wrote.
                    false => self.check_schema(),
                }
            }
        }
    }

    /// A store on `table`, running SDK calls on the runtime behind `rt`. Its methods block: call
    /// them from `tokio::task::spawn_blocking` or a plain thread, never from an async task.
    pub fn new(client: Client, table: impl Into<String>, rt: Handle) -> Self {
        DynamoDbStore {
            client,
            table: table.into(),
            rt,
            known_days: Mutex::new(HashSet::new()),
            pending: Mutex::new(HashMap::new()),
            gens: Mutex::new(HashMap::new()),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Writes one item unconditionally (insert or replace).
    fn put(&self, item: Item) -> Result<(), StoreError> {
        self.rt
            .block_on(
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(item))
                    .send(),
            )
            .map_err(sdk("PutItem"))?;
        Ok(())
    }

    fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .rt
            .block_on(
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .set_key(Some(key))
                    .consistent_read(true)
                    .send(),
            )
            .map_err(sdk("GetItem"))?;
        Ok(out.item)
    }

    /// Reads items by key: one BatchGetItem per 100 keys (the service's limit), repeating
    /// `UnprocessedKeys` (throttling or the 16 MB answer limit) with backoff.
    fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let mut seen = HashSet::new();
        let keys: Vec<Item> = keys
            .into_iter()
            // The service rejects a request naming the same key twice.
            .filter(|k| {
                seen.insert((
                    get_s(k, "pk").map(str::to_owned),
                    get_s(k, "sk").map(str::to_owned),
                ))
            })
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(MAX_BATCH_GET_KEYS) {
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(sdk("BatchGetItem"))?;
            let mut attempt = 0;
            loop {
                let resp = self
                    .rt
                    .block_on(
                        self.client
                            .batch_get_item()
                            .request_items(&self.table, request)
                            .send(),
                    )
                    .map_err(sdk("BatchGetItem"))?;
                if let Some(mut r) = resp.responses {
                    out.extend(r.remove(&self.table).unwrap_or_default());
                }
                match resp
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys().is_empty())
                {
                    None => break,
                    Some(rest) => {
                        attempt += 1;
                        if attempt >= MAX_ATTEMPTS {
                            return Err(table_err(
                                "BatchGetItem",
                                TableError::Unprocessed {
                                    remaining: rest.keys().len(),
                                    attempts: attempt,
                                },
                            ));
                        }
                        backoff(attempt);
                        request = rest;
                    }
                }
            }
        }
        Ok(out)
    }

    /// Puts and deletes: one BatchWriteItem per 25 requests (the service's limit), repeating
    /// `UnprocessedItems` with backoff. Not atomic.
    fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(MAX_BATCH_WRITE_ITEMS) {
            let mut todo = chunk.to_vec();
            let mut attempt = 0;
            loop {
                let resp = self
                    .rt
                    .block_on(
                        self.client
                            .batch_write_item()
                            .request_items(&self.table, todo)
                            .send(),
                    )
                    .map_err(sdk("BatchWriteItem"))?;
                match resp
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|r| !r.is_empty())
                {
                    None => break,
                    Some(rest) => {
                        attempt += 1;
                        if attempt >= MAX_ATTEMPTS {
                            return Err(table_err(
                                "BatchWriteItem",
                                TableError::Unprocessed {
                                    remaining: rest.len(),
                                    attempts: attempt,
                                },
                            ));
                        }
                        backoff(attempt);
                        todo = rest;
                    }
                }
            }
        }
        Ok(())
    }

    fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
        Ok(WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(sdk("BatchWriteItem"))?,
            )
            .build())
    }

    fn delete_request(key: Item) -> Result<WriteRequest, StoreError> {
        Ok(WriteRequest::builder()
            .delete_request(
                DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(sdk("BatchWriteItem"))?,
            )
            .build())
    }

    /// One page of a partition, in sort-key order.
    fn query_page(
        &self,
        pk: &str,
        sk: &Sk,
        limit: Option<i32>,
        start: Option<Item>,
        keys_only: bool,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let mut q = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_values(":pk", s(pk));
        q = match sk {
            Sk::Any => q.key_condition_expression("#pk = :pk"),
            Sk::BeginsWith(p) => q
                .key_condition_expression("#pk = :pk AND begins_with(#sk, :sk)")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":sk", s(p.clone())),
            Sk::AtLeast(p) => q
                .key_condition_expression("#pk = :pk AND #sk >= :sk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":sk", s(p.clone())),
        };
        if keys_only {
            q = q
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#sk", "sk");
        }
        let out = self
            .rt
            .block_on(q.set_limit(limit).set_exclusive_start_key(start).send())
            .map_err(sdk("Query"))?;
        Ok((out.items.unwrap_or_default(), out.last_evaluated_key))
    }

    /// A whole partition (or the part matching `sk`), following pages.
    fn query_all(&self, pk: &str, sk: &Sk, keys_only: bool) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self.query_page(pk, sk, None, start, keys_only)?;
            out.extend(items);
            match next {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    /// Days with a log partition at or after `from` (`None`: all), oldest first.
    fn log_days(&self, from: Option<&str>) -> Result<Vec<String>, StoreError> {
        let sk = from.map_or(Sk::Any, |d| Sk::AtLeast(d.to_owned()));
        let items = self.query_all("LOGDAYS", &sk, true)?;
        let days: Vec<String> = items
            .iter()
            .filter_map(|i| get_s(i, "sk").map(str::to_owned))
            .collect();
        lock(&self.known_days).extend(days.iter().cloned());
        Ok(days)
    }

    fn recent(
        &self,
        role: &str,
        tenant: &str,
        principal: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, StoreError> {
        let item = self.get(recent_key(role, tenant, principal))?;
        Ok(window(decode_recent(item.as_ref())?, since, until, limit))
    }

    fn decode_verdict(item: &Item) -> Result<Verdict, StoreError> {
        let mut v: Verdict = serde_json::from_str(need_s(item, "b")?)?;
        v.feedback = match get_s(item, "fb") {
            Some(fb) => Some(serde_json::from_str(fb)?),
            None => None,
        };
        Ok(v)
    }

    /// One page of the event log at or after `since`, oldest first (time, then id), each event
    /// with whether it must stay out of baselines (it alerted and was not marked benign). Pass the
    /// returned key back as `start_key` to resume (e.g. in the next invocation of a rebaseline);
    /// `None` means the log is exhausted.
    pub fn scan_events_page(
        &self,
        since: DateTime<Utc>,
        start_key: Option<&str>,
        limit: usize,
    ) -> Result<EventPage, StoreError> {
        self.log_page(since, start_key, limit, None)
    }

    /// [`DynamoDbStore::scan_events_page`] for a rebuild that starts at `cut`: each event with
    /// whether it stays out of it ([`Rebuild::scan_rebuild`]).
    pub fn log_page(
        &self,
        since: DateTime<Utc>,
        start_key: Option<&str>,
        limit: usize,
        cut: Option<&Cut>,
    ) -> Result<EventPage, StoreError> {
        let since_day = day(since);
        let (start_day, after) = match start_key {
            None => (since_day.clone(), None),
            Some(k) => {
                let (d, sk) = k
                    .split_once('|')
                    .ok_or_else(|| table_err("Query", TableError::BadPageKey(k.to_owned())))?;
                (
                    d.max(since_day.as_str()).to_owned(),
                    Some((d.to_owned(), sk.to_owned())),
                )
            }
        };
        let floor = ts(since);
        let mut out = Vec::new();
        for d in self.log_days(Some(&start_day))? {
            let pk = log_pk(&d);
            let mut start = match &after {
                Some((ad, sk)) if *ad == d => Some(key(pk.clone(), sk.clone())),
                _ => None,
            };
            loop {
                let room = limit.saturating_sub(out.len()).clamp(1, i32::MAX as usize) as i32;
                let (items, next) =
                    self.query_page(&pk, &Sk::AtLeast(floor.clone()), Some(room), start, false)?;
                let mut last = None;
                for item in &items {
                    let e: Event = serde_json::from_str(need_s(item, "b")?)?;
                    let excluded = generations::excluded_at(item, &e, cut);
                    out.push((e, excluded));
                    last = get_s(item, "sk").map(str::to_owned);
                }
                if out.len() >= limit {
                    // Resume after the last item returned (an empty page may follow).
                    return Ok((out, last.map(|sk| format!("{d}|{sk}"))));
                }
                match next {
                    Some(k) => start = Some(k),
                    None => break,
                }
            }
        }
        Ok((out, None))
    }

    // --- context

    fn import_kind(&self, kind: &str, items: Vec<(String, String)>) -> Result<(), StoreError> {
        // A new generation number (an atomic counter on the pointer item).
        let out = self
            .rt
            .block_on(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key("CONTEXT", "CURRENT")))
                    .update_expression("ADD #seq :one")
                    .expression_attribute_names("#seq", "seq")
                    .expression_attribute_values(":one", num(1))
                    .return_values(ReturnValue::UpdatedNew)
                    .send(),
            )
            .map_err(sdk("UpdateItem"))?;
        let generation = out
            .attributes
            .as_ref()
            .and_then(|a| get_n(a, "seq"))
            .unwrap_or(1);
        let pk = format!("CONTEXT#{kind}");
        let prefix = format!("{generation:010}#");
        let mut puts = Vec::with_capacity(items.len());
        for (k, body) in items {
            let mut item = key(pk.clone(), format!("{prefix}{}", key_part(&k)));
            item.insert("b".into(), s(body));
            check_item(|| format!("the {kind} entry {k}"), &item)?;
            puts.push(Self::put_request(item)?);
        }
        self.batch_write(puts)?;
        // Readers switch to the new generation in one write, unless a newer import already won.
        let flipped = self.rt.block_on(
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key("CONTEXT", "CURRENT")))
                .update_expression("SET #k = :g")
                .condition_expression("attribute_not_exists(#k) OR #k < :g")
                .expression_attribute_names("#k", kind)
                .expression_attribute_values(":g", num(generation))
                .send(),
        );
        let won = condition_held(flipped, "UpdateItem")?;
        // Then the generations readers no longer use are deleted: the older ones when this
        // import won, else its own (a newer import won meanwhile).
        let mut deletes = Vec::new();
        for item in self.query_all(&pk, &Sk::Any, true)? {
            let sk = need_s(&item, "sk")?;
            let g: i64 = sk
                .split('#')
                .next()
                .and_then(|g| g.parse().ok())
                .unwrap_or(0);
            if (won && g < generation) || (!won && g == generation) {
                deletes.push(Self::delete_request(key(pk.clone(), sk))?);
            }
        }
        self.batch_write(deletes)
    }

    fn context_kind<T>(
        &self,
        pointer: Option<&Item>,
        kind: &str,
        parse: fn(&str) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let Some(generation) = pointer.and_then(|p| get_n(p, kind)) else {
            return Ok(Vec::new());
        };
        self.query_all(
            &format!("CONTEXT#{kind}"),
            &Sk::BeginsWith(format!("{generation:010}#")),
            false,
        )?
        .iter()
        .map(|i| parse(need_s(i, "b")?))
        .collect()
    }
}

impl EventStore for DynamoDbStore {
    fn has_event(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.get(key(event_pk(id), "EVENT"))?.is_some())
    }

    fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        match self.get(key(event_pk(id), "EVENT"))? {
            Some(item) => Ok(Some(serde_json::from_str(need_s(&item, "b")?)?)),
            None => Ok(None),
        }
    }

    /// Reads the actor's `RECENT` item: events within the pipeline's look-back window (older ones
    /// are trimmed as newer events arrive).
    fn recent_by_actor(
        &self,
        tenant: &str,
        actor_key: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, StoreError> {
        self.recent("actor", tenant, actor_key, since, until, limit)
    }

    /// Reads the target's `RECENT` item (see [`EventStore::recent_by_actor`]).
    fn recent_by_target(
        &self,
        tenant: &str,
        target_key: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, StoreError> {
        self.recent("target", tenant, target_key, since, until, limit)
    }

    fn scan_events(
        &self,
        since: DateTime<Utc>,
        f: &mut dyn FnMut(Event, bool),
    ) -> Result<u64, StoreError> {
        // A scan with no cut: each event with whether it is held out now.
        self.scan_rebuild(since, None, f)
    }
}

impl VerdictStore for DynamoDbStore {
    fn verdict(&self, event_id: &str) -> Result<Option<Verdict>, StoreError> {
        match self.get(key(event_pk(event_id), "VERDICT"))? {
            Some(item) => Ok(Some(Self::decode_verdict(&item)?)),
            None => Ok(None),
        }
    }

    /// One query per month partition (months taken from the `LOGDAYS` items).
    fn alerts(&self, since: Option<DateTime<Utc>>) -> Result<Vec<Verdict>, StoreError> {
        let days = self.log_days(since.map(day).as_deref())?;
        let mut months: Vec<&str> = days.iter().map(|d| &d[..7.min(d.len())]).collect();
        months.dedup();
        let sk = since.map_or(Sk::Any, |t| Sk::AtLeast(ts(t)));
        let mut out = Vec::new();
        for m in months {
            for item in self.query_all(&format!("ALERTS#{m}"), &sk, false)? {
                out.push(Self::decode_verdict(&item)?);
            }
        }
        Ok(out)
    }

    /// Updates the verdict, its log item (whether it stays out of baselines) and its alert index
    /// item in one transaction.
    fn set_feedback(
        &self,
        event_id: &str,
        feedback: Feedback,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(item) = self.get(key(event_pk(event_id), "VERDICT"))? else {
            return Ok(false);
        };
        let v = Self::decode_verdict(&item)?;
        let record = FeedbackRecord {
            label: feedback,
            note: note.map(str::to_owned),
            at,
        };
        let fb = serde_json::to_string(&record)?;
        let update = |k: Item, expr: &str, name: &str, value: AttributeValue| {
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(k))
                .update_expression(expr)
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#a", name)
                .expression_attribute_values(":v", value)
                .build()
                .map(|u| TransactWriteItem::builder().update(u).build())
                .map_err(sdk("TransactWriteItems"))
        };
        let mut items = vec![
            update(
                key(event_pk(event_id), "VERDICT"),
                "SET #a = :v",
                "fb",
                s(fb.clone()),
            )?,
            update(
                key(log_pk(&day(v.time)), time_sk(v.time, event_id)),
                "SET #a = :v",
                "x",
                AttributeValue::Bool((v.alert || v.is_held()) && feedback != Feedback::Benign),
            )?,
        ];
        if v.alert {
            items.push(update(
                key(alerts_pk(v.time), time_sk(v.time, event_id)),
                "SET #a = :v",
                "fb",
                s(fb),
            )?);
        }
        // Sealed into the audit chain by the next seal.
        let marker = Put::builder()
            .table_name(&self.table)
            .set_item(Some(audit::seal_marker(
                event_id,
                crate::audit::AuditKind::Feedback,
                at,
            )))
            .build()
            .map_err(sdk("TransactWriteItems"))?;
        items.push(TransactWriteItem::builder().put(marker).build());
        self.rt
            .block_on(
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .send(),
            )
            .map_err(sdk("TransactWriteItems"))?;
        Ok(true)
    }

    fn held_by(&self, lead: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .query_all(&event_pk(lead), &Sk::BeginsWith("HELD#".into()), false)?
            .iter()
            .filter_map(|item| get_s(item, "id").map(str::to_owned))
            .collect())
    }
}

impl BaselineStore for DynamoDbStore {
    fn baselines(&self, keys: &[ScopeKey]) -> Result<HashMap<ScopeKey, Baseline>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let mut out = HashMap::new();
        for (tenant, keys) in by_tenant(keys) {
            out.extend(self.baselines_in(&keys, self.gen_of(&tenant)?)?);
        }
        Ok(out)
    }

    /// One transaction per 100 baselines (DynamoDB's transaction limit), each written only over
    /// the revision it was read at ([`StoreError::Conflict`] otherwise: read and apply again).
    fn put_baselines(&self, items: &[(&ScopeKey, &Baseline)]) -> Result<(), StoreError> {
        for chunk in items.chunks(MAX_TRANSACTION_ITEMS) {
            let mut writes = Vec::with_capacity(chunk.len());
            for (k, b) in chunk {
                let generation = scope_gen(k, self.gen_of(k.tenant_id())?);
                writes.push(self.conditional_put(baseline_item(k, b, generation)?, b.rev.0)?);
            }
            let sent = self.rt.block_on(
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(writes))
                    .send(),
            );
            if let Err(err) = sent {
                if let Some(codes) = cancellation_codes(&err) {
                    if let Some(i) = codes.iter().position(lost_race) {
                        let what = chunk.get(i).map_or("a baseline", |(k, _)| k.as_str());
                        return Err(StoreError::Conflict {
                            what: format!("the baseline {what}"),
                        });
                    }
                }
                return Err(sdk("TransactWriteItems")(err));
            }
        }
        Ok(())
    }

    /// A rebuild with nothing to catch up: the set becomes each tenant's next generation and
    /// its live one is deleted (see `generations.rs`).
    fn replace_baselines(&self, all: &HashMap<ScopeKey, Baseline>) -> Result<(), StoreError> {
        let mut cut = self.cut()?;
        // Every tenant with baselines, listed or not, is switched (to an empty generation
        // when the set has none of it).
        let unlisted: Vec<String> = all
            .keys()
            .map(|k| k.tenant_id().to_owned())
            .chain(self.baseline_tenants()?)
            .filter(|t| t != crate::detect::GLOBAL && !cut.tenants.contains_key(t))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        cut.tenants.extend(self.tenant_state(&unlisted)?.tenants);
        // The set is written as it is, its pooled scope included.
        self.switch_generations(&cut, all.clone(), &mut |_, _, _| Vec::new(), None)?;
        Ok(())
    }

    /// Live baselines only (each tenant's live generation).
    fn baseline_count(&self) -> Result<u64, StoreError> {
        self.live_baseline_count()
    }

    fn scan_baselines(&self) -> Result<Vec<(ScopeKey, Baseline)>, StoreError> {
        self.live_baselines()
    }

    /// One transaction with the tenant's sequence moved on (see `generations.rs`), read and
    /// applied again while another writer gets in between.
    fn update_baselines(
        &self,
        keys: &[ScopeKey],
        released: Option<(&Event, f64)>,
        apply: &mut dyn FnMut(&mut HashMap<ScopeKey, Baseline>),
    ) -> Result<HashMap<ScopeKey, Baseline>, StoreError> {
        let tenant = match (released, keys.first()) {
            (Some((e, _)), _) => e.tenant.clone(),
            (None, Some(k)) => k.tenant_id().to_owned(),
            (None, None) => return Ok(HashMap::new()),
        };
        for attempt in 0..MAX_ATTEMPTS * 4 {
            if let Some(m) = self.try_update(&tenant, keys, released, apply)? {
                return Ok(m);
            }
            backoff(attempt.min(3));
        }
        Err(StoreError::Conflict {
            what: format!("the baselines of tenant {tenant}"),
        })
    }
}

impl Rebuild for DynamoDbStore {
    fn begin_rebuild(&self) -> Result<Option<Cut>, StoreError> {
        Ok(Some(self.cut()?))
    }

    fn scan_rebuild(
        &self,
        since: DateTime<Utc>,
        cut: Option<&Cut>,
        f: &mut dyn FnMut(Event, bool),
    ) -> Result<u64, StoreError> {
        let mut n = 0u64;
        let mut start: Option<String> = None;
        loop {
            let (events, next) = self.log_page(since, start.as_deref(), 1_000, cut)?;
            for (e, excluded) in events {
                n += 1;
                f(e, excluded);
            }
            match next {
                Some(k) => start = Some(k),
                None => return Ok(n),
            }
        }
    }

    fn finish_rebuild(
        &self,
        cut: Option<&Cut>,
        all: HashMap<ScopeKey, Baseline>,
        catch_up: &mut CatchUp<'_>,
        pool: Option<f64>,
    ) -> Result<usize, StoreError> {
        match cut {
            Some(cut) => Ok(self.switch_generations(cut, all, catch_up, pool)?.scopes),
            None => {
                let all = with_pool(all, pool);
                self.replace_baselines(&all)?;
                Ok(all.len())
            }
        }
    }
}

impl ContextStore for DynamoDbStore {
    fn context(&self) -> Result<Context, StoreError> {
        let pointer = self.get(key("CONTEXT", "CURRENT"))?;
        let p = pointer.as_ref();
        let people: Vec<Person> = self.context_kind(p, "people", from_json)?;
        let approvals: Vec<Approval> = self.context_kind(p, "approvals", from_json)?;
        let windows: Vec<ChangeWindow> = self.context_kind(p, "change_windows", from_json)?;
        let domains: Vec<String> = self.context_kind(p, "domains", |b| Ok(b.to_owned()))?;
        Ok(Context::new(people, approvals, windows, domains))
    }

    /// Each kind given is written under a new generation (BatchWriteItem, 25 items per call),
    /// then readers are switched to it in one write and the old generation is deleted: a reader
    /// sees the whole old or the whole new kind, never a mix.
    fn import_context(&self, import: &ContextImport) -> Result<(), StoreError> {
        if let Some(people) = &import.people {
            // One entry per e-mail (case-insensitive), the last one winning, as in SQLite.
            let mut by_email: std::collections::BTreeMap<String, String> = Default::default();
            for p in people {
                by_email.insert(p.email.to_lowercase(), serde_json::to_string(p)?);
            }
            self.import_kind("people", by_email.into_iter().collect())?;
        }
        if let Some(approvals) = &import.approvals {
            let items = approvals
                .iter()
                .enumerate()
                .map(|(i, a)| Ok((format!("{i:08}"), serde_json::to_string(a)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.import_kind("approvals", items)?;
        }
        if let Some(windows) = &import.change_windows {
            let items = windows
                .iter()
                .enumerate()
                .map(|(i, w)| Ok((format!("{i:08}"), serde_json::to_string(w)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.import_kind("change_windows", items)?;
        }
        if let Some(domains) = &import.domains {
            let set: std::collections::BTreeSet<String> =
                domains.iter().map(|d| d.to_lowercase()).collect();
            self.import_kind("domains", set.into_iter().map(|d| (d.clone(), d)).collect())?;
        }
        Ok(())
    }
}

impl DeadLetterStore for DynamoDbStore {
    /// A conditional put keyed by the dead-letter key: the same record is kept once. Raw text
    /// over 350 KB is cut (and the reason says so) to fit DynamoDB's 400 KB item limit.
    fn dead_letter(&self, dl: &DeadLetter) -> Result<(), StoreError> {
        let (raw, reason) = cut_raw(dl);
        let mut item = key("DEADLETTER", dead_letter_key(dl));
        item.insert("at".into(), s(ts(dl.received_at)));
        if let Some(src) = &dl.source {
            item.insert("source".into(), s(src.clone()));
        }
        item.insert("reason".into(), s(reason));
        item.insert("raw".into(), s(raw));
        check_item(|| "a dead letter".to_owned(), &item)?;
        let put = self.rt.block_on(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", "pk")
                .send(),
        );
        match condition_held(put, "PutItem")? {
            true => Ok(()),
            false => Ok(()),
        }
    }

    /// Oldest first.
    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let mut out = Vec::new();
        for item in self.query_all("DEADLETTER", &Sk::Any, false)? {
            let at = need_s(&item, "at")?;
            out.push((
                need_s(&item, "sk")?.to_owned(),
                DeadLetter {
                    received_at: parse_ts(at).ok_or_else(|| malformed(&item, "received time"))?,
                    source: get_s(&item, "source").map(str::to_owned),
                    reason: need_s(&item, "reason")?.to_owned(),
                    raw: need_s(&item, "raw")?.to_owned(),
                },
            ));
        }
        out.sort_by(|a, b| a.1.received_at.cmp(&b.1.received_at).then(a.0.cmp(&b.0)));
        Ok(out.into_iter().map(|(_, d)| d).collect())
    }

    fn count_dropped(&self, source: &str, n: u64) -> Result<(), StoreError> {
        self.rt
            .block_on(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(key("DROPPED", source)))
                    .update_expression("ADD #n :n")
                    .expression_attribute_names("#n", "n")
                    .expression_attribute_values(":n", num(n as i64))
                    .send(),
            )
            .map_err(sdk("UpdateItem"))?;
        Ok(())
    }

    fn dropped(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.query_all("DROPPED", &Sk::Any, false)?
            .iter()
            .map(|i| {
                Ok((
                    need_s(i, "sk")?.to_owned(),
                    get_n(i, "n").unwrap_or(0) as u64,
                ))
            })
            .collect()
    }
}

impl Ledger for DynamoDbStore {
    /// One BatchGetItem (see the module docs). The keys are the marker, two recent items and the
    /// scopes the caller misses (a handful); more than 100 would take one call per 100.
    fn snapshot(&self, req: &ReadRequest<'_>) -> Result<Snapshot, StoreError> {
        let marker = key(event_pk(req.event_id), "EVENT");
        let actor = recent_key("actor", req.tenant, req.actor_key);
        let target = recent_key("target", req.tenant, req.target_key);
        let activity = recent_key("tenant", req.tenant, "");
        let mut keys = vec![
            marker.clone(),
            actor.clone(),
            target.clone(),
            activity.clone(),
        ];
        let cached_gen = self.cached_gen(req.tenant);
        keys.extend(
            req.scopes
                .iter()
                .map(|k| baseline_key(k, scope_gen(k, cached_gen))),
        );
        let items = self.batch_get(keys)?;
        let at = |k: &Item| {
            items
                .iter()
                .find(|i| i.get("pk") == k.get("pk") && i.get("sk") == k.get("sk"))
        };
        let actor_all = decode_recent(at(&actor))?;
        let target_all = decode_recent(at(&target))?;
        let tenant_all = decode_recent(at(&activity))?;
        let generation = at(&activity).map_or(0, generation_of);
        let mut baselines = HashMap::new();
        if generation == cached_gen {
            for item in &items {
                if get_s(item, "pk").is_some_and(|pk| pk.starts_with("BASELINE#")) {
                    let (k, b) = decode_baseline(item)?;
                    baselines.insert(k, b);
                }
            }
        } else {
            // A rebaseline switched the tenant to another generation since this process
            // last looked: its baselines are read there.
            lock(&self.gens).insert(req.tenant.to_owned(), generation);
            baselines = self.baselines_in(req.scopes, generation)?;
        }
        let revs = [
            rev_of(at(&actor)),
            rev_of(at(&target)),
            rev_of(at(&activity)),
        ];
        let snap = Snapshot {
            tenant_seq: Some(revs[2]),
            exists: at(&marker).is_some(),
            baselines,
            actor_recent: window(actor_all.clone(), req.since, req.until, req.limit),
            target_recent: window(target_all.clone(), req.since, req.until, req.limit),
            tenant_recent: window(
                tenant_all.clone(),
                req.tenant_since,
                req.until,
                req.tenant_limit,
            ),
        };
        if !snap.exists {
            let mut pending = lock(&self.pending);
            if pending.len() >= MAX_PENDING {
                pending.clear();
            }
            pending.insert(
                req.event_id.to_owned(),
                Pending {
                    revs,
                    generation,
                    actor: actor_all,
                    target: target_all,
                    window: req.until - req.since,
                    limit: req.limit,
                    tenant: tenant_all,
                    tenant_window: req.until - req.tenant_since,
                    tenant_limit: req.tenant_limit,
                },
            );
        }
        Ok(snap)
    }

    /// One TransactWriteItems (at most 100 items and 4 MB, checked before sending).
    fn commit(&self, c: &Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let e = c.event;
        let pending = lock(&self.pending).remove(&e.id);
        let body = serde_json::to_string(e)?;
        let d = day(e.time);
        let mut summary = EventSummary::from(e);
        mark_alerts(&mut summary, c.verdict);

        let mut puts: Vec<(String, Item, Option<&str>)> = Vec::new();
        // The marker first: its condition makes the commit idempotent, and a cancelled
        // transaction lists reasons in item order.
        let mut marker = key(event_pk(&e.id), "EVENT");
        marker.insert("tenant".into(), s(e.tenant.clone()));
        marker.insert("t".into(), s(ts(e.time)));
        marker.insert("ing".into(), s(ts(c.ingested_at)));
        marker.insert("b".into(), s(body.clone()));
        puts.push((
            format!("the event {}", e.id),
            marker,
            Some("attribute_not_exists(pk)"),
        ));
        let mut log = key(log_pk(&d), time_sk(e.time, &e.id));
        log.insert("b".into(), s(body));
        let excluded = c.verdict.is_some_and(Verdict::excluded);
        log.insert("x".into(), AttributeValue::Bool(excluded));
        if excluded {
            // Held out when committed: learned only once released (`rq`, generations.rs).
            log.insert("h".into(), AttributeValue::Bool(true));
        }
        if let Some(p) = &pending {
            // The tenant's commit sequence: its activity list's revision after this commit.
            log.insert("q".into(), num(p.revs[2] as i64 + 1));
        }
        puts.push((format!("the log entry of {}", e.id), log, None));
        let new_day = !lock(&self.known_days).contains(&d);
        if new_day {
            puts.push((format!("the day {d}"), key("LOGDAYS", d.clone()), None));
        }
        if let Some(v) = c.verdict {
            let vb = serde_json::to_string(v)?;
            let mut item = key(event_pk(&e.id), "VERDICT");
            item.insert("t".into(), s(ts(v.time)));
            item.insert("alert".into(), AttributeValue::Bool(v.alert));
            item.insert("b".into(), s(vb.clone()));
            puts.push((format!("the verdict of {}", e.id), item, None));
            if let Some(lead) = &v.held_by {
                // Listed under the alert that held it, so feedback on that alert finds it.
                let mut link = key(event_pk(lead), format!("HELD#{}", time_sk(v.time, &e.id)));
                link.insert("id".into(), s(e.id.clone()));
                puts.push((format!("the hold of {} by {lead}", e.id), link, None));
            }
            if v.alert {
                let mut item = key(alerts_pk(v.time), time_sk(v.time, &e.id));
                item.insert("b".into(), s(vb));
                puts.push((format!("the alert index entry of {}", e.id), item, None));
            }
            puts.push((
                format!("the audit seal marker of {}", e.id),
                audit::seal_marker(&e.id, crate::audit::AuditKind::Verdict, c.ingested_at),
                None,
            ));
        }
        let mut writes = Vec::with_capacity(puts.len() + c.baselines.len() + 3);
        let mut bytes = 0;
        for (what, item, condition) in puts {
            bytes += check_item(|| what, &item)?;
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_owned))
                .build()
                .map_err(sdk("TransactWriteItems"))?;
            writes.push(TransactWriteItem::builder().put(put).build());
        }
        // Each baseline only over the revision it was read at: a writer that read it before
        // another one wrote it loses, and scores the event again on what is stored now.
        let generation = match &pending {
            Some(p) => p.generation,
            None => self.gen_of(&e.tenant)?,
        };
        for (k, b) in &c.baselines {
            let item = baseline_item(k, b, scope_gen(k, generation))?;
            bytes += item_size(&item);
            writes.push(self.conditional_put(item, b.rev.0)?);
        }
        if let Some(p) = &pending {
            let seq = p.revs[2] + 1;
            if !c.baselines.is_empty() {
                // What this commit taught the baselines, for a rebaseline under way.
                let stat = c
                    .verdict
                    .filter(|v| !v.alert && !v.reasons.iter().any(|r| r.code == "volume_burst"))
                    .map(|v| v.statistic);
                let item = generations::journal_entry(&e.tenant, seq, e, stat, "learn");
                bytes += item_size(&item);
                writes.push(self.plain_put(item)?);
            }
            if p.revs[2] == 0 {
                // The tenant's first commit: listed, so a rebaseline finds it.
                writes.push(self.plain_put(generations::tenant_entry(&e.tenant))?);
            }
        }
        let (window_len, limit) = pending.as_ref().map_or(
            (
                Duration::days(DEFAULT_RECENT_WINDOW_DAYS),
                DEFAULT_RECENT_LIMIT,
            ),
            |p| (p.window, p.limit),
        );
        let (tenant_window, tenant_limit) = pending.as_ref().map_or(
            (
                Duration::minutes(DEFAULT_TENANT_WINDOW_MINUTES),
                DEFAULT_TENANT_LIMIT,
            ),
            |p| (p.tenant_window, p.tenant_limit),
        );
        let activity = EventSummary::activity(e, summary.burst_alert);
        let revs = pending.as_ref().map(|p| p.revs);
        for (i, (role, principal, stored, summary, window_len, limit)) in [
            (
                "actor",
                e.actor_key(),
                pending.as_ref().map_or(c.actor_recent, |p| &p.actor[..]),
                &summary,
                window_len,
                limit,
            ),
            (
                "target",
                e.target_key(),
                pending.as_ref().map_or(c.target_recent, |p| &p.target[..]),
                &summary,
                window_len,
                limit,
            ),
            (
                "tenant",
                String::new(),
                pending.as_ref().map_or(c.tenant_recent, |p| &p.tenant[..]),
                &activity,
                tenant_window,
                tenant_limit,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let plan = plan_recent(stored, summary, window_len, limit);
            let mut names = HashMap::from([("#ttl".to_owned(), "ttl".to_owned())]);
            let mut values = HashMap::new();
            let mut set = Vec::new();
            let mut rm = Vec::new();
            if role == "tenant" {
                // The tenant's item carries its commit sequence and baseline generation: it
                // never expires (each commit trims its entries).
                rm.push("#ttl".to_owned());
            } else {
                values.insert(":ttl".to_owned(), num(plan.ttl));
                set.push("#ttl = :ttl".to_owned());
            }
            // Read by the snapshot: written only over the revision read, so the event was
            // scored on the list as it stands (a commit without a snapshot only adds its entry).
            let mut condition = None;
            if let Some(revs) = revs {
                let (cond, n, v) = rev_condition(revs[i]);
                names.extend(n);
                values.extend(v);
                values.insert(":next".into(), num(revs[i] as i64 + 1));
                set.push("#rev = :next".into());
                condition = Some(cond);
            }
            if plan.keep_new {
                let json = serde_json::to_string(summary)?;
                bytes += json.len() + recent_attr(&e.id).len();
                names.insert("#new".into(), recent_attr(&e.id));
                values.insert(":new".into(), s(json));
                set.push("#new = :new".into());
            }
            for (i, id) in plan.remove.iter().enumerate() {
                names.insert(format!("#r{i}"), recent_attr(id));
                rm.push(format!("#r{i}"));
            }
            let mut expr = String::new();
            if !set.is_empty() {
                expr = format!("SET {}", set.join(", "));
            }
            if !rm.is_empty() {
                expr.push_str(&format!(" REMOVE {}", rm.join(", ")));
            }
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(recent_key(role, &e.tenant, &principal)))
                .update_expression(expr)
                .set_condition_expression(condition)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .build()
                .map_err(sdk("TransactWriteItems"))?;
            writes.push(TransactWriteItem::builder().update(update).build());
        }
        if writes.len() > MAX_TRANSACTION_ITEMS || bytes > MAX_TRANSACTION_BYTES {
            return Err(table_err(
                "TransactWriteItems",
                TableError::TransactionTooLarge {
                    event_id: e.id.clone(),
                    items: writes.len(),
                    bytes,
                },
            ));
        }

        let sent = self.rt.block_on(
            self.client
                .transact_write_items()
                .set_transact_items(Some(writes))
                .client_request_token(request_token(&e.id, c.ingested_at))
                .send(),
        );
        match sent {
            Ok(_) => {
                if new_day {
                    lock(&self.known_days).insert(d);
                }
                Ok(CommitOutcome::Written)
            }
            Err(err) => {
                if let Some(codes) = cancellation_codes(&err) {
                    if codes.first().and_then(Option::as_deref) == Some("ConditionalCheckFailed") {
                        return Ok(CommitOutcome::Duplicate);
                    }
                    // A revision moved, or another transaction held an item at that moment.
                    if codes.iter().any(lost_race) {
                        return Ok(CommitOutcome::Conflict);
                    }
                }
                Err(sdk("TransactWriteItems")(err))
            }
        }
    }
}

impl DynamoDbStore {
    /// A transaction's put of `item` on the condition that the stored one is at `rev`.
    fn conditional_put(&self, item: Item, rev: u64) -> Result<TransactWriteItem, StoreError> {
        let (cond, names, values) = rev_condition(rev);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(cond)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(sdk("TransactWriteItems"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction's unconditional put.
    fn plain_put(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .build()
            .map_err(sdk("TransactWriteItems"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn claim_key(event_id: &str) -> Item {
        key(format!("ALERT#{}", key_part(event_id)), "PUBLISH")
    }
}

/// Alert publish claims: `ALERT#<event id>` items, written with a conditional put and expiring
/// after about a week (see [`PublishGuard`] for the protocol).
impl PublishGuard for DynamoDbStore {
    fn claim(&self, event_id: &str) -> Result<Claim, AlertError> {
        let now = Utc::now().timestamp();
        let mut item = Self::claim_key(event_id);
        item.insert("state".into(), s("pending"));
        item.insert("at".into(), num(now));
        item.insert("ttl".into(), num(now + CLAIM_TTL_SECS));
        let put = self.rt.block_on(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(
                    "attribute_not_exists(#pk) OR (#state = :pending AND #at < :stale)",
                )
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_names("#state", "state")
                .expression_attribute_names("#at", "at")
                .expression_attribute_values(":pending", s("pending"))
                .expression_attribute_values(":stale", num(now - CLAIM_STALE_SECS))
                .send(),
        );
        match condition_held(put, "PutItem").map_err(AlertError::Guard)? {
            true => Ok(Claim::Granted),
            false => {
                let held = self.get(Self::claim_key(event_id))?;
                Ok(match held.as_ref().and_then(|i| get_s(i, "state")) {
                    Some("sent") => Claim::Published,
                    _ => Claim::InFlight,
                })
            }
        }
    }

    fn confirm(&self, event_id: &str) -> Result<(), AlertError> {
        let now = Utc::now().timestamp();
        self.rt
            .block_on(
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::claim_key(event_id)))
                    .update_expression("SET #state = :sent, #at = :now, #ttl = :ttl")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_names("#at", "at")
                    .expression_attribute_names("#ttl", "ttl")
                    .expression_attribute_values(":sent", s("sent"))
                    .expression_attribute_values(":now", num(now))
                    .expression_attribute_values(":ttl", num(now + CLAIM_TTL_SECS))
                    .send(),
            )
            .map_err(|e| AlertError::Guard(sdk("UpdateItem")(e)))?;
        Ok(())
    }

    fn release(&self, event_id: &str) -> Result<(), AlertError> {
        let deleted = self.rt.block_on(
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::claim_key(event_id)))
                .condition_expression("#state = :pending")
                .expression_attribute_names("#state", "state")
                .expression_attribute_values(":pending", s("pending"))
                .send(),
        );
        // Already released or sent: nothing to give back.
        condition_held(deleted, "DeleteItem").map_err(AlertError::Guard)?;
        Ok(())
    }
}

// The Lambda jobs' items (rebaseline checkpoint, remediation records): see jobs.rs.
mod audit;
mod erase;
mod generations;
pub use generations::Switched;
use generations::{by_tenant, generation_of, scope_gen};
mod confirm;
mod jobs;

pub use audit::SealReport;
pub use confirm::{CONFIRMATION_WAIT_MINUTES, PendingConfirmation, RELEASE};
pub use jobs::{RebaselineCheckpoint, RemediationStart, RemediationState};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Action;

    fn summary(id: &str, time: &str) -> EventSummary {
        EventSummary {
            id: id.into(),
            time: time.parse().unwrap(),
            action: Action::GrantRole,
            actor: "a".into(),
            target: "b".into(),
            entitlement: None,
            privilege: None,
            burst_alert: false,
            off_hours_alert: false,
        }
    }

    #[test]
    fn key_parts_are_escaped_and_long_ones_hashed() {
        assert_eq!(key_part("ann@acme.example"), "ann@acme.example");
        assert_eq!(key_part("a#b%c"), "a%23b%25c");
        let long = "x".repeat(1_000);
        let k = key_part(&long);
        assert!(k.starts_with('~') && k.len() == 65, "{k}");
        assert_ne!(key_part(&"y".repeat(1_000)), k);
    }

    #[test]
    fn time_keys_sort_in_time_order() {
        let a: DateTime<Utc> = "2024-05-01T10:00:00Z".parse().unwrap();
        let b: DateTime<Utc> = "2024-05-01T10:00:00.5Z".parse().unwrap();
        let c: DateTime<Utc> = "2024-05-01T10:00:01.000000001Z".parse().unwrap();
        assert!(time_sk(a, "z") < time_sk(b, "a"));
        assert!(time_sk(b, "a") < time_sk(c, "a"));
        assert!(time_sk(a, "e1") < time_sk(a, "e2"));
        assert_eq!(parse_ts(&ts(c)), Some(c));
    }

    #[test]
    fn recent_lists_keep_the_newest_within_the_window_and_limit() {
        let stored = [
            summary("old", "2024-03-01T00:00:00Z"),
            summary("e1", "2024-05-01T09:00:00Z"),
            summary("e2", "2024-05-01T10:00:00Z"),
        ];
        let new = summary("e3", "2024-05-01T11:00:00Z");
        let plan = plan_recent(&stored, &new, Duration::days(30), 2);
        assert!(plan.keep_new);
        assert_eq!(plan.remove, ["e1", "old"]);
        assert_eq!(
            plan.ttl,
            ("2024-06-01T11:00:00Z".parse::<DateTime<Utc>>().unwrap()).timestamp()
        );
        // An event older than the window (out of order) is not added, and removes nothing new.
        let late = summary("late", "2024-01-01T00:00:00Z");
        let plan = plan_recent(&stored[1..], &late, Duration::days(30), 10);
        assert!(!plan.keep_new);
        assert!(plan.remove.is_empty());
    }

    #[test]
    fn baselines_round_trip_packed_and_an_oversized_one_is_refused() {
        let scope = ScopeKey::tenant("acme");
        let mut b = Baseline::default();
        b.events.n = 42;
        b.entitlements
            .insert("role:admin".into(), Default::default());
        let item = baseline_item(&scope, &b, 0).unwrap();
        assert_eq!(decode_baseline(&item).unwrap(), (scope.clone(), b.clone()));
        // Entitlement names that do not compress: far over 400 KB packed.
        use sha2::{Digest, Sha256};
        for i in 0..20_000u32 {
            let name = hex::encode(Sha256::digest(i.to_le_bytes()));
            b.entitlements.insert(name, Default::default());
        }
        let err = baseline_item(&scope, &b, 0).unwrap_err();
        let text = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            text.contains("the baseline acme|tenant|") && text.contains("400 KB"),
            "{text}"
        );
    }

    #[test]
    fn request_tokens_are_unique_per_call_and_fit_the_api() {
        let t: DateTime<Utc> = "2024-05-01T10:00:00Z".parse().unwrap();
        let a = request_token("e1", t);
        let b = request_token("e1", t);
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
    }

    #[test]
    fn oversized_dead_letters_are_cut_and_say_so() {
        let dl = DeadLetter {
            received_at: Utc::now(),
            source: None,
            reason: "malformed JSON".into(),
            raw: "é".repeat(300_000),
        };
        let (raw, reason) = cut_raw(&dl);
        assert!(raw.len() <= MAX_DEAD_LETTER_RAW);
        assert!(
            reason.starts_with("malformed JSON (raw text cut from 600000"),
            "{reason}"
        );
    }

    #[test]
    fn the_window_of_a_recent_list_is_newest_first() {
        let list = vec![
            summary("e1", "2024-05-01T09:00:00Z"),
            summary("e3", "2024-05-01T11:00:00Z"),
            summary("e2", "2024-05-01T10:00:00Z"),
        ];
        let w = window(
            list,
            "2024-05-01T09:30:00Z".parse().unwrap(),
            "2024-05-01T12:00:00Z".parse().unwrap(),
            5,
        );
        assert_eq!(
            w.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["e3", "e2"]
        );
    }
}
