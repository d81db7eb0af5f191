//! Unit tests of the local backend's write path, sidecars and etags.

use std::fs::File;
use std::os::unix::fs::MetadataExt;

use super::etag::content_etag;
use super::*;

std::thread_local! {
    /// How many times this thread's reads hashed a data file to check its sidecar.
    pub(super) static HASHED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn hashed() -> usize {
    HASHED.with(std::cell::Cell::get)
}

fn headers(sri: Option<String>) -> Headers {
    Headers { content_type: "text/javascript".into(), cache_control: "no-cache".into(), sri, signed: None }
}

fn sri(bytes: &[u8]) -> Option<String> {
    Some(Integrity::of_bytes(bytes).to_string())
}

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
}

/// Every file under the store's bookkeeping directory except lock files.
fn bookkeeping_files(root: &Path) -> Vec<String> {
    walkdir::WalkDir::new(root.join(RESERVED_PREFIX))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && !e.path().to_string_lossy().contains("/locks/"))
        .map(|e| e.path().display().to_string())
        .collect()
}

fn tmp_files(root: &Path) -> Vec<String> {
    bookkeeping_files(root).into_iter().filter(|p| p.contains("/.sdk-cdn/tmp/")).collect()
}

#[test]
fn a_reader_racing_a_replacement_gets_the_etag_of_the_bytes_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().to_path_buf());
    let k = key("api/sdk/sri");
    store.put_sync(&k, Body::Bytes("one".into()), &headers(None), PutMode::Overwrite).unwrap();
    // A reader opened the old data file; then a writer replaced data and sidecar.
    let old = File::open(store.data_path(&k)).unwrap();
    let old_meta = old.metadata().unwrap();
    store.put_sync(&k, Body::Bytes("two".into()), &headers(None), PutMode::Overwrite).unwrap();
    let meta = store.meta_of(&k, &old_meta, Some(&old)).unwrap();
    assert_eq!(meta.etag, content_etag(b"one"), "the etag must describe the bytes this reader holds");
    assert_eq!(meta.headers, None, "the sidecar describes other bytes");
}

#[test]
fn a_file_that_does_not_hash_to_its_sri_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("store"));
    let source = dir.path().join("a.js");
    // Planned as "alert(1)"; the file changed before the upload.
    std::fs::write(&source, b"alert(2)").unwrap();
    let k = key("sdk/1.0.0/a.js");
    let err = store.put_sync(&k, Body::File(source.clone()), &headers(sri(b"alert(1)")), PutMode::Create).unwrap_err();
    match err {
        StoreError::ContentChanged { key, path, expected, actual } => {
            assert_eq!(key, k.as_str());
            assert_eq!(path, source.display().to_string());
            assert_eq!(Some(expected), sri(b"alert(1)"));
            assert_eq!(Some(actual), sri(b"alert(2)"));
        }
        other => panic!("expected ContentChanged, got {other:?}"),
    }
    assert!(store.head_sync(&k).unwrap().is_none(), "no object under the key");
    assert!(!store.data_path(&k).exists());
    assert_eq!(bookkeeping_files(&dir.path().join("store")), Vec::<String>::new(), "no sidecar, no temp file");
    // The same put with the right SRI stores the bytes and its etag follows them.
    let put = store.put_sync(&k, Body::File(source), &headers(sri(b"alert(2)")), PutMode::Create).unwrap();
    assert_eq!(put.etag, content_etag(b"alert(2)"));
}

#[test]
fn in_memory_bodies_are_checked_against_their_sri_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().to_path_buf());
    let k = key("sdk/1.0.0/b.js");
    let err = store.put_sync(&k, Body::Bytes("real".into()), &headers(sri(b"else")), PutMode::Overwrite).unwrap_err();
    assert!(matches!(err, StoreError::ContentChanged { ref path, .. } if path == "<memory>"), "{err:?}");
    assert!(store.head_sync(&k).unwrap().is_none());
    assert!(tmp_files(dir.path()).is_empty());
    let put = store.put_sync(&k, Body::Bytes("real".into()), &headers(sri(b"real")), PutMode::Create).unwrap();
    assert_eq!(put.etag, content_etag(b"real"));
}

