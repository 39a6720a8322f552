//! L4 and L5: objects no asset row accounts for are reclaimed, and an asset whose object is
//! gone is a 404, not a 500. Abandoned multipart uploads are in `multipart`.

use super::*;

/// Uploads one PNG as `client`; returns the asset.
async fn upload_png(sandbox: &Sandbox, name: &str) -> serde_json::Value {
    let form = reqwest::multipart::Form::new().part(
        "files",
        reqwest::multipart::Part::bytes(gradient_png(16, 12)).file_name(name.to_owned()),
    );
    let response = sandbox
        .http
        .post(sandbox.url("/api/v1/assets"))
        .bearer_auth(&sandbox.alpha.key)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.expect("upload answer");
    body["assets"][0].clone()
}

async fn s3_key(sandbox: &Sandbox, asset: &str) -> String {
    sqlx::query_scalar("SELECT s3_key FROM assets WHERE id = $1")
        .bind(asset)
        .fetch_one(&sandbox.pool)
        .await
        .expect("the asset's key")
}

async fn put(sandbox: &Sandbox, key: &str) {
    sandbox
        .storage
        .client
        .put_object()
        .bucket(&sandbox.storage.bucket)
        .key(key)
        .body(gradient_png(8, 8).into())
        .send()
        .await
        .expect("planting an object");
}

async fn exists(sandbox: &Sandbox, key: &str) -> bool {
    let head = sandbox
        .storage
        .client
        .head_object()
        .bucket(&sandbox.storage.bucket)
        .key(key)
        .send()
        .await;
    match head {
        Ok(_) => true,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => false,
        Err(err) => panic!(
            "head {key}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&err)
        ),
    }
}

/// L5: an asset whose object was deleted behind the api's back (a retention race, an
/// operator). Before: the download was a 500. After: a 404 in the face's error shape, with
/// or without a `Range`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_whose_object_is_gone_is_a_404() {
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let asset = upload_png(&sandbox, "gone.png").await;
    let id = asset["id"].as_str().expect("asset id");
    let path = format!("/api/v1/assets/{id}/download");
    let (status, _) = sandbox.get(&sandbox.alpha, &path).await;
    assert_eq!(status, StatusCode::OK);
    sandbox
        .storage
        .client
        .delete_object()
        .bucket(&sandbox.storage.bucket)
        .key(s3_key(&sandbox, id).await)
        .send()
        .await
        .expect("deleting the object behind the api's back");
    for range in [None, Some("bytes=0-9")] {
        let mut request = sandbox
            .http
            .get(sandbox.url(&path))
            .bearer_auth(&sandbox.alpha.key);
        if let Some(range) = range {
            request = request.header("range", range);
        }
        let response = request.send().await.expect("download");
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        println!("l5: download of a vanished object (range {range:?}): {status} {body}");
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body["error"].is_string(), "{body}");
    }
    sandbox.teardown().await;
}

