//! Remediation plans (DESIGN §6): the inverse of a stored provisioning change, computed from the
//! normalized event alone. Pure: a host executes the steps (the remediate Lambda calls IAM with the
//! SDK and the identity providers over HTTPS) and records every step in the audit trail.
//!
//! | source | change | plan (`revert`) |
//! |---|---|---|
//! | CloudTrail | `AttachUserPolicy` / `AttachGroupPolicy` / `AttachRolePolicy` | `DetachUserPolicy` / `DetachGroupPolicy` / `DetachRolePolicy` |
//! | CloudTrail | `PutUserPolicy` / `PutGroupPolicy` / `PutRolePolicy` | `DeleteUserPolicy` / `DeleteGroupPolicy` / `DeleteRolePolicy` |
//! | CloudTrail | `AddUserToGroup` | `RemoveUserFromGroup` |
//! | CloudTrail | `CreateAccessKey` | `UpdateAccessKey` to `Inactive` (kept, so it can be re-enabled) |
//! | CloudTrail | `CreateLoginProfile` (also `UpdateLoginProfile`, which normalizes alike) | `DeleteLoginProfile` |
//! | CloudTrail | `CreateAccountAssignment` | `DeleteAccountAssignment` — plan only: the assignment's AWS account is not in the normalized event |
//! | Okta | user added to a group | `DELETE /api/v1/groups/{groupId}/users/{userId}` |
//! | Okta | app assigned to a user | `DELETE /api/v1/apps/{appId}/users/{userId}` |
//! | Entra | member added to a group | `DELETE /groups/{groupId}/members/{userId}/$ref` |
//! | Entra | member added to a directory role | `DELETE /directoryRoles(roleTemplateId='{id}')/members/{userId}/$ref` (the normalizer keeps the role's template id) |
//! | Google | member added to a group | `DELETE /admin/directory/v1/groups/{group}/members/{member}` |
//!
//! `disable_account` suspends the target instead: IAM `DeleteLoginProfile` plus every access key
//! `Inactive`; Okta `POST /api/v1/users/{id}/lifecycle/suspend`; Entra `PATCH /users/{id}`
//! `{"accountEnabled": false}`; Google `PUT /admin/directory/v1/users/{email}` `{"suspended": true}`.
//!
//! Changes whose inverse needs an id the event does not carry (an Okta admin-role assignment id,
//! an Entra app-role assignment id, a Google role assignment id, an identity-store membership id)
//! get a [`Step::Manual`] saying what to do; a plan with such a step is never executed.
//!
//! **The AWS account.** An IAM call changes the account of the credentials it is made with, and
//! IAM names (`user/bob`) are unique only within an account. A CloudTrail plan therefore carries
//! [`Plan::account`]: the account of the target's ARN, else the event's tenant (CloudTrail's
//! `recipientAccountId`). When the target's ARN, an entitlement ARN and the tenant name different
//! accounts there is no plan ([`PlanError::AccountMismatch`]): which account to change would be a
//! guess. A host runs IAM steps only with credentials in that account.
//!
//! **Provider ids.** Every id taken from the event into a REST path must be of the provider's id
//! form, else there is no plan ([`PlanError::InvalidId`]); percent-encoding alone would let `..`
//! through, which an HTTP client resolves as "the parent", so `DELETE /api/v1/groups/../users/x`
//! would address another object:
//!
//! | provider | ids in paths | accepted |
//! |---|---|---|
//! | Okta | user `00u…`, group `00g…`, app `0oa…` | 1–64 ASCII letters and digits |
//! | Entra | object ids, directory role template ids | GUIDs, `8-4-4-4-12` hexadecimal digits |
//! | Google | group and member keys | an e-mail address (ASCII letters, digits and `.` `_` `-` `+` `'` before the `@`; a dotted domain of letters, digits and `-`), or a unique id of 1–64 ASCII letters and digits |

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::event::{Action, EntitlementKind, Event, Outcome, PrincipalKind};

/// What a remediation request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remedy {
    /// Undo the change itself.
    Revert,
    /// Suspend the target account (when the change is one of many, or its inverse is manual).
    DisableAccount,
}

impl Remedy {
    pub fn as_str(self) -> &'static str {
        match self {
            Remedy::Revert => "revert",
            Remedy::DisableAccount => "disable_account",
        }
    }
}

impl std::fmt::Display for Remedy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IAM API call; field names follow the API's parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "operation")]
pub enum IamCall {
    DetachUserPolicy {
        user_name: String,
        policy_arn: String,
    },
    DeleteUserPolicy {
        user_name: String,
        policy_name: String,
    },
    DetachGroupPolicy {
        group_name: String,
        policy_arn: String,
    },
    DeleteGroupPolicy {
        group_name: String,
        policy_name: String,
    },
    DetachRolePolicy {
        role_name: String,
        policy_arn: String,
    },
    DeleteRolePolicy {
        role_name: String,
        policy_name: String,
    },
    RemoveUserFromGroup {
        group_name: String,
        user_name: String,
    },
    /// Sets one access key's status (`Inactive` to revert a `CreateAccessKey`).
    UpdateAccessKey {
        user_name: String,
        access_key_id: String,
        status: String,
    },
    DeleteLoginProfile {
        user_name: String,
    },
    /// `ListAccessKeys`, then `UpdateAccessKey … Inactive` for each (disabling an account).
    DeactivateAccessKeys {
        user_name: String,
    },
}

