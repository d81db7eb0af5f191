//! Removing the temp files of writes that never finished (a `kill -9`, a
//! power loss, a cancelled CI job): without this they only accumulate. One
//! policy for both places a write keeps a temp file: the local store's
//! `.sdk-cdn/tmp/` and the private copies an S3 upload sends from
//! (`$TMPDIR/sdk-cdn-upload-…`, see `s3::stage`).
//!
//! A temp file is named by its writer, `<prefix><host>-<pid>-…` (see
//! [`writer_tag`]). It is stale when its writer is certainly gone: the name
//! says it was written on this host since this boot, in this pid namespace,
//! by a process that no longer exists; or, where a place allows it, nothing
//! has touched it for longer than that place's bound (other hosts sharing
//! the directory, earlier boots, older name formats). A live writer's file
//! is never removed: its process exists. The age is that of the newer of
//! mtime and ctime, because a `link` (the local store's copy) changes only
//! the ctime.
//!
//! A sweep is one `readdir` of the directory, run by the first write of
//! each process and by `doctor`.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::StaleTemp;

/// The host tag of a system where process ids cannot be checked.
const UNKNOWN_HOST: &str = "x";

/// Where temp files of one kind live, and when one of an unknown writer
/// may go.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TempDir<'a> {
    /// The directory.
    pub dir: &'a Path,
    /// What every temp name of this kind starts with (others are not ours).
    pub prefix: &'a str,
    /// How long an untouched file whose writer cannot be checked is kept;
    /// `None`: for ever (its writer may still be at work, e.g. an upload
    /// that takes hours).
    pub unknown_writer_kept: Option<Duration>,
    /// Only files of this process's user are judged: a shared directory
    /// (`/tmp`) holds other users' files, which are not ours to remove.
    pub own_files_only: bool,
}

/// A short tag for this host, boot and pid namespace (the kernel's boot id
/// and `/proc/self/ns/pid`): a pid in a temp name means something only
/// there. Containers sharing a directory have other namespaces, so they
/// never judge each other's writers by pid.
pub(crate) fn host_tag() -> &'static str {
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

/// `<host>-<pid>`: what every temp name of this process starts with after
/// its place's prefix, so that a sweep can tell whether its writer lives.
pub(crate) fn writer_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| format!("{}-{}", host_tag(), std::process::id()))
}

