//! Passwords: the contract's rules, and hashing and verifying on the app's hashing pool
//! with its [`crate::domain::hasher::PasswordHasher`] (argon2id; hashes imported from the
//! Node relay, bcrypt, verify too and are replaced by argon2id at the first successful
//! login).

use crate::domain::app::App;
use crate::domain::error::{AuthError, PasswordRule, PortError};
use crate::domain::pool::PoolError;
use std::sync::Arc;
use zeroize::Zeroizing;

/// The shortest password accepted, in Unicode characters.
pub const MIN_CHARS: usize = 8;
/// The longest password accepted, in Unicode characters.
pub const MAX_CHARS: usize = 128;

/// The letter and digit rules of [`check_rules`] as a JSON Schema `pattern` (ECMA-262): an
/// ASCII uppercase letter, an ASCII lowercase letter and an ASCII digit, anywhere. The
/// rules are exactly these, as the relay's own (`[A-Z]`, `[a-z]`, `[0-9]`), so the
/// published schema and the server accept the same passwords.
pub const PATTERN: &str = r"^(?=[\s\S]*[A-Z])(?=[\s\S]*[a-z])(?=[\s\S]*[0-9])";

/// Checks a new password against the contract's rules, in the contract's order.
/// Length counts Unicode characters; the password is never trimmed.
pub fn check_rules(password: &str) -> Result<(), AuthError> {
    let weak = |rule| Err(AuthError::WeakPassword(rule));
    if password.chars().count() < MIN_CHARS {
        return weak(PasswordRule::TooShort);
    }
    if !password.chars().any(|c| c.is_ascii_uppercase()) {
        return weak(PasswordRule::NoUppercase);
    }
    if !password.chars().any(|c| c.is_ascii_lowercase()) {
        return weak(PasswordRule::NoLowercase);
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        return weak(PasswordRule::NoDigit);
    }
    if password.chars().count() > MAX_CHARS {
        return weak(PasswordRule::TooLong);
    }
    if is_common(password) {
        return weak(PasswordRule::TooCommon);
    }
    Ok(())
}

/// The most common passwords that pass the other rules, lower-cased and sorted
/// (provenance: `shared/data/README.md`).
const COMMON: &str = include_str!("../../data/common-passwords.txt");

/// Whether the password, ignoring case, is one of the most common.
pub fn is_common(password: &str) -> bool {
    static LIST: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let list = LIST.get_or_init(|| COMMON.lines().collect());
    list.binary_search(&password.to_lowercase().as_str()).is_ok()
}

/// Hashes on the app's hashing pool, so a hash never stalls the executor and never more
/// run at once than the pool has workers. A full queue is a 503.
pub async fn hash_on_pool(app: &App, password: &str) -> Result<String, AuthError> {
    let hasher = Arc::clone(&app.hasher);
    let password = Zeroizing::new(password.to_owned());
    app.hash_pool
        .run(move |memory| hasher.hash_in(&password, memory))
        .await
        .map_err(pool_error)?
        .map_err(AuthError::from)
}

/// Verifies on the app's hashing pool. `None` (no such account) never matches; every
/// failed check, with or without an account, does the same hashing work
/// ([`crate::domain::hasher::PasswordHasher::check_in`]), on the same pool.
pub async fn verify_on_pool(app: &App, password: &str, phc: Option<&str>) -> Result<bool, AuthError> {
    let hasher = Arc::clone(&app.hasher);
    let password = Zeroizing::new(password.to_owned());
    let phc = phc.map(str::to_owned);
    app.hash_pool.run(move |memory| hasher.check_in(&password, phc.as_deref(), memory)).await.map_err(pool_error)
}

fn pool_error(error: PoolError) -> AuthError {
    match error {
        PoolError::Full => AuthError::Unavailable(PortError::Unavailable("password hashing queue full: shed".into())),
        PoolError::Failed(detail) => AuthError::from(PortError::Other(detail.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_checked_in_the_contracts_order() {
        use PasswordRule::*;
        let cases = [
            ("short", TooShort),
            ("alllowercase1", NoUppercase),
            ("ALLUPPERCASE1", NoLowercase),
            ("NoDigitsHere", NoDigit),
            // Letters outside ASCII are characters like any other, as in the relay.
            ("ÄÖÜ-äöü-123", NoUppercase),
            ("ÄÖÜ-äöü-123A", NoLowercase),
            (&*format!("Aa1{}", "x".repeat(126)), TooLong),
        ];
        for (password, rule) in cases {
            assert_eq!(check_rules(password), Err(AuthError::WeakPassword(rule)), "{password}");
        }
        assert_eq!(check_rules(&format!("Aa1{}", "x".repeat(125))), Ok(()));
    }

    /// The published pattern and the rules accept the same characters: each lookahead's
    /// class, read back from [`PATTERN`], matches exactly the characters its rule counts,
    /// over all of Unicode.
    #[test]
    fn the_pattern_states_the_letter_and_digit_rules_exactly() {
        type Rule = fn(&char) -> bool;
        let rules: [(&str, Rule); 3] =
            [("upper", char::is_ascii_uppercase), ("lower", char::is_ascii_lowercase), ("digit", char::is_ascii_digit)];
        let classes: Vec<&str> = PATTERN
            .strip_prefix('^')
            .expect("anchored")
            .split_terminator(')')
            .map(|look| look.strip_prefix(r"(?=[\s\S]*").expect("a lookahead for one class"))
            .collect();
        assert_eq!(classes.len(), rules.len(), "{PATTERN}");
        for (class, (rule, counts)) in classes.iter().zip(rules) {
            let class = regex_lite::Regex::new(class).expect("a class regex-lite reads");
            let mut buffer = [0; 4];
            for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
                assert_eq!(class.is_match(c.encode_utf8(&mut buffer)), counts(&c), "{rule} {c:?}");
            }
        }
        // The three rules together, as check_rules applies them.
        let all = ["Aa1bcdefg", "aa1bcdefg", "AA1BCDEFG", "Aabcdefgh"];
        assert_eq!(all.map(|p| check_rules(p).is_ok()), [true, false, false, false]);
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        for common in ["Password1", "PASSword1", "Qwerty123", "Trustno1", "1qaz2WSX"] {
            assert_eq!(check_rules(common), Err(AuthError::WeakPassword(PasswordRule::TooCommon)), "{common}");
        }
        assert_eq!(check_rules("Tavern-Brawl-42"), Ok(()));
        // The list is sorted for the binary search, and as long as the contract asks.
        let list: Vec<&str> = COMMON.lines().collect();
        assert!(list.windows(2).all(|w| w[0] < w[1]));
        assert!(list.len() >= 10_000);
    }

    #[test]
    fn length_counts_unicode_characters_and_nothing_is_trimmed() {
        // Seven characters but more than eight bytes.
        assert_eq!(check_rules("Ää1äääá"), Err(AuthError::WeakPassword(PasswordRule::TooShort)));
        assert_eq!(check_rules("Aa1äääáé"), Ok(()));
        // Spaces count.
        assert_eq!(check_rules(" Abcde1 "), Ok(()));
    }
}
