//! The route table: every endpoint, its method and path, its function and its handler,
//! declared once (`endpoints!`); the handlers live in one module per area.

mod accounts;
mod activity;
mod keys;
mod recovery;
mod verification;
mod verify;

use crate::domain::app::App;
use crate::domain::audit::Origin;
use crate::domain::error::{Chain, PortError};
use crate::http::error::Failure;
use crate::http::request::source_ip;
use crate::http::response::{error_response, json_response, not_found, Answer};
use crate::http::schema::{ErrorBody, ErrorCode};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use std::collections::HashMap;
use std::future::Future;

/// Declares [`Endpoint`] from one table of routes: each variant with its method, its path
/// (path parameters in braces, as API Gateway writes them), the name of the function (crate
/// and binary) that serves it, and its handler. With it `Endpoint::ALL`, `route`, the
/// dispatch to the handler, and a [`Route`] type per endpoint.
macro_rules! endpoints {
    ($($endpoint:ident => $method:ident $path:literal, $function:literal, $handler:path;)*) => {
        /// The endpoints of the Auth API; each is one Lambda function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Endpoint {
            $($endpoint,)*
        }

        impl Endpoint {
            /// Every endpoint, in the table's order.
            pub const ALL: [Endpoint; [$(stringify!($endpoint)),*].len()] = [$(Endpoint::$endpoint,)*];

            /// Method, path and the name of the function that serves it.
            pub fn route(self) -> (Method, &'static str, &'static str) {
                match self {
                    $(Endpoint::$endpoint => (Method::$method, $path, $function),)*
                }
            }

            /// Answers one request routed to this endpoint. Every failure is an answer.
            pub async fn handle(self, app: &App, req: Request) -> Response<Body> {
                match self {
                    $(Endpoint::$endpoint => handle::<$endpoint>(app, req).await,)*
                }
            }
        }

        $(
            /// The route of
            #[doc = concat!("`", stringify!($method), " ", $path, "`")]
            /// alone, for its function's `main` (see [`Route`]).
            pub struct $endpoint;

            impl Route for $endpoint {
                const ENDPOINT: Endpoint = Endpoint::$endpoint;

                fn answer<'a>(app: &'a App, req: &'a Request) -> impl Future<Output = Answer> + Send + 'a {
                    $handler(app, req)
                }
            }
        )*
    };
}

/// One route and its handler, known when the program is built: a function's `main` serves
/// one (`lambda::run::<routes::Login>()`), and so links that handler alone, where
/// [`Endpoint::handle`] (the local server, the tests) links every handler of the table.
pub trait Route {
    const ENDPOINT: Endpoint;

    fn answer<'a>(app: &'a App, req: &'a Request) -> impl Future<Output = Answer> + Send + 'a;
}

/// Answers one request to the route `R`, as [`Endpoint::handle`] answers it.
pub async fn handle<R: Route>(app: &App, req: Request) -> Response<Body> {
    // Every security event recorded while answering carries where the request came from.
    let answer = origin(&req).scope(R::answer(app, &req)).await;
    R::ENDPOINT.respond(&req, answer)
}

endpoints! {
    Register => POST "/auth/register", "register", accounts::register;
    Login => POST "/auth/login", "login", accounts::login;
    RegenerateKey => POST "/auth/regenerate-key", "regenerate-key", accounts::regenerate_key;
    UserData => GET "/auth/user-data", "user-data", accounts::user_data;
    Activity => GET "/auth/activity", "activity", activity::activity;
    ExportData => GET "/auth/export-data", "export-data", accounts::export_data;
    DeleteAccount => DELETE "/auth/account", "delete-account", accounts::delete_account;
    ChangePassword => POST "/auth/change-password", "change-password", accounts::change_password;
    ForgotPassword => POST "/auth/forgot-password", "forgot-password", recovery::forgot_password;
    ResetPassword => POST "/auth/reset-password", "reset-password", recovery::reset_password;
    ValidateResetToken => GET "/auth/validate-reset-token/{token}", "validate-reset-token", recovery::validate_reset_token;
    CreateApiKey => POST "/auth/api-keys", "create-api-key", keys::create_api_key;
    ListApiKeys => GET "/auth/api-keys", "list-api-keys", keys::list_api_keys;
    UpdateApiKey => PATCH "/auth/api-keys/{id}", "update-api-key", keys::update_api_key;
    DeleteApiKey => DELETE "/auth/api-keys/{id}", "delete-api-key", keys::delete_api_key;
    Verify => POST "/auth/verify", "verify", verify::verify;
    VerifyEmail => POST "/auth/verify-email", "verify-email", verification::verify_email;
    ResendVerification => POST "/auth/resend-verification", "resend-verification", verification::resend_verification;
}

