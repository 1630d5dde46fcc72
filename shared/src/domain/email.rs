//! Email addresses: trimmed, validated, and normalised for uniqueness.

use crate::domain::error::AuthError;
use email_address::EmailAddress;

/// The longest address accepted, in characters (RFC 5321's path limit less its brackets).
pub const MAX_CHARS: usize = 254;

/// A syntactically valid address as the user gave it (trimmed), with its normalised form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    address: String,
    normalised: String,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Self, AuthError> {
        let address = raw.trim();
        let plain = !address.contains(['<', '>', ' ']);
        if address.chars().count() > MAX_CHARS || !plain || !EmailAddress::is_valid(address) {
            return Err(AuthError::InvalidEmail);
        }
        Ok(Self { address: address.to_owned(), normalised: normalise(address) })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The form that decides uniqueness: `A@x.io` and `a@x.io` are one account.
    pub fn normalised(&self) -> &str {
        &self.normalised
    }
}

/// Trim and lower-case; used for lookups and for comparing a confirmation with an account.
pub fn normalise(raw: &str) -> String {
    raw.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_trimmed_and_normalised_case_insensitively() {
        let email = Email::parse("  Alice@Example.IO ").unwrap();
        assert_eq!(email.as_str(), "Alice@Example.IO");
        assert_eq!(email.normalised(), "alice@example.io");
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for raw in ["", "alice", "alice@", "@example.io", "a b@example.io", "Alice <a@example.io>", "a@@b.io"] {
            assert_eq!(Email::parse(raw), Err(AuthError::InvalidEmail), "{raw:?}");
        }
    }

    #[test]
    fn an_address_longer_than_254_characters_is_rejected() {
        let long = format!("{}@{}.io", "a".repeat(64), "b".repeat(190));
        assert!(long.len() > 254);
        assert_eq!(Email::parse(&long), Err(AuthError::InvalidEmail));
        let ok = format!("{}@{}.io", "a".repeat(64), "b".repeat(60));
        assert!(Email::parse(&ok).is_ok());
    }
}
