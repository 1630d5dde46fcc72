//! API keys: `frm_` (master) and `frs_` (scoped), 36 random base62 characters from the
//! OS CSPRNG (about 214 bits), and a 6-character CRC-32 checksum, so that the service and
//! secret scanners tell a real-looking key from noise without any database call.
//! Keys are stored only as their SHA-256 digest, which is also the lookup key.
//! Keys imported from the Node relay (64 lowercase hex characters, no prefix and no
//! checksum) are accepted as they are: their kind is what their index entry says.

use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

pub(crate) const RANDOM_CHARS: usize = 36;
pub(crate) const CHECKSUM_CHARS: usize = 6;
pub(crate) const PREFIX_LEN: usize = 4;
/// What `keyPrefix` shows: the kind prefix and eight random characters.
const DISPLAY_CHARS: usize = PREFIX_LEN + 8;
/// The length of a key imported from the Node relay (32 random bytes, hex-encoded).
const LEGACY_CHARS: usize = 64;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    Master,
    Scoped,
}

impl KeyKind {
    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Master => "frm_",
            KeyKind::Scoped => "frs_",
        }
    }
}

/// A plaintext key. Wiped from memory when dropped; never logged (no `Display`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    kind: KeyKind,
    text: Zeroizing<String>,
    /// A key imported from the Node relay: its text says nothing of its kind.
    legacy: bool,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKey({}...)", self.display_prefix())
    }
}

/// The SHA-256 of a key, hex-encoded: what the store keeps and looks up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyDigest(pub String);

impl ApiKey {
    pub fn generate(kind: KeyKind) -> Self {
        let random = Alphanumeric.sample_string(&mut OsRng, RANDOM_CHARS);
        let mut text = String::with_capacity(PREFIX_LEN + RANDOM_CHARS + CHECKSUM_CHARS);
        text.push_str(kind.prefix());
        text.push_str(&random);
        text.push_str(&checksum(&text));
        Self { kind, text: Zeroizing::new(text), legacy: false }
    }

    /// Accepts only a well-formed key with a valid checksum, or a key imported from the
    /// Node relay (64 lowercase hex characters, see [`ApiKey::is_legacy`]); anything else
    /// is noise.
    pub fn parse(candidate: &str) -> Option<Self> {
        if is_legacy(candidate) {
            return Some(Self { kind: KeyKind::Master, text: Zeroizing::new(candidate.to_owned()), legacy: true });
        }
        let kind = [KeyKind::Master, KeyKind::Scoped].into_iter().find(|kind| candidate.starts_with(kind.prefix()))?;
        let body = &candidate[PREFIX_LEN..];
        if body.len() != RANDOM_CHARS + CHECKSUM_CHARS || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let (payload, sum) = candidate.split_at(PREFIX_LEN + RANDOM_CHARS);
        (checksum(payload) == sum).then(|| Self { kind, text: Zeroizing::new(candidate.to_owned()), legacy: false })
    }

    /// A key imported from the Node relay, whose text has no kind: until
    /// [`ApiKey::with_kind`] gives it the kind its index entry names, it says `Master`.
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// The legacy key as the kind its index entry names; a key that carries its kind in
    /// its prefix keeps it.
    pub fn with_kind(mut self, kind: KeyKind) -> Self {
        if self.legacy {
            self.kind = kind;
        }
        self
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The secret itself, for the one answer that shows it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    pub fn digest(&self) -> KeyDigest {
        KeyDigest(hex::encode(Sha256::digest(self.text.as_bytes())))
    }

    /// The key's first characters, enough to recognise it and far too few to use it.
    pub fn display_prefix(&self) -> String {
        self.text[..DISPLAY_CHARS].to_owned()
    }
}

fn is_legacy(candidate: &str) -> bool {
    candidate.len() == LEGACY_CHARS && candidate.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The 6-character base62 CRC-32 of `payload` that ends every key of this service.
pub(crate) fn checksum(payload: &str) -> String {
    let mut n = crc32fast::hash(payload.as_bytes());
    let mut out = [b'0'; CHECKSUM_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn generated_keys_parse_back_with_their_kind() {
        for kind in [KeyKind::Master, KeyKind::Scoped] {
            let key = ApiKey::generate(kind);
            assert_eq!(key.expose().len(), 46);
            let parsed = ApiKey::parse(key.expose()).expect("a generated key parses");
            assert_eq!(parsed.kind(), kind);
            assert_eq!(parsed.digest(), key.digest());
        }
        assert!(ApiKey::generate(KeyKind::Master).expose().starts_with("frm_"));
        assert!(ApiKey::generate(KeyKind::Scoped).expose().starts_with("frs_"));
    }

    #[test]
    fn keys_carry_over_160_random_bits_and_do_not_repeat() {
        // 36 characters drawn uniformly from 62 symbols.
        assert!(RANDOM_CHARS as f64 * 62f64.log2() >= 160.0);
        // Even after the shown prefix, more than 160 bits stay secret.
        assert!((RANDOM_CHARS - (DISPLAY_CHARS - PREFIX_LEN)) as f64 * 62f64.log2() >= 160.0);
        let keys: HashSet<String> = (0..1000).map(|_| ApiKey::generate(KeyKind::Master).expose().to_owned()).collect();
        assert_eq!(keys.len(), 1000);
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let key = ApiKey::generate(KeyKind::Master);
        let text = key.expose();
        for i in PREFIX_LEN..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let mutated = String::from_utf8(bytes).unwrap();
            assert!(ApiKey::parse(&mutated).is_none(), "position {i}");
        }
    }

    #[test]
    fn noise_is_rejected() {
        let key = ApiKey::generate(KeyKind::Scoped);
        let text = key.expose();
        let wrong_prefix = format!("frx_{}", &text[4..]);
        let too_long = format!("{text}0");
        for noise in [
            "",
            "frm_",
            "hello",
            &wrong_prefix,
            &text[..text.len() - 1],
            &too_long,
            "frm_ääääääääääääääääääääääääääääääääääää",
        ] {
            assert!(ApiKey::parse(noise).is_none(), "{noise:?}");
        }
    }

    #[test]
    fn relay_keys_of_64_lowercase_hex_characters_are_accepted_as_they_are() {
        let relay = "3f".repeat(32);
        let key = ApiKey::parse(&relay).expect("a relay key parses");
        assert!(key.is_legacy());
        assert_eq!(key.digest().0, hex::encode(Sha256::digest(relay.as_bytes())));
        assert_eq!(key.clone().with_kind(KeyKind::Scoped).kind(), KeyKind::Scoped);
        assert_eq!(key.with_kind(KeyKind::Master).kind(), KeyKind::Master);
        let new = ApiKey::generate(KeyKind::Scoped);
        assert!(!new.is_legacy());
        assert_eq!(new.with_kind(KeyKind::Master).kind(), KeyKind::Scoped, "a prefixed key keeps its kind");
        for noise in ["3F".repeat(32), "3f".repeat(31), "3f".repeat(33), format!("{}g", "3f".repeat(31) + "3")] {
            assert!(ApiKey::parse(&noise).is_none(), "{noise}");
        }
    }

    #[test]
    fn the_digest_is_sha256_hex_and_the_prefix_shows_twelve_characters() {
        let key = ApiKey::generate(KeyKind::Master);
        assert_eq!(key.digest().0, hex::encode(Sha256::digest(key.expose().as_bytes())));
        assert_eq!(key.digest().0.len(), 64);
        assert_eq!(key.display_prefix(), key.expose()[..12]);
        assert!(!format!("{key:?}").contains(key.expose()));
    }
}
