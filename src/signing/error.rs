//! Everything that can go wrong with keys and signatures, each naming the
//! thing at fault and the fix, with its exit code decided here.

use std::path::PathBuf;

/// Why a key could not be used or a signature was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// A key file could not be read.
    #[error(
        "cannot read the key file {path}: {source}; check the path given to --sign-key, --sri-key, --pubkey-file or --sri-pubkey"
    )]
    KeyRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not a minisign secret key.
    #[error(
        "{origin} is not a minisign secret key ({detail}); use a key from `sdk-cdn keygen` or `minisign -G` \
         (the .key file, not the .pub)"
    )]
    NotASecretKey {
        /// Where the key came from (a file, or an environment variable).
        origin: String,
        /// The parser's complaint.
        detail: String,
    },
    /// The text is not a minisign public key.
    #[error(
        "{origin} is not a minisign public key ({detail}); give the `RW…` line of a .pub file from \
         `sdk-cdn keygen` or `minisign -G`"
    )]
    NotAPublicKey {
        /// Where the key came from.
        origin: String,
        /// The parser's complaint.
        detail: String,
    },
    /// The secret key is encrypted and no password was given.
    #[error("{origin} is password-protected; set {env} to its password")]
    PasswordNeeded {
        /// Where the key came from.
        origin: String,
        /// The variable that holds its password.
        env: &'static str,
    },
    /// The password does not decrypt the key.
    #[error("wrong password for {origin}; check {env}")]
    WrongPassword {
        /// Where the key came from.
        origin: String,
        /// The variable that held the password.
        env: &'static str,
    },
    /// No key was given where one is needed.
    #[error("no signing key: pass --sign-key FILE, or set SDK_CDN_SIGN_KEY_FILE or SDK_CDN_SIGN_KEY")]
    NoKey,
    /// The signature was made by another key.
    #[error(
        "the signature of {what} was made by key {signature_key_id}, not by the trusted key {public_key_id}; \
         check that --pubkey is the publisher's current key (docs/SIGNING.md, key rotation)"
    )]
    KeyIdMismatch {
        /// What was being verified.
        what: String,
        /// The key id named in the signature.
        signature_key_id: String,
        /// The key id of the trusted public key.
        public_key_id: String,
    },
    /// The signature is malformed or its Ed25519 check fails.
    #[error(
        "the signature of {what} does not verify: {detail}; do not use these bytes (they or the signature were changed)"
    )]
    BadSignature {
        /// What was being verified.
        what: String,
        /// Why.
        detail: String,
    },
    /// The signature is valid, but its trusted comment names other content.
    #[error(
        "the signature of {what} is genuine but signs something else: {detail}; it is stale or swapped, do not use these bytes"
    )]
    WrongContent {
        /// What was being verified.
        what: String,
        /// Which field differs, expected and found.
        detail: String,
    },
    /// Signing failed (randomness or the key itself).
    #[error("cannot sign {what}: {detail}")]
    Sign {
        /// What was being signed.
        what: String,
        /// Why.
        detail: String,
    },
    /// `keygen` would overwrite a file.
    #[error("{path} already exists; keygen never overwrites a key: choose another --dir or --name, or move it away")]
    KeyExists {
        /// The file.
        path: PathBuf,
    },
    /// `keygen` was not told whether to protect the key.
    #[error(
        "keygen needs a password for the secret key: set SDK_CDN_SIGN_KEY_PASSWORD, or pass --no-password \
         for an unencrypted key (CI secrets)"
    )]
    PasswordChoice,
    /// `keygen` could not write a file.
    #[error("cannot write {path}: {source}")]
    KeyWrite {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl SigningError {
    /// The process exit code: 2 for bad keys and usage, 3 for a signature that
    /// does not prove what is published (a conflict with it), 1 for I/O.
    pub fn exit_code(&self) -> u8 {
        match self {
            SigningError::KeyIdMismatch { .. }
            | SigningError::BadSignature { .. }
            | SigningError::WrongContent { .. } => 3,
            SigningError::Sign { .. } | SigningError::KeyWrite { .. } => 1,
            _ => 2,
        }
    }
}
