//! Secrets named by environment variables (feature `aws`): a value `ssm:<parameter name>` is read
//! from SSM Parameter Store (a SecureString, decrypted) once, at cold start; any other value is
//! the secret itself. The Lambda functions resolve their webhook and identity-provider secrets
//! with [`resolve`]; values are never logged, only the variable and parameter names.

use std::collections::HashMap;

/// The prefix of a Parameter Store reference.
pub const SSM_PREFIX: &str = "ssm:";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The parameter could not be read (missing, no permission, SSM unavailable).
    #[error("{var}: SSM GetParameter {parameter} failed")]
    Ssm {
        var: String,
        parameter: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    #[error("{var}: the SSM parameter {parameter} has no value")]
    Empty { var: String, parameter: String },
    #[error("{var}: `{scheme}:` references are not supported; use ssm:<parameter name>")]
    Unsupported { var: String, scheme: String },
}

/// Replaces every `ssm:` value among `vars` whose name `wanted` accepts by the parameter's
/// decrypted value (each parameter read once); other values pass through unchanged.
pub async fn resolve(
    ssm: &aws_sdk_ssm::Client,
    vars: Vec<(String, String)>,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<(String, String)>, SecretError> {
    let mut read: HashMap<String, String> = HashMap::new();
    let mut out = Vec::with_capacity(vars.len());
    for (var, value) in vars {
        if !wanted(&var) {
            out.push((var, value));
            continue;
        }
        let trimmed = value.trim();
        if let Some(scheme) = ["secretsmanager:", "arn:aws:secretsmanager:"]
            .iter()
            .find(|p| trimmed.starts_with(**p))
        {
            return Err(SecretError::Unsupported {
                var,
                scheme: scheme.trim_end_matches(':').to_owned(),
            });
        }
        let Some(parameter) = trimmed.strip_prefix(SSM_PREFIX) else {
            out.push((var, value));
            continue;
        };
        let parameter = parameter.to_owned();
        if let Some(v) = read.get(&parameter) {
            out.push((var, v.clone()));
            continue;
        }
        let got = ssm
            .get_parameter()
            .name(&parameter)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| SecretError::Ssm {
                var: var.clone(),
                parameter: parameter.clone(),
                source: Box::new(e),
            })?;
        let Some(v) = got
            .parameter
            .and_then(|p| p.value)
            .filter(|v| !v.is_empty())
        else {
            return Err(SecretError::Empty { var, parameter });
        };
        tracing::info!(%var, %parameter, "secret read from SSM");
        read.insert(parameter, v.clone());
        out.push((var, v));
    }
    Ok(out)
}
