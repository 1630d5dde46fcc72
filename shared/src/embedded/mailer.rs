//! A mailer that writes each email as an RFC 5322 `.eml` file into an outbox directory.

use crate::domain::clock::{Clock, SystemClock};
use crate::domain::error::PortError;
use crate::domain::ports::{Mailer, OutgoingEmail, PortResult};
use async_trait::async_trait;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
use lettre::Message;
use std::path::{Path, PathBuf};

pub struct OutboxMailer {
    dir: PathBuf,
    from: Mailbox,
}

impl OutboxMailer {
    pub fn new(dir: &Path, from: &str) -> PortResult<Self> {
        crate::embedded::private::private_dir(dir)?;
        let from = from.parse().map_err(|e| PortError::Other(format!("sender address {from:?}: {e}")))?;
        Ok(Self { dir: dir.to_owned(), from })
    }
}

/// The text part unencoded where RFC 5322 allows it (ASCII, lines of at most 998
/// characters), so that a person reading the `.eml` file sees the link as it is; lettre
/// itself would quote-print any line over 76 characters.
fn plain_text(text: &str) -> SinglePart {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    let seven_bit = crlf.is_ascii() && !crlf.contains('\0') && crlf.split("\r\n").all(|line| line.len() <= 998);
    let body = if seven_bit {
        Body::dangerous_pre_encoded(crlf.into_bytes(), ContentTransferEncoding::SevenBit)
    } else {
        Body::new(text.to_owned())
    };
    SinglePart::builder().header(ContentType::TEXT_PLAIN).body(body)
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &OutgoingEmail) -> PortResult<()> {
        let to: Mailbox = email.to.parse().map_err(PortError::other)?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(plain_text(&email.text))
                    .singlepart(SinglePart::html(email.html.clone())),
            )
            .map_err(PortError::other)?;
        // Named by when it was written (files sort by time), whatever clock the app runs on.
        let written = SystemClock.now().format("%Y%m%dT%H%M%S%.3fZ");
        let name = format!("{written}-{}.eml", uuid::Uuid::new_v4().simple());
        // Written under a temporary name and renamed, so a reader never sees half a file.
        let partial = self.dir.join(format!(".{name}.partial"));
        let path = self.dir.join(&name);
        let bytes = message.formatted();
        // Owner-only (0600): the email may carry a live reset link.
        let temporary = partial.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut file = crate::embedded::private::private_file_options().truncate(true).open(&temporary)?;
            file.write_all(&bytes).and_then(|()| file.sync_all())
        })
        .await
        .map_err(PortError::other)?
        .map_err(PortError::other)?;
        tokio::fs::rename(&partial, &path).await.map_err(PortError::other)?;
        tracing::info!(file = %path.display(), subject = %email.subject, "email written to the outbox");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_email_becomes_an_eml_file_with_headers_and_both_parts() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = OutboxMailer::new(dir.path(), "no-reply@localhost").unwrap();
        let email = OutgoingEmail {
            to: "player@example.io".into(),
            subject: "Reset your password".into(),
            text: format!("Open this link:\nhttps://relay.example.io/reset?reset-token={}\n", "ab".repeat(32)),
            html: "<p>Open <a href=\"https://relay.example.io/reset?reset-token=abc\">it</a></p>".into(),
        };
        mailer.send(&email).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].extension().unwrap(), "eml");
        let eml = std::fs::read_to_string(&files[0]).unwrap();
        assert!(eml.contains("To: player@example.io"), "{eml}");
        assert!(eml.contains("From: no-reply@localhost"), "{eml}");
        assert!(eml.contains("Subject: Reset your password"), "{eml}");
        assert!(eml.contains("multipart/alternative"), "{eml}");
        assert!(eml.contains("text/plain") && eml.contains("text/html"), "{eml}");
        let link = format!("https://relay.example.io/reset?reset-token={}", "ab".repeat(32));
        assert!(eml.contains(&link), "the link reads as it is: {eml}");
    }
}
