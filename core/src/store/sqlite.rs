//! Embedded SQLite adapter (the CLI's state file).
//!
//! WAL journal, one transaction per commit; events are keyed by id with `INSERT OR IGNORE`, so a
//! re-delivered event changes nothing. Bodies are stored as JSON beside indexed columns.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::*;
use crate::audit::{self, AuditKind, AuditRecord, AuditReport, Head, Verifier};
use crate::event::Action;

/// 2: the hash-chained audit trail (a state file of version 1 gets its verdicts and feedback
/// chained when first opened).
const SCHEMA_VERSION: i64 = 2;

/// How long a writer waits for another process's batch before giving up.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    actor_key TEXT NOT NULL,
    target_key TEXT NOT NULL,
    action TEXT NOT NULL,
    body TEXT NOT NULL,
    ingested_ms INTEGER NOT NULL,
    -- What the event's verdict alerted for (bit 1: a volume burst, bit 2: its hour; bit 4: it is
    -- part of an episode that alerted, kept out of baselines); named when it held the first alone.
    burst_alert INTEGER NOT NULL DEFAULT 0,
    -- The event's summary (JSON), what the recent lists read: a few labels, not the whole event.
    -- NULL in rows written before the column was added (their body is read instead).
    summary TEXT
);
DROP INDEX IF EXISTS events_by_actor;
DROP INDEX IF EXISTS events_by_target;
CREATE INDEX IF NOT EXISTS events_by_actor_time ON events (tenant, actor_key, time_ms, id);
CREATE INDEX IF NOT EXISTS events_by_target_time ON events (tenant, target_key, time_ms, id);
CREATE INDEX IF NOT EXISTS events_by_time ON events (time_ms);
-- The tenant's recent activity (tenant-level bursts), read newest first for every event: without it
-- the read walked the tenant's whole history.
CREATE INDEX IF NOT EXISTS events_by_tenant_time ON events (tenant, time_ms, id);
CREATE TABLE IF NOT EXISTS verdicts (
    event_id TEXT PRIMARY KEY REFERENCES events (id),
    time_ms INTEGER NOT NULL,
    alert INTEGER NOT NULL,
    severity TEXT NOT NULL,
    score INTEGER NOT NULL,
    body TEXT NOT NULL,
    feedback TEXT,
    feedback_note TEXT,
    feedback_ms INTEGER
);
CREATE INDEX IF NOT EXISTS verdicts_alerts ON verdicts (alert, time_ms);
-- The changes an alert held (its burst's or off-hours session's later ones): `Verdict::held_by`.
CREATE TABLE IF NOT EXISTS held (follower TEXT PRIMARY KEY REFERENCES events (id), lead TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS held_by_lead ON held (lead);
CREATE TABLE IF NOT EXISTS baselines (scope TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (email TEXT PRIMARY KEY COLLATE NOCASE, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS approvals (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS change_windows (seq INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS domains (domain TEXT PRIMARY KEY COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    received_ms INTEGER NOT NULL,
    source TEXT,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dropped (source TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    event_id TEXT NOT NULL,
    body TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_is_append_only_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_is_append_only_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
"#;

#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

/// The `burst_alert` column's bits.
const ALERT_BURST: i64 = 1;
const ALERT_OFF_HOURS: i64 = 2;
/// Part of an episode that alerted (kept out of baselines until marked benign).
const HELD: i64 = 4;

fn alert_flags(v: Option<&Verdict>) -> i64 {
    let bit = |on: bool, b: i64| if on { b } else { 0 };
    bit(v.is_some_and(is_burst_alert), ALERT_BURST)
        | bit(v.is_some_and(is_off_hours_alert), ALERT_OFF_HOURS)
        | bit(v.is_some_and(Verdict::is_held), HELD)
}

/// A principal's recent events (`column`: `actor_key` or `target_key`), newest first.
fn recent_sql(column: &str) -> String {
    format!(
        "SELECT COALESCE(summary, body), burst_alert, time_ms, summary IS NOT NULL FROM events \
         WHERE tenant = ?1 AND {column} = ?2 AND time_ms BETWEEN ?3 AND ?4 \
         ORDER BY time_ms DESC, id DESC LIMIT ?5"
    )
}

/// The tenant's recent activity, newest first, from the indexed columns alone.
const TENANT_ACTIVITY_SQL: &str = "SELECT id, time_ms, action, actor_key, target_key, burst_alert FROM events \
     WHERE time_ms BETWEEN ?2 AND ?3 AND tenant = ?1 ORDER BY time_ms DESC, id DESC LIMIT ?4";

fn read_alert_flags(s: &mut EventSummary, flags: i64) {
    s.burst_alert = flags & ALERT_BURST != 0;
    s.off_hours_alert = flags & ALERT_OFF_HOURS != 0;
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

impl SqliteStore {
    /// Opens (creating if needed) a state file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let display = path.display().to_string();
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: display.clone(),
            source,
        })?;
        Self::init(conn, &display)
    }

    /// A private in-memory database (tests, benchmarks).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?, ":memory:")
    }

    fn init(conn: Connection, display: &str) -> Result<Self, StoreError> {
        // Another process may hold the write lock for a whole batch (seconds): wait for it.
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|source| StoreError::Open {
                path: display.to_owned(),
                source,
            })?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        let has_summary: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('events') WHERE name = 'summary'",
            [],
            |r| r.get(0),
        )?;
        if !has_summary {
            conn.execute_batch("ALTER TABLE events ADD COLUMN summary TEXT")?;
        }
        let found: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()?;
        match found.and_then(|v| v.parse::<i64>().ok()) {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::Schema {
                    path: display.to_owned(),
                    found: v,
                    known: SCHEMA_VERSION,
                });
            }
            Some(v) if v < SCHEMA_VERSION => chain_unchained(&conn)?,
            Some(_) => {}
            None => {
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )?;
            }
        }
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Newest first, at most `limit`; events before `window_since` only up to `keep_older`
    /// rows in all (the rest of the look-back is never parsed).
    #[allow(clippy::too_many_arguments)]
    fn recent(
        &self,
        column: &str,
        tenant: &str,
        key: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
        window: Option<(DateTime<Utc>, usize)>,
    ) -> Result<Vec<EventSummary>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&recent_sql(column))?;
        let mut rows = stmt.query(params![tenant, key, ms(since), ms(until), limit as i64])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            if let Some((window_since, keep)) = window {
                let t: i64 = row.get(2)?;
                if t < ms(window_since) && out.len() >= keep {
                    break;
                }
            }
            let text: String = row.get(0)?;
            let mut s = if row.get(3)? {
                serde_json::from_str::<EventSummary>(&text)?
            } else {
                EventSummary::from(&serde_json::from_str::<Event>(&text)?)
            };
            read_alert_flags(&mut s, row.get(1)?);
            out.push(s);
        }
        Ok(out)
    }

    /// The tenant's activity, newest first, from the indexed columns alone (no event is parsed).
    fn tenant_activity(
        &self,
        tenant: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(TENANT_ACTIVITY_SQL)?;
        let mut rows = stmt.query(params![tenant, ms(since), ms(until), limit as i64])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let action: String = row.get(2)?;
            let mut s = EventSummary {
                time: from_ms(row.get(1)?),
                // Written from the contract's names; a name it lacks still counts as activity.
                action: Action::parse(&action).unwrap_or(Action::Other),
                actor: row.get(3)?,
                target: row.get(4)?,
                entitlement: None,
                privilege: None,
                burst_alert: false,
                off_hours_alert: false,
                id,
            };
            read_alert_flags(&mut s, row.get(5)?);
            out.push(s);
        }
        Ok(out)
    }
}

