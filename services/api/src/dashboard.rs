//! The dashboard's built files (`web/dist`, `server.dashboard_dir`) at `/`:
//! the file a path names, or `index.html` for the client-side router's
//! pages. API paths never fall through to it, and nothing outside the
//! folder can be named: a path is taken segment by segment, and `..`,
//! hidden names and backslashes are refused before the file system is asked.

use std::path::{Path, PathBuf};

use actix_files::NamedFile;
use actix_web::http::{Method, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::ServerState;
use crate::request;

/// Paths that belong to the API: an unknown one is the API's 404, not a page.
const API_PREFIXES: [&str; 6] = ["/v1/", "/v2/", "/graphql", "/healthz", "/metrics", "/readyz"];

/// Headers every dashboard response carries: only our own scripts, styles
/// and connections; never framed; no MIME sniffing.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
                   connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The default service: a dashboard file or page, else the API's 404.
pub async fn serve(req: HttpRequest, state: web::Data<ServerState>) -> HttpResponse {
    let dir = &state.app.settings().server.dashboard_dir;
    let page = (req.method() == Method::GET || req.method() == Method::HEAD)
        && !dir.is_empty()
        && !API_PREFIXES.iter().any(|p| req.path().starts_with(p) || req.path() == p.trim_end_matches('/'));
    if page && let Some(res) = file(Path::new(dir), &req).await {
        return res;
    }
    request::no_route(req).await
}

/// The file under `dir` that `req`'s path names, `index.html` for a page
/// path (no extension), `None` for anything else.
async fn file(dir: &Path, req: &HttpRequest) -> Option<HttpResponse> {
    let relative = relative_path(req.path())?;
    let (path, immutable) = match relative {
        Some(rel) if dir.join(&rel).is_file() => {
            let immutable = rel.starts_with("assets");
            (dir.join(rel), immutable)
        }
        // A missing file with an extension is a missing file, not a page.
        Some(rel) if rel.extension().is_some() => return None,
        _ => (dir.join("index.html"), false),
    };
    let named = NamedFile::open_async(&path).await.ok()?.use_etag(true).use_last_modified(true);
    let mut res = named.into_response(req);
    let headers = res.headers_mut();
    // Vite names built assets by their content: they never change.
    let cache = if immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static(cache));
    headers.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("same-origin"));
    Some(res)
}

/// `Some(None)` for the root, `Some(Some(path))` for a safe relative path,
/// `None` for one that tries to leave the folder or name a hidden file.
fn relative_path(url_path: &str) -> Option<Option<PathBuf>> {
    let decoded = percent_decode(url_path)?;
    let mut out = PathBuf::new();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment.starts_with('.') || segment.contains('\\') || segment.contains('\0') || segment.contains(':') {
            return None;
        }
        out.push(segment);
    }
    Some(if out.as_os_str().is_empty() { None } else { Some(out) })
}

/// `%xx` escapes decoded (the result must be UTF-8).
fn percent_decode(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s).decode_utf8().ok().map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_folder_or_name_hidden_files_are_refused() {
        assert_eq!(relative_path("/"), Some(None));
        assert_eq!(relative_path("/assets/index-1.js"), Some(Some(PathBuf::from("assets/index-1.js"))));
        assert_eq!(relative_path("/datasets"), Some(Some(PathBuf::from("datasets"))));
        for bad in ["/../Cargo.toml", "/assets/%2e%2e/%2e%2e/etc/passwd", "/.env", "/a\\..\\b", "/%00", "/C:/x", "/%ff"] {
            assert_eq!(relative_path(bad), None, "{bad}");
        }
    }
}
