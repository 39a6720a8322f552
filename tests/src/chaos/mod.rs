//! The chaos suite (issue #18): every role replicated as real processes on a three-node NATS
//! cluster and a PostgreSQL of its own, a seeded workload on every face, a seeded schedule of
//! faults (SIGKILLs, partitions, an S3 that refuses or hangs, a slow or crashed database), and
//! an independent checker of the invariants once everything has settled.
//!
//! `cargo run -p atelier-tests --bin chaos -- --jobs 300 --faults 8 [--seed N]`; the README
//! ("Chaos") shows the topology, the faults and the last soak's table.

pub mod checker;
pub mod faults;
pub mod proxy;
pub mod receiver;
mod report;
mod settings;
mod settle;
pub mod topology;
pub mod workload;

pub use report::Report;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use atelier_kit::{config::S3Config, nats::Names, storage::Storage};
use tokio::sync::Mutex;

use self::{
    faults::{Described, Fault, Kind},
    proxy::{Mode, Proxy},
    topology::{Links, NatsNode, Postgres, Replica},
    workload::Workload,
};

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub jobs: usize,
    pub faults: usize,
    pub seed: u64,
    /// Creates in flight at once (several clients).
    pub concurrency: usize,
    /// How long the platform may take to settle after the last fault.
    pub settle: Duration,
    /// Only these kinds of fault (`faults::KINDS`); empty for all.
    pub kinds: Vec<String>,
}

/// The roles and how many replicas of each: every worker the workload uses, twice.
const ROLES: [(&str, &[&str]); 5] = [
    ("api", &["api"]),
    ("webhook", &["webhook"]),
    ("worker-image", &["worker", "image"]),
    ("worker-upscale", &["worker", "upscale"]),
    ("worker-inpaint", &["worker", "inpaint"]),
];
const REPLICAS: usize = 2;

/// The capabilities whose work queues the checker inspects.
const CAPABILITIES: [&str; 3] = ["image.generate", "image.upscale", "image.inpaint"];

/// The whole running system, shared by the fault tasks and the supervisor.
struct Platform {
    nats: Mutex<Vec<NatsNode>>,
    postgres: Mutex<Postgres>,
    postgres_proxy: Mutex<Proxy>,
    s3_proxy: Mutex<Proxy>,
    replicas: Vec<Mutex<Replica>>,
    /// Each replica's proxies to the NATS nodes, and a lock serialising its partitions.
    links: Vec<Mutex<Links>>,
}

