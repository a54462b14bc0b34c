use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::ExposeSecret;
use stowage_server::configuration::{ConfigError, ObjectStoreSettings, Settings};

use crate::helpers::env;

const ALL_S3: [(&str, &str); 5] = [
    ("STOWAGE_S3_ENDPOINT", "http://127.0.0.1:9000"),
    ("STOWAGE_S3_BUCKET", "stowage"),
    ("STOWAGE_S3_REGION", "us-east-1"),
    ("STOWAGE_S3_ACCESS_KEY", "AKIDEXAMPLE"),
    ("STOWAGE_S3_SECRET_KEY", "wJalrXUtnFEMI-very-secret"),
];

fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn error_of(result: Result<Settings, ConfigError>) -> String {
    result.expect_err("the settings were accepted").to_string()
}

#[test]
fn no_settings_at_all_give_the_embedded_defaults() {
    // Act
    let settings = Settings::from_sources(None, &env(&[])).unwrap();

    // Assert
    assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(settings.data_dir, PathBuf::from("./stowage-data"));
    assert_eq!(
        settings.database.url.expose_secret(),
        "sqlite://./stowage-data/stowage.db"
    );
    assert!(matches!(
        settings.object_store,
        ObjectStoreSettings::Local { ref root } if root.as_path() == std::path::Path::new("./stowage-data/objects")
    ));
    assert_eq!(settings.log, "info");
}

