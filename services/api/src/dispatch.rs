//! Building the outbox messages the api publishes: job dispatches and webhook requests.

use atelier_kit::{
    ids::{EventId, JobId},
    nats::Names,
};
use atelier_proto::{
    Message,
    jobs::v1::{JobDispatch, WebhookRequest},
};
use std::time::Duration;

use sqlx::{Postgres, Transaction};

use crate::outbox;

/// Queues dispatch number `seq` of a job. Each dispatch has its own `Nats-Msg-Id`, so a
/// re-dispatch is never swallowed by JetStream's duplicate window.
pub async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    names: &Names,
    job: &JobId,
    capability: &str,
    seq: i32,
) -> sqlx::Result<()> {
    enqueue_after(tx, names, job, capability, seq, Duration::ZERO).await
}

/// Queues dispatch number `seq`, published once `delay` has passed (a retry's backoff).
pub async fn enqueue_after(
    tx: &mut Transaction<'_, Postgres>,
    names: &Names,
    job: &JobId,
    capability: &str,
    seq: i32,
    delay: Duration,
) -> sqlx::Result<()> {
    let dispatch = Dispatch::new(names, job, capability, seq);
    outbox::enqueue_after(
        tx,
        &dispatch.subject,
        &dispatch.msg_id,
        dispatch.payload,
        delay,
    )
    .await
}

/// Dispatch number `seq` of a job as an outbox row: subject, message id and payload.
pub struct Dispatch {
    pub subject: String,
    pub msg_id: String,
    pub payload: Vec<u8>,
}

impl Dispatch {
    pub fn new(names: &Names, job: &JobId, capability: &str, seq: i32) -> Self {
        let message = JobDispatch {
            job_id: job.to_string(),
            capability: capability.to_owned(),
            dispatch_seq: seq as u32,
        };
        Dispatch {
            subject: format!("{}.{job}", names.job_subject(capability)),
            msg_id: format!("{job}:{seq}"),
            payload: message.encode_to_vec(),
        }
    }
}

/// Queues the webhook for a committed terminal state.
pub async fn enqueue_webhook(
    tx: &mut Transaction<'_, Postgres>,
    names: &Names,
    job: &JobId,
    client: &str,
    url: &str,
    payload_json: String,
    trace_id: Option<&str>,
) -> sqlx::Result<()> {
    let event = EventId::generate();
    let message = WebhookRequest {
        event_id: event.to_string(),
        job_id: job.to_string(),
        client_id: client.to_owned(),
        url: url.to_owned(),
        payload_json,
        redeliver: false,
        trace_id: trace_id.unwrap_or_default().to_owned(),
    };
    outbox::enqueue(
        tx,
        &names.webhook_subject(job.as_str()),
        event.as_str(),
        message.encode_to_vec(),
    )
    .await
}
