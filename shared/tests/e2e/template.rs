//! `template.yaml` declares exactly the contract's routes, each on the function whose
//! binary serves it, with an event file per function and no write permission where the
//! function only reads.

use serde_yaml_ng::Value;
use shared::http::Endpoint;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn template() -> Value {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// The functions of the template: binary name -> resource.
fn functions(template: &Value) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == "AWS::Serverless::Function")
        .map(|r| {
            assert_eq!(r["Metadata"]["BuildMethod"], "rust-cargolambda");
            (r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned(), r.clone())
        })
        .collect()
}

/// Every action a function's policies allow, as `service:Action` strings.
fn actions(function: &Value) -> BTreeSet<String> {
    grants(function).into_iter().map(|(_, action)| action).collect()
}

/// Every (resource, action) a function's policies allow; the resource is the logical id
/// of a `!GetAtt X.Arn`, or the resource as written.
fn grants(function: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    // A function with its own `Role` (the web pages) has no `Policies`.
    for policy in function["Properties"]["Policies"].as_sequence().into_iter().flatten() {
        for statement in policy["Statement"].as_sequence().unwrap() {
            let resource = match &statement["Resource"] {
                Value::Tagged(tagged) => {
                    tagged.value.as_str().map(|r| r.trim_end_matches(".Arn").to_owned()).unwrap_or_default()
                }
                other => format!("{other:?}"),
            };
            for action in statement["Action"].as_sequence().unwrap() {
                found.insert((resource.clone(), action.as_str().unwrap().to_owned()));
            }
        }
    }
    found
}

#[test]
fn every_route_is_declared_once_on_the_function_that_serves_it() {
    let template = template();
    let functions = functions(&template);
    let mut declared = BTreeMap::new();
    for (binary, function) in &functions {
        // The authorizer serves no route of its own.
        let events = function["Properties"]["Events"].as_mapping();
        assert_eq!(events.is_none(), binary == "authorizer", "{binary}");
        for event in events.into_iter().flat_map(|events| events.values()) {
            assert_eq!(event["Type"], "HttpApi", "{binary}");
            let properties = &event["Properties"];
            let route = format!("{} {}", properties["Method"].as_str().unwrap(), properties["Path"].as_str().unwrap());
            assert!(declared.insert(route.clone(), binary.clone()).is_none(), "{route} declared twice");
        }
    }
    let mut expected: BTreeMap<String, String> =
        Endpoint::ALL.iter().map(|e| (format!("{} {}", e.method(), e.path()), e.function_name().to_owned())).collect();
    // The account holders' web pages and their assets, served by the `web` function.
    for path in ["/", "/signup", "/forgot-password", "/reset-password", "/account", "/assets/{proxy+}"] {
        expected.insert(format!("GET {path}"), "web".to_owned());
    }
    assert_eq!(declared, expected);
}

#[test]
fn every_function_is_a_crate_with_an_event_file() {
    for binary in functions(&template()).keys() {
        assert!(root().join("functions").join(binary).join("Cargo.toml").exists(), "{binary}");
        assert!(root().join("events").join(format!("{binary}.json")).exists(), "{binary}");
    }
}

#[test]
fn functions_get_only_the_permissions_they_use() {
    let functions = functions(&template());
    let writes = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "kms:Encrypt", "ses:SendEmail"];
    for reader in ["user-data", "export-data", "list-api-keys", "validate-reset-token"] {
        // Readers of the data; the throttle counters are all they may write.
        let allowed = grants(&functions[reader]);
        let data_writes: Vec<_> = allowed
            .iter()
            .filter(|(resource, action)| resource != "ThrottleTable" && writes.contains(&action.as_str()))
            .collect();
        assert!(data_writes.is_empty(), "{reader} may write: {data_writes:?}");
        assert!(!actions(&functions[reader]).contains("kms:Decrypt"), "{reader}");
    }
    assert!(!grants(&functions["user-data"]).iter().any(|(resource, _)| resource == "ThrottleTable"));
    for (binary, function) in &functions {
        let allowed = actions(function);
        assert!(!allowed.iter().any(|a| a.ends_with(":*")), "{binary} has a wildcard: {allowed:?}");
        let sends_mail = ["change-password", "forgot-password", "reset-password"].contains(&binary.as_str());
        assert_eq!(allowed.contains("ses:SendEmail"), sends_mail, "{binary}");
        let seals_keys = ["register", "regenerate-key", "create-api-key"].contains(&binary.as_str());
        assert_eq!(allowed.contains("kms:Encrypt"), seals_keys, "{binary}");
        assert_eq!(allowed.contains("kms:Decrypt"), binary == "login", "{binary}");
    }
}

