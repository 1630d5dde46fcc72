//! The `authorizer` Lambda function: wiring only; the authorizer lives in `shared`.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::run_authorizer().await
}