#[test]
fn the_environment_beats_the_file() {
    // Arrange
    let (_dir, path) = config_file(
        "listen = \"127.0.0.1:7000\"\ndata_dir = \"/srv/from-file\"\nlog = \"debug\"\n",
    );
    let env = env(&[("STOWAGE_LISTEN", "127.0.0.1:9000")]);

    // Act
    let settings = Settings::from_sources(Some(&path), &env).unwrap();

    // Assert
    assert_eq!(settings.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(settings.data_dir, PathBuf::from("/srv/from-file"));
    assert_eq!(settings.log, "debug");
    assert_eq!(
        settings.database.url.expose_secret(),
        "sqlite:///srv/from-file/stowage.db"
    );
}

#[test]
fn a_bad_listen_address_in_the_environment_is_named() {
    let result = Settings::from_sources(None, &env(&[("STOWAGE_LISTEN", "abc")]));

    assert_eq!(
        error_of(result),
        "STOWAGE_LISTEN: \"abc\" is not a socket address like 127.0.0.1:8080"
    );
}

#[test]
fn a_bad_value_in_the_file_names_the_key_and_the_file() {
    let (_dir, path) = config_file("listen = \"localhost\"\n");

    let message = error_of(Settings::from_sources(Some(&path), &env(&[])));

    assert_eq!(
        message,
        format!(
            "listen in {}: \"localhost\" is not a socket address like 127.0.0.1:8080",
            path.display()
        )
    );
}

#[test]
fn an_unknown_key_in_the_file_is_rejected() {
    let (_dir, path) = config_file("lisen = \"127.0.0.1:1\"\n");

    let message = error_of(Settings::from_sources(Some(&path), &env(&[])));

    assert!(message.contains("unknown field `lisen`"), "{message}");
    assert!(message.starts_with("configuration file"), "{message}");
}

#[test]
fn a_missing_file_is_named() {
    let message = error_of(Settings::from_sources(
        Some(std::path::Path::new("/no/such/server.toml")),
        &env(&[]),
    ));

    assert!(
        message.contains("\"/no/such/server.toml\": cannot be read"),
        "{message}"
    );
}

#[test]
fn other_bad_values_name_their_setting() {
    let cases = [
        (
            "STOWAGE_DATABASE_URL",
            "mysql://x",
            "STOWAGE_DATABASE_URL: \"mysql://x\" is not a sqlite://PATH",
        ),
        (
            "STOWAGE_LOG",
            "info,[",
            "STOWAGE_LOG: \"info,[\" is not a log filter",
        ),
        ("STOWAGE_DATA_DIR", " ", "STOWAGE_DATA_DIR: is empty"),
    ];
    for (key, value, expected) in cases {
        let message = error_of(Settings::from_sources(None, &env(&[(key, value)])));
        assert!(
            message.starts_with(expected),
            "{key}={value:?} gave {message:?}"
        );
    }
}

#[test]
fn partial_s3_settings_name_the_missing_ones() {
    let env = env(&ALL_S3[..2]);

    let message = error_of(Settings::from_sources(None, &env));

    assert!(
        message.contains(
            "STOWAGE_S3_ENDPOINT, STOWAGE_S3_BUCKET given but \
             STOWAGE_S3_REGION, STOWAGE_S3_ACCESS_KEY, STOWAGE_S3_SECRET_KEY missing"
        ),
        "{message}"
    );
}

#[test]
fn complete_s3_settings_select_the_s3_store() {
    let mut env = env(&ALL_S3);
    env.insert("STOWAGE_S3_PATH_STYLE".into(), "true".into());

    let settings = Settings::from_sources(None, &env).unwrap();

    let ObjectStoreSettings::S3(s3) = settings.object_store else {
        panic!("expected the S3 store, got {:?}", settings.object_store);
    };
    assert_eq!(s3.endpoint, "http://127.0.0.1:9000");
    assert_eq!(s3.bucket, "stowage");
    assert!(s3.path_style);
}

#[test]
fn s3_settings_from_the_file_and_environment_combine() {
    let (_dir, path) = config_file(
        "[s3]\nendpoint = \"http://minio:9000\"\nbucket = \"b-from-file\"\nregion = \"eu-west-1\"\npath_style = true\n",
    );
    let env = env(&ALL_S3[3..]);

    let settings = Settings::from_sources(Some(&path), &env).unwrap();

    let ObjectStoreSettings::S3(s3) = settings.object_store else {
        panic!("expected the S3 store");
    };
    assert_eq!(
        (s3.bucket.as_str(), s3.region.as_str()),
        ("b-from-file", "eu-west-1")
    );
    assert_eq!(s3.access_key, "AKIDEXAMPLE");
}

#[test]
fn a_bad_s3_endpoint_or_path_style_is_named() {
    let mut bad_endpoint = env(&ALL_S3);
    bad_endpoint.insert("STOWAGE_S3_ENDPOINT".into(), "minio:9000".into());
    let mut bad_bool = env(&ALL_S3);
    bad_bool.insert("STOWAGE_S3_PATH_STYLE".into(), "maybe".into());

    assert!(
        error_of(Settings::from_sources(None, &bad_endpoint))
            .starts_with("STOWAGE_S3_ENDPOINT: \"minio:9000\" is not an http:// or https:// URL")
    );
    assert_eq!(
        error_of(Settings::from_sources(None, &bad_bool)),
        "STOWAGE_S3_PATH_STYLE: \"maybe\" is not true or false"
    );
}

#[test]
fn secrets_never_appear_in_debug_output() {
    // Arrange
    let mut env = env(&ALL_S3);
    env.insert(
        "STOWAGE_DATABASE_URL".into(),
        "postgres://stowage:db-password-123@db:5432/stowage".into(),
    );

    // Act
    let settings = Settings::from_sources(None, &env).unwrap();
    let debug = format!("{settings:?}");

    // Assert
    assert!(!debug.contains("wJalrXUtnFEMI-very-secret"), "{debug}");
    assert!(!debug.contains("db-password-123"), "{debug}");
    assert!(
        debug.contains("postgres://stowage:***@db:5432/stowage"),
        "{debug}"
    );
    assert_eq!(
        settings.database.redacted_url(),
        "postgres://stowage:***@db:5432/stowage"
    );
}

/// A fresh self-signed certificate and its key as PEM files in `dir`.
fn tls_files(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

fn tls_env(cert: &std::path::Path, key: &std::path::Path) -> HashMap<String, String> {
    env(&[
        ("STOWAGE_TLS_CERT", cert.to_str().unwrap()),
        ("STOWAGE_TLS_KEY", key.to_str().unwrap()),
    ])
}

#[test]
fn no_tls_settings_serve_plain_http() {
    let settings = Settings::from_sources(None, &env(&[])).unwrap();

    assert!(settings.tls.is_none());
}

#[test]
fn a_certificate_and_key_from_the_environment_enable_https() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tls_files(dir.path());

    // Act
    let settings = Settings::from_sources(None, &tls_env(&cert, &key)).unwrap();

    // Assert
    let tls = settings.tls.expect("TLS is configured");
    assert_eq!(
        (tls.cert_path(), tls.key_path()),
        (cert.as_path(), key.as_path())
    );
}

#[test]
fn a_certificate_and_key_from_the_file_enable_https() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tls_files(dir.path());
    let (_file_dir, path) = config_file(&format!(
        "tls_cert = {:?}\ntls_key = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    ));

    let settings = Settings::from_sources(Some(&path), &env(&[])).unwrap();

    assert!(settings.tls.is_some());
}

#[test]
fn a_certificate_without_a_key_is_refused_naming_stowage_tls_key() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _key) = tls_files(dir.path());

    let message = error_of(Settings::from_sources(
        None,
        &env(&[("STOWAGE_TLS_CERT", cert.to_str().unwrap())]),
    ));

    assert_eq!(
        message,
        "TLS is half configured: STOWAGE_TLS_CERT is set but STOWAGE_TLS_KEY \
         (or tls_key in the file) is not; set both to serve HTTPS, or neither to serve plain HTTP"
    );
}