#[test]
fn the_web_pages_function_has_a_role_without_any_permission() {
    let template = template();
    let web = &functions(&template)["web"];
    assert!(web["Properties"]["Policies"].is_null() && grants(web).is_empty());
    let role = &template["Resources"]["WebFunctionRole"];
    assert_eq!(role["Type"], "AWS::IAM::Role");
    assert!(role["Properties"]["Policies"].is_null() && role["Properties"]["ManagedPolicyArns"].is_null());
}

#[test]
fn the_functions_get_every_variable_the_configuration_requires() {
    let template = template();
    let variables = template["Globals"]["Function"]["Environment"]["Variables"].as_mapping().unwrap();
    for name in [
        "USERS_TABLE",
        "SCOPED_KEYS_TABLE",
        "RESET_TOKENS_TABLE",
        "THROTTLE_TABLE",
        "KMS_KEY_ID",
        "EMAIL_FROM",
        "RESET_URL",
    ] {
        assert!(variables.contains_key(name), "{name}");
    }
    let globals = &template["Globals"]["Function"];
    assert_eq!(globals["Runtime"], "provided.al2023");
    assert_eq!(globals["Handler"], "bootstrap");
    let tokens = &template["Resources"]["ResetTokensTable"]["Properties"];
    assert_eq!(tokens["TimeToLiveSpecification"]["AttributeName"], "expiresAt");
    let throttle = &template["Resources"]["ThrottleTable"]["Properties"];
    assert_eq!(throttle["TimeToLiveSpecification"]["AttributeName"], "expiresAt");
    assert_eq!(template["Resources"]["AuthKey"]["Properties"]["EnableKeyRotation"], true);
}

#[test]
fn the_authorizer_is_wired_to_the_api_and_only_reads_and_counts() {
    let template = template();
    let authorizer = &template["Resources"]["AuthApi"]["Properties"]["Auth"]["Authorizers"]["ApiKeyAuthorizer"];
    assert_eq!(authorizer["AuthorizerPayloadFormatVersion"], "2.0");
    assert_eq!(authorizer["EnableSimpleResponses"], true);
    assert_eq!(authorizer["Identity"]["Headers"][0], "x-api-key");
    assert_eq!(authorizer["Identity"]["ReauthorizeEvery"], 0, "no caching: every request is metered");
    let functions = functions(&template);
    let grants = grants(&functions["authorizer"]);
    let expected: BTreeSet<(String, String)> =
        [("UsersTable", "dynamodb:GetItem"), ("UsersTable", "dynamodb:UpdateItem")]
            .iter()
            .map(|(r, a)| (r.to_string(), a.to_string()))
            .collect();
    assert_eq!(grants, expected);
}

/// The logical id a `!Ref X` names.
fn reference(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str().map(str::to_owned),
        _ => None,
    }
}

#[test]
fn every_function_logs_into_its_own_group_kept_for_the_configured_days() {
    let template = template();
    let resources = &template["Resources"];
    let mut groups = BTreeSet::new();
    for (binary, function) in functions(&template) {
        let group = reference(&function["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{binary} names no log group"));
        let declared = &resources[group.as_str()];
        assert_eq!(declared["Type"], "AWS::Logs::LogGroup", "{binary}");
        assert_eq!(
            reference(&declared["Properties"]["RetentionInDays"]).as_deref(),
            Some("LogRetentionDays"),
            "{binary}"
        );
        assert!(groups.insert(group), "{binary} shares its log group");
    }
    assert_eq!(template["Parameters"]["LogRetentionDays"]["Default"], 30);
    assert_eq!(template["Globals"]["Function"]["LoggingConfig"]["LogFormat"], "JSON");
}

