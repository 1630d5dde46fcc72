//! `template.yaml` declares exactly the contract's routes, each on the function whose
//! binary serves it, with an event file per function and no write permission where the
//! function only reads.

use serde_yaml_ng::Value;
use shared::http::gateway::{CONTEXT_HEADERS, GATEWAY_SECRET_HEADER};
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

/// The functions of the template: binary name -> resource, whose `Policies` include those
/// of the `AWS::IAM::RolePolicy` resources on its role (SAM's `<LogicalId>Role`): every
/// permission the function has.
fn functions(template: &Value) -> BTreeMap<String, Value> {
    let resources = template["Resources"].as_mapping().unwrap();
    resources
        .iter()
        .filter(|(_, r)| r["Type"] == "AWS::Serverless::Function")
        .map(|(id, r)| {
            assert_eq!(r["Metadata"]["BuildMethod"], "rust-cargolambda");
            let mut function = r.clone();
            let role = format!("{}Role", id.as_str().unwrap());
            for (_, attached) in role_policies(template).filter(|(on, _)| *on == role) {
                let policies = &mut function["Properties"]["Policies"];
                if policies.is_null() {
                    *policies = Value::Sequence(Vec::new());
                }
                policies.as_sequence_mut().unwrap().push(attached["Properties"]["PolicyDocument"].clone());
            }
            (r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned(), function)
        })
        .collect()
}

/// The template's `AWS::IAM::RolePolicy` resources: (the role's logical id, resource).
fn role_policies(template: &Value) -> impl Iterator<Item = (String, &Value)> {
    template["Resources"].as_mapping().unwrap().values().filter(|r| r["Type"] == "AWS::IAM::RolePolicy").map(|r| {
        let role = reference(&r["Properties"]["RoleName"]).expect("a role policy names its role with !Ref");
        (role, r)
    })
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
            let mut resource = match &statement["Resource"] {
                Value::Tagged(tagged) => {
                    tagged.value.as_str().map(|r| r.trim_end_matches(".Arn").to_owned()).unwrap_or_default()
                }
                other => format!("{other:?}"),
            };
            // A grant narrowed to items by their key reads as `Table[key, ...]`.
            let leading = &statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"];
            if let Some(keys) = leading.as_sequence() {
                let keys: Vec<&str> = keys.iter().filter_map(Value::as_str).collect();
                resource = format!("{resource}[{}]", keys.join(", "));
            }
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
    for path in PAGE_ROUTES {
        expected.insert(format!("GET {path}"), "web".to_owned());
    }
    // The relay's check of its callers' keys, on the `verify` function (whether or not the
    // route table names it yet).
    let verify = expected.entry("POST /auth/verify".to_owned()).or_insert_with(|| "verify".to_owned());
    assert_eq!(verify, "verify");
    assert_eq!(declared, expected);
}

/// The routes of the account holders' web pages and their assets (`pages::PAGES` and
/// `pages::ASSETS`), all `GET`.
const PAGE_ROUTES: [&str; 7] =
    ["/", "/signup", "/forgot-password", "/reset-password", "/verify-email", "/account", "/assets/{proxy+}"];

#[test]
fn every_function_is_a_crate_with_an_event_file() {
    for binary in functions(&template()).keys() {
        assert!(root().join("functions").join(binary).join("Cargo.toml").exists(), "{binary}");
        assert!(root().join("events").join(format!("{binary}.json")).exists(), "{binary}");
    }
}

const THROTTLE_TABLE: &str = "ThrottleTable";
/// The one item of the users table that holds the throttles' secret (see
/// `aws/dynamo/throttle.rs`): not in the table it keys.
const THROTTLE_SECRET: &str = "UsersTable[CONFIG#throttle-secret]";

