//! Password hashing: the [`PasswordHasher`] port and its argon2id implementation (with
//! bcrypt verification for hashes imported from the Node relay), and the [`HashMemory`]
//! a hashing worker reuses. Pure CPU work; where it runs is [`crate::domain::pool`], and
//! the operations over the app are [`crate::domain::password`].

use crate::domain::error::PortError;
use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// The working memory of one worker: argon2 blocks, grown to the largest parameters seen
/// (the policy's 19 MiB unless a stored hash asks for more) and reused for every job.
#[derive(Default)]
pub struct HashMemory(Vec<Block>);

impl HashMemory {
    /// At least `blocks` blocks, reusing (and if needed growing) the worker's buffer.
    pub fn blocks(&mut self, blocks: usize) -> &mut [Block] {
        if self.0.len() < blocks {
            self.0.resize(blocks, Block::new());
        }
        &mut self.0[..blocks]
    }
}

/// Hashes and verifies passwords. Implementations are CPU-bound and called on the
/// hashing pool (see [`crate::domain::password::hash_on_pool`] and
/// [`crate::domain::password::verify_on_pool`]), in the worker's memory: an implementation
/// writes the `_in` methods, and the plain ones (fresh memory each call, for tests and
/// tools) follow from them.
pub trait PasswordHasher: Send + Sync {
    /// A new PHC string for `password`, working in `memory` (a pool worker's, reused).
    fn hash_in(&self, password: &str, memory: &mut HashMemory) -> Result<String, PortError>;
    /// Verifies against a stored PHC string, working in `memory`; a malformed one never
    /// matches.
    fn verify_in(&self, password: &str, phc: &str, memory: &mut HashMemory) -> bool;
    /// As [`PasswordHasher::hash_in`], in memory of its own.
    fn hash(&self, password: &str) -> Result<String, PortError> {
        self.hash_in(password, &mut HashMemory::default())
    }
    /// As [`PasswordHasher::verify_in`], in memory of its own.
    fn verify(&self, password: &str, phc: &str) -> bool {
        self.verify_in(password, phc, &mut HashMemory::default())
    }
    /// Whether a stored hash is weaker than the current policy and should be replaced.
    fn needs_rehash(&self, phc: &str) -> bool;
    /// One hash of a random password per kind of hash this hasher verifies, each of the
    /// cost a stored hash of that kind has: the current policy's argon2id first, then the
    /// relay's bcrypt ([`RELAY_BCRYPT_COST`]). See [`PasswordHasher::check_in`].
    fn decoys(&self) -> &[String];
    /// Checks a password against a stored hash (`None`: no such account), so that every
    /// failed check does the same hashing work whatever it was checked against: after a
    /// mismatch it verifies against each decoy whose [`Work`] it has not done yet. A wrong
    /// password for an unknown email, for an argon2id account and for a relay bcrypt
    /// account not yet upgraded all end having done one verification of each decoy's kind
    /// and cost. A correct password does only its own hash's work.
    fn check_in(&self, password: &str, phc: Option<&str>, memory: &mut HashMemory) -> bool {
        let matched = phc.is_some_and(|phc| self.verify_in(password, phc, memory));
        if !matched {
            let done = phc.and_then(Work::of);
            for decoy in self.decoys() {
                if done.is_none() || Work::of(decoy) != done {
                    self.verify_in(password, decoy, memory);
                }
            }
        }
        matched
    }
}

/// The hashing work a verification against a stored hash costs: its kind and cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// An argon2 hash: its variant (`argon2id`, ...), memory in KiB, passes and lanes.
    Argon2 { algorithm: String, m_cost: u32, t_cost: u32, p_cost: u32 },
    /// A bcrypt hash of `2^cost` rounds (any of the `$2a$`, `$2b$`, `$2y$` prefixes).
    Bcrypt { cost: u32 },
}

impl Work {
    /// The work of verifying against `phc`; `None` for a hash nobody can verify against
    /// (malformed), whose check costs nothing.
    pub fn of(phc: &str) -> Option<Self> {
        if is_bcrypt(phc) {
            let cost = phc.get(4..6)?.parse().ok()?;
            return (phc.get(6..7) == Some("$")).then_some(Self::Bcrypt { cost });
        }
        let parsed = PasswordHash::new(phc).ok()?;
        let params = Params::try_from(&parsed).ok()?;
        Some(Self::Argon2 {
            algorithm: parsed.algorithm.as_str().to_owned(),
            m_cost: params.m_cost(),
            t_cost: params.t_cost(),
            p_cost: params.p_cost(),
        })
    }
}

