//! Resetting a forgotten password: forgot-password, reset-password, validate-reset-token.

use crate::domain::app::App;
use crate::domain::recovery;
use crate::http::bodies::{PasswordReset, ResetRequest};
use crate::http::request::{body, path_parameter, source_ip};
use crate::http::response::json_response;
use crate::http::response::Answer;
use crate::http::schema::{Message, PasswordResetDone, TokenValidity};
use lambda_http::http::StatusCode;
use lambda_http::Request;

pub(super) async fn forgot_password(app: &App, req: &Request) -> Answer {
    let (email, key_leaked) = body::<ResetRequest>(req)?.required()?;
    recovery::forgot_password(app, &email, key_leaked, source_ip(req).as_deref()).await?;
    Ok(json_response(
        StatusCode::OK,
        &Message { message: "If an account with that email exists, a password reset link has been sent." },
    ))
}

pub(super) async fn reset_password(app: &App, req: &Request) -> Answer {
    let (token, password, revoke_keys) = body::<PasswordReset>(req)?.required()?;
    let address = source_ip(req);
    let key = recovery::reset_password(app, token.expose(), password.expose(), revoke_keys, address.as_deref()).await?;
    Ok(json_response(
        StatusCode::OK,
        &PasswordResetDone {
            message: "Password has been reset successfully",
            api_key: key.map(|key| key.expose().to_owned()),
        },
    ))
}

pub(super) async fn validate_reset_token(app: &App, req: &Request) -> Answer {
    let token = path_parameter(req, "token").unwrap_or_default();
    let valid = recovery::validate_reset_token(app, &token, source_ip(req).as_deref()).await?;
    Ok(json_response(StatusCode::OK, &TokenValidity { valid }))
}
