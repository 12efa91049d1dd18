//! The ingest Lambda: one function for both triggers.
//!
//! - **EventBridge** events: an "AWS API Call via CloudTrail" event is normalized as `cloudtrail`
//!   (the envelope and all); any other EventBridge event (e.g. Okta's log stream as a partner
//!   event source) has its `detail` normalized by the shape it has.
//! - **Function URL** requests: converted to a [`webhook::Request`] and routed by
//!   [`webhook::route`]: handshakes and rejections are answered directly; an authenticated body
//!   runs through the pipeline and the answer is 200 with the counts.
//!
//! Every alerting verdict is published to SNS through the publish guard (once per event across
//! retries). A re-delivered event (its commit reports a duplicate) is looked up, and its alert
//! is published if an earlier invocation stored it but failed before publishing.
//!
//! Errors: records that cannot be processed (malformed JSON, an unknown shape, a normalizer
//! error) are dead-lettered by the pipeline and the invocation succeeds; only failures that a
//! retry may cure (DynamoDB, SNS or Lambda unavailable) return `Err`, so an asynchronous
//! invocation is retried and then sent to the on-failure destination.
//!
//! The pipeline's ports are synchronous (`Handle::block_on` inside the DynamoDB store and the SNS
//! sink), so [`handle`] runs them in `tokio::task::spawn_blocking`.

pub mod config;
pub mod delivery;
pub mod metrics;

/// The AWS actions this function's code calls: DynamoDB (the pipeline's reads and commits,
/// publish claims, dead letters), SNS (alerts), SSM (webhook secrets given as `ssm:` references,
/// at cold start) and Lambda (starting a remediation when automatic remediation is on).
/// infra/template.yaml grants exactly these (and what the Lambda service itself needs for the
/// dead-letter queue and the encrypted topic); the integration tests check both.
pub const AWS_ACTIONS: &[&str] = &[
    "dynamodb:BatchGetItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:TransactWriteItems",
    "dynamodb:UpdateItem",
    "lambda:InvokeFunction",
    "sns:Publish",
    "ssm:GetParameter",
];

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use aws_lambda_events::http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use lambda_runtime::{Diagnostic, LambdaEvent};
use provguard_core::alert::{AlertError, AlertSink, PublishOutcome};
use provguard_core::error_chain as chain;
use provguard_core::normalize::{Normalized, split_input};
use provguard_core::store::dynamodb::{CONFIRMATION_WAIT_MINUTES, PendingConfirmation, RELEASE};
use provguard_core::store::{DynamoDbStore, StoreError, VerdictStore};
use provguard_core::verdict::Severity;
use provguard_core::webhook::{self, Outcome, WebhookSecrets};
use provguard_core::{Mode, Normalizer, Pipeline, Stats, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub use delivery::Delivery;
pub use metrics::{Counts, Emf};

/// What the ingest function is invoked with. Deserializing never fails on a JSON payload: a
/// payload of no known shape is [`IngestEvent::Unknown`] and is dead-lettered.
#[derive(Debug, Clone)]
pub enum IngestEvent {
    Http(Box<LambdaFunctionUrlRequest>),
    /// Shaped like an HTTP request (a `requestContext`, or headers with a body or path) but not
    /// a Function URL request this function can read: answered 400, never ingested as a record
    /// (it would be unauthenticated, and its `Authorization` header would be stored).
    BadHttp(String),
    EventBridge(Box<EventBridgeEvent<Json>>),
    Unknown(Json),
}

/// Whether a payload looks like an HTTP request of some kind.
fn http_shaped(v: &Json) -> bool {
    v.get("requestContext").is_some()
        || (v.get("headers").is_some_and(Json::is_object)
            && ["body", "rawPath", "path", "httpMethod", "routeKey"]
                .iter()
                .any(|k| v.get(k).is_some()))
}

impl<'de> Deserialize<'de> for IngestEvent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Json::deserialize(d)?;
        if http_shaped(&v) {
            return Ok(
                match serde_json::from_value::<LambdaFunctionUrlRequest>(v) {
                    Ok(r) if r.request_context.http.method.is_some() => {
                        IngestEvent::Http(Box::new(r))
                    }
                    Ok(_) => IngestEvent::BadHttp("the request has no HTTP method".into()),
                    Err(e) => IngestEvent::BadHttp(format!(
                        "not a Function URL request this function can read: {e}"
                    )),
                },
            );
        } else if v.get("detail-type").is_some() {
            if let Ok(e) = serde_json::from_value::<EventBridgeEvent<Json>>(v.clone()) {
                return Ok(IngestEvent::EventBridge(Box::new(e)));
            }
        }
        Ok(IngestEvent::Unknown(v))
    }
}

