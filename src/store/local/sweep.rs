//! Removing the temp files of writes that never finished (a `kill -9`, a
//! power loss): without this `.sdk-cdn/tmp` only grows.
//!
//! A temp file is stale when its writer is certainly gone: its name says it
//! was written on this host since this boot, in this pid namespace
//! (`<host>-<pid>-<n>`, see
//! [`super::names::tmp`]) by a process that no longer exists, or nothing
//! has touched it for [`STALE_AFTER`] (other hosts sharing the directory,
//! earlier boots, older name formats). A live writer's file is never
//! removed: its process exists, and it is written, linked or renamed within
//! seconds. The age is that of the newer of mtime and ctime, because a
//! `link` (the local store's copy) changes only the ctime.
//!
//! The sweep is one `readdir` of `tmp/`, run by the first write of each
//! process and by `doctor`.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::names::{TMP_DIR, bookkeeping};
use crate::store::StaleTemp;

/// How long an untouched temp file of an unknown writer is kept.
pub(super) const STALE_AFTER: Duration = Duration::from_secs(3600);

/// The host tag of a system where process ids cannot be checked.
const UNKNOWN_HOST: &str = "x";

/// A short tag for this host, boot and pid namespace (the kernel's boot id
/// and `/proc/self/ns/pid`): a pid in a temp name means something only
/// there. Containers sharing a store directory have other namespaces, so
/// they never judge each other's writers by pid.
pub(super) fn host_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let boot = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let Ok(ns) = fs::read_link("/proc/self/ns/pid") else { return UNKNOWN_HOST.to_string() };
        if boot.trim().is_empty() {
            return UNKNOWN_HOST.to_string();
        }
        let digest = Sha256::digest(format!("{}\n{}", boot.trim(), ns.display()).as_bytes());
        digest.iter().take(4).map(|b| format!("{b:02x}")).collect()
    })
}

fn pid_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Whether a temp file named `name`, last touched `age` ago, is stale.
fn is_stale(name: &str, age: Duration, host: &str, alive: impl Fn(u32) -> bool) -> bool {
    if age >= STALE_AFTER {
        return true;
    }
    let mut parts = name.splitn(3, '-');
    match (parts.next(), parts.next().and_then(|p| p.parse::<u32>().ok())) {
        (Some(tag), Some(pid)) if tag == host && host != UNKNOWN_HOST => !alive(pid),
        _ => false,
    }
}

fn last_touched(m: &fs::Metadata) -> SystemTime {
    let changed =
        UNIX_EPOCH + Duration::new(m.ctime().max(0).unsigned_abs(), m.ctime_nsec().clamp(0, 999_999_999) as u32);
    m.modified().map_or(changed, |modified| modified.max(changed))
}

/// Removes the stale temp files of the store at `root`.
pub(super) fn sweep(root: &Path) -> io::Result<StaleTemp> {
    let dir = bookkeeping(root).join(TMP_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(StaleTemp::default()),
        Err(e) => return Err(e),
    };
    let (now, host) = (SystemTime::now(), host_tag());
    let mut removed = StaleTemp::default();
    for entry in entries {
        let entry = entry?;
        let Ok(m) = entry.metadata() else { continue };
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        let age = now.duration_since(last_touched(&m)).unwrap_or_default();
        if !m.is_file() || !is_stale(&name, age, host, pid_alive) {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => {
                removed.files += 1;
                removed.bytes += m.len();
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "0123abcd";

    #[test]
    fn a_file_of_a_dead_writer_on_this_host_is_stale_at_once() {
        let fresh = Duration::from_secs(1);
        assert!(is_stale("0123abcd-42-7", fresh, HOST, |_| false));
        assert!(!is_stale("0123abcd-42-7", fresh, HOST, |pid| pid == 42), "a live writer's file is kept");
    }

    #[test]
    fn files_of_other_hosts_or_unknown_names_wait_for_the_age_bound() {
        let fresh = Duration::from_secs(60);
        for name in ["ffffffff-42-7", "42-7-123456", "garbage"] {
            assert!(!is_stale(name, fresh, HOST, |_| false), "{name}");
            assert!(is_stale(name, STALE_AFTER, HOST, |_| true), "{name}");
        }
        assert!(!is_stale("x-42-7", fresh, UNKNOWN_HOST, |_| false), "no pid check without /proc");
    }
}
