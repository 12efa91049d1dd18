//! provguard core: normalize raw provisioning events, enrich them with business context, score
//! them against rolling baselines, and keep the audit trail.
//!
//! Hosts (the CLI, the Lambda functions, tests) only wire ports to adapters; the behaviour lives
//! here. See `DESIGN.md` for the contracts.

pub mod alert;
pub mod audit;
pub mod baseline;
pub mod config;
pub mod context;
pub mod detect;
pub mod email;
pub mod erase;
pub mod eval;
pub mod event;
pub mod logging;
pub mod normalize;
pub mod pipeline;
pub mod privilege;
pub mod remediate;
#[cfg(feature = "aws")]
pub mod secret;
pub mod store;
pub mod time;
pub mod verdict;
pub mod webhook;

pub use config::Config;
pub use event::Event;
pub use normalize::Normalizer;
pub use pipeline::{Mode, Pipeline, Stats};
pub use verdict::Verdict;

/// An error with its sources, `outer: inner: …`, for logs and Lambda error records.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