/// OWASP's argon2id minimum: 19 MiB, two passes, one lane.
pub const POLICY: (u32, u32, u32) = (19_456, 2, 1);

/// The bcrypt cost the Node relay hashed its passwords with (bcryptjs, 10): the cost of
/// the bcrypt decoy every failed check also verifies against, so a wrong password for an
/// imported account not yet upgraded costs what it costs for any other.
pub const RELAY_BCRYPT_COST: u32 = 10;

/// A decoy with exactly [`POLICY`]'s parameters and a random salt and digest (no password
/// is known to produce it), so
/// that a login for an unknown email runs the very same verification as a wrong password.
const POLICY_DECOY: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$QlVWUzVnT3kxY3RGc0E2dg$ZLuUNCyIY/sRgkvoU2dUMfRwQ8x5dBvnWNaSlKnKkJ0";

/// A bcrypt hash of [`RELAY_BCRYPT_COST`] of a random password, discarded: verifying
/// against it does the work of checking a relay account's hash.
const RELAY_DECOY: &str = "$2b$10$h3r94G8WlWK9w2DbP6JJsOyHf/ApkVR2MHN1.9y4WISQVmvWkk1pS";

pub struct Argon2Hasher {
    argon2: Argon2<'static>,
    params: Params,
    /// The policy's argon2id decoy, then [`RELAY_DECOY`].
    decoys: [String; 2],
}

impl Argon2Hasher {
    /// The production policy.
    pub fn new() -> Self {
        let (m, t, p) = POLICY;
        match Params::new(m, t, p, None) {
            Ok(params) => Self::build(params, POLICY_DECOY.to_owned()),
            // POLICY is a valid constant: unreachable, but no panic on the request path.
            Err(_) => Self::build(Params::default(), POLICY_DECOY.to_owned()),
        }
    }

    /// Other parameters (tests that exercise the upgrade of weaker hashes). The decoy is
    /// computed here, once. Test-only: no function ships it.
    #[cfg(any(test, feature = "testing"))]
    pub fn with_params(m_cost: u32, t_cost: u32, p_cost: u32) -> Result<Self, PortError> {
        let params = Params::new(m_cost, t_cost, p_cost, None).map_err(PortError::other)?;
        let mut hasher = Self::build(params, String::new());
        let random = SaltString::generate(&mut OsRng);
        hasher.decoys[0] = hasher.hash(random.as_str())?;
        Ok(hasher)
    }

    fn build(params: Params, decoy: String) -> Self {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        Self { argon2, params, decoys: [decoy, RELAY_DECOY.to_owned()] }
    }
}

impl Default for Argon2Hasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Computes the raw argon2 output into `out`, in `memory` (what `argon2`'s own
/// `hash_password` does, minus the allocation of 19 MiB per call).
fn compute(
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &Salt<'_>,
    out: &mut [u8],
    memory: &mut HashMemory,
) -> argon2::password_hash::Result<()> {
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    argon2.hash_password_into_with_memory(password, salt, out, memory.blocks(params.block_count()))?;
    Ok(())
}

impl Argon2Hasher {
    fn phc(&self, password: &str, memory: &mut HashMemory) -> argon2::password_hash::Result<String> {
        let salt_string = SaltString::generate(&mut OsRng);
        let salt = salt_string.as_salt();
        let len = self.params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let output =
            Output::init_with(len, |out| compute(&self.argon2, &self.params, password.as_bytes(), &salt, out, memory))?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params)?,
            salt: Some(salt),
            hash: Some(output),
        };
        Ok(hash.to_string())
    }
}

impl PasswordHasher for Argon2Hasher {
    fn hash_in(&self, password: &str, memory: &mut HashMemory) -> Result<String, PortError> {
        self.phc(password, memory).map_err(PortError::other)
    }

