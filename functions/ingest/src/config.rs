//! The ingest function's configuration: a typed value read once, at cold start, from the
//! environment (tests pass a map). The README's "Running on AWS" table lists the same names.

use std::path::PathBuf;

use provguard_core::verdict::Severity;
use provguard_core::webhook;

/// Environment variables the ingest function reads (besides the webhook secrets, whose names are
/// [`provguard_core::webhook::vars`]).
pub mod vars {
    /// DynamoDB table (required).
    pub const TABLE: &str = "PROVGUARD_TABLE";
    /// SNS topic ARN alerts are published to (required).
    pub const TOPIC_ARN: &str = "PROVGUARD_TOPIC_ARN";
    /// Optional provguard TOML configuration file in the deployment package (thresholds,
    /// privilege tiers, break-glass accounts, extra VRL mappings).
    pub const CONFIG: &str = "PROVGUARD_CONFIG";
    /// Comma-separated break-glass accounts (e-mails, names or ids, case-insensitive), added to
    /// the configuration file's `break_glass`: their grants are never discounted.
    pub const BREAK_GLASS: &str = "PROVGUARD_BREAK_GLASS";
    /// `critical` or `high`: invoke the remediate function for alerts of at least this severity
    /// (`off` or unset: never). The remediate function's allow-list and hourly cap still apply.
    pub const AUTO_REMEDIATE: &str = "PROVGUARD_AUTO_REMEDIATE";
    /// Name or ARN of the remediate function (required with `PROVGUARD_AUTO_REMEDIATE`).
    pub const REMEDIATE_FUNCTION: &str = "PROVGUARD_REMEDIATE_FUNCTION";

