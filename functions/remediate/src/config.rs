//! The remediate function's configuration: a typed value read once, at cold start, from the
//! environment (tests pass a map). The README's "Running on AWS" table lists the same names.

use std::path::PathBuf;

/// Environment variables the remediate function reads.
pub mod vars {
    /// DynamoDB table (required).
    pub const TABLE: &str = "PROVGUARD_TABLE";
    /// Optional provguard TOML configuration file (its `break_glass` list is refused).
    pub const CONFIG: &str = "PROVGUARD_CONFIG";
    /// Comma-separated break-glass accounts (e-mails, names or ids, case-insensitive), added to
    /// the configuration file's `break_glass`: changes by or to them are never remediated.
    pub const BREAK_GLASS: &str = "PROVGUARD_BREAK_GLASS";
    /// Comma-separated: what may be executed. A remedy (`revert`, `disable_account`), a step
    /// operation (`iam:DetachUserPolicy`, `okta:RemoveUserFromGroup`), a provider wildcard
    /// (`iam:*`) or `*`. Empty (the default): dry runs only.
    pub const ALLOW: &str = "PROVGUARD_REMEDIATION_ALLOW";
    /// Executed remediations allowed per UTC hour, counted in DynamoDB (default 10; 0: none,
    /// every request that would execute is refused).
    pub const MAX_PER_HOUR: &str = "PROVGUARD_REMEDIATION_MAX_PER_HOUR";
    /// Okta org URL, e.g. `https://acme.okta.com`.
    pub const OKTA_URL: &str = "PROVGUARD_OKTA_API_URL";
    /// Okta API token (`SSWS`); `ssm:<parameter>` to read it from Parameter Store.
    pub const OKTA_TOKEN: &str = "PROVGUARD_OKTA_API_TOKEN";
    /// Microsoft Graph base URL (default `https://graph.microsoft.com/v1.0`).
    pub const GRAPH_URL: &str = "PROVGUARD_GRAPH_API_URL";
    /// Microsoft identity platform base URL (default `https://login.microsoftonline.com`).
    pub const ENTRA_LOGIN_URL: &str = "PROVGUARD_ENTRA_LOGIN_URL";
    /// Entra tenant id, app (client) id and client secret (`ssm:` allowed) for the
    /// client-credentials grant.
    pub const ENTRA_TENANT: &str = "PROVGUARD_ENTRA_TENANT_ID";
    pub const ENTRA_CLIENT_ID: &str = "PROVGUARD_ENTRA_CLIENT_ID";
    pub const ENTRA_CLIENT_SECRET: &str = "PROVGUARD_ENTRA_CLIENT_SECRET";
    /// Google Admin SDK base URL (default `https://admin.googleapis.com`).
    pub const GOOGLE_URL: &str = "PROVGUARD_GOOGLE_API_URL";
    /// An OAuth access token with the Admin SDK directory scopes (`ssm:` allowed; refreshed
    /// outside provguard).
    pub const GOOGLE_TOKEN: &str = "PROVGUARD_GOOGLE_ACCESS_TOKEN";

    /// All of the above.
    pub const ALL: &[&str] = &[
        TABLE,
        CONFIG,
        BREAK_GLASS,
        ALLOW,
        MAX_PER_HOUR,
        OKTA_URL,
        OKTA_TOKEN,
        GRAPH_URL,
        ENTRA_LOGIN_URL,
        ENTRA_TENANT,
        ENTRA_CLIENT_ID,
        ENTRA_CLIENT_SECRET,
        GOOGLE_URL,
        GOOGLE_TOKEN,
    ];
}

pub const DEFAULT_MAX_PER_HOUR: u32 = 10;
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com/v1.0";
pub const DEFAULT_ENTRA_LOGIN_URL: &str = "https://login.microsoftonline.com";
pub const DEFAULT_GOOGLE_URL: &str = "https://admin.googleapis.com";

/// Variables whose values are secrets (resolved from SSM at cold start, never logged).
pub const SECRET_VARS: [&str; 3] = [
    vars::OKTA_TOKEN,
    vars::ENTRA_CLIENT_SECRET,
    vars::GOOGLE_TOKEN,
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{var}: {why}")]
    Invalid { var: &'static str, why: String },
}

/// Okta: org URL and API token.
#[derive(Clone, PartialEq, Eq)]
pub struct Okta {
    pub url: String,
    pub token: String,
}

/// Entra: Graph, the token endpoint and the app's client credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Entra {
    pub graph_url: String,
    pub login_url: String,
    pub tenant: String,
    pub client_id: String,
    pub client_secret: String,
}

/// Google Admin SDK: base URL and an access token.
#[derive(Clone, PartialEq, Eq)]
pub struct Google {
    pub url: String,
    pub token: String,
}

// Debug never shows a token or a client secret.
impl std::fmt::Debug for Okta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Okta")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Entra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entra")
            .field("graph_url", &self.graph_url)
            .field("login_url", &self.login_url)
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Google {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Google")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Config {
    pub table: String,
    pub config_file: Option<PathBuf>,
    /// Break-glass accounts from the environment ([`Config::break_glass_with`] adds the file's).
    pub break_glass: Vec<String>,
    pub allow: Vec<String>,
    pub max_per_hour: u32,
    pub okta: Option<Okta>,
    pub entra: Option<Entra>,
    pub google: Option<Google>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens: which providers are configured, and where.
        f.debug_struct("Config")
            .field("table", &self.table)
            .field("config_file", &self.config_file)
            .field("break_glass", &self.break_glass)
            .field("allow", &self.allow)
            .field("max_per_hour", &self.max_per_hour)
            .field("okta", &self.okta.as_ref().map(|o| &o.url))
            .field("entra", &self.entra.as_ref().map(|e| &e.graph_url))
            .field("google", &self.google.as_ref().map(|g| &g.url))
            .finish()
    }
}

