//! `GET /` and `GET /sdk/`: the versions page, like the package pages of
//! jsDelivr and cdnjs. Every published version newest first, which one
//! `latest/` serves, prereleases marked, each file with its size and SRI, and
//! the ready `<script>`/`<link>` tag with `integrity` and `crossorigin` for
//! the public base URL, with a copy button.
//!
//! Rendered on the server from the index in memory and the sealed
//! manifests, every name and value HTML-escaped (file names are chosen by
//! whoever builds the SDK; nothing they contain can become markup). The page
//! loads nothing from elsewhere and runs no inline script, so it is sent with
//! `Content-Security-Policy: default-src 'self'`; its one script (the copy
//! buttons) and its stylesheet are served beside it.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use semver::Version;

use super::error::ApiError;
use super::state::{Loaded, ServeState};
use crate::layout;
use crate::manifest::SriIndex;
use crate::release::{escape_html, tag_for};

/// The page's script: copy buttons (no inline script under the CSP).
pub(super) const SCRIPT_PATH: &str = "/versions.js";
/// The page's stylesheet.
pub(super) const STYLE_PATH: &str = "/versions.css";
/// What the page allows itself: only its own origin.
const CSP: &str = "default-src 'self'";

const SCRIPT: &str = "\
document.querySelectorAll('button[data-copy]').forEach(function (button) {
  button.addEventListener('click', function () {
    var code = document.getElementById(button.dataset.copy);
    navigator.clipboard.writeText(code.textContent).then(function () { button.textContent = 'Copied'; });
  });
});
";

const STYLE: &str = "\
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
table { border-collapse: collapse; width: 100%; }
td, th { text-align: left; padding: .2rem .6rem .2rem 0; vertical-align: top; }
code { font-size: 13px; word-break: break-all; }
.badge { font-size: 12px; padding: 0 .4rem; border-radius: .6rem; background: #dde; margin-left: .4rem; }
.latest { background: #cfc; }
pre { background: #f4f4f4; padding: .5rem; white-space: pre-wrap; }
";

/// `GET /versions.js`.
pub(super) async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /versions.css`.
pub(super) async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

/// `GET /` and `GET /sdk/`.
pub(super) async fn page(State(state): State<Arc<ServeState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Loaded::Index(snapshot) = state.loaded() else {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no SRI index is loaded yet: nothing to list"));
    };
    let base = match &state.public_base_url {
        Some(base) => base.clone(),
        None => {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
            format!("http://{host}")
        }
    };
    let html = render(&state, &snapshot.index, &base).await?;
    let mut response = html.into_response();
    let out = response.headers_mut();
    out.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    out.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    out.insert(header::CACHE_CONTROL, state.index_cache_control.clone());
    Ok(response)
}

/// The versions in the index, newest first.
pub(super) fn versions(index: &SriIndex) -> Vec<Version> {
    let mut versions: Vec<Version> = index
        .files
        .keys()
        .filter_map(|name| name.split_once('/').map(|(dir, _)| dir))
        .filter(|dir| *dir != layout::LATEST)
        .filter_map(|dir| crate::version::parse(dir).ok())
        .collect();
    versions.sort_by(|a, b| b.cmp(a));
    versions.dedup();
    versions
}

async fn render(state: &ServeState, index: &SriIndex, base: &str) -> Result<String, ApiError> {
    let mut html = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>SDK versions</title>\
         <link rel=\"stylesheet\" href=\"/versions.css\"></head><body>\n<h1>Published versions</h1>\n",
    );
    let latest = index.version.as_ref();
    let _ = match latest {
        Some(v) => writeln!(html, "<p id=\"latest\">latest/ serves <b>{}</b></p>", escape_html(&v.to_string())),
        None => writeln!(html, "<p id=\"latest\">latest/ serves nothing yet</p>"),
    };
    for (n, version) in versions(index).iter().enumerate() {
        let Some(manifest) = state.sealed_manifest(version).await? else { continue };
        let name = escape_html(&version.to_string());
        let _ = write!(html, "<section class=\"version\" id=\"v-{name}\"><h2>{name}");
        if latest == Some(version) {
            html.push_str("<span class=\"badge latest\">latest</span>");
        }
        if !version.pre.is_empty() {
            html.push_str("<span class=\"badge\">prerelease</span>");
        }
        html.push_str("</h2>\n<table><tr><th>file</th><th>size</th><th>SRI</th></tr>\n");
        let mut tags = Vec::new();
        for (path, entry) in &manifest.files {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                escape_html(path),
                entry.size,
                entry.integrity
            );
            if let Ok(Some(tag)) = tag_for(base, &version.to_string(), path, &entry.integrity) {
                tags.push(tag);
            }
        }
        html.push_str("</table>\n");
        if !tags.is_empty() {
            let id = format!("snippet-{n}");
            let _ = writeln!(
                html,
                "<pre><code class=\"snippet\" id=\"{id}\">{}</code></pre><button type=\"button\" data-copy=\"{id}\">Copy</button>",
                escape_html(&tags.join("\n"))
            );
        }
        html.push_str("</section>\n");
    }
    html.push_str("<script src=\"/versions.js\"></script>\n</body></html>\n");
    Ok(html)
}