    /// All of the above.
    pub const ALL: &[&str] = &[
        TABLE,
        TOPIC_ARN,
        CONFIG,
        BREAK_GLASS,
        AUTO_REMEDIATE,
        REMEDIATE_FUNCTION,
    ];
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{var}: {why}")]
    Invalid { var: &'static str, why: String },
}

/// Everything the ingest function reads from its environment.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    pub topic_arn: String,
    pub config_file: Option<PathBuf>,
    /// Break-glass accounts from the environment ([`Config::break_glass_with`] adds the file's).
    pub break_glass: Vec<String>,
    pub auto_remediate: Option<Severity>,
    pub remediate_function: Option<String>,
    /// The webhook variables as given (values may be `ssm:` references, resolved at cold start).
    pub webhook_vars: Vec<(String, String)>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Webhook values may be secrets: only their names.
        f.debug_struct("Config")
            .field("table", &self.table)
            .field("topic_arn", &self.topic_arn)
            .field("config_file", &self.config_file)
            .field("break_glass", &self.break_glass)
            .field("auto_remediate", &self.auto_remediate)
            .field("remediate_function", &self.remediate_function)
            .field(
                "webhook_vars",
                &self.webhook_vars.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Whether a variable belongs to the webhook routes (see [`webhook::vars`]).
pub fn is_webhook_var(name: &str) -> bool {
    [
        webhook::vars::OKTA,
        webhook::vars::ENTRA,
        webhook::vars::GOOGLE,
        webhook::vars::SCIM,
        webhook::vars::REPLAY_WINDOW,
    ]
    .contains(&name)
        || name.starts_with(webhook::vars::HMAC_PREFIX)
}

impl Config {
    pub fn from_vars<'a>(
        vars_iter: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let (mut table, mut topic, mut file, mut auto, mut function) =
            (None, None, None, None, None);
        let mut break_glass = Vec::new();
        let mut webhook_vars = Vec::new();
        for (k, v) in vars_iter {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            match k {
                vars::TABLE => table = Some(v.to_owned()),
                vars::TOPIC_ARN => topic = Some(v.to_owned()),
                vars::CONFIG => file = Some(PathBuf::from(v)),
                vars::BREAK_GLASS => {
                    break_glass = v
                        .split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect();
                }
                vars::AUTO_REMEDIATE => auto = Some(v.to_ascii_lowercase()),
                vars::REMEDIATE_FUNCTION => function = Some(v.to_owned()),
                k if is_webhook_var(k) => webhook_vars.push((k.to_owned(), v.to_owned())),
                _ => {}
            }
        }
        let auto_remediate = match auto.as_deref() {
            None | Some("off" | "none" | "false") => None,
            Some(s @ ("critical" | "high")) => Some(
                serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| {
                    ConfigError::Invalid {
                        var: vars::AUTO_REMEDIATE,
                        why: e.to_string(),
                    }
                })?,
            ),
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: vars::AUTO_REMEDIATE,
                    why: format!("`{other}` is not one of critical, high, off"),
                });
            }
        };
        if auto_remediate.is_some() && function.is_none() {
            return Err(ConfigError::Missing(vars::REMEDIATE_FUNCTION));
        }
        webhook_vars.sort();
        Ok(Config {
            table: table.ok_or(ConfigError::Missing(vars::TABLE))?,
            topic_arn: topic.ok_or(ConfigError::Missing(vars::TOPIC_ARN))?,
            config_file: file,
            break_glass,
            auto_remediate,
            remediate_function: function,
            webhook_vars,
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
    fn reads_required_and_optional_variables() {
        let c = Config::from_vars([
            (vars::TABLE, "provguard"),
            (vars::TOPIC_ARN, "arn:aws:sns:us-east-1:1:alerts"),
            (vars::AUTO_REMEDIATE, "Critical"),
            (vars::REMEDIATE_FUNCTION, "provguard-remediate"),
            (webhook::vars::OKTA, "ssm:/provguard/okta"),
            ("PROVGUARD_HMAC_HR", "k"),
            ("HOME", "/root"),
        ])
        .unwrap();
        assert_eq!(c.table, "provguard");
        assert_eq!(c.auto_remediate, Some(Severity::Critical));
        assert_eq!(
            c.webhook_vars,
            [
                ("PROVGUARD_HMAC_HR".to_owned(), "k".to_owned()),
                (
                    webhook::vars::OKTA.to_owned(),
                    "ssm:/provguard/okta".to_owned()
                )
            ]
        );
        assert!(!format!("{c:?}").contains("ssm:/provguard/okta"));
    }

    #[test]
    fn refuses_missing_and_bad_values() {
        assert_eq!(
            Config::from_vars([(vars::TOPIC_ARN, "t")]),
            Err(ConfigError::Missing(vars::TABLE))
        );
        let base = [(vars::TABLE, "t"), (vars::TOPIC_ARN, "a")];
        assert!(matches!(
            Config::from_vars(base.into_iter().chain([(vars::AUTO_REMEDIATE, "always")])),
            Err(ConfigError::Invalid { .. })
        ));
        assert_eq!(
            Config::from_vars(base.into_iter().chain([(vars::AUTO_REMEDIATE, "critical")])),
            Err(ConfigError::Missing(vars::REMEDIATE_FUNCTION))
        );
        let off = Config::from_vars(base.into_iter().chain([(vars::AUTO_REMEDIATE, "off")]));
        assert_eq!(off.unwrap().auto_remediate, None);
    }

    #[test]
    fn break_glass_accounts_come_from_the_environment_and_the_file() {
        let base = [(vars::TABLE, "t"), (vars::TOPIC_ARN, "a")];
        let c = Config::from_vars(base.into_iter().chain([(
            vars::BREAK_GLASS,
            "breakglass@acme.example , 00ubreakglass0000001,",
        )]))
        .unwrap();
        assert_eq!(
            c.break_glass,
            ["breakglass@acme.example", "00ubreakglass0000001"]
        );
        assert_eq!(
            c.break_glass_with(&["BREAKGLASS@acme.example".to_owned()]),
            ["BREAKGLASS@acme.example", "00ubreakglass0000001"]
        );
        let none = Config::from_vars(base.into_iter().chain([(vars::BREAK_GLASS, " ")])).unwrap();
        assert!(none.break_glass_with(&[]).is_empty());
    }
}
