//! The API Gateway HTTP API Lambda authorizer protocol (payload format 2.0, simple
//! responses) over `domain::metering`.

use crate::domain::app::App;
use crate::domain::error::Chain;
use crate::domain::keys::KeyKind;
use crate::domain::metering::{authorize, Ask, Authorization};
use crate::http::request::API_KEY_HEADER;
use crate::http::schema::{AuthorizerContext, CapOrEmpty, KeyType};
use lambda_http::aws_lambda_events::apigw::{
    ApiGatewayV2CustomAuthorizerSimpleResponse, ApiGatewayV2CustomAuthorizerV2Request,
};
use serde_json::{Map, Value};

/// The simple response: `{"isAuthorized": true, "context": {...}}`, or `isAuthorized`
/// false with an empty context.
pub type AuthorizerResponse = ApiGatewayV2CustomAuthorizerSimpleResponse<Map<String, Value>>;

fn answer(context: Option<AuthorizerContext>) -> AuthorizerResponse {
    let mut response = AuthorizerResponse::default();
    if let Some(context) = context {
        // A struct of strings and numbers: it always serialises to an object.
        if let Ok(Value::Object(context)) = serde_json::to_value(context) {
            response.is_authorized = true;
            response.context = context;
        }
    }
    response
}

/// The context a relay route receives about an admitted request (the authorizer's
/// `context`, the gateway's `x-foundry-auth-*` headers).
pub fn context(a: &Authorization) -> AuthorizerContext {
    AuthorizerContext {
        user_id: a.user_id.clone(),
        key_type: match a.kind {
            KeyKind::Master => KeyType::Master,
            KeyKind::Scoped => KeyType::Scoped,
        },
        scoped_key_id: a.scoped_key_id.clone().unwrap_or_default(),
        scoped_client_id: a.scoped_client_id.clone().unwrap_or_default(),
        scoped_user_id: a.scoped_user_id.clone().unwrap_or_default(),
        scopes: a.scopes.names().join(" "),
        requests_this_month: a.requests_this_month,
        requests_today: a.requests_today,
        monthly_limit: CapOrEmpty(a.monthly_limit),
        daily_limit: CapOrEmpty(a.daily_limit),
    }
}

/// Admits with the caller's context, or refuses. A failure of a dependency is logged and
/// refuses (fails closed).
pub async fn respond(app: &App, request: &ApiGatewayV2CustomAuthorizerV2Request) -> AuthorizerResponse {
    let key = request
        .headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| request.identity_source.as_ref().and_then(|s| s.first()).map(String::as_str));
    let query = |name: &str| request.query_string_parameters.get(name).map(String::as_str);
    let http = &request.request_context.http;
    let path = request.raw_path.as_deref().or(http.path.as_deref()).unwrap_or_default();
    let ask = Ask {
        client_id: query("clientId"),
        user_id: query("userId"),
        ..Ask::route(app, key, http.method.as_str(), path)
    };
    match authorize(app, ask).await {
        Ok(Some(a)) => answer(Some(context(&a))),
        Ok(None) => answer(None),
        Err(error) => {
            let route = request.route_key.as_deref().unwrap_or_default();
            let request_id = request.request_context.request_id.as_deref().unwrap_or_default();
            tracing::error!(
                route,
                request_id,
                error = %Chain(&error),
                "authorizer refused a request it could not check"
            );
            answer(None)
        }
    }
}
