//! The chaos topology: a three-node NATS cluster, a PostgreSQL cluster of its own, N replicas
//! of every role as real `atelier` processes, and a fault proxy between each role and each
//! dependency. Every process can be killed with SIGKILL and started again on the same ports
//! and data directories.

use std::{
    net::SocketAddr,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use super::proxy::Proxy;
use crate::process::{binary, free_port};

/// Starts a child in its own process group, its output appended to `log`, killed on drop.
fn spawn(mut command: std::process::Command, log: &Path) -> anyhow::Result<Child> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0);
    let mut command = Command::from(command);
    command.kill_on_drop(true);
    command
        .spawn()
        .with_context(|| format!("starting {:?}", command.as_std().get_program()))
}

/// SIGKILL to the child's whole process group (PostgreSQL's backends die with their
/// postmaster, as on a crashed host), then reaps it.
async fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id()
        && let Some(pid) = rustix::process::Pid::from_raw(pid as i32)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
}

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut ready: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !ready().await {
        if tokio::time::Instant::now() > deadline {
            bail!("{what} not ready after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn http_ok(http: &reqwest::Client, url: &str) -> bool {
    let response = http.get(url).send().await;
    response.is_ok_and(|r| r.status().is_success())
}

/// One nats-server of the cluster.
pub struct NatsNode {
    pub name: String,
    pub client: SocketAddr,
    monitor: u16,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl NatsNode {
    fn start(&mut self) -> anyhow::Result<()> {
        let mut command = std::process::Command::new("nats-server");
        command.args(&self.args);
        self.child = Some(spawn(command, &self.log)?);
        Ok(())
    }

    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child).await;
        }
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.start()
    }

    async fn ready(&self, http: &reqwest::Client) -> bool {
        // Healthy once JetStream is up and the node is in contact with a meta leader.
        http_ok(http, &format!("http://127.0.0.1:{}/healthz", self.monitor)).await
    }
}

/// Three nats-servers in one cluster, JetStream on each. Clients are told nothing of the
/// other nodes (`--no_advertise`): they reach the cluster only through their own proxies.
pub async fn nats_cluster(dir: &Path) -> anyhow::Result<Vec<NatsNode>> {
    let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let routes = route_ports
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut nodes = Vec::new();
    for (i, route) in route_ports.iter().enumerate() {
        let name = format!("n{}", i + 1);
        let client: SocketAddr = format!("127.0.0.1:{}", free_port()).parse()?;
        let monitor = free_port();
        let store = dir.join(&name);
        std::fs::create_dir_all(&store)?;
        let args = [
            "--server_name",
            &name,
            "--cluster_name",
            "atelier-chaos",
            "-a",
            "127.0.0.1",
            "-p",
            &client.port().to_string(),
            "-m",
            &monitor.to_string(),
            "--cluster",
            &format!("nats://127.0.0.1:{route}"),
            "--routes",
            &routes,
            "--no_advertise",
            "-js",
            "-sd",
            &store.display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec();
        let mut node = NatsNode {
            log: dir.join(format!("{name}.log")),
            name,
            client,
            monitor,
            args,
            child: None,
        };
        node.start()?;
        nodes.push(node);
    }
    let http = reqwest::Client::new();
    for node in &nodes {
        wait_for(&node.name, Duration::from_secs(30), || node.ready(&http)).await?;
    }
    Ok(nodes)
}

/// A PostgreSQL cluster in its own data directory, run as the `postgres` user (initdb refuses
/// root), so the harness can kill and restart it.
pub struct Postgres {
    pub addr: SocketAddr,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    uid: u32,
    gid: u32,
    child: Option<Child>,
}

/// The server binaries of the newest installed PostgreSQL (Debian's layout).
fn postgres_bin() -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no /usr/lib/postgresql (run deploy/local/deps.sh)")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").exists())
        .collect();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
    });
    found.pop().context("no PostgreSQL server binaries")
}

fn user_ids(user: &str) -> anyhow::Result<(u32, u32)> {
    let id = |flag: &str| -> anyhow::Result<u32> {
        let out = std::process::Command::new("id")
            .args([flag, user])
            .output()?;
        anyhow::ensure!(out.status.success(), "no user {user}");
        Ok(String::from_utf8(out.stdout)?.trim().parse()?)
    };
    Ok((id("-u")?, id("-g")?))
}

