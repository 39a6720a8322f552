//! The bounds on a multipart upload's body, enforced on the byte stream before the multipart
//! parser sees it (docs/hardening.md, H1).
//!
//! The parser (multer, under axum's `Multipart`) keeps in memory every byte it has not yet
//! handed out as part of a field: a preamble with no boundary, or part headers that never end,
//! grow its buffer without limit. So two things are counted here: the whole body, against the
//! upload limit, and the bytes fed to the parser but not yet handed out as file data (framing,
//! part headers, skipped fields), against a small budget. Either bound, crossed, ends the stream
//! with an error and says which bound it was.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use futures::Stream;

/// Bytes fed to the parser and not handed out as file data: boundaries, part headers and
/// fields that are not files. A request needs a few hundred bytes of these per file.
pub const FRAMING_BUDGET: u64 = 1024 * 1024;

/// Which bound a body crossed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Crossed {
    Whole,
    Framing,
}

/// Shared between the body stream and the handler that reads the fields.
#[derive(Debug, Default)]
pub struct Meter {
    fed: AtomicU64,
    handed_out: AtomicU64,
    /// 0: no bound crossed; 1: whole body; 2: framing.
    crossed: AtomicU8,
}

impl Meter {
    /// Counts file data the handler took from the parser.
    pub fn handed_out(&self, n: usize) {
        self.handed_out.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn crossed(&self) -> Option<Crossed> {
        match self.crossed.load(Ordering::Relaxed) {
            1 => Some(Crossed::Whole),
            2 => Some(Crossed::Framing),
            _ => None,
        }
    }

    /// Feeds `n` more bytes; `Some` when that crosses a bound.
    fn feed(&self, n: usize, whole_limit: u64) -> Option<Crossed> {
        let fed = self.fed.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        let unread = fed.saturating_sub(self.handed_out.load(Ordering::Relaxed));
        let crossed = if fed > whole_limit {
            Some(Crossed::Whole)
        } else if unread > FRAMING_BUDGET {
            Some(Crossed::Framing)
        } else {
            None
        };
        if let Some(which) = crossed {
            let code = if which == Crossed::Whole { 1 } else { 2 };
            let _ = self
                .crossed
                .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
        }
        crossed
    }
}

/// A body stream that ends with an error once either bound is crossed, and stays ended.
pub struct Bounded<S> {
    inner: S,
    meter: Arc<Meter>,
    whole_limit: u64,
}

impl<S> Bounded<S> {
    pub fn new(inner: S, meter: Arc<Meter>, whole_limit: u64) -> Self {
        Self {
            inner,
            meter,
            whole_limit,
        }
    }
}

impl<S, E> Stream for Bounded<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<axum::BoxError>,
{
    type Item = Result<Bytes, axum::BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(which) = self.meter.crossed() {
            return Poll::Ready(Some(Err(format!("upload bound crossed: {which:?}").into())));
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => match self.meter.feed(chunk.len(), self.whole_limit) {
                Some(which) => {
                    Poll::Ready(Some(Err(format!("upload bound crossed: {which:?}").into())))
                }
                None => Poll::Ready(Some(Ok(chunk))),
            },
            Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err.into()))),
            other => other.map(|o| o.map(|r| r.map_err(Into::into))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn chunks(n: usize, size: usize) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Unpin {
        futures::stream::iter((0..n).map(move |_| Ok(Bytes::from(vec![0u8; size]))))
    }

    #[tokio::test]
    async fn bytes_never_handed_out_are_cut_at_the_framing_budget() {
        let meter = Arc::new(Meter::default());
        let mut body = Bounded::new(chunks(1000, 64 * 1024), meter.clone(), u64::MAX);
        let mut read = 0;
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len();
        }
        assert_eq!(read as u64, FRAMING_BUDGET);
        assert_eq!(meter.crossed(), Some(Crossed::Framing));
        assert!(body.next().await.is_some_and(|r| r.is_err()), "stays ended");
    }

    #[tokio::test]
    async fn file_data_handed_out_counts_only_against_the_whole_limit() {
        let meter = Arc::new(Meter::default());
        let mut body = Bounded::new(chunks(100, 64 * 1024), meter.clone(), 4 * 1024 * 1024);
        let mut read = 0;
        while let Some(Ok(chunk)) = body.next().await {
            read += chunk.len();
            meter.handed_out(chunk.len());
        }
        assert_eq!(read, 4 * 1024 * 1024);
        assert_eq!(meter.crossed(), Some(Crossed::Whole));
    }
}