#[test]
fn every_function_that_throttles_can_read_and_create_the_secret_and_only_that_item() {
    for (binary, function) in &functions(&template()) {
        let allowed = grants(function);
        let throttles = allowed.iter().any(|(resource, _)| resource == THROTTLE_TABLE);
        let has = |resource: &str, action: &str| allowed.contains(&(resource.to_owned(), action.to_owned()));
        if throttles {
            assert!(has("UsersTable", "dynamodb:GetItem"), "{binary} reads the secret");
            assert!(
                has("UsersTable", "dynamodb:PutItem") || has(THROTTLE_SECRET, "dynamodb:PutItem"),
                "{binary} may create the secret"
            );
        }
        for (resource, action) in allowed.iter().filter(|(resource, _)| resource.contains('[')) {
            assert_eq!((resource.as_str(), action.as_str()), (THROTTLE_SECRET, "dynamodb:PutItem"), "{binary}");
        }
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
            .filter(|(resource, action)| {
                ![THROTTLE_TABLE, THROTTLE_SECRET].contains(&resource.as_str()) && writes.contains(&action.as_str())
            })
            .collect();
        assert!(data_writes.is_empty(), "{reader} may write: {data_writes:?}");
        assert!(!actions(&functions[reader]).contains("kms:Decrypt"), "{reader}");
    }
    assert!(!grants(&functions["user-data"]).iter().any(|(resource, _)| resource == THROTTLE_TABLE));
    for (binary, function) in &functions {
        let allowed = actions(function);
        assert!(!allowed.iter().any(|a| a.ends_with(":*")), "{binary} has a wildcard: {allowed:?}");
        let sends_mail = ["change-password", "forgot-password", "reset-password", "register", "resend-verification"]
            .contains(&binary.as_str());
        assert_eq!(allowed.contains("ses:SendEmail"), sends_mail, "{binary}");
        // reset-password seals a new master key when asked to revoke every key.
        let seals_keys = ["register", "regenerate-key", "reset-password", "create-api-key"].contains(&binary.as_str());
        assert_eq!(allowed.contains("kms:Encrypt"), seals_keys, "{binary}");
        // Master keys for login, a scoped key's Foundry password for verify.
        let opens = ["login", "verify"].contains(&binary.as_str());
        assert_eq!(allowed.contains("kms:Decrypt"), opens, "{binary}");
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
        "ACTIVITY_TABLE",
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
    let activity = &template["Resources"]["ActivityTable"]["Properties"];
    assert_eq!(activity["TimeToLiveSpecification"]["AttributeName"], "expiresAt");
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
            assert!(!condition["StringEquals"]["aws:PrincipalArn"].is_null(), "only named roles use the key");
            assert!(!condition["StringEquals"]["kms:EncryptionContext:purpose"].is_null(), "only its contexts");
        }
    }
    let administered = statements.iter().flat_map(actions).collect::<BTreeSet<_>>();
    for needed in ["kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:EnableKeyRotation", "kms:DescribeKey"] {
        assert!(administered.contains(needed), "the key stays manageable: {needed}");
    }
}

/// The logical id of the resource a `!GetAtt X.Arn` names.
fn arn_of(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "GetAtt" => {
            tagged.value.as_str()?.strip_suffix(".Arn").map(str::to_owned)
        }
        _ => None,
    }
}

