//! `serve`: the web page (`www/`) and a model folder (at `/model/`) on 127.0.0.1, with the headers the page
//! relies on: `application/wasm`, cross-origin isolation (COOP/COEP) and a Content-Security-Policy that lets
//! the page talk to its own origin only. Only files the model's manifest lists are served from `/model/`.
//! HTTP is hyper's (tiny_http's connection pool could leave a new keep-alive connection queued behind
//! idle ones, and a page load then stalled for minutes).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tweetguard::manifest::Manifest;

/// The page may load scripts, styles, workers, wasm and data from its own origin only; wasm compilation
/// needs `'wasm-unsafe-eval'` (not `'unsafe-eval'`); nothing may frame it or receive its forms.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
     worker-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Model folder to mount at /model/: an export's `model/` folder, or OUT with `model/` inside.
    #[arg(long)]
    model: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one (the URL is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The page's folder; default: the repository's `www/` (it needs `pkg/`, from scripts/build-wasm.sh).
    #[arg(long)]
    www: Option<PathBuf>,
    /// Do not log each request.
    #[arg(long)]
    quiet: bool,
}

/// What a request path maps to, decided before any file is opened.
#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    File(PathBuf),
    NotFound,
    Forbidden,
}

/// The served folders: the page, and the model folder with the file names its manifest allows.
#[derive(Debug)]
pub struct Site {
    www: PathBuf,
    model: PathBuf,
    model_files: BTreeSet<String>,
}

impl Site {
    pub fn new(www: &Path, model: &Path) -> Result<Site> {
        if !www.join("index.html").is_file() {
            bail!("{} has no index.html: pass --www with the page's folder", www.display());
        }
        if !www.join("pkg/tweetguard_bg.wasm").is_file() {
            bail!("{}/pkg is missing the wasm build: run scripts/build-wasm.sh first", www.display());
        }
        let model = model_folder(model)?;
        let manifest_path = model.join("manifest.json");
        let manifest = Manifest::parse(
            &std::fs::read(&manifest_path).with_context(|| format!("reading {}", manifest_path.display()))?,
        )
        .with_context(|| format!("reading {}", manifest_path.display()))?;
        let mut model_files = BTreeSet::from(["manifest.json".to_string()]);
        for file in &manifest.files {
            let path = file.path.as_str();
            if !is_plain_segment(path) {
                bail!("manifest.json lists {path:?}, which is not a plain file name");
            }
            // A link could point anywhere (`MODEL_CARD.md -> ~/.ssh/id_rsa` in an unpacked archive).
            match std::fs::symlink_metadata(model.join(path)) {
                Ok(meta) if meta.file_type().is_file() => {}
                Ok(_) => bail!("manifest.json lists {path}, which is a link or a folder, not a plain file"),
                Err(_) => bail!("manifest.json lists {path}, but {} does not exist", model.join(path).display()),
            }
            model_files.insert(path.to_string());
        }
        Ok(Site { www: www.to_path_buf(), model, model_files })
    }

    /// Maps a request path (with or without a query) to a file, refusing anything that could leave the
    /// served folders.
    pub fn resolve(&self, url: &str) -> Target {
        let path = url.split(['?', '#']).next().unwrap_or("");
        let Some(decoded) = percent_decode(path) else { return Target::Forbidden };
        if !decoded.starts_with('/') || decoded.contains(['\\', '\0']) {
            return Target::Forbidden;
        }
        let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
        if !segments.iter().all(|s| is_plain_segment(s)) {
            return Target::Forbidden;
        }
        let file = match segments.as_slice() {
            [] => self.www.join("index.html"),
            ["model"] => return Target::NotFound,
            ["model", name] if self.model_files.contains(*name) => self.model.join(name),
            ["model", ..] => return Target::NotFound,
            rest => rest.iter().fold(self.www.clone(), |dir, s| dir.join(s)),
        };
        // Links are not followed: what is served is a plain file inside the served folders.
        match std::fs::symlink_metadata(&file) {
            Ok(meta) if meta.file_type().is_file() => Target::File(file),
            Ok(meta) if meta.file_type().is_symlink() => Target::Forbidden,
            _ => Target::NotFound,
        }
    }

