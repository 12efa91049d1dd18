//! Log filtering that keeps secrets out of logs at every level.
//!
//! provguard's own code never logs a secret, a presented credential or a request body. Some
//! dependencies do at TRACE: the Lambda runtime logs each raw invocation payload (a webhook's
//! `Authorization` header with it), and SigV4 signing logs the canonical request (with the
//! session token). So whatever level is asked for, those crates log at DEBUG at most.

/// Crates that log payloads or credentials at TRACE.
const CAPPED: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
];

/// The filter directives for a requested level or directive list (`AWS_LAMBDA_LOG_LEVEL`, else
/// `RUST_LOG`, else INFO): as asked, with [`CAPPED`] crates held at DEBUG when anything would
/// log at TRACE.
pub fn filter_directives(requested: Option<&str>) -> String {
    let requested = requested.map(str::trim).filter(|s| !s.is_empty());
    let mut out = requested.unwrap_or("info").to_owned();
    if out.to_ascii_lowercase().contains("trace") {
        for c in CAPPED {
            out.push_str(&format!(",{c}=debug"));
        }
    }
    out
}

/// The Lambda functions' subscriber: Lambda's logging controls (`AWS_LAMBDA_LOG_LEVEL`,
/// `AWS_LAMBDA_LOG_FORMAT=JSON`; `RUST_LOG` when no level is set), filtered by
/// [`filter_directives`].
#[cfg(feature = "aws")]
pub fn init_lambda() {
    use tracing_subscriber::EnvFilter;
    let requested = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok();
    let filter = EnvFilter::builder()
        .parse_lossy(filter_directives(requested.as_deref()).to_ascii_lowercase());
    let fmt = tracing_subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_ansi(false)
        .with_env_filter(filter);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        fmt.json().init();
    } else {
        fmt.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_never_reaches_the_crates_that_log_payloads_or_credentials() {
        assert_eq!(filter_directives(None), "info");
        assert_eq!(filter_directives(Some(" DEBUG ")), "DEBUG");
        let t = filter_directives(Some("TRACE"));
        assert!(t.starts_with("TRACE,lambda_runtime=debug,"), "{t}");
        assert!(t.contains(",aws_sigv4=debug"), "{t}");
        let mixed = filter_directives(Some("info,provguard_core=trace"));
        assert!(mixed.ends_with(",rustls=debug"), "{mixed}");
    }
}
