//! The `web` Lambda function: the account holders' pages; everything lives in `pages`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_http::service_fn(pages::handle)).await
}