/// Runs the plan end to end and answers what the checker found. Errors are the harness's
/// own (a server that would not start), never a violation.
pub async fn run(plan: Plan) -> anyhow::Result<Report> {
    let started = Instant::now();
    let id = ulid::Ulid::new().to_string().to_lowercase();
    let dir = std::env::temp_dir().join(format!("atelier-chaos-{id}"));
    std::fs::create_dir_all(&dir)?;
    println!("chaos: seed {}, logs in {}", plan.seed, dir.display());

    let nats = topology::nats_cluster(&dir).await?;
    let postgres = Postgres::init(&dir).await?;
    {
        use sqlx::Connection as _;
        let mut admin = sqlx::PgConnection::connect(&postgres.url("postgres")).await?;
        sqlx::query("CREATE DATABASE atelier")
            .execute(&mut admin)
            .await?;
    }
    let s3 = S3Config {
        bucket: format!("chaos-{id}"),
        ..S3Config::from_env().context("S3 settings (source .local/env)")?
    };
    let storage = Storage::connect(&s3).await;
    storage.ensure_bucket().await?;
    let s3_upstream: SocketAddr = s3
        .endpoint
        .as_deref()
        .and_then(|e| e.strip_prefix("http://"))
        .context("an http:// S3 endpoint")?
        .parse()?;
    let postgres_proxy = Proxy::start(postgres.addr).await?;
    let s3_proxy = Proxy::start(s3_upstream).await?;

    let keys: Vec<(String, String)> = ["alpha", "beta"]
        .iter()
        .map(|c| ((*c).to_owned(), format!("sk-{c}-{id}")))
        .collect();
    let prefix = format!("c{id}");
    let env = settings::common_env(
        &prefix,
        &format!("postgres://postgres@{}/atelier", postgres_proxy.addr),
        &s3_proxy.addr,
        &s3.bucket,
        &keys,
    );
    let mut replicas = Vec::new();
    let mut links = Vec::new();
    for (role, args) in ROLES {
        for n in 1..=REPLICAS {
            let mut proxies = Vec::new();
            for node in &nats {
                proxies.push(Proxy::start(node.client).await?);
            }
            let link = Links { nats: proxies };
            let mut replica = Replica::new(
                format!("{role}-{n}"),
                args,
                env.clone(),
                link.nats_url(),
                &dir,
            );
            replica.start()?;
            // The apis migrate the database; start the others once they have.
            if role == "api" {
                replica.ready(Duration::from_secs(90)).await?;
            }
            replicas.push(replica);
            links.push(link);
        }
    }
    for replica in &replicas {
        replica.ready(Duration::from_secs(90)).await?;
    }
    let names: Vec<String> = replicas.iter().map(|r| r.name.clone()).collect();
    let apis: Vec<String> = replicas
        .iter()
        .filter(|r| r.args[0] == "api")
        .map(Replica::base)
        .collect();

    let schedule = faults::schedule(
        plan.seed,
        plan.jobs,
        plan.faults,
        replicas.len(),
        &plan.kinds,
    );
    println!("fault schedule ({} faults):", schedule.len());
    for fault in &schedule {
        println!(
            "  {}",
            Described {
                fault,
                replicas: &names
            }
        );
    }

    let platform = Arc::new(Platform {
        nats: Mutex::new(nats),
        postgres: Mutex::new(postgres),
        postgres_proxy: Mutex::new(postgres_proxy),
        s3_proxy: Mutex::new(s3_proxy),
        replicas: replicas.into_iter().map(Mutex::new).collect(),
        links: links.into_iter().map(Mutex::new).collect(),
    });
    let hooks = receiver::Hooks::start(plan.seed, Duration::from_secs(4)).await?;
    let peer = crate::peer::Peer::start().await;
    let image = peer.serve(
        "in.png",
        crate::peer::File::plain(crate::gradient_png(48, 48)),
    );
    let slow = peer.serve(
        "slow.png",
        crate::peer::File {
            delay: Duration::from_millis(1500),
            ..crate::peer::File::plain(crate::gradient_png(48, 48))
        },
    );
    let mask = peer.serve("mask.png", crate::peer::File::plain(mask_png(48, 48)));
    let workload = Arc::new(Workload {
        jobs: plan.jobs,
        concurrency: plan.concurrency,
        seed: plan.seed,
        apis: apis.clone(),
        clients: keys.clone(),
        hook_url: hooks.url.clone(),
        image_url: image,
        slow_url: slow,
        mask_url: mask,
        missing_url: format!("{}/files/never-there.png", peer.base),
    });

    let supervisor = tokio::spawn(supervise(platform.clone()));
    let done = Arc::new(AtomicUsize::new(0));
    let work = tokio::spawn(workload.run(done.clone()));
    let mut injections = tokio::task::JoinSet::new();
    for fault in schedule.clone() {
        while done.load(Ordering::Relaxed) < fault.after && !work.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        injections.spawn(inject(platform.clone(), fault));
    }
    let record = work.await?;
    while let Some(done) = injections.join_next().await {
        done??;
    }
    let last_fault = Instant::now();
    println!(
        "workload and faults done after {:.1} s; settling",
        started.elapsed().as_secs_f64()
    );

    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&platform.postgres.lock().await.url("atelier"))
        .await?;
    let nats_urls = platform
        .nats
        .lock()
        .await
        .iter()
        .map(|n| format!("nats://{}", n.client))
        .collect::<Vec<_>>();
    let jetstream = async_nats::jetstream::new(async_nats::connect(nats_urls).await?);
    let names = Names::new(&prefix);
    let mut streams: Vec<String> = CAPABILITIES.iter().map(|c| names.job_stream(c)).collect();
    streams.push(names.webhooks_stream());
    let http = reqwest::Client::new();
    let exits = Vec::new();
    let mut settled_in = None;
    let deadline = last_fault + plan.settle;
    let mut reported = Instant::now();
    loop {
        let views = checker::Views {
            pool: &pool,
            http: &http,
            api: &apis[0],
            keys: &keys,
            storage: &storage,
            jetstream: &jetstream,
            streams: streams.clone(),
            receipts: &[],
            record: &record,
            unexpected_exits: &exits,
        };
        let waiting = settle::unsettled(&views)
            .await
            .unwrap_or_else(|err| vec![format!("{err:#}")]);
        if waiting.is_empty() {
            settled_in = Some(last_fault.elapsed());
            break;
        }
        if Instant::now() > deadline {
            println!("not settled: {}", waiting.join(", "));
            break;
        }
        if reported.elapsed() > Duration::from_secs(10) {
            println!("settling: {}", waiting.join(", "));
            reported = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    supervisor.abort();
    let mut exits = Vec::new();
    for replica in &platform.replicas {
        exits.extend(replica.lock().await.unexpected_exits.clone());
    }
    let receipts = hooks.receipts();
    let views = checker::Views {
        pool: &pool,
        http: &http,
        api: &apis[0],
        keys: &keys,
        storage: &storage,
        jetstream: &jetstream,
        streams,
        receipts: &receipts,
        record: &record,
        unexpected_exits: &exits,
    };
    let verdicts = checker::check(&views).await?;
    let mut injected: Vec<(&'static str, usize)> = Vec::new();
    for fault in &schedule {
        match injected.iter_mut().find(|(l, _)| *l == fault.kind.label()) {
            Some((_, n)) => *n += 1,
            None => injected.push((fault.kind.label(), 1)),
        }
    }
    for replica in &platform.replicas {
        replica.lock().await.kill().await;
    }
    for node in platform.nats.lock().await.iter_mut() {
        node.kill().await;
    }
    platform.postgres.lock().await.kill().await;
    let report = Report {
        plan,
        record,
        verdicts,
        injected,
        elapsed: started.elapsed(),
        settled_in,
        dir,
    };
    // Logs are kept when something broke, or when asked (`ATELIER_CHAOS_KEEP_LOGS=1`).
    if report.violations() == 0 && std::env::var_os("ATELIER_CHAOS_KEEP_LOGS").is_none() {
        let _ = std::fs::remove_dir_all(&report.dir);
    }
    Ok(report)
}

/// Starts again any replica that exited without being killed, noting it.
async fn supervise(platform: Arc<Platform>) {
    loop {
        for replica in &platform.replicas {
            if let Ok(mut replica) = replica.try_lock()
                && let Err(err) = replica.check_alive()
            {
                eprintln!("supervisor: {}: {err:#}", replica.name);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Injects one fault, holds it, and heals it.
async fn inject(platform: Arc<Platform>, fault: Fault) -> anyhow::Result<()> {
    let hold = fault.hold;
    match fault.kind {
        Kind::KillReplica(r) => {
            let mut replica = platform.replicas[r].lock().await;
            replica.kill().await;
            tokio::time::sleep(hold).await;
            replica.start()?;
        }
        Kind::PauseReplica(r) => {
            let replica = platform.replicas[r].lock().await;
            replica.pause(true);
            tokio::time::sleep(hold).await;
            replica.pause(false);
        }
        Kind::KillNats(n) => {
            // One node down at a time: the streams keep a quorum of two.
            let mut nodes = platform.nats.lock().await;
            nodes[n].kill().await;
            tokio::time::sleep(hold).await;
            nodes[n].restart()?;
        }
        Kind::KillPostgres => {
            let mut postgres = platform.postgres.lock().await;
            postgres.kill().await;
            tokio::time::sleep(hold).await;
            postgres.start()?;
        }
        Kind::S3(mode) => {
            let proxy = platform.s3_proxy.lock().await;
            proxy.set(mode);
            tokio::time::sleep(hold).await;
            proxy.set(Mode::Pass);
        }
        Kind::PartitionNats(r) => {
            let links = platform.links[r].lock().await;
            for proxy in &links.nats {
                proxy.set(Mode::Partition);
            }
            tokio::time::sleep(hold).await;
            for proxy in &links.nats {
                proxy.set(Mode::Pass);
            }
        }
        Kind::SlowPostgres(delay) => {
            let proxy = platform.postgres_proxy.lock().await;
            proxy.set(Mode::Delay(delay));
            tokio::time::sleep(hold).await;
            proxy.set(Mode::Pass);
        }
    }
    Ok(())
}

/// An inpainting mask: white (repaint) in the middle third, black elsewhere.
fn mask_png(width: u32, height: u32) -> Vec<u8> {
    let mask = image::GrayImage::from_fn(width, height, |x, y| {
        let inside =
            (width / 3..2 * width / 3).contains(&x) && (height / 3..2 * height / 3).contains(&y);
        image::Luma([if inside { 255 } else { 0 }])
    });
    let mut png = Vec::new();
    mask.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encoding the mask");
    png
}
