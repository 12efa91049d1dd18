//! The `provguard` command line, end to end, on real state files.

use std::io::Write;

use predicates::prelude::*;
use serde_json::Value;

use crate::support::{normalize_file, normalizer, provguard, root};

fn compact(path: &str) -> String {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_json::to_string(&serde_json::from_str::<Value>(&text).unwrap()).unwrap()
}

/// Runs a command that must succeed; its standard output.
trait StdoutOk {
    fn stdout_ok(&mut self) -> Vec<u8>;
}

impl StdoutOk for assert_cmd::Command {
    fn stdout_ok(&mut self) -> Vec<u8> {
        self.assert().success().get_output().stdout.clone()
    }
}

fn verdict_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is a verdict"))
        .collect()
}

#[test]
fn a_mixed_file_loses_nothing_and_counts_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let okta = compact("samples/okta/grant_super_admin.json");
    let trail = compact("samples/cloudtrail/sso_admin_attach_user_policy.json");
    let login = compact("samples/okta/session_start_dropped.json");
    let input = dir.path().join("mixed.jsonl");
    std::fs::write(
        &input,
        format!("{okta}\n{{\"uuid\": broken\n{okta}\n{login}\n{trail}\n{{\"hello\":\"world\"}}\n"),
    )
    .unwrap();

    let mut n = normalizer();
    let mut expected: Vec<String> = Vec::new();
    for p in [
        "samples/okta/grant_super_admin.json",
        "samples/cloudtrail/sso_admin_attach_user_policy.json",
    ] {
        expected.extend(
            normalize_file(&mut n, &root().join(p), None)
                .events
                .into_iter()
                .map(|e| e.id),
        );
    }
    assert!(expected.len() >= 2);

    let out = provguard()
        .args(["ingest", "--state"])
        .arg(&state)
        .arg(&input)
        .assert()
        .success()
        .stderr(predicate::str::contains("6 records"))
        .stderr(predicate::str::contains("1 dropped"))
        .stderr(predicate::str::contains("2 dead-lettered"))
        .get_output()
        .clone();
    let verdicts = verdict_lines(&out.stdout);
    let ids: Vec<&str> = verdicts
        .iter()
        .map(|v| v["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    for v in &verdicts {
        for key in [
            "event_id", "source", "time", "action", "actor", "target", "score", "p_value",
            "severity", "alert", "reasons", "context",
        ] {
            assert!(v.get(key).is_some(), "verdict lacks {key}: {v}");
        }
    }
    let okta_events = expected.len() - 1;
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("{okta_events} duplicates skipped"))
    );

    // The bad lines are kept with their reasons.
    let dead = provguard()
        .args(["dead-letters", "--state"])
        .arg(&state)
        .stdout_ok();
    let dead = verdict_lines(&dead);
    assert_eq!(dead.len(), 2);
    assert!(
        dead[0]["reason"]
            .as_str()
            .unwrap()
            .contains("line 2: malformed JSON")
    );
    assert_eq!(dead[0]["raw"], "{\"uuid\": broken");
    assert!(
        dead[1]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot tell the source")
    );

    // A re-delivery of the whole file scores nothing again.
    provguard()
        .args(["ingest", "--state"])
        .arg(&state)
        .arg(&input)
        .assert()
        .success()
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains(format!(
            "0 verdicts, 0 alerts, 0 learned, {} duplicates skipped",
            expected.len() + okta_events
        )));
}

