//! The partner's side, on loopback: a webhook receiver that records raw requests and
//! answers from a script, and a file server for job inputs that can be slow or flaky.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};

/// One request as the receiver saw it: headers and the raw body.
#[derive(Clone, Debug)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("webhook body is json")
    }
}

/// How a served file behaves.
#[derive(Clone, Debug)]
pub struct File {
    pub bytes: Bytes,
    /// Answer this status this many times before serving the file.
    pub fail_first: u32,
    pub fail_status: u16,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Answer `302 Found` with this `Location` instead.
    pub redirect_to: Option<String>,
}

impl File {
    pub fn plain(bytes: Vec<u8>) -> Self {
        Self {
            bytes: bytes.into(),
            fail_first: 0,
            fail_status: 503,
            delay: Duration::ZERO,
            redirect_to: None,
        }
    }
}

#[derive(Default)]
struct PeerState {
    received: Mutex<Vec<Received>>,
    /// Statuses to answer webhooks with, in order; 200 once empty.
    script: Mutex<VecDeque<u16>>,
    files: Mutex<HashMap<String, File>>,
    /// How many times each file was served whole (2xx).
    served: Mutex<HashMap<String, u32>>,
}

#[derive(Clone)]
pub struct Peer {
    pub base: String,
    state: Arc<PeerState>,
}

impl Peer {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1").await
    }

    /// A peer on another loopback address (127.0.0.0/8), to stand for another host.
    pub async fn start_on(ip: &str) -> Self {
        let state = Arc::new(PeerState::default());
        let app = Router::new()
            .route("/hook", post(hook))
            .route("/files/{name}", get(file))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(format!("{ip}:0"))
            .await
            .expect("binding the peer");
        let base = format!("http://{}", listener.local_addr().expect("peer address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base, state }
    }

    pub fn hook_url(&self) -> String {
        format!("{}/hook", self.base)
    }

    pub fn serve(&self, name: &str, file: File) -> String {
        self.state
            .files
            .lock()
            .expect("peer lock")
            .insert(name.to_owned(), file);
        format!("{}/files/{name}", self.base)
    }

    /// How many times `name` was served whole.
    pub fn served(&self, name: &str) -> u32 {
        let served = self.state.served.lock().expect("peer lock");
        served.get(name).copied().unwrap_or(0)
    }

    pub fn script_hook(&self, statuses: &[u16]) {
        self.state
            .script
            .lock()
            .expect("peer lock")
            .extend(statuses.iter().copied());
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("peer lock").clone()
    }

    /// The webhooks received for one job.
    pub fn for_job(&self, job_id: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.json()["job"]["id"] == job_id)
            .collect()
    }
}

async fn hook(State(state): State<Arc<PeerState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    state.received.lock().expect("peer lock").push(Received {
        headers,
        body,
        at: std::time::Instant::now(),
    });
    let status = state
        .script
        .lock()
        .expect("peer lock")
        .pop_front()
        .unwrap_or(200);
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

async fn file(State(state): State<Arc<PeerState>>, Path(name): Path<String>) -> Response {
    let file = {
        let mut files = state.files.lock().expect("peer lock");
        let Some(file) = files.get_mut(&name) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let snapshot = file.clone();
        file.fail_first = file.fail_first.saturating_sub(1);
        snapshot
    };
    tokio::time::sleep(file.delay).await;
    if let Some(location) = file.redirect_to {
        return (StatusCode::FOUND, [("location", location)]).into_response();
    }
    if file.fail_first > 0 {
        return StatusCode::from_u16(file.fail_status)
            .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
            .into_response();
    }
    *state
        .served
        .lock()
        .expect("peer lock")
        .entry(name)
        .or_default() += 1;
    file.bytes.into_response()
}
