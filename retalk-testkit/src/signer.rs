//! Signing raw requests with an Olm account.

use retalk_proto::RequestSigner;
use vodozemac::olm::Account;

/// Signs requests with an Olm account's Ed25519 key and publishes its
/// Curve25519 identity key, as the client library does. The protocol crate
/// knows no Olm, so this adapter lives with the tests that need it.
pub struct OlmSigner<'a>(pub &'a Account);

impl RequestSigner for OlmSigner<'_> {
    fn identity_key(&self) -> String {
        self.0.curve25519_key().to_base64()
    }
    fn signing_key(&self) -> String {
        self.0.ed25519_key().to_base64()
    }
    fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}
