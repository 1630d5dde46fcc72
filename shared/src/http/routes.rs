//! The route table: every endpoint, its method and path, and its handler.

use crate::domain::app::App;
use crate::domain::auth::{authenticate, authenticate_master};
use crate::domain::error::{AuthError, Chain, PortError};
use crate::domain::metering::{self, Ask};
use crate::domain::metrics::{self, Counter};
use crate::domain::model::{ScopedKey, User};
use crate::domain::scoped::NewScopedKey;
use crate::domain::service_key::fingerprint;
use crate::domain::throttle::{self, Rule};
use crate::domain::{accounts, recovery, scoped};
use crate::http::authorizer::context;
use crate::http::bodies::{
    AccountDeletion, Cost, Credentials, NewAccount, PasswordChange, PasswordReset, ResetRequest, ScopedKeyRequest,
    VerifyRequest,
};
use crate::http::error::Failure;
use crate::http::request::{api_key, body, path_parameter, source_ip};
use crate::http::schema::{
    CreatedScopedKey, DataExport, Deleted, ErrorBody, ErrorCode, ExportedApiAccess, ExportedScopedKey,
    ExportedSubscription, ExportedUsage, ExportedUser, ListedScopedKey, LoggedIn, Message, PlanLimits, Reason,
    RefusedKey, RegeneratedKey, Registered, ScopedKeyList, TokenValidity, UserData, Verification, VerifiedKey,
};
use crate::http::{error_response, json_response};
use chrono::{DateTime, Utc};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use std::collections::HashMap;

type Answer = Result<Response<Body>, Failure>;

/// The endpoints of the Auth API; each is one Lambda function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Register,
    Login,
    RegenerateKey,
    UserData,
    ExportData,
    DeleteAccount,
    ChangePassword,
    ForgotPassword,
    ResetPassword,
    ValidateResetToken,
    CreateApiKey,
    ListApiKeys,
    DeleteApiKey,
    Verify,
}

impl Endpoint {
    pub const ALL: [Endpoint; 14] = [
        Endpoint::Register,
        Endpoint::Login,
        Endpoint::RegenerateKey,
        Endpoint::UserData,
        Endpoint::ExportData,
        Endpoint::DeleteAccount,
        Endpoint::ChangePassword,
        Endpoint::ForgotPassword,
        Endpoint::ResetPassword,
        Endpoint::ValidateResetToken,
        Endpoint::CreateApiKey,
        Endpoint::ListApiKeys,
        Endpoint::DeleteApiKey,
        Endpoint::Verify,
    ];

    /// Method, path (path parameters in braces, as API Gateway writes them) and the name
    /// of the function (crate and binary) that serves it.
    pub fn route(self) -> (Method, &'static str, &'static str) {
        use Endpoint::*;
        match self {
            Register => (Method::POST, "/auth/register", "register"),
            Login => (Method::POST, "/auth/login", "login"),
            RegenerateKey => (Method::POST, "/auth/regenerate-key", "regenerate-key"),
            UserData => (Method::GET, "/auth/user-data", "user-data"),
            ExportData => (Method::GET, "/auth/export-data", "export-data"),
            DeleteAccount => (Method::DELETE, "/auth/account", "delete-account"),
            ChangePassword => (Method::POST, "/auth/change-password", "change-password"),
            ForgotPassword => (Method::POST, "/auth/forgot-password", "forgot-password"),
            ResetPassword => (Method::POST, "/auth/reset-password", "reset-password"),
            ValidateResetToken => (Method::GET, "/auth/validate-reset-token/{token}", "validate-reset-token"),
            CreateApiKey => (Method::POST, "/auth/api-keys", "create-api-key"),
            ListApiKeys => (Method::GET, "/auth/api-keys", "list-api-keys"),
            DeleteApiKey => (Method::DELETE, "/auth/api-keys/{id}", "delete-api-key"),
            Verify => (Method::POST, "/auth/verify", "verify"),
        }
    }

    pub fn method(self) -> Method {
        self.route().0
    }

