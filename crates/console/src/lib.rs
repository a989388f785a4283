//! The web console: the pages `ui/` builds (`npm run build` there, which
//! `scripts/run` and `scripts/test` do), embedded in the binary. The API crate
//! serves them at `/` and under `/console/` (only `api` serves HTTP). The pages
//! call the same `/v1` API as every other client, with the user's token, so
//! they can do nothing the API would not let that user do; the files
//! themselves hold no data and are served to anyone.
//!
//! A build without the files (no Node on the machine) still compiles; its
//! console is one page that says how to build the real one.

use std::borrow::Cow;

#[derive(rust_embed::Embed)]
#[folder = "../../ui/dist/"]
#[allow_missing = true]
struct Assets;

/// Where the console's files are served.
pub const PREFIX: &str = "/console/";

/// One file of the console.
pub struct File {
    pub body: Cow<'static, [u8]>,
    pub content_type: &'static str,
    /// Its name carries a hash of its content: it never changes, and may be cached for good.
    pub immutable: bool,
}

/// Whether `path` is the console's (anyone may load it: it holds no data).
pub fn is_console_path(path: &str) -> bool {
    path == "/" || path == "/console" || path.starts_with(PREFIX)
}

/// Whether this build carries the console (false: `ui/` was not built before `baton`).
pub fn is_built() -> bool {
    Assets::get("index.html").is_some()
}

const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Baton</title></head><body>
<h1>Baton</h1>
<p>This <code>baton</code> was built without its web console. To build it, install Node.js and npm, then run
<code>npm ci &amp;&amp; npm run build</code> in the repository's <code>ui/</code> folder and build <code>baton</code> again
(<code>scripts/run</code> does all of it).</p>
<p>The API is here all the same: <a href=\"/v1/openapi.json\">/v1/openapi.json</a>.</p>
</body></html>";

/// The console's first page: the built one, or one that says how to build it.
pub fn index() -> File {
    let body = Assets::get("index.html").map_or(Cow::Borrowed(NOT_BUILT.as_bytes()), |file| file.data);
    File { body, content_type: "text/html; charset=utf-8", immutable: false }
}

/// A file under [`PREFIX`], by its path there (`assets/index-1a2b.js`).
pub fn file(path: &str) -> Option<File> {
    let file = Assets::get(path)?;
    Some(File { body: file.data, content_type: content_type(path), immutable: path.starts_with("assets/") })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "ttf" => "font/ttf",
        "eot" => "application/vnd.ms-fontobject",
        _ => "application/octet-stream",
    }
}
