//! The throughput baseline: an axum server answering every request with a small JSON body.
//! Usage: bare-axum ADDR

use axum::Router;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3900".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let app = Router::new().fallback(|| async {
        axum::Json(serde_json::json!({"id": "71ea7eec-a986-4a81-85a4-195cc03e88da", "email": "gm@example.com"}))
    });
    axum::serve(listener, app).await?;
    Ok(())
}
