//! A private temporary directory per clip, removed when dropped.
//!
//! Created with mode 0700 under a fresh name that must not exist yet, so nothing else on a
//! shared `/tmp` can plant a file or symlink where ffmpeg writes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::VideoError;

static NEXT: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(parent: &Path) -> Result<Self, VideoError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "atelier-video-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = parent.join(name);
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&path)
            .map_err(|err| VideoError::io("creating a temporary directory", err))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(error = %err, path = %self.0.display(), "temporary directory left behind");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_fresh_private_and_removed() {
        let a = ScratchDir::new(&std::env::temp_dir()).unwrap();
        let b = ScratchDir::new(&std::env::temp_dir()).unwrap();
        assert_ne!(a.path(), b.path());
        std::fs::write(a.path().join("x"), b"x").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(a.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let path = a.path().to_owned();
        drop(a);
        assert!(!path.exists());
    }
}
