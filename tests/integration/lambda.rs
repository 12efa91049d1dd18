//! The Lambda functions through their real handler entry points, on moto over the wire: ingest
//! (EventBridge CloudTrail events and Function URL webhooks) on DynamoDB with alerts to SNS and on
//! to SQS subscribers; rebaseline (paged, resumable); remediate (dry-run plans, IAM calls executed
//! against moto's IAM, Okta, Microsoft Graph and Google Admin calls against a local HTTP server
//! that checks each request). One test runs the built ingest binary under `cargo lambda watch`.
//!
//! Skipped like the other AWS tests when moto is not reachable and `PROVGUARD_REQUIRE_AWS` is not
//! `1`; the `cargo lambda` test is skipped when it is not installed unless
//! `PROVGUARD_REQUIRE_CARGO_LAMBDA=1` (as `scripts/test` sets it after installing it).

use std::collections::BTreeSet;
use std::io::Write;
use std::os::unix::process::CommandExt as _;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use lambda_runtime::{Context, LambdaEvent};
use provguard_core::alert::SnsSink;
use provguard_core::context;
use provguard_core::detect::DetectConfig;
use provguard_core::event::Event;
use provguard_core::store::dynamodb::create_table;
use provguard_core::store::memory::MemoryStore;
use provguard_core::store::{
    BaselineStore, Commit, ContextImport, ContextStore, DeadLetterStore, DynamoDbStore, EventStore,
    Ledger, VerdictStore,
};
use provguard_core::verdict::Severity;
use provguard_core::webhook::WebhookSecrets;
use provguard_core::{Mode, Pipeline};
use provguard_ingest::{Deps as IngestDeps, Emf, IngestEvent, IngestResponse, Summary};
use provguard_remediate::config::{Entra, Google, Okta};
use provguard_remediate::{Idp, Report, Status, StepOutcome};
use serde_json::{Value, json};

use crate::aws::{
    Calls, Moto, dynamodb, moto, operation, published_message, receive, t, topic_with_queues,
    unique,
};
use crate::remediate::{DEMO_ACCOUNT, InAccount, iam_in};
use crate::support::{normalizer, root};

/// The demo organisation's CloudTrail history ends here.
pub(crate) const HISTORY_END: &str = "2026-11-02T00:00:00Z";
/// The event of samples/invoke/eventbridge-attach-admin-2am.json.
pub(crate) const ADMIN_AT_2AM: &str = "e1a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8";
const MEGAN: &str = "megan.shaw@acmerocket.example";
const ADMIN_POLICY: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

/// moto with a fresh table.
pub(crate) struct Aws {
    pub(crate) m: Moto,
    pub(crate) ddb: aws_sdk_dynamodb::Client,
    pub(crate) table: String,
    /// What each function's clients called.
    called: Functions,
}

/// The AWS actions each function's clients called during a test, checked against what the
/// function declares (`AWS_ACTIONS`) and what infra/template.yaml grants it.
#[derive(Debug, Default)]
struct Functions {
    ingest: Called,
    rebaseline: Called,
    remediate: Called,
}

/// The IAM actions of the requests a client sent (`dynamodb:PutItem`, `iam:DetachUserPolicy`).
#[derive(Debug, Clone, Default)]
struct Called(Arc<Mutex<BTreeSet<String>>>);

#[derive(Debug)]
struct Recorder {
    service: &'static str,
    called: Called,
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "provguard-tests-actions"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = operation(ctx.request());
        self.called
            .0
            .lock()
            .unwrap()
            .insert(format!("{}:{op}", self.service));
        Ok(())
    }
}

impl Called {
    fn recorder(&self, service: &'static str) -> Recorder {
        Recorder {
            service,
            called: self.clone(),
        }
    }

    fn actions(&self) -> BTreeSet<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Aws {
    pub(crate) fn new() -> Option<Aws> {
        Some(Aws::on(moto()?))
    }

    /// A fresh table on the moto server `m` reaches.
    pub(crate) fn on(m: Moto) -> Aws {
        let ddb = dynamodb(&m, None);
        let table = unique("table");
        assert!(m.rt.block_on(create_table(&ddb, &table)).unwrap());
        Aws {
            m,
            ddb,
            table,
            called: Functions::default(),
        }
    }

    /// A store on the table (the functions each hold their own).
    pub(crate) fn store(&self) -> DynamoDbStore {
        DynamoDbStore::new(
            self.ddb.clone(),
            self.table.clone(),
            self.m.rt.handle().clone(),
        )
    }

    /// A store on the table whose calls are recorded as a function's.
    fn store_of(&self, function: &Called) -> DynamoDbStore {
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&self.m.config)
                .interceptor(function.recorder("dynamodb"))
                .build(),
        );
        DynamoDbStore::new(client, self.table.clone(), self.m.rt.handle().clone())
    }

    /// Every action a function called is one it declares and the template grants it.
    pub(crate) fn assert_least_privilege(&self) {
        for (logical_id, declared, called) in [
            (
                "IngestFunction",
                provguard_ingest::AWS_ACTIONS,
                &self.called.ingest,
            ),
            (
                "RebaselineFunction",
                provguard_rebaseline::AWS_ACTIONS,
                &self.called.rebaseline,
            ),
            (
                "RemediateFunction",
                provguard_remediate::AWS_ACTIONS,
                &self.called.remediate,
            ),
        ] {
            let granted = crate::infra::Template::load().code_actions(logical_id);
            for action in called.actions() {
                assert!(
                    declared.contains(&action.as_str()),
                    "{logical_id} called {action}, which its AWS_ACTIONS does not declare"
                );
                assert!(
                    granted.contains(&action),
                    "{logical_id} called {action}, which infra/template.yaml does not grant it"
                );
            }
        }
    }

    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.m.rt.block_on(f)
    }
}

pub(crate) fn invoke_sample(name: &str) -> Value {
    let path = root().join("samples/invoke").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn demo_context() -> ContextImport {
    let dir = root().join("samples/demo/context");
    let open = |f: &str| std::io::BufReader::new(std::fs::File::open(dir.join(f)).unwrap());
    ContextImport {
        people: Some(context::read_directory("directory.csv", open("directory.csv")).unwrap()),
        approvals: Some(context::read_jsonl("approvals.jsonl", open("approvals.jsonl")).unwrap()),
        change_windows: Some(
            context::read_jsonl("change_windows.jsonl", open("change_windows.jsonl")).unwrap(),
        ),
        domains: Some(context::read_domains(open("domains.txt")).unwrap()),
    }
}

/// The demo organisation's CloudTrail history (its first `limit` records).
pub(crate) fn demo_cloudtrail(limit: usize) -> Vec<u8> {
    let bytes = std::fs::read(root().join("samples/demo/history/cloudtrail.json.gz")).unwrap();
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut json).unwrap();
    let mut log: Value = serde_json::from_slice(&json).unwrap();
    log["Records"].as_array_mut().unwrap().truncate(limit);
    serde_json::to_vec(&log).unwrap()
}