impl IamCall {
    pub fn operation(&self) -> &'static str {
        match self {
            IamCall::DetachUserPolicy { .. } => "DetachUserPolicy",
            IamCall::DeleteUserPolicy { .. } => "DeleteUserPolicy",
            IamCall::DetachGroupPolicy { .. } => "DetachGroupPolicy",
            IamCall::DeleteGroupPolicy { .. } => "DeleteGroupPolicy",
            IamCall::DetachRolePolicy { .. } => "DetachRolePolicy",
            IamCall::DeleteRolePolicy { .. } => "DeleteRolePolicy",
            IamCall::RemoveUserFromGroup { .. } => "RemoveUserFromGroup",
            IamCall::UpdateAccessKey { .. } => "UpdateAccessKey",
            IamCall::DeleteLoginProfile { .. } => "DeleteLoginProfile",
            IamCall::DeactivateAccessKeys { .. } => "DeactivateAccessKeys",
        }
    }
}

/// The identity provider an HTTP step goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Okta,
    Entra,
    Gworkspace,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Okta => "okta",
            Provider::Entra => "entra",
            Provider::Gworkspace => "gworkspace",
        }
    }
}

/// A REST call relative to the provider's API base URL (the host adds base and credentials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCall {
    pub provider: Provider,
    /// A stable name for allow-lists and logs (`RemoveUserFromGroup`, `SuspendUser`, …).
    pub operation: String,
    pub method: String,
    /// Path with every data-derived segment percent-encoded.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Json>,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    Iam {
        #[serde(flatten)]
        call: IamCall,
    },
    /// IAM Identity Center `DeleteAccountAssignment`: planned, never executed here (the
    /// assignment's AWS account, `target_id`, is not kept in the normalized event).
    SsoAdmin {
        operation: String,
        instance_arn: String,
        permission_set_arn: String,
        principal_type: Option<String>,
        principal_id: String,
        target_id: Option<String>,
    },
    Http {
        #[serde(flatten)]
        call: HttpCall,
    },
    /// Cannot be done automatically: what a person has to do.
    Manual { what: String },
}

impl Step {
    /// `iam:DetachUserPolicy`, `okta:RemoveUserFromGroup`, `sso:DeleteAccountAssignment`, `manual`.
    pub fn operation(&self) -> String {
        match self {
            Step::Iam { call } => format!("iam:{}", call.operation()),
            Step::SsoAdmin { operation, .. } => format!("sso:{operation}"),
            Step::Http { call } => format!("{}:{}", call.provider.as_str(), call.operation),
            Step::Manual { .. } => "manual".to_owned(),
        }
    }

    /// Whether a host may execute the step (IAM and REST calls); the others are plan only.
    pub fn executable(&self) -> bool {
        matches!(self, Step::Iam { .. } | Step::Http { .. })
    }

    /// One line for people: `iam:DetachUserPolicy user_name=… policy_arn=…`.
    pub fn describe(&self) -> String {
        match self {
            Step::Iam { call } => {
                let v = serde_json::to_value(call).unwrap_or_default();
                let mut parts = vec![format!("iam:{}", call.operation())];
                if let Some(m) = v.as_object() {
                    for (k, x) in m.iter().filter(|(k, _)| *k != "operation") {
                        parts.push(format!("{k}={}", x.as_str().unwrap_or_default()));
                    }
                }
                parts.join(" ")
            }
            Step::SsoAdmin {
                operation,
                instance_arn,
                permission_set_arn,
                principal_id,
                target_id,
                ..
            } => format!(
                "sso:{operation} instance_arn={instance_arn} permission_set_arn={permission_set_arn} principal_id={principal_id} target_id={}",
                target_id.as_deref().unwrap_or("(unknown)")
            ),
            Step::Http { call } => format!(
                "{}:{} {} {}",
                call.provider.as_str(),
                call.operation,
                call.method,
                call.path
            ),
            Step::Manual { what } => format!("manual: {what}"),
        }
    }
}

