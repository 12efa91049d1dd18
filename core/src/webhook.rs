//! Webhook routes shared by the ingest Lambda (Function URL) and `provguard serve`: each
//! provider's handshake and authentication, then the body handed to the pipeline.
//!
//! | route | provider | handshake | authentication |
//! |---|---|---|---|
//! | `GET /okta` | Okta Event Hooks | answers `x-okta-verification-challenge` with `{"verification": …}` | `Authorization` header equals the shared secret |
//! | `POST /okta` | Okta Event Hooks | — | same |
//! | `POST /entra` | Microsoft Graph change notifications | `?validationToken=…` echoed as `text/plain` | every notification's `clientState` equals the secret |
//! | `POST /google` | Google Workspace push channels | `X-Goog-Resource-State: sync` acknowledged | `X-Goog-Channel-Token` equals the secret |
//! | `POST /scim/…` | SCIM mirror | — | `Authorization: Bearer <token>` |
//! | `POST /hook/{mapping}` | any source with a VRL mapping | — | `X-Provguard-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>` with `X-Provguard-Timestamp` (Unix seconds) within the replay window |
//!
//! Secret comparisons are constant-time; secrets never appear in errors or logs. Handlers
//! return 401 for a bad credential without saying which part was wrong, 413 for bodies over
//! [`MAX_BODY`], 404 for unknown routes, and 503 for a route whose secret is not configured.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Largest body accepted (Lambda Function URLs accept 6 MB; provisioning deliveries are small).
pub const MAX_BODY: usize = 1024 * 1024;

/// Largest body accepted once a gzip body is inflated: [`MAX_BODY`] is checked on the bytes
/// received, and a megabyte of gzip can inflate to a gigabyte on a 256 MB function.
pub const MAX_INFLATED_BODY: u64 = 4 * 1024 * 1024;

/// Longest Microsoft Graph `validationToken` echoed (Graph's are a few hundred characters).
pub const MAX_VALIDATION_TOKEN: usize = 1024;

/// Headers every webhook answer carries: an echoed token or message is never sniffed into
/// something a browser would run.
pub const RESPONSE_HEADERS: &[(&str, &str)] = &[("X-Content-Type-Options", "nosniff")];

/// Default tolerance for signed custom-mapping requests, seconds.
pub const DEFAULT_REPLAY_WINDOW_SECS: i64 = 300;

/// Shared secrets, one per route (read once at start-up from SSM / Secrets Manager / env).
#[derive(Clone, Default)]
pub struct WebhookSecrets {
    pub okta: Option<String>,
    pub entra_client_state: Option<String>,
    pub google_channel_token: Option<String>,
    pub scim_bearer: Option<String>,
    /// Custom mapping name → HMAC key.
    pub hmac: HashMap<String, String>,
    pub replay_window_secs: i64,
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Which routes are configured, never the values.
        f.debug_struct("WebhookSecrets")
            .field("okta", &self.okta.is_some())
            .field("entra_client_state", &self.entra_client_state.is_some())
            .field("google_channel_token", &self.google_channel_token.is_some())
            .field("scim_bearer", &self.scim_bearer.is_some())
            .field("hmac", &self.hmac.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Environment variables the hosts read the secrets from (values, or `ssm:`/`secretsmanager:`
/// references that the Lambda resolves at cold start).
pub mod vars {
    pub const OKTA: &str = "PROVGUARD_OKTA_SECRET";
    pub const ENTRA: &str = "PROVGUARD_ENTRA_CLIENT_STATE";
    pub const GOOGLE: &str = "PROVGUARD_GOOGLE_CHANNEL_TOKEN";
    pub const SCIM: &str = "PROVGUARD_SCIM_TOKEN";
    /// `PROVGUARD_HMAC_<MAPPING>`: the HMAC key of a custom mapping (name lower-cased).
    pub const HMAC_PREFIX: &str = "PROVGUARD_HMAC_";
    pub const REPLAY_WINDOW: &str = "PROVGUARD_REPLAY_WINDOW_SECS";
}

impl WebhookSecrets {
    /// Reads the secrets from variables (`lookup` is the environment in hosts, a map in tests).
    pub fn from_vars<'a>(vars_iter: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut s = WebhookSecrets {
            replay_window_secs: DEFAULT_REPLAY_WINDOW_SECS,
            ..WebhookSecrets::default()
        };
        for (k, v) in vars_iter {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            match k {
                vars::OKTA => s.okta = Some(v.to_owned()),
                vars::ENTRA => s.entra_client_state = Some(v.to_owned()),
                vars::GOOGLE => s.google_channel_token = Some(v.to_owned()),
                vars::SCIM => s.scim_bearer = Some(v.to_owned()),
                vars::REPLAY_WINDOW => {
                    if let Ok(n) = v.parse() {
                        s.replay_window_secs = n;
                    }
                }
                k if k.starts_with(vars::HMAC_PREFIX) => {
                    s.hmac
                        .insert(k[vars::HMAC_PREFIX.len()..].to_lowercase(), v.to_owned());
                }
                _ => {}
            }
        }
        s
    }

    /// Names of the configured routes (for start-up logs; never the values).
    pub fn configured(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, on) in [
            ("/okta", self.okta.is_some()),
            ("/entra", self.entra_client_state.is_some()),
            ("/google", self.google_channel_token.is_some()),
            ("/scim", self.scim_bearer.is_some()),
        ] {
            if on {
                out.push(name.to_owned());
            }
        }
        let mut hooks: Vec<_> = self.hmac.keys().map(|k| format!("/hook/{k}")).collect();
        hooks.sort();
        out.extend(hooks);
        out
    }
}

