//! The normalized provisioning event: the contract every normalizer produces (DESIGN §3).
//!
//! Deserialization is strict (`deny_unknown_fields`), so a misspelt field in a VRL program fails
//! loudly instead of storing half an event.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What the change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    CreateAccount,
    DeleteAccount,
    EnableAccount,
    DisableAccount,
    GrantRole,
    RevokeRole,
    AddToGroup,
    RemoveFromGroup,
    AssignApp,
    UnassignApp,
    CreateCredential,
    AssignPermissionSet,
    ChangeProfile,
    Other,
}

impl Action {
    /// Every action, in contract order.
    pub const ALL: [Action; 14] = [
        Action::CreateAccount,
        Action::DeleteAccount,
        Action::EnableAccount,
        Action::DisableAccount,
        Action::GrantRole,
        Action::RevokeRole,
        Action::AddToGroup,
        Action::RemoveFromGroup,
        Action::AssignApp,
        Action::UnassignApp,
        Action::CreateCredential,
        Action::AssignPermissionSet,
        Action::ChangeProfile,
        Action::Other,
    ];

    /// The contract name (`grant_role`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CreateAccount => "create_account",
            Action::DeleteAccount => "delete_account",
            Action::EnableAccount => "enable_account",
            Action::DisableAccount => "disable_account",
            Action::GrantRole => "grant_role",
            Action::RevokeRole => "revoke_role",
            Action::AddToGroup => "add_to_group",
            Action::RemoveFromGroup => "remove_from_group",
            Action::AssignApp => "assign_app",
            Action::UnassignApp => "unassign_app",
            Action::CreateCredential => "create_credential",
            Action::AssignPermissionSet => "assign_permission_set",
            Action::ChangeProfile => "change_profile",
            Action::Other => "other",
        }
    }

    /// The action of a contract name; `None` for a name the contract does not have.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Changes that take access away (deletion, disabling, revocation, removal, unassignment).
    pub fn is_removal(self) -> bool {
        matches!(
            self,
            Action::DeleteAccount
                | Action::DisableAccount
                | Action::RevokeRole
                | Action::RemoveFromGroup
                | Action::UnassignApp
        )
    }

    /// Actions that give a principal access it did not have.
    pub fn is_grant(self) -> bool {
        matches!(
            self,
            Action::GrantRole
                | Action::AddToGroup
                | Action::AssignApp
                | Action::AssignPermissionSet
                | Action::CreateCredential
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Human,
    Service,
    #[default]
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntitlementKind {
    Role,
    Group,
    Policy,
    App,
    PermissionSet,
    Credential,
}

impl EntitlementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntitlementKind::Role => "role",
            EntitlementKind::Group => "group",
            EntitlementKind::Policy => "policy",
            EntitlementKind::App => "app",
            EntitlementKind::PermissionSet => "permission_set",
            EntitlementKind::Credential => "credential",
        }
    }
}

/// Privilege tier of an entitlement, most powerful first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Privilege {
    Admin,
    Elevated,
    Standard,
    ReadOnly,
    #[default]
    Unknown,
}

impl Privilege {
    pub const ALL: [Privilege; 5] = [
        Privilege::Admin,
        Privilege::Elevated,
        Privilege::Standard,
        Privilege::ReadOnly,
        Privilege::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Privilege::Admin => "admin",
            Privilege::Elevated => "elevated",
            Privilege::Standard => "standard",
            Privilege::ReadOnly => "read_only",
            Privilege::Unknown => "unknown",
        }
    }

    /// Admin or elevated: the grants that approvals and workflows exist for.
    pub fn is_privileged(self) -> bool {
        matches!(self, Privilege::Admin | Privilege::Elevated)
    }

    pub fn parse(s: &str) -> Option<Privilege> {
        Privilege::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who made a change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub kind: PrincipalKind,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// Whose access changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub kind: PrincipalKind,
    #[serde(default)]
    pub department: Option<String>,
}

/// What was granted or revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlement {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    pub kind: EntitlementKind,
    #[serde(default)]
    pub privilege: Privilege,
}

impl Entitlement {
    /// Human-readable label: the name, else the id.
    pub fn label(&self) -> &str {
        self.name
            .as_deref()
            .or(self.id.as_deref())
            .unwrap_or("(unnamed)")
    }

    /// Stable key for baselines: `kind:label`, lower-cased.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.label().to_lowercase())
    }
}

/// One normalized provisioning event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub id: String,
    pub source: String,
    pub tenant: String,
    pub time: DateTime<Utc>,
    pub action: Action,
    pub outcome: Outcome,
    pub actor: Actor,
    pub target: Target,
    #[serde(default)]
    pub entitlement: Option<Entitlement>,
    #[serde(default)]
    pub approval_ref: Option<String>,
    pub channel: String,
}

