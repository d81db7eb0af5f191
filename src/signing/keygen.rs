//! `sdk-cdn keygen`: a new minisign key pair, written so that it can never
//! replace a key that already signs releases (create-only, secret at 0600).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::keys::ENV_SIGN_KEY_PASSWORD;
use super::{KeySource, SecretKey, SigningError};
use crate::commands::Output;

/// File name endings of the pair.
const SECRET_EXT: &str = "key";
const PUBLIC_EXT: &str = "pub";
/// The secret key file's mode: owner read/write only.
const SECRET_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;

/// `keygen` arguments.
#[derive(Debug, Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the pair.
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,

    /// Base name: writes NAME.key (secret) and NAME.pub (public).
    #[arg(long, default_value = "sdk-cdn", value_name = "NAME")]
    pub name: String,

    /// Write the secret key unencrypted (for a CI secret store); otherwise
    /// SDK_CDN_SIGN_KEY_PASSWORD must hold the password.
    #[arg(long)]
    pub no_password: bool,
}

/// Generates and writes the pair; prints the public key and what to do with it.
pub(crate) fn run_keygen(args: &KeygenArgs) -> Result<Output, SigningError> {
    let password = std::env::var(ENV_SIGN_KEY_PASSWORD).ok().filter(|p| !p.is_empty());
    let (secret_path, public_path) =
        (args.dir.join(format!("{}.{SECRET_EXT}", args.name)), args.dir.join(format!("{}.{PUBLIC_EXT}", args.name)));
    for path in [&secret_path, &public_path] {
        if path.exists() {
            return Err(SigningError::KeyExists { path: path.clone() });
        }
    }
    let generate_error = |e: minisign::PError| SigningError::Sign { what: "a new key".into(), detail: e.to_string() };
    let pair = match (&password, args.no_password) {
        (_, true) => minisign::KeyPair::generate_unencrypted_keypair().map_err(generate_error)?,
        (Some(password), false) => {
            minisign::KeyPair::generate_encrypted_keypair(Some(password.clone())).map_err(generate_error)?
        }
        (None, false) => return Err(SigningError::PasswordChoice),
    };
    let secret_text = pair.sk.to_box(Some("sdk-cdn secret key")).map_err(generate_error)?.into_string();
    // Read back what is about to be written: the file is proven usable before it exists.
    let key = SecretKey::load(
        &KeySource::Text { env: ENV_SIGN_KEY_PASSWORD, text: secret_text.clone() },
        if args.no_password { None } else { password.as_deref() },
    )?;
    let public = key.public_key();
    // A new directory for a secret key is the owner's alone (mode 0700); an existing one is left as it is.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.dir)
        .map_err(|source| SigningError::KeyWrite { path: args.dir.clone(), source })?;
    write_new(&secret_path, secret_text.as_bytes(), SECRET_MODE)?;
    write_new(&public_path, public.to_file_text().as_bytes(), PUBLIC_MODE)?;
    let protection = if args.no_password { "unencrypted: keep it in a secret store" } else { "password-protected" };
    let text = format!(
        "wrote {secret} (secret, mode 0600, {protection}) and {public_file}\n\
         key id:     {id}\n\
         public key: {pubkey}\n\n\
         Publish the public key where customers already trust you (the install guide, README),\n\
         never only on the API it protects. Customers then check what they fetch with:\n  \
         minisign -Vm sri -P {pubkey}\n  \
         sdk-cdn pin index.html --index https://cdn.example.com/api/sdk/sri --pubkey {pubkey}\n\
         Sign releases with --sign-key {secret} (or SDK_CDN_SIGN_KEY_FILE).\n\
         Or sign every file for signature-based SRI with --sri-key {secret} (a separate key from \
         --sign-key's, docs/SIGNING.md); pages then pin latest/ as integrity=\"{token}\".\n",
        secret = secret_path.display(),
        public_file = public_path.display(),
        id = public.key_id(),
        pubkey = public.to_base64(),
        token = public.integrity_token(),
    );
    let json = json!({
        "secret_key_file": secret_path, "public_key_file": public_path, "key_id": public.key_id(),
        "public_key": public.to_base64(), "encrypted": !args.no_password, "integrity": public.integrity_token(),
    });
    Ok(Output::data(text, json))
}

/// Writes `bytes` to a new file at `path` with `mode`, all or nothing: a temp
/// file in the same directory, then a hard link, which the kernel refuses if
/// `path` was taken meanwhile.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SigningError> {
    let write_error = |source| SigningError::KeyWrite { path: path.to_path_buf(), source };
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(SigningError::KeyExists { path: path.into() }),
        other => other.map_err(write_error),
    }
}
