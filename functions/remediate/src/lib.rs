//! The remediate Lambda: on demand, the inverse of a stored provisioning change.
//!
//! Invoked with `{"event_id" | "alert_id", "action": "revert" | "disable_account",
//! "dry_run": true, "reason", "requested_by"}` (`dry_run` defaults to true). It looks the event
//! up, computes the plan ([`provguard_core::remediate::plan`]) and returns it. It executes the
//! plan only when all of these hold, in this order:
//!
//! 1. `dry_run` is false;
//! 2. neither the actor nor the target is a break-glass account (configuration `break_glass`
//!    and `PROVGUARD_BREAK_GLASS`);
//! 3. every step can be executed (plan-only steps, such as `DeleteAccountAssignment`, and manual
//!    steps are never executed);
//! 4. IAM steps act in the function's own AWS account: the plan's account (the account the
//!    change was made in, `Plan::account`) is the one STS `GetCallerIdentity` names for the
//!    function's credentials (asked on the first IAM plan and kept for the container's life).
//!    A member account's change would need a remediation role to assume there, which is not
//!    configured: it is answered `plan_only`, never carried out with the central account's
//!    credentials on a same-named principal (and `plan_only` too while the own account is
//!    unknown because STS did not answer; a new request asks again);
//! 5. the remedy or every step's operation is allow-listed (`PROVGUARD_REMEDIATION_ALLOW`;
//!    empty by default, so dry runs only);
//! 6. `PROVGUARD_REMEDIATION_MAX_PER_HOUR` is not 0 (0: nothing is executed);
//! 7. the same remediation (event, remedy) has not run before — a second identical request
//!    reports the earlier result instead of acting again (a failed one may be retried);
//! 8. fewer than `PROVGUARD_REMEDIATION_MAX_PER_HOUR` remediations ran this UTC hour (an atomic
//!    counter in DynamoDB).
//!
//! An automatic request (`"automatic": true`, with `"delivery"`: how the event arrived; sent by
//! the ingest function) is executed only once its change is confirmed at its provider, checked
//! before the hourly counter ([`confirm`]): Okta's System Log (scope `okta.logs.read`), Graph's
//! directory audits (`AuditLog.Read.All`) or Google's Reports API
//! (`admin.reports.audit.readonly`); a CloudTrail event by its EventBridge delivery. A change not
//! on record yet is `awaiting_confirmation`, and a schedule (`rate(5 minutes)`) re-checks it
//! ([`sweep`]) for up to 30 minutes after the event was ingested, then refuses it. Operators'
//! requests (`automatic` false, the default) are not gated.
//!
//! Every request, every executed step and every result is appended to the event's remediation
//! audit trail in DynamoDB. IAM calls use the SDK; Okta, Microsoft Graph and Google Admin calls go
//! over HTTPS to base URLs from the configuration (tests point them at a local server). A step
//! whose target is already gone (IAM `NoSuchEntity`, HTTP 404 on a delete) counts as done, so a
//! retried remediation completes; condition 4 is what lets an IAM `NoSuchEntity` mean the grant
//! is gone rather than that the principal lives in another account.
//!
//! Errors: a bad request, a refused or failed remediation are answered with `Ok` and a report
//! saying so; only a store failure (DynamoDB unavailable) is an `Err`.

pub mod config;
pub mod confirm;
pub mod sweep;

/// The AWS actions this function's code calls: DynamoDB (the alert and its event, remediation
/// records and audit, the hourly counter, requests awaiting confirmation), SSM (identity-provider tokens given as `ssm:`
/// references, at cold start), STS (the function's own account) and the IAM revocations it can carry out. infra/template.yaml
/// grants exactly these (and what the Lambda service itself needs for the dead-letter queue);
/// the integration tests check both.
pub const AWS_ACTIONS: &[&str] = &[
    // Requests awaiting confirmation: forgotten once done with, listed by the sweep.
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    // Feedback that releases a confirmed webhook delivery into the baselines (the sweep).
    "dynamodb:TransactWriteItems",
    "dynamodb:UpdateItem",
    "iam:DeleteLoginProfile",
    "iam:DeleteRolePolicy",
    "iam:DeleteUserPolicy",
    "iam:DetachGroupPolicy",
    "iam:DetachRolePolicy",
    "iam:DetachUserPolicy",
    "iam:ListAccessKeys",
    "iam:RemoveUserFromGroup",
    "iam:UpdateAccessKey",
    "ssm:GetParameter",
    "sts:GetCallerIdentity",
];