/// The inverse of one stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub event_id: String,
    pub remedy: Remedy,
    pub source: String,
    pub tenant: String,
    /// The AWS account the plan's IAM steps act in (CloudTrail: the target ARN's account, else
    /// the tenant); `None` for other sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    pub actor: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entitlement: Option<String>,
    pub steps: Vec<Step>,
    /// What a reviewer should know (side effects, what the plan cannot see).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Plan {
    /// Every step can be executed by a host.
    pub fn executable(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(Step::executable)
    }
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("event {event_id} records a failed change; there is nothing to revert")]
    FailedChange { event_id: String },
    #[error("{source_name} {action} cannot be reverted automatically: {why}")]
    Unsupported {
        source_name: String,
        action: Action,
        why: String,
    },
    #[error("event {event_id} lacks {what}, which the {remedy} plan needs")]
    Missing {
        event_id: String,
        remedy: Remedy,
        what: &'static str,
    },
    /// The target's ARN, an entitlement ARN and the tenant name different AWS accounts.
    #[error(
        "event {event_id} names more than one AWS account ({}); an IAM change is made in one",
        accounts.join(", ")
    )]
    AccountMismatch {
        event_id: String,
        accounts: Vec<String>,
    },
    /// An id for a REST path is not of the provider's id form (see the module docs).
    #[error(
        "event {event_id}: {what} {id:?} is not {expected}; no {} call is made with it",
        provider.as_str()
    )]
    InvalidId {
        event_id: String,
        provider: Provider,
        what: &'static str,
        /// The id as given (at most 64 characters of it).
        id: String,
        expected: &'static str,
    },
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters and `@` stay as they are).
pub fn segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// 1–64 ASCII letters and digits: an Okta id (`00u…`, `00g…`, `0oa…`), a Google unique id.
fn alphanumeric_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A GUID as Entra writes object and role template ids: `8-4-4-4-12` hexadecimal digits.
fn guid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// An e-mail address as Google keys groups and members by: ASCII letters, digits and `.` `_`
/// `-` `+` `'` before the `@`, a domain of two or more labels of letters, digits and `-`.
fn email_key(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    s.len() <= 254
        && (1..=64).contains(&local.len())
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'+' | b'\''))
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// An id from the event for a `provider` REST path, percent-encoded: missing, or not of the
/// provider's id form (see the module docs), there is no plan.
fn path_id(
    e: &Event,
    remedy: Remedy,
    provider: Provider,
    what: &'static str,
    raw: Option<&str>,
) -> Result<String, PlanError> {
    let raw = raw.ok_or_else(|| missing(e, remedy, what))?;
    let (valid, expected) = match provider {
        Provider::Okta => (
            alphanumeric_id(raw),
            "an Okta id (1-64 ASCII letters and digits)",
        ),
        Provider::Entra => (guid(raw), "a GUID"),
        Provider::Gworkspace => (
            email_key(raw) || alphanumeric_id(raw),
            "an e-mail address or a Google unique id",
        ),
    };
    if !valid {
        return Err(PlanError::InvalidId {
            event_id: e.id.clone(),
            provider,
            what,
            id: raw.chars().take(64).collect(),
            expected,
        });
    }
    Ok(segment(raw))
}

/// The AWS account of an ARN (`arn:aws:iam::111122223333:user/ann` → 111122223333); `None`
/// for ARNs without one (`arn:aws:iam::aws:policy/…`, AWS's own policies; `arn:aws:sso:::…`).
fn arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    // partition, service, region, then the account; the resource must follow.
    let account = parts.nth(3)?;
    parts.next()?;
    (!account.is_empty() && account != "aws").then_some(account)
}

/// The AWS account a CloudTrail event's change was made in: the account of the target's ARN,
/// else the tenant (CloudTrail's `recipientAccountId`; `unknown` when the record had none).
/// An entitlement ARN's account (a group, a customer-managed policy) is the same account or
/// the event is inconsistent; so is a tenant that is not the ARNs' account.
fn aws_account(e: &Event) -> Result<Option<String>, PlanError> {
    if e.source != "cloudtrail" {
        return Ok(None);
    }
    let tenant = Some(e.tenant.trim()).filter(|t| !t.is_empty() && *t != "unknown");
    let named = [
        e.target.id.as_deref().and_then(arn_account),
        e.entitlement
            .as_ref()
            .and_then(|ent| ent.id.as_deref())
            .and_then(arn_account),
        tenant,
    ];
    let mut accounts: Vec<String> = Vec::new();
    for a in named.into_iter().flatten() {
        if !accounts.iter().any(|x| x == a) {
            accounts.push(a.to_owned());
        }
    }
    if accounts.len() > 1 {
        return Err(PlanError::AccountMismatch {
            event_id: e.id.clone(),
            accounts,
        });
    }
    Ok(accounts.pop())
}

/// The break-glass account among the event's actor and target, if any (case-insensitive on
/// e-mail, name or id). Remediation refuses these: an automatic action must never lock out the
/// accounts kept for emergencies, nor undo what they did during one.
pub fn break_glass<'a>(event: &Event, list: &'a [String]) -> Option<&'a str> {
    let ids = [
        &event.actor.email,
        &event.actor.name,
        &event.actor.id,
        &event.target.email,
        &event.target.name,
        &event.target.id,
    ];
    list.iter().map(String::as_str).find(|bg| {
        ids.iter()
            .any(|id| id.as_deref().is_some_and(|id| id.eq_ignore_ascii_case(bg)))
    })
}

/// The break-glass accounts of a host: the configuration file's (`from_file`), then the
/// environment's not already among them (compared case-insensitively, as [`break_glass`]
/// matches them).
pub fn merge_break_glass(from_file: &[String], from_env: &[String]) -> Vec<String> {
    let mut all = from_file.to_vec();
    for b in from_env {
        if !all.iter().any(|a| a.eq_ignore_ascii_case(b)) {
            all.push(b.clone());
        }
    }
    all
}

/// What kind of IAM principal an ARN names, and its name (`arn:aws:iam::1:user/path/ann` → ann).
fn iam_principal(arn: Option<&str>) -> Option<(&str, String)> {
    let rest = arn?.strip_prefix("arn:aws")?;
    let (_, resource) = rest.split_once(":iam::")?;
    let (_, resource) = resource.split_once(':')?;
    let (kind, path) = resource.split_once('/')?;
    let name = path.rsplit('/').next()?.to_owned();
    matches!(kind, "user" | "group" | "role").then_some((kind, name))
}

