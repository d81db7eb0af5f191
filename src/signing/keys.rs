//! Loading minisign keys: a secret key from a file or from key text in an
//! environment variable (CI secrets), optionally password-protected; a public
//! key from a `.pub` file or its one-line base64 form (`RW…`).
//!
//! The layouts read here are minisign's documented formats (base64 of
//! `"Ed" kdf_alg chk_alg salt opslimit memlimit keyid seed‖pk checksum` for a
//! secret key, `"Ed" keyid pk` for a public key); the raw Ed25519 bytes are
//! taken from them for signature-based SRI, which needs a plain Ed25519 key.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::SigningError;

/// Env var holding the path of the secret key file (same as `--sign-key`).
pub(crate) const ENV_SIGN_KEY_FILE: &str = "SDK_CDN_SIGN_KEY_FILE";
/// Env var holding the secret key text itself (for CI secret stores).
pub(crate) const ENV_SIGN_KEY: &str = "SDK_CDN_SIGN_KEY";
/// Env var holding the secret key's password.
pub(crate) const ENV_SIGN_KEY_PASSWORD: &str = "SDK_CDN_SIGN_KEY_PASSWORD";
/// Environment variable holding the password of `--sri-key` files.
pub(crate) const ENV_SRI_KEY_PASSWORD: &str = "SDK_CDN_SRI_KEY_PASSWORD";

const COMMENT_PREFIX: &str = "untrusted comment:";
const ALG_ED25519: &[u8; 2] = b"Ed";
const KDF_NONE: [u8; 2] = [0, 0];
/// Secret key layout: sig_alg 2, kdf_alg 2, chk_alg 2, salt 32, opslimit 8, memlimit 8, keyid 8, sk 64, chk 32.
const SK_LEN: usize = 158;
const SK_KDF: std::ops::Range<usize> = 2..4;
const SK_SEED: std::ops::Range<usize> = 62..94;
/// Public key layout: sig_alg 2, keyid 8, pk 32.
const PK_LEN: usize = 42;
const PK_RAW: std::ops::Range<usize> = 10..42;

/// Where a secret key comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A key file (`--sign-key`, `SDK_CDN_SIGN_KEY_FILE`).
    File(PathBuf),
    /// The key text from an environment variable (`SDK_CDN_SIGN_KEY`).
    Text {
        /// The variable's name, for messages.
        env: &'static str,
        /// Its value.
        text: String,
    },
}

impl fmt::Debug for KeySource {
    // Never print key text, even in debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin())
    }
}

impl KeySource {
    /// `flag` (the `--sign-key` value, which clap may have filled from
    /// `SDK_CDN_SIGN_KEY_FILE`), else `SDK_CDN_SIGN_KEY_FILE`, else the text in
    /// `SDK_CDN_SIGN_KEY`; `None` when no key was given at all.
    pub(crate) fn from_env_or(flag: Option<&Path>) -> Option<KeySource> {
        if let Some(path) = flag {
            return Some(KeySource::File(path.to_path_buf()));
        }
        let set = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if let Some(path) = set(ENV_SIGN_KEY_FILE) {
            return Some(KeySource::File(PathBuf::from(path)));
        }
        set(ENV_SIGN_KEY).map(|text| KeySource::Text { env: ENV_SIGN_KEY, text })
    }

    /// Where the key came from, for messages.
    pub(crate) fn origin(&self) -> String {
        match self {
            KeySource::File(path) => format!("the key file {}", path.display()),
            KeySource::Text { env, .. } => format!("the key in ${env}"),
        }
    }

    fn text(&self) -> Result<String, SigningError> {
        match self {
            KeySource::File(path) => {
                std::fs::read_to_string(path).map_err(|source| SigningError::KeyRead { path: path.clone(), source })
            }
            KeySource::Text { text, .. } => Ok(text.clone()),
        }
    }
}

/// A decrypted minisign secret key, ready to sign.
#[derive(Clone)]
pub struct SecretKey {
    pub(super) inner: minisign::SecretKey,
    pub(super) public: PublicKey,
    pub(super) seed: [u8; 32],
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey {{ key_id: {} }}", self.public.key_id())
    }
}