use std::sync::Arc;

use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent};
use provguard_core::error_chain as chain;
use provguard_core::remediate::{self, HttpCall, IamCall, Plan, Provider, Remedy, Step};
use provguard_core::store::dynamodb::{RemediationStart, RemediationState};
use provguard_core::store::{DynamoDbStore, EventStore, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use tokio::runtime::Handle;

use crate::config::{Entra, Google, Okta};

/// A remediation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The event to remediate (an alert's id is its event's id).
    #[serde(alias = "alert_id")]
    pub event_id: String,
    pub action: Remedy,
    #[serde(default = "yes")]
    pub dry_run: bool,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub requested_by: Option<String>,
    /// Sent by provguard itself, not an operator: executed only once confirmed ([`confirm`]).
    #[serde(default)]
    pub automatic: bool,
    /// How the event reached the ingest function (automatic requests).
    #[serde(default)]
    pub delivery: Option<confirm::Delivery>,
}

fn yes() -> bool {
    true
}

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Dry run: the plan, nothing executed.
    Planned,
    /// Every step was executed.
    Executed,
    /// A step failed; the steps before it were executed. A new request may retry.
    Failed,
    /// Not executed: break-glass, not allow-listed, hourly cap, no plan for this change, or an
    /// automatic request whose change its provider did not confirm.
    Refused,
    /// An automatic request whose change is not on record at its provider yet: held, and
    /// checked again by the sweep until the wait ends ([`confirm`]).
    AwaitingConfirmation,
    /// The plan has steps that are never executed automatically, or IAM steps in an AWS account
    /// the function cannot act in.
    PlanOnly,
    /// Another invocation is executing the same remediation now.
    InProgress,
    /// No stored event has this id.
    NotFound,
    /// The request itself is malformed.
    Invalid,
}

/// What became of one executed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Done,
    /// The grant was already gone (IAM `NoSuchEntity`, HTTP 404).
    AlreadyDone,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    pub operation: String,
    pub description: String,
    pub outcome: StepOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The answer to a request, and the stored result of an executed remediation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub event_id: String,
    pub action: Option<Remedy>,
    pub dry_run: bool,
    pub status: Status,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepResult>,
    #[serde(default)]
    pub requested_by: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
    /// This is the result of an earlier identical request, reported again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub earlier: bool,
}

/// One entry of the remediation audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    /// `request` (with its outcome), `step` (one executed call) or `result`.
    pub kind: String,
    pub action: Option<Remedy>,
    pub dry_run: bool,
    pub requested_by: Option<String>,
    pub reason: Option<String>,
    /// The request's status, or the step's outcome.
    pub outcome: String,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("the blocking task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: match e {
                Error::Store(_) => "StoreUnavailable",
                Error::Join(_) => "Internal",
            }
            .to_owned(),
            error_message: chain(&e),
        }
    }
}

/// Okta, Microsoft Graph and Google Admin over HTTPS (blocking; a 10 s budget per call).
pub struct Idp {
    agent: ureq::Agent,
    okta: Option<Okta>,
    entra: Option<Entra>,
    google: Option<Google>,
}

impl std::fmt::Debug for Idp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Idp")
            .field("okta", &self.okta.as_ref().map(|o| &o.url))
            .field("entra", &self.entra.as_ref().map(|e| &e.graph_url))
            .field("google", &self.google.as_ref().map(|g| &g.url))
            .finish()
    }
}

/// Why an HTTP step failed (the message goes into the report and the audit trail).
fn http_failure(e: ureq::Error) -> String {
    format!("request failed: {e}")
}

/// The budget of one identity-provider call unless [`Idp::with_timeout`] says otherwise.
pub const IDP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn idp_agent(budget: std::time::Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(budget))
        .http_status_as_error(false)
        .build()
        .new_agent()
}

impl Idp {
    pub fn new(okta: Option<Okta>, entra: Option<Entra>, google: Option<Google>) -> Self {
        Idp {
            agent: idp_agent(IDP_TIMEOUT),
            okta,
            entra,
            google,
        }
    }

