//! Seedance task endpoints of the fake Ark: create, read and delete along each task's
//! timeline, and the callbacks sent at every status change.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{ArkOutcome, Shared, St, Task, authorized, error, quick_success, shape};
use crate::fake::server::{Phase, Timeline, render};

fn status_of(task: &mut Task, count_read: bool) -> &'static str {
    if task.cancelled {
        return "cancelled";
    }
    let phase = if count_read {
        task.timeline.observe()
    } else {
        task.timeline.peek()
    };
    match (phase, &task.plan.outcome) {
        (Phase::Queued, _) => "queued",
        (Phase::Running, _) => "running",
        (Phase::Done, ArkOutcome::Succeed) => "succeeded",
        (Phase::Done, ArkOutcome::Fail { .. }) => "failed",
        (Phase::Done, ArkOutcome::Expire) => "expired",
    }
}

/// The GET body for a task in `status` (the documented sample's fields).
fn task_json(base: &str, id: &str, task: &Task, status: &str) -> Value {
    let mut body = json!({
        "id": id, "model": task.body["model"], "status": status,
        "created_at": 1765510475, "updated_at": 1765510559, "service_tier": "default",
        "execution_expires_after": task.body["execution_expires_after"].as_u64().unwrap_or(172800),
    });
    match (status, &task.plan.outcome) {
        ("succeeded", _) => {
            body["content"] = json!({"video_url": format!("{base}/files/{id}.mp4")});
            body["usage"] = json!({"completion_tokens": 246840, "total_tokens": 246840});
            let effective = effective_parameters(&task.body);
            body["resolution"] = effective["resolution"].clone();
            body["ratio"] = effective["ratio"].clone();
            body["duration"] = effective["duration"].clone();
            body["framespersecond"] = json!(24);
        }
        ("failed", ArkOutcome::Fail { code, message }) => {
            body["error"] = json!({"code": code, "message": message})
        }
        _ => {}
    }
    body
}

pub(super) async fn create(
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
    let has_text = body["content"]
        .as_array()
        .is_some_and(|c| c.iter().any(|i| i["type"] == "text"));
    if body["model"].as_str().unwrap_or_default().is_empty() || !has_text {
        let (status, body) = error(
            400,
            "MissingParameter",
            "model and a text content item are required.",
            "BadRequest",
        );
        return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    }
    if let Some(reason) = invalid_parameter(&body) {
        let (status, body) = error(400, "InvalidParameter", &reason, "BadRequest");
        return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    }
    let n = state.next_id.fetch_add(1, Ordering::SeqCst);
    let id = format!("cgt-20250101{n:06}-fake");
    let plan = state
        .plans
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(quick_success);
    let callback = body["callback_url"].as_str().map(str::to_owned);
    let task = Task {
        timeline: Timeline::new(&plan),
        body,
        plan,
        cancelled: false,
    };
    state.tasks.lock().unwrap().insert(id.clone(), task);
    if let Some(url) = callback {
        tokio::spawn(send_callbacks(Arc::clone(&state), id.clone(), url));
    }
    axum::Json(json!({"id": id})).into_response()
}