    /// The content type of a served file. Model files are data, never markup or script: a manifest that
    /// lists `x.html` or `x.js` must not get a page or a script of this origin served.
    pub fn content_type(&self, path: &Path) -> &'static str {
        if path.parent() == Some(self.model.as_path()) {
            match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
                "json" => "application/json",
                "md" | "txt" => "text/plain; charset=utf-8",
                _ => "application/octet-stream",
            }
        } else {
            content_type(path)
        }
    }
}

/// A path segment that names an entry of the folder it is in, on every platform: not empty, not hidden
/// (nor `.`/`..`), no separators, no drive (`D:`) or stream (`a:b`) syntax, no control characters.
fn is_plain_segment(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && !segment.contains(['/', '\\', ':', '\0'])
        && !segment.chars().any(char::is_control)
}

/// Whether a request's `Host` is this server itself. Anything else (a DNS-rebinding page at
/// `rebind.example:PORT` that resolves to 127.0.0.1) is answered 421, so no other origin can read the page,
/// the manifest (local paths in its training arguments) or the weights.
pub fn is_own_host(host: Option<&str>, port: u16) -> bool {
    let Some(host) = host else { return false };
    ["127.0.0.1", "localhost", "[::1]"].iter().any(|name| host.eq_ignore_ascii_case(&format!("{name}:{port}")))
}

/// `DIR/model` when DIR is an export's output folder, else DIR; it must hold `manifest.json`.
fn model_folder(dir: &Path) -> Result<PathBuf> {
    for candidate in [dir.join("model"), dir.to_path_buf()] {
        if candidate.join("manifest.json").is_file() {
            return Ok(candidate);
        }
    }
    bail!(
        "{} is not a model folder (no manifest.json in it or in its model/): make one with \
         `native-trainer train` or `native-trainer export`",
        dir.display()
    )
}

fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

pub fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "json" => "application/json",
        "md" => "text/markdown; charset=utf-8",
        "txt" | "csv" | "tsv" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "webmanifest" => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// Headers on every response: isolation, the CSP, no sniffing, no referrer, and revalidation (the page's
/// service worker and the model cache do the caching, keyed by content hash).
pub fn security_headers() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
        ("Cross-Origin-Opener-Policy", "same-origin"),
        ("Cross-Origin-Embedder-Policy", "require-corp"),
        ("Cross-Origin-Resource-Policy", "same-origin"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cache-Control", "no-cache"),
    ]
}

/// What one client may take from the server: a stalled, oversized, slow or numerous client is cut off
/// instead of holding connections (and the files being sent) for ever.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The most a request's head may take to arrive.
    pub header_read_timeout: Duration,
    /// The most bytes a request's head may have.
    pub max_head_bytes: usize,
    /// The most a connection may stay open, however busy: a client that stops reading a response
    /// is dropped after this, with the file it was sent.
    pub connection_lifetime: Duration,
    /// Connections served at once; more are closed as they arrive.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_head_bytes: 16 * 1024,
            connection_lifetime: Duration::from_secs(120),
            max_connections: 64,
        }
    }
}

