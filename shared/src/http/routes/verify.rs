//! POST /auth/verify: the relay asks whether a key may make a request.

use crate::domain::app::App;
use crate::domain::error::AuthError;
use crate::domain::limits::Rule;
use crate::domain::meter::Decision;
use crate::domain::metering::{self, Ask};
use crate::domain::metrics::{self, Counter};
use crate::domain::scoped;
use crate::domain::scopes::{Need, Scope};
use crate::domain::service_key::fingerprint;
use crate::domain::throttle;
use crate::http::authorizer::context;
use crate::http::bodies::{Cost, VerifyRequest};
use crate::http::error::RequestError;
use crate::http::request::{body, source_ip};
use crate::http::response::json_response;
use crate::http::response::{not_found, Answer};
use crate::http::schema::{Reason, RefusedKey, Verification, VerifiedKey};
use lambda_http::http::StatusCode;
use lambda_http::Request;

/// The relay asks whether a key may make a request, and this service decides and counts:
/// the other door to the same decision as the gateway's authorizer (`metering::decide`).
/// Its caller is a service (`authorization: Bearer <service key>`); with no service key
/// configured the route does not exist (404).
pub(super) async fn verify(app: &App, req: &Request) -> Answer {
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
    // `method` and `path` go together (given, even as `null`, or not at all); a `null` one
    // names no route, which is refused to keys that hold scopes (fails closed).
    let need = match (body.scope.as_deref(), &body.method, &body.path) {
        (Some(scope), _, _) => {
            Need::Scope(Scope::parse(scope).ok_or_else(|| AuthError::InvalidScopes(scope.to_owned()))?)
        }
        (None, Some(method), Some(path)) => {
            app.settings.route_scopes.need(method.as_deref().unwrap_or_default(), path.as_deref().unwrap_or_default())
        }
        (None, None, None) => Need::Nothing,
        (None, _, _) => return Err(RequestError::InvalidBody("method and path go together".into()).into()),
    };
    let ask = Ask {
        key: Some(body.key.trim()).filter(|k| !k.is_empty()),
        client_id: body.client_id.as_deref(),
        user_id: body.user_id.as_deref(),
        need,
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
                    required_scope: match (refusal.reason, need) {
                        (Decision::Scope, Need::Scope(scope)) => Some(scope.name()),
                        _ => None,
                    },
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
