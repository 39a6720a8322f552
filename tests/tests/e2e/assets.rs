//! Assets: the seed's upload, register, query, list and download requests; inputs by id and
//! by asset URL; refusals that leave nothing behind; Range, deletion, retention, isolation.

use std::time::Duration;

use atelier_tests::{
    gradient_png,
    peer::{File, Peer},
    sandbox::{Client, Sandbox, Settings},
    wait_until,
};
use reqwest::{StatusCode, multipart};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn part(name: &str, bytes: Vec<u8>) -> multipart::Part {
    multipart::Part::bytes(bytes).file_name(name.to_owned())
}

async fn upload(sandbox: &Sandbox, client: &Client, form: multipart::Form) -> (StatusCode, Value) {
    // A refused upload is answered before its body is read, and the server then closes the
    // connection; never hand that connection back to the client's pool.
    let response = sandbox
        .http
        .post(sandbox.url("/api/v1/assets"))
        .bearer_auth(&client.key)
        .header("connection", "close")
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends only the head of a `length`-byte upload with `Expect: 100-continue` and returns the
/// answer's head, as curl does for large files.
async fn announce_only(sandbox: &Sandbox, length: u64) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = reqwest::Url::parse(&sandbox.url("/api/v1/assets")).unwrap();
    let address = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /api/v1/assets HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {length}\r\n\
         Expect: 100-continue\r\n\r\n",
        url.host_str().unwrap(),
        sandbox.alpha.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

async fn input_objects(sandbox: &Sandbox) -> i32 {
    let listed = sandbox
        .storage
        .client
        .list_objects_v2()
        .bucket(&sandbox.storage.bucket)
        .prefix("inputs/")
        .send()
        .await
        .unwrap();
    listed.key_count().unwrap_or(0)
}

/// Nothing of a refused request may remain: no input record, no object under inputs/.
async fn assert_no_inputs(sandbox: &Sandbox) {
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM assets WHERE role = 'input'")
        .fetch_one(&sandbox.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0, "no input record");
    assert_eq!(input_objects(sandbox).await, 0, "no input object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_and_registered_assets_feed_jobs() {
    let sandbox = Sandbox::start(Settings::default()).await;
    let peer = Peer::start().await;
    let png = gradient_png(40, 30);

    // The seed's upload, with two files in one request.
    let form = multipart::Form::new()
        .part("files", part("reference.png", png.clone()))
        .part("files", part("second.png", gradient_png(20, 10)));
    let (status, created) = upload(&sandbox, &sandbox.alpha, form).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let assets = created["assets"].as_array().unwrap();
    assert_eq!(assets.len(), 2);
    let uploaded = &assets[0];
    assert_eq!(uploaded["kind"], "image");
    assert_eq!(uploaded["contentType"], "image/png");
    assert_eq!(uploaded["name"], "reference.png");
    assert_eq!(
        (uploaded["width"].as_i64(), uploaded["height"].as_i64()),
        (Some(40), Some(30))
    );
    assert_eq!(uploaded["size"].as_u64(), Some(png.len() as u64));
    assert_eq!(uploaded["sha256"], hex::encode(Sha256::digest(&png)));
    let uploaded_id = uploaded["id"].as_str().unwrap().to_owned();

    // The seed's registration of an external URL.
    let remote = peer.serve("reference.png", File::plain(gradient_png(16, 16)));
    let response = sandbox
        .http
        .post(sandbox.url("/api/v1/assets"))
        .bearer_auth(&sandbox.alpha.key)
        .json(&json!({"url": remote, "name": "reference.png", "kind": "image"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let registered: Value = response.json().await.unwrap();
    let registered = &registered["assets"][0];
    assert_eq!(registered["sourceUrl"], remote.as_str());
    let registered_url = sandbox.url(registered["url"].as_str().unwrap());

    // Query and list.
    let (status, one) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/assets/{uploaded_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], uploaded_id.as_str());
    let (_, list) = sandbox
        .get(&sandbox.alpha, "/api/v1/assets?kind=image&limit=10")
        .await;
    assert_eq!(list["assets"].as_array().unwrap().len(), 3);

    // One job by id, one by the registered asset's URL.
    let (_, by_id) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.upscale", "inputAssetIds": [uploaded_id], "scale": 2}),
            None,
        )
        .await;
    let (_, by_url) = sandbox
        .post_job(
            &sandbox.alpha,
            &json!({"capability": "image.upscale", "inputUrls": [registered_url], "scale": 2}),
            None,
        )
        .await;
    for (job, size) in [(by_id, (80, 60)), (by_url, (32, 32))] {
        let id = job["job"]["id"].as_str().expect("job created");
        let done = sandbox
            .wait_for_job(
                &sandbox.alpha,
                id,
                &["succeeded", "failed"],
                Duration::from_secs(30),
            )
            .await;
        assert_eq!(done["status"], "succeeded", "{done}");
        let asset = done["outputAssetIds"][0].as_str().unwrap();
        let (_, output) = sandbox
            .get(&sandbox.alpha, &format!("/api/v1/assets/{asset}"))
            .await;
        assert_eq!(
            (output["width"].as_i64(), output["height"].as_i64()),
            (Some(size.0), Some(size.1))
        );
    }
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_uploads_leave_nothing_behind() {
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let peer = Peer::start().await;

    // A text file renamed .png.
    let form =
        multipart::Form::new().part("files", part("notes.png", b"hello, this is text".to_vec()));
    let (status, body) = upload(&sandbox, &sandbox.alpha, form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unsupported content"),
        "{body}"
    );

    // A PNG whose header declares 60000x60000 (no pixel data follows).
    let mut huge = gradient_png(1, 1);
    huge[16..20].copy_from_slice(&60000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&60000u32.to_be_bytes());
    let form = multipart::Form::new()
        .part("files", part("fine.png", gradient_png(8, 8)))
        .part("files", part("huge.png", huge));
    let (status, body) = upload(&sandbox, &sandbox.alpha, form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("60000x60000"),
        "{body}"
    );

    // Over the cap (8 MiB here), declared up front.
    let mut big = gradient_png(8, 8);
    big.resize(9 * 1024 * 1024, 0);
    let form = multipart::Form::new().part("files", part("big.png", big.clone()));
    let (status, _) = upload(&sandbox, &sandbox.alpha, form).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // A client that waits for `100 Continue` is refused before it sends a byte of the body.
    let answer = announce_only(&sandbox, 1 << 30).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    // Over the cap, streamed without a length: counted and cut off.
    let stream = futures::stream::iter(
        big.chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let form = multipart::Form::new().part(
        "files",
        multipart::Part::stream(reqwest::Body::wrap_stream(stream)).file_name("big.png"),
    );
    let (status, _) = upload(&sandbox, &sandbox.alpha, form).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // A URL that redirects to a private address is not followed.
    let redirect = File {
        redirect_to: Some("http://169.254.169.254/latest/meta-data/".into()),
        ..File::plain(Vec::new())
    };
    let url = peer.serve("moved.png", redirect);
    let response = sandbox
        .http
        .post(sandbox.url("/api/v1/assets"))
        .bearer_auth(&sandbox.alpha.key)
        .json(&json!({"url": url, "kind": "image"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains(&url) && message.contains("redirect"),
        "{message}"
    );

    assert_no_inputs(&sandbox).await;
    sandbox.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_ranges_deletion_retention_and_isolation() {
    let sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        asset_retention: Duration::from_secs(2),
        ..Settings::default()
    })
    .await;
    let png = gradient_png(64, 64);
    let (_, created) = upload(
        &sandbox,
        &sandbox.alpha,
        multipart::Form::new().part("files", part("a.png", png.clone())),
    )
    .await;
    let id = created["assets"][0]["id"].as_str().unwrap().to_owned();
    let download = sandbox.url(&format!("/api/v1/assets/{id}/download"));

    let full = sandbox
        .http
        .get(&download)
        .bearer_auth(&sandbox.alpha.key)
        .send()
        .await
        .unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(
        full.headers()["content-disposition"],
        "attachment; filename=\"a.png\""
    );
    assert_eq!(full.bytes().await.unwrap().as_ref(), png.as_slice());
    let ranged = sandbox
        .http
        .get(&download)
        .bearer_auth(&sandbox.alpha.key)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        ranged.headers()["content-range"],
        format!("bytes 10-19/{}", png.len()).as_str()
    );
    assert_eq!(ranged.bytes().await.unwrap().as_ref(), &png[10..20]);

    // Beta sees nothing of alpha's, and cannot delete it.
    let (status, _) = sandbox
        .get(&sandbox.beta, &format!("/api/v1/assets/{id}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let denied = sandbox
        .http
        .delete(sandbox.url(&format!("/api/v1/assets/{id}")))
        .bearer_auth(&sandbox.beta.key)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::NOT_FOUND);

    let deleted = sandbox
        .http
        .delete(sandbox.url(&format!("/api/v1/assets/{id}")))
        .bearer_auth(&sandbox.alpha.key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let (status, _) = sandbox
        .get(&sandbox.alpha, &format!("/api/v1/assets/{id}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Retention: a fresh upload disappears by itself.
    let (_, created) = upload(
        &sandbox,
        &sandbox.alpha,
        multipart::Form::new().part("files", part("b.png", png)),
    )
    .await;
    let id = created["assets"][0]["id"].as_str().unwrap().to_owned();
    wait_until(
        "retention to delete the asset",
        Duration::from_secs(30),
        || async {
            let (status, _) = sandbox
                .get(&sandbox.alpha, &format!("/api/v1/assets/{id}"))
                .await;
            (status == StatusCode::NOT_FOUND).then_some(())
        },
    )
    .await;
    assert_eq!(
        input_objects(&sandbox).await,
        0,
        "deleted and expired objects are gone"
    );
    sandbox.teardown().await;
}