/// The demo organisation's context and the baselines of its CloudTrail history, learned as
/// `provguard learn` would (in memory, then written to the table in one go: learning event by
/// event against moto would only be slow).
pub(crate) fn seed_demo_baselines(a: &Aws) {
    let s = a.store();
    s.import_context(&demo_context()).unwrap();
    let mem = MemoryStore::new();
    mem.import_context(&demo_context()).unwrap();
    let mut p = Pipeline::new(mem, normalizer(), DetectConfig::default()).unwrap();
    let stats = p
        .process_bytes(
            &demo_cloudtrail(usize::MAX),
            None,
            Mode::Learn,
            t(HISTORY_END),
            &mut |_| {},
        )
        .unwrap();
    assert!(stats.events > 400 && stats.dead_lettered == 0, "{stats:?}");
    s.replace_baselines(&p.store().all_baselines()).unwrap();
}

/// Captures what the ingest function writes as EMF metrics.
#[derive(Clone, Default)]
pub(crate) struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap()))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

/// The ingest function's dependencies as its `main` wires them, on moto; SNS calls recorded.
pub(crate) fn ingest_deps(
    a: &Aws,
    topic: &str,
    calls: &Calls,
    secrets: WebhookSecrets,
) -> (IngestDeps, Buffer) {
    let sns = aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(&a.m.config)
            .interceptor(calls.clone())
            .interceptor(a.called.ingest.recorder("sns"))
            .build(),
    );
    let sink = SnsSink::new(
        sns,
        topic,
        a.m.rt.handle().clone(),
        a.store_of(&a.called.ingest),
    );
    let pipeline = Pipeline::new(
        a.store_of(&a.called.ingest),
        normalizer(),
        DetectConfig::default(),
    )
    .unwrap();
    let metrics = Buffer::default();
    let deps =
        IngestDeps::new(pipeline, Arc::new(sink), secrets).with_metrics(Emf::new(metrics.clone()));
    (deps, metrics)
}

/// Records the remediation requests ingest makes.
#[derive(Clone, Default)]
pub(crate) struct Requests(pub(crate) Arc<Mutex<Vec<Value>>>);

impl provguard_ingest::RemediationTrigger for Requests {
    fn trigger<'a>(
        &'a self,
        request: Value,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), provguard_ingest::Error>> + Send + 'a>,
    > {
        self.0.lock().unwrap().push(request);
        Box::pin(async { Ok(()) })
    }
}

pub(crate) fn ingest(a: &Aws, deps: &IngestDeps, payload: Value) -> IngestResponse {
    let event: IngestEvent = serde_json::from_value(payload).unwrap();
    a.block_on(provguard_ingest::handle(
        deps,
        LambdaEvent::new(event, Context::default()),
    ))
    .unwrap()
}

pub(crate) fn summary(r: IngestResponse) -> Summary {
    match r {
        IngestResponse::Summary(s) => s,
        IngestResponse::Http(h) => panic!("an HTTP answer: {h:?}"),
    }
}

pub(crate) fn http(r: IngestResponse) -> (i64, Value) {
    match r {
        IngestResponse::Http(h) => {
            let body = h.body.unwrap_or_default();
            let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
            (h.status_code, v)
        }
        IngestResponse::Summary(s) => panic!("a summary: {s:?}"),
    }
}

/// Asserts a webhook answer stored and scored one event; returns its target's e-mail.
fn scored_once(a: &Aws, (status, body): (i64, Value), event_id: &str) -> Option<String> {
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["events"].as_u64(), body["verdicts"].as_u64()),
        (Some(1), Some(1)),
        "{body}"
    );
    assert!(a.store().verdict(event_id).unwrap().is_some());
    let e = a.store().event(event_id).unwrap();
    e.expect("the event is stored").target.email
}

/// The remediate function's dependencies, acting in the demo organisation's AWS account (where
/// the samples' CloudTrail events were made).
pub(crate) fn remediate_deps(a: &Aws, allow: &[&str], idp: Idp) -> provguard_remediate::Deps {
    remediate_deps_in(a, Some(DEMO_ACCOUNT), allow, idp)
}

/// The remediate function's dependencies with credentials acting in `account` of moto (`None`:
/// moto's default account).
pub(crate) fn remediate_deps_in(
    a: &Aws,
    account: Option<&'static str>,
    allow: &[&str],
    idp: Idp,
) -> provguard_remediate::Deps {
    provguard_remediate::Deps {
        store: Arc::new(a.store_of(&a.called.remediate)),
        iam: aws_sdk_iam::Client::from_conf(
            aws_sdk_iam::config::Builder::from(&a.m.config)
                .interceptor(a.called.remediate.recorder("iam"))
                .interceptor(InAccount(account))
                .build(),
        ),
        account: provguard_remediate::OwnAccount::new(aws_sdk_sts::Client::from_conf(
            aws_sdk_sts::config::Builder::from(&a.m.config)
                .interceptor(a.called.remediate.recorder("sts"))
                .interceptor(InAccount(account))
                .build(),
        )),
        rt: a.m.rt.handle().clone(),
        idp: Arc::new(idp),
        allow: allow.iter().map(|s| (*s).to_owned()).collect(),
        max_per_hour: 10,
        break_glass: vec!["breakglass@acmerocket.example".into()],
        clock: || "2026-11-03T09:00:00Z".parse().unwrap(),
    }
}

pub(crate) fn remediate(a: &Aws, deps: &provguard_remediate::Deps, request: Value) -> Report {
    a.block_on(provguard_remediate::handle(
        deps,
        LambdaEvent::new(request, Context::default()),
    ))
    .unwrap()
}

pub(crate) fn attached_policies(a: &Aws, iam: &aws_sdk_iam::Client, user: &str) -> Vec<String> {
    a.block_on(iam.list_attached_user_policies().user_name(user).send())
        .unwrap()
        .attached_policies
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.policy_arn)
        .collect()
}

