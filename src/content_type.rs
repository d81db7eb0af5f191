//! The `Content-Type` each published file is served with.
//!
//! Web types that matter for SDKs are listed explicitly (browsers refuse
//! module scripts and WebAssembly with the wrong type, and `nosniff` makes
//! them strict about scripts and styles); anything else falls back to
//! `mime_guess`.

/// The content type for a file path, by extension.
pub fn for_path(path: &str) -> String {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let known = match ext.as_str() {
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "map" | "json" => "application/json",
        "wasm" => "application/wasm",
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "ttf" => "font/ttf",
        "otf" => "font/otf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "ico" => "image/x-icon",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    let guessed = mime_guess::from_path(path).first_or_octet_stream();
    if guessed.type_() == mime_guess::mime::TEXT && guessed.get_param("charset").is_none() {
        format!("{guessed}; charset=utf-8")
    } else {
        guessed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::for_path;

    #[test]
    fn web_types_are_explicit() {
        assert_eq!(for_path("a/haloagents.umd.js"), "text/javascript; charset=utf-8");
        assert_eq!(for_path("x.MJS"), "text/javascript; charset=utf-8");
        assert_eq!(for_path("x.js.map"), "application/json");
        assert_eq!(for_path("x.wasm"), "application/wasm");
        assert_eq!(for_path("x.css"), "text/css; charset=utf-8");
        assert_eq!(for_path("fonts/x.woff2"), "font/woff2");
    }

    #[test]
    fn unknown_types_fall_back_to_guessing_or_octet_stream() {
        assert_eq!(for_path("x.xml"), "text/xml; charset=utf-8");
        assert_eq!(for_path("LICENSE"), "application/octet-stream");
        assert_eq!(for_path("x.unknownext"), "application/octet-stream");
    }
}
