//! Resetting a forgotten password: forgot-password, reset-password, validate-reset-token.

use crate::domain::app::App;
use crate::domain::recovery;
use crate::http::bodies::{PasswordReset, ResetRequest};
use crate::http::request::{body, path_parameter, source_ip};
use crate::http::response::json_response;
use crate::http::response::Answer;
use crate::http::schema::{Message, TokenValidity};
use lambda_http::http::StatusCode;
use lambda_http::Request;

pub(super) async fn forgot_password(app: &App, req: &Request) -> Answer {
    let email = body::<ResetRequest>(req)?.required()?;
    recovery::forgot_password(app, &email, source_ip(req).as_deref()).await?;
    Ok(json_response(
        StatusCode::OK,
        &Message { message: "If an account with that email exists, a password reset link has been sent." },
    ))
}

pub(super) async fn reset_password(app: &App, req: &Request) -> Answer {
    let (token, password) = body::<PasswordReset>(req)?.required()?;
    recovery::reset_password(app, token.expose(), password.expose(), source_ip(req).as_deref()).await?;
    Ok(json_response(StatusCode::OK, &Message { message: "Password has been reset successfully" }))
}

pub(super) async fn validate_reset_token(app: &App, req: &Request) -> Answer {
    let token = path_parameter(req, "token").unwrap_or_default();
    let valid = recovery::validate_reset_token(app, &token, source_ip(req).as_deref()).await?;
    Ok(json_response(StatusCode::OK, &TokenValidity { valid }))
}