impl SecretKey {
    /// Loads and, if it is password-protected, decrypts the key. `password`
    /// is never prompted for: an encrypted key without one is an error.
    pub fn load(source: &KeySource, password: Option<&str>) -> Result<SecretKey, SigningError> {
        let origin = source.origin();
        let text = source.text()?;
        let not_key = |detail: &str| SigningError::NotASecretKey { origin: origin.clone(), detail: detail.into() };
        let b64 = key_line(&text).ok_or_else(|| not_key("no base64 key line"))?;
        let bytes = STANDARD.decode(b64).map_err(|_| not_key("the key line is not base64"))?;
        if bytes.len() != SK_LEN || &bytes[..2] != ALG_ED25519 {
            return Err(not_key(&format!("{} bytes, expected {SK_LEN} starting with \"Ed\"", bytes.len())));
        }
        let inner = if bytes[SK_KDF] == KDF_NONE {
            // Not through `from_unencrypted_box`: `minisign -G -W` (0.11) writes
            // an all-zero checksum, which that refuses as corrupt. The seed/public
            // key check below proves the key instead.
            minisign::SecretKey::from_bytes(&bytes).map_err(|e| not_key(&e.to_string()))?
        } else {
            let sk_box = minisign::SecretKeyBox::from_string(&format!("{COMMENT_PREFIX} sdk-cdn\n{b64}\n"))
                .map_err(|e| not_key(&e.to_string()))?;
            let password = password
                .ok_or_else(|| SigningError::PasswordNeeded { origin: origin.clone(), env: ENV_SIGN_KEY_PASSWORD })?;
            minisign::SecretKey::from_box(sk_box, Some(password.to_string())).map_err(|e| match e.kind() {
                minisign::ErrorKind::Verify => {
                    SigningError::WrongPassword { origin: origin.clone(), env: ENV_SIGN_KEY_PASSWORD }
                }
                _ => not_key(&e.to_string()),
            })?
        };
        let public = minisign::PublicKey::from_secret_key(&inner).map_err(|e| not_key(&e.to_string()))?;
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&inner.to_bytes()[SK_SEED]);
        let public = PublicKey::from_minisign(public);
        // The stored public half must be the one the seed derives: a damaged
        // key would otherwise sign with one key and name another.
        ring::signature::Ed25519KeyPair::from_seed_and_public_key(&seed, &public.ed25519())
            .map_err(|_| not_key("damaged: its public half does not match its seed"))?;
        Ok(SecretKey { inner, public, seed })
    }

    /// [`SecretKey::load`] from `--sign-key`/the environment, with the
    /// password from `SDK_CDN_SIGN_KEY_PASSWORD`.
    pub(crate) fn load_from_env(flag: Option<&Path>) -> Result<SecretKey, SigningError> {
        let source = KeySource::from_env_or(flag).ok_or(SigningError::NoKey)?;
        let password = std::env::var(ENV_SIGN_KEY_PASSWORD).ok().filter(|p| !p.is_empty());
        SecretKey::load(&source, password.as_deref())
    }

    /// [`SecretKey::load`] of an `--sri-key` file, with the password from
    /// `SDK_CDN_SRI_KEY_PASSWORD` (and errors that name that variable).
    pub(crate) fn load_sri_key(path: &Path) -> Result<SecretKey, SigningError> {
        let password = std::env::var(ENV_SRI_KEY_PASSWORD).ok().filter(|p| !p.is_empty());
        SecretKey::load(&KeySource::File(path.to_path_buf()), password.as_deref()).map_err(|e| match e {
            SigningError::PasswordNeeded { origin, .. } => {
                SigningError::PasswordNeeded { origin, env: ENV_SRI_KEY_PASSWORD }
            }
            SigningError::WrongPassword { origin, .. } => {
                SigningError::WrongPassword { origin, env: ENV_SRI_KEY_PASSWORD }
            }
            other => other,
        })
    }

    /// The matching public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }
}

/// A minisign public key.
#[derive(Clone)]
pub struct PublicKey {
    pub(super) inner: minisign::PublicKey,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_base64())
    }
}

impl PublicKey {
    pub(super) fn from_minisign(inner: minisign::PublicKey) -> Self {
        PublicKey { inner }
    }

    /// A command-line value: a `.pub` file if one exists at that path,
    /// otherwise the base64 key itself.
    pub(crate) fn from_arg(value: &str) -> Result<PublicKey, SigningError> {
        let path = Path::new(value);
        if path.is_file() { PublicKey::load(path) } else { PublicKey::parse(value, "--pubkey") }
    }

