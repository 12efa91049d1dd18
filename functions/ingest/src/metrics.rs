//! CloudWatch Embedded Metric Format: one JSON object per invocation, written as one line to the
//! function's standard output, which CloudWatch Logs turns into metrics without any API call.
//!
//! ```json
//! {"_aws":{"Timestamp":1762048800000,"CloudWatchMetrics":[{"Namespace":"provguard",
//!   "Dimensions":[["Function","Trigger"]],"Metrics":[{"Name":"Events","Unit":"Count"},…]}]},
//!  "Function":"ingest","Trigger":"eventbridge","Events":1,"Dropped":0,"DeadLettered":0,
//!  "Alerts":1,"LatencyMs":42}
//! ```

use std::io::Write;
use std::sync::Mutex;

use serde_json::json;

/// The CloudWatch namespace of every provguard metric.
pub const NAMESPACE: &str = "provguard";

/// What one invocation counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub events: u64,
    pub dropped: u64,
    pub dead_lettered: u64,
    pub alerts: u64,
    pub latency_ms: u64,
}

/// The EMF document for one invocation (`timestamp_ms`: when it is emitted, Unix milliseconds).
pub fn document(trigger: &str, c: &Counts, timestamp_ms: u64) -> serde_json::Value {
    let count = |name: &str| json!({"Name": name, "Unit": "Count"});
    json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function", "Trigger"]],
                "Metrics": [
                    count("Events"),
                    count("Dropped"),
                    count("DeadLettered"),
                    count("Alerts"),
                    {"Name": "LatencyMs", "Unit": "Milliseconds"},
                ],
            }],
        },
        "Function": "ingest",
        "Trigger": trigger,
        "Events": c.events,
        "Dropped": c.dropped,
        "DeadLettered": c.dead_lettered,
        "Alerts": c.alerts,
        "LatencyMs": c.latency_ms,
    })
}

/// Writes EMF lines to a writer (standard output in the function, a buffer in tests).
pub struct Emf {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for Emf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emf").finish_non_exhaustive()
    }
}

impl Emf {
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Emf {
            out: Mutex::new(Box::new(out)),
        }
    }

    /// EMF on the process's standard output (what CloudWatch Logs reads in Lambda).
    pub fn stdout() -> Self {
        Emf::new(std::io::stdout())
    }

    /// Writes one invocation's metrics as one line; a write failure is logged, never fatal.
    pub fn emit(&self, trigger: &str, c: &Counts) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut line = document(trigger, c, now_ms).to_string();
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "could not write the metrics line");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_declares_every_metric_it_carries() {
        let c = Counts {
            events: 3,
            dropped: 1,
            dead_lettered: 2,
            alerts: 1,
            latency_ms: 17,
        };
        let d = document("http", &c, 1_762_048_800_000);
        let decl = &d["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(decl["Namespace"], "provguard");
        for m in decl["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(d[name].is_u64(), "{name} has a value");
        }
        for dim in decl["Dimensions"][0].as_array().unwrap() {
            assert!(d[dim.as_str().unwrap()].is_string());
        }
        assert_eq!(d["Events"], 3);
        assert_eq!(d["_aws"]["Timestamp"], 1_762_048_800_000u64);
    }
}
