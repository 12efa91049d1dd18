//! The ingest Lambda's entry point: wiring only (see the library for the behaviour).

use std::sync::Arc;

use provguard_core::alert::SnsSink;
use provguard_core::store::DynamoDbStore;
use provguard_core::webhook::WebhookSecrets;
use provguard_core::{Pipeline, secret};
use provguard_ingest::config::Config;
use provguard_ingest::{Deps, LambdaTrigger, handle, normalizer};
use tokio::runtime::Handle;

/// The pipeline (and VRL's compiler, on a cold start) allocates many small values: mimalloc
/// serves them faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    provguard_core::logging::init_lambda();
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let cfg = Config::from_vars(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let core = provguard_core::Config::load_optional(cfg.config_file.as_deref())?;
    let normalizer = normalizer(&core)?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let resolved = secret::resolve(
        &aws_sdk_ssm::Client::new(&sdk),
        cfg.webhook_vars.clone(),
        |_| true,
    )
    .await?;
    let secrets = WebhookSecrets::from_vars(resolved.iter().map(|(k, v)| (k.as_str(), v.as_str())));

    let rt = Handle::current();
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let store = DynamoDbStore::new(dynamodb.clone(), cfg.table.clone(), rt.clone());
    let guard = DynamoDbStore::new(dynamodb, cfg.table.clone(), rt.clone());
    // A table a newer provguard wrote stops the cold start before anything is read or written.
    let store = tokio::task::spawn_blocking(move || store.check_schema().map(|_| store)).await??;
    let sink = SnsSink::new(
        aws_sdk_sns::Client::new(&sdk),
        cfg.topic_arn.clone(),
        rt,
        guard,
    );
    let mut detect = core.detect.clone();
    detect.break_glass = cfg.break_glass_with(&core.detect.break_glass);
    if cfg.auto_remediate.is_some() && detect.break_glass.is_empty() {
        // Automatic remediation could disable an emergency account or revert what it did.
        tracing::warn!(
            auto_remediate = ?cfg.auto_remediate,
            configure = "PROVGUARD_BREAK_GLASS (BreakGlassAccounts) or break_glass in PROVGUARD_CONFIG",
            "automatic remediation is on and no break-glass account is configured"
        );
    }
    // Loading the context reads the table: a blocking call.
    let pipeline =
        tokio::task::spawn_blocking(move || Pipeline::new(store, normalizer, detect)).await??;
    tracing::info!(table = %cfg.table, routes = ?secrets.configured(), auto_remediate = ?cfg.auto_remediate, "ready");

    let mut deps = Deps::new(pipeline, Arc::new(sink), secrets);
    if let (Some(min), Some(function)) = (cfg.auto_remediate, &cfg.remediate_function) {
        let trigger = LambdaTrigger::new(aws_sdk_lambda::Client::new(&sdk), function.clone());
        deps = deps.with_auto_remediation(Arc::new(trigger), min);
    }
    let deps = &deps;
    lambda_runtime::run(lambda_runtime::service_fn(move |event| handle(deps, event))).await
}