    /// Gives each call `budget` (connect, send and answer) instead of [`IDP_TIMEOUT`].
    pub fn with_timeout(mut self, budget: std::time::Duration) -> Self {
        self.agent = idp_agent(budget);
        self
    }

    /// An access token for Graph by the client-credentials grant.
    fn entra_token(&self, e: &Entra) -> Result<String, String> {
        let url = format!("{}/{}/oauth2/v2.0/token", e.login_url, e.tenant);
        let mut resp = self
            .agent
            .post(&url)
            .send_form([
                ("grant_type", "client_credentials"),
                ("client_id", e.client_id.as_str()),
                ("client_secret", e.client_secret.as_str()),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .map_err(http_failure)?;
        if !resp.status().is_success() {
            return Err(format!(
                "the Entra token endpoint answered {}",
                resp.status().as_u16()
            ));
        }
        let body: Json = resp
            .body_mut()
            .read_json()
            .map_err(|e| format!("the Entra token answer is unreadable: {e}"))?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "the Entra token answer has no access_token".to_owned())
    }

    fn call(&self, c: &HttpCall) -> (StepOutcome, Option<String>) {
        let (base, auth) = match c.provider {
            Provider::Okta => match &self.okta {
                Some(o) => (o.url.clone(), format!("SSWS {}", o.token)),
                None => return not_configured("Okta", config::vars::OKTA_URL),
            },
            Provider::Entra => match &self.entra {
                Some(e) => match self.entra_token(e) {
                    Ok(t) => (e.graph_url.clone(), format!("Bearer {t}")),
                    Err(why) => return (StepOutcome::Failed, Some(why)),
                },
                None => return not_configured("Entra", config::vars::ENTRA_TENANT),
            },
            Provider::Gworkspace => match &self.google {
                Some(g) => (g.url.clone(), format!("Bearer {}", g.token)),
                None => return not_configured("Google", config::vars::GOOGLE_TOKEN),
            },
        };
        let url = format!("{base}{}", c.path);
        let body = c.body.clone().unwrap_or(Json::Null);
        let sent = match c.method.as_str() {
            "DELETE" => self
                .agent
                .delete(&url)
                .header("Authorization", &auth)
                .header("Accept", "application/json")
                .call(),
            "POST" if c.body.is_none() => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Accept", "application/json")
                .send_empty(),
            "POST" => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .send_json(&body),
            "PATCH" => self
                .agent
                .patch(&url)
                .header("Authorization", &auth)
                .send_json(&body),
            "PUT" => self
                .agent
                .put(&url)
                .header("Authorization", &auth)
                .send_json(&body),
            other => {
                return (
                    StepOutcome::Failed,
                    Some(format!("unsupported method {other}")),
                );
            }
        };
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return (StepOutcome::Failed, Some(http_failure(e))),
        };
        let status = resp.status().as_u16();
        match status {
            200..=299 => (StepOutcome::Done, Some(format!("HTTP {status}"))),
            404 if c.method == "DELETE" => (
                StepOutcome::AlreadyDone,
                Some("HTTP 404: the grant is already gone".into()),
            ),
            _ => {
                let text = resp.body_mut().read_to_string().unwrap_or_default();
                let text: String = text.chars().take(300).collect();
                (StepOutcome::Failed, Some(format!("HTTP {status}: {text}")))
            }
        }
    }
}

fn not_configured(provider: &str, var: &str) -> (StepOutcome, Option<String>) {
    (
        StepOutcome::Failed,
        Some(format!("{provider} is not configured ({var})")),
    )
}

/// Why the function's own AWS account is unknown.
#[derive(Debug, thiserror::Error)]
pub enum OwnAccountError {
    #[error("STS GetCallerIdentity failed")]
    Sts(
        #[source]
        Box<
            aws_sdk_sts::error::SdkError<
                aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityError,
            >,
        >,
    ),
    #[error("STS GetCallerIdentity answered without an account")]
    NoAccount,
}

/// The AWS account this function's credentials act in: STS `GetCallerIdentity`, asked when an
/// IAM plan first needs it and kept for the container's life (clones share the answer; a failed
/// call is not kept, so the next request asks again).
#[derive(Debug, Clone)]
pub struct OwnAccount {
    sts: aws_sdk_sts::Client,
    known: Arc<std::sync::OnceLock<String>>,
}