/// An HTTP request, as the host received it.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub query: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What the host should do with a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Answer directly (handshakes, rejections).
    Respond {
        status: u16,
        content_type: &'static str,
        body: String,
    },
    /// Authenticated: run these bytes through the pipeline with this source, then answer
    /// with `status` (and the pipeline's summary as the body).
    Ingest { source: String, body: Vec<u8> },
}

fn respond(status: u16, message: &str) -> Outcome {
    Outcome::Respond {
        status,
        content_type: "application/json",
        body: serde_json::json!({ "message": message }).to_string(),
    }
}

/// Constant-time equality of a presented credential and the configured secret.
pub fn secret_eq(presented: &str, secret: &str) -> bool {
    // Lengths may differ; ct_eq on slices of unequal length returns false without early exit
    // over the contents.
    presented.as_bytes().ct_eq(secret.as_bytes()).into()
}

/// `sha256=<hex>` of HMAC-SHA256(key, timestamp + "." + body).
pub fn sign(key: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn verify_signature(key: &str, timestamp: &str, body: &[u8], presented: &str) -> bool {
    let Some(hex_sig) = presented.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&sig).is_ok()
}

/// Routes one request. `now` bounds the replay window of signed requests.
pub fn route(req: &Request, secrets: &WebhookSecrets, now: DateTime<Utc>) -> Outcome {
    if req.body.len() > MAX_BODY {
        return respond(413, "body too large");
    }
    if crate::normalize::is_gzip(&req.body) {
        // Inflated here, once and bounded, so nothing downstream inflates a webhook body.
        return match crate::normalize::gunzip(&req.body, MAX_INFLATED_BODY) {
            Ok(body) if crate::normalize::is_gzip(&body) => {
                respond(415, "gzip inside gzip is not accepted")
            }
            Ok(body) => route(
                &Request {
                    body,
                    ..req.clone()
                },
                secrets,
                now,
            ),
            Err(crate::normalize::GunzipError::TooLarge(_)) => {
                respond(413, "body too large once decompressed")
            }
            Err(crate::normalize::GunzipError::Corrupt(_)) => {
                respond(400, "body cannot be decompressed")
            }
        };
    }
    let path = req.path.trim_end_matches('/');
    let method = req.method.to_ascii_uppercase();
    match (method.as_str(), path) {
        ("GET", "/okta") | ("POST", "/okta") => okta(req, secrets, &method),
        ("POST", "/entra") => entra(req, secrets),
        ("POST", "/google") => google(req, secrets),
        ("POST" | "PUT" | "PATCH" | "DELETE", p) if p == "/scim" || p.starts_with("/scim/") => {
            scim(req, secrets, &method, now)
        }
        ("POST", p) if p.starts_with("/hook/") => custom(req, secrets, &p["/hook/".len()..], now),
        ("GET", "/health") => respond(200, "ok"),
        _ => respond(404, "no such route"),
    }
}