#[test]
fn a_copy_whose_sri_names_other_bytes_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().to_path_buf());
    let (from, to) = (key("sdk/1.0.0/c.js"), key("sdk/latest/c.js"));
    store.put_sync(&from, Body::Bytes("c".into()), &headers(sri(b"c")), PutMode::Create).unwrap();
    let err = store.copy_sync(&from, &to, &headers(sri(b"d"))).unwrap_err();
    assert!(matches!(err, StoreError::ContentChanged { .. }), "{err:?}");
    assert!(store.head_sync(&to).unwrap().is_none());
    store.copy_sync(&from, &to, &headers(sri(b"c"))).unwrap();
}

#[test]
fn create_and_copy_to_a_new_name_leave_no_temp_files_and_share_the_inode() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().to_path_buf());
    let (from, to) = (key("sdk/1.0.0/c.js"), key("sdk/latest/c.js"));
    store.put_sync(&from, Body::Bytes("c".into()), &headers(None), PutMode::Create).unwrap();
    let latest = Headers { cache_control: "public, max-age=300".into(), ..headers(None) };
    store.copy_sync(&from, &to, &latest).unwrap();
    store.copy_sync(&from, &to, &latest).unwrap(); // over an existing name: rename path
    let ino = |k: &Key| std::fs::metadata(store.data_path(k)).unwrap().ino();
    assert_eq!(ino(&from), ino(&to), "latest/ shares the bytes of the version");
    assert_eq!(store.head_sync(&to).unwrap().unwrap().headers, Some(latest));
    assert!(tmp_files(dir.path()).is_empty(), "{:?}", tmp_files(dir.path()));
    // One sidecar per object, whatever the key.
    assert_eq!(bookkeeping_files(dir.path()).len(), 2);
}

/// Copies a directory tree file by file: every file gets a new inode, as
/// with `cp -a`, `rsync -a` or a tar round trip.
fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from).into_iter().map(Result::unwrap) {
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

#[test]
fn a_copied_store_keeps_its_headers_and_rebinds_its_sidecars() {
    let dir = tempfile::tempdir().unwrap();
    let original = LocalStore::new(dir.path().join("a"));
    let k = key("sdk/1.0.0/a.js");
    let h = headers(sri(b"alert(1)"));
    original.put_sync(&k, Body::Bytes("alert(1)".into()), &h, PutMode::Create).unwrap();
    copy_tree(&dir.path().join("a"), &dir.path().join("b"));
    let copy = LocalStore::new(dir.path().join("b"));
    let data = std::fs::metadata(copy.data_path(&k)).unwrap();
    assert!(!sidecar::read(&copy.root, &k).unwrap().names_inode(&data), "the copy has new inodes");
    let meta = copy.head_sync(&k).unwrap().unwrap();
    assert_eq!(meta.headers, Some(h));
    assert_eq!(meta.etag, content_etag(b"alert(1)"));
    assert!(sidecar::read(&copy.root, &k).unwrap().names_inode(&data), "rebound: the next read hashes nothing");
    let before = hashed();
    assert_eq!(copy.head_sync(&k).unwrap().unwrap().headers, Some(headers(sri(b"alert(1)"))));
    assert_eq!(hashed(), before);
}

#[test]
fn a_read_only_copy_hashes_each_object_once_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let original = LocalStore::new(dir.path().join("a"));
    let k = key("sdk/1.0.0/a.js");
    let h = headers(sri(b"alert(1)"));
    original.put_sync(&k, Body::Bytes("alert(1)".into()), &h, PutMode::Create).unwrap();
    copy_tree(&dir.path().join("a"), &dir.path().join("b"));
    // No lock can be taken (as on a read-only mount): the sidecar cannot be rebound.
    let locks = dir.path().join("b").join(RESERVED_PREFIX).join("locks");
    std::fs::remove_dir_all(&locks).unwrap();
    std::fs::write(&locks, b"").unwrap();
    let copy = LocalStore::new(dir.path().join("b"));
    let before = hashed();
    for _ in 0..3 {
        assert_eq!(copy.head_sync(&k).unwrap().unwrap().headers, Some(h.clone()));
    }
    assert_eq!(hashed() - before, 1, "verified once, then believed for the same inode");
    let data = std::fs::metadata(copy.data_path(&k)).unwrap();
    assert!(!sidecar::read(&copy.root, &k).unwrap().names_inode(&data), "nothing was written");
    // A new inode (the file replaced) is checked again.
    std::fs::copy(copy.data_path(&k), dir.path().join("x")).unwrap();
    std::fs::rename(dir.path().join("x"), copy.data_path(&k)).unwrap();
    assert_eq!(copy.head_sync(&k).unwrap().unwrap().headers, Some(h));
    assert_eq!(hashed() - before, 2);
}