fn trim_url(u: &str) -> String {
    u.trim_end_matches('/').to_owned()
}

/// A comma-separated list, each item trimmed, empty items dropped.
fn list(v: Option<String>) -> Vec<String> {
    v.unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

impl Config {
    /// Reads the variables; the secret ones must already be resolved (see
    /// [`provguard_core::secret::resolve`]).
    pub fn from_vars<'a>(
        vars_iter: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut m = std::collections::HashMap::new();
        for (k, v) in vars_iter {
            let v = v.trim();
            if !v.is_empty() {
                m.insert(k, v.to_owned());
            }
        }
        let get = |k: &str| m.get(k).cloned();
        let max_per_hour = match get(vars::MAX_PER_HOUR) {
            None => DEFAULT_MAX_PER_HOUR,
            Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                var: vars::MAX_PER_HOUR,
                why: format!("`{v}` is not a whole number"),
            })?,
        };
        let okta = match (get(vars::OKTA_URL), get(vars::OKTA_TOKEN)) {
            (Some(url), Some(token)) => Some(Okta {
                url: trim_url(&url),
                token,
            }),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::Missing(vars::OKTA_TOKEN)),
            (None, Some(_)) => return Err(ConfigError::Missing(vars::OKTA_URL)),
        };
        let entra = match (
            get(vars::ENTRA_TENANT),
            get(vars::ENTRA_CLIENT_ID),
            get(vars::ENTRA_CLIENT_SECRET),
        ) {
            (Some(tenant), Some(client_id), Some(client_secret)) => Some(Entra {
                graph_url: trim_url(&get(vars::GRAPH_URL).unwrap_or(DEFAULT_GRAPH_URL.into())),
                login_url: trim_url(
                    &get(vars::ENTRA_LOGIN_URL).unwrap_or(DEFAULT_ENTRA_LOGIN_URL.into()),
                ),
                tenant,
                client_id,
                client_secret,
            }),
            (None, None, None) => None,
            (t, c, _) => {
                return Err(ConfigError::Missing(if t.is_none() {
                    vars::ENTRA_TENANT
                } else if c.is_none() {
                    vars::ENTRA_CLIENT_ID
                } else {
                    vars::ENTRA_CLIENT_SECRET
                }));
            }
        };
        let google = get(vars::GOOGLE_TOKEN).map(|token| Google {
            url: trim_url(&get(vars::GOOGLE_URL).unwrap_or(DEFAULT_GOOGLE_URL.into())),
            token,
        });
        Ok(Config {
            table: get(vars::TABLE).ok_or(ConfigError::Missing(vars::TABLE))?,
            config_file: get(vars::CONFIG).map(PathBuf::from),
            break_glass: list(get(vars::BREAK_GLASS)),
            allow: list(get(vars::ALLOW)),
            max_per_hour,
            okta,
            entra,
            google,
        })
    }

    /// The break-glass accounts: the configuration file's (`from_file`), then the
    /// environment's not already among them (compared case-insensitively, as they are matched).
    pub fn break_glass_with(&self, from_file: &[String]) -> Vec<String> {
        provguard_core::remediate::merge_break_glass(from_file, &self.break_glass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dry_run_only_by_default() {
        let c = Config::from_vars([(vars::TABLE, "t")]).unwrap();
        assert!(c.allow.is_empty());
        assert!(c.break_glass.is_empty());
        assert_eq!(c.max_per_hour, 10);
        assert!(c.okta.is_none() && c.entra.is_none() && c.google.is_none());
    }

    #[test]
    fn providers_need_all_their_settings_and_tokens_are_not_printed() {
        let c = Config::from_vars([
            (vars::TABLE, "t"),
            (vars::ALLOW, "revert, iam:*"),
            (vars::MAX_PER_HOUR, "3"),
            (vars::OKTA_URL, "https://acme.okta.com/"),
            (vars::OKTA_TOKEN, "00secret"),
        ])
        .unwrap();
        assert_eq!(c.allow, ["revert", "iam:*"]);
        assert_eq!(c.okta.as_ref().unwrap().url, "https://acme.okta.com");
        assert!(!format!("{c:?}").contains("00secret"));
        assert_eq!(
            Config::from_vars([(vars::TABLE, "t"), (vars::OKTA_URL, "https://x")]),
            Err(ConfigError::Missing(vars::OKTA_TOKEN))
        );
        assert_eq!(
            Config::from_vars([(vars::TABLE, "t"), (vars::ENTRA_TENANT, "x")]),
            Err(ConfigError::Missing(vars::ENTRA_CLIENT_ID))
        );
    }

    #[test]
    fn break_glass_accounts_come_from_the_environment_and_the_file() {
        let c = Config::from_vars([
            (vars::TABLE, "t"),
            (
                vars::BREAK_GLASS,
                " breakglass@acme.example, ,00ubreakglass0000001,BG-Admin ",
            ),
        ])
        .unwrap();
        assert_eq!(
            c.break_glass,
            [
                "breakglass@acme.example",
                "00ubreakglass0000001",
                "BG-Admin"
            ]
        );
        let file = ["BreakGlass@acme.example".to_owned(), "root-bg".to_owned()];
        assert_eq!(
            c.break_glass_with(&file),
            [
                "BreakGlass@acme.example",
                "root-bg",
                "00ubreakglass0000001",
                "BG-Admin"
            ]
        );
        assert!(format!("{c:?}").contains("BG-Admin"));
        // Set but empty (the template's default): none.
        let c = Config::from_vars([(vars::TABLE, "t"), (vars::BREAK_GLASS, "")]).unwrap();
        assert!(c.break_glass_with(&[]).is_empty());
    }
}
