//! Known answer for the default repository config JSON.

mod kat_support;

use kat_support::check_vector;
use stowage_protocol::config::RepoConfig;

#[test]
fn the_default_config_json_matches_the_stored_vector() {
    let json = RepoConfig::default().to_json();
    check_vector("repo_config.json", &json);
    let stored = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/repo_config.json"
    ))
    .unwrap();
    assert_eq!(
        RepoConfig::from_json(&stored).unwrap(),
        RepoConfig::default()
    );
}