/// L4: objects nothing accounts for, older than the grace, are deleted; everything a row or
/// a live job may still claim is kept. The grace is the run timeout plus the stale-lease
/// window (2 x 3 s in the sandbox) plus one reconcile interval, so a 10 s run timeout makes
/// it 16.5 s. Before: nothing was ever deleted. After: each orphan goes one sweep after
/// its grace, and the kept objects stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_no_row_accounts_for_are_reclaimed_after_the_grace() {
    let run_timeout = Duration::from_secs(10);
    let grace = run_timeout + Duration::from_secs(6) + Duration::from_millis(500);
    let sandbox = Sandbox::start(Settings {
        run_timeout,
        ..Settings::default()
    })
    .await;
    let peer = Peer::start().await;
    let input = peer.serve("input.png", File::plain(gradient_png(32, 24)));
    let (status, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.upscale", "imageUrls": [input], "resolution": "2k"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let done_job = created["job"]["id"].as_str().unwrap().to_owned();
    let done = sandbox
        .wait_for_job(
            &sandbox.alpha,
            &done_job,
            &["succeeded", "failed"],
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    // No image.generate worker runs: this job stays queued, its attempts still to come.
    let (status, created) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.generate", "prompt": "x", "width": 64, "height": 64}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let queued_job = created["job"]["id"].as_str().unwrap().to_owned();

    let kept_upload = upload_png(&sandbox, "kept.png").await;
    let kept_upload = s3_key(&sandbox, kept_upload["id"].as_str().unwrap()).await;
    // Retention marked this row and then failed to delete its object.
    let unmarked = upload_png(&sandbox, "marked.png").await;
    let unmarked_id = unmarked["id"].as_str().unwrap().to_owned();
    let marked = s3_key(&sandbox, &unmarked_id).await;
    sqlx::query("UPDATE assets SET deleted_at = now() WHERE id = $1")
        .bind(&unmarked_id)
        .execute(&sandbox.pool)
        .await
        .expect("marking the row deleted");
    let recorded: Vec<String> = sqlx::query_scalar(
        "SELECT s3_key FROM assets WHERE job_id = $1 AND deleted_at IS NULL ORDER BY s3_key",
    )
    .bind(&done_job)
    .fetch_all(&sandbox.pool)
    .await
    .expect("the finished job's assets");
    assert!(
        recorded.iter().any(|k| k.starts_with("outputs/")),
        "{recorded:?}"
    );

    let planted = std::time::SystemTime::now();
    let orphans = [
        // A fenced earlier attempt of a job that has ended.
        format!("outputs/alpha/{done_job}/0/0.png"),
        // A kept input of a job that ended without recording it (sweeper, reject_result).
        format!("inputs/alpha/{done_job}/fetched-7"),
        // An upload whose handler was dropped between storing and recording.
        "inputs/alpha/asset_01jzzzzzzzzzzzzzzzzzzzzzzz/dropped.png".to_owned(),
    ];
    let keep = [
        // A queued job's future attempt, and the input its later attempts read back.
        format!("outputs/alpha/{queued_job}/1/0.png"),
        format!("inputs/alpha/{queued_job}/fetched-0"),
        // A key of no form Atelier writes: never ours to judge.
        "elsewhere/notes.png".to_owned(),
    ];
    for key in orphans.iter().chain(&keep) {
        put(&sandbox, key).await;
    }
    let mut gone: Vec<String> = orphans.to_vec();
    gone.push(marked.clone());
    let mut kept: Vec<String> = keep.to_vec();
    kept.push(kept_upload);
    kept.extend(recorded);

    let reclaimed = wait_until(
        "the orphans to be deleted",
        grace + Duration::from_secs(30),
        || async {
            for key in &gone {
                if exists(&sandbox, key).await {
                    return None;
                }
            }
            Some(planted.elapsed().unwrap_or_default())
        },
    )
    .await;
    println!(
        "l4: {} orphans deleted {:.1}s after they were planted (grace {:.1}s); {} kept objects",
        gone.len(),
        reclaimed.as_secs_f64(),
        grace.as_secs_f64(),
        kept.len()
    );
    assert!(
        reclaimed >= grace,
        "deleted after {reclaimed:?}, inside the {grace:?} grace"
    );
    for key in &kept {
        assert!(exists(&sandbox, key).await, "{key} was deleted");
    }
    let metrics = sandbox
        .http
        .get(sandbox.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let deleted: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("atelier_orphans_deleted_total{kind=\"object\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    // The registry is the process's: other scenarios running alongside add to it.
    assert!(
        deleted >= gone.len() as f64,
        "atelier_orphans_deleted_total{{kind=\"object\"}} {deleted}"
    );
    // The invariants want every job ended.
    let cancelled = sandbox
        .http
        .post(sandbox.url(&format!("/api/v1/jobs/{queued_job}/cancel")))
        .bearer_auth(&sandbox.alpha.key)
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancelled.status(), StatusCode::OK);
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}
