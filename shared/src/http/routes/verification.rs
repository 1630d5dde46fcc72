//! Verified emails: verify-email (the emailed link's token) and resend-verification.

use crate::domain::app::App;
use crate::domain::auth::authenticate_master;
use crate::domain::verification::{self, RESENT, VERIFIED};
use crate::http::bodies::EmailVerification;
use crate::http::request::{api_key, body, source_ip};
use crate::http::response::json_response;
use crate::http::response::Answer;
use crate::http::schema::Message;
use lambda_http::http::StatusCode;
use lambda_http::Request;

pub(super) async fn verify_email(app: &App, req: &Request) -> Answer {
    let token = body::<EmailVerification>(req)?.required()?;
    verification::verify_email(app, token.expose(), source_ip(req).as_deref()).await?;
    Ok(json_response(StatusCode::OK, &Message { message: VERIFIED }))
}

pub(super) async fn resend_verification(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    verification::resend(app, &caller).await?;
    Ok(json_response(StatusCode::OK, &Message { message: RESENT }))
}