impl OwnAccount {
    pub fn new(sts: aws_sdk_sts::Client) -> Self {
        OwnAccount {
            sts,
            known: Arc::default(),
        }
    }

    /// The account id (blocking: the first call waits on `rt` for STS).
    pub fn get(&self, rt: &Handle) -> Result<String, OwnAccountError> {
        if let Some(a) = self.known.get() {
            return Ok(a.clone());
        }
        let who = rt
            .block_on(self.sts.get_caller_identity().send())
            .map_err(|e| OwnAccountError::Sts(Box::new(e)))?;
        let account = who
            .account
            .filter(|a| !a.is_empty())
            .ok_or(OwnAccountError::NoAccount)?;
        Ok(self.known.get_or_init(|| account).clone())
    }
}

/// What the handler uses.
#[derive(Debug, Clone)]
pub struct Deps {
    pub store: Arc<DynamoDbStore>,
    pub iam: aws_sdk_iam::Client,
    /// The account the `iam` client's credentials act in.
    pub account: OwnAccount,
    /// The runtime the IAM calls run on (the handler's blocking task waits on it).
    pub rt: Handle,
    pub idp: Arc<Idp>,
    pub allow: Vec<String>,
    pub max_per_hour: u32,
    pub break_glass: Vec<String>,
    /// The time of a request (the wall clock in the function; fixed in tests).
    pub clock: fn() -> DateTime<Utc>,
}

/// Why the plan's IAM steps may not run with this function's credentials, if they may not: they
/// act in the plan's AWS account, and the credentials in the function's own.
fn foreign_account(deps: &Deps, plan: &Plan) -> Option<String> {
    if !plan.steps.iter().any(|s| matches!(s, Step::Iam { .. })) {
        return None;
    }
    let Some(account) = plan.account.as_deref() else {
        return Some(
            "not executed: the plan has IAM steps but names no AWS account to make them in".into(),
        );
    };
    let own = match deps.account.get(&deps.rt) {
        Ok(own) => own,
        Err(e) => {
            return Some(format!(
                "not executed: this function's own AWS account is unknown ({}); a new request \
                 asks again",
                chain(&e)
            ));
        }
    };
    (account != own).then(|| {
        format!(
            "not executed: the change was made in AWS account {account} and this function acts \
             in {own}; remediating another account needs a cross-account remediation role \
             there, which is not configured"
        )
    })
}

/// Whether the remedy or every step of the plan is allow-listed.
pub fn allowed(allow: &[String], plan: &Plan) -> bool {
    let listed = |op: &str| {
        allow.iter().any(|a| {
            a == "*"
                || a.eq_ignore_ascii_case(op)
                || a.strip_suffix(":*").is_some_and(|p| {
                    op.split_once(':')
                        .is_some_and(|(q, _)| q.eq_ignore_ascii_case(p))
                })
        })
    };
    listed(plan.remedy.as_str()) || plan.steps.iter().all(|s| listed(&s.operation()))
}

fn iam_error<E>(e: aws_sdk_iam::error::SdkError<E>) -> (StepOutcome, Option<String>)
where
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = e
        .as_service_error()
        .and_then(|s| s.code())
        .map(str::to_owned);
    if code.as_deref() == Some("NoSuchEntity") {
        return (
            StepOutcome::AlreadyDone,
            Some("NoSuchEntity: the grant is already gone".into()),
        );
    }
    (StepOutcome::Failed, Some(chain(&e)))
}

