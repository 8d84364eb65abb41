//! A small tmpfs for disk-full tests (needs root to mount; tests print SKIP otherwise).

use std::path::{Path, PathBuf};

/// A small tmpfs mounted for one test; unmounted on drop.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB, or `None` (with a SKIP line) where mounting is not allowed.
    pub fn mount(mib: u32) -> Option<Self> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("SKIP: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(Self { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with one file; returns its path (delete it to free the disk).
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let p = self.dir.path().join("filler");
        let mut f = std::fs::File::create(&p).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.flush();
        p
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