/// Whether process `pid` exists, asked with `kill(pid, 0)`: that asks this
/// process's pid namespace, the one [`host_tag`] names. (`/proc/<pid>`
/// would ask the namespace `/proc` was mounted for, and a `/proc` mounted
/// with `hidepid` hides other users' processes: both made live writers
/// look dead.) Another user's process exists too (`EPERM`); a zombie counts
/// as alive until its parent reaps it.
fn pid_alive(pid: u32) -> bool {
    // Pid 0 and negative pids would name process groups; no writer has them.
    let Some(pid) = libc::pid_t::try_from(pid).ok().filter(|pid| *pid > 0) else { return false };
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let sent = unsafe { libc::kill(pid, 0) };
    sent == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether a temp file named `name` (its place's prefix removed), last
/// touched `age` ago, is stale. A writer this host can check is judged by
/// its process alone, however long it has been idle (a suspended laptop);
/// the age bound is for writers that cannot be checked.
fn is_stale(name: &str, age: Duration, bound: Option<Duration>, host: &str, alive: impl Fn(u32) -> bool) -> bool {
    let mut parts = name.splitn(3, '-');
    match (parts.next(), parts.next().and_then(|p| p.parse::<u32>().ok())) {
        (Some(tag), Some(pid)) if tag == host && host != UNKNOWN_HOST => !alive(pid),
        _ => bound.is_some_and(|bound| age >= bound),
    }
}

fn last_touched(m: &fs::Metadata) -> SystemTime {
    let changed =
        UNIX_EPOCH + Duration::new(m.ctime().max(0).unsigned_abs(), m.ctime_nsec().clamp(0, 999_999_999) as u32);
    m.modified().map_or(changed, |modified| modified.max(changed))
}

/// Removes the stale temp files in `place`; a missing directory has none.
/// A file that cannot be removed (immutable, another user's in a sticky
/// directory) is counted in [`StaleTemp::stuck`] and logged; the sweep goes
/// on. An error is returned only when the directory cannot be read.
pub(crate) fn sweep(place: &TempDir) -> io::Result<StaleTemp> {
    let entries = match fs::read_dir(place.dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(StaleTemp::default()),
        Err(e) => return Err(e),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = place.own_files_only.then(|| unsafe { libc::geteuid() });
    let (now, host) = (SystemTime::now(), host_tag());
    let mut removed = StaleTemp::default();
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().and_then(|n| n.strip_prefix(place.prefix)).map(str::to_string)
        else {
            continue;
        };
        let Ok(m) = entry.metadata() else { continue };
        let age = now.duration_since(last_touched(&m)).unwrap_or_default();
        if !m.is_file()
            || me.is_some_and(|me| m.uid() != me)
            || !is_stale(&name, age, place.unknown_writer_kept, host, pid_alive)
        {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => {
                removed.files += 1;
                removed.bytes += m.len();
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %entry.path().display(), error = %e, "could not remove a stale temp file");
                removed.stuck += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "0123abcd";
    const HOUR: Option<Duration> = Some(Duration::from_secs(3600));

    #[test]
    fn a_file_of_a_dead_writer_on_this_host_is_stale_at_once() {
        let fresh = Duration::from_secs(1);
        for bound in [HOUR, None] {
            assert!(is_stale("0123abcd-42-7", fresh, bound, HOST, |_| false));
            assert!(!is_stale("0123abcd-42-7", fresh, bound, HOST, |pid| pid == 42), "a live writer's file is kept");
        }
    }

    #[test]
    fn a_live_writer_on_this_host_keeps_its_file_however_old() {
        let ancient = Duration::from_secs(100 * 24 * 3600);
        assert!(!is_stale("0123abcd-42-7", ancient, HOUR, HOST, |pid| pid == 42));
    }

    #[test]
    fn liveness_is_asked_of_this_pid_namespace() {
        assert!(pid_alive(std::process::id()));
        assert!(pid_alive(1), "init exists (another user's process counts too)");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(dead));
        assert!(!pid_alive(0) && !pid_alive(u32::MAX), "never a process group");
    }

    #[test]
    fn files_of_other_hosts_or_unknown_names_wait_for_the_age_bound_if_there_is_one() {
        let fresh = Duration::from_secs(60);
        let old = Duration::from_secs(3600);
        for name in ["ffffffff-42-7", "42-7-123456", "garbage"] {
            assert!(!is_stale(name, fresh, HOUR, HOST, |_| false), "{name}");
            assert!(is_stale(name, old, HOUR, HOST, |_| true), "{name}");
            assert!(!is_stale(name, old * 1000, None, HOST, |_| false), "{name}: no bound, kept");
        }
        assert!(!is_stale("x-42-7", fresh, HOUR, UNKNOWN_HOST, |_| false), "no pid check without /proc");
    }

    #[test]
    fn a_sweep_judges_only_names_with_its_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let ours = dir.path().join(format!("up-{}-{dead}-x1", host_tag()));
        let other = dir.path().join(format!("other-{}-{dead}-x1", host_tag()));
        let live = dir.path().join(format!("up-{}-a", writer_tag()));
        for f in [&ours, &other, &live] {
            fs::write(f, b"12345").unwrap();
        }
        let place = TempDir { dir: dir.path(), prefix: "up-", unknown_writer_kept: None, own_files_only: true };
        assert_eq!(sweep(&place).unwrap(), StaleTemp { files: 1, bytes: 5, stuck: 0 });
        assert!(!ours.exists() && other.exists() && live.exists());
    }
}
