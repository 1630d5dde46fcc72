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
use crate::domain::meter::Decision;
use crate::domain::named::named_enum;
use serde_json::{json, Map, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

named_enum! {
    /// The AWS services the functions depend on (the `Service` dimension).
    pub enum Service {
        DynamoDb => "DynamoDB",
        Kms => "KMS",
        Ses => "SES",
    }
}

/// Declares [`Counter`]: the plain counters (one cell each, first) and the keyed ones
/// (one cell per value of their key, a [`named_enum`], after them), with each metric's
/// name and dimension. The cells, their order and `all()` follow from this one list.
macro_rules! counters {
    (
        plain { $( $(#[$plain_meta:meta])* $Plain:ident => $plain_name:literal, )+ }
        keyed { $( $(#[$keyed_meta:meta])* $Keyed:ident($Key:ty) => $keyed_name:literal by $dimension:literal, )+ }
    ) => {
        /// One thing the service counts.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Counter {
            $( $(#[$plain_meta])* $Plain, )+
            $( $(#[$keyed_meta])* $Keyed($Key), )+
        }

        /// The plain counters, in order: cells `0..PLAIN`.
        enum Plain {
            $( $Plain, )+
        }

        /// The keyed counters, in order: each takes as many cells as its key has values.
        enum Keyed {
            $( $Keyed, )+
        }

        const PLAIN: usize = [$($plain_name),+].len();
        /// How many cells each keyed counter takes, in [`Keyed`] order.
        const KEYED_CELLS: [usize; [$($keyed_name),+].len()] = [$(<$Key>::COUNT),+];
        /// How many distinct counters there are.
        const COUNTERS: usize = first_cell(KEYED_CELLS.len());

        impl Counter {
            /// The metric name and, for keyed counters, the dimension and its value.
            pub fn metric(self) -> (&'static str, Option<(&'static str, &'static str)>) {
                match self {
                    $( Counter::$Plain => ($plain_name, None), )+
                    $( Counter::$Keyed(key) => ($keyed_name, Some(($dimension, key.name()))), )+
                }
            }

            fn index(self) -> usize {
                match self {
                    $( Counter::$Plain => Plain::$Plain as usize, )+
                    $( Counter::$Keyed(key) => key.index() + const { first_cell(Keyed::$Keyed as usize) }, )+
                }
            }

            /// Every counter, in index order.
            pub fn all() -> Vec<Counter> {
                let mut all = vec![$( Counter::$Plain, )+];
                $( all.extend(<$Key>::ALL.map(Counter::$Keyed)); )+
                all
            }
        }
    };
}

/// The first cell of the `keyed`th keyed counter: after the plain ones and every keyed
/// one before it.
const fn first_cell(keyed: usize) -> usize {
    let (mut cell, mut i) = (PLAIN, 0);
    while i < keyed {
        cell += KEYED_CELLS[i];
        i += 1;
    }
    cell
}

counters! {
    plain {
        /// Requests answered by a route's function (dimension `Route`).
        Requests => "Requests",
        /// Of those, answered 4xx.
        ClientErrors => "ClientErrors",
        /// Of those, answered 5xx.
        ServerErrors => "ServerErrors",
        /// Email and password checked and correct (login, regenerate-key).
        LoginSucceeded => "LoginSucceeded",
        /// Email and password checked and wrong, or no such account.
        LoginFailed => "LoginFailed",
        /// An account's password checks locked after its budget of failures was spent.
        Lockouts => "Lockouts",
        /// A reset link was mailed.
        ResetEmailsSent => "ResetEmailsSent",
        /// A reset link was not mailed: the address's budget of reset emails was spent.
        ResetEmailsSuppressed => "ResetEmailsSuppressed",
        /// A verify request with a missing or wrong service key.
        ServiceKeyRefused => "ServiceKeyRefused",
        /// A key imported from the Node relay admitted (by either door, or to manage its
        /// account): what is left to end before `LEGACY_KEYS_UNTIL`.
        LegacyKeyUses => "LegacyKeyUses",
    }
    keyed {
        /// A request refused by a throttle rule.
        Throttled(Rule) => "Throttled" by "Rule",
        /// An authorizer decision.
        Authorizer(Decision) => "AuthorizerDecisions" by "Reason",
        /// A call to a dependency that failed.
        DependencyFailures(Service) => "DependencyFailures" by "Service",
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
    fn metric_names_and_dimensions_stay_what_dashboards_and_alarms_read() {
        let plain = ["Requests", "ClientErrors", "ServerErrors", "LoginSucceeded", "LoginFailed", "Lockouts"];
        let plain =
            plain.into_iter().chain(["ResetEmailsSent", "ResetEmailsSuppressed", "ServiceKeyRefused", "LegacyKeyUses"]);
        let mut expected: Vec<(&str, Option<(&str, &str)>)> = plain.map(|name| (name, None)).collect();
        let rules = ["account-failures", "auth-per-address", "reset-per-address", "account-management"];
        let rules = rules.into_iter().chain(["service-key-failures", "verification-emails"]);
        expected.extend(rules.map(|rule| ("Throttled", Some(("Rule", rule)))));
        let reasons = ["admitted", "cap", "missing", "malformed", "unknown", "revoked", "disabled", "expired"];
        let reasons = reasons.into_iter().chain([
            "client",
            "user",
            "scope",
            "master_key_not_allowed",
            "legacy",
            "unverified",
            "error",
        ]);
        expected.extend(reasons.map(|reason| ("AuthorizerDecisions", Some(("Reason", reason)))));
        let services = ["DynamoDB", "KMS", "SES"];
        expected.extend(services.map(|service| ("DependencyFailures", Some(("Service", service)))));
        assert_eq!(Counter::all().into_iter().map(Counter::metric).collect::<Vec<_>>(), expected);
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