#[test]
fn the_key_is_administered_by_the_account_and_used_only_by_the_functions() {
    let template = template();
    let statements = template["Resources"]["AuthKey"]["Properties"]["KeyPolicy"]["Statement"].as_sequence().unwrap();
    let actions = |statement: &Value| -> Vec<String> {
        match &statement["Action"] {
            Value::String(one) => vec![one.clone()],
            many => many.as_sequence().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect(),
        }
    };
    for statement in statements {
        let actions = actions(statement);
        assert!(!actions.iter().any(|a| a == "kms:*" || a.ends_with('*')), "no wildcard: {actions:?}");
        assert!(!actions.iter().any(|a| a == "kms:CreateGrant"), "no grants");
        let crypto: Vec<_> = actions.iter().filter(|a| ["kms:Encrypt", "kms:Decrypt"].contains(&a.as_str())).collect();
        if !crypto.is_empty() {
            let condition = &statement["Condition"];
            assert!(!condition["ArnLike"]["aws:PrincipalArn"].is_null(), "only named roles use the key");
            assert!(!condition["StringEquals"]["kms:EncryptionContext:purpose"].is_null(), "only its contexts");
        }
    }
    let administered = statements.iter().flat_map(actions).collect::<BTreeSet<_>>();
    for needed in ["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:EnableKeyRotation", "kms:DescribeKey"] {
        assert!(administered.contains(needed), "the key stays manageable: {needed}");
    }
}

/// The logical id a `!If [Condition, A, B]` names as its condition, with its two branches.
fn condition(value: &Value) -> Option<(String, Value, Value)> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "If" => {
            let parts = tagged.value.as_sequence()?;
            Some((parts.first()?.as_str()?.to_owned(), parts.get(1)?.clone(), parts.get(2)?.clone()))
        }
        _ => None,
    }
}

/// The alarms of the template: logical id -> properties.
fn alarms(template: &Value) -> BTreeMap<String, Value> {
    template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm")
        .map(|(id, r)| (id.as_str().unwrap().to_owned(), r["Properties"].clone()))
        .collect()
}

/// A metric as an alarm names it: namespace, metric name, dimension names and values as
/// written (the logical id of a `!Ref`, the text of a `!Sub`).
type Watched = (String, String, Vec<(String, String)>);

/// Every metric an alarm watches, whether it watches one metric or a metric-math
/// expression over several.
fn watched(alarm: &Value) -> Vec<Watched> {
    let describe = |metric: &Value| {
        let namespace = match &metric["Namespace"] {
            Value::Tagged(tagged) => tagged.value.as_str().unwrap_or_default().to_owned(),
            other => other.as_str().unwrap_or_default().to_owned(),
        };
        let dimensions = metric["Dimensions"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|d| {
                let value = match &d["Value"] {
                    Value::Tagged(tagged) => tagged.value.as_str().unwrap_or_default().to_owned(),
                    other => other.as_str().unwrap_or_default().to_owned(),
                };
                (d["Name"].as_str().unwrap().to_owned(), value)
            })
            .collect();
        (namespace, metric["MetricName"].as_str().unwrap().to_owned(), dimensions)
    };
    match alarm["Metrics"].as_sequence() {
        Some(metrics) => metrics
            .iter()
            .filter(|m| !m["MetricStat"].is_null())
            .map(|m| describe(&m["MetricStat"]["Metric"]))
            .collect(),
        None => vec![describe(alarm)],
    }
}

#[test]
fn the_alarms_notify_the_optional_topic_when_one_is_given() {
    let template = template();
    let parameter = &template["Parameters"]["AlarmTopicArn"];
    assert_eq!(parameter["Default"], "", "no topic unless the operator names one");
    assert!(!template["Conditions"]["HasAlarmTopic"].is_null());
    let alarms = alarms(&template);
    assert!(!alarms.is_empty());
    for (id, alarm) in &alarms {
        for actions in ["AlarmActions", "OKActions"] {
            let (condition, then, otherwise) =
                condition(&alarm[actions]).unwrap_or_else(|| panic!("{id}: {actions} is not conditional"));
            assert_eq!(condition, "HasAlarmTopic", "{id}");
            assert_eq!(reference(&then.as_sequence().unwrap()[0]).as_deref(), Some("AlarmTopicArn"), "{id}");
            assert_eq!(reference(&otherwise).as_deref(), Some("AWS::NoValue"), "{id}");
        }
        assert_eq!(alarm["TreatMissingData"], "notBreaching", "{id}: no data is no trouble");
        assert!(alarm["AlarmDescription"].as_str().is_some_and(|d| !d.is_empty()), "{id}");
    }
}

