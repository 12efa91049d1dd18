//! Business context: HR directory, approvals, change windows and the tenant's own domains
//! (DESIGN §4). Context lowers or raises evidence; it never silently deletes it.

use std::collections::HashMap;
use std::io::BufRead;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{file}: line {line}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: {source}")]
    Csv {
        file: String,
        #[source]
        source: csv::Error,
    },
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

/// One row of `directory.csv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub email: String,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub manager: Option<String>,
    #[serde(default)]
    pub employment_type: Option<String>,
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub start_date: Option<NaiveDate>,
    /// When the person's current department and team took effect (a move, a re-org), for
    /// directories that carry it (optional column `team_since`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team_since: Option<NaiveDate>,
}

/// One line of `approvals.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub ticket: String,
    pub target: String,
    pub entitlement: String,
    #[serde(default)]
    pub approved_by: Option<String>,
    #[serde(default)]
    pub approved_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// One line of `change_windows.jsonl`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeWindow {
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    #[serde(default)]
    pub actors: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Everything the scorer knows about the business, indexed for lookups.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub people: Vec<Person>,
    pub approvals: Vec<Approval>,
    pub change_windows: Vec<ChangeWindow>,
    pub domains: Vec<String>,
    by_email: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
}

impl Context {
    pub fn new(
        people: Vec<Person>,
        approvals: Vec<Approval>,
        change_windows: Vec<ChangeWindow>,
        domains: Vec<String>,
    ) -> Self {
        let mut ctx = Context {
            people,
            approvals,
            change_windows,
            domains: domains.into_iter().map(|d| d.to_lowercase()).collect(),
            ..Context::default()
        };
        ctx.reindex();
        ctx
    }

    fn reindex(&mut self) {
        self.by_email.clear();
        self.by_id.clear();
        for (i, p) in self.people.iter().enumerate() {
            self.by_email.insert(p.email.to_lowercase(), i);
            if let Some(id) = p.user_id.as_deref().filter(|s| !s.is_empty()) {
                self.by_id.insert(id.to_lowercase(), i);
            }
        }
    }

    /// The person behind any of these identifiers (e-mail or directory `user_id`, case-insensitive).
    pub fn person<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Option<&Person> {
        for id in ids {
            let l = id.to_lowercase();
            if let Some(&i) = self.by_email.get(&l).or_else(|| self.by_id.get(&l)) {
                return Some(&self.people[i]);
            }
        }
        None
    }

    /// An approval covering this target and entitlement at `at`.
    pub fn approval_for(
        &self,
        target_ids: &[&str],
        entitlement_ids: &[&str],
        at: DateTime<Utc>,
    ) -> Option<&Approval> {
        self.approvals.iter().find(|a| {
            target_ids.iter().any(|t| t.eq_ignore_ascii_case(&a.target))
                && entitlement_ids
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(&a.entitlement))
                && a.approved_at
                    .is_none_or(|s| s <= crate::time::after(at, chrono::Duration::hours(1)))
                && a.expires_at.is_none_or(|e| at <= e)
        })
    }

    /// A change window open at `at` for one of these actor identifiers (or for everyone).
    pub fn change_window_for(
        &self,
        actor_ids: &[&str],
        at: DateTime<Utc>,
    ) -> Option<&ChangeWindow> {
        self.change_windows.iter().find(|w| {
            w.start <= at
                && at <= w.end
                && (w.actors.is_empty()
                    || w.actors
                        .iter()
                        .any(|a| actor_ids.iter().any(|x| x.eq_ignore_ascii_case(a))))
        })
    }

    pub fn is_own_domain(&self, domain: &str) -> bool {
        let d = domain.to_lowercase();
        self.domains
            .iter()
            .any(|own| d == *own || d.ends_with(&format!(".{own}")))
    }

    pub fn is_empty(&self) -> bool {
        self.people.is_empty()
            && self.approvals.is_empty()
            && self.change_windows.is_empty()
            && self.domains.is_empty()
    }
}

/// Reads `directory.csv` (header as in DESIGN §4; extra columns are ignored).
pub fn read_directory(file: &str, reader: impl std::io::Read) -> Result<Vec<Person>, ContextError> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(reader);
    let headers = rdr
        .headers()
        .map_err(|source| ContextError::Csv {
            file: file.into(),
            source,
        })?
        .clone();
    if !headers.iter().any(|h| h == "email") {
        return Err(ContextError::Parse {
            file: file.into(),
            line: 1,
            message: "the header has no `email` column".into(),
        });
    }
    let mut out = Vec::new();
    for (i, row) in rdr.records().enumerate() {
        let row = row.map_err(|source| ContextError::Csv {
            file: file.into(),
            source,
        })?;
        let get = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|p| row.get(p))
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let email = get("email").ok_or_else(|| ContextError::Parse {
            file: file.into(),
            line: i + 2,
            message: "empty email".into(),
        })?;
        let date = |column: &str| match get(column) {
            None => Ok(None),
            Some(s) => NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .map(Some)
                .map_err(|e| ContextError::Parse {
                    file: file.into(),
                    line: i + 2,
                    message: format!("{column} `{s}`: {e} (expected YYYY-MM-DD)"),
                }),
        };
        let start_date = date("start_date")?;
        let team_since = date("team_since")?;
        if let Some(tz) = get("timezone") {
            if tz.parse::<chrono_tz::Tz>().is_err() {
                return Err(ContextError::Parse {
                    file: file.into(),
                    line: i + 2,
                    message: format!("unknown time zone `{tz}` (expected an IANA name)"),
                });
            }
        }
        out.push(Person {
            email,
            user_id: get("user_id"),
            display_name: get("display_name"),
            department: get("department"),
            team: get("team"),
            title: get("title"),
            manager: get("manager"),
            employment_type: get("employment_type"),
            timezone: get("timezone"),
            start_date,
            team_since,
        });
    }
    Ok(out)
}

