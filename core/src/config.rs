//! Configuration: a typed value read once (TOML file for the CLI).
//!
//! ```toml
//! tenant_timezone = "America/New_York"   # for actors without a directory time zone
//!
//! [detect]
//! half_life_days = 30
//! min_evidence = 20
//! alert_score = 50
//! break_glass = ["breakglass@acme.example"]
//!
//! [privileges]                          # extends the built-in tier tables
//! admin = ["prod-admins", "arn:aws:iam::123456789012:policy/OrgAdmin"]
//! elevated = ["deployers"]
//!
//! [mappings]                            # extra sources: name = VRL file (relative to this file)
//! hr = "mappings/hr.vrl"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::detect::DetectConfig;
use crate::event::Privilege;
use crate::privilege::PrivilegeTable;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tenant_timezone: Option<String>,
    #[serde(default)]
    detect: Option<DetectConfig>,
    #[serde(default)]
    privileges: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    mappings: BTreeMap<String, PathBuf>,
}

/// Everything a host needs to build the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub detect: DetectConfig,
    pub privileges: PrivilegeTable,
    /// Extra VRL mappings: name → file.
    pub mappings: BTreeMap<String, PathBuf>,
}

impl Config {
    /// Parses TOML text; relative mapping paths are resolved against `base`.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let file: File = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg = Config {
            detect: file.detect.unwrap_or_default(),
            ..Config::default()
        };
        if let Some(tz) = file.tenant_timezone {
            cfg.detect.tenant_timezone = tz;
        }
        cfg.detect.validate().map_err(ConfigError::Invalid)?;
        for (tier, names) in file.privileges {
            let tier = Privilege::parse(&tier).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "[privileges] has unknown tier `{tier}` (admin, elevated, standard, read_only)"
                ))
            })?;
            for n in names {
                cfg.privileges.insert(&n, tier);
            }
        }
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.mappings = file
            .mappings
            .into_iter()
            .map(|(k, v)| (k, if v.is_absolute() { v } else { base.join(v) }))
            .collect();
        Ok(cfg)
    }

    /// The file's configuration, or the defaults when no file is given.
    pub fn load_optional(path: Option<&Path>) -> Result<Self, ConfigError> {
        path.map_or_else(|| Ok(Self::default()), Self::load)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Entitlement, EntitlementKind};

    #[test]
    fn reads_tiers_thresholds_and_mappings() {
        let cfg = Config::from_toml(
            r#"
tenant_timezone = "Europe/Paris"
[detect]
alert_score = 60
[privileges]
admin = ["prod-admins"]
[mappings]
hr = "hr.vrl"
"#,
            Path::new("/etc/provguard/provguard.toml"),
        )
        .unwrap();
        assert_eq!(cfg.detect.alert_score, 60);
        assert_eq!(cfg.detect.tenant_timezone, "Europe/Paris");
        assert_eq!(cfg.mappings["hr"], Path::new("/etc/provguard/hr.vrl"));
        let mut e = Entitlement {
            id: None,
            name: Some("Prod-Admins".into()),
            kind: EntitlementKind::Group,
            privilege: Privilege::Unknown,
        };
        cfg.privileges.classify(&mut e);
        assert_eq!(e.privilege, Privilege::Admin);
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let p = Path::new("c.toml");
        assert!(Config::from_toml("tenant_timezon = \"UTC\"", p).is_err());
        assert!(Config::from_toml("tenant_timezone = \"Mars/Base\"", p).is_err());
        assert!(Config::from_toml("[privileges]\ngod = [\"x\"]", p).is_err());
    }
}
