//! The places a publish writes to on this machine (the local store's
//! directory and `--manifests-dir`), kept apart from the build directory it
//! reads. A build that is, holds or sits inside the store would publish the
//! store's own files (index, manifests, sidecars, locks); manifests written
//! into the build would be published with the next version, and the rerun
//! of the same version would see different files and be refused.
//!
//! Paths are compared resolved: canonicalised, and a directory that does not
//! exist yet by its nearest existing ancestor, so `.`, `..` and symbolic
//! links cannot hide an overlap. Nothing here writes, except
//! [`check_manifests_dir`], which runs just before the first store write.

use std::io;
use std::path::{Component, Path, PathBuf};

use super::ReleaseError;

/// The build directory, resolved, with where the tool's outputs are relative to it.
#[derive(Debug)]
pub(crate) struct BuildRoots {
    /// The build directory, resolved.
    build: PathBuf,
    /// The local manifests directory relative to the build, if it is inside it.
    pub manifests_in_build: Option<PathBuf>,
}

impl BuildRoots {
    /// Refuses a build directory `dir` that overlaps the local store at
    /// `store_root`, or that is itself `manifests_dir`, and a `manifests_dir`
    /// inside that store (its copies would overwrite published files); finds where
    /// `manifests_dir` sits inside it (to be left out).
    pub(crate) fn new(
        dir: &Path,
        store_root: Option<&Path>,
        manifests_dir: Option<&Path>,
    ) -> Result<Self, ReleaseError> {
        let build = resolve(dir).map_err(|e| unresolved(dir, e))?;
        let manifests = match manifests_dir {
            Some(manifests_dir) => Some(resolve(manifests_dir).map_err(|e| unresolved(manifests_dir, e))?),
            None => None,
        };
        if let Some(store_root) = store_root {
            let store = resolve(store_root).map_err(|e| unresolved(store_root, e))?;
            if let (Some(manifests_dir), Some(manifests)) = (manifests_dir, &manifests)
                && manifests.starts_with(&store)
            {
                return Err(refuse(
                    manifests_dir,
                    format!(
                        "(--manifests-dir) is inside the local store {} (--store): the local copies of the \
                         manifests could overwrite published files; choose a --manifests-dir outside the store",
                        store.display()
                    ),
                ));
            }
            let relation = if build == store {
                Some("is the local store")
            } else if build.starts_with(&store) {
                Some("is inside the local store")
            } else if store.starts_with(&build) {
                Some("contains the local store")
            } else {
                None
            };
            if let Some(relation) = relation {
                return Err(refuse(
                    dir,
                    format!(
                        "{relation} {} (--store): the store's own files would be published; pass the build \
                         output directory (e.g. dist) and keep the store outside it",
                        store.display()
                    ),
                ));
            }
        }
        let mut manifests_in_build = None;
        if let (Some(manifests_dir), Some(manifests)) = (manifests_dir, manifests) {
            if manifests == build {
                return Err(refuse(
                    dir,
                    format!(
                        "is also the --manifests-dir {}: the manifests written there would be published with \
                         the next version; choose a --manifests-dir outside the build (one inside it, like the \
                         default ./manifests, is left out of the build)",
                        manifests_dir.display()
                    ),
                ));
            }
            manifests_in_build = manifests.strip_prefix(&build).ok().map(Path::to_path_buf);
        }
        Ok(BuildRoots { build, manifests_in_build })
    }

    /// Refuses a build directory `dir` that is, or holds, `copies`, where the
    /// store copies each file before it sends it (S3: `TMPDIR`): another
    /// run's copies, or a killed run's, would be published with the build.
    pub(crate) fn refuse_holding_upload_copies(&self, dir: &Path, copies: &Path) -> Result<(), ReleaseError> {
        let copies = resolve(copies).map_err(|e| unresolved(copies, e))?;
        if !copies.starts_with(&self.build) {
            return Ok(());
        }
        Err(refuse(
            dir,
            format!(
                "holds TMPDIR {}, where an S3 publish copies each file before it uploads it: another run's copies \
                 would be published with the build; point TMPDIR outside the build (unset, it is /tmp)",
                copies.display()
            ),
        ))
    }
}