/// Computes the plan for `remedy` on `event`.
pub fn plan(event: &Event, remedy: Remedy) -> Result<Plan, PlanError> {
    if event.outcome == Outcome::Failure {
        return Err(PlanError::FailedChange {
            event_id: event.id.clone(),
        });
    }
    let account = aws_account(event)?;
    let mut notes = Vec::new();
    let steps = match remedy {
        Remedy::Revert => revert(event, &mut notes)?,
        Remedy::DisableAccount => disable(event, &mut notes)?,
    };
    Ok(Plan {
        event_id: event.id.clone(),
        remedy,
        source: event.source.clone(),
        tenant: event.tenant.clone(),
        account,
        actor: event.actor.label().to_owned(),
        target: event.target.label().to_owned(),
        entitlement: event.entitlement.as_ref().map(|e| e.label().to_owned()),
        steps,
        notes,
    })
}

fn unsupported(e: &Event, why: impl Into<String>) -> PlanError {
    PlanError::Unsupported {
        source_name: e.source.clone(),
        action: e.action,
        why: why.into(),
    }
}

fn missing(e: &Event, remedy: Remedy, what: &'static str) -> PlanError {
    PlanError::Missing {
        event_id: e.id.clone(),
        remedy,
        what,
    }
}

fn http(provider: Provider, operation: &str, method: &str, path: String) -> Step {
    Step::Http {
        call: HttpCall {
            provider,
            operation: operation.to_owned(),
            method: method.to_owned(),
            path,
            body: None,
        },
    }
}

fn iam(call: IamCall) -> Step {
    Step::Iam { call }
}

