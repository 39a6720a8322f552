//! L1 and L10: what partners read. Every client error is JSON in its face's shape, and pages
//! never skip rows that share a creation time.

use super::*;

/// A GET (or another method) with alpha's key: status, content type, `Allow`, body.
async fn ask(
    sandbox: &Sandbox,
    method: reqwest::Method,
    path: &str,
) -> (StatusCode, String, Option<String>, serde_json::Value) {
    let response = sandbox
        .http
        .request(method, sandbox.url(path))
        .bearer_auth(&sandbox.alpha.key)
        .send()
        .await
        .expect("request");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, allow) = (header("content-type").unwrap_or_default(), header("allow"));
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    (status, content_type, allow, body)
}

/// L1: axum's own rejections (a query or a path it cannot parse, a wrong method, a body too
/// large) came back as `text/plain` on every face, and the tasks face's 413 as the native
/// `{"error"}`. Now each is JSON in the face's own shape, with axum's status.
#[tokio::test]
async fn every_client_error_is_json_in_its_faces_shape() {
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let get = reqwest::Method::GET;
    let mut seen = Vec::new();
    for path in [
        "/api/v1/jobs?limit=1&limit=2",
        "/api/v1/jobs/%FF",
        "/api/v1/assets?kind=image&kind=video",
        "/api/v1/credits?limit=1&limit=2",
    ] {
        let (status, content_type, _, body) = ask(&sandbox, get.clone(), path).await;
        seen.push(format!("{path}: {status} {content_type} {body}"));
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body["error"].is_string(), "{path}: {content_type} {body}");
    }
    let (status, _, allow, body) = ask(&sandbox, reqwest::Method::DELETE, "/api/v1/jobs").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(body["error"].is_string(), "{body}");
    assert!(allow.is_some_and(|a| a.contains("GET")), "Allow is kept");

    // The tasks face: its envelope, `code: 0`.
    let (status, content_type, _, body) = ask(&sandbox, get.clone(), "/api/v1/tasks/%FF").await;
    seen.push(format!("/api/v1/tasks/%FF: {status} {content_type} {body}"));
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], 0, "{body}");
    assert!(body["msg"].is_string(), "{body}");
    let too_large = sandbox
        .http
        .post(sandbox.url("/api/v1/tasks/create"))
        .bearer_auth(&sandbox.alpha.key)
        .header("content-type", "application/json")
        .body(vec![b' '; 1024 * 1024 + 1])
        .send()
        .await
        .expect("an oversize task is answered");
    let status = too_large.status();
    let body: serde_json::Value = too_large.json().await.unwrap_or_default();
    seen.push(format!("/api/v1/tasks/create (1 MiB + 1): {status} {body}"));
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], 0, "{body}");

    // The creations face: `{"detail": {code, message}}`, on its unknown routes too.
    for (path, expected, code) in [
        (
            "/openapi/v1/creations?page=1&page=2",
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            "/openapi/v1/creations/jobs/%FF",
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            "/openapi/v1/nothing-here",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ] {
        let (status, content_type, _, body) = ask(&sandbox, get.clone(), path).await;
        seen.push(format!("{path}: {status} {content_type} {body}"));
        assert_eq!(status, expected, "{path}: {body}");
        assert_eq!(body["detail"]["code"], code, "{path}: {body}");
    }
    println!("l1:\n  {}", seen.join("\n  "));
    sandbox.teardown().await;
}

/// Follows `nextBefore` from `first` until the last page; returns every id seen.
async fn page_through(sandbox: &Sandbox, first: &str, list: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut path = first.to_owned();
    loop {
        let (status, page) = sandbox.get(&sandbox.alpha, &path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        ids.extend(
            page[list]
                .as_array()
                .expect("a list")
                .iter()
                .map(|row| row["id"].as_str().expect("an id").to_owned()),
        );
        let Some(cursor) = page["nextBefore"].as_str() else {
            return ids;
        };
        path = format!("{first}&before={}", cursor.replace('+', "%2B"));
        assert!(ids.len() < 100, "paging does not end");
    }
}

/// L10: rows written in one transaction share `created_at` (an upload of several files, a
/// job's outputs). Paging by time (`created_at < nextBefore`) skipped the rest of a page's
/// last instant. Now the cursor is the last row, compared on `(created_at, id)`.
#[tokio::test]
async fn pages_never_skip_rows_that_share_a_creation_time() {
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    for n in 0..5 {
        let body = json!({"capability": "image.generate", "prompt": format!("page {n}")});
        assert_eq!(
            sandbox.post_job(&sandbox.alpha, &body, None).await.0,
            StatusCode::CREATED
        );
    }
    let mut form = reqwest::multipart::Form::new();
    for n in 0..5 {
        let part =
            reqwest::multipart::Part::bytes(gradient_png(8 + n, 8)).file_name(format!("f{n}.png"));
        form = form.part("files", part);
    }
    let uploaded = sandbox
        .http
        .post(sandbox.url("/api/v1/assets"))
        .bearer_auth(&sandbox.alpha.key)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    // One instant for all, as one transaction's now() gives.
    for table in ["jobs", "assets"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET created_at = '2026-01-01T00:00:00Z' WHERE client_id = 'alpha'"
        )))
        .execute(&sandbox.pool)
        .await
        .expect("one creation time");
    }
    let jobs = page_through(&sandbox, "/api/v1/jobs?limit=2", "jobs").await;
    let assets = page_through(&sandbox, "/api/v1/assets?limit=2", "assets").await;
    println!(
        "l10: paging by 2 saw {} of 5 jobs and {} of 5 assets",
        jobs.len(),
        assets.len()
    );
    for ids in [&jobs, &assets] {
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!((ids.len(), distinct.len()), (5, 5), "{ids:?}");
    }
    // A time is still accepted, for a hand-written query.
    let (status, _) = sandbox
        .get(&sandbox.alpha, "/api/v1/jobs?before=2026-01-02T00:00:00Z")
        .await;
    assert_eq!(status, StatusCode::OK);
    sandbox.teardown().await;
}
