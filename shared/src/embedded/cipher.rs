//! AES-256-GCM with the encryption context as associated data: like a KMS encryption
//! context, a ciphertext decrypts only under the account (and key) it was bound to.

use crate::domain::error::PortError;
use crate::domain::ports::{Cipher, EncryptionContext, PortResult};
use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use async_trait::async_trait;
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

pub struct LocalCipher {
    cipher: Aes256Gcm,
}

impl LocalCipher {
    pub fn new(key: &[u8; KEY_LEN]) -> Self {
        Self { cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)) }
    }

    /// Reads the key file, or creates it (readable by its owner only) on first run.
    pub fn open_or_create(path: &Path) -> PortResult<Self> {
        let failed = |e: std::io::Error| PortError::Other(format!("cipher key {}: {e}", path.display()));
        match std::fs::read(path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let key: &[u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                    PortError::Other(format!("cipher key {} is not {KEY_LEN} bytes long", path.display()))
                })?;
                Ok(Self::new(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = Zeroizing::new([0u8; KEY_LEN]);
                OsRng.fill_bytes(key.as_mut());
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options.open(path).map_err(failed)?;
                file.write_all(key.as_slice()).and_then(|()| file.sync_all()).map_err(failed)?;
                Ok(Self::new(&key))
            }
            Err(e) => Err(failed(e)),
        }
    }
}

/// The context, canonically serialised (its map is ordered).
fn associated_data(context: &EncryptionContext) -> PortResult<Vec<u8>> {
    serde_json::to_vec(&context.0).map_err(PortError::other)
}

#[async_trait]
impl Cipher for LocalCipher {
    async fn encrypt(&self, plaintext: &[u8], context: &EncryptionContext) -> PortResult<Vec<u8>> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(context)?;
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plaintext, aad: &aad })
            .map_err(|_| PortError::Other("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    async fn decrypt(&self, ciphertext: &[u8], context: &EncryptionContext) -> PortResult<Zeroizing<Vec<u8>>> {
        if ciphertext.len() < NONCE_LEN {
            return Err(PortError::Other("ciphertext too short".into()));
        }
        let (nonce, sealed) = ciphertext.split_at(NONCE_LEN);
        let aad = associated_data(context)?;
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| PortError::Other("decryption failed: wrong key or context".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ciphertext_opens_only_under_its_own_context() {
        let cipher = LocalCipher::new(&[7; KEY_LEN]);
        let context = EncryptionContext::foundry_password("user-1", "key-1");
        let sealed = cipher.encrypt(b"Foundry-Secret", &context).await.unwrap();
        assert!(!sealed.windows(14).any(|w| w == b"Foundry-Secret"));
        assert_eq!(cipher.decrypt(&sealed, &context).await.unwrap().as_slice(), b"Foundry-Secret");
        for other in [
            EncryptionContext::foundry_password("user-1", "key-2"),
            EncryptionContext::foundry_password("user-2", "key-1"),
            EncryptionContext::master_key("user-1"),
        ] {
            assert!(cipher.decrypt(&sealed, &other).await.is_err());
        }
        let another_key = LocalCipher::new(&[8; KEY_LEN]);
        assert!(another_key.decrypt(&sealed, &context).await.is_err());
    }

    #[tokio::test]
    async fn the_key_is_created_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cipher.key");
        let first = LocalCipher::open_or_create(&path).unwrap();
        let context = EncryptionContext::master_key("u");
        let sealed = first.encrypt(b"frm_key", &context).await.unwrap();
        let again = LocalCipher::open_or_create(&path).unwrap();
        assert_eq!(again.decrypt(&sealed, &context).await.unwrap().as_slice(), b"frm_key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
