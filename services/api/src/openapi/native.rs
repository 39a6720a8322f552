//! What the native face's annotations leave loose, stated from the rules the handlers apply:
//! query parameters arrive as text and are parsed by the handlers (so a bad one gets the
//! face's JSON error), so their schemas are set here from the same constants; the
//! `Idempotency-Key` header of every create; the asset registration body and upload.

use atelier_kit::nats::CAPABILITIES;
use serde_json::{Value, json};

use crate::jobs::{
    request::schema::{TEXT_PATTERN, nullable, url},
    routes::STATUSES,
};

/// `jobs::routes::idempotency_key`: 1–255 visible ASCII characters (a header value cannot
/// start or end with a space).
pub fn idempotency_key() -> Value {
    json!({
        "name": "Idempotency-Key",
        "in": "header",
        "required": false,
        "description": "Same key and body returns the existing resource; another body is a 409",
        "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                   "pattern": "^[!-~]([ -~]*[!-~])?$"},
    })
}

/// `check_before`: an id of the listed kind (`nextBefore`), or an RFC 3339 time.
fn before(id_pattern: &str) -> Value {
    json!({"anyOf": [
        {"type": "string", "pattern": id_pattern},
        {"type": "string", "format": "date-time"},
    ]})
}

fn limit() -> Value {
    json!({"type": "integer", "minimum": 1, "maximum": 200, "default": 50})
}

/// The schema of query parameter (or `Last-Event-ID`) `name` of `path`, where the handler
/// constrains it.
fn query(path: &str, name: &str) -> Option<Value> {
    Some(match (path, name) {
        (_, "limit") => limit(),
        ("/api/v1/events" | "/api/v1/events/stream", "after" | "Last-Event-ID") => {
            json!({"type": "string", "pattern": crate::events::CURSOR_PATTERN})
        }
        ("/api/v1/jobs", "before") => before("^job_[0-9A-Za-z]{26}$"),
        ("/api/v1/assets", "before") => before("^asset_[0-9A-Za-z]{26}$"),
        ("/api/v1/jobs", "status") => json!({"type": "string", "enum": STATUSES}),
        ("/api/v1/jobs", "capability") => json!({"type": "string", "enum": CAPABILITIES}),
        ("/api/v1/assets", "kind") => {
            json!({"type": "string", "enum": ["image", "video", "audio"]})
        }
        _ => return None,
    })
}

fn constrain_queries(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut().filter(|(p, _)| p.starts_with("/api/v1/")) {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        let operations = item.values_mut().filter_map(|op| op.get_mut("parameters"));
        for parameters in operations.filter_map(Value::as_array_mut) {
            let handled = |p: &&mut Value| p["in"] == "query" || p["name"] == "Last-Event-ID";
            for parameter in parameters.iter_mut().filter(handled) {
                let name = parameter["name"].as_str().unwrap_or_default().to_owned();
                if let Some(schema) = query(path, &name) {
                    parameter["schema"] = schema;
                }
            }
        }
    }
}

/// Replaces the `Idempotency-Key` an operation declares with the exact one.
pub fn declare_idempotency_key(operation: &mut Value) {
    if let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    {
        parameters.retain(|p| p["name"] != "Idempotency-Key");
        parameters.push(idempotency_key());
    }
}

pub fn describe(doc: &mut Value) {
    constrain_queries(doc);
    declare_idempotency_key(&mut doc["paths"]["/api/v1/jobs"]["post"]);
    doc["components"]["schemas"]["RegisterAsset"] = json!({
        "type": "object",
        "required": ["url"],
        "additionalProperties": false,
        "properties": {
            "url": url(),
            "name": nullable(json!({"type": "string", "maxLength": 255, "pattern": TEXT_PATTERN,
                     "description": "reduced to a safe last path segment; default the URL's"})),
            "kind": nullable(json!({"type": "string", "enum": ["image", "video", "audio"],
                     "description": "checked against the content"})),
        },
    });
    doc["paths"]["/api/v1/assets"]["post"]["requestBody"] = json!({
        "required": true,
        "description": "JSON registration of a URL (fetched once through the SSRF guard), or \
                        an upload of one or more files as multipart/form-data `files` fields; \
                        each must be an image, video or audio file, checked by its content",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/RegisterAsset"}},
            "multipart/form-data": {"schema": {
                "type": "object",
                "required": ["files"],
                "additionalProperties": false,
                "properties": {"files": {"type": "array", "minItems": 1, "maxItems": 64,
                    "items": {"type": "string", "format": "binary"},
                    "description": "`file` is read as `files` too"}},
            }},
        },
    });
    // A download is the asset itself, in its own content type; a `Range` it cannot read is
    // ignored (the whole file). No schema: the bytes are the file's, and a 206 of a JSON file
    // is a slice of it, not a JSON document.
    let download = &mut doc["paths"]["/api/v1/assets/{id}/download"]["get"];
    download["parameters"] = json!([{"name": "Range", "in": "header", "required": false,
        "description": "one range, bytes=first-last, bytes=first- or bytes=-suffix",
        "schema": {"type": "string"}}]);
    let download = &mut download["responses"];
    for status in ["200", "206"] {
        let description = download[status]["description"].clone();
        download[status] = json!({"description": description, "content": {"*/*": {}}});
    }
}
