//! A cap on open connections: each accepted connection holds a slot for as
//! long as it is open; one that finds none is answered at once (a 503 with
//! `Retry-After` over plain HTTP; closed over HTTPS, where nothing can be
//! said before the handshake) instead of taking a file descriptor the store
//! and the other clients need.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections the kernel may hold for a listener, set up but not yet
/// accepted (the kernel lowers it to `net.core.somaxconn`).
///
/// The standard library's and tokio's listeners ask for 128. A burst of
/// new connections larger than that (a worker of concurrency 10 opens ten
/// at once; a fleet of them restarts together) overflows the queue while
/// the server is busy, and the kernel drops each connection's first packet
/// past it: the client sends it again a second later, so its request waits
/// a second before the server ever sees it. Measured with `baton bench
/// --workload w3 --mode http --separate` (about 640 connections opened as
/// the measured run starts): 226 overflows a run and a slowest instance of
/// 1 032 ms with 128; none with this.
pub const BACKLOG: u32 = 4096;

/// A listener on `address` whose queue of connections not yet accepted
/// holds [`BACKLOG`]. Like the standard library's, it binds a port another
/// socket left in `TIME_WAIT` (a server restarted at once listens again).
/// Called inside a Tokio runtime.
pub fn listen(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(BACKLOG)
}

/// Open connections and what was refused, for `/metrics`.
#[derive(Debug)]
pub struct Connections {
    slots: Arc<Semaphore>,
    max: usize,
    refused: AtomicU64,
}

impl Connections {
    pub fn new(max: usize) -> Arc<Connections> {
        Arc::new(Connections { slots: Arc::new(Semaphore::new(max)), max, refused: AtomicU64::new(0) })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.slots.available_permits()
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections turned away since the server started.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

/// The answer to a connection over the cap, before its request is read:
/// the `too-many-connections` problem, written by hand as raw HTTP since no
/// HTTP server has taken the connection.
fn busy() -> Vec<u8> {
    let (status, body) = crate::error::ApiError::new("too-many-connections", "every connection slot is taken; try again shortly").problem();
    let body = body.to_string();
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/problem+json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Counts each accepted TCP connection against the cap, then hands it to `inner` (TLS, or nothing).
#[derive(Clone)]
pub struct Capped<A> {
    inner: A,
    connections: Arc<Connections>,
    /// Plain HTTP: a refused connection is told why.
    plain: bool,
}

impl<A> Capped<A> {
    pub fn new(inner: A, connections: Arc<Connections>, plain: bool) -> Capped<A> {
        Capped { inner, connections, plain }
    }
}

impl<A, S> Accept<TcpStream, S> for Capped<A>
where
    A: Accept<Counted, S> + Clone + Send + Sync + 'static,
    A::Future: Send,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Pin<Box<dyn std::future::Future<Output = io::Result<(A::Stream, A::Service)>> + Send>>;

    fn accept(&self, mut stream: TcpStream, service: S) -> Self::Future {
        // Every answer is written whole, and a job stream writes each job as
        // it comes: holding a small write back until the last is
        // acknowledged (Nagle) only delays it.
        let _ = stream.set_nodelay(true);
        let slot = self.connections.slots.clone().try_acquire_owned();
        let (inner, connections, plain) = (self.inner.clone(), self.connections.clone(), self.plain);
        Box::pin(async move {
            match slot {
                Ok(slot) => inner.accept(Counted { stream, _slot: slot }, service).await,
                Err(_) => {
                    connections.refused.fetch_add(1, Ordering::Relaxed);
                    if plain {
                        let _ = stream.write_all(&busy()).await;
                        let _ = stream.shutdown().await;
                        // Read what the client sends, for a moment: closing on
                        // unread bytes would reset the connection, and the client
                        // could lose the answer.
                        let mut sink = [0u8; 4096];
                        let drained = async {
                            let mut left: usize = 64 * 1024;
                            while left > 0 {
                                match tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => left = left.saturating_sub(n),
                                }
                            }
                        };
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drained).await;
                    }
                    Err(io::Error::other("every connection slot is taken"))
                }
            }
        })
    }
}

/// A connection holding its slot until it closes.
pub struct Counted {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl AsyncRead for Counted {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