/// The counts of one EventBridge invocation (and the body of a Function URL answer).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub records: u64,
    pub events: u64,
    pub verdicts: u64,
    pub alerts: u64,
    /// Alerts this invocation sent to SNS (a retried one that went out before is not counted).
    pub published: u64,
    pub duplicates: u64,
    pub dropped: u64,
    pub dead_lettered: u64,
}

/// What the function answers: an HTTP response for a Function URL, the counts otherwise.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum IngestResponse {
    Http(LambdaFunctionUrlResponse),
    Summary(Summary),
}

/// Failures a retry may cure; everything else is dead-lettered and answered with `Ok`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("publishing an alert failed")]
    Alert(#[source] AlertError),
    #[error("invoking the remediate function failed")]
    Trigger(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    #[error("the blocking task failed")]
    Join(#[from] tokio::task::JoinError),
}

impl Error {
    fn kind(&self) -> &'static str {
        match self {
            Error::Store(_) => "StoreUnavailable",
            Error::Alert(_) => "AlertUnavailable",
            Error::Trigger(_) => "RemediateUnavailable",
            Error::Join(_) => "Internal",
        }
    }
}

impl From<Error> for Diagnostic {
    fn from(e: Error) -> Self {
        Diagnostic {
            error_type: e.kind().to_owned(),
            error_message: chain(&e),
        }
    }
}

/// Starts a remediation for an alert (the remediate function, invoked asynchronously).
pub trait RemediationTrigger: Send + Sync {
    fn trigger<'a>(
        &'a self,
        request: Json,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>>;
}

/// Invokes the remediate function with `InvocationType=Event` (returns once Lambda queued it).
#[derive(Debug, Clone)]
pub struct LambdaTrigger {
    client: aws_sdk_lambda::Client,
    function: String,
}

impl LambdaTrigger {
    pub fn new(client: aws_sdk_lambda::Client, function: impl Into<String>) -> Self {
        LambdaTrigger {
            client,
            function: function.into(),
        }
    }
}

impl RemediationTrigger for LambdaTrigger {
    fn trigger<'a>(
        &'a self,
        request: Json,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'a>> {
        Box::pin(async move {
            self.client
                .invoke()
                .function_name(&self.function)
                .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
                .payload(aws_sdk_lambda::primitives::Blob::new(request.to_string()))
                .send()
                .await
                .map_err(|e| Error::Trigger(Box::new(e)))?;
            Ok(())
        })
    }
}

struct AutoRemediate {
    trigger: Arc<dyn RemediationTrigger>,
    min: Severity,
}

struct Shared {
    pipeline: Mutex<Pipeline<DynamoDbStore>>,
    /// A second copy of the normalizers, used only to learn the event ids of a re-delivered
    /// record (the pipeline reports duplicates by count).
    ids: Mutex<Normalizer>,
    sink: Arc<dyn AlertSink + Send + Sync>,
    secrets: WebhookSecrets,
}

/// What the handler uses: the pipeline on DynamoDB, the alert sink, the webhook secrets, the
/// metrics emitter and, optionally, the automatic remediation trigger.
pub struct Deps {
    shared: Arc<Shared>,
    auto: Option<AutoRemediate>,
    metrics: Emf,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("routes", &self.shared.secrets.configured())
            .field("auto_remediate", &self.auto.as_ref().map(|a| a.min))
            .finish_non_exhaustive()
    }
}

