//! A fake OpenAI (or OpenAI-compatible relay): `/v1/images/generations`, `/v1/images/edits`
//! (multipart), `/v1/chat/completions`, `/v1/audio/speech`, and `/files/*` for URL outputs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

use super::server::{FakeServer, Fault, Faults, png, render};

/// How image answers carry the pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// `data[].b64_json`, as the GPT image models answer.
    Base64,
    /// `data[].url` on this server, as dall-e and many relays answer.
    Url,
}

/// One image request as the fake received it.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// The JSON body, or the multipart text fields as an object.
    pub fields: Value,
    pub image: Option<Vec<u8>>,
    pub mask: Option<Vec<u8>>,
}

#[derive(Debug)]
pub struct Shared {
    key: String,
    base: Mutex<String>,
    /// Played before the next image, chat or speech request.
    pub faults: Faults,
    submits: AtomicUsize,
    mode: Mutex<OutputMode>,
    image: Mutex<Vec<u8>>,
    chat_content: Mutex<String>,
    speech: Mutex<Vec<u8>>,
    received: Mutex<Vec<Received>>,
    /// How long an image generation takes to answer (a slow model, or a worker to kill).
    latency: Mutex<std::time::Duration>,
}

/// The fake. Scripts go through its methods; `faults` applies to every endpoint.
#[derive(Debug)]
pub struct FakeOpenAi {
    pub server: FakeServer,
    pub state: Arc<Shared>,
}

impl FakeOpenAi {
    /// Starts a fake accepting `Authorization: Bearer <key>`.
    pub async fn start(key: &str) -> Self {
        let state = Arc::new(Shared {
            key: key.to_owned(),
            base: Mutex::new(String::new()),
            faults: Faults::default(),
            submits: AtomicUsize::new(0),
            mode: Mutex::new(OutputMode::Base64),
            image: Mutex::new(png(16, 16)),
            chat_content: Mutex::new("{}".to_owned()),
            // An ID3v2 header: what an MP3 from the speech endpoint starts with.
            speech: Mutex::new(b"ID3\x04\0\0\0\0\0\0fake mp3 frames".to_vec()),
            received: Mutex::new(Vec::new()),
            latency: Mutex::new(std::time::Duration::ZERO),
        });
        let router = Router::new()
            .route("/v1/images/generations", post(generations))
            .route("/v1/images/edits", post(edits))
            .route("/v1/chat/completions", post(chat))
            .route("/v1/audio/speech", post(speech))
            .route("/files/{name}", get(file))
            .with_state(Arc::clone(&state));
        let server = FakeServer::start(router).await;
        *state.base.lock().unwrap() = server.url("");
        Self { server, state }
    }

    /// The value for `ATELIER_OPENAI_BASE_URL`.
    pub fn base_url(&self) -> String {
        self.server.url("/v1")
    }

    pub fn fail_next(&self, fault: Fault) {
        self.state.faults.push(fault);
    }

    /// Image, chat and speech requests received, faults and dropped connections included.
    pub fn submits(&self) -> usize {
        self.state.submits.load(Ordering::SeqCst)
    }

