//! Headless Chromium (Debian's `chromium`, installed by `scripts/test-tools`)
//! for pages that must open on their own: every connection the browser
//! tries goes to a recording proxy on loopback, so a test can prove that
//! nothing left the page.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

/// The browser, or `None` outside CI when it is not installed (under
/// `CI=true` a missing browser fails the test: a check must not skip).
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("TENFOLD_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing: run scripts/test-tools (it installs Debian's chromium)",
        path.display()
    );
    eprintln!("skipping the browser part: {} is missing (run scripts/test-tools)", path.display());
    None
}

/// Chromium's own service traffic (clock, component updates, sign-in),
/// which flags do not stop in every build: exact requests, so that a page
/// loading anything from the same companies (fonts, say) is still caught.
fn is_browser_housekeeping(line: &str) -> bool {
    line.starts_with("GET http://clients2.google.com/time/1/current?")
        || line.starts_with("POST http://update.googleapis.com/service/update2/json?")
        || line == "CONNECT update.googleapis.com:443 HTTP/1.1"
        || line == "CONNECT accounts.google.com:443 HTTP/1.1"
}

/// What the browser made of a page.
pub struct Rendered {
    /// The DOM after rendering, serialised.
    pub dom: String,
    /// First request line of every connection the page made the browser try
    /// (the browser's own service traffic left out).
    pub requests: Vec<String>,
}

/// A proxy that answers every request with 403 and remembers it.
struct RecordingProxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut line = String::new();
                let _ = BufReader::new(&stream).read_line(&mut line);
                record.lock().unwrap().push(line.trim().to_owned());
                let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Self { port, seen }
    }
}

fn run(browser: &Path, proxy: &RecordingProxy, profile: &Path, extra: &[String], page: &Path) -> std::process::Output {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter",
        "--hide-scrollbars",
        "--virtual-time-budget=3000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    // Everything, loopback included, through the recording proxy.
    .arg(format!("--proxy-server=http://127.0.0.1:{}", proxy.port))
    .arg("--proxy-bypass-list=<-loopback>")
    .args(extra)
    .arg(format!("file://{}", page.display()));
    cmd.output().unwrap()
}

/// Opens `page` (a local file), saves a full-page screenshot at
/// `screenshot`, and returns the rendered DOM and every request tried.
pub fn render(browser: &Path, page: &Path, screenshot: &Path, height: u32) -> Rendered {
    let proxy = RecordingProxy::start();
    let profile = tempfile::tempdir().unwrap();
    let shot = run(
        browser,
        &proxy,
        profile.path(),
        &[format!("--screenshot={}", screenshot.display()), format!("--window-size=1280,{height}")],
        page,
    );
    assert!(screenshot.exists(), "no screenshot: {}", String::from_utf8_lossy(&shot.stderr));
    let dumped = run(browser, &proxy, profile.path(), &["--dump-dom".to_owned()], page);
    let dom = String::from_utf8_lossy(&dumped.stdout).into_owned();
    assert!(dom.contains("<body"), "no DOM: {}", String::from_utf8_lossy(&dumped.stderr));
    // An empty line is a connection that sent nothing before closing: Chromium
    // warming up its connection to the proxy, not a request.
    let requests = proxy.seen.lock().unwrap().iter().filter(|l| !l.is_empty() && !is_browser_housekeeping(l)).cloned().collect();
    Rendered { dom, requests }
}
