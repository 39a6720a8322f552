//! The partner console at `/console` (issue #17): one HTML page, one stylesheet and a few
//! hand-written ES modules, embedded in the binary and served as they are. The page signs in
//! with an API key and speaks only the public API with it (`Authorization: Bearer`), so it
//! has no state, no session and no privilege of its own here: the server's isolation is the
//! API's. Every answer carries a strict Content-Security-Policy (no inline script or style,
//! nothing external, `blob:` only for media fetched with the key).

use axum::{
    Router,
    extract::Path,
    http::{HeaderName, HeaderValue, header},
    middleware,
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

use crate::{AppState, error::ApiError};

/// One embedded file: its name under `/console/`, its media type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("assets/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the console serves; anything else under `/console/` is a 404.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("sse.js", JS),
    asset!("feed.js", JS),
    asset!("jobs.js", JS),
    asset!("job.js", JS),
    asset!("create.js", JS),
    asset!("account.js", JS),
];

/// The policy of every console answer. `blob:` lets the page show images, video and audio it
/// fetched with the key (an `<img src>` could not send the Authorization header); `data:`
/// images are the stylesheet's; `connect-src 'self'` is the API itself.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; font-src 'self'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const SECURITY_HEADERS: [(HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, CSP),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    // Tiny files from the api itself: revalidated each time, so a new binary shows at once.
    (header::CACHE_CONTROL, "no-cache"),
];

pub fn router() -> Router<AppState> {
    Router::new()
        // Relative module URLs resolve against `/console/`, so the bare path moves there.
        .route(
            "/console",
            get(|| async { Redirect::permanent("/console/") }),
        )
        .route("/console/", get(|| async { serve("index.html") }))
        .route(
            "/console/{*file}",
            get(|Path(file): Path<String>| async move { serve(&file) }),
        )
        .layer(middleware::map_response(secure))
}

fn serve(name: &str) -> Response {
    match ASSETS.iter().find(|asset| asset.name == name) {
        Some(asset) => ([(header::CONTENT_TYPE, asset.content_type)], asset.bytes).into_response(),
        None => ApiError::NotFound("Not found.").into_response(),
    }
}

/// Adds the security headers to every answer of the console's routes, refusals included.
async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    /// Every file in `assets/` is served, and only those: a file added without its row would
    /// be a 404 the browser reports as a broken module.
    #[test]
    fn every_asset_file_is_served() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/faces/console/assets");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("the assets folder")
            .map(|entry| {
                entry
                    .expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        on_disk.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|a| a.name.to_owned()).collect();
        served.sort();
        assert_eq!(on_disk, served);
    }

    /// The policy forbids inline script and style; markup that relies on either would be
    /// silently broken in the browser, so it is refused here.
    #[test]
    fn no_asset_relies_on_inline_script_or_style() {
        for asset in ASSETS {
            let text = String::from_utf8_lossy(asset.bytes);
            for (needle, why) in [
                ("style=", "an inline style attribute"),
                ("<script>", "an inline script"),
                (" onclick=", "an inline event handler"),
                ("innerHTML", "markup built from strings (use dom.js's h)"),
                ("javascript:", "a javascript: URL"),
            ] {
                assert!(
                    !text.contains(needle),
                    "{} contains {why} ({needle:?})",
                    asset.name
                );
            }
        }
    }
}
