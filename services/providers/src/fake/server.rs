//! What every fake shares: the server lifecycle, a queue of scripted faults, task timelines,
//! and sample media.

use std::collections::VecDeque;
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A running fake. Dropping it shuts the server down.
#[derive(Debug)]
pub struct FakeServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl FakeServer {
    /// Serves `router` on `127.0.0.1:0`.
    pub async fn start(router: Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a fake provider on 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            addr,
            shutdown: Some(tx),
        }
    }

    /// `http://127.0.0.1:<port>` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A failure to play instead of the next answer. Each fake renders the named ones in its
/// provider's exact error shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// 429 with `Retry-After: <secs>`.
    RateLimited { retry_after_secs: u64 },
    /// A 5xx answer.
    ServerError { status: u16 },
    /// The provider's moderation refuses the request.
    ContentRejected,
    /// The account has no balance or quota left.
    InsufficientBalance,
    /// The request is read in full, then the connection is closed with no answer: the
    /// "outcome unknown" case (the submit still counts).
    DropConnection,
    /// Any answer at all.
    Raw {
        status: u16,
        body: serde_json::Value,
        headers: Vec<(String, String)>,
    },
}

/// Scripted faults, consumed one per request in order.
#[derive(Debug, Default)]
pub struct Faults(Mutex<VecDeque<Fault>>);

impl Faults {
    pub fn push(&self, fault: Fault) {
        self.0.lock().unwrap().push_back(fault);
    }

    /// `n` copies of `fault`: a burst.
    pub fn push_n(&self, fault: Fault, n: usize) {
        let mut queue = self.0.lock().unwrap();
        queue.extend(std::iter::repeat_n(fault, n));
    }

    pub fn next(&self) -> Option<Fault> {
        self.0.lock().unwrap().pop_front()
    }
}

/// Renders a fault; `shape` gives the provider's body for a named fault (status, body).
pub(crate) fn render(fault: Fault, shape: impl Fn(&Fault) -> (u16, serde_json::Value)) -> Response {
    let (status, body, headers) = match fault {
        Fault::DropConnection => drop_connection(),
        Fault::Raw {
            status,
            body,
            headers,
        } => (status, body, headers),
        Fault::RateLimited { retry_after_secs } => {
            let (status, body) = shape(&fault);
            (
                status,
                body,
                vec![("retry-after".to_owned(), retry_after_secs.to_string())],
            )
        }
        other => {
            let (status, body) = shape(&other);
            (status, body, Vec::new())
        }
    };
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(name),
            axum::http::HeaderValue::try_from(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Unwinds the connection's task without an answer, so the client sees the connection close
/// after its request was read. `resume_unwind` skips the panic hook: nothing is printed.
pub(crate) fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("fake provider drops the connection"))
}

/// How long a task stays in one state: a number of status reads (deterministic, for unit
/// tests) or wall time (for end-to-end runs with real workers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Polls(u32),
    For(Duration),
}

/// A task's timeline: queued, then running, then the outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskPlan<O> {
    pub queued: Step,
    pub running: Step,
    pub outcome: O,
}

/// Where a task is on its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Queued,
    Running,
    Done,
}

/// Tracks one task's progress along its plan.
#[derive(Debug, Clone)]
pub(crate) struct Timeline {
    queued: Step,
    running: Step,
    started: Instant,
    polls: u32,
    /// Set when the task is cancelled or otherwise ends early.
    pub frozen: Option<Phase>,
}

impl Timeline {
    pub fn new<O>(plan: &TaskPlan<O>) -> Self {
        Self {
            queued: plan.queued,
            running: plan.running,
            started: Instant::now(),
            polls: 0,
            frozen: None,
        }
    }

    /// The phase now, counting this call as one status read.
    pub fn observe(&mut self) -> Phase {
        self.polls = self.polls.saturating_add(1);
        self.peek()
    }

    /// The phase now, without counting a read.
    pub fn peek(&self) -> Phase {
        if let Some(phase) = self.frozen {
            return phase;
        }
        let elapsed = self.started.elapsed();
        let past = |step: Step, polls_before: u32, time_before: Duration| match step {
            Step::Polls(n) => self.polls > polls_before + n,
            Step::For(d) => elapsed >= time_before + d,
        };
        let queued_polls = match self.queued {
            Step::Polls(n) => n,
            Step::For(_) => 0,
        };
        let queued_time = match self.queued {
            Step::For(d) => d,
            Step::Polls(_) => Duration::ZERO,
        };
        if !past(self.queued, 0, Duration::ZERO) {
            Phase::Queued
        } else if !past(self.running, queued_polls, queued_time) {
            Phase::Running
        } else {
            Phase::Done
        }
    }
}

/// A valid PNG of the given size, for outputs.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 11) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("encode png");
    out.into_inner()
}

/// The start of an MP4 (an `ftyp` box with the `isom` brand and an empty `mdat`): enough for
/// magic-byte checks, not for playback.
pub fn mp4() -> Vec<u8> {
    let mut bytes = b"\0\0\0\x18ftypisom\0\0\x02\0isomiso2".to_vec();
    bytes.extend_from_slice(b"\0\0\0\x08mdat");
    bytes
}