#[test]
fn missing_files_and_bad_options_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    provguard()
        .args(["ingest", "--state"])
        .arg(&state)
        .arg(dir.path().join("nope.json"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("nope.json does not exist"));
    assert!(
        !state.exists(),
        "nothing is created before inputs are checked"
    );
    provguard()
        .args(["ingest", "--source", "salesforce", "--state"])
        .arg(&state)
        .arg(root().join("samples/okta/grant_super_admin.json"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown --source `salesforce`"));
    provguard()
        .args(["ingest", "--mapping", "nofile", "--state"])
        .arg(&state)
        .arg(root().join("samples/okta/grant_super_admin.json"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("--mapping expects NAME=FILE"));
    let bad = dir.path().join("bad.vrl");
    std::fs::write(&bad, ". = upcase(").unwrap();
    provguard()
        .args(["normalize", "--mapping"])
        .arg(format!("mine={}", bad.display()))
        .arg(root().join("samples/okta/grant_super_admin.json"))
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "VRL program `mine` does not compile",
        ));
}

#[test]
fn a_custom_vrl_mapping_adds_a_source_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("hr.vrl");
    std::fs::write(
        &mapping,
        r#"
if .type != "role_added" { abort }
. = {
  "id": string!(.event_id), "source": "hrtool", "tenant": "acme", "time": .at,
  "action": "grant_role", "outcome": "success",
  "actor": {"email": .by, "kind": "human"},
  "target": {"email": .user, "kind": "human", "department": .dept},
  "entitlement": {"name": .role, "kind": "role", "privilege": "unknown"},
  "approval_ref": .ticket, "channel": "api"
}
"#,
    )
    .unwrap();
    let input = dir.path().join("hr.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"type":"role_added","event_id":"hr-1","at":"2026-05-04T10:00:00Z","by":"ann@acme.example","user":"bo@acme.example","dept":"Sales","role":"Global Administrator","ticket":"HR-9"}"#,
            "\n",
            r#"{"type":"login","event_id":"hr-2"}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = provguard()
        .args(["ingest", "--source", "hrtool", "--mapping"])
        .arg(format!("hrtool={}", mapping.display()))
        .arg("--state")
        .arg(dir.path().join("s.db"))
        .arg(&input)
        .assert()
        .success()
        .stderr(predicate::str::contains("1 dropped"))
        .get_output()
        .stdout
        .clone();
    let v = verdict_lines(&out);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["event_id"], "hrtool:hr-1");
    assert_eq!(
        v[0]["privilege"], "admin",
        "built-in tables classify custom sources too"
    );
}

