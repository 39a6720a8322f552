//! A fake Volcengine visual API for Jimeng: `POST /?Action=CVSync2AsyncSubmitTask` and
//! `CVSync2AsyncGetResult`, each request's V4 signature verified (a wrong secret, a body that
//! does not match its hash or a skewed clock get `SignatureDoesNotMatch`), tasks following a
//! scripted timeline, and `/files/*` for URL outputs.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

use super::server::{FakeServer, Fault, Faults, Phase, Step, TaskPlan, Timeline, png, render};
use crate::jimeng::sign;

/// How a task ends once its timeline is over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JimengOutcome {
    Succeed,
    /// `done` with this business code and message (e.g. 50511, `Post Img Risk Not Pass`).
    Fail {
        code: i64,
        message: String,
    },
    /// `expired`: the caller must resubmit.
    Expire,
}

pub type JimengPlan = TaskPlan<JimengOutcome>;

/// Largest clock difference the fake accepts, like the gateway's replay window.
const MAX_SKEW_SECS: i64 = 15 * 60;

#[derive(Debug)]
struct Task {
    req_key: String,
    body: Value,
    plan: JimengPlan,
    timeline: Timeline,
}

#[derive(Debug)]
pub struct Shared {
    access_key: String,
    secret_key: String,
    base: Mutex<String>,
    pub submit_faults: Faults,
    pub poll_faults: Faults,
    submits: AtomicUsize,
    signature_failures: AtomicUsize,
    next_id: AtomicUsize,
    plans: Mutex<VecDeque<JimengPlan>>,
    tasks: Mutex<HashMap<String, Task>>,
    images_per_task: Mutex<usize>,
}

#[derive(Debug)]
pub struct FakeJimeng {
    pub server: FakeServer,
    pub state: Arc<Shared>,
}

impl FakeJimeng {
    /// Starts a fake that accepts requests signed with this key pair.
    pub async fn start(access_key: &str, secret_key: &str) -> Self {
        let state = Arc::new(Shared {
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            base: Mutex::new(String::new()),
            submit_faults: Faults::default(),
            poll_faults: Faults::default(),
            submits: AtomicUsize::new(0),
            signature_failures: AtomicUsize::new(0),
            next_id: AtomicUsize::new(7392616336519610409),
            plans: Mutex::new(VecDeque::new()),
            tasks: Mutex::new(HashMap::new()),
            images_per_task: Mutex::new(1),
        });
        let router = Router::new()
            .route("/", post(action))
            .route("/files/{name}", get(file))
            .with_state(Arc::clone(&state));
        let server = FakeServer::start(router).await;
        *state.base.lock().unwrap() = server.url("");
        Self { server, state }
    }

    /// The value for `ATELIER_JIMENG_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.server.url("/")
    }

    pub fn push_plan(&self, plan: JimengPlan) {
        self.state.plans.lock().unwrap().push_back(plan);
    }

    pub fn fail_next_submit(&self, fault: Fault) {
        self.state.submit_faults.push(fault);
    }

    pub fn fail_next_poll(&self, fault: Fault) {
        self.state.poll_faults.push(fault);
    }

    /// Properly signed submits received, faults and dropped connections included.
    pub fn submits(&self) -> usize {
        self.state.submits.load(Ordering::SeqCst)
    }

    /// Requests refused for their signature.
    pub fn signature_failures(&self) -> usize {
        self.state.signature_failures.load(Ordering::SeqCst)
    }

    /// Images a successful task returns (without `force_single` the real API may return several).
    pub fn set_images_per_task(&self, n: usize) {
        *self.state.images_per_task.lock().unwrap() = n;
    }

    /// The submit body of a task, by id.
    pub fn task_body(&self, id: &str) -> Option<Value> {
        self.state
            .tasks
            .lock()
            .unwrap()
            .get(id)
            .map(|t| t.body.clone())
    }
}

type St = State<Arc<Shared>>;

fn business(status: u16, code: i64, message: &str, data: Value) -> Response {
    let body = json!({
        "code": code, "data": data, "message": message, "request_id": "20240720fake",
        "status": code, "time_elapsed": "104.85ms",
    });
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        axum::Json(body),
    )
        .into_response()
}

fn gateway(status: u16, action: &str, code: &str, message: &str) -> Response {
    let body = json!({"ResponseMetadata": {
        "RequestId": "20240720fake", "Action": action, "Version": crate::jimeng::VERSION,
        "Service": sign::SERVICE, "Region": sign::REGION,
        "Error": {"Code": code, "Message": message},
    }});
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED),
        axum::Json(body),
    )
        .into_response()
}

/// The business shapes of providers.md §5.3; the visual API has no balance code of its own,
/// so an unpaid account is played as the gateway's `AccessDenied` (unconfirmed).
fn shape(fault: &Fault) -> (u16, Value) {
    let body = |code: i64, message: &str| json!({"code": code, "data": null, "message": message, "request_id": "20240720fake", "status": code, "time_elapsed": "1ms"});
    match fault {
        Fault::RateLimited { .. } => (
            429,
            body(50429, "Request Has Reached API Limit, Please Try Later"),
        ),
        Fault::ServerError { status } => (*status, body(50500, "Internal Error")),
        Fault::ContentRejected => (400, body(50412, "Text Risk Not Pass")),
        Fault::InsufficientBalance => (
            403,
            json!({"ResponseMetadata": {"RequestId": "20240720fake", "Service": "cv", "Region": "cn-north-1",
            "Error": {"Code": "AccessDenied", "Message": "the account is in arrears or the service is not activated"}}}),
        ),
        Fault::DropConnection | Fault::Raw { .. } => (500, Value::Null),
    }
}

