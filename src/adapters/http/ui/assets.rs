//! The console's static files, embedded in the binary at build time. Each is served under a
//! fingerprinted name (`app.<hash>.css`, cached for a year, immutable) and under its plain name
//! (revalidated with its ETag).

use std::sync::OnceLock;

use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{Request, Response, handler};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// Plain name (`app.css`).
    pub name: &'static str,
    /// Name with the content hash (`app.0123abcd.css`), used in pages.
    pub fingerprinted: String,
    /// Quoted strong ETag.
    pub etag: String,
    /// MIME type.
    pub content_type: &'static str,
    /// The bytes.
    pub body: &'static [u8],
}

const FILES: [(&str, &str, &[u8]); 5] = [
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../../assets/ui/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../assets/ui/app.js"),
    ),
    (
        "uplot.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../../../assets/ui/vendor/uPlot.iife.min.js"),
    ),
    (
        "uplot.css",
        "text/css; charset=utf-8",
        include_bytes!("../../../../assets/ui/vendor/uPlot.min.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../../../assets/ui/favicon.svg"),
    ),
];

/// Every embedded asset (hashed once, on first use).
pub fn all() -> &'static [Asset] {
    static ASSETS: OnceLock<Vec<Asset>> = OnceLock::new();
    ASSETS.get_or_init(|| {
        FILES
            .iter()
            .map(|(name, content_type, body)| {
                let hash = hex::encode(&Sha256::digest(body)[..6]);
                let fingerprinted = match name.rsplit_once('.') {
                    Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
                    None => format!("{name}.{hash}"),
                };
                Asset {
                    name,
                    fingerprinted,
                    etag: format!("\"{hash}\""),
                    content_type,
                    body,
                }
            })
            .collect()
    })
}

/// The URL of an asset by plain name, fingerprinted (for pages).
pub fn url(name: &str) -> String {
    all()
        .iter()
        .find(|a| a.name == name)
        .map(|a| format!("/assets/{}", a.fingerprinted))
        .unwrap_or_else(|| format!("/assets/{name}"))
}

/// `GET /assets/<name>`: the file, `304` when `If-None-Match` matches.
#[handler]
pub fn serve(Path(name): Path<String>, req: &Request) -> Response {
    let found = all().iter().find_map(|a| {
        if a.fingerprinted == name {
            Some((a, true))
        } else if a.name == name {
            Some((a, false))
        } else {
            None
        }
    });
    let Some((asset, immutable)) = found else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("not found");
    };
    let cache = if immutable {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    let builder = Response::builder()
        .header(header::ETAG, asset.etag.as_str())
        .header(header::CACHE_CONTROL, cache);
    if matches {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    builder
        .header(header::CONTENT_TYPE, asset.content_type)
        .header("x-content-type-options", "nosniff")
        .body(asset.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_differ_from_plain_names() {
        for a in all() {
            assert_ne!(a.name, a.fingerprinted);
            assert!(!a.body.is_empty(), "{}", a.name);
        }
        assert!(url("app.css").starts_with("/assets/app."));
    }
}