#[test]
fn gzip_log_files_and_stdin_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let records: Value = serde_json::from_str(
        &std::fs::read_to_string(
            root().join("samples/cloudtrail/sso_admin_attach_user_policy.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let record = records.get("detail").cloned().unwrap_or(records);
    let log = serde_json::json!({"Records": [record]});
    let gz = dir
        .path()
        .join("111122223333_CloudTrail_us-east-1_20260504T1000Z_x.json.gz");
    let mut enc = flate2_writer(&gz);
    enc.write_all(log.to_string().as_bytes()).unwrap();
    drop(enc);
    provguard()
        .args(["ingest", "--state"])
        .arg(dir.path().join("a.db"))
        .arg(&gz)
        .assert()
        .success()
        .stderr(predicate::str::contains("1 records"));
    provguard()
        .args(["ingest", "--state"])
        .arg(dir.path().join("b.db"))
        .arg("-")
        .write_stdin(compact("samples/okta/grant_super_admin.json"))
        .assert()
        .success()
        .stdout(predicate::str::contains("\"event_id\""));
}

fn flate2_writer(path: &std::path::Path) -> impl Write {
    // Minimal gzip via the system `gzip` is not assumed; write with the stored-block encoder.
    GzipFile::new(path)
}

/// A tiny gzip writer (stored deflate blocks) so the test needs no compression crate.
struct GzipFile {
    path: std::path::PathBuf,
    data: Vec<u8>,
}

impl GzipFile {
    fn new(path: &std::path::Path) -> Self {
        GzipFile {
            path: path.to_owned(),
            data: Vec::new(),
        }
    }
}

impl Write for GzipFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for GzipFile {
    fn drop(&mut self) {
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
        let chunks: Vec<&[u8]> = self.data.chunks(65_535).collect();
        for (i, c) in chunks.iter().enumerate() {
            out.push(u8::from(i + 1 == chunks.len()));
            let len = c.len() as u16;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(c);
        }
        out.extend_from_slice(&crc32(&self.data).to_le_bytes());
        out.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
        std::fs::write(&self.path, out).unwrap();
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn context_learn_ingest_alerts_and_explain_work_together() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    let directory = dir.path().join("directory.csv");
    std::fs::write(
        &directory,
        "email,user_id,display_name,department,team,title,manager,employment_type,timezone,start_date\n\
         ann@acme.example,u1,Ann,IT,Identity,Admin,,employee,Europe/Berlin,2020-01-01\n",
    )
    .unwrap();
    let domains = dir.path().join("domains.txt");
    std::fs::write(&domains, "acme.example\n").unwrap();
    provguard()
        .args(["context", "import", "--state"])
        .arg(&state)
        .arg("--directory")
        .arg(&directory)
        .arg("--domains")
        .arg(&domains)
        .assert()
        .success()
        .stderr(predicate::str::contains("imported 1 people, 1 domains"));
    provguard()
        .args(["context", "import", "--state"])
        .arg(&state)
        .assert()
        .failure()
        .stderr(predicate::str::contains("nothing to import"));

    // History: the admin creates accounts on the tenant's domain on weekday mornings.
    let mut lines = String::new();
    for i in 0..40 {
        let day = 1 + (i % 20);
        lines.push_str(&serde_json::json!({
            "uuid": format!("hist-{i}"), "published": format!("2026-04-{day:02}T08:{:02}:00Z", i % 50),
            "eventType": "user.lifecycle.create", "displayMessage": "Create okta user",
            "actor": {"id": "u1", "type": "User", "alternateId": "ann@acme.example", "displayName": "Ann"},
            "client": {"ipAddress": "198.51.100.7", "userAgent": {"rawUserAgent": "Mozilla/5.0"}},
            "outcome": {"result": "SUCCESS"},
            "target": [{"id": format!("t{i}"), "type": "User", "alternateId": format!("user{i}@acme.example"), "displayName": format!("User {i}")}]
        }).to_string());
        lines.push('\n');
    }
    let history = dir.path().join("history.jsonl");
    std::fs::write(&history, lines).unwrap();
    provguard()
        .args(["learn", "--state"])
        .arg(&state)
        .arg(&history)
        .assert()
        .success()
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("40 learned"));
    provguard()
        .args(["rebaseline", "--state"])
        .arg(&state)
        .args(["--now", "2026-05-01T00:00:00Z"])
        .assert()
        .success()
        .stderr(predicate::str::contains("from 40 events"));

    let odd = serde_json::json!({
        "uuid": "odd-1", "published": "2026-05-01T09:00:00Z",
        "eventType": "user.lifecycle.create", "displayMessage": "Create okta user",
        "actor": {"id": "u1", "type": "User", "alternateId": "ann@acme.example", "displayName": "Ann"},
        "client": {"ipAddress": "198.51.100.7", "userAgent": {"rawUserAgent": "Mozilla/5.0"}},
        "outcome": {"result": "SUCCESS"},
        "target": [{"id": "t99", "type": "User", "alternateId": "eve@acme-example.com", "displayName": "Eve"}]
    });
    let out = provguard()
        .args(["ingest", "--state"])
        .arg(&state)
        .arg("-")
        .write_stdin(odd.to_string())
        .stdout_ok();
    let v = &verdict_lines(&out)[0];
    assert_eq!(v["alert"], true, "{v}");
    assert_eq!(v["reasons"][0]["code"], "email_lookalike_domain");

    provguard()
        .args(["alerts", "--state"])
        .arg(&state)
        .assert()
        .success()
        .stdout(predicate::str::contains("\"event_id\":\"odd-1\""));
    provguard()
        .args(["alerts", "--since", "2026-06-01T00:00:00Z", "--state"])
        .arg(&state)
        .assert()
        .success()
        .stdout(predicate::str::is_empty());
    provguard()
        .args(["explain", "--state"])
        .arg(&state)
        .arg("odd-1")
        .assert()
        .success()
        .stdout(predicate::str::contains("email_lookalike_domain"))
        .stdout(predicate::str::contains("acme.example"))
        .stdout(predicate::str::contains("history"));
    provguard()
        .args(["feedback", "--state"])
        .arg(&state)
        .args(["odd-1", "benign", "--note", "contractor onboarding"])
        .assert()
        .success()
        .stderr(predicate::str::contains("odd-1 is benign"));
    provguard()
        .args(["explain", "--state"])
        .arg(&state)
        .arg("odd-1")
        .assert()
        .success()
        .stdout(predicate::str::contains("feedback: benign"))
        .stdout(predicate::str::contains("contractor onboarding"));
    provguard()
        .args(["feedback", "--state"])
        .arg(&state)
        .args(["nope", "malicious"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no verdict for event nope"));
    provguard()
        .args(["explain", "--state"])
        .arg(&state)
        .arg("hist-3")
        .assert()
        .failure()
        .stderr(predicate::str::contains("learned from history"));
}

#[test]
fn the_demo_alerts_on_every_planted_anomaly_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo.db");
    let out = provguard()
        .arg("demo")
        .arg("--state")
        .arg(&state)
        .assert()
        .success()
        .stderr(predicate::str::contains("0 dead-lettered"))
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("state: {}", state.display())),
        "{stdout}"
    );
    // Planted (samples/demo/README.md): each appears with its reason.
    for code in [
        "off_hours",
        "rare_entitlement_for_department",
        "email_lookalike_domain",
        "email_typo",
        "self_grant",
        "escalation_chain",
        "volume_burst",
        "new_actor",
        "missing_approval",
    ] {
        assert!(
            stdout.contains(code),
            "{code} missing from the demo:\n{stdout}"
        );
    }
    // The audit trail agrees with the table: 8 planted anomalies, no decoy alerts.
    let alerts = provguard()
        .args(["alerts", "--state"])
        .arg(&state)
        .stdout_ok();
    let alerts = verdict_lines(&alerts);
    assert_eq!(alerts.len(), 8, "{alerts:#?}");
    assert!(stdout.contains("8 alerts among"), "{stdout}");
    for a in &alerts {
        let actor = a["actor"].as_str().unwrap();
        assert!(
            !actor.contains("system@okta.com") && !actor.contains("terraform"),
            "automation and onboarding waves are decoys: {a}"
        );
    }
}

#[test]
fn audit_verify_finds_a_verdict_edited_behind_provguard() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("demo.db");
    provguard()
        .arg("demo")
        .arg("--state")
        .arg(&state)
        .assert()
        .success();
    let verify = |extra: &[&str]| {
        provguard()
            .args(["audit", "verify", "--state"])
            .arg(&state)
            .args(extra)
            .assert()
    };
    let report: Value =
        serde_json::from_slice(&verify(&["--json"]).success().get_output().stdout).unwrap();
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    let verdicts = report["verdicts"].as_u64().unwrap();
    assert!(verdicts >= 8, "{report:#}");
    let head = format!(
        "{}:{}",
        report["head"]["seq"],
        report["head"]["hash"].as_str().unwrap()
    );

    // Feedback is appended; the earlier head still anchors the longer trail.
    let alerts = provguard()
        .args(["alerts", "--state"])
        .arg(&state)
        .stdout_ok();
    let first = verdict_lines(&alerts)[0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    provguard()
        .args(["feedback", "--state"])
        .arg(&state)
        .args([first.as_str(), "malicious", "--note", "confirmed"])
        .assert()
        .success();
    verify(&["--head", &head])
        .success()
        .stdout(predicate::str::contains(format!(
            "audit trail intact: {} records ({verdicts} verdicts, 1 feedback)",
            verdicts + 1
        )));

    // An intruder with the file lowers the score of an alert and erases the feedback.
    let conn = rusqlite::Connection::open(&state).unwrap();
    let changed = conn
        .execute(
            "UPDATE verdicts SET body = replace(body, '\"alert\":true', '\"alert\":false'), \
             alert = 0, feedback = NULL WHERE event_id = ?1",
            [&first],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);
    verify(&[])
        .code(1)
        .stdout(predicate::str::contains("audit trail ALTERED"))
        .stdout(predicate::str::contains(format!(
            "the verdict for event {first} was changed after it was recorded"
        )))
        .stdout(predicate::str::contains(format!(
            "feedback on event {first} was removed after it was recorded"
        )));

    verify(&["--head", "12:nothex"])
        .code(2)
        .stderr(predicate::str::contains("is not a hex SHA-256"));
}

/// One HTTP/1.1 request over a plain socket; returns (status, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Starts `provguard serve` on a free port with an `hr` mapping (HMAC key `hr-key`) that maps a
/// delivery's `entitlement_field` to an entitlement of `kind` granted by `action`, its state in
/// `dir`, stopping after `max_requests`.
fn serve_hr(
    dir: &std::path::Path,
    max_requests: usize,
    (action, entitlement_field, kind): (&str, &str, &str),
    env: &[(&str, &str)],
) -> Served {
    let mapping = dir.join("hr.vrl");
    std::fs::write(
        &mapping,
        format!(
            r#". = {{"id": string!(.event_id), "source": "hr", "tenant": "acme", "time": .at,
              "action": "{action}", "outcome": "success", "actor": {{"email": .by, "kind": "human"}},
              "target": {{"email": .user, "kind": "human"}},
              "entitlement": {{"name": .{entitlement_field}, "kind": "{kind}", "privilege": "unknown"}},
              "approval_ref": null, "channel": "api"}}"#
        ),
    )
    .unwrap();
    let max = max_requests.to_string();
    let state = dir.join("s.db");
    let hr = format!("hr={}", mapping.display());
    let mut env = env.to_vec();
    env.push(("PROVGUARD_HMAC_HR", "hr-key"));
    spawn_serve(
        &[
            "--max-requests".as_ref(),
            max.as_ref(),
            "--state".as_ref(),
            state.as_os_str(),
            "--mapping".as_ref(),
            hr.as_ref(),
        ],
        &env,
    )
}

