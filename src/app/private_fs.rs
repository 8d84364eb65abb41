//! Files and folders only the cch user may read: the data folder holds provider secrets (in the
//! SQLite database), the admin token and spooled request logs, so it is created 0700 and its
//! files 0600, and an existing install is tightened to those modes at start.

use std::path::Path;

/// Mode of the data folder and its sub-folders.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file cch creates in the data folder.
pub const FILE_MODE: u32 = 0o600;
/// The sticky bit: set on shared folders such as `/tmp`.
#[cfg(unix)]
const STICKY: u32 = 0o1000;

/// Creates `dir` (and missing parents) with mode 0700 when it is missing; an existing folder is
/// left as it is. For folders named by the admin that may be shared (the folder of a SQLite
/// `DSN`): the files cch puts there are 0600 whatever the folder's mode.
pub fn create_dir_if_missing(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Creates `dir` (and missing parents) with mode 0700, and tightens it to 0700 if it existed
/// (cch's own data folder), unless it is a sticky shared folder such as `/tmp`.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)?;
        // A shared folder with the sticky bit (`/tmp`) belongs to everyone: never tighten it.
        if std::fs::metadata(dir)?.permissions().mode() & STICKY != 0 {
            return Ok(());
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

/// Open options that create a missing file with mode 0600.
pub fn private_file_options() -> std::fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options
}

/// Creates `file` empty with mode 0600 if it is missing, and tightens it to 0600 if it exists.
pub fn ensure_private_file(file: &Path) -> std::io::Result<()> {
    private_file_options()
        .create(true)
        .append(true)
        .open(file)?;
    tighten_file(file)
}

/// Sets an existing file to mode 0600; a missing file is not an error.
pub fn tighten_file(file: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::set_permissions(file, std::fs::Permissions::from_mode(FILE_MODE)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_and_existing_paths_end_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700, "an existing folder is tightened");

        let file = dir.join("f");
        ensure_private_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        ensure_private_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600, "an existing file is tightened");
        tighten_file(&dir.join("missing")).unwrap();
    }

    #[test]
    fn shared_folders_are_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        create_private_dir(&shared).unwrap();
        assert_eq!(
            std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777,
            0o1777,
            "a sticky shared folder (like /tmp) is never tightened"
        );
        let named = root.path().join("named");
        std::fs::create_dir(&named).unwrap();
        std::fs::set_permissions(&named, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir_if_missing(&named).unwrap();
        assert_eq!(mode(&named), 0o755, "an existing folder keeps its mode");
        let fresh = root.path().join("fresh/db");
        create_dir_if_missing(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
    }
}
