//! Unit tests of the local backend's write path and etags.

use std::fs::File;
use std::os::unix::fs::MetadataExt;

use super::etag::content_etag;
use super::*;
use crate::integrity::Integrity;

fn headers(sri: Option<String>) -> Headers {
    Headers { content_type: "text/javascript".into(), cache_control: "no-cache".into(), sri }
}

fn key(s: &str) -> Key {
    Key::new(s).unwrap()
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
}

#[test]
fn a_streamed_file_takes_its_etag_from_its_sri_and_it_equals_the_content_etag() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("store"));
    let source = dir.path().join("a.js");
    std::fs::write(&source, b"alert(1)").unwrap();
    let sri = Some(Integrity::of_bytes(b"alert(1)").to_string());
    let k = key("sdk/1.0.0/a.js");
    let put = store.put_sync(&k, Body::File(source), &headers(sri), PutMode::Create).unwrap();
    assert_eq!(put.etag, content_etag(b"alert(1)"));
    // Without its sidecar the object is hashed again: the same etag.
    std::fs::remove_file(store.sidecar_path(&k)).unwrap();
    assert_eq!(store.head_sync(&k).unwrap().unwrap().etag, put.etag);
}

#[test]
fn in_memory_bodies_are_hashed_whatever_sri_comes_with_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().to_path_buf());
    let lying = Some(Integrity::of_bytes(b"something else").to_string());
    let k = key("sdk/1.0.0/b.js");
    let put = store.put_sync(&k, Body::Bytes("real".into()), &headers(lying), PutMode::Create).unwrap();
    assert_eq!(put.etag, content_etag(b"real"));
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
    let leftovers: Vec<_> = walkdir::WalkDir::new(dir.path().join(RESERVED_PREFIX))
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && !e.path().to_string_lossy().contains("/locks/"))
        .filter(|e| e.path().extension().is_none_or(|x| x != "json"))
        .map(|e| e.path().display().to_string())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