#[test]
fn a_sidecar_for_bytes_that_never_arrived_is_ignored_even_after_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("a"));
    let k = key("sdk/latest/a.js");
    store.put_sync(&k, Body::Bytes("old".into()), &headers(sri(b"old")), PutMode::Overwrite).unwrap();
    // The state a crash leaves between a replacing write's sidecar and its data.
    let tmp = names::tmp(&store.root);
    let staged = stage(&k, &tmp, Body::Bytes("new".into()), &headers(sri(b"new"))).unwrap();
    sidecar::write(&store.root, &k, &Sidecar::new(&k, &headers(sri(b"new")), &staged), true).unwrap();
    let meta = store.head_sync(&k).unwrap().unwrap();
    assert_eq!((meta.etag, meta.headers), (content_etag(b"old"), None), "never headers of other bytes");
    // The temp file the crash left has a new inode of the same size: still ignored.
    std::fs::remove_file(&tmp).unwrap();
    copy_tree(&dir.path().join("a"), &dir.path().join("b"));
    let copy = LocalStore::new(dir.path().join("b"));
    assert_eq!(copy.head_sync(&k).unwrap().unwrap().headers, None);
}

#[test]
fn keys_whose_old_sidecar_paths_collided_and_long_names_coexist() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().to_path_buf());
    let long = "x".repeat(names::MAX_NAME_BYTES);
    let keys = ["foo", "foo.json/bar.js", "a/b", "a/b.json", &format!("sdk/1.0.0/{long}")].map(key);
    for k in &keys {
        store
            .put_sync(k, Body::Bytes(k.to_string().into()), &headers(sri(k.as_str().as_bytes())), PutMode::Create)
            .unwrap();
    }
    let to = key(&format!("sdk/latest/{long}"));
    store.copy_sync(&keys[4], &to, &headers(sri(keys[4].as_str().as_bytes()))).unwrap();
    store.copy_sync(&keys[4], &to, &headers(None)).unwrap();
    for k in &keys {
        let (mut file, meta) = store.open_sync(k).unwrap().unwrap();
        let mut body = String::new();
        file.read_to_string(&mut body).unwrap();
        assert_eq!(body, k.as_str());
        assert_eq!(meta.headers.unwrap().sri, sri(k.as_str().as_bytes()), "{k}");
    }
    assert_eq!(store.head_sync(&to).unwrap().unwrap().headers.unwrap().sri, None);
}