fn okta(req: &Request, secrets: &WebhookSecrets, method: &str) -> Outcome {
    let Some(secret) = secrets.okta.as_deref() else {
        return respond(503, "the okta route is not configured");
    };
    if !req
        .header("authorization")
        .is_some_and(|a| secret_eq(a, secret))
    {
        return respond(401, "unauthorized");
    }
    if method == "GET" {
        return match req.header("x-okta-verification-challenge") {
            Some(challenge) => Outcome::Respond {
                status: 200,
                content_type: "application/json",
                body: serde_json::json!({ "verification": challenge }).to_string(),
            },
            None => respond(400, "missing x-okta-verification-challenge"),
        };
    }
    Outcome::Ingest {
        source: "okta".into(),
        body: req.body.clone(),
    }
}

fn entra(req: &Request, secrets: &WebhookSecrets) -> Outcome {
    let Some(secret) = secrets.entra_client_state.as_deref() else {
        return respond(503, "the entra route is not configured");
    };
    if let Some(token) = req.query.get("validationToken") {
        // Subscription validation: echo the token as plain text within 10 seconds. Only on a
        // configured route, and only a token of a sane length: the echo is text the caller
        // chose, served from this host (hosts also send `X-Content-Type-Options: nosniff`).
        if token.len() > MAX_VALIDATION_TOKEN {
            return respond(400, "validationToken too long");
        }
        return Outcome::Respond {
            status: 200,
            content_type: "text/plain",
            body: token.clone(),
        };
    }
    let Ok(doc) = serde_json::from_slice::<Json>(&req.body) else {
        return respond(400, "body is not JSON");
    };
    let Some(items) = doc.get("value").and_then(Json::as_array) else {
        return respond(
            400,
            "expected a change notification collection {\"value\": [...]}",
        );
    };
    let all_ok = !items.is_empty()
        && items.iter().all(|n| {
            n.get("clientState")
                .and_then(Json::as_str)
                .is_some_and(|c| secret_eq(c, secret))
        });
    if !all_ok {
        return respond(401, "unauthorized");
    }
    // Each notification carries its audit record in `resourceData`; without one there is
    // nothing to score and the record is dropped by the normalizer.
    let records: Vec<Json> = items
        .iter()
        .map(|n| n.get("resourceData").cloned().unwrap_or_else(|| n.clone()))
        .collect();
    Outcome::Ingest {
        source: "entra".into(),
        body: serde_json::to_vec(&records).unwrap_or_default(),
    }
}

fn google(req: &Request, secrets: &WebhookSecrets) -> Outcome {
    let Some(secret) = secrets.google_channel_token.as_deref() else {
        return respond(503, "the google route is not configured");
    };
    if !req
        .header("x-goog-channel-token")
        .is_some_and(|t| secret_eq(t, secret))
    {
        return respond(401, "unauthorized");
    }
    if req.header("x-goog-resource-state") == Some("sync") {
        return respond(200, "channel synced");
    }
    Outcome::Ingest {
        source: "gworkspace".into(),
        body: req.body.clone(),
    }
}

fn scim(req: &Request, secrets: &WebhookSecrets, method: &str, now: DateTime<Utc>) -> Outcome {
    let Some(secret) = secrets.scim_bearer.as_deref() else {
        return respond(503, "the scim route is not configured");
    };
    let ok = req
        .header("authorization")
        .and_then(|a| {
            a.strip_prefix("Bearer ")
                .or_else(|| a.strip_prefix("bearer "))
        })
        .is_some_and(|t| secret_eq(t.trim(), secret));
    if !ok {
        return respond(401, "unauthorized");
    }
    let body: Json = if req.body.is_empty() {
        Json::Null
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(b) => b,
            Err(_) => return respond(400, "body is not JSON"),
        }
    };
    let envelope = serde_json::json!({
        "method": method,
        "path": req.path.trim_start_matches("/scim"),
        "body": body,
        "received_at": now.to_rfc3339(),
    });
    Outcome::Ingest {
        source: "scim".into(),
        body: serde_json::to_vec(&envelope).unwrap_or_default(),
    }
}