/// Reads a JSON Lines file of `T` (blank lines and `#` comments skipped).
pub fn read_jsonl<T: serde::de::DeserializeOwned>(
    file: &str,
    reader: impl BufRead,
) -> Result<Vec<T>, ContextError> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| ContextError::Io {
            file: file.into(),
            source,
        })?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        out.push(serde_json::from_str(t).map_err(|e| ContextError::Parse {
            file: file.into(),
            line: i + 1,
            message: e.to_string(),
        })?);
    }
    Ok(out)
}

/// Reads `domains.txt`: one domain a line, `#` comments allowed.
pub fn read_domains(reader: impl BufRead) -> Result<Vec<String>, std::io::Error> {
    let mut out = Vec::new();
    for line in reader.lines() {
        let line = line?;
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            out.push(t.trim_start_matches('@').to_lowercase());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_rows_join_by_email_or_id_case_insensitively() {
        let csv = "email,user_id,display_name,department,team,title,manager,employment_type,timezone,start_date\n\
                   Ann@Acme.example,00u1,Ann Lee,Engineering,Platform,SRE,bob@acme.example,employee,Europe/Berlin,2024-03-01\n";
        let people = read_directory("d.csv", csv.as_bytes()).unwrap();
        let ctx = Context::new(people, vec![], vec![], vec!["acme.example".into()]);
        assert_eq!(
            ctx.person(["ann@acme.example"]).unwrap().team.as_deref(),
            Some("Platform")
        );
        assert!(ctx.person(["00U1"]).is_some());
        assert!(ctx.is_own_domain("ACME.example"));
        assert!(ctx.is_own_domain("eu.acme.example"));
        assert!(!ctx.is_own_domain("acme.example.evil"));
    }

    #[test]
    fn a_move_date_is_read_where_the_directory_has_one() {
        let csv = "email,department,team,start_date,team_since\n\
                   ann@acme.example,Sales,EMEA,2021-01-04,2026-07-20\n\
                   bob@acme.example,Sales,EMEA,2022-02-01,\n";
        let people = read_directory("d.csv", csv.as_bytes()).unwrap();
        let since = NaiveDate::from_ymd_opt(2026, 7, 20);
        assert_eq!(people[0].team_since, since);
        assert_eq!(people[1].team_since, None);
        // Without the column, nobody has one; a bad date says where.
        let plain = "email,team\nann@acme.example,EMEA\n";
        assert_eq!(
            read_directory("d.csv", plain.as_bytes()).unwrap()[0].team_since,
            None
        );
        let bad = "email,team_since\nann@acme.example,20.7.2026\n";
        let err = read_directory("d.csv", bad.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("d.csv: line 2: team_since `20.7.2026`"),
            "{err}"
        );
    }

    #[test]
    fn bad_rows_say_where() {
        let csv = "email,timezone\nann@x.io,Mars/Olympus\n";
        let err = read_directory("d.csv", csv.as_bytes()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "d.csv: line 2: unknown time zone `Mars/Olympus` (expected an IANA name)"
        );
        let err = read_jsonl::<Approval>("a.jsonl", "{\"ticket\":1}".as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("a.jsonl: line 1:"), "{err}");
    }

    #[test]
    fn approvals_respect_validity() {
        let a: Approval = serde_json::from_str(
            r#"{"ticket":"CHG-1","target":"ann@x.io","entitlement":"AdministratorAccess","approved_by":"cto@x.io","approved_at":"2024-05-01T00:00:00Z","expires_at":"2024-05-08T00:00:00Z"}"#,
        )
        .unwrap();
        let ctx = Context::new(vec![], vec![a], vec![], vec![]);
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert!(
            ctx.approval_for(
                &["ANN@x.io"],
                &["administratoraccess"],
                at("2024-05-02T00:00:00Z")
            )
            .is_some()
        );
        assert!(
            ctx.approval_for(
                &["ann@x.io"],
                &["AdministratorAccess"],
                at("2024-05-09T00:00:00Z")
            )
            .is_none()
        );
    }
}
