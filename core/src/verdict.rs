//! The verdict: one per event, the unit of the audit trail and of alerts (DESIGN §5).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{Action, EventSummary, Privilege};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an event looks anomalous: a stable code, a sentence with the numbers, and the p-value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub code: String,
    pub detail: String,
    pub p_value: f64,
    /// The baseline that spoke (e.g. `department:Sales`), when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// A piece of business context that lowered or confirmed the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextNote {
    /// `onboarding`, `approval`, `change_window`, `pim_activation`, `service_side_effect`, …
    pub kind: String,
    pub detail: String,
    /// `lowered` or `confirmed`.
    pub effect: String,
}

/// The context note of a webhook delivery whose change its provider has not confirmed yet: the
/// event is kept out of the baselines until it is (a leaked webhook secret must not teach the
/// model), and released by feedback (`benign`, with the provider's record named) once it is.
pub const UNCONFIRMED: &str = "unconfirmed";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub event_id: String,
    pub source: String,
    pub tenant: String,
    pub time: DateTime<Utc>,
    pub action: Action,
    pub actor: String,
    pub target: String,
    pub entitlement: Option<String>,
    pub privilege: Option<Privilege>,
    /// 0–100.
    pub score: u8,
    /// Combined p-value of the reasons (1 when there are none).
    pub p_value: f64,
    pub severity: Severity,
    pub alert: bool,
    pub reasons: Vec<Reason>,
    pub context: Vec<ContextNote>,
    /// Recent provisioning events of the target and the actor (alerts only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<EventSummary>,
    /// The scoring statistic (decades of combined evidence, plus stakes) the p-value was
    /// calibrated from.
    #[serde(default)]
    pub statistic: f64,
    /// An analyst's feedback on this verdict, once given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackRecord>,
    /// The alerting event whose episode (a burst, an off-hours session) this change belongs to:
    /// it is held out of baselines with that alert, and released with it when it is marked benign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
}

/// Analyst feedback on a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feedback {
    Benign,
    Malicious,
}

impl Feedback {
    pub fn as_str(self) -> &'static str {
        match self {
            Feedback::Benign => "benign",
            Feedback::Malicious => "malicious",
        }
    }
}

/// Feedback as kept in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    pub label: Feedback,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

impl Verdict {
    /// Part of an episode (a burst, an off-hours session) that already alerted: its context
    /// names the event that did. Or a webhook delivery not yet confirmed at its provider
    /// ([`UNCONFIRMED`]).
    pub fn is_held(&self) -> bool {
        self.in_episode() || self.has_note(UNCONFIRMED)
    }

    /// Held out of the baselines only until its provider confirms it: a routine webhook
    /// delivery, not an alert or part of an episode that alerted.
    pub fn awaits_confirmation(&self) -> bool {
        !self.alert && !self.in_episode() && self.has_note(UNCONFIRMED)
    }

    /// Part of an episode that alerted: held by its alert, or noted as its burst or session.
    fn in_episode(&self) -> bool {
        self.held_by.is_some() || self.has_note("burst") || self.has_note("off_hours_session")
    }

    fn has_note(&self, kind: &str) -> bool {
        self.context.iter().any(|c| c.kind == kind)
    }

    /// Kept out of baselines (and of `rebaseline`): it alerted, or it is part of an episode that
    /// did, and it has not been marked benign.
    pub fn excluded(&self) -> bool {
        (self.alert || self.is_held())
            && self.feedback.as_ref().map(|f| f.label) != Some(Feedback::Benign)
    }

    pub fn reason_codes(&self) -> Vec<&str> {
        self.reasons.iter().map(|r| r.code.as_str()).collect()
    }
}
