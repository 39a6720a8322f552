//! A fake Gemini API: `POST /v1beta/models/{model}:generateContent` with `x-goog-api-key`,
//! answering inline base64 images, HTTP-200 refusals (`finishReason`, `blockReason`) and
//! google.rpc errors with `RetryInfo`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Value, json};

use super::server::{FakeServer, Fault, Faults, png, render};

/// What a successful-status answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeminiAnswer {
    /// A text part, then the image as an inline part.
    Image,
    /// A candidate without an image and this `finishReason` (e.g. `IMAGE_SAFETY`).
    Finish(String),
    /// No candidates; `promptFeedback.blockReason` set (e.g. `PROHIBITED_CONTENT`).
    Blocked(String),
}

#[derive(Debug)]
pub struct Shared {
    key: String,
    pub faults: Faults,
    submits: AtomicUsize,
    answer: Mutex<GeminiAnswer>,
    image: Mutex<Vec<u8>>,
    received: Mutex<Vec<(String, Value)>>,
}

#[derive(Debug)]
pub struct FakeGemini {
    pub server: FakeServer,
    pub state: Arc<Shared>,
}

impl FakeGemini {
    pub async fn start(key: &str) -> Self {
        let state = Arc::new(Shared {
            key: key.to_owned(),
            faults: Faults::default(),
            submits: AtomicUsize::new(0),
            answer: Mutex::new(GeminiAnswer::Image),
            image: Mutex::new(png(16, 16)),
            received: Mutex::new(Vec::new()),
        });
        let router = Router::new()
            .route("/v1beta/models/{call}", post(generate))
            .with_state(Arc::clone(&state));
        Self {
            server: FakeServer::start(router).await,
            state,
        }
    }

    /// The value for `ATELIER_GEMINI_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.server.url("/v1beta")
    }

    pub fn fail_next(&self, fault: Fault) {
        self.state.faults.push(fault);
    }

    pub fn set_answer(&self, answer: GeminiAnswer) {
        *self.state.answer.lock().unwrap() = answer;
    }

    /// The bytes of the inline image (any bytes: a huge body tests the client's cap).
    pub fn set_image(&self, bytes: Vec<u8>) {
        *self.state.image.lock().unwrap() = bytes;
    }

    pub fn submits(&self) -> usize {
        self.state.submits.load(Ordering::SeqCst)
    }

    /// (model, body) of each request received.
    pub fn received(&self) -> Vec<(String, Value)> {
        self.state.received.lock().unwrap().clone()
    }
}

type St = State<Arc<Shared>>;

fn rpc_error(code: u16, status: &str, message: &str, details: Value) -> (u16, Value) {
    (
        code,
        json!({"error": {"code": code, "message": message, "status": status, "details": details}}),
    )
}

/// google.rpc shapes (providers.md §3); billing is post-paid, so "no balance" is the free tier
/// refused for the region or project (`FAILED_PRECONDITION`).
fn shape(fault: &Fault) -> (u16, Value) {
    match fault {
        Fault::RateLimited { retry_after_secs } => rpc_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{retry_after_secs}s")},
            ]),
        ),
        Fault::ServerError { status } => rpc_error(
            *status,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
            json!([]),
        ),
        Fault::ContentRejected => rpc_error(
            400,
            "INVALID_ARGUMENT",
            "The request was blocked.",
            json!([]),
        ),
        Fault::InsufficientBalance => rpc_error(
            400,
            "FAILED_PRECONDITION",
            "Gemini API free tier is not available in your country. Please enable billing on your project in Google AI Studio.",
            json!([]),
        ),
        Fault::DropConnection | Fault::Raw { .. } => (500, Value::Null),
    }
}

async fn generate(
    State(state): St,
    headers: HeaderMap,
    Path(call): Path<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let key = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if key != state.key {
        let (status, body) = rpc_error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            json!([
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]),
        );
        return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    }
    let Some(model) = call.strip_suffix(":generateContent") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    state.submits.fetch_add(1, Ordering::SeqCst);
    if let Some(fault) = state.faults.next() {
        return render(fault, shape);
    }
    state
        .received
        .lock()
        .unwrap()
        .push((model.to_owned(), body));
    let usage =
        json!({"promptTokenCount": 17, "candidatesTokenCount": 1306, "totalTokenCount": 1323});
    let answer = state.answer.lock().unwrap().clone();
    let body = match answer {
        GeminiAnswer::Image => {
            let data =
                base64::engine::general_purpose::STANDARD.encode(&*state.image.lock().unwrap());
            json!({"candidates": [{"content": {"role": "model", "parts": [
                    {"text": "Here is your image."},
                    {"inlineData": {"mimeType": "image/png", "data": data}}]},
                "finishReason": "STOP"}],
                "usageMetadata": usage, "modelVersion": model, "responseId": "deO6aLeTE4fYvdIPuIm_kQQ"})
        }
        GeminiAnswer::Finish(reason) => {
            json!({"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": reason}],
            "usageMetadata": usage, "modelVersion": model})
        }
        GeminiAnswer::Blocked(reason) => {
            json!({"promptFeedback": {"blockReason": reason}, "usageMetadata": usage, "modelVersion": model})
        }
    };
    axum::Json(body).into_response()
}
