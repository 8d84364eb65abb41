//! Where the secret key comes from: `CCH_SECRET_KEY` (32 bytes, base64), or a key generated
//! once and kept in the data folder next to the admin token (`secret_key`, mode 0600).
//! Decrypt-only keys: `CCH_SECRET_KEY_OLD` (comma-separated) and, while a rotation is under
//! way, `secret_key.next`.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::secret_box::{KEY_BYTES, Keyring, decode_key, generate_key};

/// The generated key's file in the data folder.
pub const KEY_FILE: &str = "secret_key";
/// A rotation's new key, until every value is sealed with it.
pub const NEXT_KEY_FILE: &str = "secret_key.next";

/// Where the sealing key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `CCH_SECRET_KEY`.
    Environment,
    /// Generated now and saved at this path.
    Generated(PathBuf),
    /// Loaded from this file.
    Loaded(PathBuf),
}

/// The configured keys.
pub struct ResolvedKeys {
    /// The sealing key.
    pub primary: [u8; KEY_BYTES],
    /// Keys that only open (old keys, a rotation's next key).
    pub others: Vec<[u8; KEY_BYTES]>,
    /// Where the sealing key came from.
    pub origin: KeyOrigin,
}

impl ResolvedKeys {
    /// The keyring these keys make.
    pub fn keyring(&self) -> Keyring {
        Keyring::new(&self.primary, &self.others)
    }
}

fn read_key_file(path: &Path) -> anyhow::Result<Option<[u8; KEY_BYTES]>> {
    match std::fs::read_to_string(path) {
        Ok(text) => decode_key(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{} does not hold a secret key: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes a new key file (mode 0600, never replacing an existing file).
pub fn write_key_file(path: &Path, key_b64: &str) -> anyhow::Result<()> {
    let mut file = crate::app::private_fs::private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(key_b64.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    Ok(())
}

/// The keys from the environment values given and the data folder.
pub fn resolve(
    configured: Option<&str>,
    old: &[String],
    data_dir: &Path,
) -> anyhow::Result<ResolvedKeys> {
    let mut others = Vec::new();
    for (i, k) in old.iter().enumerate() {
        others.push(
            decode_key(k)
                .map_err(|e| anyhow::anyhow!("CCH_SECRET_KEY_OLD entry {}: {e}", i + 1))?,
        );
    }
    if let Some(next) = read_key_file(&data_dir.join(NEXT_KEY_FILE))? {
        others.push(next);
    }
    if let Some(k) = configured {
        let primary = decode_key(k).map_err(|e| {
            anyhow::anyhow!("CCH_SECRET_KEY must be 32 random bytes in base64: {e}")
        })?;
        return Ok(ResolvedKeys {
            primary,
            others,
            origin: KeyOrigin::Environment,
        });
    }
    let path = data_dir.join(KEY_FILE);
    if let Some(primary) = read_key_file(&path)? {
        return Ok(ResolvedKeys {
            primary,
            others,
            origin: KeyOrigin::Loaded(path),
        });
    }
    crate::app::private_fs::create_private_dir(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let generated = generate_key();
    write_key_file(&path, &generated)?;
    let primary = decode_key(&generated).map_err(|e| anyhow::anyhow!(e))?;
    Ok(ResolvedKeys {
        primary,
        others,
        origin: KeyOrigin::Generated(path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_with_private_mode_then_loads() {
        let dir = tempfile::tempdir().unwrap();
        let a = resolve(None, &[], dir.path()).unwrap();
        assert!(matches!(a.origin, KeyOrigin::Generated(_)));
        let b = resolve(None, &[], dir.path()).unwrap();
        assert!(matches!(b.origin, KeyOrigin::Loaded(_)));
        assert_eq!(a.primary, b.primary);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn environment_keys_are_validated() {
        let dir = tempfile::tempdir().unwrap();
        let k = generate_key();
        let r = resolve(Some(&k), &[generate_key()], dir.path()).unwrap();
        assert_eq!(r.origin, KeyOrigin::Environment);
        assert_eq!(r.others.len(), 1);
        assert!(
            !dir.path().join(KEY_FILE).exists(),
            "no file when the key is given"
        );
        let e = resolve(Some("short"), &[], dir.path()).err().unwrap();
        assert!(e.to_string().contains("CCH_SECRET_KEY"), "{e}");
        let e = resolve(Some(&k), &["nope".into()], dir.path())
            .err()
            .unwrap();
        assert!(e.to_string().contains("CCH_SECRET_KEY_OLD"), "{e}");
    }
}
