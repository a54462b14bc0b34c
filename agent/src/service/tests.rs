//! Installing and removing the unit in temporary directories, with a
//! stand-in `systemctl` that records how it was called.

use std::os::unix::fs::PermissionsExt;

use stowage_protocol::ids::{AgentId, TenantId};

use super::*;
use crate::profile::{PROFILE_FILE, Profile};

struct Machine {
    dir: tempfile::TempDir,
}

impl Machine {
    /// An enrolled configuration directory, a binary and an empty unit directory.
    fn enrolled() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        std::fs::create_dir_all(&config).unwrap();
        let profile = Profile {
            server: "https://backup.example.com".into(),
            ca_cert: None,
            pin_fingerprint: None,
            insecure_http: false,
            agent_id: AgentId::from_bytes([1; 16]),
            tenant_id: TenantId::from_bytes([2; 16]),
            agent_name: "db-1".into(),
            hostname: "db-1".into(),
            write_only: false,
        };
        let text = toml::to_string(&profile).unwrap();
        std::fs::write(config.join(PROFILE_FILE), text).unwrap();
        let binary = dir.path().join("stowage");
        std::fs::write(&binary, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(dir.path().join("units")).unwrap();
        Self { dir }
    }

    fn agent(&self) -> Agent {
        Agent {
            binary: self.dir.path().join("stowage"),
            config_dir: ConfigDir::resolve(Some(self.dir.path().join("config"))).unwrap(),
            cache_dir: None,
        }
    }

    fn options(&self, use_systemctl: bool) -> ServiceOptions {
        ServiceOptions {
            unit_dir: Some(self.dir.path().join("units")),
            use_systemctl,
            systemctl: None,
            is_root: true,
        }
    }

    fn unit(&self) -> PathBuf {
        self.dir.path().join("units").join(UNIT_NAME)
    }

    /// A `systemctl` that appends its arguments to `calls`.
    fn fake_systemctl(&self) -> PathBuf {
        let path = self.dir.path().join("systemctl");
        let calls = self.dir.path().join("calls");
        std::fs::write(
            &path,
            format!("#!/bin/sh\necho \"$@\" >> {}\n", calls.display()),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls")).unwrap_or_default()
    }
}

#[test]
fn with_no_start_the_unit_is_written_with_this_binary_and_the_commands_are_printed() {
    // Arrange
    let machine = Machine::enrolled();
    // Act
    let said = install(&machine.agent(), &machine.options(false)).unwrap();
    // Assert
    let unit = std::fs::read_to_string(machine.unit()).unwrap();
    let binary = machine.dir.path().join("stowage").canonicalize().unwrap();
    let config = machine.dir.path().join("config");
    let expected = format!(
        "ExecStart={} --config-dir {} daemon",
        binary.display(),
        config.display()
    );
    assert!(unit.lines().any(|line| line == expected), "{unit}");
    let mode = std::fs::metadata(machine.unit())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
    assert!(
        said.iter()
            .any(|line| line == "  systemctl enable --now stowage.service")
    );
    assert_eq!(machine.calls(), "");
}

#[test]
fn systemctl_reloads_then_enables_and_starts_the_service() {
    // Arrange
    let machine = Machine::enrolled();
    let mut options = machine.options(true);
    options.systemctl = Some(machine.fake_systemctl());
    // Act
    install(&machine.agent(), &options).unwrap();
    // Assert
    assert_eq!(
        machine.calls(),
        "daemon-reload\nenable --now stowage.service\n"
    );
}

#[test]
fn an_agent_that_is_not_enrolled_gets_no_service() {
    // Arrange
    let machine = Machine::enrolled();
    std::fs::remove_file(machine.dir.path().join("config").join(PROFILE_FILE)).unwrap();
    // Act
    let error = install(&machine.agent(), &machine.options(false)).unwrap_err();
    // Assert
    let text = error.to_string();
    assert!(
        text.starts_with("the service is not installed: this machine is not enrolled"),
        "{text}"
    );
    assert!(!machine.unit().exists());
}

#[test]
fn without_root_the_system_directory_is_refused_but_a_writable_unit_dir_is_used() {
    // Arrange
    let machine = Machine::enrolled();
    let mut system = machine.options(true);
    system.unit_dir = None;
    system.is_root = false;
    let mut own = machine.options(true);
    own.is_root = false;
    own.systemctl = Some(machine.fake_systemctl());
    // Act
    let refused = install(&machine.agent(), &system).unwrap_err();
    let said = install(&machine.agent(), &own).unwrap();
    // Assert
    assert!(
        refused
            .to_string()
            .starts_with("writing the service unit into /etc/systemd/system needs root")
    );
    assert!(machine.unit().exists());
    assert_eq!(machine.calls(), "", "systemctl is not run without root");
    assert!(
        said.iter()
            .any(|line| line.starts_with("systemctl needs root"))
    );
}

#[test]
fn uninstall_disables_removes_and_reloads() {
    // Arrange
    let machine = Machine::enrolled();
    install(&machine.agent(), &machine.options(false)).unwrap();
    let mut options = machine.options(true);
    options.systemctl = Some(machine.fake_systemctl());
    // Act
    uninstall(&options).unwrap();
    let again = uninstall(&options).unwrap();
    // Assert
    assert!(!machine.unit().exists());
    assert_eq!(
        machine.calls(),
        "disable --now stowage.service\ndaemon-reload\n"
    );
    assert!(again[0].ends_with("nothing was changed"));
}
