//! Times cold starts as Lambda sees them: from process start to the first request for work
//! (`GET /2018-06-01/runtime/invocation/next`) at a fake Lambda Runtime API on 127.0.0.1.
//! The binaries are started in turn, interleaved, N times each; prints one line per binary:
//! `<median ms> <path>`. The function's own settings come from the environment.
//! Usage: cold-start N BINARY...

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

async fn next(State(polled): State<mpsc::UnboundedSender<Instant>>) -> &'static str {
    let _ = polled.send(Instant::now());
    // Never hand out an event: the process is stopped once it has asked.
    std::future::pending::<()>().await;
    ""
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().ok_or("usage: cold-start N BINARY...")?.parse()?;
    let binaries: Vec<String> = args.collect();
    let (polled_tx, mut polled) = mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?;
    let app = Router::new().route("/2018-06-01/runtime/invocation/next", get(next)).with_state(polled_tx);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut times = vec![Vec::new(); binaries.len()];
    for _ in 0..runs {
        for (binary, times) in binaries.iter().zip(&mut times) {
            let start = Instant::now();
            let mut child = tokio::process::Command::new(binary)
                .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
                .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            let first_poll = tokio::time::timeout(Duration::from_secs(10), polled.recv())
                .await
                .map_err(|_| format!("{binary} never asked for work"))?
                .ok_or("runtime API stopped")?;
            times.push(first_poll.duration_since(start).as_secs_f64() * 1000.0);
            child.kill().await?;
        }
    }
    for (binary, mut times) in binaries.iter().zip(times) {
        times.sort_by(f64::total_cmp);
        println!("{:.2} {binary}", times[times.len() / 2]);
    }
    Ok(())
}
