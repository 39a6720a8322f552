//! A fake Volcengine Ark: Seedance tasks (`/api/v3/contents/generations/tasks`: create, get,
//! delete) that follow a scripted timeline and POST every status change to `callback_url`,
//! Seedream (`/api/v3/images/generations`), and `/files/*` serving the outputs.

mod tasks;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

use super::server::{FakeServer, Fault, Faults, Step, TaskPlan, Timeline, mp4, png, render};

/// How a task ends once its timeline is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArkOutcome {
    Succeed,
    /// `status: failed` with this `error.code` (e.g. `OutputVideoSensitiveContentDetected`).
    Fail {
        code: String,
        message: String,
    },
    /// `status: expired`, as after `execution_expires_after`.
    Expire,
}

pub type ArkPlan = TaskPlan<ArkOutcome>;

/// One queued poll, then one running poll, then success.
pub fn quick_success() -> ArkPlan {
    TaskPlan {
        queued: Step::Polls(1),
        running: Step::Polls(1),
        outcome: ArkOutcome::Succeed,
    }
}

#[derive(Debug)]
pub(super) struct Task {
    body: Value,
    plan: ArkPlan,
    timeline: Timeline,
    cancelled: bool,
}

#[derive(Debug)]
pub struct Shared {
    key: String,
    base: Mutex<String>,
    /// Played before the next create (video or Seedream).
    pub submit_faults: Faults,
    /// Played before the next task read.
    pub poll_faults: Faults,
    submits: AtomicUsize,
    polls: AtomicUsize,
    next_id: AtomicUsize,
    plans: Mutex<VecDeque<ArkPlan>>,
    tasks: Mutex<HashMap<String, Task>>,
    outputs_expired: Mutex<bool>,
    /// Seedream: how many images succeed and how many fail moderation, per request.
    seedream: Mutex<(usize, usize)>,
    duplicate_callbacks: Mutex<bool>,
    callbacks_sent: AtomicUsize,
    http: reqwest::Client,
}

#[derive(Debug)]
pub struct FakeArk {
    pub server: FakeServer,
    pub state: Arc<Shared>,
}

impl FakeArk {
    pub async fn start(key: &str) -> Self {
        let state = Arc::new(Shared {
            key: key.to_owned(),
            base: Mutex::new(String::new()),
            submit_faults: Faults::default(),
            poll_faults: Faults::default(),
            submits: AtomicUsize::new(0),
            polls: AtomicUsize::new(0),
            next_id: AtomicUsize::new(1),
            plans: Mutex::new(VecDeque::new()),
            tasks: Mutex::new(HashMap::new()),
            outputs_expired: Mutex::new(false),
            seedream: Mutex::new((1, 0)),
            duplicate_callbacks: Mutex::new(false),
            callbacks_sent: AtomicUsize::new(0),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("client"),
        });
        let router = Router::new()
            .route("/api/v3/contents/generations/tasks", post(tasks::create))
            .route(
                "/api/v3/contents/generations/tasks/{id}",
                get(tasks::read).delete(tasks::delete),
            )
            .route("/api/v3/images/generations", post(seedream))
            .route("/files/{name}", get(file))
            .with_state(Arc::clone(&state));
        let server = FakeServer::start(router).await;
        *state.base.lock().unwrap() = server.url("");
        Self { server, state }
    }

