//! Release versions: strict SemVer 2.0 without build metadata.
//!
//! Build metadata (`+sha.1`) is refused because SemVer ignores it when
//! comparing, so `1.0.0+a` and `1.0.0+b` would be different paths for "the
//! same" version. Channel names are never versions.

use semver::Version;

/// Why a string is not a publishable version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input:?} is not a valid version: {reason}")]
pub struct VersionError {
    /// What was given.
    pub(crate) input: String,
    /// What is wrong, with a hint.
    pub(crate) reason: String,
}

/// Parses a version strictly (`1.2.3`, `1.2.3-rc.1`).
pub fn parse(input: &str) -> Result<Version, VersionError> {
    let fail = |reason: String| VersionError { input: input.to_string(), reason };
    if input == crate::layout::LATEST {
        return Err(fail("\"latest\" is a channel, not a version; give a version such as 1.2.0".into()));
    }
    if let Some(rest) = input.strip_prefix(['v', 'V'])
        && Version::parse(rest).is_ok()
    {
        return Err(fail(format!("drop the leading 'v': use {rest}")));
    }
    let version = Version::parse(input)
        .map_err(|e| fail(format!("{e}; expected strict SemVer 2.0 such as 1.2.0 or 1.2.0-rc.1")))?;
    if !version.build.is_empty() {
        return Err(fail(format!(
            "build metadata (+{}) is not allowed: SemVer ignores it when ordering, so it cannot name a distinct release",
            version.build
        )));
    }
    Ok(version)
}

/// Whether `version` is a prerelease (`1.0.0-rc.1`).
pub(crate) fn is_prerelease(version: &Version) -> bool {
    !version.pre.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_versions_parse() {
        assert_eq!(parse("0.8.0").unwrap(), Version::new(0, 8, 0));
        assert!(is_prerelease(&parse("1.0.0-rc.1").unwrap()));
    }

    #[test]
    fn leading_v_is_refused_with_the_fix() {
        let err = parse("v1.2.0").unwrap_err();
        assert!(err.reason.contains("use 1.2.0"), "{err}");
    }

    #[test]
    fn non_versions_are_refused() {
        for bad in ["latest", "", "1.2", "01.2.3", "1.2.3+build.5", "1.2.3 ", " 1.2.3", "1.2.3/x", "1.2.3-"] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
