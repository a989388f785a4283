//! The benchmark's clients' HTTP: HTTP/1.1 in plain text to the servers
//! the benchmark started on this machine, over hyper's connection API.
//!
//! What the clients spend is part of what a run reports (the whole
//! machine's CPU per instance; the peers harness counts their process as
//! Baton's), so they should spend what a lean worker would. The CLI's
//! client ([`crate::client::Client`], reqwest) parses a URL, asks whether
//! a proxy applies and checks a connection out of a pool keyed by origin
//! for every request: a third of the clients' CPU under W3 with a request
//! per job (docs/benchmarks.md, "A ninth round"). Here a request takes the
//! last idle connection (or opens one) and writes its path as it is.

use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::StatusCode;

use crate::client::Failure;

/// Connections to one server.
pub struct Wire {
    address: SocketAddr,
    /// The `Host` every request names: the address as the server URL gave it.
    host: HeaderValue,
    /// Connections that answered their last request and may take another.
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

/// A server's answer: its status and its whole body.
pub struct Answer {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Wire {
    /// Connections to `server`, an `http://` URL with an IP address and a port.
    pub fn new(server: &str) -> Result<Wire, Failure> {
        let authority = server.strip_prefix("http://").map(|rest| rest.trim_end_matches('/'));
        let address = authority.and_then(|authority| authority.parse::<SocketAddr>().ok());
        let (Some(authority), Some(address)) = (authority, address) else {
            return Err(Failure(format!("the benchmark's clients take http://ADDRESS:PORT, not {server}")));
        };
        let host = HeaderValue::from_str(authority).map_err(|e| Failure(format!("{authority} cannot be a Host header: {e}")))?;
        Ok(Wire { address, host, idle: Mutex::default() })
    }

    /// POSTs `body` (JSON) to `path`. A request that fails on the way is
    /// not sent again: it may have been done.
    pub async fn post(&self, path: &str, body: Bytes) -> Result<Answer, Failure> {
        let mut connection = self.connection().await?;
        let request = hyper::Request::post(path)
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(Full::new(body))
            .map_err(|e| Failure(format!("POST {path} cannot be written: {e}")))?;
        let lost = |e: hyper::Error| Failure(format!("POST {path} to {} got no whole answer: {e}", self.address));
        let (head, body) = connection.send_request(request).await.map_err(lost)?.into_parts();
        let body = body.collect().await.map_err(lost)?.to_bytes();
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(connection);
        Ok(Answer { status: head.status, body })
    }

    /// An idle connection ready for a request, or a new one.
    async fn connection(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
        loop {
            let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let Some(mut connection) = idle else { break };
            // Ready at once unless the server closed it meanwhile.
            if connection.ready().await.is_ok() {
                return Ok(connection);
            }
        }
        let unreachable = |e: &dyn std::fmt::Display| Failure(format!("cannot reach the Baton server at {}: {e}", self.address));
        let stream = tokio::net::TcpStream::connect(self.address).await.map_err(|e| unreachable(&e))?;
        stream.set_nodelay(true).map_err(|e| unreachable(&e))?;
        let (connection, driver) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| unreachable(&e))?;
        // The connection's reads and writes run as a task of their own, until either side closes it.
        tokio::spawn(driver);
        Ok(connection)
    }
}