#[test]
fn a_file_directory_clash_is_refused_naming_both_and_leaves_no_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().to_path_buf());
    store.put_sync(&key("l/foo"), Body::Bytes("f".into()), &headers(None), PutMode::Create).unwrap();
    let err = store.put_sync(&key("l/foo/bar.js"), Body::Bytes("b".into()), &headers(None), PutMode::Create);
    let err = err.unwrap_err().to_string();
    assert!(err.contains("l/foo/bar.js") && err.contains("l/foo is an object"), "{err}");
    store.put_sync(&key("m/foo/bar.js"), Body::Bytes("b".into()), &headers(None), PutMode::Create).unwrap();
    let err = store.copy_sync(&key("l/foo"), &key("m/foo"), &headers(None)).unwrap_err().to_string();
    assert!(err.contains("m/foo is a directory"), "{err}");
    assert_eq!(bookkeeping_files(dir.path()).len(), 2, "only the two objects' sidecars");
}

#[test]
fn the_first_write_removes_temp_files_of_dead_writers_and_keeps_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let tmp_dir = dir.path().join(RESERVED_PREFIX).join(names::TMP_DIR);
    std::fs::create_dir_all(&tmp_dir).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let host = crate::store::stale::host_tag();
    let orphan = tmp_dir.join(format!("{host}-{dead}-0"));
    let live = tmp_dir.join(format!("{host}-{}-999", std::process::id()));
    std::fs::write(&orphan, vec![0u8; 1000]).unwrap();
    std::fs::write(&live, b"in flight").unwrap();
    let store = LocalStore::new(dir.path().to_path_buf());
    store.put_sync(&key("a"), Body::Bytes("a".into()), &headers(None), PutMode::Create).unwrap();
    assert!(!orphan.exists(), "the dead writer's temp file is removed");
    assert!(live.exists(), "a live writer's temp file is kept");
    // Once per process: a new orphan waits for the next process (or doctor).
    std::fs::write(&orphan, b"x").unwrap();
    store.put_sync(&key("b"), Body::Bytes("b".into()), &headers(None), PutMode::Create).unwrap();
    assert!(orphan.exists());
    let removed = store.sweep().unwrap();
    assert_eq!(removed, StaleTemp { files: 1, bytes: 1, stuck: 0 });
}

#[test]
fn the_sweep_never_follows_a_symbolic_link_out_of_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir_all(elsewhere.join("tmp")).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    // A name this sweep would remove at once, in a directory that is not the store's.
    let victim = elsewhere.join("tmp").join(format!("{}-{dead}-0", crate::store::stale::host_tag()));
    std::fs::write(&victim, b"not the store's").unwrap();
    let root = dir.path().join("store");
    std::fs::create_dir_all(root.join(RESERVED_PREFIX)).unwrap();
    // Either the temp directory itself or the bookkeeping directory above it.
    std::os::unix::fs::symlink(elsewhere.join("tmp"), root.join(RESERVED_PREFIX).join(names::TMP_DIR)).unwrap();
    let err = LocalStore::new(root.clone()).sweep().unwrap_err().to_string();
    assert!(err.contains("symbolic link") && err.contains("remove the link"), "{err}");
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::os::unix::fs::symlink(&elsewhere, other.join(RESERVED_PREFIX)).unwrap();
    assert!(LocalStore::new(other).sweep().is_err());
    assert!(victim.exists(), "nothing outside the store was removed");
    // A store reached through a link of its own is fine.
    std::fs::remove_file(root.join(RESERVED_PREFIX).join(names::TMP_DIR)).unwrap();
    std::fs::create_dir(root.join(RESERVED_PREFIX).join(names::TMP_DIR)).unwrap();
    std::os::unix::fs::symlink(&root, dir.path().join("link")).unwrap();
    assert_eq!(LocalStore::new(dir.path().join("link")).sweep().unwrap(), StaleTemp::default());
}

