//! The invariant checker. It reads only what a partner and an operator can see — the API,
//! the receiver's log, the database, the bucket and the streams — once faults have stopped
//! and the platform has settled, and never the platform's own code: each invariant is a query
//! or a comparison written here from RELIABILITY.md.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures::StreamExt as _;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::{
    receiver::{Answer, Receipt},
    settle::{output_objects, stream_leftovers},
    workload::{Face, Record},
};

/// One invariant's result: how many things it looked at, and what broke it.
pub struct Verdict {
    pub name: &'static str,
    pub checked: usize,
    pub violations: Vec<String>,
}

impl Verdict {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            checked: 0,
            violations: Vec::new(),
        }
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.violations.push(what());
        }
    }
}

const TERMINAL: [&str; 4] = ["succeeded", "failed", "cancelled", "expired"];

/// What the checker reads from.
pub struct Views<'a> {
    pub pool: &'a PgPool,
    pub http: &'a reqwest::Client,
    pub api: &'a str,
    pub keys: &'a [(String, String)],
    pub storage: &'a atelier_kit::storage::Storage,
    pub jetstream: &'a async_nats::jetstream::Context,
    pub streams: Vec<String>,
    pub receipts: &'a [Receipt],
    pub record: &'a Record,
    pub unexpected_exits: &'a [String],
}

/// Every invariant, in the order of the printed table.
pub async fn check(views: &Views<'_>) -> anyhow::Result<Vec<Verdict>> {
    let jobs = job_rows(views.pool).await?;
    Ok(vec![
        accepted_jobs_end(views, &jobs).await?,
        one_terminal_transition(views, &jobs).await?,
        one_outcome(views, &jobs),
        one_webhook_event(views, &jobs).await?,
        webhooks_delivered(views, &jobs),
        refunds(views).await?,
        outputs(views).await?,
        outbox(views).await?,
        streams(views).await?,
        idempotency(views).await?,
        roles(views),
        answers(views),
    ])
}

/// A job row as the checker needs it.
struct Job {
    status: String,
    webhook: bool,
}

async fn job_rows(pool: &PgPool) -> anyhow::Result<HashMap<String, Job>> {
    let rows: Vec<(String, String, bool)> =
        sqlx::query_as("SELECT id, status, webhook_url IS NOT NULL FROM jobs")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(id, status, webhook)| (id, Job { status, webhook }))
        .collect())
}

/// I1/I2: every create answered with an id has its job, and the API shows it ended.
async fn accepted_jobs_end(
    views: &Views<'_>,
    jobs: &HashMap<String, Job>,
) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::new("accepted job ends, once, as the API says");
    let key = |client: usize| views.keys[client].1.clone();
    let reads = futures::stream::iter(views.record.accepted.iter().map(|a| {
        let url = format!("{}/api/v1/jobs/{}", views.api, a.job_id);
        let request = views.http.get(url).bearer_auth(key(a.client));
        async move {
            let answer = request.send().await;
            let body: Option<Value> = match answer {
                Ok(r) if r.status().is_success() => r.json().await.ok(),
                _ => None,
            };
            (a, body)
        }
    }))
    .buffer_unordered(16)
    .collect::<Vec<_>>()
    .await;
    for (accepted, body) in reads {
        let id = &accepted.job_id;
        let status = body.as_ref().and_then(|b| b["status"].as_str());
        let row = jobs.get(id);
        verdict.check(
            status.is_some_and(|s| TERMINAL.contains(&s))
                && row.is_some_and(|r| Some(r.status.as_str()) == status),
            || {
                format!(
                    "{id} ({:?}): API says {status:?}, database {:?}",
                    accepted.face,
                    row.map(|r| &r.status)
                )
            },
        );
    }
    for (id, job) in jobs {
        verdict.check(TERMINAL.contains(&job.status.as_str()), || {
            format!("{id} never ended: {}", job.status)
        });
    }
    Ok(verdict)
}

/// I4: the feed of each job holds exactly one terminal transition, the one the row shows, and
/// nothing changed the job after it (a late result of an earlier attempt, say).
async fn one_terminal_transition(
    views: &Views<'_>,
    jobs: &HashMap<String, Job>,
) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::new("exactly one terminal transition, last");
    let rows: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT job_id, array_agg(type ORDER BY tx, id) FROM job_events
         WHERE type LIKE 'job.%' GROUP BY job_id",
    )
    .fetch_all(views.pool)
    .await?;
    let histories: HashMap<String, Vec<String>> = rows.into_iter().collect();
    for (id, job) in jobs {
        let history = histories.get(id).cloned().unwrap_or_default();
        let terminal = |t: &String| TERMINAL.iter().any(|s| *t == format!("job.{s}"));
        let terminals = history.iter().filter(|t| terminal(t)).count();
        let last = history.last().map(String::as_str);
        verdict.check(
            terminals == 1 && last == Some(format!("job.{}", job.status).as_str()),
            || format!("{id} ({}): {}", job.status, history.join(" > ")),
        );
    }
    Ok(verdict)
}

