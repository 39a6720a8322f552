//! Jimeng: signed submits and polls.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jimeng_images_are_submitted_signed_and_polled() {
    let fake = FakeJimeng::start("AKfake", "SKfake").await;
    let mut sandbox = Sandbox::start(Settings {
        upscale_worker: false,
        providers: Some(providers(&[
            ("ATELIER_JIMENG_ACCESS_KEY", "AKfake".to_owned()),
            ("ATELIER_JIMENG_SECRET_KEY", "SKfake".to_owned()),
            ("ATELIER_JIMENG_BASE_URL", fake.base_url()),
            (
                "ATELIER_ROUTES",
                "image.generate:jimeng-4=jimeng:jimeng_t2i_v40".to_owned(),
            ),
        ])),
        ..Settings::default()
    })
    .await;
    sandbox.spawn_routed_worker("image.generate");
    let body = json!({"capability": "image.generate", "model": "jimeng-4",
                      "prompt": "an ink painting of a crane", "scale": 50});
    let (status, created) = sandbox.post_job(&sandbox.alpha, &body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let job_id = created["job"]["id"].as_str().unwrap().to_owned();
    let job = sandbox
        .wait_for_job(
            &sandbox.alpha,
            &job_id,
            &["succeeded", "failed"],
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["engine"]["provider"], "jimeng");
    let task_id = upstream_task(&sandbox, &job_id)
        .await
        .expect("task recorded");
    let sent = fake.task_body(&task_id).expect("the task");
    assert_eq!(sent["scale"], 0.5, "{sent}");
    assert_eq!(sent["force_single"], true);
    assert_eq!(fake.submits(), 1);
    assert_eq!(fake.signature_failures(), 0);
    assert!(outputs(&sandbox, &job_id).await[0].starts_with(b"\x89PNG"));
    sandbox.check_invariants().await;
    sandbox.teardown().await;
}
