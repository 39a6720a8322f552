//! The tasks face (seed 001) in the document: `POST /api/v1/tasks/create`, `GET
//! /api/v1/tasks/{task_id}` and its cancel. Every answer is the `{code, msg, data}` envelope;
//! a refused task is HTTP 200 with `code: 0` and the reason in `msg`, as the seed documents.
//! The request schema has one branch per capability the configured models map to
//! (`ATELIER_TASK_MODELS`), with the rules `crate::tasks::translate` and the native
//! validation apply to it.

use serde_json::{Value, json};

use crate::jobs::request::{
    MAX_GENERATE_INPUTS, MAX_VIDEO_INPUTS, VIDEO_RATIOS, VIDEO_RESOLUTIONS,
    schema::{NON_BLANK_PATTERN, TEXT_PATTERN, nullable, url},
};

/// The ratios `crate::tasks::image_size` knows.
const IMAGE_RATIOS: [&str; 9] = [
    "1:1", "auto", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9",
];

fn models_of(task_models: &[(String, String)], capability: &str) -> Vec<String> {
    task_models
        .iter()
        .filter(|(_, c)| c == capability)
        .map(|(m, _)| m.clone())
        .collect()
}

fn branch(models: Vec<String>, description: &str, extra: Value, images: (usize, usize)) -> Value {
    let mut properties = json!({
        "model_id": {"type": "string", "enum": models},
        "prompt": {"type": "string", "maxLength": 4000, "pattern": TEXT_PATTERN},
        "image_urls": {"type": "array", "items": url(), "minItems": images.0, "maxItems": images.1},
        "aspect_ratio": {"type": "string", "pattern": TEXT_PATTERN},
    });
    for (name, schema) in extra.as_object().into_iter().flatten() {
        properties[name] = schema.clone();
    }
    // Every field but the two lists is an `Option`: `null` is absence.
    for name in ["prompt", "aspect_ratio", "duration", "resolution"] {
        if properties.get(name).is_some() {
            properties[name] = nullable(properties[name].take());
        }
    }
    json!({
        "type": "object",
        "description": description,
        "required": ["model_id"],
        "additionalProperties": false,
        "properties": properties,
    })
}

fn create_task(task_models: &[(String, String)]) -> Value {
    let mut branches = Vec::new();
    let generate = models_of(task_models, "image.generate");
    if !generate.is_empty() {
        let mut schema = branch(
            generate,
            "Image models: text or image to image.",
            json!({
                "prompt": {"type": "string", "maxLength": 4000, "pattern": NON_BLANK_PATTERN},
                "aspect_ratio": {"type": "string", "enum": IMAGE_RATIOS, "default": "1:1"},
            }),
            (0, MAX_GENERATE_INPUTS),
        );
        schema["required"] = json!(["model_id", "prompt"]);
        schema["properties"]["prompt"] =
            json!({"type": "string", "maxLength": 4000, "pattern": NON_BLANK_PATTERN});
        branches.push(schema);
    }
    for (capability, images) in [("image.upscale", 1), ("image.inpaint", 2)] {
        let models = models_of(task_models, capability);
        if !models.is_empty() {
            branches.push(branch(
                models,
                &format!("{capability} models: exactly {images} image_urls."),
                json!({}),
                (images, images),
            ));
        }
    }
    let video = models_of(task_models, "video.generate");
    if !video.is_empty() {
        let mut schema = branch(
            video,
            "Video models: a prompt, image_urls to animate, or both.",
            json!({
                "aspect_ratio": {"type": "string", "enum": VIDEO_RATIOS, "default": "16:9"},
                "duration": {"type": "integer", "minimum": 4, "maximum": 15, "default": 5,
                             "description": "seconds; an Atelier extension"},
                "resolution": {"type": "string", "enum": VIDEO_RESOLUTIONS, "default": "720p",
                               "description": "an Atelier extension"},
            }),
            (0, MAX_VIDEO_INPUTS),
        );
        schema["anyOf"] = json!([
            {"required": ["prompt"],
             "properties": {"prompt": {"type": "string", "pattern": NON_BLANK_PATTERN}}},
            {"required": ["image_urls"], "properties": {"image_urls": {"minItems": 1}}},
        ]);
        branches.push(schema);
    }
    json!({"oneOf": branches})
}

