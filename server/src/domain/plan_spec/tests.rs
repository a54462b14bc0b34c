//! Every rule of [`PlanSpec::parse`], one input at a time.

use super::*;

fn now() -> DateTime<Utc> {
    "2027-01-01T00:00:00Z".parse().unwrap()
}

fn good() -> PlanInput {
    PlanInput {
        name: "nightly".to_owned(),
        paths: vec!["/etc".to_owned(), "/home".to_owned()],
        schedule: "0 2 * * *".to_owned(),
        timezone: Some("Europe/Berlin".to_owned()),
        rpo: Some("24h".to_owned()),
        ..PlanInput::default()
    }
}

fn refused(input: &PlanInput) -> String {
    PlanSpec::parse(input, now()).unwrap_err().to_string()
}

#[test]
fn a_daily_plan_with_a_24h_rpo_is_accepted() {
    let spec = PlanSpec::parse(&good(), now()).unwrap();
    assert_eq!(spec.name.as_str(), "nightly");
    assert_eq!(
        spec.sources,
        Sources::Paths(vec!["/etc".to_owned(), "/home".to_owned()])
    );
    assert_eq!(spec.schedule.zone(), "Europe/Berlin");
    assert_eq!(spec.rpo.unwrap().as_secs(), 86_400);
}

#[test]
fn the_zone_defaults_to_utc() {
    let input = PlanInput {
        timezone: None,
        ..good()
    };
    assert_eq!(
        PlanSpec::parse(&input, now()).unwrap().schedule.zone(),
        "UTC"
    );
}

#[test]
fn weekdays_only_with_a_24h_rpo_is_refused_naming_both_durations() {
    let input = PlanInput {
        schedule: "0 9 * * 1-5".to_owned(),
        ..good()
    };
    let err = refused(&input);
    assert!(err.contains("leaves 72h"), "{err}");
    assert!(err.contains("RPO of 24h"), "{err}");
    assert!(err.contains("\"0 9 * * 1-5\" in Europe/Berlin"), "{err}");
}

#[test]
fn weekdays_only_with_a_72h_rpo_is_accepted() {
    let input = PlanInput {
        schedule: "0 9 * * 1-5".to_owned(),
        rpo: Some("3d".to_owned()),
        ..good()
    };
    assert!(PlanSpec::parse(&input, now()).is_ok());
}

#[test]
fn a_plan_without_paths_or_command_is_refused() {
    let input = PlanInput {
        paths: vec![],
        ..good()
    };
    assert!(refused(&input).contains("give --path"));
}

#[test]
fn paths_and_a_command_together_are_refused() {
    let input = PlanInput {
        command: Some("pg_dump db".to_owned()),
        stdin_name: Some("db.sql".to_owned()),
        ..good()
    };
    assert!(refused(&input).contains("not both"));
}

#[test]
fn a_command_source_needs_its_stdin_name() {
    let command_only = PlanInput {
        paths: vec![],
        command: Some("pg_dump db".to_owned()),
        ..good()
    };
    let name_only = PlanInput {
        stdin_name: Some("db.sql".to_owned()),
        ..good()
    };
    assert!(refused(&command_only).contains("go together"));
    assert!(refused(&name_only).contains("go together"));
    let both = PlanInput {
        stdin_name: Some("db.sql".to_owned()),
        ..command_only
    };
    assert_eq!(
        PlanSpec::parse(&both, now()).unwrap().sources,
        Sources::Command {
            command: "pg_dump db".to_owned(),
            stdin_name: "db.sql".to_owned()
        }
    );
}

#[test]
fn a_relative_path_is_refused_naming_it() {
    let input = PlanInput {
        paths: vec!["/etc".to_owned(), "home".to_owned()],
        ..good()
    };
    assert_eq!(
        refused(&input),
        "\"home\" is not an absolute path; plan paths start with /"
    );
}

#[test]
fn an_empty_exclude_is_refused() {
    let input = PlanInput {
        excludes: vec!["*.tmp".to_owned(), " ".to_owned()],
        ..good()
    };
    assert!(refused(&input).contains("--exclude"));
}

#[test]
fn a_bad_cron_or_zone_is_refused_naming_it() {
    let cron = PlanInput {
        schedule: "every day".to_owned(),
        ..good()
    };
    let zone = PlanInput {
        timezone: Some("Berlin".to_owned()),
        ..good()
    };
    assert!(refused(&cron).contains("\"every day\" is not a cron schedule"));
    assert!(refused(&zone).contains("\"Berlin\" is not a time zone"));
}

#[test]
fn bad_durations_are_refused_naming_the_option() {
    for (input, option) in [
        (
            PlanInput {
                rpo: Some("soon".to_owned()),
                ..good()
            },
            "--rpo",
        ),
        (
            PlanInput {
                rto: Some("0h".to_owned()),
                ..good()
            },
            "--rto",
        ),
        (
            PlanInput {
                keep_within: Some("1y".to_owned()),
                ..good()
            },
            "--keep-within",
        ),
        (
            PlanInput {
                restore_test_every: Some("-7d".to_owned()),
                ..good()
            },
            "--restore-test-every",
        ),
    ] {
        let err = refused(&input);
        assert!(err.starts_with(&format!("{option}: ")), "{err}");
    }
}

#[test]
fn a_zero_keep_count_is_refused() {
    let input = PlanInput {
        keep: KeepCounts {
            daily: Some(0),
            ..KeepCounts::default()
        },
        ..good()
    };
    assert!(refused(&input).starts_with("--keep-daily must be"));
}

#[test]
fn a_blank_name_is_refused() {
    let input = PlanInput {
        name: "  ".to_owned(),
        ..good()
    };
    assert_eq!(refused(&input), "a plan name cannot be empty");
}
