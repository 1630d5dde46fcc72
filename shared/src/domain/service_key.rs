//! Service keys: what a relay presents to `POST /auth/verify`. They are not API keys of an
//! account: `fsv_`, 36 random base62 characters from the OS CSPRNG and the same CRC-32
//! checksum as API keys (so a secret scanner knows them), and the service keeps only
//! their SHA-256 digests (`SERVICE_KEY_DIGESTS`), at most two at once so that a key can be
//! replaced without downtime: add the new digest, move the relay to the new key, drop the
//! old digest.

use crate::domain::keys::{checksum, CHECKSUM_CHARS, PREFIX_LEN, RANDOM_CHARS};
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

const PREFIX: &str = "fsv_";
/// How many digests may be accepted at once: the current key and the one replacing it.
pub const MAX_DIGESTS: usize = 2;

/// A fresh service key, shown once, and the digest to configure.
pub struct NewServiceKey {
    pub key: Zeroizing<String>,
    pub digest: String,
}

impl std::fmt::Debug for NewServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewServiceKey").field("digest", &self.digest).finish_non_exhaustive()
    }
}

impl NewServiceKey {
    pub fn generate() -> Self {
        let mut text = String::with_capacity(PREFIX_LEN + RANDOM_CHARS + CHECKSUM_CHARS);
        text.push_str(PREFIX);
        text.push_str(&Alphanumeric.sample_string(&mut OsRng, RANDOM_CHARS));
        text.push_str(&checksum(&text));
        let digest = hex::encode(Sha256::digest(text.as_bytes()));
        Self { key: Zeroizing::new(text), digest }
    }
}

/// Why a `SERVICE_KEY_DIGESTS` value was refused (it never contains the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestsError {
    #[error("expected at most {MAX_DIGESTS} digests, got {0}")]
    TooMany(usize),
    #[error("digest {0} is not 64 hexadecimal characters (the SHA-256 of a service key)")]
    NotADigest(usize),
}

/// The digests of the service keys accepted now. Empty: the verify door is closed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ServiceKeyDigests(Vec<[u8; 32]>);

impl std::fmt::Debug for ServiceKeyDigests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServiceKeyDigests({} configured)", self.0.len())
    }
}

impl ServiceKeyDigests {
    /// Reads digests given one by one (`local --service-key-digest`) or comma-separated
    /// (`SERVICE_KEY_DIGESTS`); blanks are ignored, case does not matter.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Self, DigestsError> {
        let mut digests = Vec::new();
        for (position, text) in
            values.into_iter().flat_map(|v| v.split(',')).map(str::trim).filter(|t| !t.is_empty()).enumerate()
        {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(text, &mut digest).map_err(|_| DigestsError::NotADigest(position + 1))?;
            if !digests.contains(&digest) {
                digests.push(digest);
            }
        }
        if digests.len() > MAX_DIGESTS {
            return Err(DigestsError::TooMany(digests.len()));
        }
        Ok(Self(digests))
    }

    /// Whether any service key is accepted at all (the verify route exists).
    pub fn is_open(&self) -> bool {
        !self.0.is_empty()
    }

    /// Whether `presented` is one of the accepted service keys: its SHA-256 compared in
    /// constant time with every configured digest (all of them, always).
    pub fn accepts(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let matched = self.0.iter().fold(subtle::Choice::from(0), |found, digest| found | digest.ct_eq(&presented));
        bool::from(matched)
    }
}

/// What names a service key in logs: the first 12 hex characters of its SHA-256, the
/// start of the digest an operator configured (and no help in guessing the key).
pub fn fingerprint(presented: &str) -> String {
    hex::encode(&Sha256::digest(presented.as_bytes())[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_key_is_accepted_by_its_digest_and_by_nothing_else() {
        let new = NewServiceKey::generate();
        assert!(new.key.starts_with("fsv_"));
        assert_eq!(new.key.len(), 46);
        assert_eq!(&checksum(&new.key[..40]), &new.key[40..]);
        let digests = ServiceKeyDigests::parse([new.digest.as_str()]).unwrap();
        assert!(digests.is_open());
        assert!(digests.accepts(&new.key));
        assert!(!digests.accepts(&NewServiceKey::generate().key));
        assert!(!digests.accepts(""));
        assert!(!digests.accepts(&new.digest), "the digest itself is not the key");
        assert!(!format!("{new:?}").contains(new.key.as_str()));
        assert!(new.digest.starts_with(&fingerprint(&new.key)));
        assert_eq!(fingerprint(&new.key).len(), 12);
    }

    #[test]
    fn two_digests_at_once_let_a_key_be_replaced() {
        let (old, new) = (NewServiceKey::generate(), NewServiceKey::generate());
        let both = format!("{}, {}", old.digest, new.digest.to_uppercase());
        let digests = ServiceKeyDigests::parse([both.as_str()]).unwrap();
        assert!(digests.accepts(&old.key) && digests.accepts(&new.key));
        let third = NewServiceKey::generate();
        let three = format!("{},{},{}", old.digest, new.digest, third.digest);
        assert_eq!(ServiceKeyDigests::parse([three.as_str()]), Err(DigestsError::TooMany(3)));
        let repeated = [old.digest.as_str(), old.digest.as_str(), new.digest.as_str()];
        assert!(ServiceKeyDigests::parse(repeated).is_ok(), "a digest named twice counts once");
    }

    #[test]
    fn nothing_configured_closes_the_door_and_noise_is_refused() {
        let none = ServiceKeyDigests::parse(["", " , "]).unwrap();
        assert!(!none.is_open());
        assert!(!none.accepts("fsv_anything"));
        assert_eq!(ServiceKeyDigests::parse(["abc"]), Err(DigestsError::NotADigest(1)));
        let key = NewServiceKey::generate();
        let with_key = format!("{},{}", NewServiceKey::generate().digest, key.key.as_str());
        let refused = ServiceKeyDigests::parse([with_key.as_str()]).unwrap_err();
        assert_eq!(refused, DigestsError::NotADigest(2));
        assert!(!refused.to_string().contains(key.key.as_str()), "the error never repeats the value");
    }
}