#[test]
fn a_key_without_a_certificate_is_refused_naming_stowage_tls_cert() {
    let (_dir, path) = config_file("tls_key = \"/etc/stowage/key.pem\"\n");

    let message = error_of(Settings::from_sources(Some(&path), &env(&[])));

    assert!(
        message.starts_with(&format!(
            "TLS is half configured: tls_key in {} is set but STOWAGE_TLS_CERT",
            path.display()
        )),
        "{message}"
    );
}

#[test]
fn a_certificate_file_that_is_not_pem_is_refused_naming_the_file() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tls_files(dir.path());
    std::fs::write(&cert, "this is not a certificate\n").unwrap();

    // Act
    let message = error_of(Settings::from_sources(None, &tls_env(&cert, &key)));

    // Assert
    assert_eq!(
        message,
        format!(
            "STOWAGE_TLS_CERT: the certificate file {cert:?} holds no PEM certificate \
             (a block starting -----BEGIN CERTIFICATE-----)"
        )
    );
}

#[test]
fn a_key_file_that_is_not_pem_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tls_files(dir.path());
    std::fs::write(&key, std::fs::read(&cert).unwrap()).unwrap();

    let message = error_of(Settings::from_sources(None, &tls_env(&cert, &key)));

    assert!(
        message.starts_with(&format!(
            "STOWAGE_TLS_KEY: the private key file {key:?} holds no PEM private key"
        )),
        "{message}"
    );
}

#[test]
fn broken_base64_inside_a_pem_block_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = tls_files(dir.path());
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();

    let message = error_of(Settings::from_sources(None, &tls_env(&cert, &key)));

    assert!(
        message.starts_with(&format!(
            "STOWAGE_TLS_CERT: the certificate file {cert:?} is not valid PEM - "
        )),
        "{message}"
    );
}

