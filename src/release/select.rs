//! Which paths of a build directory are published: the rules of
//! `--exclude`, `--include` and `--include-hidden`, in one place.
//!
//! A published file sits at an immutable public URL forever, so anything a
//! build directory holds by accident must not slip through: hidden paths (a
//! component starting with `.`: `.env`, `.git/`, `.DS_Store`) are refused
//! unless asked for, and the local manifests directory (the tool's own
//! output) is never published. Precedence, for each path, first rule wins:
//!
//! 1. inside the local `--manifests-dir`: left out (no flag brings it back);
//! 2. matched by an `--include` pattern (or inside a directory that is):
//!    published, even if hidden or excluded;
//! 3. matched by an `--exclude` pattern (or inside a directory that is): left
//!    out, hidden or not (so `--exclude .DS_Store` is all a stray file needs);
//! 4. hidden: published with `--include-hidden`, otherwise the publish is
//!    refused (exit 2) naming the hidden paths;
//! 5. everything else: published.
//!
//! Patterns are gitignore lines (the `ignore` crate's matcher): `*.map`
//! matches at any depth, `/x` only at the top, `dir/` only directories.

use std::path::Path;

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::Serialize;

/// The filter flags of `publish`, as given.
#[derive(Debug, Clone, Default)]
pub(crate) struct FilterOptions {
    /// Publish hidden paths too.
    pub include_hidden: bool,
    /// Gitignore patterns of paths to leave out.
    pub exclude: Vec<String>,
    /// Gitignore patterns of paths to publish even if hidden or excluded.
    pub include: Vec<String>,
}

/// Why a path of the build directory is not published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub(crate) enum LeftOut {
    /// Matched an `--exclude` pattern.
    Excluded {
        /// The pattern, as given.
        pattern: String,
    },
    /// The local `--manifests-dir`, where publish writes its own outputs.
    ManifestsDir,
    /// Hidden, and neither `--include-hidden` nor an `--include` pattern asks
    /// for it: the publish is refused.
    Hidden,
}

impl std::fmt::Display for LeftOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LeftOut::Excluded { pattern } => write!(f, "excluded by --exclude {pattern}"),
            LeftOut::ManifestsDir => f.write_str("the local --manifests-dir: this tool's output"),
            LeftOut::Hidden => f.write_str("hidden (refused without --include-hidden)"),
        }
    }
}

/// The compiled filter.
#[derive(Debug)]
pub(crate) struct Filter {
    include_hidden: bool,
    exclude: Gitignore,
    include: Gitignore,
}

/// What happens to one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Publish it (a directory: walk into it).
    Publish,
    /// Leave it out (a directory: with everything in it, unless
    /// [`Filter::may_readmit`] says an `--include` could bring part of it back).
    LeaveOut(LeftOut),
}

impl Filter {
    /// Compiles the patterns; an invalid one is named in the error.
    pub(crate) fn new(options: &FilterOptions) -> Result<Filter, String> {
        Ok(Filter {
            include_hidden: options.include_hidden,
            exclude: compile(&options.exclude)?,
            include: compile(&options.include)?,
        })
    }

    /// The verdict on `rel` (relative to the build directory, `/`-separated),
    /// before the manifests directory, which the walk checks itself.
    pub(crate) fn verdict(&self, rel: &Path, is_dir: bool) -> Verdict {
        if self.include.matched_path_or_any_parents(rel, is_dir).is_ignore() {
            return Verdict::Publish;
        }
        if let Match::Ignore(glob) = self.exclude.matched_path_or_any_parents(rel, is_dir) {
            return Verdict::LeaveOut(LeftOut::Excluded { pattern: glob.original().to_string() });
        }
        if !self.include_hidden && is_hidden(rel) {
            return Verdict::LeaveOut(LeftOut::Hidden);
        }
        Verdict::Publish
    }

    /// Whether an `--include` pattern might bring back something inside a
    /// directory that is left out (then the walk must look inside it).
    pub(crate) fn may_readmit(&self) -> bool {
        !self.include.is_empty()
    }
}

/// A path with a component starting with `.`.
pub(crate) fn is_hidden(rel: &Path) -> bool {
    rel.components().any(|c| c.as_os_str().as_encoded_bytes().starts_with(b"."))
}

