//! The service routes in the document: health, readiness, metrics and the documents
//! themselves. None needs a key; their answers are listed whole here.

use serde_json::{Value, json};

pub const TAG: &str = "service";

fn text(description: &str) -> Value {
    json!({"description": description, "content": {"text/plain": {"schema": {"type": "string"}}}})
}

fn json_object(description: &str) -> Value {
    json!({"description": description,
           "content": {"application/json": {"schema": {"type": "object"}}}})
}

/// The edge's answer when it sheds load (crate::edge), in the native shape.
fn shed() -> Value {
    json!({"description": "the api is shedding load: retry after Retry-After seconds",
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}})
}

fn operation(id: &str, summary: &str, responses: Value) -> Value {
    json!({"get": {
        "tags": [TAG], "operationId": id, "summary": summary, "security": [],
        "responses": responses,
    }})
}

pub fn describe(doc: &mut Value) {
    let paths = &mut doc["paths"];
    paths["/healthz"] = operation(
        "healthz",
        "Liveness: the process answers.",
        json!({"200": text("ok"), "503": shed()}),
    );
    paths["/readyz"] = operation(
        "readyz",
        "Readiness: PostgreSQL answers and the NATS connection is up.",
        json!({"200": text("ready"), "503": {
            "description": "database unavailable, nats unavailable, or shedding load",
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}},
            },
        }}),
    );
    paths["/metrics"] = operation(
        "metrics",
        "Prometheus metrics, text exposition format.",
        json!({"200": {"description": "the metrics, in the format the Accept header asks for",
            "content": {"text/plain": {"schema": {"type": "string"}},
                        "application/openmetrics-text": {"schema": {"type": "string"}}}},
            "503": shed()}),
    );
    paths["/api/v1/openapi.json"] = operation(
        "openapi",
        "This document: every face.",
        json!({"200": json_object("the OpenAPI document"), "503": shed()}),
    );
    paths["/openapi/v1/openapi.json"] = operation(
        "creations_openapi",
        "The creations face's part of this document.",
        json!({"200": json_object("the OpenAPI document"), "503": {
            "description": "the api is shedding load: retry after Retry-After seconds",
            "content": {"application/json": {"schema":
                {"$ref": "#/components/schemas/CreationErrorBody"}}}}}),
    );
    paths["/openapi/v1/health"] = operation(
        "creations_health",
        "Liveness in the creations face's shape.",
        json!({"200": {"description": "ok", "content": {"application/json": {"schema": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok"]}}}}}},
            "503": {
            "description": "the api is shedding load: retry after Retry-After seconds",
            "content": {"application/json": {"schema":
                {"$ref": "#/components/schemas/CreationErrorBody"}}}}}),
    );
}
