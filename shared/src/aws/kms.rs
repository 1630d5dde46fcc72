//! KMS as the cipher: every ciphertext is bound to its encryption context.

use crate::aws::failure::sdk_error;
use crate::domain::error::PortError;
use crate::domain::ports::{Cipher, EncryptionContext, PortResult};
use async_trait::async_trait;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::Client;
use std::collections::HashMap;
use zeroize::Zeroizing;

pub struct KmsCipher {
    client: Client,
    key_id: String,
}

impl KmsCipher {
    pub fn new(client: Client, key_id: String) -> Self {
        Self { client, key_id }
    }
}

fn context(ctx: &EncryptionContext) -> HashMap<String, String> {
    ctx.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

#[async_trait]
impl Cipher for KmsCipher {
    async fn encrypt(&self, plaintext: &[u8], ctx: &EncryptionContext) -> PortResult<Vec<u8>> {
        let out = self
            .client
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(plaintext))
            .set_encryption_context(Some(context(ctx)))
            .send()
            .await
            .map_err(sdk_error)?;
        out.ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| PortError::Other("KMS Encrypt returned no ciphertext".into()))
    }

    async fn decrypt(&self, ciphertext: &[u8], ctx: &EncryptionContext) -> PortResult<Zeroizing<Vec<u8>>> {
        let out = self
            .client
            .decrypt()
            .key_id(&self.key_id)
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(Some(context(ctx)))
            .send()
            .await
            .map_err(sdk_error)?;
        out.plaintext
            .map(|p| Zeroizing::new(p.into_inner()))
            .ok_or_else(|| PortError::Other("KMS Decrypt returned no plaintext".into()))
    }
}
