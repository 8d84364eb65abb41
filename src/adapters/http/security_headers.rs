//! Response headers that keep browsers from misusing cch's answers: every answer gets
//! `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and `X-Frame-Options: DENY`;
//! HTML gets a `Content-Security-Policy` that allows only cch's own scripts, styles and images
//! (the console has no inline script or style; the offline Swagger UI under `/docs` does, so it
//! alone may run inline code). No route answers CORS, so another site's page can neither read
//! the admin API nor use the console's cookie from script.

use std::sync::Arc;

use poem::http::HeaderValue;
use poem::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use poem::{Endpoint, Request, Response, Result};

/// The console's policy: nothing inline, nothing from elsewhere, never framed.
pub const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The API docs' policy: Swagger UI starts from an inline script and inline styles.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self' 'unsafe-inline'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; \
     connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Adds the headers to every answer (see the module docs).
pub async fn with_security_headers<E: Endpoint>(ep: Arc<E>, req: Request) -> Result<Response> {
    let docs = req.uri().path().starts_with("/docs");
    let mut resp = ep.get_response(req).await;
    let html = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let h = resp.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if html {
        let csp = if docs { DOCS_CSP } else { CONSOLE_CSP };
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    }
    Ok(resp)
}