    /// Parses the base64 key (`RW…`) or the text of a `.pub` file; `origin`
    /// names where it came from in errors.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<PublicKey, SigningError> {
        let not_key = |detail: &str| SigningError::NotAPublicKey { origin: origin.into(), detail: detail.into() };
        let b64 = key_line(text).ok_or_else(|| not_key("no base64 key line"))?;
        let bytes = STANDARD.decode(b64).map_err(|_| not_key("not base64"))?;
        if bytes.len() != PK_LEN || &bytes[..2] != ALG_ED25519 {
            return Err(not_key(&format!("{} bytes, expected {PK_LEN} starting with \"Ed\"", bytes.len())));
        }
        let inner = minisign::PublicKey::from_base64(b64).map_err(|e| not_key(&e.to_string()))?;
        Ok(PublicKey { inner })
    }

    /// Reads a `.pub` file (from `sdk-cdn keygen` or `minisign -G`).
    pub fn load(path: &Path) -> Result<PublicKey, SigningError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SigningError::KeyRead { path: path.to_path_buf(), source })?;
        PublicKey::parse(&text, &format!("the public key file {}", path.display()))
    }

    /// The one-line form customers paste: `minisign -P <this>`.
    pub fn to_base64(&self) -> String {
        self.inner.to_base64()
    }

    /// The key id as minisign prints it (16 upper-case hex digits).
    pub(crate) fn key_id(&self) -> String {
        key_id_hex(self.inner.keynum())
    }

    /// The raw 32-byte Ed25519 public key.
    pub fn ed25519(&self) -> [u8; 32] {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&self.inner.to_bytes()[PK_RAW]);
        raw
    }

    /// A raw Ed25519 key for signature-based SRI from a command-line value:
    /// the `ed25519-<base64>` token a page names, a `.pub` file, or `RW…`.
    pub(crate) fn sri_from_arg(value: &str) -> Result<[u8; 32], SigningError> {
        if let Some(b64) = value.strip_prefix("ed25519-") {
            // Forgiving, as browsers are: padded or not.
            let raw = STANDARD.decode(b64).or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64));
            return raw.ok().and_then(|raw| raw.try_into().ok()).ok_or_else(|| SigningError::NotAPublicKey {
                origin: "--sri-pubkey".into(),
                detail: "ed25519- must be followed by the base64 of a 32-byte key, as in integrity=\"ed25519-…\""
                    .into(),
            });
        }
        Ok(PublicKey::from_arg(value)?.ed25519())
    }

    /// The token for signature-based SRI: `ed25519-<base64 raw key>`.
    pub fn integrity_token(&self) -> String {
        format!("ed25519-{}", STANDARD.encode(self.ed25519()))
    }

    /// The `.pub` file text.
    pub(crate) fn to_file_text(&self) -> String {
        format!("{COMMENT_PREFIX} minisign public key {}\n{}\n", self.key_id(), self.to_base64())
    }
}

/// minisign prints a key id as the little-endian u64 in hex.
pub(super) fn key_id_hex(keynum: &[u8]) -> String {
    keynum.iter().rev().map(|b| format!("{b:02X}")).collect()
}

/// The base64 line of a key: the first non-empty line that is not a comment.
fn key_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with(COMMENT_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_line_skips_the_comment_and_blank_lines() {
        assert_eq!(key_line("untrusted comment: x\n\nRWabc\n"), Some("RWabc"));
        assert_eq!(key_line("  RWabc  "), Some("RWabc"));
        assert_eq!(key_line("untrusted comment: only\n"), None);
    }

    #[test]
    fn key_id_is_printed_like_minisign() {
        assert_eq!(key_id_hex(&[0x01, 0x02, 0, 0, 0, 0, 0, 0xAB]), "AB00000000000201");
    }

    #[test]
    fn a_public_key_is_not_a_secret_key() {
        let source = KeySource::Text {
            env: ENV_SIGN_KEY,
            text: "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3".into(),
        };
        let err = SecretKey::load(&source, None).unwrap_err();
        assert!(matches!(err, SigningError::NotASecretKey { .. }), "{err}");
        assert!(err.to_string().contains("$SDK_CDN_SIGN_KEY"), "{err}");
    }

    #[test]
    fn an_unencrypted_key_without_checksum_loads_and_a_damaged_one_does_not() {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let mut bytes = pair.sk.to_bytes();
        bytes[SK_LEN - 32..].fill(0); // as `minisign -G -W` writes it
        let text = |b: &[u8]| KeySource::Text { env: ENV_SIGN_KEY, text: STANDARD.encode(b) };
        let key = SecretKey::load(&text(&bytes), None).unwrap();
        assert_eq!(key.public_key().to_base64(), pair.pk.to_base64());
        bytes[SK_SEED.start] ^= 1;
        let err = SecretKey::load(&text(&bytes), None).unwrap_err();
        assert!(err.to_string().contains("damaged"), "{err}");
    }

    #[test]
    fn garbage_is_not_a_public_key() {
        let err = PublicKey::parse("hello", "--pubkey").unwrap_err();
        assert!(matches!(err, SigningError::NotAPublicKey { .. }), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}
