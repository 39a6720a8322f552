//! The document lists every route the router serves, and each operation is complete.

use std::collections::BTreeSet;

use serde_json::Value;

use super::compose;

fn document() -> Value {
    let task_models = [
        ("gpt-image-2", "image.generate"),
        ("upscaler", "image.upscale"),
        ("seedance-2", "video.generate"),
    ]
    .map(|(m, c)| (m.to_owned(), c.to_owned()));
    compose(
        |_| Vec::new(),
        &task_models,
        &crate::faces::creations::catalog::tests::offer(),
    )
}

/// `(METHOD, path)` of every `.route("path", get(..).post(..))` in a router's source. The
/// router cannot list its routes, and building one needs live connections; reading the
/// source it is built from is the next best thing, and fails when a route is added without
/// documentation.
fn routes_in(source: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for chunk in source.split(".route(").skip(1) {
        let chunk = chunk.trim_start();
        let Some(rest) = chunk.strip_prefix('"') else {
            continue;
        };
        let (path, rest) = rest.split_once('"').expect("a closed path literal");
        // The handlers end at the parenthesis that closes `.route(`.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        for method in ["get", "post", "put", "patch", "delete"] {
            let called = rest[..end]
                .match_indices(&format!("{method}("))
                .any(|(i, _)| {
                    i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
            if called {
                routes.insert((method.to_uppercase(), path.to_owned()));
            }
        }
    }
    routes
}

#[test]
fn every_route_of_every_face_is_documented() {
    let served: BTreeSet<_> = routes_in(include_str!("../http.rs"))
        .into_iter()
        .chain(routes_in(include_str!("../faces/creations/mod.rs")))
        .collect();
    assert!(
        served.len() > 25,
        "the router's routes were read: {served:?}"
    );
    let doc = document();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let missing: Vec<_> = served.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without documentation: {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&served).collect();
    assert!(stale.is_empty(), "documented but not served: {stale:?}");
}

#[test]
fn every_operation_declares_its_path_parameters_and_errors() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for name in path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            {
                let declared = operation["parameters"].as_array().is_some_and(|list| {
                    list.iter()
                        .any(|p| p["in"] == "path" && p["name"] == name && p["required"] == true)
                });
                assert!(declared, "{method} {path} does not declare {name}");
            }
            let responses = operation["responses"].as_object().unwrap();
            assert!(responses.contains_key("503"), "{method} {path} lacks 503");
            if operation["security"] != serde_json::json!([]) {
                assert!(responses.contains_key("401"), "{method} {path} lacks 401");
            }
        }
    }
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let text = doc.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "#/components/schemas/{name} is referenced but not defined"
        );
    }
}

#[test]
fn the_router_scan_reads_chained_methods() {
    let routes =
        routes_in(r#".route("/a/{id}", get(x::get).delete(x::delete)) .route("/b", post(budget))"#);
    let expected: BTreeSet<_> = [("GET", "/a/{id}"), ("DELETE", "/a/{id}"), ("POST", "/b")]
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .into_iter()
        .collect();
    assert_eq!(routes, expected);
}

/// serde_json's `IndexMut` inserts `null` for a missing key: a slip in the passes that build
/// the document would leave one behind, which OpenAPI tools refuse.
#[test]
fn no_keyword_is_left_null() {
    fn walk(value: &Value, at: &str) {
        match value {
            Value::Object(map) => {
                for (key, item) in map {
                    assert!(!item.is_null() || key == "default", "{at}/{key} is null");
                    walk(item, &format!("{at}/{key}"));
                }
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, at)),
            _ => {}
        }
    }
    walk(&document(), "#");
}

#[test]
fn creates_document_the_admission_refusal() {
    let doc = document();
    for path in [
        "/api/v1/jobs",
        "/api/v1/tasks/create",
        "/openapi/v1/creations",
    ] {
        let responses = &doc["paths"][path]["post"]["responses"];
        assert!(responses["429"].is_object(), "POST {path} lacks 429");
    }
}