/// Verifies the V4 signature the way the gateway does; `Some` is the refusal to send.
fn verify(
    state: &Shared,
    headers: &HeaderMap,
    raw_query: &str,
    body: &[u8],
    action: &str,
) -> Option<Response> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let refuse = |code: &str, message: &str| {
        state.signature_failures.fetch_add(1, Ordering::SeqCst);
        Some(gateway(401, action, code, message))
    };
    let authorization = header("authorization");
    if sign::access_key_of(authorization) != Some(state.access_key.as_str()) {
        return refuse(
            "InvalidAccessKey",
            "The access key in the request is invalid.",
        );
    }
    let x_date = header("x-date");
    let skewed = chrono::NaiveDateTime::parse_from_str(x_date, "%Y%m%dT%H%M%SZ")
        .map(|t| (chrono::Utc::now().naive_utc() - t).num_seconds().abs() > MAX_SKEW_SECS)
        .unwrap_or(true);
    if skewed || header("x-content-sha256") != sign::sha256_hex(body) {
        return refuse(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    let query: Vec<(String, String)> = url::form_urlencoded::parse(raw_query.as_bytes())
        .into_owned()
        .collect();
    let request = sign::SignedRequest {
        method: "POST",
        host: header("host"),
        path: "/",
        query: &query,
        content_type: header("content-type"),
        body,
        x_date,
    };
    let expected = sign::sign(&request, &state.access_key, &state.secret_key);
    if expected.authorization != authorization {
        return refuse(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    None
}

async fn action(
    State(state): St,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let query = query.unwrap_or_default();
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let action = params.get("Action").cloned().unwrap_or_default();
    if let Some(refusal) = verify(&state, &headers, &query, &body, &action) {
        return refusal;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return business(400, 50400, "Invalid Request Body", Value::Null);
    };
    match action.as_str() {
        crate::jimeng::SUBMIT => submit(&state, request),
        crate::jimeng::GET_RESULT => result(&state, request),
        _ => gateway(
            400,
            &action,
            "InvalidActionOrVersion",
            "The action is not supported.",
        ),
    }
}

fn submit(state: &Shared, request: Value) -> Response {
    state.submits.fetch_add(1, Ordering::SeqCst);
    if let Some(fault) = state.submit_faults.next() {
        return render(fault, shape);
    }
    let req_key = request["req_key"].as_str().unwrap_or_default().to_owned();
    let needs_prompt = req_key.contains("t2i") || req_key.contains("inpaint");
    if req_key.is_empty() || (needs_prompt && request["prompt"].as_str().is_none_or(str::is_empty))
    {
        return business(
            400,
            50200,
            "Invalid Param: req_key and prompt are required",
            Value::Null,
        );
    }
    let id = state.next_id.fetch_add(1, Ordering::SeqCst).to_string();
    let plan = state.plans.lock().unwrap().pop_front().unwrap_or(TaskPlan {
        queued: Step::Polls(1),
        running: Step::Polls(1),
        outcome: JimengOutcome::Succeed,
    });
    let task = Task {
        req_key,
        body: request,
        timeline: Timeline::new(&plan),
        plan,
    };
    state.tasks.lock().unwrap().insert(id.clone(), task);
    business(200, 10000, "Success", json!({"task_id": id}))
}

fn result(state: &Shared, request: Value) -> Response {
    if let Some(fault) = state.poll_faults.next() {
        return render(fault, shape);
    }
    let id = request["task_id"].as_str().unwrap_or_default();
    let req_key = request["req_key"].as_str().unwrap_or_default();
    let mut tasks = state.tasks.lock().unwrap();
    let Some(task) = tasks.get_mut(id) else {
        return business(
            200,
            10000,
            "Success",
            json!({"status": "not_found", "image_urls": null, "binary_data_base64": null}),
        );
    };
    if task.req_key != req_key {
        return business(
            400,
            50200,
            "Invalid Param: req_key does not match the task",
            Value::Null,
        );
    }
    let return_url = request["req_json"]
        .as_str()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .is_some_and(|v| v["return_url"] == true);
    let pending = |status: &str| {
        business(
            200,
            10000,
            "Success",
            json!({"status": status, "image_urls": null, "binary_data_base64": null}),
        )
    };
    match (task.timeline.observe(), &task.plan.outcome) {
        (Phase::Queued, _) => pending("in_queue"),
        (Phase::Running, _) => pending("generating"),
        (Phase::Done, JimengOutcome::Expire) => pending("expired"),
        (Phase::Done, JimengOutcome::Fail { code, message }) => business(
            400,
            *code,
            message,
            json!({"status": "done", "image_urls": null, "binary_data_base64": null}),
        ),
        (Phase::Done, JimengOutcome::Succeed) => {
            let n = *state.images_per_task.lock().unwrap();
            let base = state.base.lock().unwrap().clone();
            let data = if return_url {
                let urls: Vec<String> = (0..n)
                    .map(|i| format!("{base}/files/{id}-{i}.jpeg"))
                    .collect();
                json!({"status": "done", "image_urls": urls, "binary_data_base64": null})
            } else {
                let images: Vec<String> = (0..n)
                    .map(|_| base64::engine::general_purpose::STANDARD.encode(png(16, 16)))
                    .collect();
                json!({"status": "done", "image_urls": null, "binary_data_base64": images})
            };
            business(200, 10000, "Success", data)
        }
    }
}

async fn file(Path(_name): Path<String>) -> Response {
    ([("content-type", "image/png")], png(16, 16)).into_response()
}
