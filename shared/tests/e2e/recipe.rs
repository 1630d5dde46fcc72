//! CONTRIBUTING.md's "Adding a route", checked: for every endpoint of the route table, each
//! step that leaves a file behind has left it. One failure lists every missing step of
//! every route, by its number in the recipe, instead of one test at a time.

use serde_yaml_ng::Value;
use shared::http::Endpoint;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// What is missing for `endpoint`, each as "step N: what".
fn missing_steps(endpoint: Endpoint, template: &Value, openapi: &serde_json::Value, readme: &str) -> Vec<String> {
    let name = endpoint.function_name();
    let (method, path) = (endpoint.method(), endpoint.path());
    let mut missing = Vec::new();

    // Step 3: the function crate, whose main runs this endpoint.
    let krate = root().join("functions").join(name);
    match (read(&krate.join("Cargo.toml")), read(&krate.join("src/main.rs"))) {
        (Some(manifest), Some(main)) => {
            if !manifest.contains(&format!("name = \"{name}\"")) {
                missing.push(format!("step 3: functions/{name}/Cargo.toml names its package {name:?}"));
            }
            if !main.contains(&format!("routes::{endpoint:?}>")) {
                missing.push(format!("step 3: functions/{name}/src/main.rs runs routes::{endpoint:?} (lambda::run::<routes::{endpoint:?}>())"));
            }
        }
        _ => missing.push(format!("step 3: the crate functions/{name} (Cargo.toml and src/main.rs)")),
    }

    // Step 4: the template's function, built from that binary, with the route as its event
    // and its own log group.
    let function = template["Resources"].as_mapping().into_iter().flatten().map(|(_, r)| r).find(|r| {
        r["Type"] == "AWS::Serverless::Function" && r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(name)
    });
    match function {
        None => missing.push(format!("step 4: a function in template.yaml with BuildProperties.Binary: {name}")),
        Some(function) => {
            let properties = &function["Properties"];
            let routed = properties["Events"].as_mapping().into_iter().flatten().any(|(_, event)| {
                event["Properties"]["Method"].as_str() == Some(method.as_str())
                    && event["Properties"]["Path"].as_str() == Some(path)
            });
            if !routed {
                missing.push(format!("step 4: an HttpApi event {method} {path} on the {name} function"));
            }
            if properties["LoggingConfig"]["LogGroup"].is_null() {
                missing.push(format!("step 4: a log group of its own for the {name} function"));
            }
        }
    }

    // Step 5: the event `sam local invoke` uses.
    let event = read(&root().join("events").join(format!("{name}.json")))
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
    let route_key = format!("{method} {path}");
    if event.as_ref().and_then(|e| e["routeKey"].as_str()) != Some(route_key.as_str()) {
        missing.push(format!("step 5: events/{name}.json, an API Gateway 2.0 event with routeKey {route_key:?}"));
    }

    // Step 6: the OpenAPI description, regenerated.
    if openapi["paths"][path][method.as_str().to_ascii_lowercase()].is_null() {
        missing.push(format!("step 6: {method} {path} in openapi.json (cargo run -q -p local -- --print-openapi)"));
    }

    // Step 8: the README tells its users.
    if !readme.contains(path) {
        missing.push(format!("step 8: {path} in the README"));
    }
    missing
}

#[test]
fn every_route_has_been_through_every_step_of_the_recipe() {
    let template: Value = serde_yaml_ng::from_str(&read(&root().join("template.yaml")).unwrap()).unwrap();
    let openapi: serde_json::Value = serde_json::from_str(&read(&root().join("openapi.json")).unwrap()).unwrap();
    let readme = read(&root().join("README.md")).unwrap();
    let missing: Vec<String> = Endpoint::ALL
        .into_iter()
        .flat_map(|endpoint| {
            missing_steps(endpoint, &template, &openapi, &readme).into_iter().map(move |m| format!("{endpoint:?}: {m}"))
        })
        .collect();
    assert!(missing.is_empty(), "CONTRIBUTING.md, \"Adding a route\":\n{}", missing.join("\n"));
}

#[test]
fn the_recipe_check_finds_what_a_half_added_route_lacks() {
    // Every step's file taken away: each step is reported, and nothing panics.
    let empty_template: Value = serde_yaml_ng::from_str("Resources: {}").unwrap();
    let missing = missing_steps(Endpoint::Login, &empty_template, &serde_json::json!({}), "");
    let steps: Vec<&str> = missing.iter().map(|m| &m[..6]).collect();
    assert_eq!(steps, ["step 4", "step 6", "step 8"], "{missing:?}");
}
