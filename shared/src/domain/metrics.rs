//! What the service counts, and the CloudWatch Embedded Metric Format (EMF) lines that
//! carry the counts out of a Lambda function.
//!
//! Each decision is counted where it is made ([`count`]: one relaxed atomic add, nothing
//! when recording is off, as in the local server and the in-process tests). A Lambda
//! function turns recording on at init and, after each invocation, renders what was
//! counted with [`Emf::lines`] and writes it to stdout in one write; CloudWatch Logs
//! extracts the metrics from those lines. No `PutMetricData` call, nothing on the network.
//!
//! Dimensions hold only names from fixed lists (a route, a rule, a reason, a service):
//! never a key, a password, an email address, an account id or a client address.

use crate::domain::limits::Rule;
pub use crate::domain::meter::Decision;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The AWS services the functions depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    DynamoDb,
    Kms,
    Ses,
}

impl Service {
    pub const ALL: [Service; 3] = [Service::DynamoDb, Service::Kms, Service::Ses];

    pub fn name(self) -> &'static str {
        match self {
            Service::DynamoDb => "DynamoDB",
            Service::Kms => "KMS",
            Service::Ses => "SES",
        }
    }
}

/// The stable name of a throttle rule, as its `Rule` dimension.
pub fn rule_name(rule: Rule) -> &'static str {
    match rule {
        Rule::AccountFailures => "account-failures",
        Rule::AuthPerAddress => "auth-per-address",
        Rule::ResetPerAddress => "reset-per-address",
        Rule::AccountManagement => "account-management",
        Rule::ServiceKeyFailures => "service-key-failures",
    }
}

const RULES: [Rule; 5] = [
    Rule::AccountFailures,
    Rule::AuthPerAddress,
    Rule::ResetPerAddress,
    Rule::AccountManagement,
    Rule::ServiceKeyFailures,
];

/// One thing the service counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Requests answered by a route's function (dimension `Route`).
    Requests,
    /// Of those, answered 4xx.
    ClientErrors,
    /// Of those, answered 5xx.
    ServerErrors,
    /// Email and password checked and correct (login, regenerate-key).
    LoginSucceeded,
    /// Email and password checked and wrong, or no such account.
    LoginFailed,
    /// An account's password checks locked after its budget of failures was spent.
    Lockouts,
    /// A reset link was mailed.
    ResetEmailsSent,
    /// A reset link was not mailed: the address's budget of reset emails was spent.
    ResetEmailsSuppressed,
    /// A verify request with a missing or wrong service key.
    ServiceKeyRefused,
    /// A request refused by a throttle rule (dimension `Rule`).
    Throttled(Rule),
    /// An authorizer decision (dimension `Reason`).
    Authorizer(Decision),
    /// A call to a dependency that failed (dimension `Service`).
    DependencyFailures(Service),
}

/// How many distinct counters there are.
const COUNTERS: usize = 9 + RULES.len() + Decision::ALL.len() + Service::ALL.len();

impl Counter {
    /// The metric name and, for keyed counters, the dimension and its value.
    pub fn metric(self) -> (&'static str, Option<(&'static str, &'static str)>) {
        match self {
            Counter::Requests => ("Requests", None),
            Counter::ClientErrors => ("ClientErrors", None),
            Counter::ServerErrors => ("ServerErrors", None),
            Counter::LoginSucceeded => ("LoginSucceeded", None),
            Counter::LoginFailed => ("LoginFailed", None),
            Counter::Lockouts => ("Lockouts", None),
            Counter::ResetEmailsSent => ("ResetEmailsSent", None),
            Counter::ResetEmailsSuppressed => ("ResetEmailsSuppressed", None),
            Counter::ServiceKeyRefused => ("ServiceKeyRefused", None),
            Counter::Throttled(rule) => ("Throttled", Some(("Rule", rule_name(rule)))),
            Counter::Authorizer(decision) => ("AuthorizerDecisions", Some(("Reason", decision.name()))),
            Counter::DependencyFailures(service) => ("DependencyFailures", Some(("Service", service.name()))),
        }
    }

    fn index(self) -> usize {
        let keyed = 9;
        match self {
            Counter::Requests => 0,
            Counter::ClientErrors => 1,
            Counter::ServerErrors => 2,
            Counter::LoginSucceeded => 3,
            Counter::LoginFailed => 4,
            Counter::Lockouts => 5,
            Counter::ResetEmailsSent => 6,
            Counter::ResetEmailsSuppressed => 7,
            Counter::ServiceKeyRefused => 8,
            Counter::Throttled(rule) => keyed + RULES.iter().position(|r| *r == rule).unwrap_or(0),
            Counter::Authorizer(d) => keyed + RULES.len() + Decision::ALL.iter().position(|x| *x == d).unwrap_or(0),
            Counter::DependencyFailures(s) => {
                keyed + RULES.len() + Decision::ALL.len() + Service::ALL.iter().position(|x| *x == s).unwrap_or(0)
            }
        }
    }

    /// Every counter, in index order.
    pub fn all() -> Vec<Counter> {
        let mut all = vec![
            Counter::Requests,
            Counter::ClientErrors,
            Counter::ServerErrors,
            Counter::LoginSucceeded,
            Counter::LoginFailed,
            Counter::Lockouts,
            Counter::ResetEmailsSent,
            Counter::ResetEmailsSuppressed,
            Counter::ServiceKeyRefused,
        ];
        all.extend(RULES.map(Counter::Throttled));
        all.extend(Decision::ALL.map(Counter::Authorizer));
        all.extend(Service::ALL.map(Counter::DependencyFailures));
        all
    }
}

