//! Restoring hostile snapshot data writes nothing outside the target.
//!
//! The snapshots are crafted with the tenant's own keys (what a compromised
//! agent could commit): entry names `..`, `.`, with `/`, with NUL, absolute
//! paths; a symlink to a directory outside followed by entries that try to
//! write through it (a duplicate name, a split directory whose second part
//! repeats the link's name); and a target that already holds a symlink
//! pointing outside. Each restore goes into `base/target` next to an empty
//! `base/outside`; afterwards `base` must hold exactly those two, `outside`
//! must still be empty, and the hostile names must be refused loudly.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use stowage_e2e::agent::{Agent, Run, Tenant};
use stowage_e2e::craft::{Crafter, Entry};
use stowage_e2e::on_both_backends;
use stowage_e2e::server::{Backend, TestServer};

const PAYLOAD: &[u8] = b"written by a hostile snapshot\n";

/// A fresh `base` with an empty `outside` directory; returns (base, target, outside).
fn arena() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let base = tempfile::tempdir().unwrap();
    let outside = base.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let target = base.path().join("target");
    (base, target, outside)
}

/// Panics unless `base` holds only `target` and an empty `outside`, and no
/// file named like the payload's appeared anywhere under `/tmp` itself.
#[track_caller]
fn assert_nothing_escaped(base: &Path, outside: &Path, run: &Run, case: &str) {
    let mut names: Vec<_> = std::fs::read_dir(base)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    names.sort();
    let outside_entries: Vec<_> = std::fs::read_dir(outside)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(
        outside_entries.is_empty() && names.iter().all(|n| n == "outside" || n == "target"),
        "{case}: the restore wrote outside its target: {names:?} next to it, {outside_entries:?} \
         in the outside directory\nstdout:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
}

/// Restores `snapshot` into `target` and checks nothing escaped.
fn restore_hostile(agent: &Agent, snapshot: &str, case: &str, extra: &[&str]) -> Run {
    let (base, target, outside) = arena();
    let mut args: Vec<&OsStr> = vec![
        "restore".as_ref(),
        snapshot.as_ref(),
        "--target".as_ref(),
        target.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    let run = agent.run(&args);
    assert_nothing_escaped(base.path(), &outside, &run, case);
    run
}

fn hostile_names_are_refused_and_nothing_is_written_outside_the_target(backend: Backend) {
    let Some(server) = TestServer::start(backend, "hostile-names") else {
        return;
    };
    let tenant = Tenant::create(&server, "HostileNames");
    let agent = tenant.enroll("hostile-host");
    // Each case: one snapshot whose root holds the hostile entry, as a file
    // and as a directory holding a file.
    let absolute = std::env::temp_dir().join("stowage-e2e-absolute-escape");
    let _ = std::fs::remove_file(&absolute);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dot-dot", b"..".to_vec()),
        ("dot", b".".to_vec()),
        ("dot-dot slash", b"../outside/escaped".to_vec()),
        ("slash", b"sub/escaped".to_vec()),
        ("absolute", absolute.as_os_str().as_bytes().to_vec()),
        ("nul", b"bad\0name".to_vec()),
        ("empty", Vec::new()),
    ];
    for (case, name) in cases {
        for as_dir in [false, true] {
            // Arrange
            let mut crafter = Crafter::new(&agent);
            let hostile = if as_dir {
                let file = crafter.file("escaped", PAYLOAD);
                let inner = crafter.leaf(&[file]);
                Entry::dir(name.clone(), inner)
            } else {
                crafter.file(name.clone(), PAYLOAD)
            };
            let decoy = crafter.file("z-innocent", b"fine\n");
            let root = crafter.leaf(&[hostile, decoy]);
            let snapshot = crafter.commit(root).to_hex();
            let case = format!("{case} ({})", if as_dir { "directory" } else { "file" });

            // Act
            let run = restore_hostile(&agent, &snapshot, &case, &[]);

            // Assert
            assert_ne!(
                run.code,
                Some(0),
                "{case}: a snapshot with a hostile name restored without complaint\nstderr:\n{}",
                run.stderr
            );
            assert!(
                run.stderr.contains("name") || run.stderr.contains("path"),
                "{case}: the error does not say which name is refused:\n{}",
                run.stderr
            );
            assert!(
                !absolute.exists(),
                "{case}: {} was written",
                absolute.display()
            );
        }
    }
}

fn symlink_tricks_write_nothing_outside_the_target(backend: Backend) {
    let Some(server) = TestServer::start(backend, "hostile-links") else {
        return;
    };
    let tenant = Tenant::create(&server, "HostileLinks");
    let agent = tenant.enroll("links-host");
    let probe = arena();
    let outside = probe.2.to_str().unwrap().to_owned();
    drop(probe);

    // 1. A symlink to a directory outside, then a directory of the same
    //    name holding a file (a duplicate name: the second entry would be
    //    written through the link).
    let mut crafter = Crafter::new(&agent);
    let payload = crafter.file("pwned", PAYLOAD);
    let inner = crafter.leaf(&[payload]);
    let root = crafter.leaf(&[
        Entry::symlink("escape", "../outside"),
        Entry::dir("escape", inner),
    ]);
    let duplicate = crafter.commit(root).to_hex();
    let run = restore_hostile(&agent, &duplicate, "duplicate name through a symlink", &[]);
    assert_ne!(
        run.code,
        Some(0),
        "a tree with a duplicate name restored:\n{}",
        run.stderr
    );

    // 2. The same, split over an index's two parts (each part well formed).
    let mut crafter = Crafter::new(&agent);
    let payload = crafter.file("pwned", PAYLOAD);
    let inner = crafter.leaf(&[payload]);
    let part_one = crafter.leaf(&[Entry::symlink("escape", "../outside")]);
    let part_two = crafter.leaf(&[Entry::dir("escape", inner)]);
    let root = crafter.index(&[part_one, part_two]);
    let split = crafter.commit(root).to_hex();
    let run = restore_hostile(&agent, &split, "duplicate name across index parts", &[]);
    assert_ne!(
        run.code,
        Some(0),
        "a split tree with a duplicate name restored:\n{}",
        run.stderr
    );

    // 3. A legitimate symlink pointing outside (absolute and relative) is
    //    restored as a link, and nothing is written through it.
    let mut crafter = Crafter::new(&agent);
    let root = crafter.leaf(&[
        Entry::symlink("absolute-link", outside.clone()),
        Entry::symlink("relative-link", "../outside"),
    ]);
    let links = crafter.commit(root).to_hex();
    let run = restore_hostile(&agent, &links, "symlinks pointing outside", &[]);
    run.expect_success();

    // 4. A target that already holds a symlink `sub -> ../outside`, and a
    //    snapshot with a directory `sub` holding a file: with every
    //    --overwrite mode the file must not land in `outside`.
    let mut crafter = Crafter::new(&agent);
    let payload = crafter.file("pwned", PAYLOAD);
    let file_payload = crafter.file("also-pwned", PAYLOAD);
    let inner = crafter.leaf(&[payload]);
    let root = crafter.leaf(&[file_payload.clone(), Entry::dir("sub", inner)]);
    let snapshot = crafter.commit(root).to_hex();
    for mode in ["never", "if-changed", "always"] {
        let (base, target, outside) = arena();
        std::fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink("../outside", target.join("sub")).unwrap();
        std::os::unix::fs::symlink("../outside/also-pwned", target.join("also-pwned")).unwrap();
        let run = agent.run(&[
            "restore".as_ref(),
            snapshot.as_str().as_ref(),
            "--target".as_ref(),
            target.as_os_str(),
            "--overwrite".as_ref(),
            OsStr::new(mode),
        ]);
        assert_nothing_escaped(
            base.path(),
            &outside,
            &run,
            &format!("pre-existing symlinks in the target, --overwrite {mode}"),
        );
    }
}

on_both_backends!(
    hostile_names_are_refused_and_nothing_is_written_outside_the_target,
    symlink_tricks_write_nothing_outside_the_target,
);