#[test]
fn a_store_written_before_the_hashed_layout_keeps_its_headers() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().to_path_buf());
    let k = key("sdk/1.0.0/old.js");
    std::fs::create_dir_all(store.data_path(&k).parent().unwrap()).unwrap();
    std::fs::write(store.data_path(&k), b"old").unwrap();
    let ino = std::fs::metadata(store.data_path(&k)).unwrap().ino();
    // The sidecar exactly as earlier releases wrote it, beside the data tree's mirror.
    let legacy = names::legacy_sidecar(&store.root, &k);
    std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
    let json = serde_json::json!({
        "content_type": "text/javascript", "cache_control": "no-cache", "sri": sri(b"old"),
        "etag": content_etag(b"old"), "size": 3, "ino": ino,
    });
    std::fs::write(&legacy, json.to_string()).unwrap();
    assert_eq!(store.head_sync(&k).unwrap().unwrap().headers, Some(headers(sri(b"old"))));
    store.delete_sync(&k).unwrap();
    assert!(!legacy.exists(), "a delete removes the old sidecar too");
}

#[test]
fn a_staged_copy_across_several_write_behind_windows_is_the_exact_input() {
    // Not a multiple of the window or of the buffer: every boundary case.
    let input: Vec<u8> = (0..(2 * super::write::WRITE_BEHIND + 12_345)).map(|i| (i * 7 % 251) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().to_path_buf());
    let staged = store.stage(&mut input.as_slice(), &mut vec![0; 64 * 1024], false).unwrap();
    assert_eq!(staged.size(), input.len() as u64);
    assert_eq!(std::fs::read(staged.path()).unwrap(), input);
    assert_eq!(Some(staged.integrity().to_string()), sri(&input));
    let k = key("sdk/1.0.0/big.js");
    let body = Body::File(staged.path().to_path_buf());
    store.put_sync(&k, body, &headers(sri(&input)), PutMode::Create).unwrap();
    assert_eq!(std::fs::read(store.data_path(&k)).unwrap(), input);
}

/// Whether a process waits in `flock` for the file with inode `ino`
/// (`/proc/locks` lists a blocked request as `N: -> FLOCK …`).
fn someone_waits_for_lock(ino: u64) -> bool {
    let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
    locks.lines().any(|l| l.contains("-> FLOCK") && l.split_whitespace().any(|f| f.ends_with(&format!(":{ino}"))))
}

#[test]
fn a_reader_between_a_writers_sidecar_and_data_waits_for_the_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().to_path_buf());
    let k = key("sdk/latest/a.js");
    store.put_sync(&k, Body::Bytes("old".into()), &headers(sri(b"old")), PutMode::Overwrite).unwrap();
    // A writer of `new!`, stopped where `commit` is between the two steps:
    // lock held, the new sidecar in place, the old data still there.
    let tmp = names::tmp(&store.root);
    std::fs::write(&tmp, b"new!").unwrap();
    let m = std::fs::metadata(&tmp).unwrap();
    let staged = Staged { etag: content_etag(b"new!"), size: 4, ino: m.ino(), dev: m.dev() };
    let lock = store.lock(&k).unwrap();
    sidecar::write(&store.root, &k, &Sidecar::new(&k, &headers(sri(b"new!")), &staged), true).unwrap();

    let reader = {
        let (store, k) = (store.clone(), k.clone());
        std::thread::spawn(move || store.read_sync(&k).unwrap().unwrap().1)
    };
    // Until the reader waits for the lock (with the fix) or has answered (without it).
    let lock_ino = std::fs::metadata(names::lock(&store.root, &k)).unwrap().ino();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !reader.is_finished() && !someone_waits_for_lock(lock_ino) {
        assert!(std::time::Instant::now() < until, "the reader neither answered nor waited");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    std::fs::rename(&tmp, store.data_path(&k)).unwrap();
    drop(lock);
    let meta = reader.join().unwrap();
    assert_eq!(meta.etag, content_etag(b"new!"), "the reader looked again once the write was whole");
    assert_eq!(meta.headers, Some(headers(sri(b"new!"))), "a write in flight is not a changed object");
}
