//! The partner's webhook receiver under chaos: it answers 500 or hangs past the sender's
//! timeout some of the time (decided by the seed, the event and how often it came), and logs
//! every request it got, with whether its signature was genuine.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post};

use crate::{sandbox::WEBHOOK_KEY, verify};

/// What the receiver did with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Error,
    /// Held past the sender's timeout, then answered 200 to nobody.
    Hung,
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Receipt {
    pub webhook_id: String,
    pub job_id: String,
    pub event: String,
    pub signed: bool,
    pub answer: Answer,
}

#[derive(Default)]
struct Log {
    receipts: Vec<Receipt>,
    /// Requests so far per `webhook-id`.
    seen: HashMap<String, u32>,
}

#[derive(Clone)]
struct Receiver {
    seed: u64,
    hang: Duration,
    log: Arc<Mutex<Log>>,
}

/// The running receiver; it stops when dropped.
pub struct Hooks {
    pub url: String,
    log: Arc<Mutex<Log>>,
    server: tokio::task::JoinHandle<()>,
}

/// A stable hash of the seed, the event and the attempt: the same run answers the same way.
fn roll(seed: u64, id: &str, nth: u32) -> u64 {
    let mut h = seed ^ 0x9e37_79b9_7f4a_7c15;
    for b in id.bytes().chain(nth.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h % 100
}

/// First requests of an event: 15 % answered 500, 4 % hung; later ones 10 % answered 500.
fn answer_for(seed: u64, id: &str, nth: u32) -> Answer {
    match (nth, roll(seed, id, nth)) {
        (1, r) if r < 15 => Answer::Error,
        (1, r) if r < 19 => Answer::Hung,
        (_, r) if r < 10 => Answer::Error,
        _ => Answer::Ok,
    }
}

impl Hooks {
    /// `hang`: how long a hung request is held (longer than the webhook-service's timeout).
    pub async fn start(seed: u64, hang: Duration) -> anyhow::Result<Self> {
        let log = Arc::new(Mutex::new(Log::default()));
        let state = Receiver {
            seed,
            hang,
            log: log.clone(),
        };
        let app = Router::new().route("/hook", post(hook)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://{addr}/hook"),
            log,
            server,
        })
    }

    pub fn receipts(&self) -> Vec<Receipt> {
        self.log.lock().expect("receiver log").receipts.clone()
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn hook(State(state): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let webhook_id = header("webhook-id");
    let signed = verify::standard(
        WEBHOOK_KEY,
        &webhook_id,
        &header("webhook-timestamp"),
        &body,
        &header("webhook-signature"),
    ) && verify::zhinian(WEBHOOK_KEY, &body, &header("x-zhinian-signature"));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let answer = {
        let mut log = state.log.lock().expect("receiver log");
        let nth = log.seen.entry(webhook_id.clone()).or_default();
        *nth += 1;
        let answer = answer_for(state.seed, &webhook_id, *nth);
        log.receipts.push(Receipt {
            webhook_id,
            job_id: json["job"]["id"].as_str().unwrap_or_default().to_owned(),
            event: json["event"].as_str().unwrap_or_default().to_owned(),
            signed,
            answer,
        });
        answer
    };
    match answer {
        Answer::Ok => StatusCode::OK,
        Answer::Error => StatusCode::INTERNAL_SERVER_ERROR,
        Answer::Hung => {
            tokio::time::sleep(state.hang).await;
            StatusCode::OK
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_a_function_of_the_seed_and_mostly_ok() {
        let ids: Vec<String> = (0..2000).map(|i| format!("evt_{i}")).collect();
        let first: Vec<Answer> = ids.iter().map(|id| answer_for(7, id, 1)).collect();
        assert_eq!(
            first,
            ids.iter()
                .map(|id| answer_for(7, id, 1))
                .collect::<Vec<_>>()
        );
        let share = |a: Answer| first.iter().filter(|x| **x == a).count() as f64 / 2000.0;
        assert!(
            (0.10..0.20).contains(&share(Answer::Error)),
            "{}",
            share(Answer::Error)
        );
        assert!(
            (0.02..0.07).contains(&share(Answer::Hung)),
            "{}",
            share(Answer::Hung)
        );
        assert!(ids.iter().all(|id| answer_for(7, id, 2) != Answer::Hung));
    }
}