/// The answer to one request: status, the headers of [`security_headers`] plus content type, and body.
pub fn respond(site: &Site, port: u16, method: &Method, url: &str, host: Option<&str>) -> Response<Full<Bytes>> {
    let mut builder = Response::builder();
    for (name, value) in security_headers() {
        builder = builder.header(name, value);
    }
    let text = |builder: hyper::http::response::Builder, status: u16, text: &'static str| {
        builder
            .status(status)
            .header("Content-Type", "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from_static(text.as_bytes())))
    };
    let response = if !is_own_host(host, port) {
        text(builder, 421, "misdirected request: this server answers only to 127.0.0.1, localhost and [::1]")
    } else if method != Method::GET && method != Method::HEAD {
        text(builder.header("Allow", "GET, HEAD"), 405, "method not allowed")
    } else {
        match site.resolve(url) {
            Target::File(path) => match std::fs::read(&path) {
                Ok(bytes) => {
                    let builder = builder
                        .status(200)
                        .header("Content-Type", site.content_type(&path))
                        .header("Content-Length", bytes.len());
                    let body = if method == Method::HEAD { Bytes::new() } else { Bytes::from(bytes) };
                    builder.body(Full::new(body))
                }
                Err(_) => text(builder, 404, "not found"),
            },
            Target::NotFound => text(builder, 404, "not found"),
            Target::Forbidden => text(builder, 403, "forbidden"),
        }
    };
    response.expect("static header names and values are valid")
}

fn default_www() -> PathBuf {
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("../www");
    if built_in.join("index.html").is_file() {
        built_in
    } else {
        PathBuf::from("www")
    }
}

pub fn run(args: ServeArgs) -> Result<()> {
    let www = args.www.clone().unwrap_or_else(default_www);
    let site = Arc::new(Site::new(&www, &args.model)?);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{}", args.port))?;
        let port = listener.local_addr()?.port();
        println!("serving {} with the model {} on http://127.0.0.1:{port}/", www.display(), site.model.display());
        println!("(WebGPU, the Cache API and service workers need localhost or HTTPS; press Ctrl+C to stop)");
        serve(listener, site, Limits::default(), !args.quiet).await
    })
}

/// Answers connections on `listener` until the process ends, within `limits`; `log` prints a line per
/// request.
pub async fn serve(listener: tokio::net::TcpListener, site: Arc<Site>, limits: Limits, log: bool) -> Result<()> {
    let port = listener.local_addr()?.port();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                eprintln!("accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Full: closed at once (dropping the stream), so a flood cannot queue behind the page's own loads.
        let Ok(slot) = slots.clone().try_acquire_owned() else { continue };
        let site = site.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let site = site.clone();
                async move {
                    let host = request.headers().get(hyper::header::HOST).and_then(|h| h.to_str().ok());
                    let url = request.uri().path_and_query().map_or("/", |p| p.as_str());
                    let response = respond(&site, port, request.method(), url, host);
                    if log {
                        // The URL is the client's: escaped, so it cannot send escape sequences to the terminal.
                        eprintln!("{} {} {}", request.method(), url.escape_debug(), response.status().as_u16());
                    }
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(limits.max_head_bytes.max(MIN_BUF_BYTES));
            // A client that goes away mid-response, or past its lifetime, is no error of ours.
            let connection = http.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(limits.connection_lifetime, connection).await;
            drop(slot);
        });
    }
}

