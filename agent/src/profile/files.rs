//! Writing configuration files atomically, secrets with mode 0600 from the
//! first byte.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file created with `mode`,
/// fsynced and renamed into place, then fsyncs the directory.
///
/// # Errors
///
/// Names the file and the failing step.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no parent directory", path.display()))?;
    std::fs::create_dir_all(dir)
        .map_err(|error| anyhow::anyhow!("unable to create {} - {error}", dir.display()))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| anyhow::anyhow!("{} has no file name", path.display()))?;
    let temp = dir.join(format!(".{}.tmp", file_name.to_string_lossy()));
    let _ = std::fs::remove_file(&temp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .map_err(|error| anyhow::anyhow!("unable to create {} - {error}", temp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|error| anyhow::anyhow!("unable to write {} - {error}", temp.display()))?;
    drop(file);
    std::fs::rename(&temp, path).map_err(|error| {
        anyhow::anyhow!("unable to move {} into place - {error}", path.display())
    })?;
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|error| anyhow::anyhow!("unable to sync {} - {error}", dir.display()))
}

/// [`write_atomic`] with mode 0600: only the owner may read it.
///
/// # Errors
///
/// Names the file and the failing step.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, bytes, 0o600)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_private_file_is_created_0600_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/secret");
        write_private(&path, b"first").unwrap();
        write_private(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }
}
