//! The contracts in `schemas/` are generated from the code. These tests fail when a file
//! drifts from the code; `MAKKER_UPDATE_SCHEMAS=1 cargo test --test contract` rewrites them.

use std::path::PathBuf;

use makker_domain::policy::Policy;

fn schema_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas")
        .join(name)
}

fn check(name: &str, generated: String) {
    let path = schema_path(name);
    let generated = format!("{generated}\n");
    if std::env::var("MAKKER_UPDATE_SCHEMAS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write the schema");
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "schemas/{name} is out of date with the code; run `MAKKER_UPDATE_SCHEMAS=1 cargo test -p makker-tests --test contract` and commit it"
    );
}

#[test]
fn openapi_json_matches_the_code() {
    let doc = serde_json::to_string_pretty(&makker_http::openapi()).unwrap();
    check("openapi.json", doc);
}

#[test]
fn policy_schema_matches_the_code() {
    let schema = serde_json::to_string_pretty(&Policy::json_schema()).unwrap();
    check("policy.schema.json", schema);
}

#[test]
fn every_mobile_endpoint_is_documented_with_its_problems() {
    let doc = serde_json::to_value(makker_http::openapi()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        "/api/v1/alarms",
        "/api/v1/alarms/{id}/acknowledge",
        "/api/v1/alarms/{id}/resolve",
        "/api/v1/alarms/{id}/deliveries",
        "/api/v1/live",
        "/api/v1/auth/login",
        "/api/v1/drills",
        "/api/v1/push/key",
        "/api/v1/push/subscriptions",
        "/api/v1/push/unsubscribe",
        "/api/v1/auth/logout",
        "/api/v1/auth/session",
        "/api/v1/me",
        "/api/v1/me/location-views",
        "/api/v1/me/export",
        "/api/v1/devices/{id}",
        "/api/v1/shift/start",
        "/api/v1/shift/end",
        "/api/v1/shift/status",
        "/api/v1/colleagues",
        "/api/v1/places/near",
        "/api/v1/teams/{team_id}/places",
        "/api/v1/assessment/questions",
        "/api/v1/lone-approvals",
        "/api/v1/lone-approvals/requests",
        "/api/v1/lone-approvals/requests/{id}",
        "/api/v1/lone-approvals/requests/{id}/decline",
        "/api/v1/sos",
        "/api/v1/visits",
        "/api/v1/visits/active",
        "/api/v1/visits/{id}",
        "/api/v1/visits/{id}/join",
        "/api/v1/visits/{id}/check-in",
        "/api/v1/visits/{id}/heartbeat",
        "/api/v1/visits/{id}/extend",
        "/api/v1/visits/{id}/check-out",
        "/api/v1/visits/{id}/withdraw",
        // Routes, areas, coverage and incidents (issue 4).
        "/api/v1/teams/{team_id}/areas",
        "/api/v1/teams/{team_id}/areas/import",
        "/api/v1/teams/{team_id}/areas/{area_id}",
        "/api/v1/teams/{team_id}/routes",
        "/api/v1/teams/{team_id}/routes/{route_id}",
        "/api/v1/teams/{team_id}/routes/export",
        "/api/v1/teams/{team_id}/routes/import",
        "/api/v1/teams/{team_id}/coverage",
        "/api/v1/teams/{team_id}/coverage/compare",
        "/api/v1/teams/{team_id}/coverage/map",
        "/api/v1/teams/{team_id}/coverage/csv",
        "/api/v1/teams/{team_id}/incidents",
        "/api/v1/incidents",
        "/api/v1/incidents/{id}/done",
        "/api/v1/incidents/{id}/absence",
    ];
    let mut listed: Vec<&str> = paths.keys().map(String::as_str).collect();
    listed.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(listed, want);
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let documents_a_problem = responses.keys().any(|code| code.starts_with('4'));
            assert!(documents_a_problem, "{method} {path} documents no 4xx problem");
        }
    }
}
