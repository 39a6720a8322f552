//! The invariants of DESIGN §11, checked by every scenario before it tears down, and the
//! storage reads they need.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::sandbox::Sandbox;

impl Sandbox {
    /// The invariants of DESIGN §11, checked once every job has ended:
    /// I1 every job that ran was released, every release has its dispatch row (a job
    /// cancelled or expired while it waited for the fair dispatcher never had one), and no
    /// dispatch was written twice;
    /// I2 none is left queued or running;
    /// I3 outputs exist in S3 with their recorded size and hash, under their client;
    /// I4 the terminal state is recorded once (finished_at set with no running lease);
    /// I5 every job with a webhook URL has exactly one event, delivered or failed;
    /// I6 no outbox row stays unpublished.
    pub async fn check_invariants(&self) {
        let orphans: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM jobs j
             WHERE (j.attempt > 0 AND j.released_seq = 0)
                OR (j.released_seq > 0 AND NOT EXISTS (SELECT 1 FROM outbox o
                        WHERE o.msg_id = j.id || ':' || j.released_seq))",
        )
        .fetch_all(&self.pool)
        .await
        .expect("I1 query");
        assert!(
            orphans.is_empty(),
            "I1: jobs run or released without their dispatch row: {orphans:?}"
        );
        // Several replicas release dispatches: each is written once.
        let twice: Vec<String> = sqlx::query_scalar(
            "SELECT msg_id FROM outbox WHERE msg_id LIKE 'job_%' GROUP BY msg_id HAVING count(*) > 1",
        )
        .fetch_all(&self.pool)
        .await
        .expect("I1 query");
        assert!(
            twice.is_empty(),
            "I1: dispatches written more than once: {twice:?}"
        );
        let active: Vec<String> =
            sqlx::query_scalar("SELECT id FROM jobs WHERE status IN ('queued', 'running')")
                .fetch_all(&self.pool)
                .await
                .expect("I2 query");
        assert!(active.is_empty(), "I2: jobs not terminal: {active:?}");
        let unfinished: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE finished_at IS NULL OR lease_token IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await
        .expect("I4 query");
        assert_eq!(unfinished, 0, "I4: terminal jobs without a clean finish");
        self.check_outputs().await;
        crate::wait_until(
            "I5/I6: outbox drained and webhooks settled",
            Duration::from_secs(30),
            || async {
                let pending: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                        .fetch_one(&self.pool)
                        .await
                        .ok()?;
                let unsettled: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM jobs j WHERE j.webhook_url IS NOT NULL AND
                   (SELECT count(*) FROM webhook.deliveries d
                    WHERE d.job_id = j.id AND d.status IN ('delivered', 'failed')) <> 1",
                )
                .fetch_one(&self.pool)
                .await
                .ok()?;
                (pending == 0 && unsettled == 0).then_some(())
            },
        )
        .await;
        let duplicates: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT job_id FROM webhook.deliveries
                                   GROUP BY job_id HAVING count(*) > 1) d",
        )
        .fetch_one(&self.pool)
        .await
        .expect("I5 query");
        assert_eq!(duplicates, 0, "I5: a job with more than one webhook event");
    }

    async fn check_outputs(&self) {
        let outputs: Vec<(String, String, String, i64, String)> = sqlx::query_as(
            "SELECT a.client_id, j.client_id, a.s3_key, a.size_bytes, a.sha256
             FROM assets a JOIN jobs j ON j.id = a.job_id WHERE a.role = 'output'",
        )
        .fetch_all(&self.pool)
        .await
        .expect("I3 query");
        for (asset_client, job_client, key, size, sha256) in outputs {
            assert_eq!(
                asset_client, job_client,
                "I3: output owned by another client"
            );
            assert!(
                key.starts_with(&format!("outputs/{job_client}/")),
                "I3: output {key} outside its client's prefix"
            );
            let bytes = self.read_object(&key).await;
            assert_eq!(
                bytes.len() as i64,
                size,
                "I3: {key} size differs from its record"
            );
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                sha256,
                "I3: {key} hash differs"
            );
        }
    }

    pub async fn read_object(&self, key: &str) -> Vec<u8> {
        let object = self
            .storage
            .client
            .get_object()
            .bucket(&self.storage.bucket)
            .key(key)
            .send()
            .await
            .unwrap_or_else(|err| panic!("reading {key}: {err:?}"));
        object.body.collect().await.expect("object body").to_vec()
    }
}