/// A started `provguard serve`: the child (stdout piped), the first line it logged (which names
/// the address and the routes) and the rest of its log, read until it exits.
type Served = (std::process::Child, String, std::thread::JoinHandle<String>);

/// Starts `provguard serve` on a free port with `args` and `env`.
fn spawn_serve(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> Served {
    use std::io::{BufRead, Read};
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("provguard"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The line that names the address (log lines may come before it).
    let mut first = String::new();
    let mut before = String::new();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    while !first.contains("listening on http://") {
        before.push_str(&first);
        first.clear();
        assert!(
            stderr.read_line(&mut first).unwrap() > 0,
            "serve exited: {before}"
        );
    }
    let log = std::thread::spawn(move || {
        let mut rest = before;
        let _ = stderr.read_to_string(&mut rest);
        rest
    });
    (child, first, log)
}

/// The address in serve's first log line.
fn served_at(first: &str) -> String {
    first
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_owned()
}

#[test]
fn serve_answers_handshakes_checks_secrets_and_scores_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    // Logging everything it can (trace), so the scan at the end sees every log line.
    let (child, first, log) = serve_hr(
        dir.path(),
        5,
        ("grant_role", "role", "role"),
        &[
            ("PROVGUARD_OKTA_SECRET", "okta-s3cret"),
            ("PROVGUARD_LOG", "trace"),
        ],
    );
    let addr = served_at(&first);
    assert!(
        first.contains("/okta") && first.contains("/hook/hr"),
        "{first}"
    );

    let (status, body) = http(
        &addr,
        "GET",
        "/okta",
        &[
            ("Authorization", "okta-s3cret"),
            ("X-Okta-Verification-Challenge", "c-123"),
        ],
        "",
    );
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"verification":"c-123"}"#)
    );
    let delivery = format!(
        r#"{{"source":"https://acme.okta.com/api/v1/eventHooks/x","data":{{"events":[{}]}}}}"#,
        compact("samples/okta/grant_super_admin.json")
    );
    let (status, _) = http(
        &addr,
        "POST",
        "/okta",
        &[("Authorization", "wr0ng-t0ken-guess")],
        &delivery,
    );
    assert_eq!(status, 401);
    let (status, body) = http(
        &addr,
        "POST",
        "/okta",
        &[("Authorization", "okta-s3cret")],
        &delivery,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""verdicts":1"#), "{body}");
    let payload = r#"{"event_id":"hr-7","at":"2026-05-04T10:00:00Z","by":"a@acme.example","user":"b@acme.example","role":"Payroll Admin"}"#;
    let ts = chrono::Utc::now().timestamp().to_string();
    let sig = provguard_core::webhook::sign("hr-key", &ts, payload.as_bytes());
    let signed = [
        ("X-Provguard-Timestamp", ts.as_str()),
        ("X-Provguard-Signature", sig.as_str()),
    ];
    let (status, body) = http(&addr, "POST", "/hook/hr", &signed, payload);
    assert_eq!(status, 200, "{body}");
    // The same signed request again, inside its window: refused.
    let (status, body) = http(&addr, "POST", "/hook/hr", &signed, payload);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("replayed request"), "{body}");

    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let verdicts = verdict_lines(&out.stdout);
    assert_eq!(verdicts.len(), 2, "{verdicts:?}");
    assert_eq!(verdicts[1]["event_id"], "hr:hr-7");
    assert_eq!(verdicts[1]["privilege"], "admin");

    // No secret, and no credential a caller presented, appears in the log or the output.
    let log = first + &log.join().unwrap();
    assert!(log.lines().count() > 4, "trace logging is on: {log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for secret in ["okta-s3cret", "hr-key", "wr0ng-t0ken-guess", sig.as_str()] {
        assert!(!log.contains(secret), "{secret:?} logged:\n{log}");
        assert!(!stdout.contains(secret), "{secret:?} in the output");
    }
}

