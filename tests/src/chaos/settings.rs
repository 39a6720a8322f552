//! The settings every role replica of the suite runs with: fast versions of production's, and
//! limits raised so that admission is not what is tested.

use std::net::SocketAddr;

use crate::sandbox::WEBHOOK_SECRET;

pub fn common_env(
    prefix: &str,
    database_url: &str,
    s3: &SocketAddr,
    bucket: &str,
    keys: &[(String, String)],
) -> Vec<(String, String)> {
    let api_keys = keys
        .iter()
        .map(|(c, k)| format!("{c}:{k}"))
        .collect::<Vec<_>>()
        .join(",");
    let credits = keys
        .iter()
        .map(|(c, _)| format!("{c}:1000000000"))
        .collect::<Vec<_>>()
        .join(",");
    [
        ("ATELIER_DATABASE_URL", database_url.to_owned()),
        ("ATELIER_DATABASE_POOL_SIZE", "8".to_owned()),
        ("ATELIER_NATS_PREFIX", prefix.to_owned()),
        ("ATELIER_NATS_REPLICAS", "3".to_owned()),
        ("ATELIER_S3_ENDPOINT", format!("http://{s3}")),
        ("ATELIER_S3_BUCKET", bucket.to_owned()),
        // A hung S3 costs an attempt within seconds, not a slot for minutes.
        ("ATELIER_S3_CONNECT_TIMEOUT", "2s".to_owned()),
        ("ATELIER_S3_READ_TIMEOUT", "5s".to_owned()),
        ("ATELIER_S3_ATTEMPT_TIMEOUT", "10s".to_owned()),
        ("ATELIER_API_KEYS", api_keys),
        ("ATELIER_BOOTSTRAP_CREDITS", credits),
        ("ATELIER_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        // Long enough to outlast every fault of the schedule (about a minute in all).
        (
            "ATELIER_WEBHOOK_RETRY_SCHEDULE",
            "250ms,500ms,1s,2s,4s,8s,15s,30s".to_owned(),
        ),
        ("ATELIER_WEBHOOK_TIMEOUT", "2s".to_owned()),
        ("ATELIER_ALLOW_PRIVATE_NETWORKS", "true".to_owned()),
        ("ATELIER_JOB_MAX_ATTEMPTS", "8".to_owned()),
        ("ATELIER_JOB_RUN_TIMEOUT", "20s".to_owned()),
        ("ATELIER_LEASE_STALE_AFTER", "3s".to_owned()),
        ("ATELIER_REDISPATCH_AFTER", "5s".to_owned()),
        ("ATELIER_RECONCILE_INTERVAL", "500ms".to_owned()),
        ("ATELIER_WORKER_HEARTBEAT", "500ms".to_owned()),
        ("ATELIER_WORKER_ACK_WAIT", "4s".to_owned()),
        ("ATELIER_WORKER_RETRY_BASE", "300ms".to_owned()),
        // The attempts mostly wait (slow inputs, a hung S3): more slots than cores.
        ("ATELIER_WORKER_SLOTS", "6".to_owned()),
        (
            "ATELIER_TASK_MODELS",
            "upscaler=image.upscale,gpt-image-2=image.generate".to_owned(),
        ),
        (
            "ATELIER_MODEL_PRICES",
            "upscaler=7,gpt-image-2=15".to_owned(),
        ),
        ("ATELIER_CREATION_PRICES", "image=10".to_owned()),
        // The workload is many creates from two clients: admission is not what is tested.
        ("ATELIER_LIMIT_RATE", "100000".to_owned()),
        ("ATELIER_LIMIT_BURST", "100000".to_owned()),
        ("ATELIER_LIMIT_QUEUED", "1000000".to_owned()),
        ("ATELIER_LOG_FORMAT", "text".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}
