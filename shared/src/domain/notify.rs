//! The emails the service sends. Sending failures are logged, never answered.

use crate::domain::app::App;
use crate::domain::error::Chain;
use crate::domain::ports::OutgoingEmail;
use url::Url;

/// `page` with `pairs` appended to its query.
fn page_link(page: &Url, pairs: &[(&str, &str)]) -> Url {
    let mut link = page.clone();
    link.query_pairs_mut().extend_pairs(pairs);
    link
}

/// The reset page with the token; `revoke_keys` when the owner said a key leaked, so that
/// the page offers to replace every key already ticked.
pub fn reset_link(reset_page: &Url, token: &str, revoke_keys: bool) -> Url {
    match revoke_keys {
        true => page_link(reset_page, &[("reset-token", token), ("revoke-keys", "1")]),
        false => page_link(reset_page, &[("reset-token", token)]),
    }
}

/// The verification page with the token appended as `verify-token`.
pub fn verify_link(verify_page: &Url, token: &str) -> Url {
    page_link(verify_page, &[("verify-token", token)])
}

/// An email that carries one link: why it came, what the link does (ending in "…:"), and
/// what to do if it was not asked for; in a text part and an HTML part alike.
fn link_email(to: &str, subject: &str, why: &str, action: &str, otherwise: &str, link: &Url) -> OutgoingEmail {
    let href = escape_html(link.as_str());
    OutgoingEmail {
        to: to.to_owned(),
        subject: subject.to_owned(),
        text: format!("{why}\n\n{action}\n{link}\n\n{otherwise}\n"),
        html: format!("<p>{why}</p><p>{action}<br><a href=\"{href}\">{href}</a></p><p>{otherwise}</p>"),
    }
}

pub fn verification_email(to: &str, link: &Url) -> OutgoingEmail {
    link_email(
        to,
        "Verify your Foundry REST API email",
        "An account of the Foundry REST API was registered with this email.",
        "To verify the email and switch on its API keys, open this link within 24 hours:",
        "If it was not you, ignore this email, or take the account over with \"Forgot password\".",
        link,
    )
}

pub fn reset_email(to: &str, link: &Url) -> OutgoingEmail {
    link_email(
        to,
        "Reset your Foundry REST API password",
        "Someone asked to reset the password of your Foundry REST API account.",
        "To choose a new password, open this link within one hour:",
        "If it was not you, ignore this email: your password stays as it is.",
        link,
    )
}

pub fn password_changed_email(to: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: to.to_owned(),
        subject: "Your Foundry REST API password was changed".into(),
        text: "The password of your Foundry REST API account was just changed.\n\n\
               If it was not you, reset your password at once and regenerate your API key.\n"
            .into(),
        html: "<p>The password of your Foundry REST API account was just changed.</p>\
               <p>If it was not you, reset your password at once and regenerate your API key.</p>"
            .into(),
    }
}

/// The link is built from configuration, but a page URL may carry `&` in its query.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// Sends, and logs a failure without the address or the content. Answers whether the
/// email went out.
pub async fn send_logged(app: &App, email: OutgoingEmail, kind: &'static str) -> bool {
    match app.mailer.send(&email).await {
        Ok(()) => true,
        Err(error) => {
            tracing::error!(error = %Chain(&error), email_kind = kind, "sending email failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reset_link_appends_the_token_to_the_configured_page() {
        let page = Url::parse("https://relay.example.io/reset").unwrap();
        assert_eq!(reset_link(&page, "abc123", false).as_str(), "https://relay.example.io/reset?reset-token=abc123");
        assert_eq!(
            reset_link(&page, "abc123", true).as_str(),
            "https://relay.example.io/reset?reset-token=abc123&revoke-keys=1"
        );
        let with_query = Url::parse("https://relay.example.io/app?lang=de").unwrap();
        assert_eq!(
            reset_link(&with_query, "abc123", false).as_str(),
            "https://relay.example.io/app?lang=de&reset-token=abc123"
        );
    }

    #[test]
    fn the_verification_email_links_the_verification_page_with_the_token() {
        let page = Url::parse("https://relay.example.io/verify-email").unwrap();
        let link = verify_link(&page, "t0k");
        assert_eq!(link.as_str(), "https://relay.example.io/verify-email?verify-token=t0k");
        let email = verification_email("a@example.io", &link);
        assert_eq!(email.to, "a@example.io");
        assert!(email.text.contains(link.as_str()) && email.html.contains(link.as_str()));
    }

    #[test]
    fn the_reset_email_has_the_link_in_both_parts() {
        let link = Url::parse("https://relay.example.io/reset?reset-token=t0k").unwrap();
        let email = reset_email("a@example.io", &link);
        assert_eq!(email.to, "a@example.io");
        assert!(email.text.contains(link.as_str()));
        assert!(email.html.contains(link.as_str()));
        let with_query = Url::parse("https://relay.example.io/app?lang=de&reset-token=t0k").unwrap();
        let html = reset_email("a@example.io", &with_query).html;
        assert!(html.contains("href=\"https://relay.example.io/app?lang=de&amp;reset-token=t0k\""), "{html}");
    }
}