/// A set of counts, safe to add to from any thread.
pub struct Counts([AtomicU64; COUNTERS]);

impl Counts {
    pub const fn new() -> Self {
        Self([const { AtomicU64::new(0) }; COUNTERS])
    }

    pub fn add(&self, counter: Counter) {
        if let Some(cell) = self.0.get(counter.index()) {
            cell.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The non-zero counts, each set back to zero.
    pub fn take(&self) -> Vec<(Counter, u64)> {
        Counter::all()
            .into_iter()
            .filter_map(|c| {
                let n = self.0.get(c.index())?.swap(0, Ordering::Relaxed);
                (n > 0).then_some((c, n))
            })
            .collect()
    }
}

impl Default for Counts {
    fn default() -> Self {
        Self::new()
    }
}

static RECORDING: AtomicBool = AtomicBool::new(false);
static RECORDED: Counts = Counts::new();

/// Counts one event, when this process records (a Lambda function); otherwise nothing.
pub fn count(counter: Counter) {
    if RECORDING.load(Ordering::Relaxed) {
        RECORDED.add(counter);
    }
}

/// From now on, [`count`] records (a Lambda function's init).
pub fn start_recording() {
    RECORDING.store(true, Ordering::Relaxed);
}

/// What was counted since the last call.
pub fn take_recorded() -> Vec<(Counter, u64)> {
    RECORDED.take()
}

/// The EMF rendering of one function's counts.
#[derive(Debug, Clone)]
pub struct Emf {
    /// The CloudWatch namespace (one per stack: `FoundryAuth/<stack>`).
    pub namespace: String,
    /// The function's route name (its binary: `login`, `authorizer`, ...).
    pub route: &'static str,
}

impl Emf {
    /// One JSON line per document: the unkeyed counters in one document with dimension
    /// sets `[Route]` and `[]` (per route and service-wide); each keyed counter in its own
    /// document with `[<its key>]` and `[]`. Nothing when nothing was counted.
    pub fn lines(&self, counts: &[(Counter, u64)], timestamp_ms: i64) -> Vec<String> {
        let mut plain = Vec::new();
        let mut lines = Vec::new();
        for (counter, n) in counts {
            match counter.metric() {
                (name, None) => plain.push((name, *n)),
                (name, Some((key, value))) => {
                    lines.push(self.document(timestamp_ms, &[key], &[(key, value)], &[(name, *n)]));
                }
            }
        }
        if !plain.is_empty() {
            lines.insert(0, self.document(timestamp_ms, &["Route"], &[], &plain));
        }
        lines
    }

    fn document(
        &self,
        timestamp_ms: i64,
        keys: &[&str],
        dimensions: &[(&str, &str)],
        metrics: &[(&str, u64)],
    ) -> String {
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [keys, []],
                    "Metrics": metrics.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
                }],
            }),
        );
        root.insert("Route".into(), Value::from(self.route));
        for (key, value) in dimensions {
            root.insert((*key).into(), Value::from(*value));
        }
        for (name, n) in metrics {
            root.insert((*name).into(), Value::from(*n));
        }
        Value::Object(root).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emf() -> Emf {
        Emf { namespace: "FoundryAuth/test".into(), route: "login" }
    }

    #[test]
    fn every_counter_has_its_own_cell() {
        let all = Counter::all();
        assert_eq!(all.len(), COUNTERS);
        for (i, c) in all.iter().enumerate() {
            assert_eq!(c.index(), i, "{c:?}");
        }
    }

    #[test]
    fn counts_are_taken_once() {
        let counts = Counts::new();
        counts.add(Counter::Requests);
        counts.add(Counter::Requests);
        counts.add(Counter::Throttled(Rule::AuthPerAddress));
        assert_eq!(counts.take(), [(Counter::Requests, 2), (Counter::Throttled(Rule::AuthPerAddress), 1)]);
        assert!(counts.take().is_empty());
    }

    #[test]
    fn plain_counters_go_per_route_and_service_wide() {
        let lines = emf().lines(&[(Counter::Requests, 1), (Counter::LoginFailed, 1)], 1_700_000_000_000);
        assert_eq!(lines.len(), 1);
        let doc: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "FoundryAuth/test");
        assert_eq!(directive["Dimensions"], json!([["Route"], []]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "Requests", "Unit": "Count"}, {"Name": "LoginFailed", "Unit": "Count"}])
        );
        assert_eq!(
            (doc["Route"].as_str(), doc["Requests"].as_u64(), doc["LoginFailed"].as_u64()),
            (Some("login"), Some(1), Some(1))
        );
    }

    #[test]
    fn keyed_counters_each_get_a_document_with_their_dimension() {
        let counts = [
            (Counter::Requests, 1),
            (Counter::Throttled(Rule::AccountFailures), 1),
            (Counter::DependencyFailures(Service::Kms), 2),
        ];
        let lines = emf().lines(&counts, 0);
        assert_eq!(lines.len(), 3);
        let throttled: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(throttled["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["Rule"], []]));
        assert_eq!((throttled["Rule"].as_str(), throttled["Throttled"].as_u64()), (Some("account-failures"), Some(1)));
        let failed: Value = serde_json::from_str(&lines[2]).unwrap();
        assert_eq!((failed["Service"].as_str(), failed["DependencyFailures"].as_u64()), (Some("KMS"), Some(2)));
    }

    #[test]
    fn nothing_counted_prints_nothing() {
        assert!(emf().lines(&[], 0).is_empty());
    }
}
