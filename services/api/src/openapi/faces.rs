//! What every operation of a face shares, added to the document in one pass so no handler
//! has to repeat it: its path parameters' schemas, and its error body on each status that the
//! layers around the handlers can answer (crate::http's JSON rejections, crate::edge's load
//! shedding, the database being away, a server error).

use serde_json::{Map, Value, json};

use super::service;

/// The face that answers a path, as `crate::faces::answer` decides it.
#[derive(Clone, Copy, PartialEq)]
enum Face {
    Native,
    Tasks,
    Creations,
}

impl Face {
    fn of(path: &str) -> Self {
        let under = |prefix: &str| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        if under("/api/v1/tasks") {
            Self::Tasks
        } else if under("/openapi/v1") {
            Self::Creations
        } else {
            Self::Native
        }
    }

    fn error_body(self) -> &'static str {
        match self {
            Self::Native => "#/components/schemas/ErrorBody",
            Self::Tasks => "#/components/schemas/TaskRefusal",
            Self::Creations => "#/components/schemas/CreationErrorBody",
        }
    }
}

const JOB_ID: &str = "^job_[0-9A-Za-z]{26}$";
const ASSET_ID: &str = "^asset_[0-9A-Za-z]{26}$";

/// The schema of a path parameter. Ids are matched by shape before any lookup, and an id of
/// another shape can name nothing: it is a 404 like any unknown id.
fn path_parameter(path: &str, name: &str) -> Value {
    match (name, path.starts_with("/api/v1/assets/")) {
        ("id", true) => json!({"type": "string", "pattern": ASSET_ID}),
        ("creation_id", _) => json!({"type": "integer", "format": "int64", "minimum": 1}),
        _ => json!({"type": "string", "pattern": JOB_ID}),
    }
}

fn error_response(face: Face, description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": face.error_body()}}},
    })
}

/// Declares every `{name}` of `path` on `operation`, keeping a description it already has.
fn declare_path_parameters(path: &str, operation: &mut Map<String, Value>) {
    let names: Vec<&str> = path
        .split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect();
    let parameters = operation
        .entry("parameters")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("parameters is a list");
    for name in names {
        let schema = path_parameter(path, name);
        match parameters
            .iter_mut()
            .find(|p| p["in"] == "path" && p["name"] == name)
        {
            Some(declared) => declared["schema"] = schema,
            None => parameters.push(json!({
                "name": name, "in": "path", "required": true, "schema": schema,
            })),
        }
    }
    if parameters.is_empty() {
        operation.remove("parameters");
    }
}

/// The operations that create a job, where admission (crate::limits) may refuse with 429.
const CREATES: [&str; 3] = [
    "/api/v1/jobs",
    "/api/v1/tasks/create",
    "/openapi/v1/creations",
];

fn add_shared_responses(face: Face, operation: &mut Map<String, Value>, creates: bool) {
    let secured = operation
        .get("security")
        .is_none_or(|s| s.as_array().is_some_and(|list| !list.is_empty()));
    let reads_input = operation.contains_key("parameters") || operation.contains_key("requestBody");
    let mut shared = Vec::new();
    if reads_input {
        shared.push((
            "400",
            "the request could not be read; the message names the part",
        ));
    }
    if secured {
        shared.push(("401", "no API key, or not a valid one"));
    }
    if operation.contains_key("requestBody") {
        shared.push(("413", "the request body is larger than the api accepts"));
    }
    if creates {
        shared.push((
            "429",
            "over the client's create rate or queued-jobs cap (GET /api/v1/limits): nothing \
             was created or charged; retry after Retry-After seconds",
        ));
    }
    shared.push(("500", "a server error; the body carries no detail"));
    shared.push((
        "503",
        "the api is shedding load or its database is away: retry after Retry-After seconds",
    ));
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    for (status, description) in shared {
        responses
            .entry(status)
            .or_insert_with(|| error_response(face, description));
    }
}

/// Applies the shared parts to every operation of the document.
pub fn complete(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let face = Face::of(path);
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let Some(operation) = operation.as_object_mut() else {
                continue;
            };
            declare_path_parameters(path, operation);
            // The service routes (health, metrics, documents) list their own answers.
            if operation.get("tags") != Some(&json!([service::TAG])) {
                let creates = method == "post" && CREATES.contains(&path.as_str());
                add_shared_responses(face, operation, creates);
            }
        }
    }
}
