//! The remediate function's limits, through its handler on moto: IAM steps run only in the AWS
//! account the change was made in (moto serves several accounts: its default, 123456789012, and
//! any other named in the `x-moto-account-id` header); an hourly cap of 0 executes nothing;
//! provider ids outside their id form reach no provider.
//!
//! Skipped like the other AWS tests when moto is not reachable and `PROVGUARD_REQUIRE_AWS` is not
//! `1`.

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use provguard_remediate::{Idp, OwnAccount, Report, Status};
use serde_json::{Value, json};

use crate::aws::{Calls, t, unique};
use crate::lambda::{
    Aws, attached_policies, okta_grant, okta_idp, okta_server, remediate, remediate_deps_in, stored,
};

/// The demo organisation's AWS account: the samples' CloudTrail events were made there.
pub(crate) const DEMO_ACCOUNT: &str = "111122223333";
/// The account moto serves a request in when the request names none.
const MOTO_ACCOUNT: &str = "123456789012";
const ADMIN_POLICY: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

/// Sends a client's requests to one of moto's accounts (`None`: its default).
#[derive(Debug, Clone, Copy)]
pub(crate) struct InAccount(pub(crate) Option<&'static str>);

impl Intercept for InAccount {
    fn name(&self) -> &'static str {
        "provguard-tests-moto-account"
    }

    fn modify_before_signing(
        &self,
        ctx: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(account) = self.0 {
            ctx.request_mut()
                .headers_mut()
                .insert("x-moto-account-id", account);
        }
        Ok(())
    }
}

/// An IAM client acting in `account` of moto (`None`: its default).
pub(crate) fn iam_in(a: &Aws, account: Option<&'static str>) -> aws_sdk_iam::Client {
    aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(&a.m.config)
            .interceptor(InAccount(account))
            .build(),
    )
}

/// A user holding AdministratorAccess in the account `iam` acts in.
fn admin_user(a: &Aws, iam: &aws_sdk_iam::Client) -> String {
    let user = unique("bob");
    give_admin(a, iam, &user);
    user
}

/// Creates `user` holding AdministratorAccess in the account `iam` acts in.
pub(crate) fn give_admin(a: &Aws, iam: &aws_sdk_iam::Client, user: &str) {
    a.block_on(iam.create_user().user_name(user).send())
        .unwrap();
    a.block_on(
        iam.attach_user_policy()
            .user_name(user)
            .policy_arn(ADMIN_POLICY)
            .send(),
    )
    .expect(
        "moto has the AWS managed policies (start it with MOTO_IAM_LOAD_MANAGED_POLICIES=true)",
    );
}

/// A stored CloudTrail `AttachUserPolicy(AdministratorAccess)` to `user`, whose ARN names
/// `account`, recorded by the trail of `tenant`.
fn attach_event(a: &Aws, id: &str, tenant: &str, account: &str, user: &str) {
    stored(
        a,
        json!({
            "id": id, "source": "cloudtrail", "tenant": tenant, "time": "2026-11-03T02:00:00Z",
            "action": "grant_role", "outcome": "success",
            "actor": {"email": "anna.schmidt@acmerocket.example", "kind": "human"},
            "target": {"id": format!("arn:aws:iam::{account}:user/{user}"), "name": user, "kind": "unknown"},
            "entitlement": {"id": ADMIN_POLICY, "name": "AdministratorAccess", "kind": "policy", "privilege": "admin"},
            "channel": "console"
        }),
    );
}

fn run(id: &str, action: &str) -> Value {
    json!({"event_id": id, "action": action, "dry_run": false, "requested_by": "secops"})
}

fn assert_status(r: &Report, status: Status) {
    assert_eq!(r.status, status, "{r:#?}");
}

