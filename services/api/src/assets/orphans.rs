//! The orphan sweep: objects in the bucket that no live asset row accounts for — outputs of
//! fenced or stale attempts, kept inputs of jobs that ended without recording them, uploads
//! stored by a handler dropped before it recorded them, objects whose row was marked deleted
//! but whose delete failed — and multipart uploads never completed nor aborted. One api
//! replica at a time (the holder of a transaction-scoped advisory lock) walks the bucket a
//! few pages per tick, resuming where its last tick stopped.
//!
//! Who may account for a key is read from the key's shape, the only shapes Atelier writes
//! (anything else is never touched): `inputs/<client>/<asset>/<name>` is an upload whose row
//! has that asset id; `outputs/<client>/<job>/<attempt>/<file>` and
//! `inputs/<client>/<job>/fetched-<n>` are a job's, recorded with that job id when it ends.
//! So every lookup is by primary key or `assets_by_job`, never a scan by `s3_key`.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use atelier_kit::{
    ids::{AssetId, JobId},
    metrics::metrics,
};
use aws_sdk_s3::error::DisplayErrorContext;
use futures::StreamExt;
use sqlx::{Postgres, Transaction};
use tokio_util::sync::CancellationToken;

use crate::{AppState, config::ApiConfig};

/// Arbitrary but fixed, and not the reconciler's: elects the replica that sweeps this tick.
const SWEEP_LOCK: i64 = 0x4154_454c_4945_5202;
/// Keys per listed page, and pages per tick: bounded work whatever the bucket's size.
const PAGE: i32 = 1000;
const PAGES_PER_TICK: usize = 4;
const CONCURRENT_DELETES: usize = 8;
/// A multipart upload is live for as long as its client keeps sending, which no setting
/// bounds (a 2 GiB upload over a slow link takes hours): only a day's silence abandons it.
const UPLOAD_GRACE_FLOOR: Duration = Duration::from_secs(24 * 3600);

/// How old an object must be before it can be an orphan: longer than any attempt may still
/// be writing or about to report it (the run timeout, then the sweeper's stale-lease window
/// of twice `lease_stale_after`, then one reconcile interval for the sweeper to act).
pub fn grace(config: &ApiConfig) -> Duration {
    config.run_timeout + config.lease_stale_after * 2 + config.reconcile_interval
}

/// Who may account for an object, from its key.
#[derive(Debug, PartialEq, Eq)]
enum Owner {
    Asset(String),
    /// `attempt` is `None` for a kept input, which every attempt of the job reads back.
    Job {
        job: String,
        attempt: Option<i32>,
    },
}

fn owner(key: &str) -> Option<Owner> {
    let parts: Vec<&str> = key.split('/').collect();
    match parts.as_slice() {
        ["outputs", _, job, attempt, file] if JobId::parse(job).is_some() && !file.is_empty() => {
            Some(Owner::Job {
                job: (*job).to_owned(),
                attempt: Some(attempt.parse().ok()?),
            })
        }
        ["inputs", _, job, name] if JobId::parse(job).is_some() => {
            name.strip_prefix("fetched-")?.parse::<u32>().ok()?;
            Some(Owner::Job {
                job: (*job).to_owned(),
                attempt: None,
            })
        }
        ["inputs", _, asset, name] if AssetId::parse(asset).is_some() && !name.is_empty() => {
            Some(Owner::Asset((*asset).to_owned()))
        }
        _ => None,
    }
}

/// A job as the sweep needs it: whether it can still record files, and its latest attempt.
struct JobState {
    open: bool,
    attempt: i32,
}

/// Whether an object past its grace is an orphan. A job still open may record a kept input
/// or its current attempt's outputs (or a later attempt's, once claimed); a fenced earlier
/// attempt's are never recorded, and an ended (or unknown) job records nothing more.
fn is_orphan(
    key: &str,
    owner: &Owner,
    live: &HashSet<String>,
    jobs: &HashMap<String, JobState>,
) -> bool {
    if live.contains(key) {
        return false;
    }
    match owner {
        Owner::Asset(_) => true,
        Owner::Job { job, attempt } => match jobs.get(job) {
            Some(state) if state.open => attempt.is_some_and(|a| a < state.attempt),
            _ => true,
        },
    }
}

/// The sweep's place in the bucket, kept between ticks.
#[derive(Default)]
pub struct Sweep {
    cursor: Option<String>,
    uploads_unlisted: bool,
}