    /// The value for `ATELIER_ARK_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.server.url("/api/v3")
    }

    /// The timeline of the next created task; without one, [`quick_success`].
    pub fn push_plan(&self, plan: ArkPlan) {
        self.state.plans.lock().unwrap().push_back(plan);
    }

    pub fn fail_next_submit(&self, fault: Fault) {
        self.state.submit_faults.push(fault);
    }

    pub fn fail_next_poll(&self, fault: Fault) {
        self.state.poll_faults.push(fault);
    }

    /// Creates received (video and Seedream), faults and dropped connections included.
    pub fn submits(&self) -> usize {
        self.state.submits.load(Ordering::SeqCst)
    }

    pub fn polls(&self) -> usize {
        self.state.polls.load(Ordering::SeqCst)
    }

    /// The body of a created task, by id.
    pub fn task_body(&self, id: &str) -> Option<Value> {
        self.state
            .tasks
            .lock()
            .unwrap()
            .get(id)
            .map(|t| t.body.clone())
    }

    /// Output URLs answer 404 from now on, as after their 24 h lifetime.
    pub fn expire_outputs(&self) {
        *self.state.outputs_expired.lock().unwrap() = true;
    }

    pub fn set_seedream(&self, succeeded: usize, refused: usize) {
        *self.state.seedream.lock().unwrap() = (succeeded, refused);
    }

    /// Sends every callback twice, as an at-least-once sender may.
    pub fn duplicate_callbacks(&self, on: bool) {
        *self.state.duplicate_callbacks.lock().unwrap() = on;
    }

    pub fn callbacks_sent(&self) -> usize {
        self.state.callbacks_sent.load(Ordering::SeqCst)
    }
}

pub(super) type St = State<Arc<Shared>>;

pub(super) fn error(status: u16, code: &str, message: &str, kind: &str) -> (u16, Value) {
    let message = format!("{message} Request id: 021fake");
    (
        status,
        json!({"error": {"code": code, "message": message, "param": "", "type": kind}}),
    )
}

/// The exact shapes from providers.md §2.7.
pub(super) fn shape(fault: &Fault) -> (u16, Value) {
    match fault {
        Fault::RateLimited { .. } => error(
            429,
            "RateLimitExceeded.EndpointRPMExceeded",
            "The request has exceeded the RPM limit.",
            "TooManyRequests",
        ),
        Fault::ServerError { status } => error(
            *status,
            "InternalServiceError",
            "The service encountered an unexpected internal error.",
            "InternalServerError",
        ),
        Fault::ContentRejected => error(
            400,
            "InputTextSensitiveContentDetected",
            "The request failed because the input text may contain sensitive information.",
            "BadRequest",
        ),
        Fault::InsufficientBalance => error(
            403,
            "AccountOverdueError",
            "The request failed because your account has an overdue balance.",
            "Forbidden",
        ),
        Fault::DropConnection | Fault::Raw { .. } => (500, Value::Null),
    }
}

pub(super) fn authorized(state: &Shared, headers: &HeaderMap) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    (auth != format!("Bearer {}", state.key)).then(|| {
        let (status, body) = error(
            401,
            "AuthenticationError",
            "The API key or AK/SK in the request is missing or invalid.",
            "Unauthorized",
        );
        (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
    })
}

async fn seedream(
    State(state): St,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(denied) = authorized(&state, &headers) {
        return denied;
    }
    state.submits.fetch_add(1, Ordering::SeqCst);
    if let Some(fault) = state.submit_faults.next() {
        return render(fault, shape);
    }
    let (ok, refused) = *state.seedream.lock().unwrap();
    let base = state.base.lock().unwrap().clone();
    let as_url = body["response_format"] != "b64_json";
    let mut data: Vec<Value> = (0..ok)
        .map(|i| match as_url {
            true => json!({"url": format!("{base}/files/seedream-{i}.png"), "size": "2048x2048"}),
            false => json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(png(16, 16)), "size": "2048x2048"}),
        })
        .collect();
    data.extend((0..refused).map(|_| json!({"error": {"code": "OutputImageSensitiveContentDetected", "message": "The generated image may contain sensitive content."}})));
    axum::Json(json!({
        "model": body["model"], "created": 1757156493, "data": data,
        "usage": {"generated_images": ok, "output_tokens": 16384 * ok, "total_tokens": 16384 * ok},
    }))
    .into_response()
}

async fn file(State(state): St, Path(name): Path<String>) -> Response {
    if *state.outputs_expired.lock().unwrap() {
        return (StatusCode::NOT_FOUND, "NoSuchKey").into_response();
    }
    if name.ends_with(".mp4") {
        ([("content-type", "video/mp4")], mp4()).into_response()
    } else {
        ([("content-type", "image/png")], png(16, 16)).into_response()
    }
}
