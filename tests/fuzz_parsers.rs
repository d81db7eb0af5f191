//! Property tests ("fuzzing" within a bounded time) for everything that
//! parses untrusted text: the key validator, integrity values, versions and
//! the three JSON formats read from the store. They must never panic, must
//! refuse anything that could escape the store, and must round-trip what
//! they produce. CI raises the case count with `PROPTEST_CASES`.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use proptest::prelude::*;
use sdk_cdn::integrity::Integrity;
use sdk_cdn::manifest::{self, ChannelPointer, FileEntry, SriIndex, VersionManifest};
use sdk_cdn::store::Key;

fn key_like() -> impl Strategy<Value = String> {
    // Biased towards the characters that matter: separators, dots, escapes.
    prop::collection::vec(
        prop_oneof![
            Just("/".to_string()),
            Just(".".to_string()),
            Just("..".to_string()),
            Just("\\".to_string()),
            Just("%2e".to_string()),
            Just("\0".to_string()),
            Just("\n".to_string()),
            "[a-z0-9._-]{1,8}",
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn accepted_keys_never_escape_the_store_root(s in key_like()) {
        if let Ok(key) = Key::new(s.clone()) {
            let joined = Path::new("/store/root").join(key.as_str());
            prop_assert!(joined.starts_with("/store/root"));
            for component in Path::new(key.as_str()).components() {
                prop_assert!(matches!(component, Component::Normal(_)), "{s:?} has {component:?}");
            }
            prop_assert!(!key.as_str().contains('\\'));
            prop_assert!(!key.as_str().chars().any(char::is_control));
            prop_assert!(key.as_str().len() <= 1024);
        }
    }

    #[test]
    fn integrity_parsing_never_panics_and_round_trips(s in "\\PC{0,80}", data in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = s.parse::<Integrity>();
        let _ = format!("sha384-{s}").parse::<Integrity>();
        let value = Integrity::of_bytes(&data);
        prop_assert_eq!(value.to_string().parse::<Integrity>().unwrap(), value);
    }

    #[test]
    fn version_parsing_never_panics(s in "\\PC{0,40}") {
        if let Ok(v) = sdk_cdn::version::parse(&s) {
            prop_assert!(v.build.is_empty());
            prop_assert_eq!(v.to_string(), s);
        }
    }

    #[test]
    fn stored_json_parsers_never_panic_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let key = Key::new("manifests/1.0.0.json").unwrap();
        let _ = manifest::parse::<VersionManifest>(&key, "version manifest", &bytes);
        let _ = manifest::parse::<SriIndex>(&key, "SRI index", &bytes);
        let _ = manifest::parse::<ChannelPointer>(&key, "channel pointer", &bytes);
    }

    #[test]
    fn stored_json_parsers_never_panic_on_json_shaped_text(s in "[\\[\\]{}\":,0-9a-z./+=-]{0,120}") {
        let key = Key::new("api/sdk/sri").unwrap();
        let _ = manifest::parse::<VersionManifest>(&key, "version manifest", s.as_bytes());
        let _ = manifest::parse::<SriIndex>(&key, "SRI index", s.as_bytes());
    }

    #[test]
    fn manifests_and_indexes_round_trip_through_their_bytes(
        files in prop::collection::btree_map("[a-z]{1,6}(/[a-z]{1,6}){0,2}\\.(js|css|map|wasm)", prop::collection::vec(any::<u8>(), 0..64), 1..8),
        major in 0u64..20, minor in 0u64..20, patch in 0u64..20,
    ) {
        let version = semver::Version::new(major, minor, patch);
        let manifest = VersionManifest {
            version: version.clone(),
            files: files.iter().map(|(p, b)| (p.clone(), FileEntry {
                integrity: Integrity::of_bytes(b),
                size: b.len() as u64,
                content_type: sdk_cdn::content_type::for_path(p),
                // Signed and unsigned entries side by side round-trip alike.
                signed: (b.len() % 2 == 1).then(|| sdk_cdn::signing::SignedHeaders {
                    unencoded_digest: format!("sha-512=:{}:", b.len()),
                    signature_input: format!("sig1=(\"unencoded-digest\";sf);keyid=\"{p}\""),
                    signature: "sig1=:AA==:".into(),
                }),
            })).collect::<BTreeMap<_, _>>(),
        };
        let key = sdk_cdn::layout::manifest(&version);
        let bytes = manifest::to_bytes(&manifest);
        let parsed: VersionManifest = manifest::parse(&key, "version manifest", &bytes).unwrap();
        prop_assert!(parsed.validate(&key, &version).is_ok());
        prop_assert_eq!(&parsed, &manifest);

        let mut index = SriIndex::default();
        index.add_version(&manifest);
        index.set_latest(&manifest);
        let parsed: SriIndex = manifest::parse(&key, "SRI index", &manifest::to_bytes(&index)).unwrap();
        prop_assert!(parsed.contains_version(&manifest));
        prop_assert_eq!(parsed, index);
    }
}