/// No job both succeeded and failed: every webhook a partner got for a job names one outcome,
/// the one the job has.
fn one_outcome(views: &Views<'_>, jobs: &HashMap<String, Job>) -> Verdict {
    let mut verdict = Verdict::new("one outcome per job (webhooks agree)");
    let mut events: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in views.receipts {
        events.entry(&r.job_id).or_default().insert(&r.event);
    }
    for (id, seen) in events {
        let status = jobs.get(id).map(|j| j.status.as_str());
        verdict.check(
            seen.len() == 1
                && status.is_some_and(|s| seen.contains(format!("generation.{s}").as_str())),
            || format!("{id}: webhooks said {seen:?}, the job is {status:?}"),
        );
    }
    verdict
}

/// I5: one event per terminal transition: one delivery row per job with a webhook, and one
/// `webhook-id` in everything the receiver got for it.
async fn one_webhook_event(
    views: &Views<'_>,
    jobs: &HashMap<String, Job>,
) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::new("one webhook event per transition");
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT job_id, count(*) FROM webhook.deliveries GROUP BY job_id")
            .fetch_all(views.pool)
            .await?;
    let deliveries: HashMap<String, i64> = rows.into_iter().collect();
    let mut ids: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for r in views.receipts {
        ids.entry(&r.job_id).or_default().insert(&r.webhook_id);
    }
    for (id, _) in jobs.iter().filter(|(_, j)| j.webhook) {
        let rows = deliveries.get(id).copied().unwrap_or(0);
        let received = ids.get(id.as_str()).map_or(0, BTreeSet::len);
        verdict.check(rows == 1 && received == 1, || {
            format!("{id}: {rows} delivery rows, {received} webhook-ids received")
        });
    }
    Ok(verdict)
}

/// I5: every event reached the receiver, genuinely signed, and was answered 2xx at least once.
fn webhooks_delivered(views: &Views<'_>, jobs: &HashMap<String, Job>) -> Verdict {
    let mut verdict = Verdict::new("webhook delivered, signed, at least once");
    let mut by_job: HashMap<&str, Vec<&Receipt>> = HashMap::new();
    for r in views.receipts {
        by_job.entry(&r.job_id).or_default().push(r);
    }
    for (id, _) in jobs.iter().filter(|(_, j)| j.webhook) {
        let got = by_job.get(id.as_str()).cloned().unwrap_or_default();
        let forged = got.iter().filter(|r| !r.signed).count();
        let delivered = got.iter().any(|r| r.answer == Answer::Ok);
        verdict.check(delivered && forged == 0, || {
            format!(
                "{id}: {} requests, delivered {delivered}, {forged} badly signed",
                got.len()
            )
        });
    }
    verdict
}

/// I7: each charged job has one charge, and one refund exactly when it did not succeed;
/// every balance is the sum of its ledger.
async fn refunds(views: &Views<'_>) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::new("refunds = charged jobs not succeeded");
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT j.id, j.status,
                count(*) FILTER (WHERE l.kind = 'charge'),
                count(*) FILTER (WHERE l.kind = 'refund')
         FROM jobs j LEFT JOIN credit_ledger l ON l.job_id = j.id
         WHERE j.credits > 0 GROUP BY j.id, j.status",
    )
    .fetch_all(views.pool)
    .await?;
    for (id, status, charges, refunds) in rows {
        let owed = i64::from(status != "succeeded");
        verdict.check(charges == 1 && refunds == owed, || {
            format!("{id} ({status}): {charges} charges, {refunds} refunds")
        });
    }
    let balances: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT a.client_id, a.balance, (SELECT sum(amount)::BIGINT FROM credit_ledger l
                                         WHERE l.client_id = a.client_id)
         FROM credit_accounts a",
    )
    .fetch_all(views.pool)
    .await?;
    for (client, balance, sum) in balances {
        verdict.check(Some(balance) == sum, || {
            format!("{client}: balance {balance}, ledger sums to {sum:?}")
        });
    }
    Ok(verdict)
}

