//! infra/template.yaml against the functions' code. Each function's environment holds only
//! variables its configuration reads, and its configuration accepts them both as deployed with the
//! defaults and with every option on; each function's policy grants exactly the AWS actions its
//! code calls (the crate's `AWS_ACTIONS`; the Lambda tests check that every call they see is among
//! them and granted), plus what the Lambda service needs on its behalf: sending to the
//! dead-letter queue and using the key of the encrypted queue and topic, on those resources only.
//! (cfn-lint, `sam validate --lint` and checkov run on the template in `scripts/test`.)

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml_ng::Value;

use crate::support::root;

/// Actions the Lambda service and the encrypted queue and topic need, and the one resource each
/// may be granted on.
const PLATFORM: &[(&str, &str)] = &[
    ("sqs:SendMessage", "FailureQueue"),
    ("kms:Decrypt", "Key"),
    ("kms:GenerateDataKey", "Key"),
];

/// Actions without a resource type (IAM can only grant them on `*`).
const NO_RESOURCE_TYPE: &[&str] = &["sts:GetCallerIdentity"];

/// Parameter values of a deployment with every option on.
const EVERYTHING_ON: &[(&str, &str)] = &[
    ("AlertEmail", "secops@acme.example"),
    ("AlertHttpsEndpoint", "https://chat.acme.example/hook"),
    ("OrganizationId", "o-abcdefghij"),
    ("OktaSecretName", "okta-hook"),
    ("EntraClientStateName", "entra-client-state"),
    ("GoogleChannelTokenName", "google-channel"),
    ("ScimTokenName", "scim-token"),
    ("AutoRemediate", "critical"),
    (
        "BreakGlassAccounts",
        "breakglass@acme.example,00ubreakglass0000001",
    ),
    ("RemediationAllow", "iam:DetachUserPolicy,okta:*"),
    ("OktaApiUrl", "https://acme.okta.com"),
    ("OktaApiTokenName", "okta-api"),
    ("EntraTenantId", "0f0e0d0c-0000-4000-8000-000000000001"),
    ("EntraClientId", "0f0e0d0c-0000-4000-8000-000000000002"),
    ("EntraClientSecretName", "entra-secret"),
    ("GoogleAccessTokenName", "google-token"),
];

pub(crate) struct Template(Value);

fn seq(v: &Value) -> &[Value] {
    v.as_sequence().map(Vec::as_slice).unwrap_or(&[])
}

fn is_tag(v: &Value, tag: &str) -> Option<Value> {
    match v {
        Value::Tagged(t) if t.tag == tag => Some(t.value.clone()),
        _ => None,
    }
}