/// An envelope whose `code` is 200 and whose `data` is `data`.
fn success(data: Value) -> Value {
    json!({
        "type": "object",
        "required": ["code", "msg", "data"],
        "properties": {
            "code": {"type": "integer", "enum": [200]},
            "msg": {"type": "string"},
            "data": data,
        },
    })
}

fn envelope_response(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

fn refusal_ref() -> Value {
    json!({"$ref": "#/components/schemas/TaskRefusal"})
}

fn task_state() -> Value {
    json!({
        "type": "object",
        "required": ["task_id", "task_status", "status", "billing"],
        "properties": {
            "task_id": {"type": "string"},
            "task_status": {"type": "integer", "enum": [1, 2, 3, 4]},
            "status": {"type": "string"},
            "billing": {"$ref": "#/components/schemas/Billing"},
        },
    })
}

fn task() -> Value {
    let link = json!({"type": ["string", "null"], "description": "valid for an hour"});
    json!({
        "type": "object",
        "required": ["task_id", "task_status", "task_type", "model_id", "image_url",
                     "video_url", "audio_url", "credits", "created_at"],
        "properties": {
            "task_id": {"type": "string"},
            "task_status": {"type": "integer", "enum": [1, 2, 3, 4],
                            "description": "1 queued, 2 running, 3 succeeded, 4 failed"},
            "task_type": {"type": "string"},
            "model_id": {"type": "string"},
            "image_url": link, "video_url": link, "audio_url": link,
            "credits": {"type": "integer"},
            "created_at": {"type": "integer", "description": "Unix seconds"},
            "error": {"type": "object", "required": ["code", "message"],
                      "properties": {"code": {"type": "string"}, "message": {"type": "string"}}},
        },
    })
}

/// How a client goes on from an accepted task: poll it, or cancel it.
fn links() -> Value {
    let task_id = json!({"task_id": "$response.body#/data/task_id"});
    json!({
        "GetTask": {"operationId": "tasks_get", "parameters": task_id},
        "CancelTask": {"operationId": "tasks_cancel", "parameters": task_id},
    })
}

pub fn describe(doc: &mut Value, task_models: &[(String, String)]) {
    let schemas = &mut doc["components"]["schemas"];
    schemas["TaskRefusal"] = json!({
        "type": "object",
        "description": "A refusal or an error in the tasks envelope: code 0, the reason in msg.",
        "required": ["code", "msg", "data"],
        "properties": {
            "code": {"type": "integer", "enum": [0]},
            "msg": {"type": "string"},
            "data": {"type": "null"},
        },
    });
    schemas["CreateTask"] = create_task(task_models);
    let not_found = envelope_response("no such task of this client (code 0)", refusal_ref());
    let paths = &mut doc["paths"];
    paths["/api/v1/tasks/create"] = json!({"post": {
        "tags": ["tasks"],
        "summary": "Submit a task; the price is charged now and refunded if the task fails.",
        "operationId": "tasks_create",
        "requestBody": {"required": true, "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/CreateTask"}}}},
        "responses": {"200": envelope_response(
            "accepted (code 200), or refused with the reason in msg (code 0)",
            json!({"oneOf": [success(json!({
                "type": "object",
                "required": ["task_id", "request_id", "credits"],
                "properties": {"task_id": {"type": "string"}, "request_id": {"type": "string"},
                               "credits": {"type": "integer"}},
            })), refusal_ref()]}))},
    }});
    paths["/api/v1/tasks/create"]["post"]["responses"]["200"]["links"] = links();
    paths["/api/v1/tasks/{task_id}"] = json!({"get": {
        "tags": ["tasks"],
        "summary": "Poll a task until task_status is 3 or 4.",
        "operationId": "tasks_get",
        "responses": {"200": envelope_response("the task", success(task())), "404": not_found},
    }});
    paths["/api/v1/tasks/{task_id}/cancel"] = json!({"post": {
        "tags": ["tasks"],
        "summary": "Cancel a task: its credits come back in full, once.",
        "operationId": "tasks_cancel",
        "responses": {
            "200": envelope_response("cancelled (task_status 4), now or before", success(task_state())),
            "404": not_found,
            "409": envelope_response("the task already ended otherwise; nothing refunded (code 0)",
                json!({"type": "object", "required": ["code", "msg", "data"], "properties": {
                    "code": {"type": "integer", "enum": [0]}, "msg": {"type": "string"},
                    "data": task_state()}})),
        },
    }});
}