/// Checks one `--exclude`/`--include` pattern (for the command line parser).
pub(crate) fn check_pattern(pattern: &str) -> Result<String, String> {
    let matcher = compile(std::slice::from_ref(&pattern.to_string()))?;
    if matcher.num_ignores() == 0 {
        return Err(format!(
            "{pattern:?} matches nothing (empty, a '#' comment or a '!' negation); give a gitignore pattern such \
             as '*.map' or 'docs/' (write \\# for a name starting with #)"
        ));
    }
    Ok(pattern.to_string())
}

fn compile(patterns: &[String]) -> Result<Gitignore, String> {
    // Root "." strips nothing: the walk passes paths relative to the build.
    let mut builder = GitignoreBuilder::new(".");
    for pattern in patterns {
        builder.add_line(None, pattern).map_err(|e| format!("invalid pattern {pattern:?}: {e}"))?;
    }
    builder.build().map_err(|e| format!("invalid patterns: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include_hidden: bool, exclude: &[&str], include: &[&str]) -> Filter {
        let strings = |v: &[&str]| v.iter().map(ToString::to_string).collect();
        Filter::new(&FilterOptions { include_hidden, exclude: strings(exclude), include: strings(include) }).unwrap()
    }

    fn verdict(f: &Filter, path: &str) -> Verdict {
        f.verdict(Path::new(path), false)
    }

    #[test]
    fn hidden_paths_are_left_out_unless_asked_for() {
        let f = filter(false, &[], &[]);
        for hidden in [".env", ".git/config", "sub/.DS_Store", "a/.well-known/x.json"] {
            assert_eq!(verdict(&f, hidden), Verdict::LeaveOut(LeftOut::Hidden), "{hidden}");
        }
        for visible in ["a.js", "sub/b.css", "a.b/c.d", "x./y"] {
            assert_eq!(verdict(&f, visible), Verdict::Publish, "{visible}");
        }
        assert_eq!(verdict(&filter(true, &[], &[]), ".env"), Verdict::Publish);
    }

    #[test]
    fn exclude_patterns_are_gitignore_lines() {
        let f = filter(false, &["*.map", "/docs", "tmp/"], &[]);
        let excluded = |p: &str| matches!(verdict(&f, p), Verdict::LeaveOut(LeftOut::Excluded { .. }));
        assert!(excluded("a.js.map") && excluded("deep/er/a.js.map"), "unanchored: any depth");
        assert!(excluded("docs/x.html") && !excluded("sub/docs/x.html"), "a leading / anchors");
        assert!(excluded("tmp/x") && excluded("a/tmp/x"), "a trailing / matches directories");
        assert!(!excluded("a/tmp"), "a file named like the directory pattern is not a directory");
        assert_eq!(
            verdict(&f, "a.map"),
            Verdict::LeaveOut(LeftOut::Excluded { pattern: "*.map".into() }),
            "the reason names the pattern"
        );
    }

    #[test]
    fn an_excluded_hidden_file_is_left_out_not_refused() {
        let f = filter(false, &[".DS_Store"], &[]);
        assert_eq!(verdict(&f, "sub/.DS_Store"), Verdict::LeaveOut(LeftOut::Excluded { pattern: ".DS_Store".into() }));
        assert_eq!(verdict(&f, ".env"), Verdict::LeaveOut(LeftOut::Hidden));
    }

    #[test]
    fn include_readmits_hidden_and_excluded_paths() {
        let f = filter(false, &["*.map"], &[".well-known/", "keep.map"]);
        assert_eq!(verdict(&f, ".well-known/security.txt"), Verdict::Publish);
        assert_eq!(verdict(&f, "sub/keep.map"), Verdict::Publish);
        assert!(matches!(verdict(&f, "other.map"), Verdict::LeaveOut(LeftOut::Excluded { .. })));
        assert_eq!(verdict(&f, ".env"), Verdict::LeaveOut(LeftOut::Hidden));
        assert!(f.may_readmit() && !filter(false, &["*.map"], &[]).may_readmit());
    }

    #[test]
    fn patterns_that_match_nothing_or_do_not_parse_are_refused() {
        for bad in ["", "   ", "# comment", "!x", "a[z-a]", "/"] {
            assert!(check_pattern(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(check_pattern("*.map").unwrap(), "*.map");
        assert_eq!(check_pattern("\\#x").unwrap(), "\\#x");
    }
}
