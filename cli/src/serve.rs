//! `provguard serve`: the webhook routes of the ingest Lambda, locally, on the embedded store.
//! Verdicts are written to stdout as JSON lines, like `provguard ingest`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use provguard_core::store::SqliteStore;
use provguard_core::webhook::{self, Outcome, Request, WebhookSecrets};
use provguard_core::{Mode, Pipeline};

use crate::{build_normalizer, load_config};

/// Runs until killed, or after `max_requests` requests (tests).
pub fn run(
    config: Option<&Path>,
    state: &Path,
    addr: &str,
    mappings: &[String],
    max_requests: Option<usize>,
) -> Result<ExitCode> {
    let cfg = load_config(config)?;
    let normalizer = build_normalizer(&cfg, mappings)?;
    let secrets = WebhookSecrets::from_vars(
        std::env::vars()
            .collect::<Vec<_>>()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut pipeline = Pipeline::new(SqliteStore::open(state)?, normalizer, cfg.detect.clone())?;
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let routes = secrets.configured();
    tracing::info!(addr = %server.server_addr(), routes = ?routes, "listening");
    {
        let mut err = std::io::stderr().lock();
        writeln!(
            err,
            "listening on http://{} · routes: {}",
            server.server_addr(),
            if routes.is_empty() {
                "none configured (set PROVGUARD_OKTA_SECRET, PROVGUARD_ENTRA_CLIENT_STATE, PROVGUARD_GOOGLE_CHANNEL_TOKEN, PROVGUARD_SCIM_TOKEN or PROVGUARD_HMAC_<MAPPING>)".to_owned()
            } else {
                routes.join(", ")
            }
        )?;
    }
    // Signed requests processed, until the end of their replay windows.
    let mut replays: HashMap<String, DateTime<Utc>> = HashMap::new();
    for (served, mut http) in server.incoming_requests().enumerate() {
        // Logged: method, path (no query) and header names; never header values or bodies,
        // which carry secrets and presented credentials.
        let method = http.method().to_string();
        let path = http.url().split('?').next().unwrap_or_default().to_owned();
        tracing::debug!(
            %method,
            %path,
            headers = ?http.headers().iter().map(|h| h.field.as_str().as_str()).collect::<Vec<_>>(),
            "request received"
        );
        let response = handle(&mut pipeline, &secrets, &mut replays, &mut http);
        let (status, content_type, body) = match response {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "request failed");
                (
                    500,
                    "application/json",
                    r#"{"message":"internal error"}"#.to_owned(),
                )
            }
        };
        if status < 400 {
            tracing::info!(%method, %path, status, "answered");
        } else {
            tracing::warn!(%method, %path, status, answer = %body, "refused");
        }
        let header = tiny_http::Header::from_bytes("Content-Type", content_type)
            .map_err(|()| anyhow::anyhow!("bad header"))?;
        let mut response = tiny_http::Response::from_string(body)
            .with_status_code(status)
            .with_header(header);
        for (name, value) in webhook::RESPONSE_HEADERS {
            if let Ok(h) = tiny_http::Header::from_bytes(*name, *value) {
                response.add_header(h);
            }
        }
        let _ = http.respond(response);
        if max_requests.is_some_and(|m| served + 1 >= m) {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn handle(
    pipeline: &mut Pipeline<SqliteStore>,
    secrets: &WebhookSecrets,
    replays: &mut HashMap<String, DateTime<Utc>>,
    http: &mut tiny_http::Request,
) -> Result<(u16, &'static str, String)> {
    let url = http.url().to_owned();
    let (path, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let mut req = Request {
        method: http.method().as_str().to_owned(),
        path: path.to_owned(),
        query: query_pairs(query),
        ..Request::default()
    };
    for h in http.headers() {
        req.headers.insert(
            h.field.as_str().as_str().to_ascii_lowercase(),
            h.value.as_str().to_owned(),
        );
    }
    // Read one byte past the limit so an oversized body is refused, not truncated.
    http.as_reader()
        .take(webhook::MAX_BODY as u64 + 1)
        .read_to_end(&mut req.body)
        .context("cannot read the request body")?;
    let now = Utc::now();
    match webhook::route(&req, secrets, now) {
        Outcome::Respond {
            status,
            content_type,
            body,
        } => Ok((status, content_type, body)),
        Outcome::Ingest { source, body } => {
            if !pipeline.normalizer().has_source(&source) {
                return Ok((
                    404,
                    "application/json",
                    serde_json::json!({"message": format!("no mapping named {source}")})
                        .to_string(),
                ));
            }
            // Claimed before processing, given back if processing fails (see the ingest
            // function): the same signed request is processed once.
            let claim = webhook::replay_claim(&req, secrets);
            if let Some((k, until)) = &claim {
                replays.retain(|_, until| *until >= now);
                if replays.contains_key(k) {
                    if let Outcome::Respond {
                        status,
                        content_type,
                        body,
                    } = webhook::replayed()
                    {
                        return Ok((status, content_type, body));
                    }
                }
                replays.insert(k.clone(), *until);
            }
            let stdout = std::io::stdout();
            let stats = pipeline
                .process_bytes(&body, Some(&source), Mode::Score, now, &mut |v| {
                    let mut out = stdout.lock();
                    let _ = writeln!(out, "{}", serde_json::to_string(v).unwrap_or_default());
                })
                .inspect_err(|_| {
                    if let Some((k, _)) = &claim {
                        replays.remove(k);
                    }
                })?;
            Ok((
                200,
                "application/json",
                serde_json::json!({
                    "records": stats.records,
                    "verdicts": stats.verdicts,
                    "alerts": stats.alerts,
                    "duplicates": stats.duplicates,
                    "dropped": stats.dropped,
                    "dead_lettered": stats.dead_lettered,
                })
                .to_string(),
            ))
        }
    }
}

/// `a=1&b=x%20y` → map (application/x-www-form-urlencoded decoding).
fn query_pairs(q: &str) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_are_decoded() {
        let q = query_pairs("validationToken=Validation%3A%20Token+1&x=");
        assert_eq!(q["validationToken"], "Validation: Token 1");
        assert_eq!(q["x"], "");
    }
}
