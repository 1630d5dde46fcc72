//! The account holders' web pages: plain HTML, one stylesheet and JavaScript modules,
//! embedded into the binary and answered with strict security headers. The pages call the
//! `/auth` routes of the same origin; there is no server logic here beyond choosing a file.
//!
//! Served by the local server beside the API and, in a deployment, by the `web` function.

use lambda_http::http::{header, HeaderValue, Method, Response, StatusCode};
use std::convert::Infallible;

/// No inline script or style, nothing from another origin, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

struct File {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! file {
    ($path:literal, $name:literal, $type:expr) => {
        File { path: $path, content_type: $type, body: include_bytes!(concat!("../assets/", $name)) }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Every page and asset, by the path it is served at.
const FILES: &[File] = &[
    file!("/", "index.html", HTML),
    file!("/signup", "signup.html", HTML),
    file!("/forgot-password", "forgot-password.html", HTML),
    file!("/reset-password", "reset-password.html", HTML),
    file!("/verify-email", "verify-email.html", HTML),
    file!("/account", "account.html", HTML),
    file!("/assets/app.css", "app.css", CSS),
    file!("/assets/favicon.svg", "favicon.svg", "image/svg+xml"),
    file!("/assets/api.js", "api.js", JS),
    file!("/assets/ui.js", "ui.js", JS),
    file!("/assets/signin.js", "signin.js", JS),
    file!("/assets/signup.js", "signup.js", JS),
    file!("/assets/forgot-password.js", "forgot-password.js", JS),
    file!("/assets/reset-password.js", "reset-password.js", JS),
    file!("/assets/verify-email.js", "verify-email.js", JS),
    file!("/assets/account.js", "account.js", JS),
    file!("/assets/scopes.js", "scopes.js", JS),
    file!("/assets/scope-picker.js", "scope-picker.js", JS),
];

const NOT_FOUND: File = file!("", "not-found.html", HTML);

/// The paths of the pages (not the assets), as routes are declared for them.
pub const PAGES: &[&str] = &["/", "/signup", "/forgot-password", "/reset-password", "/verify-email", "/account"];

/// The prefix under which the stylesheet, the scripts and the icon are served.
pub const ASSETS: &str = "/assets/";

/// Whether `path` belongs to the pages rather than to the API.
pub fn serves(path: &str) -> bool {
    PAGES.contains(&path) || path.starts_with(ASSETS)
}

/// The answer to `method path`: the file with its content type and the security headers,
/// a 404 page for an unknown path, a 405 for anything but GET and HEAD.
pub fn respond(method: &Method, path: &str) -> Response<&'static [u8]> {
    let (status, file) = match FILES.iter().find(|file| file.path == path) {
        Some(file) => (StatusCode::OK, file),
        None => (StatusCode::NOT_FOUND, &NOT_FOUND),
    };
    let (status, body) = match *method {
        Method::GET => (status, file.body),
        Method::HEAD => (status, &[][..]),
        _ => (StatusCode::METHOD_NOT_ALLOWED, &[][..]),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    // Small files that change with each release and carry no version in their names:
    // revalidate every time rather than serve a stale script beside a new page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    response
}

/// The `web` function's handler: API Gateway routes only the pages' paths here.
pub async fn handle(request: lambda_http::Request) -> Result<lambda_http::Response<lambda_http::Body>, Infallible> {
    let response = respond(request.method(), request.uri().path());
    Ok(response.map(|body| match std::str::from_utf8(body) {
        Ok(text) if !text.is_empty() => lambda_http::Body::Text(text.to_owned()),
        Ok(_) => lambda_http::Body::Empty,
        Err(_) => lambda_http::Body::Binary(body.to_vec()),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn header<'a>(response: &'a Response<&'static [u8]>, name: &str) -> &'a str {
        response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    #[test]
    fn every_page_is_html_with_the_security_headers() {
        for page in PAGES {
            let response = respond(&Method::GET, page);
            assert_eq!(response.status(), StatusCode::OK, "{page}");
            assert_eq!(header(&response, "content-type"), HTML, "{page}");
            assert_eq!(header(&response, "content-security-policy"), CONTENT_SECURITY_POLICY);
            assert_eq!(header(&response, "referrer-policy"), "no-referrer");
            assert_eq!(header(&response, "x-content-type-options"), "nosniff");
            assert!(std::str::from_utf8(response.body()).unwrap().starts_with("<!doctype html>"), "{page}");
        }
    }

    #[test]
    fn every_script_and_stylesheet_a_page_links_is_served() {
        for page in PAGES {
            let html = std::str::from_utf8(respond(&Method::GET, page).body()).unwrap();
            for reference in html.split(['"', '\'']).filter(|part| part.starts_with(ASSETS)) {
                assert_eq!(respond(&Method::GET, reference).status(), StatusCode::OK, "{page} links {reference}");
            }
        }
        for file in FILES.iter().filter(|f| f.path.ends_with(".js")) {
            let script = std::str::from_utf8(file.body).unwrap();
            for import in script.lines().filter_map(|l| l.split("from './").nth(1)) {
                let target = format!("{ASSETS}{}", import.trim_end_matches(['\'', ';']));
                assert_eq!(respond(&Method::GET, &target).status(), StatusCode::OK, "{} imports {target}", file.path);
            }
            assert_eq!(file.content_type, JS);
        }
    }

    #[test]
    fn no_page_carries_inline_script_or_style() {
        for page in PAGES {
            let html = std::str::from_utf8(respond(&Method::GET, page).body()).unwrap();
            assert!(!html.contains("<script>") && !html.contains("<script type=\"module\">"), "{page}");
            assert!(!html.contains("style=") && !html.contains("<style"), "{page}");
            let handler = html.split_whitespace().find(|word| {
                word.strip_prefix("on")
                    .and_then(|rest| rest.split_once('='))
                    .is_some_and(|(name, _)| !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase()))
            });
            assert_eq!(handler, None, "{page} has an inline event handler");
        }
    }

    #[test]
    fn an_unknown_asset_is_a_404_page_and_other_methods_are_refused() {
        let missing = respond(&Method::GET, "/assets/nothing.js");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(header(&missing, "content-security-policy"), CONTENT_SECURITY_POLICY);
        assert_eq!(respond(&Method::POST, "/").status(), StatusCode::METHOD_NOT_ALLOWED);
        let head = respond(&Method::HEAD, "/account");
        assert_eq!((head.status(), head.body().len()), (StatusCode::OK, 0));
    }

    #[tokio::test]
    async fn the_function_answers_the_reset_link_of_an_email_with_the_reset_page() {
        let event = include_str!("../../events/web.json");
        let request = lambda_http::request::from_str(event).unwrap();
        let response = handle(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-security-policy"], CONTENT_SECURITY_POLICY);
        assert_eq!(response.headers()["referrer-policy"], "no-referrer");
        let lambda_http::Body::Text(html) = response.body() else { panic!("an HTML page") };
        assert!(html.contains("<title>Choose a new password"), "{html}");
        assert!(html.contains("/assets/reset-password.js"));
    }

    #[test]
    fn the_pages_own_their_paths_and_leave_the_api_alone() {
        assert!(PAGES.iter().all(|page| serves(page)));
        assert!(serves("/assets/app.css"));
        assert!(!serves("/auth/login") && !serves("/openapi.json") && !serves("/account/x"));
    }

    /// The `'…'` strings after `key: '` on the lines of `scopes.js` that carry one.
    fn quoted_after<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        line.split_once(&format!("{key}: '"))?.1.split_once('\'').map(|(value, _)| value)
    }

    #[test]
    fn the_pages_catalogue_of_scopes_is_the_services() {
        use shared::domain::scopes::Scope;
        let script = include_str!("../assets/scopes.js");
        let areas: Vec<&str> = script.lines().filter_map(|line| quoted_after(line, "{ id")).collect();
        let scopes: Vec<(&str, &str)> = script
            .lines()
            .filter_map(|line| Some((line, quoted_after(line, "{ name")?)))
            .map(|(line, name)| {
                let area = quoted_after(line, "area").unwrap_or_default();
                assert!(areas.contains(&area), "{name}: area {area:?} is not among {areas:?}");
                (line, name)
            })
            .collect();
        let named = |mark: &str| -> Vec<&str> {
            let mut names: Vec<&str> =
                scopes.iter().filter(|(line, _)| line.contains(&format!("{mark}: true"))).map(|(_, n)| *n).collect();
            names.sort_unstable();
            names
        };
        let sorted = |scopes: &[Scope]| -> Vec<&str> {
            let mut names: Vec<&str> = scopes.iter().map(|scope| scope.name()).collect();
            names.sort_unstable();
            names
        };
        let all: Vec<&str> = scopes.iter().map(|(_, name)| *name).collect();
        assert_eq!(all, Scope::ALL.map(Scope::name), "every scope of the catalogue, once each, in its order");
        assert_eq!(named("default"), sorted(&Scope::DEFAULT), "the default set");
        assert_eq!(named("dangerous"), sorted(&Scope::DANGEROUS), "the dangerous scopes");
        // Every area the pickers show holds a scope.
        for area in areas {
            assert!(scopes.iter().any(|(line, _)| quoted_after(line, "area") == Some(area)), "{area} is empty");
        }
    }
}
