//! The log subscriber of every binary (the functions and the local server).
//!
//! Nothing is ever logged more verbosely than DEBUG, whatever `RUST_LOG` or
//! `AWS_LAMBDA_LOG_LEVEL` say: at TRACE, the Lambda runtime logs every raw event it
//! receives (passwords, keys, reset tokens in request bodies), and the AWS SDK every
//! response body (a KMS `Decrypt` answer is a master key in plain text). A TRACE setting is
//! clamped to DEBUG, and the first line says so.

use std::str::FromStr;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::{Layer, Registry};

/// The most verbose level anything is logged at.
pub const MOST_VERBOSE: LevelFilter = LevelFilter::DEBUG;

/// How the lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line, no timestamp (CloudWatch stamps each line).
    Json,
    /// Plain text with a timestamp (a terminal).
    Text,
}

/// A subscriber that logs at `level` (a level name, INFO when absent or invalid), refined
/// by `directives` (`RUST_LOG`'s syntax), never beyond [`MOST_VERBOSE`], to `writer`.
pub fn subscriber<W>(
    level: Option<&str>,
    directives: Option<&str>,
    format: Format,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let default = level.and_then(|l| LevelFilter::from_str(l.trim()).ok()).unwrap_or(LevelFilter::INFO);
    let filter =
        EnvFilter::builder().with_default_directive(default.into()).parse_lossy(directives.unwrap_or_default());
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match format {
        Format::Json => {
            Box::new(tracing_subscriber::fmt::layer().json().with_target(false).without_time().with_writer(writer))
        }
        Format::Text => Box::new(tracing_subscriber::fmt::layer().with_writer(writer)),
    };
    tracing_subscriber::registry().with(lines).with(filter).with(MOST_VERBOSE)
}

/// Installs [`subscriber`] for the process; says so when a setting asked for more than
/// [`MOST_VERBOSE`].
pub fn init<W>(level: Option<&str>, directives: Option<&str>, format: Format, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let asked = [level, directives].into_iter().flatten().any(|text| text.to_ascii_lowercase().contains("trace"));
    if tracing::subscriber::set_global_default(subscriber(level, directives, format, writer)).is_ok() && asked {
        tracing::warn!("a TRACE log level was asked for and is clamped to DEBUG: at TRACE, raw events and AWS answers would carry secrets");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Captured {
        type Writer = Captured;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    fn logged(level: Option<&str>, directives: Option<&str>) -> String {
        let captured = Captured::default();
        let subscriber = subscriber(level, directives, Format::Json, captured.clone());
        tracing::subscriber::with_default(subscriber, || {
            // What lambda_runtime's api_response layer and the AWS SDK log at TRACE.
            tracing::trace!(target: "lambda_runtime::layers::api_response", body = "{\"password\":\"Hunter-2-secret\"}", "raw JSON event received from Lambda");
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator::http", response = "Plaintext=frm_secret", "read HTTP response body");
            tracing::debug!(target: "lambda_runtime::runtime", "a debug line");
            tracing::info!("an info line");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text
    }

    #[test]
    fn trace_is_clamped_to_debug_however_it_is_asked_for() {
        for (level, directives) in [
            (Some("trace"), None),
            (Some("TRACE"), Some("trace")),
            (None, Some("lambda_runtime=trace,aws_smithy_runtime=trace")),
            (Some("info"), Some("trace")),
        ] {
            let text = logged(level, directives);
            assert!(!text.contains("secret"), "{level:?} {directives:?}: {text}");
            assert!(text.contains("a debug line"), "DEBUG still goes through: {text}");
        }
    }

    #[test]
    fn the_default_is_info() {
        let text = logged(None, None);
        assert!(text.contains("an info line") && !text.contains("a debug line"), "{text}");
        assert!(logged(Some("warn"), None).is_empty());
    }
}