    pub fn set_output_mode(&self, mode: OutputMode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// The bytes every image answer carries (any bytes: a huge or non-image body tests the
    /// client's guards).
    pub fn set_image(&self, bytes: Vec<u8>) {
        *self.state.image.lock().unwrap() = bytes;
    }

    /// The JSON text the chat completion answers with.
    pub fn set_chat_content(&self, content: &str) {
        *self.state.chat_content.lock().unwrap() = content.to_owned();
    }

    pub fn set_speech(&self, bytes: Vec<u8>) {
        *self.state.speech.lock().unwrap() = bytes;
    }

    /// Image generations answer this much later (the request is counted at once).
    pub fn set_latency(&self, latency: std::time::Duration) {
        *self.state.latency.lock().unwrap() = latency;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

type St = State<Arc<Shared>>;

/// The exact shapes from providers.md §1.4.
fn shape(fault: &Fault) -> (u16, Value) {
    let error = |message: &str, kind: &str, code: Value| json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    match fault {
        Fault::RateLimited { .. } => (
            429,
            error(
                "Rate limit reached for requests",
                "requests",
                json!("rate_limit_exceeded"),
            ),
        ),
        Fault::ServerError { status } => (
            *status,
            error(
                "The server had an error while processing your request.",
                "server_error",
                Value::Null,
            ),
        ),
        Fault::ContentRejected => (
            400,
            error(
                "Your request was rejected by the safety system. If you believe this is an error, contact us. safety_violations=[violence].",
                "image_generation_user_error",
                json!("moderation_blocked"),
            ),
        ),
        Fault::InsufficientBalance => (
            429,
            error(
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                json!("insufficient_quota"),
            ),
        ),
        Fault::DropConnection | Fault::Raw { .. } => (500, Value::Null),
    }
}

/// Authenticates and counts the request, then plays a scripted fault if one is queued.
fn gate(state: &Shared, headers: &HeaderMap) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {}", state.key) {
        let presented = auth.trim_start_matches("Bearer ");
        let body = json!({"error": {
            "message": format!("Incorrect API key provided: {presented}. You can find your API key at https://platform.openai.com/account/api-keys."),
            "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
        return Some((StatusCode::UNAUTHORIZED, axum::Json(body)).into_response());
    }
    state.submits.fetch_add(1, Ordering::SeqCst);
    state.faults.next().map(|fault| render(fault, shape))
}

fn images_answer(state: &Shared, n: usize) -> Response {
    let image = state.image.lock().unwrap().clone();
    let mode = *state.mode.lock().unwrap();
    let data: Vec<Value> = (0..n)
        .map(|i| match mode {
            OutputMode::Base64 => json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(&image), "revised_prompt": null}),
            OutputMode::Url => json!({"url": format!("{}/files/{i}.png", state.base.lock().unwrap())}),
        })
        .collect();
    axum::Json(json!({
        "created": 1713833628, "data": data, "output_format": "png", "size": "1024x1024",
        "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210},
    }))
    .into_response()
}

async fn generations(
    State(state): St,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(early) = gate(&state, &headers) {
        return early;
    }
    let n = body["n"].as_u64().unwrap_or(1) as usize;
    state.received.lock().unwrap().push(Received {
        fields: body,
        ..Received::default()
    });
    let latency = *state.latency.lock().unwrap();
    tokio::time::sleep(latency).await;
    images_answer(&state, n)
}

async fn edits(State(state): St, headers: HeaderMap, mut form: Multipart) -> Response {
    let mut received = Received {
        fields: json!({}),
        ..Received::default()
    };
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        let Ok(bytes) = field.bytes().await else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        match name.as_str() {
            "image" | "image[]" => received.image = Some(bytes.to_vec()),
            "mask" => received.mask = Some(bytes.to_vec()),
            other => received.fields[other] = json!(String::from_utf8_lossy(&bytes)),
        }
    }
    if let Some(early) = gate(&state, &headers) {
        return early;
    }
    if received.image.is_none() {
        let body = json!({"error": {"message": "image is required", "type": "invalid_request_error", "param": "image", "code": null}});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let n = received.fields["n"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    state.received.lock().unwrap().push(received);
    images_answer(&state, n)
}

async fn chat(
    State(state): St,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(early) = gate(&state, &headers) {
        return early;
    }
    state.received.lock().unwrap().push(Received {
        fields: body,
        ..Received::default()
    });
    let content = state.chat_content.lock().unwrap().clone();
    axum::Json(json!({
        "id": "chatcmpl-fake", "object": "chat.completion", "created": 1713833628,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": null}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    }))
    .into_response()
}

async fn speech(
    State(state): St,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(early) = gate(&state, &headers) {
        return early;
    }
    state.received.lock().unwrap().push(Received {
        fields: body,
        ..Received::default()
    });
    let audio = state.speech.lock().unwrap().clone();
    ([("content-type", "audio/mpeg")], audio).into_response()
}

async fn file(State(state): St, Path(_name): Path<String>) -> Response {
    let image = state.image.lock().unwrap().clone();
    ([("content-type", "image/png")], image).into_response()
}