impl Deps {
    /// Metrics go to standard output until [`Deps::with_metrics`] says otherwise.
    pub fn new(
        pipeline: Pipeline<DynamoDbStore>,
        sink: Arc<dyn AlertSink + Send + Sync>,
        secrets: WebhookSecrets,
    ) -> Self {
        let ids = pipeline.normalizer().clone();
        Deps {
            shared: Arc::new(Shared {
                pipeline: Mutex::new(pipeline),
                ids: Mutex::new(ids),
                sink,
                secrets,
            }),
            auto: None,
            metrics: Emf::stdout(),
        }
    }

    pub fn with_metrics(mut self, metrics: Emf) -> Self {
        self.metrics = metrics;
        self
    }

    /// Starts a remediation (`revert`, not a dry run) for every alert of at least `min`.
    pub fn with_auto_remediation(
        mut self,
        trigger: Arc<dyn RemediationTrigger>,
        min: Severity,
    ) -> Self {
        self.auto = Some(AutoRemediate { trigger, min });
        self
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What one run of the pipeline did.
struct Ran {
    stats: Stats,
    published: u64,
    /// Alerts handled in this invocation (published now or before), for auto-remediation.
    alerts: Vec<Verdict>,
}

/// Runs `bytes` through the pipeline, then publishes the alerts. Blocking: call it in
/// `spawn_blocking`.
fn run_pipeline(
    shared: &Shared,
    bytes: &[u8],
    source: Option<&str>,
    now: DateTime<Utc>,
    delivery: Delivery,
) -> Result<Ran, Error> {
    let mut pipeline = lock(&shared.pipeline);
    // Another instance may have written baselines or a rebaseline replaced them, and the
    // context may have been imported since the last invocation: start from the table.
    pipeline.refresh()?;
    // A webhook's events are held out of the baselines until their provider confirms them.
    pipeline.set_webhook_delivery(delivery == Delivery::Webhook);
    let mut stats = Stats::default();
    let mut alerts: Vec<Verdict> = Vec::new();
    let mut unconfirmed: Vec<String> = Vec::new();
    for piece in split_input(bytes) {
        let record = match piece {
            Ok(r) => r,
            Err(bad) => {
                let s = pipeline.process_piece(Err(bad), source, Mode::Score, now, &mut |_| {})?;
                stats.add(&s);
                continue;
            }
        };
        let mut scored: Vec<String> = Vec::new();
        let s = pipeline.process_record(&record, source, Mode::Score, now, &mut |v| {
            scored.push(v.event_id.clone());
            if v.alert {
                alerts.push(v.clone());
            }
            if v.awaits_confirmation() {
                unconfirmed.push(v.event_id.clone());
            }
        })?;
        if s.duplicates > 0 {
            // A re-delivery: an earlier invocation stored these events, and may have failed
            // before publishing their alerts. The guard tells which went out already.
            if let Normalized::Events(events) = lock(&shared.ids).normalize(&record, source, now) {
                for e in events.iter().filter(|e| !scored.contains(&e.id)) {
                    if let Some(v) = pipeline.store().verdict(&e.id)? {
                        if v.alert && !alerts.iter().any(|a| a.event_id == v.event_id) {
                            alerts.push(v);
                        }
                    }
                }
            }
        }
        stats.add(&s);
    }
    // The remediate function's sweep confirms each at its provider and releases it into the
    // baselines (the next rebaseline learns it); one never confirmed stays out.
    let until = provguard_core::time::after(
        now,
        provguard_core::time::minutes(CONFIRMATION_WAIT_MINUTES),
    );
    for id in unconfirmed {
        pipeline.store().await_confirmation(&PendingConfirmation {
            request: serde_json::json!({ "event_id": id }),
            event_id: id,
            remedy: RELEASE.to_owned(),
            until,
        })?;
    }
    drop(pipeline);
    let mut published = 0;
    let mut handled = Vec::with_capacity(alerts.len());
    for v in alerts {
        match shared.sink.publish(&v) {
            Ok(PublishOutcome::Published) => {
                published += 1;
                handled.push(v);
            }
            Ok(PublishOutcome::AlreadyPublished) => handled.push(v),
            Ok(PublishOutcome::NotAlert) => {}
            Err(e) if e.is_retryable() => return Err(Error::Alert(e)),
            Err(e) => {
                // Cannot ever be sent (e.g. too large even without history): the verdict stays
                // in the audit trail, and the log says why it did not page.
                tracing::error!(event_id = %v.event_id, error = %chain(&e), "alert cannot be published");
            }
        }
    }
    Ok(Ran {
        stats,
        published,
        alerts: handled,
    })
}

async fn ingest(
    deps: &Deps,
    bytes: Vec<u8>,
    source: Option<String>,
    now: DateTime<Utc>,
    delivery: Delivery,
) -> Result<Ran, Error> {
    let shared = Arc::clone(&deps.shared);
    let ran = tokio::task::spawn_blocking(move || {
        run_pipeline(&shared, &bytes, source.as_deref(), now, delivery)
    })
    .await??;
    if let Some(auto) = &deps.auto {
        for v in ran.alerts.iter().filter(|v| v.severity >= auto.min) {
            let request = serde_json::json!({
                "event_id": v.event_id,
                "action": "revert",
                "dry_run": false,
                "reason": format!("automatic: {} alert (score {})", v.severity, v.score),
                "requested_by": "provguard-ingest",
                // Executed only once the change is confirmed at its provider; for CloudTrail
                // events, by how they arrived (see `delivery`).
                "automatic": true,
                "delivery": delivery.as_str(),
            });
            auto.trigger.trigger(request).await?;
            tracing::info!(event_id = %v.event_id, severity = %v.severity, "remediation requested");
        }
    }
    Ok(ran)
}

fn summary(ran: &Ran) -> Summary {
    let s = &ran.stats;
    Summary {
        records: s.records,
        events: s.events,
        verdicts: s.verdicts,
        alerts: s.alerts,
        published: ran.published,
        duplicates: s.duplicates,
        dropped: s.dropped,
        dead_lettered: s.dead_lettered,
    }
}

fn http_response(status: u16, content_type: &str, body: String) -> LambdaFunctionUrlResponse {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, v);
    }
    for (name, value) in webhook::RESPONSE_HEADERS {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = i64::from(status);
    r.headers = headers;
    r.body = Some(body);
    r
}

/// A Function URL request as the webhook routes see it.
pub fn to_webhook_request(r: &LambdaFunctionUrlRequest) -> Result<webhook::Request, String> {
    let body = match (&r.body, r.is_base64_encoded) {
        (None, _) => Vec::new(),
        (Some(b), false) => b.clone().into_bytes(),
        (Some(b), true) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .map_err(|e| format!("the body is not valid base64: {e}"))?,
    };
    Ok(webhook::Request {
        method: r
            .request_context
            .http
            .method
            .clone()
            .unwrap_or_else(|| "GET".into()),
        path: r
            .raw_path
            .clone()
            .or_else(|| r.request_context.http.path.clone())
            .unwrap_or_else(|| "/".into()),
        headers: r
            .headers
            .iter()
            .filter_map(|(k, v)| {
                Some((k.as_str().to_ascii_lowercase(), v.to_str().ok()?.to_owned()))
            })
            .collect(),
        query: r.query_string_parameters.clone(),
        body,
    })
}

/// When a request or event happened (the time the pipeline stores as ingest time), else now.
fn received_at(epoch_ms: Option<i64>, time: Option<DateTime<Utc>>) -> DateTime<Utc> {
    epoch_ms
        .filter(|ms| *ms > 0)
        .and_then(DateTime::from_timestamp_millis)
        .or(time)
        .unwrap_or_else(Utc::now)
}

/// Handles one invocation (see the crate docs). Emits one metrics line per invocation.
pub async fn handle(deps: &Deps, event: LambdaEvent<IngestEvent>) -> Result<IngestResponse, Error> {
    let started = Instant::now();
    let (payload, context) = event.into_parts();
    let trigger = match &payload {
        IngestEvent::Http(_) | IngestEvent::BadHttp(_) => "http",
        IngestEvent::EventBridge(_) => "eventbridge",
        IngestEvent::Unknown(_) => "unknown",
    };
    let result = dispatch(deps, payload).await;
    let mut counts = Counts {
        latency_ms: started.elapsed().as_millis() as u64,
        ..Counts::default()
    };
    match &result {
        Ok((_, Some(s))) => {
            counts.events = s.events;
            counts.dropped = s.dropped;
            counts.dead_lettered = s.dead_lettered;
            counts.alerts = s.alerts;
            tracing::info!(request_id = %context.request_id, trigger, events = s.events, alerts = s.alerts, published = s.published, duplicates = s.duplicates, dropped = s.dropped, dead_lettered = s.dead_lettered, "ingested");
        }
        Ok((_, None)) => {}
        Err(e) => {
            tracing::error!(request_id = %context.request_id, trigger, error = %chain(e), "ingest failed; the invocation will be retried");
        }
    }
    deps.metrics.emit(trigger, &counts);
    result.map(|(r, _)| r)
}

async fn dispatch(
    deps: &Deps,
    payload: IngestEvent,
) -> Result<(IngestResponse, Option<Summary>), Error> {
    match payload {
        IngestEvent::EventBridge(e) => {
            let now = received_at(None, e.time);
            let (bytes, source) = if e.detail_type.ends_with("via CloudTrail") {
                // The CloudTrail normalizer takes the envelope (it reads the account from it).
                (
                    serde_json::to_vec(&e).unwrap_or_default(),
                    Some("cloudtrail"),
                )
            } else {
                (serde_json::to_vec(&e.detail).unwrap_or_default(), None)
            };
            let delivery = Delivery::of_eventbridge(&e.source);
            let ran = ingest(deps, bytes, source.map(str::to_owned), now, delivery).await?;
            let s = summary(&ran);
            Ok((IngestResponse::Summary(s), Some(s)))
        }
        IngestEvent::Unknown(v) => {
            // Neither a Function URL request nor an EventBridge event: kept for replay.
            let ran = ingest(
                deps,
                serde_json::to_vec(&v).unwrap_or_default(),
                None,
                Utc::now(),
                Delivery::Direct,
            )
            .await?;
            let s = summary(&ran);
            Ok((IngestResponse::Summary(s), Some(s)))
        }
        IngestEvent::BadHttp(why) => {
            // Nothing of the payload is logged or stored: it may carry credentials.
            tracing::warn!(%why, "malformed HTTP request refused");
            let body = serde_json::json!({ "message": format!("bad request: {why}") }).to_string();
            Ok((
                IngestResponse::Http(http_response(400, "application/json", body)),
                None,
            ))
        }
        IngestEvent::Http(r) => {
            let now = received_at(Some(r.request_context.time_epoch), None);
            let req = match to_webhook_request(&r) {
                Ok(req) => req,
                Err(why) => {
                    let body = serde_json::json!({ "message": why }).to_string();
                    return Ok((
                        IngestResponse::Http(http_response(400, "application/json", body)),
                        None,
                    ));
                }
            };
            match webhook::route(&req, &deps.shared.secrets, now) {
                Outcome::Respond {
                    status,
                    content_type,
                    body,
                } => {
                    tracing::info!(path = %req.path, status, "webhook answered");
                    Ok((
                        IngestResponse::Http(http_response(status, content_type, body)),
                        None,
                    ))
                }
                Outcome::Ingest { source, body } => {
                    let known = lock(&deps.shared.ids).has_source(&source);
                    if !known {
                        let body =
                            serde_json::json!({"message": format!("no mapping named {source}")})
                                .to_string();
                        return Ok((
                            IngestResponse::Http(http_response(404, "application/json", body)),
                            None,
                        ));
                    }
                    // A signed request is processed once: its signature is claimed (a
                    // conditional put) before processing, so the same request sent again, or
                    // twice at once, inside its window is refused; the claim is given back if
                    // processing fails, so the sender's retry is not refused.
                    let claim = webhook::replay_claim(&req, &deps.shared.secrets);
                    if let Some((k, until)) = claim.clone() {
                        let shared = Arc::clone(&deps.shared);
                        let claimed = tokio::task::spawn_blocking(move || {
                            lock(&shared.pipeline).store().claim_replay(&k, until, now)
                        })
                        .await??;
                        if !claimed {
                            tracing::warn!(path = %req.path, "replayed signed request refused");
                            let Outcome::Respond {
                                status,
                                content_type,
                                body,
                            } = webhook::replayed()
                            else {
                                unreachable!("replayed() is an answer")
                            };
                            return Ok((
                                IngestResponse::Http(http_response(status, content_type, body)),
                                None,
                            ));
                        }
                    }
                    let ran = match ingest(deps, body, Some(source), now, Delivery::Webhook).await {
                        Ok(ran) => ran,
                        Err(e) => {
                            if let Some((k, _)) = claim {
                                let shared = Arc::clone(&deps.shared);
                                let released = tokio::task::spawn_blocking(move || {
                                    lock(&shared.pipeline).store().release_replay(&k)
                                })
                                .await;
                                if !matches!(released, Ok(Ok(()))) {
                                    tracing::warn!(path = %req.path, "a replay claim could not be released; the sender's retry with the same signature will be refused");
                                }
                            }
                            return Err(e);
                        }
                    };
                    let s = summary(&ran);
                    let body = serde_json::to_string(&s).unwrap_or_default();
                    Ok((
                        IngestResponse::Http(http_response(200, "application/json", body)),
                        Some(s),
                    ))
                }
            }
        }
    }
}

/// The normalizers of a configuration: the bundled ones plus its `[mappings]` (read from the
/// deployment package). Compiled once, at cold start; a program that does not compile stops it.
pub fn normalizer(
    cfg: &provguard_core::Config,
) -> Result<Normalizer, Box<dyn std::error::Error + Send + Sync>> {
    let mut mappings = Vec::new();
    for (name, path) in &cfg.mappings {
        let src = std::fs::read_to_string(path)
            .map_err(|e| format!("mapping {name}: cannot read {}: {e}", path.display()))?;
        mappings.push((name.clone(), src));
    }
    Ok(Normalizer::new(&mappings, cfg.privileges.clone())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_told_apart_by_shape() {
        let url: IngestEvent = serde_json::from_value(serde_json::json!({
            "version": "2.0", "rawPath": "/okta", "rawQueryString": "",
            "headers": {"authorization": "s"}, "isBase64Encoded": true, "body": "e30=",
            "requestContext": {"http": {"method": "POST", "path": "/okta"}, "timeEpoch": 1762048800000i64}
        }))
        .unwrap();
        let IngestEvent::Http(r) = url else { panic!() };
        let req = to_webhook_request(&r).unwrap();
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/okta"));
        assert_eq!(req.header("Authorization"), Some("s"));
        assert_eq!(req.body, b"{}");
        assert_eq!(
            received_at(Some(r.request_context.time_epoch), None),
            "2025-11-02T02:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );

        let eb: IngestEvent = serde_json::from_value(serde_json::json!({
            "detail-type": "AWS API Call via CloudTrail", "source": "aws.iam",
            "time": "2026-11-02T02:00:00Z", "detail": {"eventName": "AttachUserPolicy"}
        }))
        .unwrap();
        assert!(matches!(eb, IngestEvent::EventBridge(_)));
        let other: IngestEvent = serde_json::from_value(serde_json::json!([1, 2])).unwrap();
        assert!(matches!(other, IngestEvent::Unknown(_)));
    }

    #[test]
    fn errors_map_to_a_typed_diagnostic_with_the_chain() {
        let e = Error::Trigger(Box::new(std::io::Error::other("throttled")));
        let d = Diagnostic::from(e);
        assert_eq!(d.error_type, "RemediateUnavailable");
        assert_eq!(
            d.error_message,
            "invoking the remediate function failed: throttled"
        );
    }
}