#[test]
fn the_key_policy_names_exactly_the_roles_of_this_stack_that_use_the_key() {
    let template = template();
    let resources = &template["Resources"];
    let statements = resources["AuthKey"]["Properties"]["KeyPolicy"]["Statement"].as_sequence().unwrap();
    let crypto: Vec<&Value> = statements
        .iter()
        .filter(|s| {
            s["Action"].as_sequence().is_some_and(|a| a.iter().any(|a| a == "kms:Encrypt" || a == "kms:Decrypt"))
        })
        .collect();
    assert_eq!(crypto.len(), 1);
    let condition = crypto[0]["Condition"].as_mapping().unwrap();
    // Exact ARNs only: no ArnLike or StringLike, whose patterns another stack's roles
    // (a sibling stack whose name starts with this one's) could match.
    let operators: Vec<&str> = condition.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(operators, ["StringEquals"]);
    let named: BTreeSet<String> = crypto[0]["Condition"]["StringEquals"]["aws:PrincipalArn"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|arn| arn_of(arn).unwrap_or_else(|| panic!("a role by its !GetAtt Role.Arn, not {arn:?}")))
        .collect();
    let functions = functions(&template);
    let mut users = BTreeSet::new();
    for (id, declared) in resources.as_mapping().unwrap() {
        if declared["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        let (id, binary) = (id.as_str().unwrap(), declared["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap());
        if grants(&functions[binary]).iter().any(|(resource, _)| resource == "AuthKey") {
            // SAM's role of the function (`<LogicalId>Role`): it names no role of its own.
            assert!(declared["Properties"]["Role"].is_null(), "{binary}");
            users.insert(format!("{id}Role"));
        }
        // The function's own Policies go into that role, which the key policy names:
        // naming the key there would be a circular dependency (role -> key -> role). Its
        // use of the key is a role policy of its own.
        for policy in declared["Properties"]["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["Statement"].as_sequence().unwrap() {
                assert_ne!(arn_of(&statement["Resource"]).as_deref(), Some("AuthKey"), "{binary}: in its Policies");
            }
        }
    }
    // Exactly the roles whose permissions reach the key.
    assert_eq!(named, users);
    for (role, policy) in role_policies(&template) {
        assert!(named.contains(&role), "{role}: a role policy on a role the key policy does not name");
        for statement in policy["Properties"]["PolicyDocument"]["Statement"].as_sequence().unwrap() {
            assert_eq!(arn_of(&statement["Resource"]).as_deref(), Some("AuthKey"), "{role}: only the key's use");
        }
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
    assert_eq!(tables.len(), 5);
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

#[test]
fn the_relay_parameters_default_to_off_and_hide_their_secrets() {
    let template = template();
    let parameters = &template["Parameters"];
    for (name, secret) in [("ServiceKeyDigests", true), ("RelayOrigin", false), ("GatewaySecret", true)] {
        let parameter = &parameters[name];
        assert_eq!(parameter["Type"], "String", "{name}");
        assert_eq!(parameter["Default"], "", "{name}: off unless the operator sets it");
        assert_eq!(parameter["NoEcho"].as_bool().unwrap_or(false), secret, "{name}");
        assert!(parameter["Description"].as_str().is_some_and(|d| !d.is_empty()), "{name}");
        let pattern = parameter["AllowedPattern"].as_str().unwrap_or_else(|| panic!("{name} has no pattern"));
        assert!(pattern.starts_with("^(") && pattern.ends_with(")?$"), "{name}: the empty default matches");
    }
    // HasRelayOrigin: RelayOrigin is not empty.
    let Value::Tagged(not) = &template["Conditions"]["HasRelayOrigin"] else { panic!("HasRelayOrigin") };
    assert_eq!(not.tag, "Not");
    let Value::Tagged(equals) = &not.value[0] else { panic!("HasRelayOrigin: !Not [!Equals ...]") };
    assert_eq!(equals.tag, "Equals");
    assert_eq!(reference(&equals.value[0]).as_deref(), Some("RelayOrigin"));
    assert_eq!(equals.value[1], "");
    // No relay without the secret that tells it the gateway's requests from others.
    let rule = &template["Rules"]["GatewaySecretWithRelay"];
    assert_eq!(rule["RuleCondition"], template["Conditions"]["HasRelayOrigin"]);
    let assertions = rule["Assertions"].as_sequence().unwrap();
    assert_eq!(assertions.len(), 1);
    let Value::Tagged(not) = &assertions[0]["Assert"] else { panic!("the assertion is a !Not") };
    assert_eq!(not.tag, "Not");
    let Value::Tagged(equals) = &not.value[0] else { panic!("!Not [!Equals ...]") };
    assert_eq!(reference(&equals.value[0]).as_deref(), Some("GatewaySecret"));
    assert_eq!(equals.value[1], "");
}

#[test]
fn the_verify_function_reads_keys_counts_requests_and_opens_only_foundry_passwords() {
    let template = template();
    let functions = functions(&template);
    let verify = &functions["verify"];
    let events = verify["Properties"]["Events"].as_mapping().unwrap();
    assert_eq!(events.len(), 1);
    let route = &events.values().next().unwrap()["Properties"];
    assert_eq!((route["Method"].as_str(), route["Path"].as_str()), (Some("POST"), Some("/auth/verify")));
    assert_eq!(reference(&route["ApiId"]).as_deref(), Some("AuthApi"));
    assert!(route["Auth"].is_null(), "it checks its caller's service key itself");
    // The digests go to verify alone.
    let digests = &verify["Properties"]["Environment"]["Variables"]["SERVICE_KEY_DIGESTS"];
    assert_eq!(reference(digests).as_deref(), Some("ServiceKeyDigests"));
    assert!(template["Globals"]["Function"]["Environment"]["Variables"]["SERVICE_KEY_DIGESTS"].is_null());
    for (binary, function) in &functions {
        let own = &function["Properties"]["Environment"]["Variables"]["SERVICE_KEY_DIGESTS"];
        assert_eq!(own.is_null(), binary != "verify", "{binary}");
    }
    // The throttle table as login uses it, the key index and the account read and counted,
    // the scoped key read, and Decrypt of Foundry passwords: nothing else.
    let throttle: BTreeSet<_> = grants(&functions["login"]).into_iter().filter(|(r, _)| r == "ThrottleTable").collect();
    assert!(!throttle.is_empty());
    let mut expected: BTreeSet<(String, String)> = [
        ("UsersTable", "dynamodb:GetItem"),
        ("UsersTable", "dynamodb:UpdateItem"),
        (THROTTLE_SECRET, "dynamodb:PutItem"),
        ("ScopedKeysTable", "dynamodb:GetItem"),
        ("AuthKey", "kms:Decrypt"),
    ]
    .iter()
    .map(|(r, a)| (r.to_string(), a.to_string()))
    .collect();
    expected.extend(throttle);
    assert_eq!(grants(verify), expected);
    let statements: Vec<&Value> = verify["Properties"]["Policies"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|policy| policy["Statement"].as_sequence().unwrap())
        .collect();
    assert!(statements.iter().all(|s| s["Effect"] == "Allow"));
    let kms = statements.iter().find(|s| s["Action"][0].as_str().is_some_and(|a| a.starts_with("kms:"))).unwrap();
    assert_eq!(kms["Condition"]["StringEquals"]["kms:EncryptionContext:purpose"], "foundry-password");
}

/// The relay's route in the API's OpenAPI body: `!If [HasRelayOrigin, path item, NoValue]`.
fn relay_route(template: &Value) -> Value {
    let path = &template["Resources"]["AuthApi"]["Properties"]["DefinitionBody"]["paths"]["/{proxy+}"];
    let (condition, then, otherwise) = condition(path).expect("the relay's route is conditional");
    assert_eq!(condition, "HasRelayOrigin");
    assert_eq!(reference(&otherwise).as_deref(), Some("AWS::NoValue"), "no relay, no route");
    let item = then.as_mapping().unwrap();
    assert_eq!(item.len(), 1, "one operation: {item:?}");
    then["x-amazon-apigateway-any-method"].clone()
}

#[test]
fn with_a_relay_origin_every_other_path_goes_through_the_authorizer_to_the_relay() {
    let template = template();
    let api = &template["Resources"]["AuthApi"];
    assert_eq!(api["Type"], "AWS::Serverless::HttpApi");
    let route = relay_route(&template);
    // ANY /{proxy+}, behind the authorizer every relay route uses.
    let security = route["security"].as_sequence().unwrap();
    assert_eq!(security.len(), 1);
    let scheme = security[0].as_mapping().unwrap();
    assert_eq!(scheme.len(), 1);
    assert_eq!(scheme.keys().next().unwrap(), "ApiKeyAuthorizer");
    assert!(api["Properties"]["Auth"]["Authorizers"]["ApiKeyAuthorizer"].is_mapping());
    // Proxied as it came, path and query, to the relay's origin.
    let integration = &route["x-amazon-apigateway-integration"];
    assert_eq!(integration["type"], "http_proxy");
    assert_eq!(integration["httpMethod"], "ANY");
    assert_eq!(integration["payloadFormatVersion"], "1.0");
    match &integration["uri"] {
        Value::Tagged(sub) if sub.tag == "Sub" => assert_eq!(sub.value, "${RelayOrigin}/{proxy}"),
        other => panic!("uri: {other:?}"),
    }
    // The relay's address through the gateway, when there is a relay.
    let output = &template["Outputs"]["RelayUrl"];
    assert_eq!(output["Condition"], "HasRelayOrigin");
    assert!(!output["Value"].is_null());
}

#[test]
fn the_relay_receives_the_authorizer_context_and_the_gateway_secret_as_headers() {
    let template = template();
    let route = relay_route(&template);
    let parameters = route["x-amazon-apigateway-integration"]["requestParameters"].as_mapping().unwrap();
    let mut expected: BTreeMap<String, Value> = CONTEXT_HEADERS
        .iter()
        .map(|(field, header)| {
            (format!("overwrite:header.{header}"), Value::from(format!("$context.authorizer.{field}")))
        })
        .collect();
    let secret = parameters
        .get(format!("overwrite:header.{GATEWAY_SECRET_HEADER}").as_str())
        .expect("the gateway secret is sent");
    assert_eq!(reference(secret).as_deref(), Some("GatewaySecret"));
    expected.insert(format!("overwrite:header.{GATEWAY_SECRET_HEADER}"), secret.clone());
    let written: BTreeMap<String, Value> =
        parameters.iter().map(|(key, value)| (key.as_str().unwrap().to_owned(), value.clone())).collect();
    assert_eq!(written, expected, "exactly the headers of shared::http::gateway, overwriting a client's");
}

#[test]
fn no_greedy_route_takes_the_relay_paths_from_the_relay_route() {
    let template = template();
    // The API's body declares nothing but the relay's route; the functions declare the rest.
    let paths = template["Resources"]["AuthApi"]["Properties"]["DefinitionBody"]["paths"].as_mapping().unwrap();
    assert_eq!(paths.keys().collect::<Vec<_>>(), ["/{proxy+}"]);
    let mut greedy = Vec::new();
    for (binary, function) in functions(&template) {
        for event in function["Properties"]["Events"].as_mapping().into_iter().flat_map(|e| e.values()) {
            let properties = &event["Properties"];
            let (method, path) = (properties["Method"].as_str().unwrap(), properties["Path"].as_str().unwrap());
            // API Gateway prefers `GET /{proxy+}` over `ANY /{proxy+}`: no catch-all of any method.
            assert!(!["ANY", "any", "*"].contains(&method), "{binary}: {method} {path}");
            assert_ne!(path, "$default", "{binary}");
            if path.contains("+}") {
                greedy.push(format!("{method} {path}"));
            }
        }
        // The pages are there with or without a relay.
        assert!(function["Condition"].is_null(), "{binary}");
    }
    // Only the assets' prefix is greedy, and it belongs to the pages alone.
    assert_eq!(greedy, ["GET /assets/{proxy+}"]);
    assert!(PAGE_ROUTES.contains(&"/assets/{proxy+}"));
}

#[test]
fn each_function_requires_the_variables_of_what_its_permissions_reach() {
    use shared::config::Needs;
    let template = template();
    let functions = functions(&template);
    let needs =
        Endpoint::ALL.iter().map(|e| (e.function_name(), Needs::of(*e))).chain([("authorizer", Needs::AUTHORIZER)]);
    for (binary, needs) in needs {
        let grants = grants(&functions[binary]);
        let reaches = |resource: &str| grants.iter().any(|(r, _)| r == resource);
        let table_needs = [
            ("UsersTable", needs.users_table),
            ("ScopedKeysTable", needs.scoped_keys_table),
            ("ResetTokensTable", needs.reset_tokens_table),
            ("ThrottleTable", needs.throttle_table),
            ("ActivityTable", needs.activity_table),
        ];
        for (table, needed) in table_needs {
            assert_eq!(needed, reaches(table), "{binary}: needs its variable exactly when it may use {table}");
        }
        assert_eq!(needs.kms_key, reaches("AuthKey"), "{binary}: KMS_KEY_ID exactly when it may use the key");
        let sends = grants.iter().any(|(_, action)| action == "ses:SendEmail");
        assert_eq!(needs.email_sender, sends, "{binary}: EMAIL_FROM exactly when it may send email");
    }
}
