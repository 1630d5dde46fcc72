//! The `activity` Lambda function: wiring only; the handler lives in `shared`.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run::<shared::http::routes::Activity>().await
}