impl EventStore for SqliteStore {
    fn has_event(&self, id: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT 1 FROM events WHERE id = ?1")?;
        Ok(stmt.exists([id])?)
    }

    fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        let conn = self.conn();
        let body: Option<String> = conn
            .query_row("SELECT body FROM events WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        Ok(match body {
            Some(b) => Some(serde_json::from_str(&b)?),
            None => None,
        })
    }

    fn recent_by_actor(
        &self,
        tenant: &str,
        actor_key: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, StoreError> {
        self.recent("actor_key", tenant, actor_key, since, until, limit, None)
    }

    fn recent_by_target(
        &self,
        tenant: &str,
        target_key: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<EventSummary>, StoreError> {
        self.recent("target_key", tenant, target_key, since, until, limit, None)
    }

    fn scan_events(
        &self,
        since: DateTime<Utc>,
        f: &mut dyn FnMut(Event, bool),
    ) -> Result<u64, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT e.body, (COALESCE(v.alert, 0) OR (e.burst_alert & {HELD}) <> 0) \
                 AND COALESCE(v.feedback, '') <> 'benign' \
             FROM events e LEFT JOIN verdicts v ON v.event_id = e.id \
             WHERE e.time_ms >= ?1 ORDER BY e.time_ms, e.id"
        ))?;
        let mut rows = stmt.query([ms(since)])?;
        let mut n = 0;
        while let Some(row) = rows.next()? {
            let body: String = row.get(0)?;
            let excluded: bool = row.get(1)?;
            f(serde_json::from_str(&body)?, excluded);
            n += 1;
        }
        Ok(n)
    }
}

