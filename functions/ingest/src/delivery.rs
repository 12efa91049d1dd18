//! How an invocation's events reached the function. The automatic remediation request says so
//! (`"delivery"`), because the remediate function executes an automatic request only once its
//! change is confirmed, and for a CloudTrail event the only confirmation is the path it came
//! by: an EventBridge event from an AWS source cannot be sent by anyone else (PutEvents refuses
//! `aws.` sources), while a webhook body is whatever the holder of a shared secret posted.

/// How an invocation's events arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// An EventBridge event from one of AWS's own sources.
    EventBridge,
    /// A webhook request (Function URL or HTTP API).
    Webhook,
    /// Anything else: an EventBridge event from another source, a direct invoke.
    Direct,
}

impl Delivery {
    /// An EventBridge event from `source`: AWS's own sources are `aws.*`; `aws.partner/…`
    /// sources are filled by SaaS partners, so they count as any other sender's.
    pub fn of_eventbridge(source: &str) -> Delivery {
        if source.starts_with("aws.") && !source.starts_with("aws.partner/") {
            Delivery::EventBridge
        } else {
            Delivery::Direct
        }
    }

    /// The request field's value: `eventbridge`, `webhook` or `direct`.
    pub fn as_str(self) -> &'static str {
        match self {
            Delivery::EventBridge => "eventbridge",
            Delivery::Webhook => "webhook",
            Delivery::Direct => "direct",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_aws_sources_count_as_eventbridge_deliveries() {
        assert_eq!(Delivery::of_eventbridge("aws.iam"), Delivery::EventBridge);
        assert_eq!(
            Delivery::of_eventbridge("aws.identitystore"),
            Delivery::EventBridge
        );
        for other in [
            "aws.partner/okta.com/acme/stream",
            "acme.provisioning",
            "awsiam",
            "",
        ] {
            assert_eq!(Delivery::of_eventbridge(other), Delivery::Direct, "{other}");
        }
    }
}
