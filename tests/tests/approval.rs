//! A supervisor's approval of a lone visit, asked for from the door (rule 5, issue 8): the
//! worker's ask reaches the boards' live stream, the supervisor approves or declines, and the
//! worker's plain start uses a valid approval once. Real server, both databases.

use std::sync::Arc;
use std::time::Duration;

use makker_domain::visit::VisitKind;
use makker_mobile_api::client::ClientError;
use makker_mobile_api::*;
use makker_store::Store;
use makker_tests::app::{Fixture, PIN, TestApp, answers, ready, start_request};
use makker_tests::board::{Board, token};
use makker_tests::both;
use serde_json::Value;

fn problem<T: std::fmt::Debug>(r: Result<T, ClientError>) -> Problem {
    r.expect_err("the call should fail")
        .problem()
        .expect("a problem+json answer")
        .clone()
}

fn refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> Option<String> {
    problem(r).reason
}

/// Anna's lone announced home visit, "yes" to the questions named.
fn lone_at(f: &Fixture, place: uuid::Uuid, yes: &[&str]) -> StartVisitRequest {
    let mut req = start_request(VisitKind::HomeVisitAnnounced, place, yes);
    req.tell_colleague_id = Some(f.carl.id());
    req
}

fn ask_for(place: uuid::Uuid, yes: &[&str]) -> LoneApprovalAsk {
    LoneApprovalAsk {
        place_id: place,
        kind: Some(VisitKind::HomeVisitAnnounced),
        answers: Some(answers(yes)),
    }
}

async fn board(app: &TestApp, f: &Fixture) -> (Board, Value) {
    let mut board = Board::open(app, &token(app, &f.sofie).await, None).await.unwrap();
    let snapshot = board.expect("snapshot").await;
    (board, snapshot.data)
}

const QUIET: Duration = Duration::from_millis(800);

async fn an_approval_asked_for_from_the_door_lets_the_plain_start_through_once(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    // The dog on the place makes it medium risk: alone only with a supervisor's approval.
    let place = f.dog_home.id.0;
    let req = lone_at(&f, place, &[]);
    assert_eq!(
        refusal(f.anna.phone.start_visit(&req).await).as_deref(),
        Some("lone-approval-required")
    );
    let (mut sofie, snapshot) = board(&app, &f).await;
    assert_eq!(snapshot["approval_requests"], Value::Array(vec![]));

    let asked = f
        .anna
        .phone
        .ask_lone_approval(&ask_for(place, &[]))
        .await
        .unwrap();
    assert_eq!(asked.state, LoneAskState::Open);
    assert_eq!(asked.risk_level, Some(makker_domain::risk::RiskLevel::Medium));
    let shown = sofie.expect("approval_request").await.data;
    assert_eq!(shown["request_id"], asked.request_id.to_string());
    assert_eq!(shown["worker_id"], f.anna.id().to_string());
    assert_eq!(shown["worker_name"], f.anna.person.display_name.as_str());
    assert_eq!(shown["place_name"], "Hjem T-04");
    assert_eq!(shown["kind"], "home_visit_announced");
    assert_eq!(shown["risk_level"], "medium");
    assert_eq!(shown["warnings"][0]["kind"], "dog", "{shown}");
    // A second tap gives the same ask back and tells nobody again; a board opened now has it.
    let again = f
        .anna
        .phone
        .ask_lone_approval(&ask_for(place, &[]))
        .await
        .unwrap();
    assert_eq!(again.request_id, asked.request_id);
    assert!(sofie.next_within(QUIET).await.is_none(), "asked once");
    let (_, snapshot) = board(&app, &f).await;
    assert_eq!(snapshot["approval_requests"].as_array().unwrap().len(), 1);
    assert_eq!(
        snapshot["approval_requests"][0]["request_id"],
        asked.request_id.to_string()
    );

    let forbidden = problem(f.bo.phone.approve_lone(f.anna.id(), place).await);
    assert_eq!(forbidden.status, 403, "a worker cannot approve");
    assert_eq!(
        problem(f.bo.phone.decline_lone_ask(asked.request_id).await).status,
        403,
        "nor decline"
    );
    assert_eq!(
        f.anna
            .phone
            .lone_approval_ask(asked.request_id)
            .await
            .unwrap()
            .state,
        LoneAskState::Open
    );
    let approval = f.sofie.phone.approve_lone(f.anna.id(), place).await.unwrap();
    let answer = sofie.expect("approval_answer").await.data;
    assert_eq!(
        answer["request_id"],
        asked.request_id.to_string(),
        "the boards clear the ask"
    );
    assert_eq!(answer["approved"], true);
    let polled = f.anna.phone.lone_approval_ask(asked.request_id).await.unwrap();
    assert_eq!(
        (polled.state, polled.lone_approval_id),
        (LoneAskState::Approved, Some(approval.id))
    );

    // The same start as before, without the approval's id.
    let v = f.anna.phone.start_visit(&req).await.unwrap();
    f.anna.phone.check_out(v.id, &pinned()).await.unwrap();
    assert_eq!(
        refusal(f.anna.phone.start_visit(&req).await).as_deref(),
        Some("lone-approval-required"),
        "an approval is used once"
    );
}

fn pinned() -> CheckOutRequest {
    CheckOutRequest {
        pin: Some(PIN.into()),
        ..CheckOutRequest::default()
    }
}