/// A value with `!If [condition, then, else]` taken both ways; `!Ref AWS::NoValue` is nothing.
fn branches(v: &Value) -> Vec<Value> {
    if let Some(args) = is_tag(v, "If") {
        return seq(&args).iter().skip(1).flat_map(branches).collect();
    }
    if is_tag(v, "Ref").is_some_and(|r| r.as_str() == Some("AWS::NoValue")) {
        return Vec::new();
    }
    vec![v.clone()]
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Sequence(s) => s.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

impl Template {
    pub(crate) fn load() -> Template {
        let path = root().join("infra/template.yaml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        Template(serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}")))
    }

    fn resource(&self, id: &str) -> &Value {
        let r = &self.0["Resources"][id];
        assert!(!r.is_null(), "infra/template.yaml has no resource {id}");
        r
    }

    /// Every statement of a function's inline policies, both ways of every `!If`.
    fn statements(&self, id: &str) -> Vec<Value> {
        seq(&self.resource(id)["Properties"]["Policies"])
            .iter()
            .flat_map(|p| seq(&p["Statement"]).iter().flat_map(branches))
            .collect()
    }

    /// The actions granted to a function for its code's calls (not the platform's).
    pub(crate) fn code_actions(&self, id: &str) -> BTreeSet<String> {
        self.statements(id)
            .iter()
            .flat_map(|s| strings(&s["Action"]))
            .filter(|a| !PLATFORM.iter().any(|(p, _)| p == a))
            .collect()
    }

    fn parameters(&self, everything_on: bool) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self.0["Parameters"]
            .as_mapping()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                let default = match &v["Default"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => String::new(),
                };
                (k.as_str().unwrap_or_default().to_owned(), default)
            })
            .collect();
        if everything_on {
            for (k, v) in EVERYTHING_ON {
                assert!(out.contains_key(*k), "no parameter {k}");
                out.insert((*k).to_owned(), (*v).to_owned());
            }
        }
        out
    }

    fn condition(&self, name: &str, params: &BTreeMap<String, String>) -> bool {
        // The template's conditions are all `!Not [!Equals [!Ref P, v]]`.
        let c = &self.0["Conditions"][name];
        let not = is_tag(c, "Not").unwrap_or_else(|| panic!("condition {name}: {c:?}"));
        let eq = is_tag(&seq(&not)[0], "Equals").expect("!Equals");
        let args = seq(&eq);
        let param = is_tag(&args[0], "Ref").expect("!Ref");
        let value = match &args[1] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            other => panic!("condition {name}: {other:?}"),
        };
        params[param.as_str().unwrap()] != value
    }

    /// A condition of the template as deployed: `!Not [!Equals …]`, or `!Or` of others.
    fn condition_any(&self, name: &str, params: &BTreeMap<String, String>) -> bool {
        let c = &self.0["Conditions"][name];
        match is_tag(c, "Or") {
            Some(any) => seq(&any).iter().any(|c| {
                let inner = is_tag(c, "Condition").expect("!Condition");
                self.condition_any(inner.as_str().unwrap(), params)
            }),
            None => self.condition(name, params),
        }
    }

    /// Whether a condition expression holds with these parameters: `!Not`, `!And`, `!Or`,
    /// `!Equals` of a `!Ref` and a value, `!Condition`.
    fn holds(&self, c: &Value, params: &BTreeMap<String, String>) -> bool {
        let args = |tag: &str| is_tag(c, tag).map(|a| seq(&a).to_vec());
        if let Some(a) = args("Not") {
            return !self.holds(&a[0], params);
        }
        if let Some(a) = args("And") {
            return a.iter().all(|c| self.holds(c, params));
        }
        if let Some(a) = args("Or") {
            return a.iter().any(|c| self.holds(c, params));
        }
        if let Some(a) = args("Equals") {
            let value = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => self
                    .resolve(other, params)
                    .unwrap_or_else(|| panic!("{other:?}")),
            };
            return value(&a[0]) == value(&a[1]);
        }
        if let Some(name) = is_tag(c, "Condition") {
            let name = name.as_str().unwrap();
            return self.holds(&self.0["Conditions"][name], params);
        }
        panic!("not a condition: {c:?}")
    }

    /// A value as deployed with these parameters (`None`: not set).
    fn resolve(&self, v: &Value, params: &BTreeMap<String, String>) -> Option<String> {
        if let Some(args) = is_tag(v, "If") {
            let args = seq(&args);
            let cond = self.condition(args[0].as_str().unwrap(), params);
            return self.resolve(&args[if cond { 1 } else { 2 }], params);
        }
        if let Some(r) = is_tag(v, "Ref") {
            let name = r.as_str().unwrap();
            return match name {
                "AWS::NoValue" => None,
                _ => Some(
                    params
                        .get(name)
                        .cloned()
                        .unwrap_or_else(|| format!("{name}-physical-id")),
                ),
            };
        }
        if let Some(s) = is_tag(v, "Sub") {
            let mut out = s.as_str().unwrap().to_owned();
            for (k, val) in params {
                out = out.replace(&format!("${{{k}}}"), val);
            }
            return Some(out);
        }
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Tagged(t) => Some(format!("{}-value", t.tag)),
            _ => None,
        }
    }

    /// A function's environment as deployed (the globals and its own).
    fn environment(&self, id: &str, everything_on: bool) -> BTreeMap<String, String> {
        let params = self.parameters(everything_on);
        let global = &self.0["Globals"]["Function"]["Environment"]["Variables"];
        let own = &self.resource(id)["Properties"]["Environment"]["Variables"];
        [global, own]
            .into_iter()
            .filter_map(Value::as_mapping)
            .flatten()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), self.resolve(v, &params)?)))
            .collect()
    }
}

