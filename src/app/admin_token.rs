//! The admin token: taken from `ADMIN_TOKEN`, or generated once and kept in the data folder
//! (mode 0600) so later starts reuse it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the generated token inside the data folder.
pub const TOKEN_FILE: &str = "admin_token";

/// Where the token came from, so startup can tell the operator once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `ADMIN_TOKEN` was set.
    Environment,
    /// Generated now and saved at this path.
    Generated(PathBuf),
    /// Loaded from a file generated on an earlier start.
    Loaded(PathBuf),
}

/// Returns the configured token, or loads/generates the one in `data_dir`.
pub fn resolve(
    configured: Option<&str>,
    data_dir: &Path,
) -> std::io::Result<(String, TokenSource)> {
    if let Some(t) = configured {
        return Ok((t.to_string(), TokenSource::Environment));
    }
    let path = data_dir.join(TOKEN_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => {
            return Ok((s.trim().to_string(), TokenSource::Loaded(path)));
        }
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} is empty or too short; delete it to generate a new token",
                    path.display()
                ),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    super::private_fs::create_private_dir(data_dir)?;
    let token = generate();
    let mut file = super::private_fs::private_file_options()
        .write(true)
        .create_new(true)
        .open(&path)?;
    file.write_all(token.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok((token, TokenSource::Generated(path)))
}

/// A 48-character base62 token (≈ 285 bits).
fn generate() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    (0..48)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let (t1, s1) = resolve(None, dir.path()).unwrap();
        assert!(matches!(s1, TokenSource::Generated(_)));
        assert_eq!(t1.len(), 48);
        let (t2, s2) = resolve(None, dir.path()).unwrap();
        assert_eq!(t1, t2);
        assert!(matches!(s2, TokenSource::Loaded(_)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(TOKEN_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (t3, s3) = resolve(Some("from-env-123"), dir.path()).unwrap();
        assert_eq!(
            (t3.as_str(), s3),
            ("from-env-123", TokenSource::Environment)
        );
    }
}