impl VerdictStore for SqliteStore {
    fn verdict(&self, event_id: &str) -> Result<Option<Verdict>, StoreError> {
        let conn = self.conn();
        /// body, feedback label, note, time.
        type Row = (String, Option<String>, Option<String>, Option<i64>);
        let row: Option<Row> = conn
            .query_row(
                "SELECT body, feedback, feedback_note, feedback_ms FROM verdicts WHERE event_id = ?1",
                [event_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((body, label, note, at)) = row else {
            return Ok(None);
        };
        let mut v: Verdict = serde_json::from_str(&body)?;
        v.feedback = label
            .as_deref()
            .and_then(parse_feedback)
            .map(|label| FeedbackRecord {
                label,
                note,
                at: from_ms(at.unwrap_or_default()),
            });
        Ok(Some(v))
    }

    fn alerts(&self, since: Option<DateTime<Utc>>) -> Result<Vec<Verdict>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT body FROM verdicts WHERE alert = 1 AND time_ms >= ?1 ORDER BY time_ms, event_id",
        )?;
        let rows = stmt.query_map([since.map_or(i64::MIN, ms)], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for b in rows {
            out.push(serde_json::from_str(&b?)?);
        }
        Ok(out)
    }

    fn set_feedback(
        &self,
        event_id: &str,
        feedback: Feedback,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let label = feedback.as_str();
        let mut conn = self.conn();
        let tx = conn.savepoint()?;
        let n = tx.execute(
            "UPDATE verdicts SET feedback = ?2, feedback_note = ?3, feedback_ms = ?4 WHERE event_id = ?1",
            params![event_id, label, note, ms(at)],
        )?;
        if n > 0 {
            let body = audit::feedback_body(feedback, note, at);
            append_audit(
                &tx,
                AuditKind::Feedback,
                event_id,
                ms(at),
                &audit::hashed(&body),
            )?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    fn held_by(&self, lead: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT follower FROM held WHERE lead = ?1 ORDER BY rowid")?;
        let ids = stmt
            .query_map([lead], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }
}

impl BaselineStore for SqliteStore {
    fn baselines(&self, keys: &[ScopeKey]) -> Result<HashMap<ScopeKey, Baseline>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT body FROM baselines WHERE scope = ?1")?;
        let mut out = HashMap::new();
        for k in keys {
            let body: Option<String> = stmt.query_row([k.as_str()], |r| r.get(0)).optional()?;
            if let Some(b) = body {
                out.insert(k.clone(), serde_json::from_str(&b)?);
            }
        }
        Ok(out)
    }

    fn put_baselines(&self, items: &[(&ScopeKey, &Baseline)]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.savepoint()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO baselines (scope, body) VALUES (?1, ?2) \
                 ON CONFLICT (scope) DO UPDATE SET body = excluded.body",
            )?;
            for (k, b) in items {
                stmt.execute(params![k.as_str(), serde_json::to_string(b)?])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn replace_baselines(&self, all: &HashMap<ScopeKey, Baseline>) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.savepoint()?;
        tx.execute("DELETE FROM baselines", [])?;
        {
            let mut stmt = tx.prepare("INSERT INTO baselines (scope, body) VALUES (?1, ?2)")?;
            for (k, b) in all {
                stmt.execute(params![k.as_str(), serde_json::to_string(b)?])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn scan_baselines(&self) -> Result<Vec<(ScopeKey, Baseline)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT scope, body FROM baselines ORDER BY scope")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut all = Vec::with_capacity(rows.len());
        for (scope, body) in rows {
            all.push((ScopeKey(scope), serde_json::from_str(&body)?));
        }
        // As the other stores sort: by the key's characters, not SQLite's collation.
        all.sort_by(|a: &(ScopeKey, Baseline), b| a.0.cmp(&b.0));
        Ok(all)
    }

    fn baseline_count(&self) -> Result<u64, StoreError> {
        let conn = self.conn();
        Ok(conn.query_row("SELECT COUNT(*) FROM baselines", [], |r| r.get::<_, i64>(0))? as u64)
    }
}

impl ContextStore for SqliteStore {
    fn context(&self) -> Result<Context, StoreError> {
        let conn = self.conn();
        fn bodies<T: serde::de::DeserializeOwned>(
            conn: &Connection,
            sql: &str,
        ) -> Result<Vec<T>, StoreError> {
            let mut stmt = conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for b in rows {
                out.push(serde_json::from_str(&b?)?);
            }
            Ok(out)
        }
        let people = bodies(&conn, "SELECT body FROM people ORDER BY email")?;
        let approvals = bodies(&conn, "SELECT body FROM approvals ORDER BY seq")?;
        let windows = bodies(&conn, "SELECT body FROM change_windows ORDER BY seq")?;
        let mut stmt = conn.prepare("SELECT domain FROM domains ORDER BY domain")?;
        let domains = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Context::new(people, approvals, windows, domains))
    }

    fn import_context(&self, import: &ContextImport) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.savepoint()?;
        if let Some(people) = &import.people {
            tx.execute("DELETE FROM people", [])?;
            let mut stmt =
                tx.prepare("INSERT OR REPLACE INTO people (email, body) VALUES (?1, ?2)")?;
            for p in people {
                stmt.execute(params![p.email, serde_json::to_string(p)?])?;
            }
        }
        if let Some(approvals) = &import.approvals {
            tx.execute("DELETE FROM approvals", [])?;
            let mut stmt = tx.prepare("INSERT INTO approvals (body) VALUES (?1)")?;
            for a in approvals {
                stmt.execute([serde_json::to_string(a)?])?;
            }
        }
        if let Some(windows) = &import.change_windows {
            tx.execute("DELETE FROM change_windows", [])?;
            let mut stmt = tx.prepare("INSERT INTO change_windows (body) VALUES (?1)")?;
            for w in windows {
                stmt.execute([serde_json::to_string(w)?])?;
            }
        }
        if let Some(domains) = &import.domains {
            tx.execute("DELETE FROM domains", [])?;
            let mut stmt = tx.prepare("INSERT OR IGNORE INTO domains (domain) VALUES (?1)")?;
            for d in domains {
                stmt.execute([d.to_lowercase()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl DeadLetterStore for SqliteStore {
    fn dead_letter(&self, dl: &DeadLetter) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO dead_letters (key, received_ms, source, reason, raw) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![dead_letter_key(dl), ms(dl.received_at), dl.source, dl.reason, dl.raw],
        )?;
        Ok(())
    }

    fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT received_ms, source, reason, raw FROM dead_letters ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok(DeadLetter {
                received_at: from_ms(r.get(0)?),
                source: r.get(1)?,
                reason: r.get(2)?,
                raw: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn count_dropped(&self, source: &str, n: u64) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO dropped (source, count) VALUES (?1, ?2) \
             ON CONFLICT (source) DO UPDATE SET count = count + excluded.count",
            params![source, n as i64],
        )?;
        Ok(())
    }

    fn dropped(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT source, count FROM dropped ORDER BY source")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// Erasure deletes with `secure_delete` on and then rewrites the file (`VACUUM`), so the
/// removed content is not left in free pages or the write-ahead log either.
impl Erase for SqliteStore {
    fn events_involving(&self, subject: &str) -> Result<Vec<Event>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT body FROM events ORDER BY time_ms, id")?;
        let bodies = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for b in bodies {
            let e: Event = serde_json::from_str(&b)?;
            if crate::erase::involves(&e, subject) {
                out.push(e);
            }
        }
        Ok(out)
    }

    fn verdicts_mentioning(
        &self,
        subject: &str,
        erased: &std::collections::HashSet<String>,
    ) -> Result<Vec<Verdict>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT body FROM verdicts")?;
        let bodies = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Vec::new();
        for b in bodies {
            let v: Verdict = serde_json::from_str(&b)?;
            if crate::erase::mentions(&v, erased, subject) {
                out.push(v);
            }
        }
        Ok(out)
    }

    fn erase_events(
        &self,
        subject: &str,
        events: &[Event],
        redacted: &[Verdict],
        at: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        conn.pragma_update(None, "secure_delete", "ON")?;
        let tx = conn.transaction()?;
        for e in events {
            tx.execute(
                "DELETE FROM held WHERE follower = ?1 OR lead = ?1",
                params![e.id],
            )?;
            tx.execute("DELETE FROM verdicts WHERE event_id = ?1", params![e.id])?;
            tx.execute("DELETE FROM events WHERE id = ?1", params![e.id])?;
            append_audit(&tx, AuditKind::Erasure, &e.id, ms(at), audit::ERASED)?;
        }
        for v in redacted {
            let body = crate::erase::stored_body(v)?;
            let n = tx.execute(
                "UPDATE verdicts SET body = ?2 WHERE event_id = ?1",
                params![v.event_id, body],
            )?;
            if n > 0 {
                append_audit(
                    &tx,
                    AuditKind::Erasure,
                    &v.event_id,
                    ms(at),
                    &audit::redacted_body(&body),
                )?;
            }
        }
        let dead = tx.execute(
            "DELETE FROM dead_letters WHERE instr(lower(raw), lower(?1)) > 0              OR instr(lower(reason), lower(?1)) > 0",
            params![subject.trim()],
        )?;
        tx.commit()?;
        conn.pragma_update(None, "secure_delete", "OFF")?;
        Ok(dead as u64)
    }
}

impl SqliteStore {
    /// Rewrites the file without free pages and empties the write-ahead log: content an
    /// erasure removed is gone from the disk, not only from the tables.
    pub fn compact(&self) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute_batch("VACUUM")?;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// A rebuild holds the write lock from its first read of the log to its last write, so no other
/// process commits in between (and none loses what it learned meanwhile).
impl Rebuild for SqliteStore {
    fn begin_rebuild(&self) -> Result<Option<Cut>, StoreError> {
        self.begin_batch()?;
        Ok(None)
    }

    fn finish_rebuild(
        &self,
        _cut: Option<&Cut>,
        all: HashMap<ScopeKey, Baseline>,
        _catch_up: &mut CatchUp<'_>,
        pool: Option<f64>,
    ) -> Result<usize, StoreError> {
        let all = with_pool(all, pool);
        self.replace_baselines(&all)?;
        self.end_batch()?;
        Ok(all.len())
    }
}

impl Ledger for SqliteStore {
    fn snapshot(&self, req: &ReadRequest<'_>) -> Result<Snapshot, StoreError> {
        Ok(Snapshot {
            tenant_seq: None,
            exists: self.has_event(req.event_id)?,
            baselines: if req.scopes.is_empty() {
                HashMap::new()
            } else {
                self.baselines(req.scopes)?
            },
            actor_recent: self.recent(
                "actor_key",
                req.tenant,
                req.actor_key,
                req.since,
                req.until,
                req.limit,
                Some((req.window_since, req.keep_older)),
            )?,
            target_recent: self.recent(
                "target_key",
                req.tenant,
                req.target_key,
                req.since,
                req.until,
                req.limit,
                Some((req.window_since, req.keep_older)),
            )?,
            tenant_recent: self.tenant_activity(
                req.tenant,
                req.tenant_since,
                req.until,
                req.tenant_limit,
            )?,
        })
    }

    fn commit(&self, c: &Commit<'_>) -> Result<CommitOutcome, StoreError> {
        let mut conn = self.conn();
        // A savepoint: its own transaction, or a part of an open batch.
        let tx = conn.savepoint()?;
        let inserted = {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (id, tenant, time_ms, actor_key, target_key, action, body, ingested_ms, burst_alert, summary) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            stmt.execute(params![
                c.event.id,
                c.event.tenant,
                ms(c.event.time),
                c.event.actor_key(),
                c.event.target_key(),
                c.event.action.as_str(),
                serde_json::to_string(c.event)?,
                ms(c.ingested_at),
                alert_flags(c.verdict),
                serde_json::to_string(&EventSummary::from(c.event))?,
            ])?
        };
        if inserted == 0 {
            // Dropping the transaction rolls it back; nothing was written.
            return Ok(CommitOutcome::Duplicate);
        }
        if let Some(v) = c.verdict {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO verdicts (event_id, time_ms, alert, severity, score, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            let body = serde_json::to_string(v)?;
            stmt.execute(params![
                v.event_id,
                ms(v.time),
                v.alert,
                v.severity.as_str(),
                v.score,
                body,
            ])?;
            if let Some(lead) = &v.held_by {
                tx.prepare_cached("INSERT INTO held (follower, lead) VALUES (?1, ?2)")?
                    .execute(params![v.event_id, lead])?;
            }
            append_audit(
                &tx,
                AuditKind::Verdict,
                &v.event_id,
                ms(c.ingested_at),
                &audit::hashed(&body),
            )?;
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO baselines (scope, body) VALUES (?1, ?2) \
                 ON CONFLICT (scope) DO UPDATE SET body = excluded.body",
            )?;
            for (k, b) in &c.baselines {
                stmt.execute(params![k.as_str(), serde_json::to_string(b)?])?;
            }
        }
        tx.commit()?;
        Ok(CommitOutcome::Written)
    }

    fn begin_batch(&self) -> Result<bool, StoreError> {
        let conn = self.conn();
        if conn.is_autocommit() {
            // IMMEDIATE: the write lock is held from here, so no other process commits between
            // this process's reads and writes.
            conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        Ok(true)
    }

    fn end_batch(&self) -> Result<(), StoreError> {
        let conn = self.conn();
        if !conn.is_autocommit() {
            conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }
}

/// Appends a record to the audit trail, chained to the newest one, and moves the kept head.
/// Runs inside the caller's transaction (which holds the write lock: its first statement wrote).
fn append_audit(
    conn: &Connection,
    kind: AuditKind,
    event_id: &str,
    at_ms: i64,
    body: &str,
) -> Result<(), StoreError> {
    let last: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev) = match last {
        Some((seq, hash)) => (seq as u64 + 1, hash),
        None => (1, audit::GENESIS.to_owned()),
    };
    let hash = audit::link(&prev, seq, kind.as_str(), event_id, at_ms, body);
    conn.prepare_cached(
        "INSERT INTO audit (seq, at_ms, kind, event_id, body, prev, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![seq as i64, at_ms, kind.as_str(), event_id, body, prev, hash])?;
    let head = Head { seq, hash }.to_string();
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('audit_head', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([head])?;
    Ok(())
}

/// A state file written before the trail was chained: its verdicts (in the order they were
/// written), then their feedback, become the first records.
fn chain_unchained(conn: &Connection) -> Result<(), StoreError> {
    // One write transaction, the schema version with it: rolled back on any error (dropped).
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let empty: bool = tx.query_row("SELECT NOT EXISTS (SELECT 1 FROM audit)", [], |r| r.get(0))?;
    if empty {
        type Row = (
            String,
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<i64>,
        );
        let rows: Vec<Row> = tx
            .prepare(
                "SELECT v.event_id, v.body, e.ingested_ms, v.feedback, v.feedback_note, v.feedback_ms \
                 FROM verdicts v JOIN events e ON e.id = v.event_id ORDER BY v.rowid",
            )?
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })?
            .collect::<Result<_, _>>()?;
        for (id, body, at, ..) in &rows {
            append_audit(&tx, AuditKind::Verdict, id, *at, &audit::hashed(body))?;
        }
        for (id, _, _, label, note, at) in &rows {
            if let Some(label) = label.as_deref().and_then(parse_feedback) {
                let at = from_ms(at.unwrap_or_default());
                let body = audit::feedback_body(label, note.as_deref(), at);
                append_audit(&tx, AuditKind::Feedback, id, ms(at), &audit::hashed(&body))?;
            }
        }
    }
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'schema'",
        [SCHEMA_VERSION.to_string()],
    )?;
    tx.commit()?;
    Ok(())
}

fn parse_feedback(label: &str) -> Option<Feedback> {
    match label {
        "benign" => Some(Feedback::Benign),
        "malicious" => Some(Feedback::Malicious),
        _ => None,
    }
}

impl SqliteStore {
    /// Verifies the audit trail: every link of the chain, the head kept beside it, an optional
    /// anchor recorded earlier, and the verdicts and feedback the state serves.
    pub fn verify_audit(&self, anchor: Option<Head>) -> Result<AuditReport, StoreError> {
        let mut conn = self.conn();
        // One read transaction: a writer cannot slip in between the trail and the verdicts.
        let tx = conn.savepoint()?;
        let mut v = Verifier::new(anchor);
        {
            let mut stmt = tx.prepare(
                "SELECT seq, at_ms, kind, event_id, body, prev, hash FROM audit ORDER BY seq",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                v.record(&AuditRecord {
                    seq: r.get::<_, i64>(0)? as u64,
                    at_ms: r.get(1)?,
                    kind: r.get(2)?,
                    event_id: r.get(3)?,
                    body: r.get(4)?,
                    prev: r.get(5)?,
                    hash: r.get(6)?,
                });
            }
        }
        {
            let mut stmt = tx.prepare(
                "SELECT event_id, body, feedback, feedback_note, feedback_ms FROM verdicts",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let id: String = r.get(0)?;
                let body: String = r.get(1)?;
                let label: Option<String> = r.get(2)?;
                let feedback = label.map(|l| match parse_feedback(&l) {
                    Some(f) => audit::feedback_body(
                        f,
                        r.get::<_, Option<String>>(3).ok().flatten().as_deref(),
                        from_ms(
                            r.get::<_, Option<i64>>(4)
                                .ok()
                                .flatten()
                                .unwrap_or_default(),
                        ),
                    ),
                    None => format!("unknown label {l:?}"),
                });
                v.served(&id, &body, feedback.as_deref());
            }
        }
        let kept: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'audit_head'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let kept = kept.and_then(|k| match k.parse::<Head>() {
            Ok(h) => Some(h),
            Err(e) => {
                v.problem(format!("the kept head {k:?} is unreadable ({e})"));
                None
            }
        });
        Ok(v.finish(kept))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits an event (and its verdict) with no baselines or recent lists.
    fn commit_bare(s: &SqliteStore, e: &Event, v: Option<&Verdict>) {
        s.commit(&Commit {
            event: e,
            verdict: v,
            baselines: vec![],
            ingested_at: Utc::now(),
            actor_recent: &[],
            target_recent: &[],
            tenant_recent: &[],
        })
        .unwrap();
    }

    #[test]
    fn sqlite_store_meets_the_store_contract() {
        conformance::run(&SqliteStore::open_in_memory().unwrap());
    }

    #[test]
    fn state_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            let e = conformance::event("x1", "a@x.io", "b@x.io", "2024-01-01T00:00:00Z");
            commit_bare(&s, &e, None);
        }
        let s = SqliteStore::open(&path).unwrap();
        assert!(s.has_event("x1").unwrap());
    }

    #[test]
    fn the_reads_of_every_event_walk_an_index_in_order_whatever_the_history() {
        // Each event reads its actor's, its target's and its tenant's recent events: each read
        // must seek into an index on (tenant, key, time) and stop at its limit, never walk a
        // tenant's whole history or sort it.
        let s = SqliteStore::open_in_memory().unwrap();
        let conn = s.conn();
        for (sql, index) in [
            (recent_sql("actor_key"), "events_by_actor_time"),
            (recent_sql("target_key"), "events_by_target_time"),
            (TENANT_ACTIVITY_SQL.to_owned(), "events_by_tenant_time"),
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let values: Vec<rusqlite::types::Value> = (0..stmt.parameter_count())
                .map(|i| rusqlite::types::Value::Integer(i as i64))
                .collect();
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(values), |r| r.get(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let plan = plan.join("; ");
            assert!(
                plan.contains(&format!("SEARCH events USING INDEX {index} (tenant=?"))
                    && plan.contains("time_ms>? AND time_ms<?")
                    && !plan.contains("TEMP B-TREE"),
                "{sql}: {plan}"
            );
        }
    }

    #[test]
    fn a_state_file_from_before_event_summaries_is_read_from_the_bodies() {
        let e = conformance::event("x1", "a@x.io", "b@x.io", "2024-01-01T00:00:00Z");
        let v = conformance::verdict_for(&e, true);
        let recent = |s: &SqliteStore| {
            s.recent_by_actor(&e.tenant, &e.actor_key(), e.time, e.time, 10)
                .unwrap()
        };
        let current = SqliteStore::open_in_memory().unwrap();
        commit_bare(&current, &e, Some(&v));
        let expected = recent(&current);
        assert_eq!(expected.len(), 1);
        assert!(expected[0].burst_alert, "{expected:?}");

        // A file an earlier version wrote: its events table has no summary column.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE events (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, time_ms INTEGER NOT NULL, \
                 actor_key TEXT NOT NULL, target_key TEXT NOT NULL, action TEXT NOT NULL, body TEXT NOT NULL, \
                 ingested_ms INTEGER NOT NULL, burst_alert INTEGER NOT NULL DEFAULT 0)",
            )
            .unwrap();
            conn.execute(
                "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)",
                params![
                    e.id,
                    e.tenant,
                    ms(e.time),
                    e.actor_key(),
                    e.target_key(),
                    e.action.as_str(),
                    serde_json::to_string(&e).unwrap(),
                    alert_flags(Some(&v)),
                ],
            )
            .unwrap();
        }
        let old = SqliteStore::open(&path).unwrap();
        assert_eq!(recent(&old), expected);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema'", [])
            .unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("newer provguard"), "{err}");
    }

    fn verdict_commit(s: &SqliteStore, id: &str, alert: bool) {
        let e = conformance::event(id, "a@x.io", "b@x.io", "2024-01-01T00:00:00Z");
        let mut v = conformance::verdict_for(&e, alert);
        v.score = 7;
        s.commit(&Commit {
            event: &e,
            verdict: Some(&v),
            baselines: vec![],
            ingested_at: "2024-01-01T00:00:01Z".parse().unwrap(),
            actor_recent: &[],
            target_recent: &[],
            tenant_recent: &[],
        })
        .unwrap();
    }

    fn raw(path: &Path) -> Connection {
        Connection::open(path).unwrap()
    }

    #[test]
    fn the_audit_trail_is_chained_append_only_and_verified_against_the_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let s = SqliteStore::open(&path).unwrap();
        for i in 0..5 {
            verdict_commit(&s, &format!("v{i}"), i % 2 == 0);
        }
        // A re-delivery appends nothing.
        verdict_commit(&s, "v1", false);
        let at = "2024-01-02T00:00:00.123456Z".parse().unwrap();
        assert!(
            s.set_feedback("v2", Feedback::Benign, Some("planned"), at)
                .unwrap()
        );
        assert!(!s.set_feedback("nope", Feedback::Benign, None, at).unwrap());
        let rep = s.verify_audit(None).unwrap();
        assert!(rep.intact(), "{:?}", rep.problems);
        assert_eq!((rep.records, rep.verdicts, rep.feedback), (6, 5, 1));
        let head = rep.head.clone().unwrap();
        assert_eq!(head.seq, 6);
        assert!(s.verify_audit(Some(head.clone())).unwrap().intact());

        // The trail refuses edits and deletions.
        let c = raw(&path);
        let err = c
            .execute("DELETE FROM audit WHERE seq = 3", [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("append-only"), "{err}");
        let err = c
            .execute("UPDATE audit SET body = '{}' WHERE seq = 3", [])
            .unwrap_err()
            .to_string();
        assert!(err.contains("append-only"), "{err}");

        // Past the triggers, each kind of tampering is found.
        c.execute_batch(
            "DROP TRIGGER audit_is_append_only_update; DROP TRIGGER audit_is_append_only_delete;",
        )
        .unwrap();
        c.execute(
            "UPDATE verdicts SET body = replace(body, '\"score\":7', '\"score\":0') WHERE event_id = 'v0'",
            [],
        )
        .unwrap();
        c.execute(
            "UPDATE verdicts SET feedback = 'malicious' WHERE event_id = 'v2'",
            [],
        )
        .unwrap();
        c.execute("DELETE FROM audit WHERE seq = 4", []).unwrap();
        c.execute("DELETE FROM audit WHERE seq = 6", []).unwrap();
        let rep = s.verify_audit(Some(head)).unwrap();
        let p = rep.problems.join("\n");
        for found in [
            "the verdict for event v0 was changed after it was recorded",
            "feedback on event v2 is not in the audit trail",
            "record 4 is missing",
            "the verdict for event v3 is not in the audit trail",
            "the newest 1 record was removed",
            "the anchored record 6:",
        ] {
            assert!(p.contains(found), "{found:?} not in:\n{p}");
        }
    }

    #[test]
    fn a_state_file_from_before_the_chain_is_chained_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            verdict_commit(&s, "old1", true);
            verdict_commit(&s, "old2", false);
            let at = "2024-01-02T00:00:00Z".parse().unwrap();
            s.set_feedback("old1", Feedback::Malicious, None, at)
                .unwrap();
        }
        // Make it a version 1 file: no trail.
        let c = raw(&path);
        c.execute_batch(
            "DROP TABLE audit; DELETE FROM meta WHERE key = 'audit_head'; \
             UPDATE meta SET value = '1' WHERE key = 'schema';",
        )
        .unwrap();
        drop(c);
        let s = SqliteStore::open(&path).unwrap();
        let rep = s.verify_audit(None).unwrap();
        assert!(rep.intact(), "{:?}", rep.problems);
        assert_eq!((rep.records, rep.verdicts, rep.feedback), (3, 2, 1));
        verdict_commit(&s, "new", false);
        assert_eq!(s.verify_audit(None).unwrap().head.unwrap().seq, 4);
    }
}