#[test]
fn an_admin_grant_at_2am_alerts_once_reaches_the_paging_queue_and_is_reverted() {
    let Some(a) = Aws::new() else { return };
    seed_demo_baselines(&a);
    let (topic, queues) = topic_with_queues(
        &a.m,
        &[
            ("all", None),
            ("paging", Some(r#"{"severity":["high","critical"]}"#)),
        ],
    );
    let calls = Calls::default();
    let (deps, metrics) = ingest_deps(&a, &topic, &calls, WebhookSecrets::default());
    // Automatic remediation for high alerts: the requests ingest would send the remediate
    // function (asynchronous Lambda invocations) are recorded.
    let requested = Requests::default();
    let deps = deps.with_auto_remediation(Arc::new(requested.clone()), Severity::High);
    let payload = invoke_sample("eventbridge-attach-admin-2am.json");

    calls.clear();
    let s = summary(ingest(&a, &deps, payload.clone()));
    assert_eq!(
        (s.records, s.events, s.verdicts, s.alerts, s.published),
        (1, 1, 1, 1, 1),
        "{s:?}"
    );
    assert_eq!(calls.take(), ["Publish"], "one Publish");

    // The verdict row in DynamoDB: an admin grant at 02:00 Berlin time, to Sales, unapproved.
    let v = a
        .store()
        .verdict(ADMIN_AT_2AM)
        .unwrap()
        .expect("a verdict row");
    assert!(v.alert && v.severity >= Severity::High, "{v:#?}");
    let codes: Vec<&str> = v.reasons.iter().map(|r| r.code.as_str()).collect();
    for code in [
        "off_hours",
        "missing_approval",
        "rare_entitlement_for_department",
    ] {
        assert!(codes.contains(&code), "{code} missing: {v:#?}");
    }
    assert_eq!(v.target, MEGAN);
    assert_eq!(v.entitlement.as_deref(), Some("AdministratorAccess"));

    // Exactly one message, delivered to both subscribers; the paging one filters on severity.
    let paging = receive(
        &a.m,
        &aws_sdk_sqs::Client::new(&a.m.config),
        &queues["paging"],
        2,
        3,
    );
    let all = receive(
        &a.m,
        &aws_sdk_sqs::Client::new(&a.m.config),
        &queues["all"],
        2,
        3,
    );
    assert_eq!((paging.len(), all.len()), (1, 1));
    let delivered: Value = serde_json::from_str(paging[0]["Message"].as_str().unwrap()).unwrap();
    assert_eq!(delivered["event_id"], ADMIN_AT_2AM);
    assert_eq!(
        paging[0]["MessageAttributes"]["severity"]["Value"],
        v.severity.to_string()
    );

    // What was published carries a readable e-mail and a Slack (AWS Chatbot) body.
    let body = calls.bodies.lock().unwrap().first().cloned().unwrap();
    let doc: Value = serde_json::from_str(&published_message(&body).unwrap()).unwrap();
    let email = doc["email"].as_str().unwrap();
    for needle in [
        MEGAN,
        "AdministratorAccess",
        "off_hours",
        "anna.schmidt@acmerocket.example",
    ] {
        assert!(
            email.contains(needle),
            "{needle} not in the e-mail:\n{email}"
        );
    }
    let chat: Value = serde_json::from_str(doc["https"].as_str().unwrap()).unwrap();
    assert_eq!(chat["version"], "1.0");
    let title = chat["content"]["title"].as_str().unwrap();
    let description = chat["content"]["description"].as_str().unwrap();
    assert!(title.contains("AdministratorAccess") || description.contains("AdministratorAccess"));
    assert!(description.contains("off_hours"), "{description}");

    // One EMF line per invocation with the counts.
    let emf = metrics.lines();
    assert_eq!(emf.len(), 1);
    assert_eq!(
        (emf[0]["Events"].as_u64(), emf[0]["Alerts"].as_u64()),
        (Some(1), Some(1)),
        "{}",
        emf[0]
    );
    assert_eq!(
        emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "provguard"
    );

    // Replaying the same event changes nothing: no second verdict, no second message.
    let again = summary(ingest(&a, &deps, payload));
    assert_eq!(
        (again.duplicates, again.published, again.verdicts),
        (1, 0, 0),
        "{again:?}"
    );
    assert!(calls.take().is_empty(), "no Publish on a replay");
    // The remediation request went out with the alert; a replay may ask again (the remediate
    // function is idempotent on event and remedy), never for another event.
    let asked = requested.0.lock().unwrap().clone();
    assert!(!asked.is_empty() && asked.len() <= 2, "{asked:?}");
    for r in &asked {
        assert_eq!(
            (&r["event_id"], &r["action"], &r["dry_run"]),
            (&json!(ADMIN_AT_2AM), &json!("revert"), &json!(false))
        );
    }
    assert_eq!(a.store().verdict(ADMIN_AT_2AM).unwrap().unwrap(), v);
    let sqs = aws_sdk_sqs::Client::new(&a.m.config);
    assert!(receive(&a.m, &sqs, &queues["all"], 1, 2).is_empty());

    // Remediation: moto's IAM holds the grant the event describes, in the account it was made in
    // (IAM is account-wide: the user may be left from an earlier run against the same moto).
    let iam = iam_in(&a, Some(DEMO_ACCOUNT));
    if let Err(e) = a.block_on(iam.create_user().user_name(MEGAN).send()) {
        let code = aws_sdk_iam::error::ProvideErrorMetadata::code(&e).map(str::to_owned);
        assert_eq!(code.as_deref(), Some("EntityAlreadyExists"), "{e:?}");
    }
    a.block_on(
        iam.attach_user_policy()
            .user_name(MEGAN)
            .policy_arn(ADMIN_POLICY)
            .send(),
    )
    .expect(
        "moto has the AWS managed policies (start it with MOTO_IAM_LOAD_MANAGED_POLICIES=true)",
    );
    let request = invoke_sample("remediate-dry-run.json");

    // Dry run (the sample, and the default): the plan, nothing changed.
    let dry = remediate(
        &a,
        &remediate_deps(&a, &["revert"], Idp::new(None, None, None)),
        request.clone(),
    );
    assert_eq!(dry.status, Status::Planned, "{dry:#?}");
    let ops: Vec<String> = dry
        .plan
        .as_ref()
        .unwrap()
        .steps
        .iter()
        .map(|s| s.operation())
        .collect();
    assert_eq!(ops, ["iam:DetachUserPolicy"]);
    assert!(
        dry.message.contains(MEGAN) && dry.message.contains(ADMIN_POLICY),
        "{}",
        dry.message
    );
    assert_eq!(attached_policies(&a, &iam, MEGAN), [ADMIN_POLICY]);

    // Not allow-listed: refused, nothing changed.
    let mut run = request.clone();
    run["dry_run"] = json!(false);
    let refused = remediate(
        &a,
        &remediate_deps(&a, &[], Idp::new(None, None, None)),
        run.clone(),
    );
    assert_eq!(refused.status, Status::Refused, "{refused:#?}");
    assert_eq!(attached_policies(&a, &iam, MEGAN), [ADMIN_POLICY]);

    // Allowed: the policy is really detached.
    let deps = remediate_deps(&a, &["iam:DetachUserPolicy"], Idp::new(None, None, None));
    let done = remediate(&a, &deps, run.clone());
    assert_eq!(done.status, Status::Executed, "{done:#?}");
    assert_eq!(done.steps.len(), 1);
    assert_eq!(done.steps[0].outcome, StepOutcome::Done);
    assert!(attached_policies(&a, &iam, MEGAN).is_empty());

    // The same request again reports the earlier result and calls nothing: re-attached by
    // hand, the policy stays.
    a.block_on(
        iam.attach_user_policy()
            .user_name(MEGAN)
            .policy_arn(ADMIN_POLICY)
            .send(),
    )
    .unwrap();
    let repeat = remediate(&a, &deps, run);
    assert!(
        repeat.earlier && repeat.status == Status::Executed,
        "{repeat:#?}"
    );
    assert_eq!(attached_policies(&a, &iam, MEGAN), [ADMIN_POLICY]);

    // Every request and step is in the audit trail.
    let audit: Vec<provguard_remediate::AuditEntry> =
        a.store().remediation_audit(ADMIN_AT_2AM).unwrap();
    let trail: Vec<(String, String)> = audit
        .iter()
        .map(|e| (e.kind.clone(), e.outcome.clone()))
        .collect();
    for want in [
        ("request", "planned"),
        ("request", "refused"),
        ("request", "executing"),
        ("step", "done"),
        ("result", "executed"),
        ("request", "repeat"),
    ] {
        assert!(
            trail.contains(&(want.0.to_owned(), want.1.to_owned())),
            "{want:?} not in {trail:?}"
        );
    }
    assert!(
        audit
            .iter()
            .all(|e| e.requested_by.as_deref() == Some("secops@acmerocket.example"))
    );
    a.assert_least_privilege();
}

#[test]
fn webhooks_reach_the_pipeline_through_the_function_url_and_http_api_with_their_handshakes() {
    let Some(a) = Aws::new() else { return };
    a.store().import_context(&demo_context()).unwrap();
    let (topic, _) = topic_with_queues(&a.m, &[]);
    let calls = Calls::default();
    let secrets = WebhookSecrets::from_vars([
        ("PROVGUARD_OKTA_SECRET", "demo-okta-hook-secret"),
        ("PROVGUARD_ENTRA_CLIENT_STATE", "entra-state"),
    ]);
    let (deps, _) = ingest_deps(&a, &topic, &calls, secrets);
    let delivery = invoke_sample("function-url-okta-hook.json");

    // Okta's one-time verification.
    let mut verify = delivery.clone();
    verify["requestContext"]["http"]["method"] = json!("GET");
    verify["headers"] = json!({
        "x-okta-verification-challenge": "chal-123",
        "authorization": "demo-okta-hook-secret"
    });
    verify["body"] = Value::Null;
    let (status, body) = http(ingest(&a, &deps, verify));
    assert_eq!((status, body), (200, json!({"verification": "chal-123"})));

    // A wrong secret: 401, nothing stored.
    let mut forged = delivery.clone();
    forged["headers"]["authorization"] = json!("guess");
    let (status, _) = http(ingest(&a, &deps, forged));
    assert_eq!(status, 401);
    let event_id = "7e6d5c4b-b8a9-11f1-9c3d-2e1f0a9b8c7d";
    assert!(a.store().event(event_id).unwrap().is_none());

    // The delivery, base64-encoded as Function URLs may send it: stored and scored once.
    use base64::Engine as _;
    let mut encoded = delivery.clone();
    encoded["body"] =
        json!(base64::engine::general_purpose::STANDARD.encode(delivery["body"].as_str().unwrap()));
    encoded["isBase64Encoded"] = json!(true);
    let answer = http(ingest(&a, &deps, encoded));
    assert_eq!(scored_once(&a, answer, event_id).as_deref(), Some(MEGAN));
    let (status, body) = http(ingest(&a, &deps, delivery));
    assert_eq!(
        (status, body["duplicates"].as_u64()),
        (200, Some(1)),
        "{body}"
    );

    // A delivery through the HTTP API infra/template.yaml puts in front of the function
    // (payload format 2.0 on an `ANY /{proxy+}` route): handled the same way.
    let answer = http(ingest(&a, &deps, invoke_sample("http-api-okta-hook.json")));
    assert_eq!(
        scored_once(&a, answer, "8f7e6d5c-b8aa-11f1-9c3d-2e1f0a9b8c7d").as_deref(),
        Some("li.wei@acmerocket.example")
    );

    // Microsoft Graph's subscription validation echoes the token as text.
    let graph = json!({
        "version": "2.0", "rawPath": "/entra", "rawQueryString": "validationToken=Validation%3A+abc",
        "queryStringParameters": {"validationToken": "Validation: abc"},
        "headers": {"content-type": "text/plain"},
        "requestContext": {"http": {"method": "POST", "path": "/entra"}, "timeEpoch": 1793715005120i64},
        "isBase64Encoded": false
    });
    let (status, body) = http(ingest(&a, &deps, graph));
    assert_eq!((status, body), (200, json!("Validation: abc")));

    // An unknown route, and a payload of no known shape (dead-lettered, not retried).
    let mut unknown = invoke_sample("function-url-okta-hook.json");
    unknown["rawPath"] = json!("/nowhere");
    unknown["requestContext"]["http"]["path"] = json!("/nowhere");
    assert_eq!(http(ingest(&a, &deps, unknown)).0, 404);
    let s = summary(ingest(&a, &deps, json!({"hello": "world"})));
    assert_eq!(s.dead_lettered, 1, "{s:?}");
    let dl = provguard_core::store::DeadLetterStore::dead_letters(&a.store()).unwrap();
    assert_eq!(dl.len(), 1);
    assert!(dl[0].raw.contains("hello"), "{dl:?}");
    a.assert_least_privilege();
}

/// What the local identity-provider server saw: method, path, Authorization, body.
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

/// A local stand-in for Okta, Microsoft Graph with its token endpoint, and Google Admin: it
/// records each request and answers as the real APIs do (204 on a delete, 404 when the
/// membership is already gone, a token from the token endpoint).
fn idp_server() -> (String, Seen, std::thread::JoinHandle<()>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let handle = std::thread::spawn(move || {
        let mut deleted: Vec<String> = Vec::new();
        while let Ok(Some(mut req)) = server.recv_timeout(std::time::Duration::from_secs(30)) {
            let mut body = String::new();
            req.as_reader().read_to_string(&mut body).unwrap();
            let auth = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Authorization"))
                .map(|h| h.value.to_string())
                .unwrap_or_default();
            let method = req.method().to_string();
            let path = req.url().to_owned();
            log.lock()
                .unwrap()
                .push((method.clone(), path.clone(), auth, body));
            let resp = if path.ends_with("/oauth2/v2.0/token") {
                tiny_http::Response::from_string(
                    r#"{"access_token":"graph-token","token_type":"Bearer"}"#,
                )
                .with_status_code(200)
            } else if method == "DELETE" && deleted.contains(&path) {
                tiny_http::Response::from_string(r#"{"errorCode":"E0000007"}"#)
                    .with_status_code(404)
            } else {
                deleted.push(path);
                tiny_http::Response::from_string("").with_status_code(204)
            };
            let _ = req.respond(resp);
            if log.lock().unwrap().len() >= 64 {
                break;
            }
        }
    });
    (base, seen, handle)
}

pub(crate) fn stored(a: &Aws, v: Value) -> Event {
    let e: Event = serde_json::from_value(v).unwrap();
    a.store()
        .commit(&Commit {
            event: &e,
            verdict: None,
            baselines: vec![],
            ingested_at: t("2026-11-03T08:00:00Z"),
            actor_recent: &[],
            target_recent: &[],
            tenant_recent: &[],
        })
        .unwrap();
    e
}

fn grant(id: &str, source: &str, target: Value, entitlement: Value, action: &str) -> Value {
    json!({
        "id": id, "source": source, "tenant": "acme", "time": "2026-11-03T02:00:00Z",
        "action": action, "outcome": "success",
        "actor": {"email": "anna.schmidt@acmerocket.example", "kind": "human"},
        "target": target, "entitlement": entitlement, "channel": "console"
    })
}

#[test]
fn identity_provider_grants_are_reverted_through_their_apis() {
    let Some(a) = Aws::new() else { return };
    let (base, seen, server) = idp_server();
    stored(
        &a,
        grant(
            "okta-1",
            "okta",
            json!({"id": "00ucq4HjHQaO0IefjDed", "email": MEGAN, "kind": "human"}),
            json!({"id": "00g1prodadmins0demo7", "name": "prod-db-admins", "kind": "group", "privilege": "admin"}),
            "add_to_group",
        ),
    );
    stored(
        &a,
        grant(
            "entra-1",
            "entra",
            json!({"id": "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f", "email": MEGAN, "kind": "human"}),
            json!({"id": "62e90394-69f5-4237-9190-012177145e10", "name": "Global Administrator", "kind": "role", "privilege": "admin"}),
            "grant_role",
        ),
    );
    stored(
        &a,
        grant(
            "google-1",
            "gworkspace",
            json!({"email": MEGAN, "kind": "human"}),
            json!({"id": "prod-admins@acmerocket.example", "name": "prod-admins@acmerocket.example", "kind": "group", "privilege": "elevated"}),
            "add_to_group",
        ),
    );
    stored(
        &a,
        grant(
            "okta-bg",
            "okta",
            json!({"id": "00ubreakglass0000001", "email": "breakglass@acmerocket.example", "kind": "human"}),
            json!({"id": "00g1prodadmins0demo7", "name": "prod-db-admins", "kind": "group", "privilege": "admin"}),
            "add_to_group",
        ),
    );
    let idp = all_providers_at(&base);
    let deps = remediate_deps(&a, &["okta:*", "entra:*", "gworkspace:*"], idp);
    let run = |id: &str| {
        remediate(
            &a,
            &deps,
            json!({"event_id": id, "action": "revert", "dry_run": false, "requested_by": "secops"}),
        )
    };

    for id in ["okta-1", "entra-1", "google-1"] {
        let r = run(id);
        assert_eq!(r.status, Status::Executed, "{id}: {r:#?}");
    }
    // Break-glass accounts are refused before anything is called.
    let bg = run("okta-bg");
    assert_eq!(bg.status, Status::Refused, "{bg:#?}");
    assert!(bg.message.contains("break-glass"), "{}", bg.message);

    // Already gone at the provider (a second remediation, under another remedy key): done.
    let again = remediate(
        &a,
        &deps,
        json!({"alert_id": "okta-1", "action": "revert", "dry_run": false}),
    );
    assert!(
        again.earlier,
        "the same request reports the earlier result: {again:#?}"
    );

    let seen = seen.lock().unwrap().clone();
    let expected = [
        (
            "DELETE",
            "/api/v1/groups/00g1prodadmins0demo7/users/00ucq4HjHQaO0IefjDed",
            "SSWS okta-token",
        ),
        ("POST", "/acme-tenant/oauth2/v2.0/token", ""),
        (
            "DELETE",
            "/v1.0/directoryRoles(roleTemplateId='62e90394-69f5-4237-9190-012177145e10')/members/6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f/$ref",
            "Bearer graph-token",
        ),
        (
            "DELETE",
            "/admin/directory/v1/groups/prod-admins@acmerocket.example/members/megan.shaw@acmerocket.example",
            "Bearer google-token",
        ),
    ];
    assert_eq!(seen.len(), expected.len(), "{seen:#?}");
    for ((m, p, auth, body), (em, ep, eauth)) in seen.iter().zip(expected) {
        assert_eq!((m.as_str(), p.as_str()), (em, ep));
        if em == "POST" {
            // The client-credentials grant, as a form.
            for kv in [
                "grant_type=client_credentials",
                "client_id=app-id",
                "client_secret=app-secret",
            ] {
                assert!(body.contains(kv), "{body}");
            }
        } else {
            assert_eq!(auth, eauth);
        }
    }
    drop(server);
    a.assert_least_privilege();
}

#[test]
fn a_signed_webhook_request_is_processed_once_and_its_replay_refused() {
    let Some(a) = Aws::new() else { return };
    let (topic, _) = topic_with_queues(&a.m, &[]);
    let mapping = r#". = {"id": string!(.event_id), "source": "hr", "tenant": "acme", "time": .at,
        "action": "grant_role", "outcome": "success", "actor": {"email": .by, "kind": "human"},
        "target": {"email": .user, "kind": "human"},
        "entitlement": {"name": .role, "kind": "role", "privilege": "unknown"}, "channel": "api"}"#;
    let normalizer = provguard_core::Normalizer::new(
        &[("hr".into(), mapping.into())],
        provguard_core::privilege::PrivilegeTable::default(),
    )
    .unwrap();
    let pipeline = Pipeline::new(a.store(), normalizer, DetectConfig::default()).unwrap();
    let sns = aws_sdk_sns::Client::new(&a.m.config);
    let sink = SnsSink::new(sns, topic, a.m.rt.handle().clone(), a.store());
    let deps = IngestDeps::new(
        pipeline,
        Arc::new(sink),
        WebhookSecrets::from_vars([("PROVGUARD_HMAC_HR", "hr-key")]),
    )
    .with_metrics(Emf::new(std::io::sink()));
    let body = r#"{"event_id":"hr-9","at":"2026-11-03T10:00:00Z","by":"a@acme.example","user":"b@acme.example","role":"Payroll Admin"}"#;
    let received = 1_793_700_000_000i64; // requestContext.timeEpoch, ms
    let request = |ts: i64| {
        let ts = ts.to_string();
        let sig = provguard_core::webhook::sign("hr-key", &ts, body.as_bytes());
        json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/hook/hr", "rawQueryString": "",
            "headers": {"content-type": "application/json", "x-provguard-timestamp": ts, "x-provguard-signature": sig},
            "requestContext": {"http": {"method": "POST", "path": "/hook/hr"}, "timeEpoch": received},
            "body": body, "isBase64Encoded": false
        })
    };
    let signed = request(received / 1000);
    let (status, answer) = http(ingest(&a, &deps, signed.clone()));
    assert_eq!(
        (status, answer["verdicts"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );
    // The same request again inside its window: refused, nothing processed; and so is its
    // signature written in upper-case hex, which is the same signature.
    let (status, answer) = http(ingest(&a, &deps, signed.clone()));
    assert_eq!(status, 409, "{answer}");
    let mut upper = signed;
    let sig = upper["headers"]["x-provguard-signature"].as_str().unwrap();
    upper["headers"]["x-provguard-signature"] =
        json!(format!("sha256={}", sig[7..].to_uppercase()));
    let (status, answer) = http(ingest(&a, &deps, upper));
    assert_eq!(status, 409, "{answer}");
    // The claim is a conditional put, made before processing: of two claims of one key only
    // the first wins, and it lapses when the request's window has closed.
    let store = a.store();
    let t = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap();
    assert!(store.claim_replay("k-1", t(1_000), t(500)).unwrap());
    assert!(!store.claim_replay("k-1", t(1_000), t(600)).unwrap());
    assert!(store.claim_replay("k-1", t(2_000), t(1_001)).unwrap());
    store.release_replay("k-1").unwrap();
    assert!(store.claim_replay("k-1", t(2_000), t(1_002)).unwrap());
    // Signed anew (the sender's retry): accepted, and the event counts once.
    let (status, answer) = http(ingest(&a, &deps, request(received / 1000 + 1)));
    assert_eq!(
        (status, answer["duplicates"].as_u64()),
        (200, Some(1)),
        "{answer}"
    );
}

#[test]
fn an_http_shaped_payload_that_is_not_a_function_url_request_is_refused_not_stored() {
    let Some(a) = Aws::new() else { return };
    let (topic, _) = topic_with_queues(&a.m, &[]);
    let calls = Calls::default();
    let secrets = WebhookSecrets::from_vars([("PROVGUARD_OKTA_SECRET", "okta-secret")]);
    let (deps, _) = ingest_deps(&a, &topic, &calls, secrets);
    let before = a.store().dead_letters().unwrap().len();
    for payload in [
        // A Function URL request whose body is not a string.
        json!({"version": "2.0", "rawPath": "/okta", "headers": {"authorization": "Bearer leaked-credential"},
               "requestContext": {"http": {"method": "POST", "path": "/okta"}, "timeEpoch": 1},
               "body": {"not": "a string"}, "isBase64Encoded": false}),
        // An API Gateway REST (v1) request.
        json!({"resource": "/okta", "path": "/okta", "httpMethod": "POST",
               "headers": {"Authorization": "Bearer leaked-credential"},
               "requestContext": {"stage": "prod"}, "body": "{}"}),
    ] {
        let (status, body) = http(ingest(&a, &deps, payload));
        assert_eq!(status, 400, "{body}");
        assert!(!body.to_string().contains("leaked-credential"), "{body}");
    }
    let dead = a.store().dead_letters().unwrap();
    assert_eq!(dead.len(), before, "nothing stored");
    assert!(!format!("{dead:?}").contains("leaked-credential"));
}

#[test]
fn webhook_answers_are_never_sniffed_and_graph_validation_needs_the_route() {
    let Some(a) = Aws::new() else { return };
    let (topic, _) = topic_with_queues(&a.m, &[]);
    let calls = Calls::default();
    let validation = json!({"version": "2.0", "rawPath": "/entra", "rawQueryString": "validationToken=%3Cscript%3E",
        "queryStringParameters": {"validationToken": "<script>alert(1)</script>"},
        "headers": {}, "requestContext": {"http": {"method": "POST", "path": "/entra"}, "timeEpoch": 1},
        "isBase64Encoded": false});
    let (deps, _) = ingest_deps(&a, &topic, &calls, WebhookSecrets::default());
    let IngestResponse::Http(r) = ingest(&a, &deps, validation.clone()) else {
        panic!()
    };
    assert_eq!(r.status_code, 503, "an unconfigured route echoes nothing");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    let secrets = WebhookSecrets::from_vars([("PROVGUARD_ENTRA_CLIENT_STATE", "state")]);
    let (deps, _) = ingest_deps(&a, &topic, &calls, secrets);
    let IngestResponse::Http(r) = ingest(&a, &deps, validation) else {
        panic!()
    };
    assert_eq!(r.status_code, 200);
    assert_eq!(r.headers["content-type"], "text/plain");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
}

/// Okta, Microsoft Graph (and its token endpoint) and Google Admin, all served at `base`, with
/// the tests' credentials.
pub(crate) fn all_providers_at(base: &str) -> Idp {
    Idp::new(
        Some(Okta {
            url: base.to_owned(),
            token: "okta-token".into(),
        }),
        Some(Entra {
            graph_url: format!("{base}/v1.0"),
            login_url: base.to_owned(),
            tenant: "acme-tenant".into(),
            client_id: "app-id".into(),
            client_secret: "app-secret".into(),
        }),
        Some(Google {
            url: base.to_owned(),
            token: "google-token".into(),
        }),
    )
}

/// An Okta server that answers every request with 204, after `delay` while `slow` is set.
pub(crate) fn okta_server(
    slow: Arc<std::sync::atomic::AtomicBool>,
    delay: std::time::Duration,
) -> (String, Arc<Mutex<usize>>, std::thread::JoinHandle<()>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let served: Arc<Mutex<usize>> = Arc::default();
    let count = Arc::clone(&served);
    let handle = std::thread::spawn(move || {
        while let Ok(Some(req)) = server.recv_timeout(std::time::Duration::from_secs(20)) {
            if slow.load(std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(delay);
            }
            *count.lock().unwrap() += 1;
            let _ = req.respond(tiny_http::Response::from_string("").with_status_code(204));
        }
    });
    (base, served, handle)
}

pub(crate) fn okta_grant(a: &Aws, id: &str, user: &str) {
    stored(
        a,
        grant(
            id,
            "okta",
            json!({"id": user, "email": format!("{user}@acmerocket.example"), "kind": "human"}),
            json!({"id": "00g1prodadmins0demo7", "name": "prod-db-admins", "kind": "group", "privilege": "admin"}),
            "add_to_group",
        ),
    );
}

pub(crate) fn okta_idp(base: &str) -> Idp {
    Idp::new(
        Some(Okta {
            url: base.to_owned(),
            token: "okta-token".into(),
        }),
        None,
        None,
    )
}

#[test]
fn a_slow_identity_provider_fails_the_step_within_its_budget_and_a_later_request_reverts() {
    let Some(a) = Aws::new() else { return };
    let slow = Arc::new(std::sync::atomic::AtomicBool::new(true));
    // The server would answer 204 after 3 s; the call's budget is 1 s.
    let (base, served, server) = okta_server(Arc::clone(&slow), std::time::Duration::from_secs(3));
    okta_grant(&a, "okta-slow", "00uslowslowslow00001");
    let idp = okta_idp(&base).with_timeout(std::time::Duration::from_secs(1));
    let deps = remediate_deps(&a, &["okta:*"], idp);
    let request = json!({"event_id": "okta-slow", "action": "revert", "dry_run": false});

    let r = remediate(&a, &deps, request.clone());
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    assert_eq!(r.steps.len(), 1, "{r:#?}");
    assert_eq!(r.steps[0].outcome, StepOutcome::Failed);
    let detail = r.steps[0].detail.as_deref().unwrap_or_default();
    assert!(detail.contains("timeout"), "{detail}");

    // The provider is back: the same request runs again (a failure is not a final answer).
    slow.store(false, std::sync::atomic::Ordering::SeqCst);
    // (The server answers one request at a time: let it finish the call that was abandoned.)
    while *served.lock().unwrap() == 0 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let r = remediate(&a, &deps, request);
    assert_eq!(r.status, Status::Executed, "{r:#?}");
    assert!(!r.earlier);
    assert_eq!(*served.lock().unwrap(), 2, "one call per attempt");
    drop(server);
}

#[test]
fn remediations_beyond_the_hourly_cap_are_refused_until_the_next_hour() {
    let Some(a) = Aws::new() else { return };
    let (base, served, server) = okta_server(Arc::default(), std::time::Duration::ZERO);
    for (id, user) in [
        ("cap-1", "00ucapcapcapcap00001"),
        ("cap-2", "00ucapcapcapcap00002"),
        ("cap-3", "00ucapcapcapcap00003"),
    ] {
        okta_grant(&a, id, user);
    }
    let mut deps = remediate_deps(&a, &["okta:*"], okta_idp(&base));
    deps.max_per_hour = 2;
    let run = |deps: &provguard_remediate::Deps, id: &str| {
        remediate(
            &a,
            deps,
            json!({"event_id": id, "action": "revert", "dry_run": false}),
        )
    };
    assert_eq!(run(&deps, "cap-1").status, Status::Executed);
    assert_eq!(run(&deps, "cap-2").status, Status::Executed);
    let refused = run(&deps, "cap-3");
    assert_eq!(refused.status, Status::Refused, "{refused:#?}");
    assert!(
        refused
            .message
            .contains("2 remediations already ran this hour"),
        "{}",
        refused.message
    );
    assert_eq!(
        *served.lock().unwrap(),
        2,
        "nothing was called for the third"
    );
    assert_eq!(
        a.store()
            .remediations_this_hour(t("2026-11-03T09:30:00Z"))
            .unwrap(),
        2
    );

    // In the next hour the refused request may run.
    deps.clock = || "2026-11-03T10:00:00Z".parse().unwrap();
    let later = run(&deps, "cap-3");
    assert_eq!(later.status, Status::Executed, "{later:#?}");
    assert_eq!(*served.lock().unwrap(), 3);
    drop(server);
}

#[test]
fn rebaseline_pages_through_the_log_pauses_near_its_deadline_and_resumes() {
    let Some(a) = Aws::new() else { return };
    // 150 events in the table's log, learned one by one as ingest would.
    let s = a.store();
    s.import_context(&demo_context()).unwrap();
    let mut p = Pipeline::new(s, normalizer(), DetectConfig::default()).unwrap();
    let stats = p
        .process_bytes(
            &demo_cloudtrail(150),
            None,
            Mode::Learn,
            t(HISTORY_END),
            &mut |_| {},
        )
        .unwrap();
    assert!(stats.events > 100, "{stats:?}");
    // A few more, scored as ingest scores them: their verdicts wait to be sealed.
    let scored = p
        .process_bytes(
            &demo_cloudtrail(170),
            None,
            Mode::Score,
            t(HISTORY_END),
            &mut |_| {},
        )
        .unwrap();
    assert!(scored.verdicts > 0, "{scored:?}");
    assert_eq!(
        a.store().verify_audit(None).unwrap().pending,
        scored.verdicts
    );
    let deps = provguard_rebaseline::Deps {
        store: Arc::new(a.store_of(&a.called.rebaseline)),
        detect: DetectConfig::default(),
        window_days: 180,
        page_size: 40,
        reserve: std::time::Duration::from_secs(5),
        min_interval: chrono::Duration::hours(20),
    };
    let scheduled = t("2026-11-04T03:00:00Z");
    // A deadline already within the reserve: one page, a checkpoint, and a pause.
    let first = a
        .block_on(async {
            let deps = deps.clone();
            tokio::task::spawn_blocking(move || {
                provguard_rebaseline::run(&deps, scheduled, 1, || 0)
            })
            .await
            .unwrap()
        })
        .unwrap();
    assert_eq!(
        first.status,
        provguard_rebaseline::Status::Paused,
        "{first:?}"
    );
    assert_eq!(first.pages, 1);
    // Every run first seals the audit trail.
    assert_eq!(first.sealed, scored.verdicts, "{first:?}");
    let audit = a.store().verify_audit(None).unwrap();
    assert!(audit.intact() && audit.pending == 0, "{audit:?}");
    assert_eq!(audit.verdicts, scored.verdicts);
    // The head it sealed to leaves the table with the run's report (and its log line).
    assert_eq!(
        first.audit_head,
        audit.head.as_ref().map(ToString::to_string),
        "{first:?}"
    );

    // The next scheduled invocation (through the handler, no deadline pressure) resumes the
    // same window and finishes.
    let schedule: provguard_rebaseline::Schedule =
        serde_json::from_value(invoke_sample("rebaseline-schedule.json")).unwrap();
    let done = a
        .block_on(provguard_rebaseline::handle(
            &deps,
            LambdaEvent::new(schedule.clone(), Context::default()),
        ))
        .unwrap();
    assert_eq!(
        done.status,
        provguard_rebaseline::Status::Finished,
        "{done:?}"
    );
    assert!(done.resumed && done.now == scheduled, "{done:?}");
    assert!(done.pages_total > 2 && done.scopes > 10, "{done:?}");
    assert_eq!(done.sealed, 0, "{done:?}");
    assert_eq!(
        done.used + done.left_out,
        stats.events + scored.verdicts,
        "{done:?}"
    );
    let tenant = provguard_core::baseline::ScopeKey::tenant("111122223333");
    let b = a.store().baselines(std::slice::from_ref(&tenant)).unwrap();
    assert_eq!(b[&tenant].events.n, done.used, "{:?}", b[&tenant].events);

    // Within the minimum interval, nothing is done.
    let idle = a
        .block_on(provguard_rebaseline::handle(
            &deps,
            LambdaEvent::new(schedule, Context::default()),
        ))
        .unwrap();
    assert_eq!(
        idle.status,
        provguard_rebaseline::Status::UpToDate,
        "{idle:?}"
    );
    a.assert_least_privilege();
}

/// Runs the built ingest binary under `cargo lambda watch` (the Lambda runtime API emulator) and
/// invokes it over HTTP with a sample payload, the function talking to moto.
///
/// `cargo lambda watch` builds and starts the function with `cargo run`, which waits for the
/// build directory lock that `cargo test` holds while tests run: `scripts/test` runs this test
/// from the built test binary, outside cargo.
#[test]
#[ignore = "run by scripts/test outside cargo (cargo lambda watch needs the build directory lock)"]
#[allow(clippy::print_stderr)]
fn the_ingest_binary_answers_under_cargo_lambda_watch() {
    let Some(a) = Aws::new() else { return };
    let has = std::process::Command::new("cargo")
        .args(["lambda", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has {
        assert!(
            std::env::var("PROVGUARD_REQUIRE_CARGO_LAMBDA").as_deref() != Ok("1"),
            "PROVGUARD_REQUIRE_CARGO_LAMBDA=1 but `cargo lambda` is not installed (pip install cargo-lambda)"
        );
        eprintln!("skipping: cargo lambda is not installed");
        return;
    }
    seed_demo_baselines(&a);
    let (topic, queues) = topic_with_queues(&a.m, &[("all", None)]);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let endpoint =
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "http://127.0.0.1:5000".into());
    let manifest = root().join("functions/ingest/Cargo.toml");
    let child = std::process::Command::new("cargo")
        .args(["lambda", "watch", "-A", "127.0.0.1", "-P"])
        .arg(port.to_string())
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["--env-var", &format!("PROVGUARD_TABLE={}", a.table)])
        .args(["--env-var", &format!("PROVGUARD_TOPIC_ARN={topic}")])
        .args(["--env-var", &format!("AWS_ENDPOINT_URL={endpoint}")])
        .args(["--env-var", "AWS_ACCESS_KEY_ID=testing"])
        .args(["--env-var", "AWS_SECRET_ACCESS_KEY=testing"])
        .args(["--env-var", "AWS_REGION=us-east-1"])
        // Webhook secrets (the Okta one is the sample delivery's), and every log line there is.
        .args(["--env-var", "PROVGUARD_OKTA_SECRET=demo-okta-hook-secret"])
        .args(["--env-var", "PROVGUARD_SCIM_TOKEN=scim-l0g-t0ken"])
        .args(["--env-var", "PROVGUARD_HMAC_HR=hr-l0g-key"])
        .args(["--env-var", "AWS_LAMBDA_LOG_LEVEL=TRACE"])
        .current_dir(root())
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The watcher and the function it started go down together.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .arg("--")
                .arg(format!("-{}", self.0.id()))
                .status();
            let _ = self.0.wait();
        }
    }
    let mut child = child;
    let output: Arc<Mutex<String>> = Arc::default();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let out = Arc::clone(&output);
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                let mut o = out.lock().unwrap();
                o.push_str(&line);
                o.push('\n');
            }
        });
    }
    let _child = Kill(child);
    let log = || output.lock().unwrap().clone();

    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/provguard-ingest/invocations");
    let payload =
        std::fs::read(root().join("samples/invoke/eventbridge-attach-admin-2am.json")).unwrap();
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(900)))
        .http_status_as_error(false)
        .build()
        .new_agent();
    // The emulator starts listening first; the function builds (if needed) and starts on the
    // first invocation.
    let started = std::time::Instant::now();
    let answer = loop {
        match agent
            .post(&url)
            .header("content-type", "application/json")
            .send(&payload[..])
        {
            Ok(mut r) => {
                break (
                    r.status().as_u16(),
                    r.body_mut().read_to_string().unwrap_or_default(),
                );
            }
            Err(e) if started.elapsed() < std::time::Duration::from_secs(120) => {
                let _ = e;
                std::thread::sleep(std::time::Duration::from_millis(500));
            }
            Err(e) => panic!("cargo lambda watch did not answer on {url}: {e}\n{}", log()),
        }
    };
    assert_eq!(answer.0, 200, "{}\n{}", answer.1, log());
    let s: Summary =
        serde_json::from_str(&answer.1).unwrap_or_else(|e| panic!("{e}: {}\n{}", answer.1, log()));
    assert_eq!((s.events, s.alerts, s.published), (1, 1, 1), "{s:?}");
    assert!(a.store().verdict(ADMIN_AT_2AM).unwrap().unwrap().alert);
    let sqs = aws_sdk_sqs::Client::new(&a.m.config);
    assert_eq!(receive(&a.m, &sqs, &queues["all"], 1, 5).len(), 1);

    // Webhook deliveries through the Function URL, with a guessed credential and the right one.
    let mut hook = invoke_sample("function-url-okta-hook.json");
    for (authorization, status) in [("wr0ng-l0g-guess", 401), ("demo-okta-hook-secret", 200)] {
        hook["headers"]["authorization"] = json!(authorization);
        let mut r = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(hook.to_string().as_bytes())
            .unwrap();
        let body: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(body["statusCode"], status, "{body}\n{}", log());
    }

    // No secret, and no credential a caller presented, is in the function's log.
    let log = log();
    assert!(
        log.contains("TRACE") || log.contains("\"level\":\"TRACE\""),
        "{log}"
    );
    for secret in [
        "demo-okta-hook-secret",
        "scim-l0g-t0ken",
        "hr-l0g-key",
        "wr0ng-l0g-guess",
    ] {
        assert!(!log.contains(secret), "{secret:?} logged:\n{log}");
    }
}
