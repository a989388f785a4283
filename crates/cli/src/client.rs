//! A small HTTP client for the server's API: problems become errors that
//! name their code.

use serde_json::Value;

/// The address `baton serve` listens on by default.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7444";

pub struct Client {
    base: String,
    http: reqwest::Client,
    /// Sent as `X-Baton-Actor` on every request, when set.
    actor: Option<String>,
    /// Sent as `Authorization: Bearer`, when set.
    token: Option<String>,
    /// The tenant the commands work in (`--tenant`), when set.
    tenant: Option<String>,
}

/// A failure a command reports on stderr.
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Client {
    pub fn new(server: &str) -> Client {
        api::tls::install_provider();
        Client {
            base: server.trim_end_matches('/').to_string(),
            http: reqwest::Client::new(),
            actor: None,
            token: None,
            tenant: None,
        }
    }

    /// Trusts `ca_cert` (PEM) besides the system's certificate authorities.
    pub fn trusting(mut self, ca_cert: Option<&std::path::Path>) -> Result<Client, Failure> {
        let Some(path) = ca_cert else { return Ok(self) };
        let pem = std::fs::read(path).map_err(|e| {
            Failure(format!(
                "cannot read the CA certificate {}: {e}",
                path.display()
            ))
        })?;
        let certificate = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| Failure(format!("{} is not a PEM certificate: {e}", path.display())))?;
        self.http = reqwest::Client::builder()
            .tls_certs_merge([certificate])
            .build()
            .map_err(|e| Failure(format!("cannot set up TLS with {}: {e}", path.display())))?;
        Ok(self)
    }

    /// Makes the requests on behalf of `actor` (`baton --as NAME`, `BATON_ACTOR`).
    pub fn acting_as(mut self, actor: Option<String>) -> Result<Client, Failure> {
        if let Some(name) = &actor {
            if name.trim().is_empty()
                || name.len() > 128
                || !name.bytes().all(|b| (b' '..=b'~').contains(&b))
            {
                return Err(Failure(format!(
                    "--as '{name}': a name is 1 to 128 visible ASCII characters"
                )));
            }
        }
        self.actor = actor;
        Ok(self)
    }

    /// Authenticates the requests with an API token (`--token`, `BATON_TOKEN`).
    pub fn with_token(mut self, token: Option<String>) -> Result<Client, Failure> {
        if let Some(token) = &token {
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Failure("--token: a token is printable ASCII without spaces, as `baton tokens create` printed it".into()));
            }
        }
        self.token = token;
        Ok(self)
    }

    /// Works in one tenant: deploys, starts, publishes and signals go to it, lists show only it.
    pub fn in_tenant(mut self, tenant: Option<String>) -> Client {
        self.tenant = tenant;
        self
    }

    /// The tenant given with `--tenant`, if any.
    pub fn tenant(&self) -> Option<String> {
        self.tenant.clone()
    }

    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    /// Downloads what `path` answers into the file `to` (written beside it first, then
    /// renamed, so `to` is never half written); returns its size in bytes.
    pub async fn download(&self, path: &str, to: &std::path::Path) -> Result<u64, Failure> {
        use std::io::Write;
        let mut response = self.reach(self.http.get(format!("{}{path}", self.base))).await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.map_err(|e| Failure(format!("the server's answer was cut short: {e}")))?;
            return Err(problem(status, &text));
        }
        let mut partial = to.as_os_str().to_owned();
        partial.push(".partial");
        let partial = std::path::PathBuf::from(partial);
        let mut file = std::fs::File::create(&partial).map_err(|e| Failure(format!("cannot write {}: {e}", partial.display())))?;
        let mut size = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| Failure(format!("the download was cut short: {e}")))? {
            file.write_all(&chunk).map_err(|e| Failure(format!("cannot write {}: {e}", partial.display())))?;
            size += chunk.len() as u64;
        }
        file.sync_all().map_err(|e| Failure(format!("cannot write {}: {e}", partial.display())))?;
        std::fs::rename(&partial, to).map_err(|e| Failure(format!("cannot move {} to {}: {e}", partial.display(), to.display())))?;
        Ok(size)
    }

    /// Sends `request` as this client (its actor and token).
    async fn reach(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Failure> {
        let request = match &self.actor {
            Some(actor) => request.header("x-baton-actor", actor),
            None => request,
        };
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request.send().await.map_err(|e| {
            // The cause says what went wrong: refused, a certificate not trusted, a name not resolved.
            let mut cause = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(inner) = source {
                cause.push_str(&format!(": {inner}"));
                source = inner.source();
            }
            Failure(format!("cannot reach the Baton server at {} ({cause}); is `baton serve` running? (--server or BATON_SERVER; --ca-cert for a server with its own certificate authority)", self.base))
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, Failure> {
        answer_of(self.reach(request).await?).await
    }

    /// POST, telling an answer from none: `Err` when the request may not have
    /// been done and may be sent again (the server could not be reached, the
    /// answer was cut short, or it answered 503 or 429: not done, try later);
    /// `Ok` with the server's answer, success or refusal, otherwise.
    pub async fn post_answered(&self, path: &str, body: &Value) -> Result<Result<Value, Failure>, Failure> {
        self.post_text_answered(path, body.to_string()).await
    }

    /// [`Client::post_answered`] with the body already written as JSON text.
    pub async fn post_text_answered(&self, path: &str, body: String) -> Result<Result<Value, Failure>, Failure> {
        let request = self.http.post(format!("{}{path}", self.base)).header(reqwest::header::CONTENT_TYPE, "application/json").body(body);
        let response = self.reach(request).await?;
        let status = response.status();
        let text = response.text().await.map_err(|e| Failure(format!("the server's answer was cut short: {e}")))?;
        if status.is_success() {
            return Ok(Ok(json_or_text(text)));
        }
        let failure = problem(status, &text);
        if matches!(status.as_u16(), 503 | 429) {
            return Err(failure);
        }
        Ok(Err(failure))
    }

    /// POSTs and hands back the answer to read as it arrives (a stream of
    /// lines), once the server has accepted it; a refusal is its problem.
    pub async fn open_stream(&self, path: &str, body: &Value) -> Result<reqwest::Response, Failure> {
        let response = self.reach(self.http.post(format!("{}{path}", self.base)).json(body)).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.map_err(|e| Failure(format!("the server's answer was cut short: {e}")))?;
        Err(problem(status, &text))
    }

    /// Every item of a paginated list, page after page.
    pub async fn all(&self, path: &str, mut each: impl FnMut(&Value)) -> Result<(), Failure> {
        let separator = if path.contains('?') { '&' } else { '?' };
        let mut next: Option<String> = None;
        loop {
            let page_path = match &next {
                Some(cursor) => format!("{path}{separator}limit=1000&after={}", encode(cursor)),
                None => format!("{path}{separator}limit=1000"),
            };
            let page = self.get(&page_path).await?;
            for item in page["items"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                each(item);
            }
            match page["next"].as_str() {
                Some(cursor) => next = Some(cursor.to_string()),
                None => return Ok(()),
            }
        }
    }
}

/// Percent-encodes a query value or a path segment (a child instance's job key holds `/`).
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A response's JSON body when it succeeded (text that is not JSON as a
/// string, nothing as null); otherwise the problem it describes.
async fn answer_of(response: reqwest::Response) -> Result<Value, Failure> {
    let status = response.status();
    let text = response.text().await.map_err(|e| Failure(format!("the server's answer was cut short: {e}")))?;
    if status.is_success() {
        return Ok(json_or_text(text));
    }
    Err(problem(status, &text))
}

/// A successful answer's body: its JSON, text that is not JSON as a string, nothing as null.
fn json_or_text(text: String) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// The failure a problem answer describes: its code and detail, and the diagnostics of a model.
pub(crate) fn problem(status: reqwest::StatusCode, text: &str) -> Failure {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
    let (Some(code), Some(detail)) = (value["code"].as_str(), value["detail"].as_str()) else {
        return Failure(format!("the server answered {status}: {value}"));
    };
    let mut message = format!("{code}: {detail}");
    if let Some(diagnostics) = value["diagnostics"].as_array() {
        for d in diagnostics {
            message.push_str(&format!(
                "\n  {}:{}:{}: {}[{}] {}: {}",
                d["resource"].as_str().unwrap_or("-"),
                d["line"],
                d["column"],
                d["severity"].as_str().unwrap_or(""),
                d["code"].as_str().unwrap_or(""),
                d["element"].as_str().unwrap_or("-"),
                d["message"].as_str().unwrap_or("")
            ));
        }
    }
    Failure(message)
}