    pub fn path(self) -> &'static str {
        self.route().1
    }

    pub fn function_name(self) -> &'static str {
        self.route().2
    }

    /// Answers one request routed to this endpoint. Every failure is an answer.
    pub async fn handle(self, app: &App, req: Request) -> Response<Body> {
        use Endpoint::*;
        let answer = match self {
            Register => register(app, &req).await,
            Login => login(app, &req).await,
            RegenerateKey => regenerate_key(app, &req).await,
            UserData => user_data(app, &req).await,
            ExportData => export_data(app, &req).await,
            DeleteAccount => delete_account(app, &req).await,
            ChangePassword => change_password(app, &req).await,
            ForgotPassword => forgot_password(app, &req).await,
            ResetPassword => reset_password(app, &req).await,
            ValidateResetToken => validate_reset_token(app, &req).await,
            CreateApiKey => create_api_key(app, &req).await,
            ListApiKeys => list_api_keys(app, &req).await,
            DeleteApiKey => delete_api_key(app, &req).await,
            Verify => verify(app, &req).await,
        };
        answer.unwrap_or_else(|failure| {
            log_fault(self, &req, &failure);
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
    let request_id = req
        .lambda_context_ref()
        .map(|context| context.request_id.clone())
        .or_else(|| match req.request_context_ref() {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
            _ => None,
        })
        .unwrap_or_default();
    let route = endpoint.function_name();
    let error = Chain(failure);
    match cause {
        PortError::Other(_) => tracing::error!(route, request_id, error = %error, "request failed: answered 500"),
        PortError::Unavailable(_) | PortError::Conflict => {
            tracing::warn!(route, request_id, error = %error, "dependency busy or unavailable: answered 503")
        }
    }
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

fn not_found() -> Response<Body> {
    json_response(StatusCode::NOT_FOUND, &ErrorBody { error: "Not found".into(), code: ErrorCode::NotFound })
}

/// The relay asks whether a key may make a request, and this service decides and counts:
/// the other door to the same decision as the gateway's authorizer (`metering::decide`).
/// Its caller is a service (`authorization: Bearer <service key>`); with no service key
/// configured the route does not exist (404).
async fn verify(app: &App, req: &Request) -> Answer {
    let accepted = &app.settings.service_key_digests;
    if !accepted.is_open() {
        return Ok(not_found());
    }
    let Some(service_key) = bearer(req).filter(|presented| accepted.accepts(presented)) else {
        metrics::count(Counter::ServiceKeyRefused);
        throttle::per_address(app, Rule::ServiceKeyFailures, source_ip(req).as_deref()).await?;
        return Err(AuthError::ServiceKeyRequired.into());
    };
    let body: VerifyRequest = body(req)?;
    let ask = Ask {
        key: Some(body.key.trim()).filter(|k| !k.is_empty()),
        client_id: body.client_id.as_deref(),
        user_id: body.user_id.as_deref(),
        cost: body.cost.map_or(1, |Cost(cost)| cost),
        count: body.count.unwrap_or(true),
    };
    let credentials = body.credentials.unwrap_or(false);
    let authorization = match metering::decide(app, ask).await? {
        Ok(authorization) => authorization,
        Err(refusal) => {
            return Ok(json_response(
                StatusCode::OK,
                &Verification::Invalid(RefusedKey {
                    valid: false,
                    reason: Reason(refusal.reason),
                    resets_at: refusal.resets_at.map(Into::into),
                }),
            ))
        }
    };
    let login = match (&authorization.scoped_key_id, credentials) {
        (Some(key_id), true) => {
            let reader = fingerprint(service_key);
            Some(scoped::foundry_login(app, &authorization.user_id, key_id, &reader).await?)
        }
        _ => None,
    };
    let (foundry_url, foundry_username, foundry_password) = match login {
        Some(login) => (login.url, login.username, login.password.map(|p| p.as_str().to_owned())),
        None => (None, None, None),
    };
    Ok(json_response(
        StatusCode::OK,
        &Verification::Valid(Box::new(VerifiedKey {
            valid: true,
            expires_at: authorization.expires_at.map(Into::into),
            subscription_status: authorization.subscription_status.as_str().to_owned(),
            context: context(&authorization),
            foundry_url,
            foundry_username,
            foundry_password,
        })),
    ))
}

/// The `authorization: Bearer <token>` of a request (the scheme's name in any case).
fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(lambda_http::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

async fn register(app: &App, req: &Request) -> Answer {
    let (email, password) = body::<NewAccount>(req)?.required()?;
    let created = accounts::register(app, &email, password.expose(), source_ip(req).as_deref()).await?;
    let user = &created.user;
    Ok(json_response(
        StatusCode::CREATED,
        &Registered {
            id: user.id.clone(),
            email: user.email.clone(),
            api_key: created.key.expose().to_owned(),
            created_at: user.created_at.into(),
            subscription_status: user.subscription_status.as_str().to_owned(),
        },
    ))
}

async fn login(app: &App, req: &Request) -> Answer {
    let (email, password) = body::<Credentials>(req)?.required()?;
    let session = accounts::login(app, &email, password.expose(), source_ip(req).as_deref()).await?;
    let user = &session.user;
    Ok(json_response(
        StatusCode::OK,
        &LoggedIn {
            id: user.id.clone(),
            email: user.email.clone(),
            api_key: session.key.expose().to_owned(),
            requests_this_month: user.usage.this_month(app.clock.now()),
            created_at: user.created_at.into(),
        },
    ))
}

async fn regenerate_key(app: &App, req: &Request) -> Answer {
    let (email, password) = body::<Credentials>(req)?.required()?;
    let key = accounts::regenerate_key(app, &email, password.expose(), source_ip(req).as_deref()).await?;
    Ok(json_response(StatusCode::OK, &RegeneratedKey { api_key: key.expose().to_owned() }))
}

async fn user_data(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    let user = &caller.user;
    Ok(json_response(
        StatusCode::OK,
        &UserData {
            id: user.id.clone(),
            email: user.email.clone(),
            api_key: caller.key.expose().to_owned(),
            requests_this_month: user.usage.this_month(app.clock.now()),
            requests_today: user.usage.today(app.clock.now()),
            subscription_status: user.subscription_status.as_str().to_owned(),
            limits: PlanLimits {
                daily_limit: app.settings.daily_request_limit,
                monthly_limit: app.settings.monthly_request_limit,
                unlimited_monthly: user.subscription_status.is_active(),
            },
        },
    ))
}

async fn export_data(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    throttle::per_account(app, &caller.user.id).await?;
    let user = &caller.user;
    let now = app.clock.now();
    let keys = accounts::scoped_keys_of(app, user).await?;
    let scoped_keys = keys
        .iter()
        .map(|(k, requests)| ExportedScopedKey {
            id: k.id.clone(),
            name: k.name.clone(),
            key_prefix: k.prefix.clone(),
            scoped_client_id: k.scoped_client_id.clone(),
            scoped_user_id: k.scoped_user_id.clone(),
            monthly_limit: k.monthly_limit,
            daily_limit: k.daily_limit,
            requests_this_month: *requests,
            expires_at: k.expires_at.map(Into::into),
            enabled: k.is_enabled(user),
            has_foundry_credentials: k.foundry_password_ciphertext.is_some(),
            foundry_url: k.foundry_url.clone(),
            foundry_username: k.foundry_username.clone(),
            created_at: k.created_at.into(),
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &DataExport {
            export_date: now.into(),
            user: ExportedUser {
                id: user.id.clone(),
                email: user.email.clone(),
                created_at: user.created_at.into(),
                updated_at: user.updated_at.into(),
            },
            subscription: ExportedSubscription {
                status: user.subscription_status.as_str().to_owned(),
                stripe_customer_id: user.stripe_customer_id.clone(),
                subscription_id: user.subscription_id.clone(),
            },
            usage: ExportedUsage {
                requests_this_month: user.usage.this_month(now),
                requests_today: user.usage.today(now),
                last_request_date: user.usage.last_request_at.map(Into::into),
            },
            api_access: ExportedApiAccess {
                key_prefix: user.master_key.prefix.clone(),
                created_at: user.master_key.created_at.into(),
            },
            scoped_keys,
        },
    ))
}

async fn delete_account(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    let body: AccountDeletion = body(req)?;
    let password = body.password.as_ref().map(|p| p.expose());
    accounts::delete_account(app, &caller, body.confirm_email.as_deref(), password).await?;
    Ok(json_response(StatusCode::OK, &Deleted { success: true, message: "Account successfully deleted" }))
}

async fn change_password(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    let (current, new) = body::<PasswordChange>(req)?.required()?;
    accounts::change_password(app, &caller, current.expose(), new.expose()).await?;
    Ok(json_response(StatusCode::OK, &Message { message: "Password changed successfully" }))
}

async fn forgot_password(app: &App, req: &Request) -> Answer {
    let email = body::<ResetRequest>(req)?.required()?;
    recovery::forgot_password(app, &email, source_ip(req).as_deref()).await?;
    Ok(json_response(
        StatusCode::OK,
        &Message { message: "If an account with that email exists, a password reset link has been sent." },
    ))
}

async fn reset_password(app: &App, req: &Request) -> Answer {
    let (token, password) = body::<PasswordReset>(req)?.required()?;
    recovery::reset_password(app, token.expose(), password.expose(), source_ip(req).as_deref()).await?;
    Ok(json_response(StatusCode::OK, &Message { message: "Password has been reset successfully" }))
}

async fn validate_reset_token(app: &App, req: &Request) -> Answer {
    let token = path_parameter(req, "token").unwrap_or_default();
    let valid = recovery::validate_reset_token(app, &token, source_ip(req).as_deref()).await?;
    Ok(json_response(StatusCode::OK, &TokenValidity { valid }))
}

async fn create_api_key(app: &App, req: &Request) -> Answer {
    // A scoped key is refused by `scoped::create`, with its own message.
    let caller = authenticate(app, api_key(req)).await?;
    let new = NewScopedKey::from(body::<ScopedKeyRequest>(req)?);
    let created = scoped::create(app, &caller, new).await?;
    let k = &created.record;
    Ok(json_response(
        StatusCode::CREATED,
        &CreatedScopedKey {
            id: k.id.clone(),
            key: created.key.expose().to_owned(),
            name: k.name.clone(),
            scoped_client_id: k.scoped_client_id.clone(),
            scoped_user_id: k.scoped_user_id.clone(),
            monthly_limit: k.monthly_limit,
            daily_limit: k.daily_limit,
            expires_at: k.expires_at.map(Into::into),
            has_foundry_credentials: k.foundry_password_ciphertext.is_some(),
            enabled: true,
            created_at: k.created_at.into(),
        },
    ))
}

async fn list_api_keys(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    let now = app.clock.now();
    let keys = accounts::scoped_keys_of(app, &caller.user).await?;
    let keys = keys.iter().map(|(k, requests)| listed_key(k, *requests, &caller.user, now)).collect();
    Ok(json_response(StatusCode::OK, &ScopedKeyList { keys }))
}

fn listed_key(k: &ScopedKey, requests_this_month: u64, user: &User, now: DateTime<Utc>) -> ListedScopedKey {
    ListedScopedKey {
        id: k.id.clone(),
        key: format!("{}...", k.prefix),
        name: k.name.clone(),
        scoped_client_id: k.scoped_client_id.clone(),
        scoped_user_id: k.scoped_user_id.clone(),
        monthly_limit: k.monthly_limit,
        daily_limit: k.daily_limit,
        requests_this_month,
        expires_at: k.expires_at.map(Into::into),
        is_expired: k.is_expired(now),
        enabled: k.is_enabled(user),
        has_foundry_credentials: k.foundry_password_ciphertext.is_some(),
        foundry_url: k.foundry_url.clone(),
        foundry_username: k.foundry_username.clone(),
        created_at: k.created_at.into(),
        updated_at: k.updated_at.into(),
    }
}

async fn delete_api_key(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    let id = path_parameter(req, "id").unwrap_or_default();
    scoped::delete(app, &caller, &id).await?;
    Ok(json_response(StatusCode::OK, &Deleted { success: true, message: "API key deleted" }))
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