    /// Recomputes with the stored hash's own algorithm, version and parameters, and
    /// compares in constant time (`Output`'s equality). A bcrypt hash (`$2a$`, `$2b$`,
    /// `$2y$`, imported from the relay) is checked by the `bcrypt` crate.
    fn verify_in(&self, password: &str, phc: &str, memory: &mut HashMemory) -> bool {
        if is_bcrypt(phc) {
            return bcrypt::verify(password, phc).unwrap_or(false);
        }
        let mut verified = || -> argon2::password_hash::Result<bool> {
            let parsed = PasswordHash::new(phc)?;
            let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
                return Ok(false);
            };
            let algorithm = Algorithm::try_from(parsed.algorithm)?;
            let version = parsed.version.map(Version::try_from).transpose()?.unwrap_or_default();
            let params = Params::try_from(&parsed)?;
            let argon2 = Argon2::new(algorithm, version, params.clone());
            let computed = Output::init_with(expected.len(), |out| {
                compute(&argon2, &params, password.as_bytes(), &salt, out, memory)
            })?;
            Ok(computed == expected)
        };
        verified().unwrap_or(false)
    }

    fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        let Ok(stored) = Params::try_from(&parsed) else {
            return true;
        };
        parsed.algorithm != Algorithm::Argon2id.ident()
            || parsed.version != Some(Version::V0x13.into())
            || stored.m_cost() < self.params.m_cost()
            || stored.t_cost() < self.params.t_cost()
            || stored.p_cost() < self.params.p_cost()
    }

    fn decoys(&self) -> &[String] {
        &self.decoys
    }
}