async fn an_expired_approval_or_one_for_someone_else_is_not_used(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let req = lone_at(&f, f.home.id.0, &["unknown_citizen"]);
    // Bo's approval, and Anna's for another place.
    f.sofie.phone.approve_lone(f.bo.id(), f.home.id.0).await.unwrap();
    f.sofie
        .phone
        .approve_lone(f.anna.id(), f.drop_in.id.0)
        .await
        .unwrap();
    assert_eq!(
        refusal(f.anna.phone.start_visit(&req).await).as_deref(),
        Some("lone-approval-required"),
        "neither another worker's approval nor one for another place"
    );
    let approval = f
        .sofie
        .phone
        .approve_lone(f.anna.id(), f.home.id.0)
        .await
        .unwrap();
    app.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(
        refusal(f.anna.phone.start_visit(&req).await).as_deref(),
        Some("lone-approval-required"),
        "expired"
    );
    let mut named = req.clone();
    named.lone_approval_id = Some(approval.id);
    assert_eq!(
        refusal(f.anna.phone.start_visit(&named).await).as_deref(),
        Some("lone-approval-required"),
        "expired, named or not"
    );
    // A visit that needs no approval leaves a valid one for later.
    let fresh = f
        .sofie
        .phone
        .approve_lone(f.anna.id(), f.home.id.0)
        .await
        .unwrap();
    let low = start_request(VisitKind::HomeVisitAnnounced, f.home.id.0, &[]);
    let low = StartVisitRequest {
        tell_colleague_id: Some(f.carl.id()),
        ..low
    };
    let v = f.anna.phone.start_visit(&low).await.unwrap();
    f.anna.phone.check_out(v.id, &pinned()).await.unwrap();
    let stored = app.engine.store.lone_approval(fresh.id).await.unwrap();
    assert_eq!(
        stored.used_at, None,
        "a low-risk visit needs no approval and uses none"
    );
    f.anna.phone.start_visit(&req).await.unwrap();
    let stored = app.engine.store.lone_approval(fresh.id).await.unwrap();
    assert!(stored.used_at.is_some());
}

async fn a_declined_ask_is_told_to_the_worker_and_leaves_the_boards(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let (mut sofie, _) = board(&app, &f).await;
    let asked = f
        .anna
        .phone
        .ask_lone_approval(&ask_for(f.home.id.0, &["unknown_citizen"]))
        .await
        .unwrap();
    sofie.expect("approval_request").await;
    assert_eq!(
        problem(f.bo.phone.lone_approval_ask(asked.request_id).await).status,
        404,
        "another worker cannot read the ask"
    );
    f.sofie.phone.decline_lone_ask(asked.request_id).await.unwrap();
    let answer = sofie.expect("approval_answer").await.data;
    assert_eq!(
        (answer["approved"].clone(), answer["request_id"].clone()),
        (Value::Bool(false), Value::String(asked.request_id.to_string()))
    );
    assert_eq!(
        f.anna
            .phone
            .lone_approval_ask(asked.request_id)
            .await
            .unwrap()
            .state,
        LoneAskState::Declined
    );
    assert_eq!(
        problem(f.sofie.phone.decline_lone_ask(asked.request_id).await).status,
        404,
        "answered already"
    );
    assert_eq!(
        refusal(
            f.anna
                .phone
                .start_visit(&lone_at(&f, f.home.id.0, &["unknown_citizen"]))
                .await
        )
        .as_deref(),
        Some("lone-approval-required")
    );
    let (_, snapshot) = board(&app, &f).await;
    assert_eq!(snapshot["approval_requests"], Value::Array(vec![]));

    // An ask nobody answers runs out with the approval window.
    let asked = f
        .anna
        .phone
        .ask_lone_approval(&ask_for(f.home.id.0, &["unknown_citizen"]))
        .await
        .unwrap();
    assert_ne!(asked.state, LoneAskState::Declined, "a new ask after a decline");
    app.clock.advance(chrono::Duration::minutes(31));
    assert_eq!(
        f.anna
            .phone
            .lone_approval_ask(asked.request_id)
            .await
            .unwrap()
            .state,
        LoneAskState::Expired
    );
    let (_, snapshot) = board(&app, &f).await;
    assert_eq!(snapshot["approval_requests"], Value::Array(vec![]));
}

async fn a_bad_ask_changes_nothing(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let (mut sofie, _) = board(&app, &f).await;
    let other = problem(
        f.anna
            .phone
            .ask_lone_approval(&ask_for(f.other_place.id.0, &[]))
            .await,
    );
    assert_eq!(
        (other.status, other.type_.as_str()),
        (404, "urn:makker:problem:not-found")
    );
    let mut unknown = ask_for(f.home.id.0, &["unknown_citizen"]);
    unknown
        .answers
        .as_mut()
        .unwrap()
        .insert("moon_phase".into(), true);
    let bad = problem(f.anna.phone.ask_lone_approval(&unknown).await);
    assert_eq!(bad.status, 422, "{bad:?}");
    let missing = problem(f.anna.phone.lone_approval_ask(uuid::Uuid::now_v7()).await);
    assert_eq!(missing.status, 404);
    let garbage = f
        .anna
        .phone
        .request(reqwest::Method::POST, "/api/v1/lone-approvals/requests")
        .header("content-type", "application/json")
        .body(r#"{"place_id": "not a uuid"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 422);
    assert_eq!(garbage.headers()["content-type"], "application/problem+json");
    assert!(
        sofie.next_within(QUIET).await.is_none(),
        "no board heard of a bad ask"
    );
}

both!(
    an_approval_asked_for_from_the_door_lets_the_plain_start_through_once =>
        an_approval_asked_for_from_the_door_lets_the_plain_start_through_once,
    an_expired_approval_or_one_for_someone_else_is_not_used => an_expired_approval_or_one_for_someone_else_is_not_used,
    a_declined_ask_is_told_to_the_worker_and_leaves_the_boards => a_declined_ask_is_told_to_the_worker_and_leaves_the_boards,
    a_bad_ask_changes_nothing => a_bad_ask_changes_nothing,
);