#[test]
fn the_alarms_watch_errors_dependencies_logins_lockouts_email_and_table_throttles() {
    let template = template();
    let alarms = alarms(&template);
    let ours = "FoundryAuth/${AWS::StackName}";
    let watches = |metric: &str, namespace: &str, dimension: Option<(&str, &str)>| {
        alarms.values().any(|alarm| {
            watched(alarm).iter().any(|(ns, name, dims)| {
                ns == namespace
                    && name == metric
                    && match dimension {
                        Some((k, v)) => dims.iter().any(|(dk, dv)| dk == k && dv == v),
                        None => dims.is_empty(),
                    }
            })
        })
    };
    // The 5xx rate of the HTTP API: 5xx over Count, by metric math.
    let api_rate = &alarms["ApiServerErrorRateAlarm"];
    assert!(watches("5xx", "AWS/ApiGateway", Some(("ApiId", "AuthApi"))));
    assert!(watches("Count", "AWS/ApiGateway", Some(("ApiId", "AuthApi"))));
    let expression = api_rate["Metrics"].as_sequence().unwrap().iter().find_map(|m| m["Expression"].as_str()).unwrap();
    assert!(expression.contains("errors / requests"), "{expression}");
    // The service's own metrics, service-wide (the `[]` dimension set of the EMF lines).
    for metric in ["DependencyFailures", "LoginFailed", "Lockouts"] {
        assert!(watches(metric, ours, None), "{metric}");
    }
    assert!(watches("DependencyFailures", ours, Some(("Service", "SES"))), "SES send failures");
    // Every table's throttled reads and writes.
    let tables: Vec<&str> = template["Resources"]
        .as_mapping()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::DynamoDB::Table")
        .map(|(id, _)| id.as_str().unwrap())
        .collect();
    assert_eq!(tables.len(), 4);
    for table in tables {
        for metric in ["ReadThrottleEvents", "WriteThrottleEvents"] {
            assert!(watches(metric, "AWS/DynamoDB", Some(("TableName", table))), "{table} {metric}");
        }
    }
    // The namespace the alarms watch is the one the functions print into.
    let variables = &template["Globals"]["Function"]["Environment"]["Variables"];
    match &variables["METRICS_NAMESPACE"] {
        Value::Tagged(tagged) => assert_eq!(tagged.value.as_str(), Some(ours)),
        other => panic!("METRICS_NAMESPACE: {other:?}"),
    }
}

#[test]
fn the_dashboard_shows_every_metric_the_functions_print_and_every_alarm() {
    let template = template();
    let dashboard = &template["Resources"]["Dashboard"];
    assert_eq!(dashboard["Type"], "AWS::CloudWatch::Dashboard");
    let Value::Tagged(body) = &dashboard["Properties"]["DashboardBody"] else { panic!("the body is a !Sub") };
    let text = body.value.as_str().unwrap();
    // The body is JSON once CloudFormation has substituted the names.
    let parsed: serde_json::Value = serde_json::from_str(text).expect("the dashboard body is JSON");
    assert!(parsed["widgets"].as_array().is_some_and(|w| w.len() >= 8));
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for counter in shared::domain::metrics::Counter::all() {
        names.insert(counter.metric().0);
    }
    for name in names {
        assert!(
            text.contains(&format!("\"{name}\"")) || text.contains(&format!("\\\"{name}\\\"")),
            "{name} not on the dashboard"
        );
    }
    for id in alarms(&template).keys() {
        assert!(text.contains(&format!("${{{id}.Arn}}")), "{id} not on the dashboard");
    }
}

#[test]
fn tracing_is_switched_by_a_parameter_for_every_function_that_may_send_traces() {
    let template = template();
    let parameter = &template["Parameters"]["TracingEnabled"];
    assert_eq!(parameter["Default"], "false");
    let (condition_name, on, off) = condition(&template["Globals"]["Function"]["Tracing"]).expect("Tracing is an !If");
    assert_eq!((on.as_str(), off.as_str()), (Some("Active"), Some("PassThrough")));
    match &template["Conditions"][condition_name.as_str()] {
        Value::Tagged(tagged) => {
            assert_eq!(tagged.tag, "Equals");
            assert_eq!(reference(&tagged.value[0]).as_deref(), Some("TracingEnabled"));
        }
        other => panic!("{other:?}"),
    }
    // The web pages' role may send nothing, traces included.
    for (binary, function) in functions(&template) {
        let own = &function["Properties"]["Tracing"];
        assert_eq!(own.is_null(), binary != "web", "{binary}");
    }
}
