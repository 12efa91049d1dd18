//! The remediate Lambda's entry point: wiring only (see the library for the behaviour).

use std::sync::Arc;

use provguard_core::secret;
use provguard_core::store::DynamoDbStore;
use provguard_remediate::config::{Config, SECRET_VARS};
use provguard_remediate::sweep::dispatch;
use provguard_remediate::{Deps, Idp, OwnAccount, confirm};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    provguard_core::logging::init_lambda();
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // Tokens given as ssm:<parameter> are read once, here; never logged.
    let vars = secret::resolve(
        &aws_sdk_ssm::Client::new(&sdk),
        std::env::vars().collect(),
        |name| SECRET_VARS.contains(&name),
    )
    .await?;
    let cfg = Config::from_vars(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let core = provguard_core::Config::load_optional(cfg.config_file.as_deref())?;
    let rt = tokio::runtime::Handle::current();
    let store = DynamoDbStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        cfg.table.clone(),
        rt.clone(),
    );
    // A table a newer provguard wrote stops the cold start before anything is read or written.
    let store = tokio::task::spawn_blocking(move || store.check_schema().map(|_| store)).await??;
    let deps = Deps {
        store: Arc::new(store),
        iam: aws_sdk_iam::Client::new(&sdk),
        account: OwnAccount::new(aws_sdk_sts::Client::new(&sdk)),
        rt,
        idp: Arc::new(Idp::new(
            cfg.okta.clone(),
            cfg.entra.clone(),
            cfg.google.clone(),
        )),
        allow: cfg.allow.clone(),
        max_per_hour: cfg.max_per_hour,
        break_glass: cfg.break_glass_with(&core.detect.break_glass),
        clock: chrono::Utc::now,
    };
    if deps.break_glass.is_empty() && !deps.allow.is_empty() && deps.max_per_hour > 0 {
        // Nothing would keep the emergency accounts from being disabled or their changes reverted.
        tracing::warn!(
            allow = ?deps.allow,
            configure = "PROVGUARD_BREAK_GLASS (BreakGlassAccounts) or break_glass in PROVGUARD_CONFIG",
            "remediation may execute and no break-glass account is configured"
        );
    }
    confirm::prepare();
    tracing::info!(config = ?cfg, "ready");
    let deps = &deps;
    lambda_runtime::run(lambda_runtime::service_fn(move |event| {
        dispatch(deps, event)
    }))
    .await
}
