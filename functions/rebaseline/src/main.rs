//! The rebaseline Lambda's entry point: wiring only (see the library for the behaviour).

use std::sync::Arc;

use provguard_core::store::DynamoDbStore;
use provguard_rebaseline::config::Config;
use provguard_rebaseline::{Deps, handle};

/// Rebaseline decodes and drops a value per stored event: mimalloc serves these small, short-lived
/// allocations faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    provguard_core::logging::init_lambda();
    let vars: Vec<(String, String)> = std::env::vars().collect();
    let cfg = Config::from_vars(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let core = provguard_core::Config::load_optional(cfg.config_file.as_deref())?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoDbStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        cfg.table.clone(),
        tokio::runtime::Handle::current(),
    );
    // A table a newer provguard wrote stops the cold start before anything is read or written.
    let store = tokio::task::spawn_blocking(move || store.check_schema().map(|_| store)).await??;
    let deps = Deps {
        store: Arc::new(store),
        detect: core.detect,
        window_days: cfg.window_days,
        page_size: cfg.page_size,
        reserve: std::time::Duration::from_millis(cfg.reserve_ms),
        min_interval: chrono::Duration::hours(cfg.min_interval_hours),
    };
    tracing::info!(table = %cfg.table, window_days = cfg.window_days, page_size = cfg.page_size, "ready");
    let deps = &deps;
    lambda_runtime::run(lambda_runtime::service_fn(move |event| handle(deps, event))).await
}