impl Endpoint {
    pub fn method(self) -> Method {
        self.route().0
    }

    pub fn path(self) -> &'static str {
        self.route().1
    }

    pub fn function_name(self) -> &'static str {
        self.route().2
    }

    /// A handler's answer as the response: a failure is answered by the one error
    /// mapping, and a fault of the service logged once, with its cause.
    fn respond(self, req: &Request, answer: Answer) -> Response<Body> {
        answer.unwrap_or_else(|failure| {
            log_fault(self, req, &failure);
            error_response(&failure)
        })
    }

    /// The path parameters when `path` matches this endpoint's pattern.
    fn matches(self, path: &str) -> Option<HashMap<String, Vec<String>>> {
        let pattern = self.path();
        if !pattern.contains('{') {
            // Most routes have no parameter: one comparison, no allocation.
            return (pattern == path).then(HashMap::new);
        }
        let mut pattern = pattern.split('/');
        let mut actual = path.split('/');
        let mut params = HashMap::new();
        loop {
            match (pattern.next(), actual.next()) {
                (None, None) => return Some(params),
                (Some(p), Some(a)) if p.starts_with('{') && p.ends_with('}') && !a.is_empty() => {
                    params.insert(p[1..p.len() - 1].to_owned(), vec![a.to_owned()]);
                }
                (Some(p), Some(a)) if p == a => {}
                _ => return None,
            }
        }
    }
}

/// The one log line of a failure of the service itself, with its cause, the route and the
/// request id (other failures are the client's, and answered only).
fn log_fault(endpoint: Endpoint, req: &Request, failure: &Failure) {
    let Some(cause) = failure.fault() else {
        return;
    };
    let request_id = request_id(req).unwrap_or_default();
    let route = endpoint.function_name();
    let error = Chain(failure);
    match cause {
        PortError::Other(_) => tracing::error!(route, request_id, error = %error, "request failed: answered 500"),
        PortError::Unavailable(_) | PortError::Conflict => {
            tracing::warn!(route, request_id, error = %error, "dependency busy or unavailable: answered 503")
        }
    }
}

/// The request's id: the Lambda invocation's, else API Gateway's.
fn request_id(req: &Request) -> Option<String> {
    req.lambda_context_ref().map(|context| context.request_id.clone()).or_else(|| match req.request_context_ref() {
        Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    })
}

/// Where the request came from, for the security events recorded while answering it.
fn origin(req: &Request) -> Origin {
    let user_agent = req.headers().get(lambda_http::http::header::USER_AGENT).and_then(|v| v.to_str().ok());
    Origin { request_id: request_id(req), address: source_ip(req), user_agent: None }.with_user_agent(user_agent)
}

/// Routes a request by method and path, as API Gateway does in front of the functions:
/// 404 for an unknown path, 405 for a known path with another method.
pub async fn dispatch(app: &App, req: Request) -> Response<Body> {
    let mut allowed: Vec<Method> = Vec::new();
    for endpoint in Endpoint::ALL {
        let Some(params) = endpoint.matches(req.uri().path()) else {
            continue;
        };
        if endpoint.method() == req.method() {
            let req = if params.is_empty() { req } else { req.with_path_parameters(params) };
            return endpoint.handle(app, req).await;
        }
        allowed.push(endpoint.method());
    }
    if !allowed.is_empty() {
        // RFC 9110: a 405 names the methods the resource has.
        let mut response = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &ErrorBody { error: "Method not allowed".into(), code: ErrorCode::MethodNotAllowed },
        );
        if let Ok(allow) =
            lambda_http::http::HeaderValue::from_str(&allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", "))
        {
            response.headers_mut().insert(lambda_http::http::header::ALLOW, allow);
        }
        response
    } else {
        not_found()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_a_distinct_route_and_function() {
        let mut routes = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for e in Endpoint::ALL {
            assert!(routes.insert((e.method(), e.path())), "{e:?}");
            assert!(names.insert(e.function_name()), "{e:?}");
            assert!(e.path().starts_with("/auth/"));
        }
    }

    #[test]
    fn path_parameters_are_extracted_from_matching_paths_only() {
        let params = Endpoint::DeleteApiKey.matches("/auth/api-keys/abc").unwrap();
        assert_eq!(params["id"], vec!["abc".to_owned()]);
        assert!(Endpoint::DeleteApiKey.matches("/auth/api-keys/").is_none());
        assert!(Endpoint::DeleteApiKey.matches("/auth/api-keys/a/b").is_none());
        assert!(Endpoint::ListApiKeys.matches("/auth/api-keys").is_some());
        assert!(Endpoint::Register.matches("/auth/register/").is_none());
    }
}