/// I3: every output row's object is there with its size and hash, under its client; and
/// every output object has its row (the orphan sweep has run).
async fn outputs(views: &Views<'_>) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::new("outputs: object <-> asset row");
    let rows: Vec<(String, String, i64, String)> = sqlx::query_as(
        "SELECT j.client_id, a.s3_key, a.size_bytes, a.sha256 FROM assets a
         JOIN jobs j ON j.id = a.job_id WHERE a.role = 'output' AND a.deleted_at IS NULL",
    )
    .fetch_all(views.pool)
    .await?;
    let objects: HashMap<String, i64> = output_objects(views).await?.into_iter().collect();
    let reads =
        futures::stream::iter(rows.into_iter().map(|(client, key, size, sha)| async move {
            let object = views
                .storage
                .client
                .get_object()
                .bucket(&views.storage.bucket)
                .key(&key)
                .send()
                .await;
            let bytes = match object {
                Ok(o) => o.body.collect().await.ok().map(|b| b.to_vec()),
                Err(_) => None,
            };
            (client, key, size, sha, bytes)
        }))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    // A job's outputs are its winning attempt's, and only a job that succeeded has any.
    let attempts: Vec<(String, String, i32, Vec<String>)> = sqlx::query_as(
        "SELECT j.id, j.status, j.attempt, array_agg(DISTINCT split_part(a.s3_key, '/', 4))
         FROM assets a JOIN jobs j ON j.id = a.job_id
         WHERE a.role = 'output' AND a.deleted_at IS NULL GROUP BY j.id, j.status, j.attempt",
    )
    .fetch_all(views.pool)
    .await?;
    for (id, status, attempt, recorded) in attempts {
        verdict.check(
            status == "succeeded" && recorded == [attempt.to_string()],
            || format!("{id} ({status}, attempt {attempt}): outputs of attempts {recorded:?}"),
        );
    }
    let mut recorded = HashSet::new();
    for (client, key, size, sha, bytes) in reads {
        let ok = key.starts_with(&format!("outputs/{client}/"))
            && bytes
                .as_ref()
                .is_some_and(|b| b.len() as i64 == size && hex::encode(Sha256::digest(b)) == sha);
        verdict.check(ok, || {
            format!(
                "{key}: {} bytes read, {size} recorded",
                bytes.map_or(-1, |b| b.len() as i64)
            )
        });
        recorded.insert(key);
    }
    for key in objects.keys() {
        verdict.check(recorded.contains(key), || format!("{key}: no asset row"));
    }
    Ok(verdict)
}

/// I6: no outbox row stays unpublished.
async fn outbox(views: &Views<'_>) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::new("outbox fully published");
    let rows: Vec<(String, bool)> =
        sqlx::query_as("SELECT msg_id, published_at IS NOT NULL FROM outbox")
            .fetch_all(views.pool)
            .await?;
    for (id, published) in rows {
        verdict.check(published, || format!("{id} unpublished"));
    }
    Ok(verdict)
}

/// I6: no message is left unacknowledged in a work queue once every job has ended.
async fn streams(views: &Views<'_>) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::new("no work message left unacked");
    verdict.checked = views.streams.len();
    for left in stream_leftovers(views).await? {
        verdict.check(false, || left.clone());
    }
    Ok(verdict)
}

/// Every create retried with one key maps to one job, in every answer and in the database.
async fn idempotency(views: &Views<'_>) -> anyhow::Result<Verdict> {
    let mut verdict = Verdict::new("one job per idempotency key");
    for (key, ids) in &views.record.keys {
        verdict.check(ids.len() == 1, || format!("{key}: answered {ids:?}"));
    }
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT client_id, idempotency_key, count(*) FROM jobs
         WHERE idempotency_key IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1",
    )
    .fetch_all(views.pool)
    .await?;
    for (client, key, n) in rows {
        verdict.check(false, || format!("{client}/{key}: {n} jobs"));
    }
    Ok(verdict)
}

/// No role process ended on its own (a crash, a panic, an exit on a lost dependency).
fn roles(views: &Views<'_>) -> Verdict {
    let mut verdict = Verdict::new("no role exited by itself");
    verdict.check(views.unexpected_exits.is_empty(), || {
        views.unexpected_exits.join("; ")
    });
    verdict
}

/// Every valid create was answered: none refused as invalid, none left unanswered.
fn answers(views: &Views<'_>) -> Verdict {
    let mut verdict = Verdict::new("every valid create answered");
    let record = views.record;
    verdict.checked = record.accepted.len();
    verdict.violations.extend(record.refused.iter().cloned());
    verdict.violations.extend(
        record
            .gave_up
            .iter()
            .map(|i| format!("#{i}: no answer by the deadline")),
    );
    verdict
}

/// Jobs accepted per face, for the table.
pub fn faces(record: &Record) -> BTreeMap<Face, usize> {
    let mut counts = BTreeMap::new();
    for a in &record.accepted {
        *counts.entry(a.face).or_default() += 1;
    }
    counts
}