impl Postgres {
    pub async fn init(dir: &Path) -> anyhow::Result<Self> {
        let bin = postgres_bin()?;
        let (uid, gid) = user_ids("postgres")?;
        let data = dir.join("pg");
        std::fs::create_dir_all(&data)?;
        std::os::unix::fs::chown(&data, Some(uid), Some(gid))?;
        let log = dir.join("postgres.log");
        let mut initdb = std::process::Command::new(bin.join("initdb"));
        initdb
            .args(["-D", &data.display().to_string()])
            .args(["-U", "postgres", "--auth=trust", "--no-sync"])
            .uid(uid)
            .gid(gid);
        let status = spawn(initdb, &log)?.wait().await?;
        anyhow::ensure!(status.success(), "initdb failed (see {})", log.display());
        let mut pg = Self {
            addr: format!("127.0.0.1:{}", free_port()).parse()?,
            bin,
            data,
            log,
            uid,
            gid,
            child: None,
        };
        pg.start()?;
        pg.ready().await?;
        Ok(pg)
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        let mut postgres = std::process::Command::new(self.bin.join("postgres"));
        postgres
            .args(["-D", &self.data.display().to_string()])
            .args(["-p", &self.addr.port().to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args([
                "-c",
                &format!("unix_socket_directories={}", self.data.display()),
            ])
            .args(["-c", "max_connections=300"])
            // A process crash loses nothing the OS has been handed; only a crash of the whole
            // machine would need fsync, and the suite never crashes the machine.
            .args(["-c", "fsync=off"])
            .uid(self.uid)
            .gid(self.gid);
        self.child = Some(spawn(postgres, &self.log)?);
        Ok(())
    }

    pub async fn ready(&self) -> anyhow::Result<()> {
        let url = self.url("postgres");
        wait_for("postgresql", Duration::from_secs(60), || {
            let url = url.clone();
            async move {
                use sqlx::Connection as _;
                match sqlx::PgConnection::connect(&url).await {
                    Ok(conn) => {
                        let _ = conn.close().await;
                        true
                    }
                    Err(_) => false,
                }
            }
        })
        .await
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@{}/{database}", self.addr)
    }

    /// SIGKILL to the postmaster and every backend: a crash, recovered from the WAL on start.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child).await;
        }
    }
}

/// The proxies one role replica reaches its dependencies through.
pub struct Links {
    /// One per NATS node, in the order of the cluster.
    pub nats: Vec<Proxy>,
}

impl Links {
    pub fn nats_url(&self) -> String {
        self.nats
            .iter()
            .map(|p| format!("nats://{}", p.addr))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One replica of a role: `atelier <args>` on its own health port.
pub struct Replica {
    /// `api-1`, `worker-image-2`, `webhook-1`.
    pub name: String,
    pub args: Vec<String>,
    pub port: u16,
    /// Its own proxies to the NATS nodes (`Links::nats_url`).
    nats_url: String,
    env: Vec<(String, String)>,
    log: PathBuf,
    child: Option<Child>,
    /// Exits nobody asked for (a crash of the role itself), with their status.
    pub unexpected_exits: Vec<String>,
}

impl Replica {
    pub fn new(
        name: String,
        args: &[&str],
        env: Vec<(String, String)>,
        nats_url: String,
        dir: &Path,
    ) -> Self {
        Self {
            log: dir.join(format!("{name}.log")),
            name,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            port: free_port(),
            nats_url,
            env,
            child: None,
            unexpected_exits: Vec::new(),
        }
    }

    pub fn start(&mut self) -> anyhow::Result<()> {
        let mut command = std::process::Command::new(binary());
        command
            .args(&self.args)
            .envs(self.env.iter().cloned())
            .env("ATELIER_HTTP_ADDR", format!("127.0.0.1:{}", self.port))
            .env("ATELIER_NATS_URL", &self.nats_url);
        self.child = Some(spawn(command, &self.log)?);
        Ok(())
    }

    pub async fn ready(&self, timeout: Duration) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        wait_for(&self.name, timeout, || http_ok(&http, &url)).await
    }

    /// Notes an exit the harness did not cause (then the replica is started again).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            self.unexpected_exits
                .push(format!("{}: {status}", self.name));
            self.start()?;
        }
        Ok(())
    }

    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child).await;
        }
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`) to the replica's process group.
    pub fn pause(&self, paused: bool) {
        let signal = if paused {
            rustix::process::Signal::STOP
        } else {
            rustix::process::Signal::CONT
        };
        if let Some(pid) = self.child.as_ref().and_then(Child::id)
            && let Some(pid) = rustix::process::Pid::from_raw(pid as i32)
        {
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