fn iam_call(deps: &Deps, call: &IamCall) -> (StepOutcome, Option<String>) {
    let iam = &deps.iam;
    let rt = &deps.rt;
    fn done<T>(_: T) -> (StepOutcome, Option<String>) {
        (StepOutcome::Done, None)
    }
    match call {
        IamCall::DetachUserPolicy {
            user_name,
            policy_arn,
        } => rt
            .block_on(
                iam.detach_user_policy()
                    .user_name(user_name)
                    .policy_arn(policy_arn)
                    .send(),
            )
            .map_or_else(iam_error, done),
        IamCall::DeleteUserPolicy {
            user_name,
            policy_name,
        } => rt
            .block_on(
                iam.delete_user_policy()
                    .user_name(user_name)
                    .policy_name(policy_name)
                    .send(),
            )
            .map_or_else(iam_error, done),
        IamCall::DetachGroupPolicy {
            group_name,
            policy_arn,
        } => rt
            .block_on(
                iam.detach_group_policy()
                    .group_name(group_name)
                    .policy_arn(policy_arn)
                    .send(),
            )
            .map_or_else(iam_error, done),
        IamCall::DeleteGroupPolicy {
            group_name,
            policy_name,
        } => rt
            .block_on(
                iam.delete_group_policy()
                    .group_name(group_name)
                    .policy_name(policy_name)
                    .send(),
            )
            .map_or_else(iam_error, done),
        IamCall::DetachRolePolicy {
            role_name,
            policy_arn,
        } => rt
            .block_on(
                iam.detach_role_policy()
                    .role_name(role_name)
                    .policy_arn(policy_arn)
                    .send(),
            )
            .map_or_else(iam_error, done),
        IamCall::DeleteRolePolicy {
            role_name,
            policy_name,
        } => rt
            .block_on(
                iam.delete_role_policy()
                    .role_name(role_name)
                    .policy_name(policy_name)
                    .send(),
            )
            .map_or_else(iam_error, done),
        IamCall::RemoveUserFromGroup {
            group_name,
            user_name,
        } => rt
            .block_on(
                iam.remove_user_from_group()
                    .group_name(group_name)
                    .user_name(user_name)
                    .send(),
            )
            .map_or_else(iam_error, done),
        IamCall::UpdateAccessKey {
            user_name,
            access_key_id,
            status,
        } => rt
            .block_on(
                iam.update_access_key()
                    .user_name(user_name)
                    .access_key_id(access_key_id)
                    .status(aws_sdk_iam::types::StatusType::from(status.as_str()))
                    .send(),
            )
            .map_or_else(iam_error, done),
        IamCall::DeleteLoginProfile { user_name } => rt
            .block_on(iam.delete_login_profile().user_name(user_name).send())
            .map_or_else(iam_error, done),
        IamCall::DeactivateAccessKeys { user_name } => {
            let keys = match rt.block_on(iam.list_access_keys().user_name(user_name).send()) {
                Ok(k) => k.access_key_metadata,
                Err(e) => return iam_error(e),
            };
            let mut deactivated = Vec::new();
            for k in keys {
                let (Some(id), Some(aws_sdk_iam::types::StatusType::Active)) =
                    (k.access_key_id, k.status)
                else {
                    continue;
                };
                if let Err(e) = rt.block_on(
                    iam.update_access_key()
                        .user_name(user_name)
                        .access_key_id(&id)
                        .status(aws_sdk_iam::types::StatusType::Inactive)
                        .send(),
                ) {
                    return iam_error(e);
                }
                deactivated.push(id);
            }
            (
                StepOutcome::Done,
                Some(format!("deactivated: [{}]", deactivated.join(", "))),
            )
        }
    }
}

fn execute(deps: &Deps, step: &Step) -> (StepOutcome, Option<String>) {
    match step {
        Step::Iam { call } => iam_call(deps, call),
        Step::Http { call } => deps.idp.call(call),
        Step::SsoAdmin { .. } | Step::Manual { .. } => (
            StepOutcome::Failed,
            Some("this step is never executed automatically".into()),
        ),
    }
}

/// Parses the payload; a malformed request is answered, not retried.
pub fn parse(payload: Json) -> Result<Request, String> {
    let r: Request = serde_json::from_value(payload).map_err(|e| e.to_string())?;
    if r.event_id.trim().is_empty() {
        return Err("event_id is empty".into());
    }
    Ok(r)
}

/// Handles one request (see the crate docs).
pub async fn handle(deps: &Deps, event: LambdaEvent<Json>) -> Result<Report, Error> {
    let (payload, context) = event.into_parts();
    let deps = deps.clone();
    let report = tokio::task::spawn_blocking(move || remediate(&deps, payload)).await?;
    match &report {
        Ok(r) => {
            tracing::info!(request_id = %context.request_id, event_id = %r.event_id, action = ?r.action, dry_run = r.dry_run, status = ?r.status, earlier = r.earlier, requested_by = r.requested_by.as_deref().unwrap_or(""), message = %r.message, "remediation");
        }
        Err(e) => {
            tracing::error!(request_id = %context.request_id, error = %chain(e), "remediation failed");
        }
    }
    Ok(report?)
}