#[test]
fn a_member_accounts_change_is_never_reverted_with_the_central_accounts_credentials() {
    let Some(a) = Aws::new() else { return };
    // The function's credentials act in moto's default account.
    let sts = aws_sdk_sts::Client::new(&a.m.config);
    let who = a.block_on(sts.get_caller_identity().send()).unwrap();
    assert_eq!(who.account.as_deref(), Some(MOTO_ACCOUNT));
    let central = iam_in(&a, None);
    let deps = remediate_deps_in(
        &a,
        None,
        &["iam:DetachUserPolicy", "disable_account"],
        Idp::new(None, None, None),
    );

    // A change made in a member account to a user whose name also exists, holding the same
    // policy, in the central account: nothing is called, the central user keeps its policy.
    let namesake = admin_user(&a, &central);
    attach_event(&a, "member-1", DEMO_ACCOUNT, DEMO_ACCOUNT, &namesake);
    for action in ["revert", "disable_account"] {
        let r = remediate(&a, &deps, run("member-1", action));
        assert_status(&r, Status::PlanOnly);
        assert!(r.steps.is_empty(), "{r:#?}");
        assert_eq!(
            r.plan.as_ref().unwrap().account.as_deref(),
            Some(DEMO_ACCOUNT)
        );
        for needle in [DEMO_ACCOUNT, MOTO_ACCOUNT, "cross-account"] {
            assert!(r.message.contains(needle), "{needle}: {}", r.message);
        }
    }
    assert_eq!(attached_policies(&a, &central, &namesake), [ADMIN_POLICY]);

    // No such user in the central account: still not executed, never "already done" (the
    // member account's grant stays).
    attach_event(
        &a,
        "member-2",
        DEMO_ACCOUNT,
        DEMO_ACCOUNT,
        &unique("nobody"),
    );
    let r = remediate(&a, &deps, run("member-2", "revert"));
    assert_status(&r, Status::PlanOnly);
    assert!(r.steps.is_empty(), "{r:#?}");

    // A tenant that is not the ARN's account: no plan.
    attach_event(&a, "mixed", MOTO_ACCOUNT, DEMO_ACCOUNT, &namesake);
    let r = remediate(&a, &deps, run("mixed", "revert"));
    assert_status(&r, Status::Refused);
    assert!(
        r.message.contains("more than one AWS account"),
        "{}",
        r.message
    );
    assert_eq!(attached_policies(&a, &central, &namesake), [ADMIN_POLICY]);

    // A change made in the function's own account is reverted.
    attach_event(&a, "own", MOTO_ACCOUNT, MOTO_ACCOUNT, &namesake);
    let r = remediate(&a, &deps, run("own", "revert"));
    assert_status(&r, Status::Executed);
    assert!(attached_policies(&a, &central, &namesake).is_empty());

    let trail: Vec<provguard_remediate::AuditEntry> =
        a.store().remediation_audit("member-1").unwrap();
    assert!(
        trail
            .iter()
            .all(|e| e.kind == "request" && e.outcome == "plan_only"),
        "{trail:#?}"
    );
    a.assert_least_privilege();
}

#[test]
fn the_function_asks_sts_for_its_account_once_and_only_for_iam_plans() {
    let Some(a) = Aws::new() else { return };
    let (base, served, server) = okta_server(Default::default(), std::time::Duration::ZERO);
    let central = iam_in(&a, None);
    let mut deps = remediate_deps_in(
        &a,
        None,
        &["iam:DetachUserPolicy", "okta:*"],
        okta_idp(&base),
    );
    let sts = Calls::default();
    deps.account = OwnAccount::new(aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&a.m.config)
            .interceptor(sts.clone())
            .build(),
    ));

    // An Okta change and a dry run need no AWS account.
    okta_grant(&a, "okta-1", "00uasksts00000000001");
    assert_status(
        &remediate(&a, &deps, run("okta-1", "revert")),
        Status::Executed,
    );
    let user = admin_user(&a, &central);
    attach_event(&a, "own-1", MOTO_ACCOUNT, MOTO_ACCOUNT, &user);
    let dry = remediate(&a, &deps, json!({"event_id": "own-1", "action": "revert"}));
    assert_status(&dry, Status::Planned);
    assert!(sts.take().is_empty());

    // Each request goes through the handler with its own copy of the dependencies, as the
    // runtime's invocations do: STS is asked once for all of them.
    assert_status(
        &remediate(&a, &deps, run("own-1", "revert")),
        Status::Executed,
    );
    let other = admin_user(&a, &central);
    attach_event(&a, "own-2", MOTO_ACCOUNT, MOTO_ACCOUNT, &other);
    attach_event(&a, "member", DEMO_ACCOUNT, DEMO_ACCOUNT, &other);
    assert_status(
        &remediate(&a, &deps, run("member", "revert")),
        Status::PlanOnly,
    );
    assert_status(
        &remediate(&a, &deps, run("own-2", "revert")),
        Status::Executed,
    );
    assert_eq!(sts.take(), ["GetCallerIdentity"]);
    assert_eq!(*served.lock().unwrap(), 1);
    drop(server);
}

