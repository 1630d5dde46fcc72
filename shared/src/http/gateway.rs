//! What a relay behind this service receives with every request it is handed: the
//! authorizer's context as `x-foundry-auth-*` request headers, and a shared secret that
//! says the request came through the gateway. API Gateway writes them from the
//! authorizer's context (`template.yaml`, the relay route's parameter mapping) and the
//! local server writes them itself (`local --relay-origin`); this table is the one home of
//! the names, and the tests hold the template to it.

use crate::http::schema::AuthorizerContext;
use serde_json::Value;

/// Every header a relay may trust starts with this; a client's own are removed.
pub const HEADER_PREFIX: &str = "x-foundry-auth-";

/// Carries the gateway secret (`GatewaySecret`, `local --gateway-secret`).
pub const GATEWAY_SECRET_HEADER: &str = "x-foundry-auth-gateway";

/// The headers written from the authorizer's context: (context field, header name).
pub const CONTEXT_HEADERS: [(&str, &str); 10] = [
    ("userId", "x-foundry-auth-user-id"),
    ("keyType", "x-foundry-auth-key-type"),
    ("scopedKeyId", "x-foundry-auth-scoped-key-id"),
    ("scopedClientId", "x-foundry-auth-scoped-client-id"),
    ("scopedUserId", "x-foundry-auth-scoped-user-id"),
    ("scopes", "x-foundry-auth-scopes"),
    ("requestsThisMonth", "x-foundry-auth-requests-this-month"),
    ("requestsToday", "x-foundry-auth-requests-today"),
    ("monthlyLimit", "x-foundry-auth-monthly-limit"),
    ("dailyLimit", "x-foundry-auth-daily-limit"),
];

/// The context as (header, value) pairs, as API Gateway writes them: strings as they
/// are, numbers in decimal, an absent cap as the empty string.
pub fn context_headers(context: &AuthorizerContext) -> Vec<(&'static str, String)> {
    let Ok(Value::Object(fields)) = serde_json::to_value(context) else {
        return Vec::new();
    };
    CONTEXT_HEADERS
        .iter()
        .map(|(field, header)| {
            let value = match fields.get(*field) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Number(number)) => number.to_string(),
                _ => String::new(),
            };
            (*header, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::schema::{CapOrEmpty, KeyType};

    #[test]
    fn every_context_field_has_its_header_and_no_other() {
        let context = AuthorizerContext {
            user_id: "u-1".into(),
            key_type: KeyType::Scoped,
            scoped_key_id: "k-1".into(),
            scoped_client_id: "client-1".into(),
            scoped_user_id: String::new(),
            scopes: "roll:read chat:read".into(),
            requests_this_month: 12,
            requests_today: 3,
            monthly_limit: CapOrEmpty(Some(500)),
            daily_limit: CapOrEmpty(None),
        };
        let Value::Object(fields) = serde_json::to_value(&context).unwrap() else { panic!("an object") };
        let mapped: Vec<&str> = CONTEXT_HEADERS.iter().map(|(field, _)| *field).collect();
        let mut named: Vec<&str> = fields.keys().map(String::as_str).collect();
        named.sort_unstable();
        let mut sorted = mapped.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, named, "the table names every context field once");
        assert!(CONTEXT_HEADERS.iter().all(|(_, header)| header.starts_with(HEADER_PREFIX)));
        assert!(GATEWAY_SECRET_HEADER.starts_with(HEADER_PREFIX));
        let headers = context_headers(&context);
        let get = |name: &str| headers.iter().find(|(h, _)| *h == name).map(|(_, v)| v.as_str());
        assert_eq!(get("x-foundry-auth-user-id"), Some("u-1"));
        assert_eq!(get("x-foundry-auth-key-type"), Some("scoped"));
        assert_eq!(get("x-foundry-auth-requests-this-month"), Some("12"));
        assert_eq!(get("x-foundry-auth-monthly-limit"), Some("500"));
        assert_eq!(get("x-foundry-auth-daily-limit"), Some(""));
        assert_eq!(get("x-foundry-auth-scoped-user-id"), Some(""));
        assert_eq!(get("x-foundry-auth-scopes"), Some("roll:read chat:read"));
    }
}
