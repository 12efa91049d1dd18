//! SNS alert sink (feature `aws`): one `Publish` per alert, effectively once across retries.
//!
//! The message uses `MessageStructure=json`, one body per protocol:
//!
//! | key | body |
//! |---|---|
//! | `default`, `sqs`, `lambda` | the full verdict JSON (what programs consume) |
//! | `email` | a readable text ([`super::email_text`]); `Subject` is [`super::subject`] |
//! | `https` | an AWS Chatbot custom notification ([`super::chat_notification`]) for Slack/Teams |
//!
//! Message attributes `severity`, `source` and `reason` (the top reason code) are String
//! attributes, so a subscription filters with a policy such as `{"severity":["high","critical"]}`.
//!
//! Idempotency: every publish goes through a [`PublishGuard`] (claim → publish → confirm; a failed
//! publish gives the claim back), so a retried Lambda invocation does not page twice.
//! `DynamoDbStore` is the guard in the Lambda functions.
//!
//! Like `DynamoDbStore`, the sink runs the SDK call with `Handle::block_on`: call it from a
//! blocking context (`tokio::task::spawn_blocking`), never from inside an async task.

use aws_sdk_sns::Client;
use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::json;
use tokio::runtime::Handle;

use super::{
    AlertError, AlertSink, PublishGuard, PublishOutcome, chat_notification, email_text,
    publish_once, subject, top_reason,
};
use crate::verdict::Verdict;

/// SNS accepts messages up to 256 KB (262,144 bytes), all protocol bodies together.
pub const MAX_MESSAGE_BYTES: usize = 262_144;

/// What one alert is published as.
#[derive(Debug, Clone, PartialEq)]
pub struct SnsMessage {
    pub subject: String,
    /// The `MessageStructure=json` document: a JSON object of per-protocol strings.
    pub message: String,
    /// `(name, value)` String message attributes.
    pub attributes: Vec<(&'static str, String)>,
}

impl SnsMessage {
    /// Renders a verdict. When the message would exceed SNS's 256 KB, every body is rendered
    /// again without the event history; if it still does not fit, an error.
    pub fn for_verdict(v: &Verdict) -> Result<SnsMessage, AlertError> {
        let mut message = structure(v)?;
        if message.len() > MAX_MESSAGE_BYTES {
            let lean = Verdict {
                history: Vec::new(),
                ..v.clone()
            };
            message = structure(&lean)?;
        }
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(AlertError::TooLarge {
                event_id: v.event_id.clone(),
                bytes: message.len(),
                limit: MAX_MESSAGE_BYTES,
            });
        }
        Ok(SnsMessage {
            subject: subject(v),
            message,
            attributes: vec![
                ("severity", v.severity.as_str().to_owned()),
                ("source", v.source.clone()),
                (
                    "reason",
                    top_reason(v).map_or_else(|| "none".to_owned(), |r| r.code.clone()),
                ),
            ],
        })
    }
}

fn structure(v: &Verdict) -> Result<String, AlertError> {
    let full = serde_json::to_string(v)?;
    let chat = serde_json::to_string(&chat_notification(v))?;
    Ok(serde_json::to_string(&json!({
        "default": full,
        "sqs": full,
        "lambda": full,
        "email": email_text(v),
        "https": chat,
    }))?)
}

/// Publishes alerts to one SNS topic.
pub struct SnsSink<G> {
    client: Client,
    topic_arn: String,
    rt: Handle,
    guard: G,
}

impl<G> std::fmt::Debug for SnsSink<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnsSink")
            .field("topic_arn", &self.topic_arn)
            .finish_non_exhaustive()
    }
}

impl<G: PublishGuard> SnsSink<G> {
    /// A sink publishing to `topic_arn`, deduplicating with `guard`, running SDK calls on `rt`.
    pub fn new(client: Client, topic_arn: impl Into<String>, rt: Handle, guard: G) -> Self {
        SnsSink {
            client,
            topic_arn: topic_arn.into(),
            rt,
            guard,
        }
    }

    fn send(&self, m: &SnsMessage) -> Result<(), AlertError> {
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message_structure("json")
            .subject(&m.subject)
            .message(&m.message);
        for (name, value) in &m.attributes {
            let attr = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| AlertError::Sns {
                    op: "Publish",
                    source: Box::new(e),
                })?;
            req = req.message_attributes(*name, attr);
        }
        self.rt.block_on(req.send()).map_err(|e| AlertError::Sns {
            op: "Publish",
            source: Box::new(e),
        })?;
        Ok(())
    }
}

impl<G: PublishGuard> AlertSink for SnsSink<G> {
    fn publish(&self, v: &Verdict) -> Result<PublishOutcome, AlertError> {
        if !v.alert {
            return Ok(PublishOutcome::NotAlert);
        }
        // Render before claiming: a verdict that cannot be sent must not hold a claim.
        let m = SnsMessage::for_verdict(v)?;
        let outcome = publish_once(&self.guard, v, || self.send(&m))?;
        tracing::info!(event_id = %v.event_id, severity = %v.severity, ?outcome, "alert published to SNS");
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_gets_its_body_and_attributes_name_the_top_reason() {
        let v = crate::alert::tests::alert();
        let m = SnsMessage::for_verdict(&v).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&m.message).unwrap();
        for key in ["default", "sqs", "lambda"] {
            let back: Verdict = serde_json::from_str(doc[key].as_str().unwrap()).unwrap();
            assert_eq!(back, v, "{key}");
        }
        assert!(
            doc["email"]
                .as_str()
                .unwrap()
                .contains("provguard explain ev-1")
        );
        let chat: serde_json::Value = serde_json::from_str(doc["https"].as_str().unwrap()).unwrap();
        assert_eq!(chat["source"], "custom");
        assert_eq!(
            m.attributes,
            [
                ("severity", "high".to_owned()),
                ("source", "okta".to_owned()),
                ("reason", "escalation_chain".to_owned())
            ]
        );
    }

    #[test]
    fn an_oversized_history_is_dropped_to_fit_sns() {
        let mut v = crate::alert::tests::alert();
        let h = v.history[0].clone();
        v.history = (0..2_000)
            .map(|i| crate::event::EventSummary {
                id: format!("{}-{i}-{}", h.id, "x".repeat(40)),
                ..h.clone()
            })
            .collect();
        let m = SnsMessage::for_verdict(&v).unwrap();
        assert!(m.message.len() <= MAX_MESSAGE_BYTES);
        let doc: serde_json::Value = serde_json::from_str(&m.message).unwrap();
        let back: Verdict = serde_json::from_str(doc["sqs"].as_str().unwrap()).unwrap();
        assert!(back.history.is_empty());
    }
}
