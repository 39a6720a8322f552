//! M4: a revoked `ATELIER_API_KEYS` key stays revoked across api restarts.

use super::{edge::Api, *};
use atelier_kit::ids::ClientId;

/// M4: the operator revokes a leaked bootstrap key (`atelier keys revoke`, which is this
/// UPDATE) while it is still listed in `ATELIER_API_KEYS`. Before: the next start installed
/// the keys with `revoked_at = NULL`, and the key worked again (200). Now it stays 401; the
/// other client's key is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_bootstrap_key_stays_revoked_across_a_restart() {
    let mut sandbox = Sandbox::provision(Settings {
        upscale_worker: false,
        ..Settings::default()
    })
    .await;
    let api = Api::start(sandbox.api_config()).await;
    sandbox.base = api.base.clone();
    let (alpha, beta) = (sandbox.alpha.clone(), sandbox.beta.clone());
    assert_eq!(sandbox.get(&alpha, "/api/v1/jobs").await.0, StatusCode::OK);
    let client = ClientId::parse(alpha.id).expect("client id");
    let revoked = atelier_api::auth::revoke_client_keys(&sandbox.pool, &client)
        .await
        .expect("revoking");
    assert_eq!(revoked, 1);
    let (status, _) = sandbox.get(&alpha, "/api/v1/jobs").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    api.stop().await;
    let api = Api::start(sandbox.api_config()).await;
    sandbox.base = api.base.clone();
    let (status, body) = sandbox.get(&alpha, "/api/v1/jobs").await;
    println!("m4: the revoked key after a restart: {status} {body}");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(sandbox.get(&beta, "/api/v1/jobs").await.0, StatusCode::OK);
    api.stop().await;
    sandbox.teardown().await;
}