/// A principal's stable key: the e-mail (lower-cased), else the id, else the name.
fn principal_key(email: Option<&str>, id: Option<&str>, name: Option<&str>) -> Option<String> {
    email
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
        .or_else(|| id.filter(|s| !s.is_empty()).map(str::to_owned))
        .or_else(|| name.filter(|s| !s.is_empty()).map(str::to_lowercase))
}

/// How people name a principal: e-mail, else name, else id.
fn principal_label<'a>(
    email: &'a Option<String>,
    name: &'a Option<String>,
    id: &'a Option<String>,
) -> &'a str {
    email
        .as_deref()
        .or(name.as_deref())
        .or(id.as_deref())
        .unwrap_or("(unknown)")
}

impl Actor {
    pub fn key(&self) -> Option<String> {
        principal_key(
            self.email.as_deref(),
            self.id.as_deref(),
            self.name.as_deref(),
        )
    }

    pub fn label(&self) -> &str {
        principal_label(&self.email, &self.name, &self.id)
    }
}

impl Target {
    pub fn key(&self) -> Option<String> {
        principal_key(
            self.email.as_deref(),
            self.id.as_deref(),
            self.name.as_deref(),
        )
    }

    pub fn label(&self) -> &str {
        principal_label(&self.email, &self.name, &self.id)
    }
}

impl Event {
    pub fn actor_key(&self) -> String {
        self.actor.key().unwrap_or_else(|| "(unknown)".to_owned())
    }

    pub fn target_key(&self) -> String {
        self.target.key().unwrap_or_else(|| "(unknown)".to_owned())
    }

    pub fn privilege(&self) -> Privilege {
        self.entitlement
            .as_ref()
            .map(|e| e.privilege)
            .unwrap_or_default()
    }

    /// True when actor and target are the same principal (any identifier in common).
    pub fn is_self_change(&self) -> bool {
        let eq = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) if !a.is_empty() => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        eq(&self.actor.email, &self.target.email)
            || eq(&self.actor.id, &self.target.id)
            || eq(&self.actor.email, &self.target.name)
            || eq(&self.actor.name, &self.target.email)
            || eq(&self.actor.name, &self.target.name)
    }
}

/// A short line of an event, as carried in alert histories.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventSummary {
    pub id: String,
    pub time: DateTime<Utc>,
    pub action: Action,
    pub actor: String,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entitlement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub privilege: Option<Privilege>,
    /// This event alerted for a volume burst (so later events of the burst do not page again).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub burst_alert: bool,
    /// This event alerted for its hour (so later changes of the same off-hours session do not
    /// page again for the hour).
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub off_hours_alert: bool,
}

impl From<&Event> for EventSummary {
    fn from(e: &Event) -> Self {
        EventSummary {
            id: e.id.clone(),
            time: e.time,
            action: e.action,
            actor: e.actor.label().to_owned(),
            target: e.target.label().to_owned(),
            entitlement: e.entitlement.as_ref().map(|x| x.label().to_owned()),
            privilege: e.entitlement.as_ref().map(|x| x.privilege),
            burst_alert: false,
            off_hours_alert: false,
        }
    }
}

impl EventSummary {
    /// The short form of the tenant's activity list: who did what to whom and when, the actor and
    /// target as their keys, no entitlement (what every store can give without reading the event).
    pub fn activity(e: &Event, burst_alert: bool) -> Self {
        EventSummary {
            id: e.id.clone(),
            time: e.time,
            action: e.action,
            actor: e.actor_key(),
            target: e.target_key(),
            entitlement: None,
            privilege: None,
            burst_alert,
            off_hours_alert: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_fields() {
        let raw = serde_json::json!({
            "id": "1", "source": "okta", "tenant": "t", "time": "2024-01-01T00:00:00Z",
            "action": "grant_role", "outcome": "success", "actor": {"kind": "human"},
            "target": {"kind": "human"}, "entitlement": null, "approval_ref": null,
            "channel": "api", "extra": 1
        });
        let err = serde_json::from_value::<Event>(raw).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }

    #[test]
    fn self_change_matches_case_insensitively() {
        let e: Event = serde_json::from_value(serde_json::json!({
            "id": "1", "source": "okta", "tenant": "t", "time": "2024-01-01T00:00:00Z",
            "action": "grant_role", "outcome": "success",
            "actor": {"email": "Ann@Acme.example", "kind": "human"},
            "target": {"email": "ann@acme.example", "kind": "human"},
            "channel": "api"
        }))
        .unwrap();
        assert!(e.is_self_change());
        assert_eq!(e.actor_key(), "ann@acme.example");
    }
}