#[test]
fn an_unreadable_certificate_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (_cert, key) = tls_files(dir.path());
    let missing = dir.path().join("missing.pem");

    let message = error_of(Settings::from_sources(None, &tls_env(&missing, &key)));

    assert!(
        message.starts_with(&format!(
            "STOWAGE_TLS_CERT: the certificate file {missing:?} cannot be read - "
        )),
        "{message}"
    );
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_naming_both_files() {
    // Arrange
    let (one, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (cert, _) = tls_files(one.path());
    let (_, key) = tls_files(other.path());

    // Act
    let message = error_of(Settings::from_sources(None, &tls_env(&cert, &key)));

    // Assert
    assert!(
        message.starts_with(&format!(
            "STOWAGE_TLS_KEY: the private key file {key:?} does not belong to the certificate in {cert:?} - "
        )),
        "{message}"
    );
}

#[test]
fn rate_limits_come_from_the_file_and_the_environment_and_bad_ones_are_named() {
    let (_dir, path) = config_file("[rate_limits]\nagent_per_second = 7\naddress_burst = 9\n");

    let settings =
        Settings::from_sources(Some(&path), &env(&[("STOWAGE_AGENT_RATE_BURST", "70")])).unwrap();

    let limits = settings.rate_limits;
    assert_eq!(limits.per_agent.per_second.get(), 7);
    assert_eq!(limits.per_agent.burst.get(), 70);
    assert_eq!(limits.per_address.burst.get(), 9);
    let zero = error_of(Settings::from_sources(
        None,
        &env(&[("STOWAGE_ADDRESS_RATE_LIMIT", "0")]),
    ));
    assert!(zero.starts_with("STOWAGE_ADDRESS_RATE_LIMIT:"), "{zero}");
    assert!(zero.contains("from 1 to 1000000"), "{zero}");
    let (_dir, path) = config_file("[rate_limits]\nagent_burst = -3\n");
    let negative = error_of(Settings::from_sources(Some(&path), &HashMap::new()));
    assert!(negative.contains("agent_burst"), "{negative}");
}

#[test]
fn job_and_scheduler_settings_default_to_production_values() {
    let settings = Settings::from_sources(None, &env(&[])).unwrap();

    assert_eq!(settings.jobs.lease, std::time::Duration::from_mins(10));
    assert_eq!(settings.scheduler.tick, std::time::Duration::from_secs(5));
    assert_eq!(settings.scheduler.clock_speed, 1);
    assert_eq!(settings.scheduler.clock_origin, None);
}

#[test]
fn job_and_scheduler_settings_come_from_the_file_and_the_environment() {
    // Arrange: the file sets all four; the environment overrides two.
    let (_dir, path) = config_file(
        "[jobs]\nlease = \"2m\"\n\n[scheduler]\ntick = \"1s\"\nclock_speed = 60\n\
         clock_origin = \"2026-12-01T00:00:00Z\"\n",
    );
    let env = env(&[
        ("STOWAGE_SCHEDULER_TICK", "250ms"),
        ("STOWAGE_JOB_LEASE", "30s"),
    ]);

    // Act
    let settings = Settings::from_sources(Some(&path), &env).unwrap();

    // Assert
    assert_eq!(settings.jobs.lease, std::time::Duration::from_secs(30));
    assert_eq!(
        settings.scheduler.tick,
        std::time::Duration::from_millis(250)
    );
    assert_eq!(settings.scheduler.clock_speed, 60);
    assert_eq!(
        settings.scheduler.clock_origin,
        Some("2026-12-01T00:00:00Z".parse().unwrap())
    );
}

#[test]
fn bad_job_and_scheduler_settings_name_their_setting() {
    let cases = [
        (
            "STOWAGE_JOB_LEASE",
            "10 minutes",
            "STOWAGE_JOB_LEASE: \"10 minutes\" is not a duration like 250ms",
        ),
        (
            "STOWAGE_JOB_LEASE",
            "500ms",
            "STOWAGE_JOB_LEASE: \"500ms\" is out of range; it must be from 1s",
        ),
        (
            "STOWAGE_SCHEDULER_TICK",
            "2h",
            "STOWAGE_SCHEDULER_TICK: \"2h\" is out of range",
        ),
        (
            "STOWAGE_SCHEDULER_CLOCK_SPEED",
            "0",
            "STOWAGE_SCHEDULER_CLOCK_SPEED: \"0\" is not a clock speed from 1",
        ),
        (
            "STOWAGE_SCHEDULER_CLOCK_SPEED",
            "3601",
            "STOWAGE_SCHEDULER_CLOCK_SPEED: \"3601\" is not a clock speed",
        ),
        (
            "STOWAGE_SCHEDULER_CLOCK_ORIGIN",
            "yesterday",
            "STOWAGE_SCHEDULER_CLOCK_ORIGIN: \"yesterday\" is not an RFC 3339 time",
        ),
    ];
    for (key, value, expected) in cases {
        let message = error_of(Settings::from_sources(None, &env(&[(key, value)])));
        assert!(
            message.starts_with(expected),
            "{key}={value:?} gave {message:?}"
        );
    }
}

#[test]
fn the_passes_default_to_hourly_retention_and_daily_gc() {
    // Act
    let settings = Settings::from_sources(None, &env(&[])).unwrap();

    // Assert
    assert_eq!(settings.retention.interval, Duration::from_hours(1));
    assert_eq!(settings.gc.interval, Duration::from_hours(24));
    assert_eq!(settings.gc.orphan_min_age, Duration::from_hours(1));
}

#[test]
fn pass_intervals_come_from_the_file_and_the_environment_wins() {
    // Arrange
    let (_dir, path) = config_file(
        "[retention]\ninterval = \"10m\"\n\n[gc]\ninterval = \"6h\"\norphan_min_age = \"2h\"\n",
    );
    let env = env(&[("STOWAGE_GC_INTERVAL", "5s")]);

    // Act
    let settings = Settings::from_sources(Some(&path), &env).unwrap();

    // Assert
    assert_eq!(settings.retention.interval, Duration::from_mins(10));
    assert_eq!(settings.gc.interval, Duration::from_secs(5));
    assert_eq!(settings.gc.orphan_min_age, Duration::from_hours(2));
}

#[test]
fn a_pass_interval_that_is_no_duration_is_refused_by_name() {
    // Act
    let err = error_of(Settings::from_sources(
        None,
        &env(&[("STOWAGE_RETENTION_INTERVAL", "hourly")]),
    ));

    // Assert
    assert_eq!(
        err,
        "STOWAGE_RETENTION_INTERVAL: \"hourly\" is not a duration like 250ms, 5s, 10m or 1h"
    );
}

#[test]
fn an_orphan_age_an_upload_could_outlast_is_refused() {
    // Act
    let err = error_of(Settings::from_sources(
        None,
        &env(&[("STOWAGE_GC_ORPHAN_MIN_AGE", "2s")]),
    ));

    // Assert
    assert_eq!(
        err,
        "STOWAGE_GC_ORPHAN_MIN_AGE: \"2s\" is out of range; it must be from 10s to 2592000s"
    );
}

#[test]
fn a_gc_interval_longer_than_a_week_is_refused() {
    // Arrange
    let (_dir, path) = config_file("[gc]\ninterval = \"200h\"\n");

    // Act
    let err = error_of(Settings::from_sources(Some(&path), &env(&[])));

    // Assert
    assert!(
        err.starts_with("gc.interval in ")
            && err.ends_with("\"200h\" is out of range; it must be from 1s to 604800s"),
        "{err}"
    );
}