fn revert(e: &Event, notes: &mut Vec<String>) -> Result<Vec<Step>, PlanError> {
    let r = Remedy::Revert;
    if !e.action.is_grant() {
        return Err(unsupported(
            e,
            "only grants (roles, groups, apps, permission sets, credentials) have an inverse here; \
             use disable_account for a new account",
        ));
    }
    let ent = e
        .entitlement
        .as_ref()
        .ok_or_else(|| missing(e, r, "the entitlement"))?;
    let target_id = e.target.id.as_deref();
    match e.source.as_str() {
        "cloudtrail" => {
            if e.action == Action::AssignPermissionSet {
                let ps = ent
                    .id
                    .clone()
                    .ok_or_else(|| missing(e, r, "the permission set ARN"))?;
                // arn:aws:sso:::permissionSet/ssoins-…/ps-… → arn:aws:sso:::instance/ssoins-…
                let instance = ps
                    .split('/')
                    .nth(1)
                    .filter(|i| i.starts_with("ssoins-"))
                    .map(|i| format!("arn:aws:sso:::instance/{i}"))
                    .ok_or_else(|| missing(e, r, "an instance in the permission set ARN"))?;
                let principal = target_id
                    .ok_or_else(|| missing(e, r, "the principal id"))?
                    .to_owned();
                notes.push(
                    "plan only: DeleteAccountAssignment needs the AWS account of the assignment \
                     (requestParameters.targetId of the CloudTrail record), which the normalized \
                     event does not keep"
                        .into(),
                );
                return Ok(vec![Step::SsoAdmin {
                    operation: "DeleteAccountAssignment".into(),
                    instance_arn: instance,
                    permission_set_arn: ps,
                    principal_type: (e.target.kind == PrincipalKind::Human)
                        .then(|| "USER".to_owned()),
                    principal_id: principal,
                    target_id: None,
                }]);
            }
            let Some((kind, name)) = iam_principal(target_id) else {
                return Ok(vec![Step::Manual {
                    what: format!(
                        "undo {} of {} for {} in the IAM Identity Center console or API \
                         (the target is not an IAM user, group or role)",
                        e.action,
                        ent.label(),
                        e.target.label()
                    ),
                }]);
            };
            match (e.action, ent.kind) {
                (Action::GrantRole, EntitlementKind::Policy) => {
                    let managed = ent
                        .id
                        .as_deref()
                        .filter(|id| id.starts_with("arn:") && id.contains(":policy/"));
                    let call = match (kind, managed) {
                        ("user", Some(arn)) => IamCall::DetachUserPolicy {
                            user_name: name,
                            policy_arn: arn.to_owned(),
                        },
                        ("group", Some(arn)) => IamCall::DetachGroupPolicy {
                            group_name: name,
                            policy_arn: arn.to_owned(),
                        },
                        ("role", Some(arn)) => IamCall::DetachRolePolicy {
                            role_name: name,
                            policy_arn: arn.to_owned(),
                        },
                        (kind, None) => {
                            let policy_name = ent
                                .name
                                .clone()
                                .ok_or_else(|| missing(e, r, "the inline policy name"))?;
                            notes.push(format!(
                                "deletes the inline policy {policy_name}; its document is gone \
                                 afterwards (CloudTrail's requestParameters.policyDocument has it)"
                            ));
                            match kind {
                                "user" => IamCall::DeleteUserPolicy {
                                    user_name: name,
                                    policy_name,
                                },
                                "group" => IamCall::DeleteGroupPolicy {
                                    group_name: name,
                                    policy_name,
                                },
                                _ => IamCall::DeleteRolePolicy {
                                    role_name: name,
                                    policy_name,
                                },
                            }
                        }
                        _ => unreachable!("iam_principal yields user, group or role"),
                    };
                    Ok(vec![iam(call)])
                }
                (Action::AddToGroup, EntitlementKind::Group) if kind == "user" => {
                    let group = iam_principal(ent.id.as_deref())
                        .map(|(_, g)| g)
                        .or_else(|| ent.name.clone())
                        .ok_or_else(|| missing(e, r, "the group name"))?;
                    Ok(vec![iam(IamCall::RemoveUserFromGroup {
                        group_name: group,
                        user_name: name,
                    })])
                }
                (Action::CreateCredential, EntitlementKind::Credential) if kind == "user" => {
                    match ent.name.as_deref() {
                        Some("access_key") => {
                            let key = ent
                                .id
                                .clone()
                                .ok_or_else(|| missing(e, r, "the access key id"))?;
                            notes.push(
                                "the key is made Inactive, not deleted, so it can be re-enabled"
                                    .into(),
                            );
                            Ok(vec![iam(IamCall::UpdateAccessKey {
                                user_name: name,
                                access_key_id: key,
                                status: "Inactive".into(),
                            })])
                        }
                        Some("login_profile") => {
                            notes.push(
                                "removes console sign-in; if the event was an UpdateLoginProfile \
                                 (a password change), the user had console access before"
                                    .into(),
                            );
                            Ok(vec![iam(IamCall::DeleteLoginProfile { user_name: name })])
                        }
                        _ => Err(unsupported(e, "an unknown kind of credential")),
                    }
                }
                (Action::GrantRole, EntitlementKind::Role) => Ok(vec![Step::Manual {
                    what: format!(
                        "restore the previous trust policy of role {name} (UpdateAssumeRolePolicy \
                         has no automatic inverse: the old document is not in the event)"
                    ),
                }]),
                _ => Err(unsupported(
                    e,
                    format!("no IAM inverse for {} on a {kind}", ent.kind.as_str()),
                )),
            }
        }
        "okta" => {
            let uid = path_id(e, r, Provider::Okta, "the Okta user id", target_id)?;
            match e.action {
                Action::AddToGroup => {
                    let gid =
                        path_id(e, r, Provider::Okta, "the Okta group id", ent.id.as_deref())?;
                    Ok(vec![http(
                        Provider::Okta,
                        "RemoveUserFromGroup",
                        "DELETE",
                        format!("/api/v1/groups/{gid}/users/{uid}"),
                    )])
                }
                Action::AssignApp => {
                    let app = path_id(e, r, Provider::Okta, "the Okta app id", ent.id.as_deref())?;
                    Ok(vec![http(
                        Provider::Okta,
                        "UnassignUserFromApp",
                        "DELETE",
                        format!("/api/v1/apps/{app}/users/{uid}"),
                    )])
                }
                _ => Ok(vec![Step::Manual {
                    what: format!(
                        "list the role assignments of {} (GET /api/v1/users/{uid}/roles) and \
                         DELETE /api/v1/users/{uid}/roles/{{roleAssignmentId}} for {} (the \
                         assignment id is not in the event); for a group, the same under \
                         /api/v1/groups/{uid}/roles",
                        e.target.label(),
                        ent.label()
                    ),
                }]),
            }
        }
        "entra" => {
            let uid = path_id(e, r, Provider::Entra, "the Entra object id", target_id)?;
            match (e.action, ent.kind) {
                (Action::AddToGroup, _) => {
                    let gid = path_id(
                        e,
                        r,
                        Provider::Entra,
                        "the Entra group id",
                        ent.id.as_deref(),
                    )?;
                    Ok(vec![http(
                        Provider::Entra,
                        "RemoveGroupMember",
                        "DELETE",
                        format!("/groups/{gid}/members/{uid}/$ref"),
                    )])
                }
                (Action::GrantRole, EntitlementKind::Role) if e.channel == "pim" => {
                    Ok(vec![Step::Manual {
                        what: format!(
                            "end the Privileged Identity Management assignment or eligibility of \
                             {} for {} (a PIM activation expires on its own)",
                            e.target.label(),
                            ent.label()
                        ),
                    }])
                }
                (Action::GrantRole, EntitlementKind::Role) => {
                    let rid = path_id(
                        e,
                        r,
                        Provider::Entra,
                        "the directory role template id",
                        ent.id.as_deref(),
                    )?;
                    Ok(vec![http(
                        Provider::Entra,
                        "RemoveDirectoryRoleMember",
                        "DELETE",
                        format!("/directoryRoles(roleTemplateId='{rid}')/members/{uid}/$ref"),
                    )])
                }
                _ => Ok(vec![Step::Manual {
                    what: format!(
                        "remove {} from {} in Entra (the assignment id is not in the event)",
                        e.target.label(),
                        ent.label()
                    ),
                }]),
            }
        }
        "gworkspace" => {
            let member = path_id(
                e,
                r,
                Provider::Gworkspace,
                "the member's e-mail",
                e.target.email.as_deref().or(target_id),
            )?;
            match e.action {
                Action::AddToGroup => {
                    let group = path_id(
                        e,
                        r,
                        Provider::Gworkspace,
                        "the group",
                        ent.id.as_deref().or(ent.name.as_deref()),
                    )?;
                    Ok(vec![http(
                        Provider::Gworkspace,
                        "RemoveGroupMember",
                        "DELETE",
                        format!("/admin/directory/v1/groups/{group}/members/{member}"),
                    )])
                }
                _ => Ok(vec![Step::Manual {
                    what: format!(
                        "remove {} from {} in the Google Admin console (the role assignment id is \
                         not in the event)",
                        e.target.label(),
                        ent.label()
                    ),
                }]),
            }
        }
        other => Err(unsupported(e, format!("no remediation for source {other}"))),
    }
}

