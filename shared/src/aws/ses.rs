//! SES v2 as the mailer.

use crate::aws::failure::sdk_error;
use crate::domain::error::PortError;
use crate::domain::ports::{Mailer, OutgoingEmail, PortResult};
use async_trait::async_trait;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;

pub struct SesMailer {
    client: Client,
    from: String,
}

impl SesMailer {
    pub fn new(client: Client, from: String) -> Self {
        Self { client, from }
    }
}

fn utf8(text: &str) -> PortResult<Content> {
    Content::builder().data(text).charset("UTF-8").build().map_err(PortError::other)
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail) -> PortResult<()> {
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(Body::builder().text(utf8(&email.text)?).html(utf8(&email.html)?).build())
            .build();
        self.client
            .send_email()
            .from_email_address(&self.from)
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|error| without_addresses(sdk_error(error)))?;
        Ok(())
    }
}

/// SES names addresses in its error texts ("… failed the check in region US-EAST-1:
/// gm@example.com"); the detail goes to the logs, the addresses do not.
fn without_addresses(error: PortError) -> PortError {
    static ADDRESS: std::sync::LazyLock<Option<regex_lite::Regex>> =
        std::sync::LazyLock::new(|| regex_lite::Regex::new(r#"[^\s<>"',;:()\[\]]+@[^\s<>"',;:()\[\]]+"#).ok());
    let redact = |detail: String| match ADDRESS.as_ref() {
        Some(address) => address.replace_all(&detail, "[email address]").into_owned(),
        // Never happens (the tests compile it); without it, no detail at all.
        None => "SES refused the email (detail withheld)".to_owned(),
    };
    match error {
        PortError::Unavailable(detail) => PortError::Unavailable(redact(detail)),
        PortError::Other(detail) => PortError::Other(redact(detail)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_details_lose_every_address() {
        let detail = "service error: MessageRejected: Email address is not verified. The following identities \
                      failed the check in region US-EAST-1: gm.name+tag@example.com, <Other@Example.IO>";
        let PortError::Other(redacted) = without_addresses(PortError::Other(detail.to_owned())) else {
            panic!("the same kind of error")
        };
        assert!(!redacted.contains('@'), "{redacted}");
        assert!(
            redacted.contains("MessageRejected") && redacted.contains("[email address], <[email address]>"),
            "{redacted}"
        );
        assert_eq!(without_addresses(PortError::Conflict), PortError::Conflict);
    }
}
