//! The workload: several clients creating a seeded mix of jobs on the native, tasks and
//! creations faces through any api replica, retrying what may be retried (a create with its
//! `Idempotency-Key`, anything answered 503 or never sent), cancelling some, repeating some
//! creates on purpose, each following its job to its end before the next — and recording
//! every answer, for the checker.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The partner-facing API a create went through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Face {
    Native,
    Tasks,
    Creations,
}

/// A create the platform accepted (answered 2xx with an id).
#[derive(Clone, Debug)]
pub struct Accepted {
    pub index: usize,
    pub face: Face,
    pub client: usize,
    pub job_id: String,
    /// Whether a webhook URL was given.
    pub webhook: bool,
}

/// Everything the clients saw.
#[derive(Default, Debug)]
pub struct Record {
    pub accepted: Vec<Accepted>,
    /// Every job id answered for each idempotency key (`client/key`): one each, or a violation.
    pub keys: BTreeMap<String, BTreeSet<String>>,
    /// Tasks creates whose outcome the client cannot know (no idempotency on that face).
    pub unknown: Vec<String>,
    /// Creates refused with a 4xx other than 429: the workload's own bug, or the platform's.
    pub refused: Vec<String>,
    /// Creates still unanswered at the deadline.
    pub gave_up: Vec<usize>,
    /// Requests sent again after a failure.
    pub retries: usize,
    pub cancels: usize,
}

pub struct Workload {
    pub jobs: usize,
    pub concurrency: usize,
    pub seed: u64,
    /// Api replicas' base URLs; a client moves to the next on a failure.
    pub apis: Vec<String>,
    /// `(client id, key)`.
    pub clients: Vec<(String, String)>,
    pub hook_url: String,
    /// Input URLs: a small image, the same answered after 1.5 s, an inpainting mask, and one
    /// that is never there.
    pub image_url: String,
    pub slow_url: String,
    pub mask_url: String,
    pub missing_url: String,
}

/// One create, decided by the seed and the job's index alone.
struct Spec {
    face: Face,
    client: usize,
    body: Value,
    cancel: bool,
    repeat: bool,
}

impl Workload {
    fn spec(&self, index: usize) -> Spec {
        let mut rng = StdRng::seed_from_u64(self.seed ^ (index as u64).wrapping_mul(0x9e37_79b9));
        let client = index % self.clients.len();
        let hook = self.hook_url.as_str();
        let roll: f64 = rng.random();
        let prompt = format!("chaos {index}");
        let (face, body) = if roll < 0.7 {
            let kind: f64 = rng.random();
            let body = if kind < 0.5 {
                json!({"capability": "image.generate", "prompt": prompt, "width": 64, "height": 64,
                       "webhookUrl": hook})
            } else if kind < 0.75 {
                // Some inputs answer slowly, so that attempts are often in flight when a
                // worker is paused or cut off (and a late result of a superseded attempt
                // reaches the platform).
                let url = if rng.random::<f64>() < 0.3 {
                    &self.slow_url
                } else {
                    &self.image_url
                };
                json!({"capability": "image.upscale", "imageUrls": [url], "scale": 2,
                       "webhookUrl": hook})
            } else if kind < 0.92 {
                json!({"capability": "image.inpaint", "prompt": prompt,
                       "imageUrls": [self.image_url, self.mask_url], "webhookUrl": hook})
            } else {
                // A poison job: its input is never there; it fails, classified, once.
                json!({"capability": "image.upscale", "imageUrls": [self.missing_url],
                       "webhookUrl": hook})
            };
            (Face::Native, body)
        } else if roll < 0.9 {
            let url = if rng.random::<f64>() < 0.85 {
                &self.image_url
            } else {
                &self.missing_url
            };
            (
                Face::Tasks,
                json!({"model_id": "upscaler", "image_urls": [url]}),
            )
        } else {
            (
                Face::Creations,
                json!({"type": "image", "prompt": prompt, "aspect_ratio": "1:1",
                       "webhookUrl": hook}),
            )
        };
        Spec {
            face,
            client,
            body,
            cancel: face == Face::Native && rng.random::<f64>() < 0.1,
            repeat: face != Face::Tasks && rng.random::<f64>() < 0.15,
        }
    }