/// hyper's smallest read buffer (it refuses less).
const MIN_BUF_BYTES: usize = 8192;

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> (tempfile::TempDir, Site) {
        let dir = tempfile::tempdir().unwrap();
        let www = dir.path().join("www");
        let model = dir.path().join("run/model");
        std::fs::create_dir_all(www.join("pkg")).unwrap();
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(www.join("index.html"), "<!doctype html>").unwrap();
        std::fs::write(www.join("app.js"), "").unwrap();
        std::fs::write(www.join("pkg/tweetguard_bg.wasm"), "").unwrap();
        std::fs::write(model.join("config.json"), "{}").unwrap();
        std::fs::write(model.join("secret.txt"), "not listed").unwrap();
        let manifest = r#"{"format_version": 1, "labels": ["human", "bot"], "files": [{"path": "config.json", "bytes": 2, "sha256": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}]}"#;
        std::fs::write(model.join("manifest.json"), manifest).unwrap();
        let site = Site::new(&www, &dir.path().join("run")).unwrap();
        (dir, site)
    }

    #[test]
    fn serves_the_page_and_only_the_manifests_model_files() {
        let (dir, site) = site();
        assert_eq!(site.resolve("/"), Target::File(dir.path().join("www/index.html")));
        assert_eq!(site.resolve("/app.js?v=2"), Target::File(dir.path().join("www/app.js")));
        assert_eq!(
            site.resolve("/pkg/tweetguard_bg.wasm"),
            Target::File(dir.path().join("www/pkg/tweetguard_bg.wasm"))
        );
        assert_eq!(site.resolve("/model/config.json"), Target::File(dir.path().join("run/model/config.json")));
        assert_eq!(site.resolve("/model/manifest.json"), Target::File(dir.path().join("run/model/manifest.json")));
        assert_eq!(site.resolve("/model/secret.txt"), Target::NotFound);
        assert_eq!(site.resolve("/missing.js"), Target::NotFound);
    }

    #[test]
    fn refuses_paths_that_leave_the_served_folders() {
        let (_dir, site) = site();
        for url in [
            "/../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/model/../manifest.json",
            "/pkg/..%2f..%2fx",
            "/a\\b",
            "/%00",
            "/%zz",
            "/.git/config",
            "relative",
        ] {
            assert_eq!(site.resolve(url), Target::Forbidden, "{url}");
        }
    }

    #[test]
    fn answers_only_to_its_own_host_names() {
        for host in ["127.0.0.1:8080", "localhost:8080", "LOCALHOST:8080", "[::1]:8080"] {
            assert!(is_own_host(Some(host), 8080), "{host}");
        }
        for host in
            ["rebind.example:8080", "127.0.0.1:9090", "127.0.0.1", "localhost.evil:8080", "127.0.0.1:8080.evil", ""]
        {
            assert!(!is_own_host(Some(host), 8080), "{host}");
        }
        assert!(!is_own_host(None, 8080));
    }

    #[cfg(unix)]
    #[test]
    fn links_are_never_served() {
        let (dir, site) = site();
        std::os::unix::fs::symlink(dir.path().join("run/model/secret.txt"), dir.path().join("www/linked.txt")).unwrap();
        assert_eq!(site.resolve("/linked.txt"), Target::Forbidden);
        // A manifest listing a link is refused when the server starts.
        let model = dir.path().join("run/model");
        std::fs::remove_file(model.join("config.json")).unwrap();
        std::os::unix::fs::symlink(model.join("secret.txt"), model.join("config.json")).unwrap();
        let err = Site::new(&dir.path().join("www"), &dir.path().join("run")).unwrap_err().to_string();
        assert!(err.contains("a link or a folder"), "{err}");
    }

    #[test]
    fn model_files_are_served_as_data_only() {
        let (dir, site) = site();
        let model = dir.path().join("run/model");
        assert_eq!(site.content_type(&model.join("config.json")), "application/json");
        assert_eq!(site.content_type(&model.join("MODEL_CARD.md")), "text/plain; charset=utf-8");
        assert_eq!(site.content_type(&model.join("x.html")), "application/octet-stream");
        assert_eq!(site.content_type(&model.join("x.js")), "application/octet-stream");
        assert!(site.content_type(&dir.path().join("www/app.js")).starts_with("text/javascript"));
        for name in ["D:", "a:b", "x\u{1b}y"] {
            assert!(!is_plain_segment(name), "{name:?}");
        }
        assert_eq!(site.resolve("/D:/x"), Target::Forbidden);
    }

    #[test]
    fn rejects_a_folder_without_manifest_or_wasm() {
        let (dir, _site) = site();
        let err = Site::new(&dir.path().join("www"), dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a model folder"), "{err}");
        std::fs::remove_file(dir.path().join("www/pkg/tweetguard_bg.wasm")).unwrap();
        let err = Site::new(&dir.path().join("www"), &dir.path().join("run")).unwrap_err().to_string();
        assert!(err.contains("build-wasm.sh"), "{err}");
    }

    /// `serve` on a free port of 127.0.0.1 with `limits`, over the test site; returns the port.
    async fn start(site: Site, limits: Limits) -> u16 {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(serve(listener, Arc::new(site), limits, false));
        port
    }

    /// Reads until the server closes the connection (or `within` passes: then `None`).
    async fn read_to_close(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let mut got = Vec::new();
        tokio::time::timeout(within, stream.read_to_end(&mut got))
            .await
            .ok()
            .map(|r| r.map(|_| got).unwrap_or_default())
    }

    async fn get(port: u16, path: &str) -> String {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let reply = read_to_close(&mut stream, Duration::from_secs(5)).await.expect("an answer");
        String::from_utf8_lossy(&reply).into_owned()
    }

    const TEST_LIMITS: Limits = Limits {
        header_read_timeout: Duration::from_millis(300),
        max_head_bytes: 8192,
        connection_lifetime: Duration::from_millis(1500),
        max_connections: 2,
    };

    #[tokio::test]
    async fn stalled_and_surplus_clients_are_cut_off_and_the_page_still_answers() {
        let (_dir, site) = site();
        let port = start(site, TEST_LIMITS).await;
        let connect = || tokio::net::TcpStream::connect(("127.0.0.1", port));
        let (mut first, mut second) = (connect().await.unwrap(), connect().await.unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Both slots are held by clients that send nothing: a third is closed at once, unanswered.
        let mut third = connect().await.unwrap();
        assert_eq!(read_to_close(&mut third, Duration::from_millis(250)).await, Some(Vec::new()));
        // The stalled clients are cut off once their head is overdue, freeing the slots.
        for stalled in [&mut first, &mut second] {
            let cut = read_to_close(stalled, Duration::from_secs(3)).await;
            assert!(cut.is_some(), "a client that sends nothing keeps its connection");
        }
        assert!(get(port, "/").await.starts_with("HTTP/1.1 200"), "the page answers after the flood");
    }

    #[tokio::test]
    async fn oversized_heads_are_refused() {
        use tokio::io::AsyncWriteExt;
        let (_dir, site) = site();
        let port = start(site, TEST_LIMITS).await;
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let padding = "x".repeat(64 * 1024);
        let request = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Pad: {padding}\r\n\r\n");
        let _ = stream.write_all(request.as_bytes()).await; // the server may close before reading it all
        let reply = read_to_close(&mut stream, Duration::from_secs(3)).await.expect("the connection is closed");
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.is_empty() || reply.starts_with("HTTP/1.1 431"), "{reply}");
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_dropped_with_its_file() {
        use tokio::io::AsyncWriteExt;
        let (dir, site) = site();
        let size = 64 << 20;
        std::fs::write(dir.path().join("www/big.bin"), vec![7u8; size]).unwrap();
        let port = start(site, TEST_LIMITS).await;
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let request = format!("GET /big.bin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        // Not reading: the socket buffers fill, the server's write waits, and its lifetime runs out.
        tokio::time::sleep(TEST_LIMITS.connection_lifetime + Duration::from_millis(500)).await;
        let got = read_to_close(&mut stream, Duration::from_secs(5)).await.expect("the server closes it");
        assert!(got.len() < size, "all {} bytes arrived: the stalled connection was kept", got.len());
    }

    #[test]
    fn wasm_and_scripts_get_the_types_browsers_require() {
        assert_eq!(content_type(Path::new("x/tweetguard_bg.wasm")), "application/wasm");
        assert!(content_type(Path::new("worker.js")).starts_with("text/javascript"));
        assert!(CONTENT_SECURITY_POLICY.contains("'wasm-unsafe-eval'"));
        assert!(!CONTENT_SECURITY_POLICY.contains("'unsafe-eval'"));
    }
}