fn custom(req: &Request, secrets: &WebhookSecrets, mapping: &str, now: DateTime<Utc>) -> Outcome {
    let Some(key) = secrets.hmac.get(mapping) else {
        return respond(404, "no such mapping");
    };
    let (Some(ts), Some(sig)) = (
        req.header("x-provguard-timestamp"),
        req.header("x-provguard-signature"),
    ) else {
        return respond(401, "unauthorized");
    };
    let window = replay_window(secrets);
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| now.timestamp().abs_diff(t) <= window.unsigned_abs());
    if !fresh || !verify_signature(key, ts, &req.body, sig) {
        return respond(401, "unauthorized");
    }
    Outcome::Ingest {
        source: mapping.to_owned(),
        body: req.body.clone(),
    }
}

/// How far a signed request's timestamp may be from the time it is received, seconds.
pub fn replay_window(secrets: &WebhookSecrets) -> i64 {
    if secrets.replay_window_secs > 0 {
        secrets.replay_window_secs
    } else {
        DEFAULT_REPLAY_WINDOW_SECS
    }
}

/// The key under which a host remembers a signed request, to refuse the same request sent
/// again inside the replay window ([`replayed`]): the SHA-256 of the signature's decoded bytes,
/// so the same signature written in upper- or lower-case hex is the same key. Only `/hook/`
/// requests are signed per request; the other routes authenticate with a static secret, their
/// senders re-deliver on purpose, and a re-delivery changes nothing (idempotent on the event id).
pub fn replay_key(req: &Request) -> Option<String> {
    if !req.path.starts_with("/hook/") {
        return None;
    }
    let sig = req.header("x-provguard-signature")?.trim();
    let bytes = hex::decode(sig.strip_prefix("sha256=")?).ok()?;
    Some(hex::encode(Sha256::digest(&bytes)))
}

/// A signed request's replay claim: its key and how long to keep it — until the request's own
/// timestamp plus the window, the last moment the signature is accepted as fresh.
pub fn replay_claim(req: &Request, secrets: &WebhookSecrets) -> Option<(String, DateTime<Utc>)> {
    let key = replay_key(req)?;
    let ts = req
        .header("x-provguard-timestamp")?
        .trim()
        .parse::<i64>()
        .ok()?;
    let until = DateTime::from_timestamp(ts, 0)
        .map(|t| crate::time::after(t, crate::time::seconds(replay_window(secrets))))
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    Some((key, until))
}