impl Sweep {
    /// One tick: up to a few pages of the walk, then the abandoned multipart uploads; nothing
    /// unless this replica holds the lock. Stops at the first failed S3 call (the next tick
    /// resumes from the last page done).
    pub async fn tick(
        &mut self,
        state: &AppState,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let mut tx = state.pool.begin().await?;
        let leader: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(SWEEP_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if !leader {
            return Ok(());
        }
        let grace = grace(&state.config);
        for _ in 0..PAGES_PER_TICK {
            if shutdown.is_cancelled() {
                break;
            }
            let page = state
                .storage
                .client
                .list_objects_v2()
                .bucket(&state.storage.bucket)
                .max_keys(PAGE)
                .set_continuation_token(self.cursor.clone())
                .send()
                .await
                .map_err(|err| anyhow::anyhow!("listing objects: {}", DisplayErrorContext(&err)))?;
            let cutoff = cutoff(grace);
            let old: Vec<(String, Owner)> = page
                .contents()
                .iter()
                .filter(|o| o.last_modified().is_some_and(|t| older(t, cutoff)))
                .filter_map(|o| {
                    let key = o.key()?;
                    Some((key.to_owned(), owner(key)?))
                })
                .collect();
            let orphans = judge(&mut tx, old).await?;
            delete(state, orphans).await?;
            self.cursor = page.next_continuation_token().map(str::to_owned);
            if self.cursor.is_none() {
                break;
            }
        }
        if !shutdown.is_cancelled() {
            self.abort_uploads(state, grace.max(UPLOAD_GRACE_FLOOR))
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Aborts multipart uploads begun before `grace` ago, one page per tick.
    async fn abort_uploads(&mut self, state: &AppState, grace: Duration) -> anyhow::Result<()> {
        if self.uploads_unlisted {
            return Ok(());
        }
        let listed = state
            .storage
            .client
            .list_multipart_uploads()
            .bucket(&state.storage.bucket)
            .max_uploads(PAGE)
            .send()
            .await;
        let page = match listed {
            Ok(page) => page,
            // s3s-fs, the local server, implements no ListMultipartUploads: nothing to find
            // there, and a production bucket should have an abort-incomplete lifecycle rule.
            Err(err)
                if err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 501) =>
            {
                tracing::info!(
                    "the s3 server cannot list multipart uploads; abandoned ones are left to its lifecycle rules"
                );
                self.uploads_unlisted = true;
                return Ok(());
            }
            Err(err) => anyhow::bail!("listing multipart uploads: {}", DisplayErrorContext(&err)),
        };
        let cutoff = cutoff(grace);
        for upload in page.uploads() {
            let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else {
                continue;
            };
            if owner(key).is_none() || !upload.initiated().is_some_and(|t| older(t, cutoff)) {
                continue;
            }
            state
                .storage
                .client
                .abort_multipart_upload()
                .bucket(&state.storage.bucket)
                .key(key)
                .upload_id(id)
                .send()
                .await
                .map_err(|err| {
                    anyhow::anyhow!("aborting an upload of {key}: {}", DisplayErrorContext(&err))
                })?;
            metrics().orphan_deleted("multipart_upload");
            tracing::info!(%key, "abandoned multipart upload aborted");
        }
        Ok(())
    }
}

/// Milliseconds since the epoch before which an object is past its grace.
fn cutoff(grace: Duration) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(grace).as_millis() as i64
}

/// A second's slack: some servers give times to the second, which may round an object
/// younger than it is down to older.
fn older(time: &aws_sdk_s3::primitives::DateTime, cutoff: i64) -> bool {
    time.to_millis().is_ok_and(|ms| ms + 1000 < cutoff)
}

/// The orphans among `old`: one query for the live rows of the keys' owners, one for their jobs.
async fn judge(
    tx: &mut Transaction<'_, Postgres>,
    old: Vec<(String, Owner)>,
) -> anyhow::Result<Vec<String>> {
    if old.is_empty() {
        return Ok(Vec::new());
    }
    let mut assets = Vec::new();
    let mut jobs = Vec::new();
    for (_, owner) in &old {
        match owner {
            Owner::Asset(id) => assets.push(id.clone()),
            Owner::Job { job, .. } => jobs.push(job.clone()),
        }
    }
    let live: HashSet<String> = sqlx::query_scalar(
        "SELECT s3_key FROM assets
         WHERE deleted_at IS NULL AND (id = ANY($1) OR job_id = ANY($2))",
    )
    .bind(&assets)
    .bind(&jobs)
    .fetch_all(&mut **tx)
    .await
    .context("reading the live assets of listed keys")?
    .into_iter()
    .collect();
    let states: Vec<(String, bool, i32)> = sqlx::query_as(
        "SELECT id, status IN ('queued', 'running'), attempt FROM jobs WHERE id = ANY($1)",
    )
    .bind(&jobs)
    .fetch_all(&mut **tx)
    .await
    .context("reading the jobs of listed keys")?;
    let states: HashMap<String, JobState> = states
        .into_iter()
        .map(|(id, open, attempt)| (id, JobState { open, attempt }))
        .collect();
    Ok(old
        .into_iter()
        .filter(|(key, owner)| is_orphan(key, owner, &live, &states))
        .map(|(key, _)| key)
        .collect())
}

/// Deletes `keys` a few at a time; the first failure stops the rest (S3 is likely failing
/// them all), and the next walk finds them again.
async fn delete(state: &AppState, keys: Vec<String>) -> anyhow::Result<()> {
    let mut deletes = futures::stream::iter(keys)
        .map(|key| async move {
            let deleted = state
                .storage
                .client
                .delete_object()
                .bucket(&state.storage.bucket)
                .key(&key)
                .send()
                .await;
            (key, deleted)
        })
        .buffer_unordered(CONCURRENT_DELETES);
    while let Some((key, deleted)) = deletes.next().await {
        if let Err(err) = deleted {
            anyhow::bail!("deleting {key}: {}", DisplayErrorContext(&err));
        }
        metrics().orphan_deleted("object");
        tracing::info!(%key, "orphaned object deleted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "job_01jabcdefghjkmnpqrstvwxyz0";
    const ASSET: &str = "asset_01jabcdefghjkmnpqrstvwxyz0";

    #[test]
    fn keys_are_owned_by_the_asset_or_job_they_name() {
        let job = |attempt| Owner::Job {
            job: JOB.to_owned(),
            attempt,
        };
        assert_eq!(
            owner(&format!("outputs/c/{JOB}/2/0.png")),
            Some(job(Some(2)))
        );
        assert_eq!(owner(&format!("inputs/c/{JOB}/fetched-3")), Some(job(None)));
        assert_eq!(
            owner(&format!("inputs/c/{ASSET}/cat.png")),
            Some(Owner::Asset(ASSET.to_owned()))
        );
        // Shapes Atelier does not write are nobody's, so never deleted.
        for key in [
            "elsewhere/x.png".to_owned(),
            format!("outputs/c/{JOB}/x/0.png"),
            format!("outputs/c/{JOB}/2/"),
            format!("outputs/c/{JOB}/2/a/0.png"),
            format!("inputs/c/{JOB}/cat.png"),
            format!("inputs/c/{ASSET}/"),
            format!("outputs/c/{ASSET}/1/0.png"),
            "inputs/c/job_short/fetched-0".to_owned(),
        ] {
            assert_eq!(owner(&key), None, "{key}");
        }
    }

    #[test]
    fn only_what_nothing_may_still_record_is_an_orphan() {
        let key = format!("outputs/c/{JOB}/2/0.png");
        let owner = |attempt| Owner::Job {
            job: JOB.to_owned(),
            attempt,
        };
        let jobs = |open, attempt| HashMap::from([(JOB.to_owned(), JobState { open, attempt })]);
        let none = HashSet::new();
        let recorded = HashSet::from([key.clone()]);
        // A recorded key is never an orphan, even of an ended job.
        assert!(!is_orphan(
            &key,
            &owner(Some(2)),
            &recorded,
            &jobs(false, 2)
        ));
        // An ended or unknown job records nothing more.
        assert!(is_orphan(&key, &owner(Some(2)), &none, &jobs(false, 2)));
        assert!(is_orphan(&key, &owner(Some(2)), &none, &HashMap::new()));
        // An open job: its current or a later attempt may still report; an earlier cannot.
        assert!(!is_orphan(&key, &owner(Some(2)), &none, &jobs(true, 2)));
        assert!(!is_orphan(&key, &owner(Some(3)), &none, &jobs(true, 2)));
        assert!(is_orphan(&key, &owner(Some(1)), &none, &jobs(true, 2)));
        // Its kept inputs are read back by every later attempt.
        assert!(!is_orphan(&key, &owner(None), &none, &jobs(true, 2)));
        // An upload past its grace with no live row: its request has long ended.
        let asset = Owner::Asset(ASSET.to_owned());
        assert!(is_orphan("k", &asset, &none, &HashMap::new()));
        assert!(!is_orphan(
            "k",
            &asset,
            &HashSet::from(["k".to_owned()]),
            &HashMap::new()
        ));
    }
}