fn pairs(env: &BTreeMap<String, String>) -> impl Iterator<Item = (&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

#[test]
fn each_function_reads_every_variable_the_template_sets_and_accepts_its_values() {
    let t = Template::load();
    for everything_on in [false, true] {
        let env = t.environment("IngestFunction", everything_on);
        for k in env.keys() {
            assert!(
                provguard_ingest::config::vars::ALL.contains(&k.as_str())
                    || provguard_ingest::config::is_webhook_var(k),
                "the template sets {k} for ingest, which does not read it"
            );
        }
        let c = provguard_ingest::config::Config::from_vars(pairs(&env))
            .unwrap_or_else(|e| panic!("ingest ({everything_on}): {e}"));
        assert_eq!(c.table, "Table-physical-id");
        assert_eq!(c.topic_arn, "AlertTopic-physical-id");
        assert_eq!(c.auto_remediate.is_some(), everything_on);
        // Webhook secrets are only ever references to Parameter Store.
        assert_eq!(c.webhook_vars.len(), if everything_on { 4 } else { 0 });
        for (k, v) in &c.webhook_vars {
            assert!(v.starts_with("ssm:/provguard/"), "{k} = {v}");
        }

        let env = t.environment("RebaselineFunction", everything_on);
        for k in env.keys() {
            assert!(
                provguard_rebaseline::config::vars::ALL.contains(&k.as_str()),
                "the template sets {k} for rebaseline, which does not read it"
            );
        }
        let c = provguard_rebaseline::config::Config::from_vars(pairs(&env))
            .unwrap_or_else(|e| panic!("rebaseline ({everything_on}): {e}"));
        assert_eq!(c.window_days, 180);

        let env = t.environment("RemediateFunction", everything_on);
        for k in env.keys() {
            assert!(
                provguard_remediate::config::vars::ALL.contains(&k.as_str()),
                "the template sets {k} for remediate, which does not read it"
            );
        }
        for secret in provguard_remediate::config::SECRET_VARS {
            if let Some(v) = env.get(secret) {
                assert!(v.starts_with("ssm:/provguard/"), "{secret} = {v}");
            }
        }
        let c = provguard_remediate::config::Config::from_vars(pairs(&env))
            .unwrap_or_else(|e| panic!("remediate ({everything_on}): {e}"));
        // Deployed with the defaults, remediation only plans.
        assert_eq!(c.allow.is_empty(), !everything_on, "{:?}", c.allow);
        assert_eq!(c.okta.is_some(), everything_on);
        assert_eq!(c.entra.is_some(), everything_on);
        assert_eq!(c.google.is_some(), everything_on);
    }
}

#[test]
fn each_function_is_granted_exactly_the_actions_its_code_calls() {
    let t = Template::load();
    for (id, declared) in [
        ("IngestFunction", provguard_ingest::AWS_ACTIONS),
        ("RebaselineFunction", provguard_rebaseline::AWS_ACTIONS),
        ("RemediateFunction", provguard_remediate::AWS_ACTIONS),
    ] {
        let declared: BTreeSet<String> = declared.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(t.code_actions(id), declared, "{id}");
        for st in t.statements(id) {
            assert_eq!(st["Effect"].as_str(), Some("Allow"), "{id}: {st:?}");
            let actions = strings(&st["Action"]);
            let resources: Vec<Value> = match &st["Resource"] {
                Value::Sequence(s) => s.clone(),
                one => vec![one.clone()],
            };
            for a in &actions {
                assert!(!a.contains('*'), "{id}: wildcard action {a}");
            }
            for r in &resources {
                if actions
                    .iter()
                    .all(|a| NO_RESOURCE_TYPE.contains(&a.as_str()))
                {
                    continue;
                }
                assert_ne!(r.as_str(), Some("*"), "{id}: {actions:?} on every resource");
            }
            for (action, on) in PLATFORM {
                if actions.iter().any(|a| a == action) {
                    let target = is_tag(&resources[0], "GetAtt")
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default();
                    assert_eq!(
                        (resources.len(), target),
                        (1, format!("{on}.Arn")),
                        "{id}: {action} only on {on}"
                    );
                }
            }
        }
    }
}

#[test]
fn remediation_has_no_public_trigger_and_changes_nothing_by_default() {
    let t = Template::load();
    let remediate = &t.resource("RemediateFunction")["Properties"];
    // Its one event is the schedule of the confirmation sweep, which only re-checks what
    // automatic requests left awaiting confirmation.
    let events = remediate["Events"]
        .as_mapping()
        .expect("the sweep's schedule");
    assert_eq!(events.len(), 1, "{events:?}");
    let (_, sweep) = events.iter().next().unwrap();
    assert_eq!(sweep["Type"].as_str(), Some("Schedule"), "{sweep:?}");
    assert_eq!(
        sweep["Properties"]["Schedule"].as_str(),
        Some("rate(5 minutes)"),
        "{sweep:?}"
    );
    assert!(remediate["FunctionUrlConfig"].is_null());
    let defaults = t.parameters(false);
    assert_eq!(defaults["AutoRemediate"], "off");
    assert_eq!(defaults["RemediationAllow"], "");
    // Only the ingest function may start it, and only when automatic remediation is on.
    for id in ["RebaselineFunction", "RemediateFunction"] {
        assert!(
            !t.code_actions(id).contains("lambda:InvokeFunction"),
            "{id}"
        );
    }
}

#[test]
fn each_function_may_read_exactly_the_secrets_it_is_configured_with() {
    let t = Template::load();
    for everything_on in [true, false] {
        let params = t.parameters(everything_on);
        let mut granted_anywhere = BTreeSet::new();
        for id in ["IngestFunction", "RebaselineFunction", "RemediateFunction"] {
            // The parameters the function reads: its `ssm:` references as deployed.
            let reads: BTreeSet<String> = t
                .environment(id, everything_on)
                .values()
                .filter_map(|v| v.strip_prefix("ssm:").map(str::to_owned))
                .collect();
            // The parameters it may read: each granted ARN as deployed, taking every `!If` as
            // the parameters decide.
            let mut granted = BTreeSet::new();
            for p in seq(&t.resource(id)["Properties"]["Policies"]) {
                for st in seq(&p["Statement"]) {
                    let st = match is_tag(st, "If") {
                        Some(args) => {
                            let args = seq(&args).to_vec();
                            let on = t.condition_any(args[0].as_str().unwrap(), &params);
                            args[if on { 1 } else { 2 }].clone()
                        }
                        None => st.clone(),
                    };
                    if !strings(&st["Action"])
                        .iter()
                        .any(|a| a == "ssm:GetParameter")
                    {
                        continue;
                    }
                    for r in seq(&st["Resource"]) {
                        let Some(arn) = t.resolve(r, &params) else {
                            continue;
                        };
                        assert!(!arn.ends_with('*'), "{id}: a path, not a parameter: {arn}");
                        let (_, name) = arn.split_once(":parameter").expect("a parameter ARN");
                        granted.insert(name.to_owned());
                    }
                }
            }
            assert_eq!(granted, reads, "{id} (everything on: {everything_on})");
            granted_anywhere.extend(granted);
        }
        if everything_on {
            // Remediation's write tokens are not readable by ingest, and the reverse.
            assert!(granted_anywhere.len() >= 7, "{granted_anywhere:?}");
        }
    }
}

#[test]
fn break_glass_accounts_reach_both_functions_and_automatic_remediation_without_them_is_flagged() {
    let t = Template::load();
    assert_eq!(t.parameters(false)["BreakGlassAccounts"], "");
    for everything_on in [false, true] {
        let listed: &[&str] = if everything_on {
            &["breakglass@acme.example", "00ubreakglass0000001"]
        } else {
            &[]
        };
        let env = t.environment("IngestFunction", everything_on);
        let c = provguard_ingest::config::Config::from_vars(pairs(&env)).unwrap();
        assert_eq!(c.break_glass, listed, "ingest ({everything_on})");
        let env = t.environment("RemediateFunction", everything_on);
        let c = provguard_remediate::config::Config::from_vars(pairs(&env)).unwrap();
        assert_eq!(c.break_glass, listed, "remediate ({everything_on})");
    }

    // The stack says so when automatic remediation is on and no break-glass account is given.
    let warning = &t.0["Outputs"]["BreakGlassWarning"];
    let condition = warning["Condition"].as_str().expect("a conditional output");
    let flagged = |auto: &str, accounts: &str| {
        let mut params = t.parameters(false);
        params.insert("AutoRemediate".into(), auto.into());
        params.insert("BreakGlassAccounts".into(), accounts.into());
        t.holds(&t.0["Conditions"][condition], &params)
    };
    assert!(flagged("critical", ""));
    assert!(flagged("high", ""));
    assert!(!flagged("off", ""), "nothing is remediated automatically");
    assert!(!flagged("critical", "breakglass@acme.example"));
    assert!(
        warning["Description"]
            .as_str()
            .is_some_and(|d| d.contains("BreakGlassAccounts")),
        "{warning:?}"
    );
}