#[test]
fn bench_times_every_stage_of_a_simulated_organisation() {
    let out = provguard()
        .args(["bench", "--quick", "--json"])
        .assert()
        .success();
    let out = out.get_output();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // "bench: 687 test records, 660 events"
    let events: usize = stderr
        .lines()
        .find_map(|l| l.strip_suffix(" events")?.rsplit(", ").next()?.parse().ok())
        .unwrap_or_else(|| panic!("no event count in {stderr}"));
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let measure = |prefix: &str| -> String {
        rows.iter()
            .find(|r| r["measure"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` row in {rows:?}"))["result"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for source in ["okta", "cloudtrail", "entra", "gworkspace", "scim"] {
        assert!(measure(&format!("normalize {source}")).contains("µs"));
    }
    measure("parse floor");
    measure("score with warm baselines");
    measure("pipeline, SQLite store, group commit");
    // Every event of the test period got a verdict from `provguard ingest`, none twice.
    assert!(
        measure("provguard ingest into SQLite").contains(&format!("({events} events in ")),
        "{}",
        measure("provguard ingest into SQLite")
    );
    // The stored log was filled to the size asked and rebaselined in full.
    assert!(measure("rebaseline 2000 stored events").contains("scopes"));
    let targets: Vec<&Value> = rows.iter().filter(|r| r["met"].is_boolean()).collect();
    assert!(targets.len() >= 3, "rows with a target: {targets:?}");
    assert!(targets.iter().all(|r| r["value"].as_f64().unwrap() > 0.0));
}

/// `provguard serve` under load: concurrent signed deliveries, a fifth of them re-sent, all
/// answered without an error; the audit trail holds each event exactly once.
#[test]
#[allow(clippy::print_stderr)]
fn serve_under_load_answers_everything_and_stores_each_event_once() {
    const UNIQUE: usize = 1_000;
    const RESENT: usize = UNIQUE / 5;
    const CLIENTS: usize = 6;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.db");
    let (mut child, first, _log) = serve_hr(
        dir.path(),
        UNIQUE + RESENT,
        ("add_to_group", "group", "group"),
        &[],
    );
    let addr = served_at(&first);

    // Verdicts are read as they come (a full pipe would stall the server).
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).unwrap();
        buf
    });

    // Deliveries 0..UNIQUE, then the first RESENT of them again, spread over the clients.
    let jobs: Vec<usize> = (0..UNIQUE).chain(0..RESENT).collect();
    let started = std::time::Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let addr = addr.clone();
                let jobs = &jobs;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for (n, i) in jobs.iter().enumerate().skip(c).step_by(CLIENTS) {
                        let payload = format!(
                            r#"{{"event_id":"load-{i}","at":"2026-05-04T10:{:02}:{:02}Z","by":"helpdesk{}@acme.example","user":"user{i}@acme.example","group":"team-{}"}}"#,
                            i / 60 % 60,
                            i % 60,
                            i % 4,
                            i % 7
                        );
                        // A re-delivery is signed anew, as a sender's retry is: a second
                        // ahead, so never with its first delivery's timestamp (the same
                        // signature would be refused as a replay).
                        let resent = i64::from(n >= UNIQUE);
                        let ts = (chrono::Utc::now().timestamp() + resent).to_string();
                        let sig = provguard_core::webhook::sign("hr-key", &ts, payload.as_bytes());
                        let (status, body) = http(
                            &addr,
                            "POST",
                            "/hook/hr",
                            &[
                                ("X-Provguard-Timestamp", &ts),
                                ("X-Provguard-Signature", &sig),
                            ],
                            &payload,
                        );
                        assert_eq!(status, 200, "{body}");
                        out.push(status);
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed();
    assert!(child.wait().unwrap().success());
    let stdout = reader.join().unwrap();
    assert_eq!(statuses.len(), UNIQUE + RESENT);
    eprintln!(
        "serve: {} requests from {CLIENTS} clients in {:.2} s ({:.0}/s, debug build)",
        statuses.len(),
        elapsed.as_secs_f64(),
        statuses.len() as f64 / elapsed.as_secs_f64()
    );

    // One verdict per event; the re-sent deliveries were recognised, not scored again.
    let verdicts = verdict_lines(&stdout);
    let mut ids: Vec<&str> = verdicts
        .iter()
        .map(|v| v["event_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((verdicts.len(), ids.len()), (UNIQUE, UNIQUE));
    use provguard_core::store::{EventStore as _, VerdictStore as _};
    let store = provguard_core::store::SqliteStore::open(&state).unwrap();
    let stored = store
        .scan_events("2026-01-01T00:00:00Z".parse().unwrap(), &mut |_, _| {})
        .unwrap();
    assert_eq!(stored, UNIQUE as u64, "the log holds each event once");
    for i in [0, RESENT - 1, UNIQUE - 1] {
        assert!(store.verdict(&format!("hr:load-{i}")).unwrap().is_some());
    }
    // The audit trail holds exactly one intact record per event sent.
    let audit = store.verify_audit(None).unwrap();
    assert!(audit.intact(), "{:?}", audit.problems);
    assert_eq!(
        (audit.records, audit.verdicts),
        (UNIQUE as u64, UNIQUE as u64)
    );
}