    /// Runs every create to its answer and its job to its end, `concurrency` clients at a
    /// time; `done` counts the jobs as they are done with (the fault schedule's clock).
    pub async fn run(self: Arc<Self>, done: Arc<AtomicUsize>) -> Record {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        let next = Arc::new(AtomicUsize::new(0));
        let record = Arc::new(Mutex::new(Record::default()));
        let mut clients = tokio::task::JoinSet::new();
        for _ in 0..self.concurrency {
            let (me, http, next, record, done) = (
                self.clone(),
                http.clone(),
                next.clone(),
                record.clone(),
                done.clone(),
            );
            clients.spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= me.jobs {
                        return;
                    }
                    me.one(&http, index, &record).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        while clients.join_next().await.is_some() {}
        Arc::into_inner(record)
            .expect("every client ended")
            .into_inner()
            .expect("record lock")
    }

    async fn one(&self, http: &reqwest::Client, index: usize, record: &Mutex<Record>) {
        let spec = self.spec(index);
        let (client, key) = &self.clients[spec.client];
        let idempotency = format!("chaos-{}-{index}", self.seed);
        let path = match spec.face {
            Face::Native => "/api/v1/jobs",
            Face::Tasks => "/api/v1/tasks/create",
            Face::Creations => "/openapi/v1/creations",
        };
        let sends = if spec.repeat { 2 } else { 1 };
        let mut job_id = None;
        for _ in 0..sends {
            let answer = self
                .send(http, index, record, |base| {
                    let request = http
                        .post(format!("{base}{path}"))
                        .bearer_auth(key)
                        .json(&spec.body);
                    if spec.face == Face::Tasks {
                        request
                    } else {
                        request.header("Idempotency-Key", &idempotency)
                    }
                })
                .await;
            let Some(body) = answer else { return };
            let id = match spec.face {
                Face::Native => body["job"]["id"].as_str(),
                Face::Tasks => body["data"]["task_id"].as_str(),
                Face::Creations => body["job"]["job_id"].as_str(),
            };
            let Some(id) = id.map(str::to_owned) else {
                record
                    .lock()
                    .expect("record")
                    .refused
                    .push(format!("#{index}: no id in {body}"));
                return;
            };
            let mut record = record.lock().expect("record");
            if spec.face != Face::Tasks {
                record
                    .keys
                    .entry(format!("{client}/{idempotency}"))
                    .or_default()
                    .insert(id.clone());
            }
            if job_id.is_none() {
                record.accepted.push(Accepted {
                    index,
                    face: spec.face,
                    client: spec.client,
                    job_id: id.clone(),
                    webhook: spec.body.get("webhookUrl").is_some(),
                });
            }
            job_id = Some(id);
        }
        let Some(id) = job_id else { return };
        if spec.cancel {
            let path = format!("/api/v1/jobs/{id}/cancel");
            self.send(http, index, record, |base| {
                http.post(format!("{base}{path}")).bearer_auth(key)
            })
            .await;
            record.lock().expect("record").cancels += 1;
        }
        self.follow(http, index, key, &id).await;
    }

    /// Polls the job until it has ended, as a partner without webhooks would, so that each
    /// client has one job in flight and the faults fall while jobs run rather than while a
    /// backlog waits. Gives up after three minutes (the checker judges the job anyway).
    async fn follow(&self, http: &reqwest::Client, index: usize, key: &str, id: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        let mut attempt = index;
        while tokio::time::Instant::now() < deadline {
            let base = &self.apis[attempt % self.apis.len()];
            let answer = http
                .get(format!("{base}/api/v1/jobs/{id}"))
                .bearer_auth(key)
                .send()
                .await;
            let status = match answer {
                Ok(r) if r.status().is_success() => r.json::<Value>().await.ok(),
                _ => {
                    attempt += 1;
                    None
                }
            };
            let ended = status
                .as_ref()
                .and_then(|j| j["status"].as_str())
                .is_some_and(|s| !matches!(s, "queued" | "running"));
            if ended {
                return;
            }
            // A partner's polling interval.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Sends until an answer that settles it: the body of a 2xx, or `None` (refused, unknown,
    /// or the deadline passed). A cancel's 409 (the job had already ended) settles it too.
    async fn send(
        &self,
        http: &reqwest::Client,
        index: usize,
        record: &Mutex<Record>,
        request: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
        let mut attempt = 0usize;
        loop {
            let base = &self.apis[(index + attempt) % self.apis.len()];
            let built = request(base).build().expect("request");
            let tasks = built.url().path().starts_with("/api/v1/tasks");
            let cancel = built.url().path().ends_with("/cancel");
            let sent = http.execute(built).await;
            let retry = match sent {
                Ok(response) if response.status().is_success() => {
                    return response.json().await.ok();
                }
                Ok(response) if cancel && response.status() == StatusCode::CONFLICT => return None,
                Ok(response)
                    if response.status() == StatusCode::SERVICE_UNAVAILABLE
                        || response.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    true
                }
                // Nothing was created by an answer of 503 or 429, nor by a request never sent;
                // anything else may have been, and a task cannot be asked for again safely.
                Ok(response) if response.status().is_server_error() => !tasks,
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    record
                        .lock()
                        .expect("record")
                        .refused
                        .push(format!("#{index}: {status} {text}"));
                    return None;
                }
                Err(err) => err.is_connect() || !tasks,
            };
            if !retry {
                record
                    .lock()
                    .expect("record")
                    .unknown
                    .push(format!("#{index}"));
                return None;
            }
            if tokio::time::Instant::now() > deadline {
                record.lock().expect("record").gave_up.push(index);
                return None;
            }
            attempt += 1;
            record.lock().expect("record").retries += 1;
            // A client's back-off between tries, not a synchronisation.
            tokio::time::sleep(Duration::from_millis(50 * attempt.min(20) as u64)).await;
        }
    }
}