/// A bcrypt hash as the Node relay (bcryptjs) and most others write it.
fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|prefix| hash.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_at_least_the_policy_and_a_unique_salt() {
        let hasher = Argon2Hasher::new();
        let a = hasher.hash("Correct-Horse-1").unwrap();
        let b = hasher.hash("Correct-Horse-1").unwrap();
        assert_ne!(a, b, "each hash has its own salt");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert!(hasher.verify("Correct-Horse-1", &a));
        assert!(!hasher.verify("Correct-Horse-2", &a));
        assert!(!hasher.needs_rehash(&a));
    }

    #[test]
    fn weaker_or_foreign_hashes_need_a_rehash() {
        let policy = Argon2Hasher::new();
        let weak = Argon2Hasher::with_params(8, 1, 1).unwrap().hash("Pw-123456").unwrap();
        assert!(policy.needs_rehash(&weak));
        assert!(policy.verify("Pw-123456", &weak), "old hashes still verify");
        assert!(policy.needs_rehash("$2b$12$notargon"));
        let argon2i = argon2::PasswordHasher::hash_password(
            &Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(19_456, 2, 1, None).unwrap()),
            b"Pw-123456",
            &SaltString::generate(&mut OsRng),
        )
        .unwrap()
        .to_string();
        assert!(policy.needs_rehash(&argon2i));
    }

    #[test]
    fn relay_bcrypt_hashes_verify_and_need_a_rehash() {
        let policy = Argon2Hasher::new();
        let hashed = bcrypt::hash("Relay-Pass-1", 4).unwrap();
        for variant in ["$2a$", "$2b$", "$2y$"] {
            let stored = format!("{variant}{}", &hashed[4..]);
            assert!(policy.verify("Relay-Pass-1", &stored), "{variant}");
            assert!(!policy.verify("Relay-Pass-2", &stored), "{variant}");
            assert!(policy.needs_rehash(&stored), "{variant}");
        }
        assert!(!policy.verify("Relay-Pass-1", "$2b$10$truncated"));
    }

    #[test]
    fn the_decoys_cost_what_real_hashes_cost() {
        let hasher = Argon2Hasher::new();
        let [argon2_decoy, bcrypt_decoy] = hasher.decoys() else { panic!("two decoys: {:?}", hasher.decoys()) };
        let decoy = PasswordHash::new(argon2_decoy).unwrap();
        let real_hash = hasher.hash("Anything-1").unwrap();
        let real = PasswordHash::new(&real_hash).unwrap();
        assert_eq!(decoy.algorithm, real.algorithm);
        assert_eq!(decoy.version, real.version);
        assert_eq!(Params::try_from(&decoy).unwrap(), Params::try_from(&real).unwrap());
        assert_eq!(decoy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
        assert!(!hasher.needs_rehash(argon2_decoy));
        assert_eq!(Work::of(argon2_decoy), Work::of(&real_hash));
        // The bcrypt decoy is a well-formed hash of the relay's cost: bcrypt computes it
        // (a malformed one would be refused before any work).
        assert_eq!(Work::of(bcrypt_decoy), Some(Work::Bcrypt { cost: RELAY_BCRYPT_COST }));
        assert_eq!(bcrypt::verify("Anything-1", bcrypt_decoy).ok(), Some(false));
    }

    /// Argon2 as configured, recording the work of every verification.
    struct Recording(Argon2Hasher, std::sync::Mutex<Vec<Option<Work>>>);

    impl PasswordHasher for Recording {
        fn hash_in(&self, password: &str, memory: &mut HashMemory) -> Result<String, PortError> {
            self.0.hash_in(password, memory)
        }
        fn verify_in(&self, password: &str, phc: &str, memory: &mut HashMemory) -> bool {
            self.1.lock().unwrap().push(Work::of(phc));
            self.0.verify_in(password, phc, memory)
        }
        fn needs_rehash(&self, phc: &str) -> bool {
            self.0.needs_rehash(phc)
        }
        fn decoys(&self) -> &[String] {
            self.0.decoys()
        }
    }

    #[test]
    fn every_failed_check_does_the_work_of_every_decoy_whatever_it_checked() {
        let hasher = Recording(Argon2Hasher::new(), Default::default());
        let argon2 = hasher.hash("Right-Pass-1").unwrap();
        let relay = bcrypt::hash("Right-Pass-1", RELAY_BCRYPT_COST).unwrap();
        let work = |phc: Option<&str>, password: &str| {
            let matched = hasher.check_in(password, phc, &mut HashMemory::default());
            let mut done = std::mem::take(&mut *hasher.1.lock().unwrap());
            done.sort_by_key(|w| format!("{w:?}"));
            (matched, done)
        };
        let mut expected: Vec<_> = hasher.decoys().iter().map(|d| Work::of(d)).collect();
        expected.sort_by_key(|w| format!("{w:?}"));

        let unknown = work(None, "Wrong-Pass-1");
        let wrong_argon2 = work(Some(&argon2), "Wrong-Pass-1");
        let wrong_relay = work(Some(&relay), "Wrong-Pass-1");
        let malformed = work(Some("$argon2id$garbage"), "Wrong-Pass-1");
        assert_eq!(unknown, (false, expected.clone()));
        assert_eq!(wrong_argon2, (false, expected.clone()));
        assert_eq!(wrong_relay, (false, expected.clone()));
        // A malformed stored hash costs nothing itself: the decoys do the work.
        assert_eq!(malformed.1.iter().flatten().count(), expected.len());
        // A correct password does its own hash's work and nothing more.
        assert_eq!(work(Some(&argon2), "Right-Pass-1"), (true, vec![Work::of(&argon2)]));
        assert_eq!(work(Some(&relay), "Right-Pass-1"), (true, vec![Work::of(&relay)]));
    }

    #[test]
    fn hashes_made_in_reused_memory_verify_with_the_argon2_crate_and_back() {
        use argon2::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = Argon2Hasher::with_params(256, 2, 1).unwrap();
        let mut memory = HashMemory::default();
        let ours = hasher.hash_in("Shared-Memory-1", &mut memory).unwrap();
        let again = hasher.hash_in("Shared-Memory-1", &mut memory).unwrap();
        assert_ne!(ours, again);
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(256, 2, 1, None).unwrap());
        assert!(reference.verify_password(b"Shared-Memory-1", &PasswordHash::new(&ours).unwrap()).is_ok());
        let theirs =
            reference.hash_password(b"Shared-Memory-1", &SaltString::generate(&mut OsRng)).unwrap().to_string();
        assert!(hasher.verify_in("Shared-Memory-1", &theirs, &mut memory));
        assert!(!hasher.verify_in("Shared-Memory-2", &theirs, &mut memory));
        assert!(!hasher.verify_in("Shared-Memory-1", "$argon2id$v=19$m=256,t=2,p=1$garbage", &mut memory));
    }

    #[test]
    fn memory_is_reused_and_grown_only_when_needed() {
        let mut memory = HashMemory::default();
        let first = memory.blocks(8).as_ptr();
        assert_eq!(memory.blocks(4).len(), 4);
        assert_eq!(memory.blocks(8).as_ptr(), first);
        assert_eq!(memory.blocks(16).len(), 16);
    }
}
