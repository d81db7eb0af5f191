//! The trusted comment inside every minisign signature we write: one line,
//! signed together with the signature, naming what was signed.
//!
//! ```text
//! sdk-cdn/1 kind=index version=1.4.0 sha384=sha384-… time=1764547200
//! ```
//!
//! An Ed25519 signature only says "the key holder signed these bytes once".
//! The comment adds *which* bytes, as what: a manifest signature placed beside
//! the index (`kind`), last month's index signature replayed beside today's
//! index (`sha384`), one version's manifest signature beside another's
//! (`version`) are all refused, and `time` lets a reader tell how old it is.
//! `minisign -Vm` prints the line, so a person can read it too.

use std::fmt;
use std::str::FromStr;

use crate::integrity::Integrity;

/// The format tag; bump it if the fields change.
const TAG: &str = "sdk-cdn/1";
/// What `version=` says for an index with no promoted version.
pub(crate) const NO_VERSION: &str = "none";

/// What a signature is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignedKind {
    /// The SRI index, `api/sdk/sri`.
    Index,
    /// A sealed manifest, `manifests/<v>.json`.
    Manifest,
}

impl SignedKind {
    fn as_str(self) -> &'static str {
        match self {
            SignedKind::Index => "index",
            SignedKind::Manifest => "manifest",
        }
    }
}

/// The parsed trusted comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedComment {
    /// What was signed.
    pub(crate) kind: SignedKind,
    /// The version it is about (the index's `version`, or [`NO_VERSION`]).
    pub version: String,
    /// SHA-384 of the signed bytes.
    pub(crate) sha384: Integrity,
    /// When it was signed (Unix seconds).
    pub(crate) time: u64,
}

impl fmt::Display for TrustedComment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{TAG} kind={} version={} sha384={} time={}",
            self.kind.as_str(),
            self.version,
            self.sha384,
            self.time
        )
    }
}

impl FromStr for TrustedComment {
    type Err = String;

    /// Strict: the tag, then exactly these four fields in this order.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split(' ');
        if words.next() != Some(TAG) {
            return Err(format!("the trusted comment {s:?} is not an sdk-cdn signature comment ({TAG} …)"));
        }
        let mut field = |name: &str| {
            words
                .next()
                .and_then(|w| w.strip_prefix(name)?.strip_prefix('='))
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("the trusted comment {s:?} lacks {name}=…"))
        };
        let kind = match field("kind")? {
            "index" => SignedKind::Index,
            "manifest" => SignedKind::Manifest,
            other => return Err(format!("unknown kind={other} in the trusted comment")),
        };
        let version = field("version")?.to_string();
        let sha384 = field("sha384")?.parse::<Integrity>().map_err(|e| e.to_string())?;
        let time = field("time")?.parse::<u64>().map_err(|e| format!("time=: {e}"))?;
        if words.next().is_some() {
            return Err(format!("the trusted comment {s:?} has extra fields"));
        }
        Ok(TrustedComment { kind, version, sha384, time })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TrustedComment {
        TrustedComment {
            kind: SignedKind::Manifest,
            version: "1.4.0".into(),
            sha384: Integrity::of_bytes(b"x"),
            time: 1_764_547_200,
        }
    }

    #[test]
    fn the_comment_round_trips() {
        let text = sample().to_string();
        assert!(text.starts_with("sdk-cdn/1 kind=manifest version=1.4.0 sha384=sha384-"), "{text}");
        assert_eq!(text.parse::<TrustedComment>(), Ok(sample()));
    }

    #[test]
    fn foreign_or_incomplete_comments_are_refused() {
        let good = sample().to_string();
        for bad in [
            "timestamp:1764547200\tfile:sri".to_string(),
            good.replace("kind=manifest", "kind=other"),
            good.replace(" time=1764547200", ""),
            good.replace("version=1.4.0", "version="),
            format!("{good} extra=1"),
        ] {
            assert!(bad.parse::<TrustedComment>().is_err(), "{bad}");
        }
    }
}
