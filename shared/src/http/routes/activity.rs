//! The account's security log, for its owner.

use crate::domain::activity;
use crate::domain::app::App;
use crate::domain::auth::authenticate_master;
use crate::http::request::api_key;
use crate::http::response::{json_response, Answer};
use crate::http::schema::{ActivityEntry, ActivityList};
use lambda_http::http::StatusCode;
use lambda_http::Request;

pub(super) async fn activity(app: &App, req: &Request) -> Answer {
    let caller = authenticate_master(app, api_key(req)).await?;
    let events = activity::recent(app, &caller.user.id).await?;
    Ok(json_response(StatusCode::OK, &ActivityList { events: events.iter().map(ActivityEntry::from).collect() }))
}