/// Posts the task's JSON at every status change until it ends, like Ark's callback (unsigned,
/// one POST per change). Watches the timeline on a short tick: a provider-side timer.
async fn send_callbacks(state: Arc<Shared>, id: String, url: String) {
    let mut last = "";
    loop {
        let snapshot = {
            let mut tasks = state.tasks.lock().unwrap();
            let Some(task) = tasks.get_mut(&id) else {
                return;
            };
            let status = status_of(task, false);
            (status != last).then(|| {
                (
                    status,
                    task_json(&state.base.lock().unwrap(), &id, task, status),
                )
            })
        };
        if let Some((status, body)) = snapshot {
            let copies = if *state.duplicate_callbacks.lock().unwrap() {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let _ = state.http.post(&url).json(&body).send().await;
                state.callbacks_sent.fetch_add(1, Ordering::SeqCst);
            }
            last = status;
            if !matches!(status, "queued" | "running") {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(super) async fn read(State(state): St, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Some(denied) = authorized(&state, &headers) {
        return denied;
    }
    state.polls.fetch_add(1, Ordering::SeqCst);
    if let Some(fault) = state.poll_faults.next() {
        return render(fault, shape);
    }
    let mut tasks = state.tasks.lock().unwrap();
    let Some(task) = tasks.get_mut(&id) else {
        let (status, body) = error(
            404,
            "ResourceNotFound",
            "The specified task is not found.",
            "NotFound",
        );
        return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    };
    let status = status_of(task, true);
    axum::Json(task_json(&state.base.lock().unwrap(), &id, task, status)).into_response()
}

/// Queued: cancelled. Running: refused. Finished: deleted (providers.md §2.4).
pub(super) async fn delete(
    State(state): St,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(denied) = authorized(&state, &headers) {
        return denied;
    }
    let mut tasks = state.tasks.lock().unwrap();
    let Some(task) = tasks.get_mut(&id) else {
        let (status, body) = error(
            404,
            "ResourceNotFound",
            "The specified task is not found.",
            "NotFound",
        );
        return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
    };
    match status_of(task, false) {
        "queued" => task.cancelled = true,
        // The code for this refusal is not documented; this one is a guess.
        "running" | "cancelled" => {
            let (status, body) = error(
                400,
                "InvalidAction.TaskNotCancellable",
                "The task cannot be cancelled in its current status.",
                "BadRequest",
            );
            return (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response();
        }
        _ => {
            tasks.remove(&id);
        }
    }
    StatusCode::OK.into_response()
}

/// Body fields are strictly validated upstream (providers.md §2.2): an unknown value is an
/// error, not a fallback.
fn invalid_parameter(body: &Value) -> Option<String> {
    const RATIOS: &[&str] = &["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"];
    const RESOLUTIONS: &[&str] = &["480p", "720p", "1080p", "4k"];
    if let Some(ratio) = body.get("ratio").and_then(Value::as_str)
        && !RATIOS.contains(&ratio)
    {
        return Some(format!(
            "The parameter `ratio` specified in the request is not valid: {ratio}."
        ));
    }
    if let Some(resolution) = body.get("resolution").and_then(Value::as_str)
        && !RESOLUTIONS.contains(&resolution)
    {
        return Some(format!(
            "The parameter `resolution` specified in the request is not valid: {resolution}."
        ));
    }
    if let Some(duration) = body.get("duration").and_then(Value::as_i64)
        && duration != -1
        && !(2..=15).contains(&duration)
    {
        return Some(format!(
            "The parameter `duration` specified in the request is not valid: {duration}."
        ));
    }
    let images_ok = body["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["type"] == "image_url")
        .all(|i| {
            i["image_url"]["url"].as_str().is_some_and(|u| {
                u.starts_with("https://")
                    || u.starts_with("http://")
                    || u.starts_with("data:image/")
            })
        });
    (!images_ok).then(|| {
        "The parameter `content.image_url.url` specified in the request is not valid.".to_owned()
    })
}

/// The output parameters a task runs with: strict body fields, else the legacy commands in the
/// text (`--rs 720p --rt 16:9 --dur 5`, or the long names), else the defaults. Body fields
/// win; the real precedence is unconfirmed (providers.md §9). Bad command values fall back
/// silently ("loose validation").
pub(super) fn effective_parameters(body: &Value) -> Value {
    let text = body["content"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|item| item["type"] == "text")
        .and_then(|item| item["text"].as_str())
        .unwrap_or_default();
    let words: Vec<&str> = text.split_whitespace().collect();
    let command = |names: &[&str]| {
        words
            .windows(2)
            .find(|pair| names.contains(&pair[0]))
            .map(|pair| pair[1].to_owned())
    };
    let resolution = command(&["--rs", "--resolution"])
        .filter(|v| ["480p", "720p", "1080p"].contains(&v.as_str()));
    let ratio = command(&["--rt", "--ratio"]).filter(|v| {
        ["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"].contains(&v.as_str())
    });
    let duration = command(&["--dur", "--duration"]).and_then(|v| v.parse::<i64>().ok());
    json!({
        "resolution": body.get("resolution").cloned().or(resolution.map(Value::from)).unwrap_or(json!("720p")),
        "ratio": body.get("ratio").cloned().or(ratio.map(Value::from)).unwrap_or(json!("16:9")),
        "duration": body.get("duration").cloned().or(duration.map(Value::from)).unwrap_or(json!(5)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_fields_win_over_text_commands() {
        let body = json!({"content": [{"type": "text", "text": "a boat --rs 1080p --rt 9:16 --dur 8"}], "ratio": "1:1"});
        assert_eq!(
            effective_parameters(&body),
            json!({"resolution": "1080p", "ratio": "1:1", "duration": 8})
        );
        let loose = json!({"content": [{"type": "text", "text": "a boat --resolution 9000p --duration x"}]});
        assert_eq!(
            effective_parameters(&loose),
            json!({"resolution": "720p", "ratio": "16:9", "duration": 5})
        );
    }
}