/// Creates `dir` if needed and proves it is a directory this process can
/// write, by creating and removing a file in it; run before the first store
/// write, so an unusable `--manifests-dir` never fails a publish that is live.
pub(crate) fn check_manifests_dir(dir: &Path) -> Result<(), ReleaseError> {
    let unusable = |what: String| {
        refuse(
            dir,
            format!("cannot be used as --manifests-dir: {what}; pass a writable directory with --manifests-dir DIR"),
        )
    };
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => return Err(unusable("it is a file, not a directory".into())),
        Ok(_) => {}
        Err(_) => std::fs::create_dir_all(dir).map_err(|e| unusable(format!("it cannot be created ({e})")))?,
    }
    let probe = dir.join(format!(".sdk-cdn-write-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| unusable(format!("a file cannot be created in it ({e})")))?;
    std::fs::remove_file(&probe).map_err(|e| unusable(format!("a file cannot be removed from it ({e})")))?;
    Ok(())
}

/// `path` made absolute and canonical; the part that does not exist yet is
/// appended to its nearest existing ancestor's canonical path, with `..`
/// applied lexically (no links can hide in a path that does not exist).
pub(crate) fn resolve(path: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    for ancestor in absolute.ancestors() {
        let Ok(mut resolved) = std::fs::canonicalize(ancestor) else { continue };
        let rest = absolute.strip_prefix(ancestor).unwrap_or(Path::new(""));
        for component in rest.components() {
            match component {
                Component::ParentDir => {
                    resolved.pop();
                }
                Component::Normal(name) => resolved.push(name),
                Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            }
        }
        return Ok(resolved);
    }
    Err(io::Error::new(io::ErrorKind::NotFound, "no part of the path exists"))
}

fn refuse(path: &Path, reason: String) -> ReleaseError {
    ReleaseError::Input { path: path.display().to_string(), reason }
}

fn unresolved(path: &Path, e: io::Error) -> ReleaseError {
    refuse(path, format!("cannot be resolved to an absolute path ({e}); check that it is spelled right"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_through_dots_links_and_missing_tails() {
        let dir = tempfile::tempdir().unwrap();
        let real = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir(real.join("a")).unwrap();
        std::os::unix::fs::symlink(real.join("a"), real.join("link")).unwrap();
        assert_eq!(resolve(&real.join("link/./x/../y")).unwrap(), real.join("a/y"));
        assert_eq!(resolve(&real.join("a/../a")).unwrap(), real.join("a"));
    }

    #[test]
    fn a_build_that_overlaps_the_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("dist")).unwrap();
        for (build, store, says) in [
            (d.join("dist"), d.join("dist"), "is the local store"),
            (d.join("dist"), d.join("dist/cdn"), "contains the local store"),
            (d.join("dist"), d.to_path_buf(), "is inside the local store"),
            (d.join("dist"), d.join("dist/./not-yet/../x"), "contains the local store"),
        ] {
            let err = BuildRoots::new(&build, Some(&store), None).unwrap_err().to_string();
            assert!(err.contains(says) && err.contains("--store"), "{store:?}: {err}");
        }
        BuildRoots::new(&d.join("dist"), Some(&d.join("cdn")), None).unwrap();
        BuildRoots::new(&d.join("dist"), Some(&d.join("dist-cdn")), None).unwrap();
    }

    #[test]
    fn the_manifests_dir_inside_the_build_is_found_and_the_build_itself_refused() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("dist")).unwrap();
        let roots = BuildRoots::new(&d.join("dist"), None, Some(&d.join("dist/manifests"))).unwrap();
        assert_eq!(roots.manifests_in_build, Some(PathBuf::from("manifests")));
        let roots = BuildRoots::new(&d.join("dist"), None, Some(&d.join("manifests"))).unwrap();
        assert_eq!(roots.manifests_in_build, None);
        let err = BuildRoots::new(&d.join("dist"), None, Some(&d.join("dist/."))).unwrap_err().to_string();
        assert!(err.contains("--manifests-dir"), "{err}");
    }

    #[test]
    fn an_unusable_manifests_dir_is_refused_and_a_new_one_created() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("afile");
        std::fs::write(&file, b"x").unwrap();
        for bad in [file.clone(), file.join("sub")] {
            let err = check_manifests_dir(&bad).unwrap_err();
            assert!(matches!(err, ReleaseError::Input { .. }), "{err}");
            assert!(err.to_string().contains("--manifests-dir"), "{err}");
        }
        check_manifests_dir(&dir.path().join("new/nested")).unwrap();
        assert_eq!(std::fs::read_dir(dir.path().join("new/nested")).unwrap().count(), 0, "the probe is removed");
    }
}
