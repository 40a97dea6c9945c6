use super::*;

fn m(prompt: &str, fp: &str) -> Manifest {
    Manifest {
        version: 1,
        system: None,
        prompt: Some(prompt.into()),
        max_tokens: Some(4),
        temperature: None,
        extra: Map::new(),
        id_column: None,
        input_fingerprint: fp.into(),
        endpoint: None,
        input_bytes: None,
        carried_spend_usd: None,
        variants: Vec::new(),
    }
}

fn at(base_url: &str, mock: bool) -> Option<EndpointRecord> {
    Some(EndpointRecord {
        base_url: base_url.into(),
        mock,
    })
}

#[test]
fn another_endpoint_is_a_change_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let mock = Manifest {
        endpoint: at("http://127.0.0.1:4100/api/v1", true),
        ..m("a", "x")
    };
    assert!(
        mock.check_or_write(dir.path(), &dir.path().join("in.csv"))
            .unwrap()
            .is_ok()
    );
    let again = Manifest {
        endpoint: at("http://127.0.0.1:4200/api/v1", true),
        ..m("a", "x")
    };
    assert!(
        again
            .check_or_write(dir.path(), &dir.path().join("in.csv"))
            .unwrap()
            .is_ok()
    );
    let real = Manifest {
        endpoint: at("https://openrouter.ai/api/v1", false),
        ..m("a", "x")
    };
    let changes = real
        .check_or_write(dir.path(), &dir.path().join("in.csv"))
        .unwrap()
        .unwrap_err();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0].contains("the built-in mock (--mock)")
            && changes[0].contains("https://openrouter.ai/api/v1"),
        "{changes:?}"
    );
}

#[test]
fn endpoints_compare_by_url_a_loopback_port_aside() {
    let e = |u: &str| EndpointRecord {
        base_url: u.into(),
        mock: false,
    };
    assert!(e("http://127.0.0.1:1/api/v1").same_as(&e("http://127.0.0.1:2/api/v1/")));
    assert!(e("http://localhost:1/v1").same_as(&e("http://localhost:9/v1")));
    assert!(!e("https://a.example:1/v1").same_as(&e("https://a.example:2/v1")));
    assert!(!e("https://a.example/v1").same_as(&e("https://b.example/v1")));
    assert!(!e("http://127.0.0.1:1/v1").same_as(&EndpointRecord {
        base_url: "http://127.0.0.1:1/v1".into(),
        mock: true
    }));
}

#[test]
fn changes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        m("a", "x")
            .check_or_write(dir.path(), dir.path())
            .unwrap()
            .is_ok()
    );
    assert!(
        m("a", "x")
            .check_or_write(dir.path(), dir.path())
            .unwrap()
            .is_ok()
    );
    let changes = m("b", "y")
        .check_or_write(dir.path(), dir.path())
        .unwrap()
        .unwrap_err();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes[0].contains("request.prompt"));
}

#[test]
fn second_lock_fails() {
    let dir = tempfile::tempdir().unwrap();
    let _a = DirLock::acquire(dir.path()).unwrap();
    assert!(DirLock::acquire(dir.path()).is_err());
}

#[test]
fn deleting_the_lock_file_does_not_release_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let _a = DirLock::acquire(dir.path()).unwrap();
    std::fs::remove_file(dir.path().join(LOCK)).unwrap();
    let err = DirLock::acquire(dir.path()).err().unwrap();
    assert!(err.contains("another orbatch run"), "{err}");
}

#[test]
fn a_symlinked_lock_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere");
    std::fs::write(&target, b"").unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join(LOCK)).unwrap();
    let err = DirLock::acquire(dir.path()).err().unwrap();
    assert!(err.contains("symbolic link") && err.contains(LOCK), "{err}");
}

#[test]
fn taking_the_lock_removes_temps_of_dead_runs() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join(".results.jsonl.tmp-999999999");
    std::fs::write(&stale, b"half a compaction").unwrap();
    let _a = DirLock::acquire(dir.path()).unwrap();
    assert!(!stale.exists());
}