#[test]
fn an_hourly_cap_of_zero_executes_nothing() {
    let Some(a) = Aws::new() else { return };
    let central = iam_in(&a, None);
    let mut deps = remediate_deps_in(
        &a,
        None,
        &["iam:DetachUserPolicy"],
        Idp::new(None, None, None),
    );
    deps.max_per_hour = 0;
    let user = admin_user(&a, &central);
    attach_event(&a, "capped", MOTO_ACCOUNT, MOTO_ACCOUNT, &user);
    let now = (deps.clock)();

    let r = remediate(&a, &deps, run("capped", "revert"));
    assert_status(&r, Status::Refused);
    assert!(
        r.message
            .contains("PROVGUARD_REMEDIATION_MAX_PER_HOUR is 0"),
        "{}",
        r.message
    );
    assert!(r.steps.is_empty());
    assert_eq!(attached_policies(&a, &central, &user), [ADMIN_POLICY]);
    assert_eq!(a.store().remediations_this_hour(now).unwrap(), 0);

    // The counter itself grants no slot under a cap of 0, and takes nothing.
    let store = a.store();
    let hour = t("2026-11-03T11:15:00Z");
    assert!(!store.take_remediation_slot(hour, 0).unwrap());
    assert_eq!(store.remediations_this_hour(hour).unwrap(), 0);
    assert!(store.take_remediation_slot(hour, 1).unwrap());
    assert!(!store.take_remediation_slot(hour, 1).unwrap());

    // Refused is not a result: with a cap the same request runs.
    deps.max_per_hour = 1;
    let r = remediate(&a, &deps, run("capped", "revert"));
    assert_status(&r, Status::Executed);
    assert!(!r.earlier);
    assert!(attached_policies(&a, &central, &user).is_empty());
}

#[test]
fn provider_ids_outside_their_id_form_reach_no_provider() {
    let Some(a) = Aws::new() else { return };
    let (base, served, server) = okta_server(Default::default(), std::time::Duration::ZERO);
    let deps = remediate_deps_in(&a, None, &["okta:*"], okta_idp(&base));
    for (id, user, group) in [
        ("dots", "00uvictim00000000001", ".."),
        (
            "climb",
            "../users/00uvictim00000000001",
            "00g1prodadmins0demo7",
        ),
    ] {
        stored(
            &a,
            json!({
                "id": id, "source": "okta", "tenant": "acme", "time": "2026-11-03T02:00:00Z",
                "action": "add_to_group", "outcome": "success",
                "actor": {"email": "anna.schmidt@acmerocket.example", "kind": "human"},
                "target": {"id": user, "kind": "human"},
                "entitlement": {"id": group, "name": "prod-db-admins", "kind": "group"},
                "channel": "console"
            }),
        );
        let r = remediate(&a, &deps, run(id, "revert"));
        assert_status(&r, Status::Refused);
        assert!(r.message.contains("not an Okta id"), "{}", r.message);
    }
    let r = remediate(&a, &deps, run("climb", "disable_account"));
    assert_status(&r, Status::Refused);
    assert_eq!(*served.lock().unwrap(), 0, "no request reached Okta");
    drop(server);
}