/// The whole request (blocking).
pub fn remediate(deps: &Deps, payload: Json) -> Result<Report, StoreError> {
    let at = (deps.clock)();
    let req = match parse(payload.clone()) {
        Ok(r) => r,
        Err(why) => {
            return Ok(Report {
                event_id: payload["event_id"]
                    .as_str()
                    .or(payload["alert_id"].as_str())
                    .unwrap_or_default()
                    .to_owned(),
                action: None,
                dry_run: true,
                status: Status::Invalid,
                message: format!("invalid request: {why}"),
                plan: None,
                steps: vec![],
                requested_by: None,
                reason: None,
                at,
                earlier: false,
            });
        }
    };
    let store = &deps.store;
    let mut report = Report {
        event_id: req.event_id.clone(),
        action: Some(req.action),
        dry_run: req.dry_run,
        status: Status::Planned,
        message: String::new(),
        plan: None,
        steps: vec![],
        requested_by: req.requested_by.clone(),
        reason: req.reason.clone(),
        at,
        earlier: false,
    };
    let audit = |kind: &str, outcome: &str, detail: &str| {
        store.audit_remediation(
            &req.event_id,
            at,
            &AuditEntry {
                at,
                kind: kind.to_owned(),
                action: Some(req.action),
                dry_run: req.dry_run,
                requested_by: req.requested_by.clone(),
                reason: req.reason.clone(),
                outcome: outcome.to_owned(),
                detail: detail.to_owned(),
            },
        )
    };
    // Ends the request with a status and a message, recorded in the audit trail.
    let conclude = |mut report: Report, status: Status, message: String| {
        report.status = status;
        report.message = message;
        audit("request", status_name(status), &report.message)?;
        Ok::<Report, StoreError>(report)
    };

    let Some(event) = store.event(&req.event_id)? else {
        let msg = format!("no stored event has id {}", req.event_id);
        return conclude(report, Status::NotFound, msg);
    };
    let plan = match remediate::plan(&event, req.action) {
        Ok(p) => p,
        Err(e) => return conclude(report, Status::Refused, e.to_string()),
    };
    report.plan = Some(plan.clone());
    if let Some(bg) = remediate::break_glass(&event, &deps.break_glass) {
        let msg = format!(
            "refused: {bg} is a break-glass account; remediate changes by or to it by hand"
        );
        return conclude(report, Status::Refused, msg);
    }
    let steps: Vec<String> = plan.steps.iter().map(Step::describe).collect();
    if req.dry_run {
        let msg = format!("dry run; the plan: {}", steps.join("; "));
        return conclude(report, Status::Planned, msg);
    }
    if let Some(RemediationState::Finished {
        failed: false,
        report: earlier,
    }) = store.remediation::<Report>(&req.event_id, req.action.as_str())?
    {
        audit("request", "repeat", "reported the earlier result")?;
        return Ok(Report {
            earlier: true,
            ..earlier
        });
    }
    if !plan.executable() {
        let msg = format!(
            "not executed: the plan has steps that are never executed automatically ({})",
            steps.join("; ")
        );
        return conclude(report, Status::PlanOnly, msg);
    }
    if let Some(why) = foreign_account(deps, &plan) {
        return conclude(report, Status::PlanOnly, why);
    }
    if !allowed(&deps.allow, &plan) {
        let ops: Vec<String> = plan.steps.iter().map(Step::operation).collect();
        let msg = format!(
            "not executed: neither {} nor {} is allow-listed ({})",
            req.action,
            ops.join(", "),
            config::vars::ALLOW
        );
        return conclude(report, Status::Refused, msg);
    }
    if deps.max_per_hour == 0 {
        let msg = format!(
            "not executed: {} is 0, so no remediation is carried out",
            config::vars::MAX_PER_HOUR
        );
        return conclude(report, Status::Refused, msg);
    }
    if let confirm::Gate::Stop(status, msg) = confirm::gate(deps, &req, &event, at, &audit)? {
        return conclude(report, status, msg);
    }
    match store.begin_remediation::<Report>(&req.event_id, req.action.as_str(), at)? {
        RemediationStart::Begun => {}
        RemediationStart::Existing(RemediationState::Finished {
            report: earlier, ..
        }) => {
            audit("request", "repeat", "reported the earlier result")?;
            return Ok(Report {
                earlier: true,
                ..earlier
            });
        }
        RemediationStart::Existing(RemediationState::Running) => {
            let msg = "another invocation is executing this remediation now".to_owned();
            return conclude(report, Status::InProgress, msg);
        }
    }
    if !store.take_remediation_slot(at, deps.max_per_hour)? {
        let msg = format!(
            "not executed: {} remediations already ran this hour ({})",
            deps.max_per_hour,
            config::vars::MAX_PER_HOUR
        );
        let report = conclude(report, Status::Refused, msg)?;
        // Recorded as failed, so the same request may run in a later hour.
        store.finish_remediation(&req.event_id, req.action.as_str(), true, &report, at)?;
        return Ok(report);
    }
    audit("request", "executing", &steps.join("; "))?;
    let mut failed = false;
    for step in &plan.steps {
        let (outcome, detail) = execute(deps, step);
        let result = StepResult {
            operation: step.operation(),
            description: step.describe(),
            outcome,
            detail,
        };
        audit(
            "step",
            match outcome {
                StepOutcome::Done => "done",
                StepOutcome::AlreadyDone => "already_done",
                StepOutcome::Failed => "failed",
            },
            &format!(
                "{}{}",
                result.description,
                result
                    .detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
        )?;
        report.steps.push(result);
        if outcome == StepOutcome::Failed {
            failed = true;
            break;
        }
    }
    report.status = if failed {
        Status::Failed
    } else {
        Status::Executed
    };
    report.message = if failed {
        format!(
            "a step failed after {} of {} steps; a new request retries",
            report.steps.len() - 1,
            plan.steps.len()
        )
    } else {
        format!("executed {} step(s)", plan.steps.len())
    };
    store.finish_remediation(&req.event_id, req.action.as_str(), failed, &report, at)?;
    audit("result", status_name(report.status), &report.message)?;
    Ok(report)
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Planned => "planned",
        Status::Executed => "executed",
        Status::Failed => "failed",
        Status::Refused => "refused",
        Status::AwaitingConfirmation => "awaiting_confirmation",
        Status::PlanOnly => "plan_only",
        Status::InProgress => "in_progress",
        Status::NotFound => "not_found",
        Status::Invalid => "invalid",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(ops: &[&str]) -> Plan {
        let event: provguard_core::Event = serde_json::from_value(serde_json::json!({
            "id": "e1", "source": "cloudtrail", "tenant": "1", "time": "2026-11-02T02:00:00Z",
            "action": "grant_role", "outcome": "success", "actor": {"kind": "human"},
            "target": {"id": "arn:aws:iam::1:user/bob", "kind": "unknown"},
            "entitlement": {"id": "arn:aws:iam::aws:policy/AdministratorAccess", "kind": "policy"},
            "channel": "console"
        }))
        .unwrap();
        let p = remediate::plan(&event, Remedy::Revert).unwrap();
        assert_eq!(p.steps.iter().map(Step::operation).collect::<Vec<_>>(), ops);
        p
    }

    #[test]
    fn the_allow_list_names_remedies_operations_or_providers() {
        let p = plan(&["iam:DetachUserPolicy"]);
        let list = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(!allowed(&[], &p), "empty: dry runs only");
        assert!(allowed(&list(&["revert"]), &p));
        assert!(allowed(&list(&["iam:DetachUserPolicy"]), &p));
        assert!(allowed(&list(&["IAM:*"]), &p));
        assert!(allowed(&list(&["*"]), &p));
        assert!(!allowed(&list(&["disable_account", "okta:*"]), &p));
    }

    #[test]
    fn requests_default_to_dry_run_and_accept_alert_ids() {
        let r = parse(serde_json::json!({"alert_id": "e1", "action": "revert"})).unwrap();
        assert_eq!(r.event_id, "e1");
        assert!(r.dry_run);
        assert!(
            parse(serde_json::json!({"event_id": "e1", "action": "delete_everything"})).is_err()
        );
        assert!(
            parse(serde_json::json!({"event_id": "e1", "action": "revert", "force": true}))
                .is_err()
        );
        assert!(parse(serde_json::json!({"event_id": " ", "action": "revert"})).is_err());
    }
}
