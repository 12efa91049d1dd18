//! The rebaseline function's configuration: a typed value read once, at cold start, from the
//! environment (tests pass a map). The README's "Running on AWS" table lists the same names.

use std::path::PathBuf;

/// Environment variables the rebaseline function reads.
pub mod vars {
    /// DynamoDB table (required).
    pub const TABLE: &str = "PROVGUARD_TABLE";
    /// Optional provguard TOML configuration file (half-life, time zone, privilege tiers).
    pub const CONFIG: &str = "PROVGUARD_CONFIG";
    /// Days of event log the baselines are rebuilt from (default 180).
    pub const WINDOW_DAYS: &str = "PROVGUARD_REBASELINE_WINDOW_DAYS";
    /// Events per page of the log (default 1000).
    pub const PAGE_SIZE: &str = "PROVGUARD_REBASELINE_PAGE_SIZE";
    /// Milliseconds kept before the deadline for the last page and the checkpoint (default 60000).
    pub const RESERVE_MS: &str = "PROVGUARD_REBASELINE_RESERVE_MS";
    /// Hours after a finished run before a new one starts (default 20).
    pub const MIN_INTERVAL_HOURS: &str = "PROVGUARD_REBASELINE_MIN_INTERVAL_HOURS";

    /// All of the above.
    pub const ALL: &[&str] = &[
        TABLE,
        CONFIG,
        WINDOW_DAYS,
        PAGE_SIZE,
        RESERVE_MS,
        MIN_INTERVAL_HOURS,
    ];
}

pub const DEFAULT_WINDOW_DAYS: i64 = 180;
pub const DEFAULT_PAGE_SIZE: usize = 1_000;
pub const DEFAULT_RESERVE_MS: u64 = 60_000;
pub const DEFAULT_MIN_INTERVAL_HOURS: i64 = 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{var}: `{value}` is not a positive whole number")]
    Invalid { var: &'static str, value: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    pub config_file: Option<PathBuf>,
    pub window_days: i64,
    pub page_size: usize,
    pub reserve_ms: u64,
    pub min_interval_hours: i64,
}

fn positive<T: std::str::FromStr + PartialOrd + Default>(
    var: &'static str,
    v: &str,
) -> Result<T, ConfigError> {
    match v.parse::<T>() {
        Ok(n) if n > T::default() => Ok(n),
        _ => Err(ConfigError::Invalid {
            var,
            value: v.to_owned(),
        }),
    }
}

impl Config {
    pub fn from_vars<'a>(
        vars_iter: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        let mut c = Config {
            table: String::new(),
            config_file: None,
            window_days: DEFAULT_WINDOW_DAYS,
            page_size: DEFAULT_PAGE_SIZE,
            reserve_ms: DEFAULT_RESERVE_MS,
            min_interval_hours: DEFAULT_MIN_INTERVAL_HOURS,
        };
        for (k, v) in vars_iter {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            match k {
                vars::TABLE => c.table = v.to_owned(),
                vars::CONFIG => c.config_file = Some(PathBuf::from(v)),
                vars::WINDOW_DAYS => c.window_days = positive(vars::WINDOW_DAYS, v)?,
                vars::PAGE_SIZE => c.page_size = positive(vars::PAGE_SIZE, v)?,
                vars::RESERVE_MS => c.reserve_ms = positive(vars::RESERVE_MS, v)?,
                vars::MIN_INTERVAL_HOURS => {
                    // 0 is allowed here: every scheduled invocation starts a new run.
                    c.min_interval_hours = v.parse().map_err(|_| ConfigError::Invalid {
                        var: vars::MIN_INTERVAL_HOURS,
                        value: v.to_owned(),
                    })?;
                }
                _ => {}
            }
        }
        if c.table.is_empty() {
            return Err(ConfigError::Missing(vars::TABLE));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_vars([(vars::TABLE, "t")]).unwrap();
        assert_eq!(
            (
                c.window_days,
                c.page_size,
                c.reserve_ms,
                c.min_interval_hours
            ),
            (180, 1_000, 60_000, 20)
        );
        let c = Config::from_vars([
            (vars::TABLE, "t"),
            (vars::PAGE_SIZE, "2"),
            (vars::WINDOW_DAYS, "30"),
            (vars::MIN_INTERVAL_HOURS, "0"),
        ])
        .unwrap();
        assert_eq!(
            (c.page_size, c.window_days, c.min_interval_hours),
            (2, 30, 0)
        );
    }

    #[test]
    fn refuses_missing_table_and_bad_numbers() {
        assert_eq!(
            Config::from_vars([]),
            Err(ConfigError::Missing(vars::TABLE))
        );
        assert!(matches!(
            Config::from_vars([(vars::TABLE, "t"), (vars::PAGE_SIZE, "0")]),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(Config::from_vars([(vars::TABLE, "t"), (vars::RESERVE_MS, "soon")]).is_err());
    }
}
