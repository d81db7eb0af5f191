//! Header sidecars: the `Content-Type`, `Cache-Control`, SRI and signature headers of each
//! object, kept in `.sdk-cdn/meta/` (named by a hash of the key, see
//! [`super::names`]), and the rule that decides when one may be believed.
//!
//! A sidecar is written before its data file is placed, so a crash between
//! the two can leave a sidecar for bytes that never arrived beside the old
//! data. It is therefore bound to the *content* it describes (size, content
//! etag and SRI), not to a file: a sidecar is believed only for the bytes
//! it names. The inode it was written for is a fast path: when the data
//! file is still that inode, the bytes are the ones it was written for
//! (objects are never modified in place) and nothing is read. After `cp -a`,
//! `rsync -a` or `tar`, every inode is new: the data is hashed once,
//! compared with the sidecar, and the sidecar is rebound to the new inode
//! under the key's lock, so the next read is fast again (on a read-only
//! copy, the process remembers the binding instead).

use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::etag::etag_of;
use super::names;
use super::write::{Staged, in_parent};
use crate::integrity::Integrity;
use crate::signing::SignedHeaders;
use crate::store::{Headers, Key, StoreError};

/// The sidecar kept for each object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Sidecar {
    /// The key it belongs to (absent in sidecars of earlier releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    content_type: String,
    cache_control: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signed: Option<SignedHeaders>,
    pub(super) etag: String,
    size: u64,
    ino: u64,
    /// The filesystem of `ino` (absent in sidecars of earlier releases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dev: Option<u64>,
}

impl Sidecar {
    /// The sidecar for `headers` over the staged bytes.
    pub(super) fn new(key: &Key, headers: &Headers, staged: &Staged) -> Self {
        Sidecar {
            key: Some(key.to_string()),
            content_type: headers.content_type.clone(),
            cache_control: headers.cache_control.clone(),
            sri: headers.sri.clone(),
            signed: headers.signed.clone(),
            etag: staged.etag.clone(),
            size: staged.size,
            ino: staged.ino,
            dev: Some(staged.dev),
        }
    }

    /// Whether the data file `data` is the very inode this was written for.
    pub(super) fn names_inode(&self, data: &fs::Metadata) -> bool {
        self.size == data.len() && self.ino == data.ino() && self.dev.is_none_or(|d| d == data.dev())
    }

    /// Whether this describes bytes of `size` with `integrity`.
    pub(super) fn describes(&self, size: u64, integrity: &Integrity) -> bool {
        self.size == size
            && self.etag == etag_of(integrity)
            && self.sri.as_ref().is_none_or(|sri| *sri == integrity.to_string())
    }

    /// The same sidecar bound to the inode of `data`.
    pub(super) fn rebound(&self, key: &Key, data: &fs::Metadata) -> Self {
        Sidecar { key: Some(key.to_string()), ino: data.ino(), dev: Some(data.dev()), ..self.clone() }
    }

    /// Whether `other` is this sidecar (same content, same binding).
    pub(super) fn same(&self, other: &Sidecar) -> bool {
        (self.etag.as_str(), self.size, self.ino, self.dev) == (other.etag.as_str(), other.size, other.ino, other.dev)
    }

    /// The stored headers.
    pub(super) fn headers(&self) -> Headers {
        Headers {
            content_type: self.content_type.clone(),
            cache_control: self.cache_control.clone(),
            sri: self.sri.clone(),
            signed: self.signed.clone(),
        }
    }
}

/// The sidecar of `key`, if one can be read (a missing or unreadable one is
/// no sidecar: the object then has no headers, which never lies).
pub(super) fn read(root: &Path, key: &Key) -> Option<Sidecar> {
    let parse = |path: &Path| {
        // Sidecars are a few hundred bytes: no `stat` for a size hint.
        let mut json = Vec::with_capacity(1024);
        File::open(path).ok()?.read_to_end(&mut json).ok()?;
        serde_json::from_slice::<Sidecar>(&json).ok()
    };
    let found = parse(&names::sidecar(root, key)).or_else(|| parse(&names::legacy_sidecar(root, key)))?;
    found.key.as_deref().is_none_or(|k| k == key.as_str()).then_some(found)
}

/// Writes the sidecar of `key`: in place when nothing may read it meanwhile
/// (`replace` false), else through a temp file renamed over it.
pub(super) fn write(root: &Path, key: &Key, sidecar: &Sidecar, replace: bool) -> Result<(), StoreError> {
    let path = names::sidecar(root, key);
    let json = serde_json::to_vec(sidecar).map_err(|e| StoreError::io("encode", &path, io::Error::other(e)))?;
    if !replace {
        return in_parent(&path, || fs::write(&path, &json)).map_err(|e| StoreError::io("write", &path, e));
    }
    let tmp = names::tmp(root);
    let result = in_parent(&tmp, || fs::write(&tmp, &json))
        .map_err(|e| StoreError::io("write", &tmp, e))
        .and_then(|()| in_parent(&path, || fs::rename(&tmp, &path)).map_err(|e| StoreError::io("rename", &path, e)));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Removes the sidecar of `key` (and one an earlier release may have left).
pub(super) fn remove(root: &Path, key: &Key) -> Result<(), StoreError> {
    let path = names::sidecar(root, key);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if super::is_absent(&e) => {}
        Err(e) => return Err(StoreError::io("delete", &path, e)),
    }
    // Best effort: a key too long for the old layout never had one there.
    let _ = fs::remove_file(names::legacy_sidecar(root, key));
    Ok(())
}
