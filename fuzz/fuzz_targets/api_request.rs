//! The API's request bodies: the first byte picks a route (its path
//! parameters filled in), the rest is the body, sent through the real router
//! on a memory store. Any answer but a 5xx is fine: a 5xx (or a panic) is a
//! defect.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

struct Server {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    _service: runtime::Service,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let store: Arc<dyn store::Store> = Arc::new(store::MemoryStore::new());
        let clock = Arc::new(runtime::ManualClock::new(1_767_225_600_000));
        let service = runtime::Service::start(store, clock, Box::new(runtime::SequentialIds::default()), runtime::Options::default()).unwrap();
        let router = api::router(service.handle.clone());
        Server { runtime, router, _service: service }
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else { return };
    let routes: Vec<(&str, &str)> = api::ROUTES.iter().map(|r| (r.0, r.1)).collect();
    let (method, template) = routes[usize::from(pick) % routes.len()];
    // Path parameters: numbers where a key or version is asked for, else a name.
    let path: String = template
        .split('/')
        .map(|segment| match segment {
            "{version}" => "1",
            s if s.starts_with('{') => "i1",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/");
    let server = server();
    let request = Request::builder()
        .method(method.to_uppercase().as_str())
        .uri(&path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .unwrap();
    let router = server.router.clone();
    // A long poll or a stream may wait: only its answer's status matters.
    let answered = server.runtime.block_on(async move { tokio::time::timeout(Duration::from_millis(500), router.oneshot(request)).await });
    if let Ok(Ok(response)) = answered {
        assert!(response.status().as_u16() < 500, "{method} {path} answered {} to {:?}", response.status(), String::from_utf8_lossy(body));
    }
});
