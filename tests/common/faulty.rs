//! A TCP proxy between an edge and its store that a test switches between faults: the edge's
//! `origins` point at [`FaultyOrigin::url`], every connection is forwarded to the real store,
//! and the current [`Fault`] decides, byte by byte, what the edge sees. The switch acts on
//! connections already open too (the edge keeps its origin connections warm and pooled), so
//! a test needs no knowledge of which connection the edge picks.
//!
//! The proxy runs on its own thread and runtime, so it serves whatever runtime (or none) the
//! test uses; dropping it stops it and closes every connection.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the origin does from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A faithful proxy.
    Pass,
    /// Takes requests and never answers: bytes from the edge are swallowed.
    Hang,
    /// Forwards requests, but only this many more bytes of answers (counted over all
    /// connections from the moment of the switch); after that the connections stay open and
    /// silent.
    StallAfter(usize),
    /// Resets (RST) a connection as soon as the edge sends on it.
    Reset,
    /// Answers whatever the edge sends with bytes that are not HTTP, then closes.
    Garbage,
}

/// What an origin that answers garbage sends.
pub const GARBAGE: &[u8] = b"\x00\x17\xffSSH-2.0-not-http\r\n\x01\x02\x03\r\n\r\n";

struct State {
    fault: Mutex<Fault>,
    /// Answer bytes still let through under [`Fault::StallAfter`].
    budget: AtomicUsize,
    accepted: AtomicUsize,
}

impl State {
    fn fault(&self) -> Fault {
        *self.fault.lock().unwrap()
    }

    /// How many of `n` answer bytes may reach the edge now.
    fn allow(&self, n: usize) -> usize {
        match self.fault() {
            Fault::Pass => n,
            Fault::StallAfter(_) => {
                let before = self
                    .budget
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| {
                        Some(b.saturating_sub(n))
                    })
                    .expect("the update always succeeds");
                before.min(n)
            }
            Fault::Hang | Fault::Reset | Fault::Garbage => 0,
        }
    }
}

/// A running proxy; see the module documentation.
pub struct FaultyOrigin {
    /// `http://127.0.0.1:PORT`, for the edge's `origins`.
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<State>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultyOrigin {
    /// A proxy to `upstream` (`127.0.0.1:PORT`), passing everything until told otherwise.
    pub fn start(upstream: &str) -> FaultyOrigin {
        let upstream: SocketAddr = upstream.parse().expect("upstream is ip:port");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(State {
            fault: Mutex::new(Fault::Pass),
            budget: AtomicUsize::new(0),
            accepted: AtomicUsize::new(0),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = Arc::clone(&state);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("tokio listener");
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        shared.accepted.fetch_add(1, Ordering::SeqCst);
                        tokio::spawn(proxy(client, upstream, Arc::clone(&shared)));
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime drops every connection task, closing their sockets.
        });
        FaultyOrigin {
            url: format!("http://{addr}"),
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Switches what the origin does, on open connections and new ones alike.
    pub fn set(&self, fault: Fault) {
        if let Fault::StallAfter(n) = fault {
            self.state.budget.store(n, Ordering::SeqCst);
        }
        *self.state.fault.lock().unwrap() = fault;
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FaultyOrigin {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// How a connection ends when the edge sends under a fault that ends it.
enum End {
    Closed,
    Reset,
    Garbage,
}

async fn proxy(mut client: TcpStream, upstream: SocketAddr, state: Arc<State>) {
    let _ = client.set_nodelay(true);
    let Ok(mut store) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = store.set_nodelay(true);
    let end = {
        let (mut from_edge, mut to_edge) = client.split();
        let (mut from_store, mut to_store) = store.split();
        let requests = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from_edge.read(&mut buf).await {
                    Ok(0) | Err(_) => return End::Closed,
                    Ok(n) => n,
                };
                match state.fault() {
                    Fault::Pass | Fault::StallAfter(_) => {
                        if to_store.write_all(&buf[..n]).await.is_err() {
                            return End::Closed;
                        }
                    }
                    Fault::Hang => {}
                    Fault::Reset => return End::Reset,
                    Fault::Garbage => return End::Garbage,
                }
            }
        };
        let answers = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = match from_store.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let allowed = state.allow(n);
                if to_edge.write_all(&buf[..allowed]).await.is_err() {
                    break;
                }
            }
            // The store closed: so does the edge's side, unless the answer is being held
            // back (then the stall goes on until the edge gives up).
            if state.fault() == Fault::Pass {
                let _ = to_edge.shutdown().await;
            }
            std::future::pending::<End>().await
        };
        tokio::select! {
            end = requests => end,
            end = answers => end,
        }
    };
    match end {
        End::Closed => {}
        End::Reset => {
            // SO_LINGER 0: close sends RST instead of FIN (and never blocks, which is what
            // tokio's deprecation warns of).
            #[allow(deprecated)]
            let _ = client.set_linger(Some(std::time::Duration::ZERO));
        }
        End::Garbage => {
            let _ = client.write_all(GARBAGE).await;
            let _ = client.shutdown().await;
        }
    }
}
