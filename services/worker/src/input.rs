//! A job's inputs as engines get them: spooled to temporary files by the runtime as they
//! arrive, read by an engine only when (and if) it uses them, so a worker's memory does not
//! grow with the number or size of a job's inputs. A file is removed when the last handle to
//! it is dropped, which is when the attempt ends, however it ends.

use std::io;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::engine::EngineError;

/// One input, in the order the job listed it. Cloning shares the file.
#[derive(Clone)]
pub struct Input {
    /// The URL or bucket key it came from, for error messages.
    pub source: String,
    body: Body,
}

#[derive(Clone)]
enum Body {
    /// The runtime's: a temporary file, removed when the last clone is dropped.
    File {
        path: Arc<tempfile::TempPath>,
        len: u64,
    },
    /// Made in memory, for engines run outside the runtime (tests, benchmarks).
    Memory(Bytes),
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input")
            .field("source", &self.source)
            .field("len", &self.len())
            .finish()
    }
}

impl Input {
    /// An input held in memory.
    pub fn from_bytes(source: impl Into<String>, bytes: impl Into<Bytes>) -> Self {
        Self {
            source: source.into(),
            body: Body::Memory(bytes.into()),
        }
    }

    /// Its size in bytes.
    pub fn len(&self) -> u64 {
        match &self.body {
            Body::File { len, .. } => *len,
            Body::Memory(bytes) => bytes.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The file holding it, for tools that read files themselves; `None` for an input made in
    /// memory. Valid while this input (or a clone) lives.
    pub fn path(&self) -> Option<&Path> {
        match &self.body {
            Body::File { path, .. } => Some(path),
            Body::Memory(_) => None,
        }
    }

    /// Reads it whole. Engines call this for the inputs they use, when they use them.
    pub async fn read(&self) -> Result<Bytes, EngineError> {
        match &self.body {
            Body::File { path, .. } => tokio::fs::read(&***path)
                .await
                .map(Bytes::from)
                .map_err(|err| self.unreadable(&err)),
            Body::Memory(bytes) => Ok(bytes.clone()),
        }
    }

    /// [`Input::read`] for blocking threads (`spawn_blocking`), where decoding happens.
    pub fn read_blocking(&self) -> Result<Bytes, EngineError> {
        match &self.body {
            Body::File { path, .. } => std::fs::read(&***path)
                .map(Bytes::from)
                .map_err(|err| self.unreadable(&err)),
            Body::Memory(bytes) => Ok(bytes.clone()),
        }
    }

    /// The worker's own disk failed, not the job: another attempt may succeed.
    fn unreadable(&self, err: &io::Error) -> EngineError {
        EngineError::retryable(
            "input_unreadable",
            format!("{}: reading the fetched input: {err}", self.source),
        )
    }
}

/// How much of an input's start is kept in memory while it is spooled, to sniff its type and
/// read its image header for the kept-input record (a JPEG's frame header can follow 64 KiB
/// of EXIF, and more in other segments).
const HEAD: usize = 1024 * 1024;

/// An input being written to its temporary file, hashed as it goes. Dropped before
/// [`Spool::finish`] (a failure, a cancelled attempt), it removes its file.
pub(crate) struct Spool {
    file: tokio::fs::File,
    path: tempfile::TempPath,
    hasher: Sha256,
    head: Vec<u8>,
    len: u64,
}

/// A spooled input and what was learnt while writing it.
pub(crate) struct Spooled {
    pub input: Input,
    pub sha256: String,
    /// The first bytes, up to [`HEAD`].
    pub head: Vec<u8>,
}

impl Spool {
    /// A new file in the system's temporary folder (`TMPDIR`), named `atelier-input-*`.
    pub fn create() -> io::Result<Self> {
        let (file, path) = tempfile::Builder::new()
            .prefix("atelier-input-")
            .tempfile()?
            .into_parts();
        Ok(Self {
            file: tokio::fs::File::from_std(file),
            path,
            hasher: Sha256::new(),
            head: Vec::new(),
            len: 0,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub async fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let room = HEAD.saturating_sub(self.head.len()).min(chunk.len());
        self.head.extend_from_slice(&chunk[..room]);
        self.hasher.update(chunk);
        self.len += chunk.len() as u64;
        self.file.write_all(chunk).await
    }

    /// Closes the file and hands it over as the input from `source`.
    pub async fn finish(mut self, source: impl Into<String>) -> io::Result<Spooled> {
        self.file.flush().await?;
        drop(self.file);
        Ok(Spooled {
            input: Input {
                source: source.into(),
                body: Body::File {
                    path: Arc::new(self.path),
                    len: self.len,
                },
            },
            sha256: hex::encode(self.hasher.finalize()),
            head: self.head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spooled_input_reads_back_and_its_file_goes_with_the_last_handle() {
        let mut spool = Spool::create().unwrap();
        let chunk = vec![7u8; 700 * 1024];
        spool.write(&chunk).await.unwrap();
        spool.write(&chunk).await.unwrap();
        assert_eq!(spool.len(), 1400 * 1024);
        let spooled = spool.finish("https://example.com/a.png").await.unwrap();
        assert_eq!(spooled.head.len(), HEAD);
        assert_eq!(
            spooled.sha256,
            hex::encode(Sha256::digest([chunk.as_slice(), &chunk].concat()))
        );
        let input = spooled.input;
        let path = input.path().unwrap().to_owned();
        assert_eq!(input.len(), 1400 * 1024);
        assert_eq!(input.read().await.unwrap().len(), 1400 * 1024);
        assert_eq!(input.read_blocking().unwrap()[..], chunk[..].repeat(2)[..]);
        let clone = input.clone();
        drop(input);
        assert!(path.exists(), "a clone still holds it");
        drop(clone);
        assert!(!path.exists(), "removed with the last handle");
    }

    #[tokio::test]
    async fn an_unfinished_spool_removes_its_file() {
        let mut spool = Spool::create().unwrap();
        spool.write(b"partial").await.unwrap();
        let path = spool.path.to_path_buf();
        assert!(path.exists());
        drop(spool);
        assert!(!path.exists());
    }

    #[test]
    fn inputs_in_memory_read_as_they_are() {
        let input = Input::from_bytes("a.png", &b"bytes"[..]);
        assert_eq!(input.len(), 5);
        assert!(input.path().is_none());
        assert_eq!(&input.read_blocking().unwrap()[..], b"bytes");
        assert!(format!("{input:?}").contains("len: 5"));
    }

    #[test]
    fn a_vanished_file_is_a_retryable_failure_naming_the_input() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let path = file.into_temp_path();
        std::fs::remove_file(&path).unwrap();
        let input = Input {
            source: "https://example.com/a.png".to_owned(),
            body: Body::File {
                path: Arc::new(path),
                len: 1,
            },
        };
        let err = input.read_blocking().unwrap_err();
        assert!(err.retryable);
        assert_eq!(err.code, "input_unreadable");
        assert!(err.message.starts_with("https://example.com/a.png: "));
    }
}