/// The answer to a signed request whose signature was already used.
pub fn replayed() -> Outcome {
    respond(409, "replayed request: this signature was already used")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_signed_requests_have_a_replay_key() {
        let mut r = Request {
            method: "POST".into(),
            path: "/hook/hr".into(),
            ..Request::default()
        };
        assert_eq!(replay_key(&r), None);
        r.headers
            .insert("x-provguard-signature".into(), "sha256=ab".into());
        let k = replay_key(&r).unwrap();
        assert_eq!(k.len(), 64);
        r.path = "/okta".into();
        assert_eq!(replay_key(&r), None);
        assert!(matches!(replayed(), Outcome::Respond { status: 409, .. }));
    }

    #[test]
    fn the_replay_key_is_the_signature_bytes_whatever_the_hex_case() {
        let signed = |sig: &str| Request {
            method: "POST".into(),
            path: "/hook/hr".into(),
            headers: HashMap::from([
                ("x-provguard-signature".to_owned(), sig.to_owned()),
                ("x-provguard-timestamp".to_owned(), "1762048800".to_owned()),
            ]),
            ..Request::default()
        };
        let lower = replay_key(&signed("sha256=abcdef01")).unwrap();
        assert_eq!(replay_key(&signed("sha256=ABCDEF01")).unwrap(), lower);
        assert_eq!(replay_key(&signed(" sha256=AbCdEf01 ")).unwrap(), lower);
        assert_ne!(replay_key(&signed("sha256=abcdef02")).unwrap(), lower);
        // Kept until the request's own timestamp plus the window, not the time it arrived.
        let (key, until) = replay_claim(&signed("sha256=abcdef01"), &secrets()).unwrap();
        assert_eq!(key, lower);
        assert_eq!(until.timestamp(), 1_762_048_800 + 300);
    }

    #[test]
    fn a_timestamp_at_the_end_of_the_range_is_stale_not_a_panic() {
        let s = secrets();
        let body = "{}";
        for ts in [i64::MIN, i64::MAX, i64::MIN + 1] {
            let ts = ts.to_string();
            let sig = sign("hr-key", &ts, body.as_bytes());
            let r = req(
                "POST",
                "/hook/hr",
                &[
                    ("X-Provguard-Timestamp", &ts),
                    ("X-Provguard-Signature", &sig),
                ],
                body,
            );
            assert_eq!(status(&route(&r, &s, now())), 401, "{ts}");
            assert!(replay_claim(&r, &s).is_some());
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn a_gzip_body_is_inflated_once_and_a_bomb_refused_with_413() {
        let s = secrets();
        let auth = [("Authorization", "okta-secret")];
        // 64 MiB of spaces compress to about 64 KiB: under MAX_BODY as sent.
        let bomb = gzip(&vec![b' '; 64 * 1024 * 1024]);
        assert!(bomb.len() < MAX_BODY);
        let mut r = req("POST", "/okta", &auth, "");
        r.body = bomb;
        assert_eq!(status(&route(&r, &s, now())), 413);
        // Gzip inside gzip would reach the pipeline still compressed: refused.
        r.body = gzip(&gzip(b"{}"));
        assert_eq!(status(&route(&r, &s, now())), 415);
        r.body = b"\x1f\x8bnot gzip at all".to_vec();
        assert_eq!(status(&route(&r, &s, now())), 400);
        r.body = gzip(br#"{"uuid":"u1"}"#);
        match route(&r, &s, now()) {
            Outcome::Ingest { source, body } => {
                assert_eq!(source, "okta");
                assert_eq!(body, br#"{"uuid":"u1"}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    fn secrets() -> WebhookSecrets {
        WebhookSecrets {
            okta: Some("okta-secret".into()),
            entra_client_state: Some("entra-state".into()),
            google_channel_token: Some("goog-token".into()),
            scim_bearer: Some("scim-token".into()),
            hmac: HashMap::from([("hr".to_owned(), "hr-key".to_owned())]),
            replay_window_secs: 300,
        }
    }

    fn req(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
            query: HashMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-05-04T10:00:00Z".parse().unwrap()
    }

    fn status(o: &Outcome) -> u16 {
        match o {
            Outcome::Respond { status, .. } => *status,
            Outcome::Ingest { .. } => 0,
        }
    }

    #[test]
    fn okta_verification_and_delivery_need_the_shared_secret() {
        let s = secrets();
        let o = route(
            &req(
                "GET",
                "/okta",
                &[
                    ("Authorization", "okta-secret"),
                    ("x-okta-verification-challenge", "abc"),
                ],
                "",
            ),
            &s,
            now(),
        );
        assert_eq!(
            o,
            Outcome::Respond {
                status: 200,
                content_type: "application/json",
                body: r#"{"verification":"abc"}"#.into()
            }
        );
        let bad = route(
            &req("POST", "/okta", &[("Authorization", "okta-secreT")], "{}"),
            &s,
            now(),
        );
        assert_eq!(status(&bad), 401);
        let ok = route(
            &req("POST", "/okta", &[("Authorization", "okta-secret")], "{}"),
            &s,
            now(),
        );
        assert!(matches!(ok, Outcome::Ingest { ref source, .. } if source == "okta"));
    }

    #[test]
    fn graph_validation_echoes_and_notifications_check_client_state() {
        let s = secrets();
        let mut r = req("POST", "/entra", &[], "");
        r.query
            .insert("validationToken".into(), "Validation: token 123".into());
        assert_eq!(
            route(&r, &s, now()),
            Outcome::Respond {
                status: 200,
                content_type: "text/plain",
                body: "Validation: token 123".into()
            }
        );
        let body = r#"{"value":[{"clientState":"entra-state","resourceData":{"id":"a1","activityDisplayName":"Add user"}}]}"#;
        match route(&req("POST", "/entra", &[], body), &s, now()) {
            Outcome::Ingest { source, body } => {
                assert_eq!(source, "entra");
                let v: Json = serde_json::from_slice(&body).unwrap();
                assert_eq!(v[0]["id"], "a1");
            }
            other => panic!("{other:?}"),
        }
        // Only a configured route echoes, and only a token of a sane length.
        let unconfigured = WebhookSecrets::default();
        assert_eq!(status(&route(&r, &unconfigured, now())), 503);
        r.query.insert(
            "validationToken".into(),
            "x".repeat(MAX_VALIDATION_TOKEN + 1),
        );
        assert_eq!(status(&route(&r, &s, now())), 400);
        let forged = body.replace("entra-state", "guess");
        assert_eq!(
            status(&route(&req("POST", "/entra", &[], &forged), &s, now())),
            401
        );
    }

    #[test]
    fn google_channels_sync_and_check_the_token() {
        let s = secrets();
        let sync = route(
            &req(
                "POST",
                "/google",
                &[
                    ("X-Goog-Channel-Token", "goog-token"),
                    ("X-Goog-Resource-State", "sync"),
                ],
                "",
            ),
            &s,
            now(),
        );
        assert_eq!(status(&sync), 200);
        assert_eq!(
            status(&route(
                &req("POST", "/google", &[("X-Goog-Channel-Token", "nope")], "{}"),
                &s,
                now()
            )),
            401
        );
    }

    #[test]
    fn scim_requests_become_envelopes() {
        let s = secrets();
        let o = route(
            &req(
                "PATCH",
                "/scim/Users/42",
                &[("Authorization", "Bearer scim-token")],
                r#"{"Operations":[]}"#,
            ),
            &s,
            now(),
        );
        let Outcome::Ingest { source, body } = o else {
            panic!()
        };
        assert_eq!(source, "scim");
        let v: Json = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["method"], "PATCH");
        assert_eq!(v["path"], "/Users/42");
        assert_eq!(v["received_at"], "2026-05-04T10:00:00+00:00");
        assert_eq!(
            status(&route(
                &req(
                    "POST",
                    "/scim/Users",
                    &[("Authorization", "Bearer x")],
                    "{}"
                ),
                &s,
                now()
            )),
            401
        );
    }

    #[test]
    fn signed_custom_requests_verify_hmac_and_the_replay_window() {
        let s = secrets();
        let body = r#"{"type":"role_added"}"#;
        let ts = now().timestamp().to_string();
        let sig = sign("hr-key", &ts, body.as_bytes());
        let ok = route(
            &req(
                "POST",
                "/hook/hr",
                &[
                    ("X-Provguard-Timestamp", &ts),
                    ("X-Provguard-Signature", &sig),
                ],
                body,
            ),
            &s,
            now(),
        );
        assert!(matches!(ok, Outcome::Ingest { ref source, .. } if source == "hr"));
        // Tampered body, stale timestamp, unknown mapping.
        let tampered = route(
            &req(
                "POST",
                "/hook/hr",
                &[
                    ("X-Provguard-Timestamp", &ts),
                    ("X-Provguard-Signature", &sig),
                ],
                "{}",
            ),
            &s,
            now(),
        );
        assert_eq!(status(&tampered), 401);
        let late = now() + chrono::Duration::seconds(301);
        let stale = route(
            &req(
                "POST",
                "/hook/hr",
                &[
                    ("X-Provguard-Timestamp", &ts),
                    ("X-Provguard-Signature", &sig),
                ],
                body,
            ),
            &s,
            late,
        );
        assert_eq!(status(&stale), 401);
        assert_eq!(
            status(&route(&req("POST", "/hook/nope", &[], body), &s, now())),
            404
        );
    }

    #[test]
    fn secrets_come_from_variables() {
        let s = WebhookSecrets::from_vars([
            (vars::OKTA, "a"),
            (vars::SCIM, " "),
            ("PROVGUARD_HMAC_HR", "k"),
            (vars::REPLAY_WINDOW, "60"),
            ("HOME", "/root"),
        ]);
        assert_eq!(s.okta.as_deref(), Some("a"));
        assert_eq!(s.scim_bearer, None, "blank means unset");
        assert_eq!(s.hmac["hr"], "k");
        assert_eq!(s.replay_window_secs, 60);
        assert_eq!(s.configured(), ["/okta", "/hook/hr"]);
    }

    #[test]
    fn limits_and_unconfigured_routes() {
        let mut r = req("POST", "/okta", &[("Authorization", "okta-secret")], "");
        r.body = vec![b' '; MAX_BODY + 1];
        assert_eq!(status(&route(&r, &secrets(), now())), 413);
        let none = WebhookSecrets::default();
        assert_eq!(
            status(&route(&req("POST", "/okta", &[], "{}"), &none, now())),
            503
        );
        assert_eq!(
            status(&route(&req("GET", "/nope", &[], ""), &none, now())),
            404
        );
        assert!(
            !format!("{:?}", secrets()).contains("okta-secret"),
            "secrets never printed"
        );
    }
}
