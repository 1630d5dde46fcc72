//! X-Ray subsegments of the SDK calls, sent to the X-Ray daemon that Lambda runs beside a
//! function with active tracing.
//!
//! Lambda records each traced invocation as a segment and hands the function its trace
//! header (`_X_AMZN_TRACE_ID`: `Root=…;Parent=…;Sampled=1`, which the runtime sets for every
//! invocation). When the invocation is sampled, this interceptor times every DynamoDB, KMS
//! and SES call (from the start of the operation to its end, retries included) and sends
//! it as a subsegment of that segment, in one UDP datagram to `AWS_XRAY_DAEMON_ADDRESS`:
//! the AWS X-Ray SDKs of other languages do the same. The subsegment names the service,
//! the operation, the HTTP status and whether it failed; nothing of the request or the
//! answer. Without the daemon's address (tracing off, a developer's machine, the tests
//! unless they ask) no interceptor is installed at all.

use crate::domain::clock::{Clock, SystemClock};
use crate::domain::error::Chain;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents, SharedInterceptor};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::net::{SocketAddr, UdpSocket};

/// The interceptor for every client, when the X-Ray daemon's address is set and usable.
pub fn interceptor() -> Option<SharedInterceptor> {
    let address = daemon_address(&std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok()?)?;
    let socket = UdpSocket::bind(if address.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).ok()?;
    // A datagram that cannot leave at once is dropped, never waited for.
    socket.set_nonblocking(true).ok()?;
    Some(SharedInterceptor::new(Subsegments { socket, address }))
}

/// `ip:port`, or the UDP part of `tcp:ip:port udp:ip:port` (Lambda gives an address, never
/// a name to resolve).
fn daemon_address(value: &str) -> Option<SocketAddr> {
    let udp = value.split_whitespace().find_map(|part| part.strip_prefix("udp:")).unwrap_or(value.trim());
    udp.parse().ok()
}

/// The trace a sampled invocation belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Trace {
    root: String,
    parent: String,
}

/// The root and parent of a trace header, when it is sampled.
fn sampled(header: &str) -> Option<Trace> {
    let (mut root, mut parent, mut sampled) = (None, None, false);
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("Root", v)) => root = Some(v.to_owned()),
            Some(("Parent", v)) => parent = Some(v.to_owned()),
            Some(("Sampled", v)) => sampled = v == "1",
            _ => {}
        }
    }
    sampled.then_some(Trace { root: root?, parent: parent? })
}

/// When an operation started, and in which trace.
#[derive(Debug, Clone)]
struct Started {
    trace: Trace,
    at: f64,
}

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// Now, in epoch seconds (X-Ray's unit), from the one wall clock of the crate.
fn seconds_now() -> f64 {
    let now = SystemClock.now();
    now.timestamp() as f64 + f64::from(now.timestamp_subsec_micros()) / 1e6
}

#[derive(Debug)]
struct Subsegments {
    socket: UdpSocket,
    address: SocketAddr,
}

/// The subsegment document of one call. `status` is `None` when no answer came.
fn document(trace: &Trace, id: u64, service: &str, operation: &str, span: (f64, f64), status: Option<u16>) -> String {
    let mut doc = serde_json::json!({
        "name": service,
        "id": format!("{id:016x}"),
        "trace_id": trace.root,
        "parent_id": trace.parent,
        "type": "subsegment",
        "namespace": "aws",
        "start_time": span.0,
        "end_time": span.1,
        "aws": { "operation": operation },
    });
    match status {
        Some(status) => {
            doc["http"] = serde_json::json!({ "response": { "status": status } });
            if status == 429 {
                doc["throttle"] = true.into();
            }
            if (400..500).contains(&status) {
                doc["error"] = true.into();
            } else if status >= 500 {
                doc["fault"] = true.into();
            }
        }
        None => doc["fault"] = true.into(),
    }
    doc.to_string()
}

impl Intercept for Subsegments {
    fn name(&self) -> &'static str {
        "XraySubsegments"
    }

    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(trace) = std::env::var("_X_AMZN_TRACE_ID").ok().as_deref().and_then(sampled) {
            cfg.interceptor_state().store_put(Started { trace, at: seconds_now() });
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(started) = cfg.load::<Started>() else {
            return Ok(());
        };
        let (service, operation) =
            cfg.load::<Metadata>().map(|m| (m.service(), m.name())).unwrap_or(("AWS", "unknown"));
        let span = (started.at, seconds_now());
        let status = context.response().map(|r| r.status().as_u16());
        let doc = document(&started.trace, rand::random(), service, operation, span, status);
        // Tracing is best effort: a datagram that cannot be sent is dropped.
        let datagram = format!("{{\"format\": \"json\", \"version\": 1}}\n{doc}");
        if let Err(error) = self.socket.send_to(datagram.as_bytes(), self.address) {
            tracing::debug!(error = %Chain(&error), "sending an X-Ray subsegment failed");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sampled_traces_are_followed() {
        let header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a87bd80c:0";
        assert_eq!(
            sampled(header),
            Some(Trace { root: "1-5759e988-bd862e3fe1be46a994272793".into(), parent: "53995c3f42cd8ad8".into() })
        );
        assert_eq!(sampled("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"), None);
        assert_eq!(sampled("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"), None);
    }

    #[test]
    fn the_daemon_address_may_name_udp_and_tcp() {
        assert_eq!(daemon_address("169.254.79.129:2000"), Some("169.254.79.129:2000".parse().unwrap()));
        assert_eq!(daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.2:2001"), Some("127.0.0.2:2001".parse().unwrap()));
        assert_eq!(daemon_address("nonsense"), None);
    }

    #[test]
    fn a_subsegment_names_the_call_and_its_outcome_only() {
        let trace = Trace { root: "1-5759e988-bd862e3fe1be46a994272793".into(), parent: "53995c3f42cd8ad8".into() };
        let doc: serde_json::Value =
            serde_json::from_str(&document(&trace, 0xabc, "DynamoDB", "GetItem", (1.5, 1.75), Some(200))).unwrap();
        assert_eq!(doc["id"], "0000000000000abc");
        assert_eq!(
            (doc["trace_id"].as_str(), doc["parent_id"].as_str()),
            (Some(trace.root.as_str()), Some("53995c3f42cd8ad8"))
        );
        assert_eq!((doc["type"].as_str(), doc["namespace"].as_str()), (Some("subsegment"), Some("aws")));
        assert_eq!(doc["aws"]["operation"], "GetItem");
        assert_eq!(doc["http"]["response"]["status"], 200);
        assert!(doc.get("error").is_none() && doc.get("fault").is_none());
        let throttled: serde_json::Value =
            serde_json::from_str(&document(&trace, 1, "KMS", "Decrypt", (1.0, 2.0), Some(429))).unwrap();
        assert_eq!((throttled["throttle"].as_bool(), throttled["error"].as_bool()), (Some(true), Some(true)));
        let lost: serde_json::Value =
            serde_json::from_str(&document(&trace, 1, "SES", "SendEmail", (1.0, 2.0), None)).unwrap();
        assert_eq!(lost["fault"], true);
    }
}