fn disable(e: &Event, notes: &mut Vec<String>) -> Result<Vec<Step>, PlanError> {
    let r = Remedy::DisableAccount;
    let target_id = e.target.id.as_deref();
    match e.source.as_str() {
        "cloudtrail" => match iam_principal(target_id) {
            Some(("user", name)) => {
                notes.push(
                    "console sign-in is removed and every access key made Inactive; the user, \
                     its groups and policies stay"
                        .into(),
                );
                Ok(vec![
                    iam(IamCall::DeleteLoginProfile {
                        user_name: name.clone(),
                    }),
                    iam(IamCall::DeactivateAccessKeys { user_name: name }),
                ])
            }
            _ => Err(unsupported(
                e,
                "only IAM users can be disabled (roles and Identity Center users cannot here)",
            )),
        },
        "okta" => {
            let uid = path_id(e, r, Provider::Okta, "the Okta user id", target_id)?;
            Ok(vec![http(
                Provider::Okta,
                "SuspendUser",
                "POST",
                format!("/api/v1/users/{uid}/lifecycle/suspend"),
            )])
        }
        "entra" => {
            let uid = path_id(e, r, Provider::Entra, "the Entra object id", target_id)?;
            let mut step = http(
                Provider::Entra,
                "DisableUser",
                "PATCH",
                format!("/users/{uid}"),
            );
            if let Step::Http { call } = &mut step {
                call.body = Some(serde_json::json!({"accountEnabled": false}));
            }
            Ok(vec![step])
        }
        "gworkspace" => {
            let user = path_id(
                e,
                r,
                Provider::Gworkspace,
                "the user's e-mail",
                e.target.email.as_deref().or(target_id),
            )?;
            let mut step = http(
                Provider::Gworkspace,
                "SuspendUser",
                "PUT",
                format!("/admin/directory/v1/users/{user}"),
            );
            if let Step::Http { call } = &mut step {
                call.body = Some(serde_json::json!({"suspended": true}));
            }
            Ok(vec![step])
        }
        other => Err(unsupported(
            e,
            format!("no account suspension for source {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: Json) -> Event {
        let mut base = json!({
            "id": "e1", "source": "cloudtrail", "tenant": "111122223333",
            "time": "2026-11-02T02:00:00Z", "action": "grant_role", "outcome": "success",
            "actor": {"email": "mallory@acme.example", "kind": "human"},
            "target": {"id": "arn:aws:iam::111122223333:user/bob", "name": "bob", "kind": "unknown"},
            "entitlement": {"id": "arn:aws:iam::aws:policy/AdministratorAccess",
                            "name": "AdministratorAccess", "kind": "policy", "privilege": "admin"},
            "channel": "console"
        });
        for (k, x) in v.as_object().unwrap() {
            base[k] = x.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn only_step(p: &Plan) -> &Step {
        assert_eq!(p.steps.len(), 1, "{p:?}");
        &p.steps[0]
    }

    #[test]
    fn attach_user_policy_is_reverted_by_detach() {
        let p = plan(&event(json!({})), Remedy::Revert).unwrap();
        assert_eq!(
            only_step(&p),
            &Step::Iam {
                call: IamCall::DetachUserPolicy {
                    user_name: "bob".into(),
                    policy_arn: "arn:aws:iam::aws:policy/AdministratorAccess".into()
                }
            }
        );
        assert!(p.executable());
        assert_eq!(only_step(&p).operation(), "iam:DetachUserPolicy");
        let wire = serde_json::to_value(only_step(&p)).unwrap();
        assert_eq!(wire["kind"], "iam");
        assert_eq!(wire["operation"], "DetachUserPolicy");
        assert_eq!(wire["user_name"], "bob");
        let back: Step = serde_json::from_value(wire).unwrap();
        assert_eq!(&back, only_step(&p));
    }

    #[test]
    fn each_iam_grant_has_its_inverse() {
        let inline =
            event(json!({"entitlement": {"id": null, "name": "escalate", "kind": "policy"}}));
        assert_eq!(
            only_step(&plan(&inline, Remedy::Revert).unwrap()).operation(),
            "iam:DeleteUserPolicy"
        );
        let group = event(json!({"action": "add_to_group",
            "entitlement": {"id": "arn:aws:iam::111122223333:group/admins", "name": "admins", "kind": "group"}}));
        assert_eq!(
            only_step(&plan(&group, Remedy::Revert).unwrap()),
            &Step::Iam {
                call: IamCall::RemoveUserFromGroup {
                    group_name: "admins".into(),
                    user_name: "bob".into()
                }
            }
        );
        let key = event(json!({"action": "create_credential",
            "entitlement": {"id": "AKIAEXAMPLE", "name": "access_key", "kind": "credential"}}));
        assert_eq!(
            only_step(&plan(&key, Remedy::Revert).unwrap()),
            &Step::Iam {
                call: IamCall::UpdateAccessKey {
                    user_name: "bob".into(),
                    access_key_id: "AKIAEXAMPLE".into(),
                    status: "Inactive".into()
                }
            }
        );
        let login = event(json!({"action": "create_credential",
            "entitlement": {"name": "login_profile", "kind": "credential"}}));
        assert_eq!(
            only_step(&plan(&login, Remedy::Revert).unwrap()).operation(),
            "iam:DeleteLoginProfile"
        );
        let role =
            event(json!({"target": {"id": "arn:aws:iam::111122223333:role/ci", "name": "ci"}}));
        assert_eq!(
            only_step(&plan(&role, Remedy::Revert).unwrap()).operation(),
            "iam:DetachRolePolicy"
        );
    }

    #[test]
    fn account_assignments_are_planned_but_not_executable() {
        let e = event(json!({"action": "assign_permission_set",
            "target": {"id": "e4b8a2c1-7011", "kind": "human"},
            "entitlement": {"id": "arn:aws:sso:::permissionSet/ssoins-7223a1b2c3d4e5f6/ps-3c2b1a0f9e8d7c6b",
                            "name": "ps-3c2b1a0f9e8d7c6b", "kind": "permission_set"}}));
        let p = plan(&e, Remedy::Revert).unwrap();
        match only_step(&p) {
            Step::SsoAdmin {
                instance_arn,
                principal_type,
                ..
            } => {
                assert_eq!(
                    instance_arn,
                    "arn:aws:sso:::instance/ssoins-7223a1b2c3d4e5f6"
                );
                assert_eq!(principal_type.as_deref(), Some("USER"));
            }
            other => panic!("{other:?}"),
        }
        assert!(!p.executable());
        assert!(p.notes[0].contains("plan only"));
    }

    #[test]
    fn third_party_grants_become_rest_calls() {
        let okta = event(json!({"source": "okta", "action": "add_to_group",
            "target": {"id": "00u8nwq3rt", "email": "nina@acme.example", "kind": "human"},
            "entitlement": {"id": "00g5fin4nce", "name": "Finance", "kind": "group"}}));
        match only_step(&plan(&okta, Remedy::Revert).unwrap()) {
            Step::Http { call } => {
                assert_eq!(
                    (call.method.as_str(), call.path.as_str()),
                    ("DELETE", "/api/v1/groups/00g5fin4nce/users/00u8nwq3rt")
                );
            }
            other => panic!("{other:?}"),
        }
        let entra = event(json!({"source": "entra",
            "target": {"id": "5a9c2e7f-8b13-4d64-9f0a-3c6e1b8d4f25", "kind": "human"},
            "entitlement": {"id": "62e90394-69f5-4237-9190-012177145e10", "name": "Global Administrator", "kind": "role"}}));
        assert_eq!(
            only_step(&plan(&entra, Remedy::Revert).unwrap()).describe(),
            "entra:RemoveDirectoryRoleMember DELETE /directoryRoles(roleTemplateId='62e90394-69f5-4237-9190-012177145e10')/members/5a9c2e7f-8b13-4d64-9f0a-3c6e1b8d4f25/$ref"
        );
        let google = event(json!({"source": "gworkspace", "action": "add_to_group",
            "target": {"email": "olivia@acme.example", "kind": "human"},
            "entitlement": {"id": "o'neil-team@acme.example", "kind": "group"}}));
        assert_eq!(
            only_step(&plan(&google, Remedy::Revert).unwrap()).describe(),
            "gworkspace:RemoveGroupMember DELETE /admin/directory/v1/groups/o%27neil-team@acme.example/members/olivia@acme.example"
        );
        let okta_role = event(json!({"source": "okta",
            "target": {"id": "00u7", "kind": "human"},
            "entitlement": {"id": "SUPER_ADMIN", "name": "Super administrator", "kind": "role"}}));
        let p = plan(&okta_role, Remedy::Revert).unwrap();
        assert!(matches!(only_step(&p), Step::Manual { .. }));
        assert!(!p.executable());
    }

    #[test]
    fn disabling_suspends_the_target() {
        let p = plan(&event(json!({})), Remedy::DisableAccount).unwrap();
        let ops: Vec<String> = p.steps.iter().map(Step::operation).collect();
        assert_eq!(ops, ["iam:DeleteLoginProfile", "iam:DeactivateAccessKeys"]);
        let okta = event(json!({"source": "okta", "target": {"id": "00u1", "kind": "human"}}));
        assert_eq!(
            only_step(&plan(&okta, Remedy::DisableAccount).unwrap()).describe(),
            "okta:SuspendUser POST /api/v1/users/00u1/lifecycle/suspend"
        );
    }

    #[test]
    fn failures_revokes_and_unknown_sources_have_no_plan() {
        let failed = event(json!({"outcome": "failure"}));
        assert!(matches!(
            plan(&failed, Remedy::Revert),
            Err(PlanError::FailedChange { .. })
        ));
        let revoke = event(json!({"action": "revoke_role"}));
        assert!(matches!(
            plan(&revoke, Remedy::Revert),
            Err(PlanError::Unsupported { .. })
        ));
        let custom = event(json!({"source": "hrtool"}));
        assert!(plan(&custom, Remedy::Revert).is_err());
    }

    #[test]
    fn cloudtrail_plans_carry_the_aws_account_of_the_change() {
        // The target ARN's account.
        let p = plan(&event(json!({})), Remedy::Revert).unwrap();
        assert_eq!(p.account.as_deref(), Some("111122223333"));
        assert_eq!(serde_json::to_value(&p).unwrap()["account"], "111122223333");
        let p = plan(&event(json!({})), Remedy::DisableAccount).unwrap();
        assert_eq!(p.account.as_deref(), Some("111122223333"));
        // No ARN: the tenant (CloudTrail's recipientAccountId).
        let sso = event(json!({"action": "assign_permission_set",
            "target": {"id": "e4b8a2c1-7011", "kind": "human"},
            "entitlement": {"id": "arn:aws:sso:::permissionSet/ssoins-7223a1b2c3d4e5f6/ps-3c2b1a0f9e8d7c6b",
                            "kind": "permission_set"}}));
        assert_eq!(
            plan(&sso, Remedy::Revert).unwrap().account.as_deref(),
            Some("111122223333")
        );
        // Other sources act through their own APIs: no AWS account.
        let okta = event(json!({"source": "okta", "tenant": "acme.okta.com",
            "target": {"id": "00u1", "kind": "human"}}));
        assert_eq!(plan(&okta, Remedy::DisableAccount).unwrap().account, None);
    }

    #[test]
    fn an_event_naming_two_aws_accounts_has_no_plan() {
        // A tenant that is not the target's account.
        let e = event(json!({"tenant": "444455556666"}));
        for remedy in [Remedy::Revert, Remedy::DisableAccount] {
            match plan(&e, remedy) {
                Err(PlanError::AccountMismatch { accounts, .. }) => {
                    assert_eq!(accounts, ["111122223333", "444455556666"]);
                }
                other => panic!("{other:?}"),
            }
        }
        // A group of another account than the user's.
        let group = event(json!({"action": "add_to_group",
            "entitlement": {"id": "arn:aws:iam::444455556666:group/admins", "name": "admins", "kind": "group"}}));
        assert!(matches!(
            plan(&group, Remedy::Revert),
            Err(PlanError::AccountMismatch { .. })
        ));
        // AWS managed policies (account `aws`) belong to no account.
        assert!(plan(&event(json!({})), Remedy::Revert).is_ok());
    }

    #[test]
    fn provider_ids_outside_their_id_form_have_no_plan() {
        let okta = |target: &str, group: &str| {
            event(json!({"source": "okta", "action": "add_to_group",
                "target": {"id": target, "kind": "human"},
                "entitlement": {"id": group, "name": "Finance", "kind": "group"}}))
        };
        let entra = |target: &str, group: &str| {
            event(json!({"source": "entra", "action": "add_to_group",
                "target": {"id": target, "kind": "human"},
                "entitlement": {"id": group, "name": "Finance", "kind": "group"}}))
        };
        let google = |member: &str, group: &str| {
            event(json!({"source": "gworkspace", "action": "add_to_group",
                "target": {"email": member, "kind": "human"},
                "entitlement": {"id": group, "kind": "group"}}))
        };
        let user = "00u8nwq3rtYhZkP2x5d7";
        let object = "5a9c2e7f-8b13-4d64-9f0a-3c6e1b8d4f25";
        let mail = "olivia@acme.example";
        assert!(plan(&okta(user, "00g5fin4nceGr0upX5d7"), Remedy::Revert).is_ok());
        assert!(plan(&entra(object, object), Remedy::Revert).is_ok());
        assert!(plan(&google(mail, "prod-admins@acme.example"), Remedy::Revert).is_ok());
        assert!(
            plan(
                &google("103456789012345678901", "03z8k2m41g7q5n0"),
                Remedy::Revert
            )
            .is_ok()
        );

        for bad in ["..", ".", "../users/x", "00g5..", "00u1%2F..", "", "a b"] {
            let cases = [
                ("okta group", okta(user, bad)),
                ("okta user", okta(bad, "00g5fin4nceGr0upX5d7")),
                ("entra group", entra(object, bad)),
                ("entra user", entra(bad, object)),
                ("google group", google(mail, bad)),
                ("google member", google(bad, "prod-admins@acme.example")),
            ];
            for (what, e) in cases {
                match plan(&e, Remedy::Revert) {
                    Err(PlanError::InvalidId { id, .. }) => assert_eq!(id, bad, "{what}"),
                    other => panic!("{what} {bad:?}: {other:?}"),
                }
            }
        }
        // Disabling goes through the same check.
        let okta_user =
            event(json!({"source": "okta", "target": {"id": "../groups/00g1", "kind": "human"}}));
        assert!(matches!(
            plan(&okta_user, Remedy::DisableAccount),
            Err(PlanError::InvalidId { .. })
        ));
        let entra_user = event(json!({"source": "entra", "target": {"id": "..", "kind": "human"}}));
        assert!(matches!(
            plan(&entra_user, Remedy::DisableAccount),
            Err(PlanError::InvalidId { .. })
        ));
        let google_user = event(json!({"source": "gworkspace",
            "target": {"email": "../../groups/x@acme.example", "kind": "human"}}));
        assert!(matches!(
            plan(&google_user, Remedy::DisableAccount),
            Err(PlanError::InvalidId { .. })
        ));
        // Nearly e-mail addresses and nearly GUIDs.
        for bad in [
            "a@b",
            "a@.example",
            "a@@acme.example",
            "@acme.example",
            "a/b@acme.example",
        ] {
            assert!(!email_key(bad), "{bad}");
        }
        assert!(!guid("5a9c2e7f-8b13-4d64-9f0a-3c6e1b8d4f2g"));
        assert!(!guid("5a9c2e7f8b134d649f0a3c6e1b8d4f25"));
    }

    #[test]
    fn break_glass_matches_actor_or_target_case_insensitively() {
        let e = event(json!({}));
        let list = vec!["BOB".to_owned()];
        assert_eq!(break_glass(&e, &list), Some("BOB"));
        assert_eq!(break_glass(&e, &["carol@acme.example".to_owned()]), None);
    }
}
