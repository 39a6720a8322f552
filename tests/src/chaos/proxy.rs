//! A TCP fault proxy: one listener in front of one upstream (a NATS node, PostgreSQL, the S3
//! server), whose mode the fault schedule turns. Connections pass bytes through, with added
//! latency, are cut (every open one reset, new ones refused), or are partitioned (held open
//! with nothing passing either way, as a network that drops packets looks to both ends).

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// What the proxy does to traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    /// Every chunk waits this long before it is forwarded.
    Delay(Duration),
    /// Open connections are reset; new ones are accepted and reset at once.
    Refuse,
    /// Open connections stay open but carry nothing; new ones are accepted and held.
    Partition,
}

/// A running proxy; it stops (and drops its connections) when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    accepted: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, watched) = watch::channel(Mode::Pass);
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(connection(client, upstream, watched.clone()));
            }
        });
        Ok(Self {
            addr,
            mode,
            accepted,
            accept,
        })
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Connections accepted so far, whatever became of them.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Resets the connection (RST, not FIN): what a peer sees of a crashed host or a firewall.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Waits while the mode is a partition; returns the mode that ended it.
async fn through_partition(mode: &mut watch::Receiver<Mode>) -> Mode {
    loop {
        let now = *mode.borrow_and_update();
        if now != Mode::Partition {
            return now;
        }
        if mode.changed().await.is_err() {
            return Mode::Refuse;
        }
    }
}

async fn connection(mut client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if through_partition(&mut mode).await == Mode::Refuse {
        return reset(client);
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return reset(client);
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    // Either direction ending (EOF, an error, a reset asked for) ends both.
    let cut = tokio::select! {
        cut = pump(client_read, server_write, mode.clone()) => cut,
        cut = pump(server_read, client_write, mode) => cut,
    };
    if cut {
        reset(client);
        reset(server);
    }
}

/// Copies one direction chunk by chunk, applying the mode to each chunk. Answers whether the
/// connection is to be reset (the mode turned to refuse) rather than closed.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut mode: watch::Receiver<Mode>,
) -> bool {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = tokio::select! {
            read = from.read(&mut buf) => match read {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            },
            changed = mode.changed() => {
                if changed.is_err() || *mode.borrow() == Mode::Refuse {
                    return true;
                }
                continue;
            }
        };
        match through_partition(&mut mode).await {
            Mode::Refuse => return true,
            Mode::Delay(delay) => tokio::time::sleep(delay).await,
            Mode::Pass | Mode::Partition => {}
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        stream.write_all(b"ping").await.ok()?;
        let mut buf = [0u8; 4];
        tokio::time::timeout(within, stream.read_exact(&mut buf))
            .await
            .ok()?
            .ok()?;
        Some(buf.to_vec())
    }

    #[tokio::test]
    async fn bytes_pass_are_held_in_a_partition_and_cut_on_refuse() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let short = Duration::from_millis(300);
        assert_eq!(round_trip(&mut stream, short).await.unwrap(), b"ping");

        proxy.set(Mode::Partition);
        assert!(round_trip(&mut stream, short).await.is_none(), "held");
        // Healing lets the held bytes through, in order, on the same connection.
        proxy.set(Mode::Pass);
        let mut buf = [0u8; 4];
        tokio::time::timeout(short, stream.read_exact(&mut buf))
            .await
            .expect("the held ping arrives after healing")
            .unwrap();
        assert_eq!(&buf, b"ping");

        proxy.set(Mode::Refuse);
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(short, stream.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "the open connection is cut: {read:?}"
        );
        let mut fresh = TcpStream::connect(proxy.addr).await.unwrap();
        assert!(
            round_trip(&mut fresh, short).await.is_none(),
            "new ones too"
        );
    }

    #[tokio::test]
    async fn a_delay_holds_each_chunk() {
        let proxy = Proxy::start(echo_server().await).await.unwrap();
        proxy.set(Mode::Delay(Duration::from_millis(100)));
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(
            round_trip(&mut stream, Duration::from_secs(2))
                .await
                .is_some()
        );
        // Once on the way up, once on the way down.
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}
