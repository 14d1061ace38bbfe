//! Retention beyond positions, on the manual clock: visit details are pseudonymised after
//! their retention time (free text, answers, message texts and homes go; kinds, times and
//! counts stay), and audit lines are deleted after theirs, never younger than a year.

use std::sync::Arc;

use chrono::{Duration, Utc};
use makker_domain::place::{PlaceKind, WarningKind};
use makker_domain::visit::{VisitKind, VisitState};
use makker_domain::{AlarmId, PersonId, VisitId};
use makker_engine::maintenance::Maintenance;
use makker_mobile_api::{CheckOutRequest, EventRequest, ResolveRequest, StartVisitRequest};
use makker_store::{AuditEntry, Store};
use makker_tests::app::{Fixture, PIN, TestApp, ready, start_request};
use makker_tests::both;

/// A lone announced home visit by Anna with a written reason, telling Bo when she leaves.
fn home_visit(f: &Fixture) -> StartVisitRequest {
    StartVisitRequest {
        lone_reason: Some("Kender borgeren godt".into()),
        tell_colleague_id: Some(f.bo.id()),
        ..start_request(VisitKind::HomeVisitAnnounced, f.home.id.0, &[])
    }
}

fn check_out() -> CheckOutRequest {
    CheckOutRequest {
        pin: Some(PIN.into()),
        client_time: None,
        position: None,
    }
}

/// Carl's SOS, acknowledged and resolved by Sofie with a note.
async fn resolved_sos(app: &TestApp, f: &Fixture) -> AlarmId {
    let alarm = f.carl.phone.sos(&EventRequest::default()).await.unwrap();
    app.scheduler().run_due().await.unwrap();
    f.sofie.phone.acknowledge(alarm.id).await.unwrap();
    let resolve = ResolveRequest {
        outcome: "worker_safe".into(),
        note: Some("Borgeren var beruset og truende".into()),
    };
    f.sofie.phone.resolve(alarm.id, &resolve).await.unwrap();
    AlarmId(alarm.id)
}

async fn visit_details_are_pseudonymised_after_their_retention_time(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let old = f.anna.phone.start_visit(&home_visit(&f)).await.unwrap();
    f.anna.phone.check_out(old.id, &check_out()).await.unwrap();
    let alarm = resolved_sos(&app, &f).await;
    app.warn(&f.park, WarningKind::Dog, 0).await; // expires at once
    let old_visit = app.engine.store.visit(VisitId(old.id)).await.unwrap().value;
    let old_answers = app
        .engine
        .store
        .recent_assessment(f.team.id, f.home.id, app.engine.now() - Duration::hours(1))
        .await
        .unwrap()
        .expect("the home visit's assessment");
    assert!(!old_answers.answers.is_empty());

    app.clock.advance(Duration::days(181));
    // Her phone's token expired meanwhile: she signs in again.
    let (token, _) = app
        .engine
        .issue_token(f.anna.person.id, "new phone")
        .await
        .unwrap();
    let anna = app.client().with_token(token);
    let recent = anna.start_visit(&home_visit(&f)).await.unwrap();
    let purged = Maintenance::new(app.engine.clone(), 30)
        .run_once()
        .await
        .unwrap()
        .expect("this process holds the maintenance lock");
    assert!(purged.visit_details > 0, "{purged:?}");

    // The old visit keeps what statistics need and loses what describes the citizen.
    let after = app.engine.store.visit(VisitId(old.id)).await.unwrap().value;
    assert_eq!(after.lone_reason, None);
    assert_ne!(after.place, f.home.id, "no longer linked to the home");
    assert_eq!(
        (
            after.kind,
            after.state,
            after.started_at,
            after.ended_at,
            &after.participants,
            after.risk
        ),
        (
            old_visit.kind,
            VisitState::Ended,
            old_visit.started_at,
            old_visit.ended_at,
            &old_visit.participants,
            old_visit.risk
        ),
        "kind, times, participants and the risk level stay"
    );
    let pseudonym = app.engine.store.place(after.place).await.unwrap();
    assert_eq!(
        (pseudonym.kind, pseudonym.team, pseudonym.name.as_str()),
        (PlaceKind::Home, f.team.id, "(pseudonymised home)")
    );
    let assessment = app
        .engine
        .store
        .recent_assessment(f.team.id, pseudonym.id, old_answers.assessed_at)
        .await
        .unwrap()
        .expect("the assessment moved with its visit");
    assert!(assessment.answers.is_empty(), "{:?}", assessment.answers);
    assert_eq!(assessment.result, old_answers.result, "its level and points stay");

    // The alarm: outcome kept, note gone. Old message texts gone, the recent visit's kept.
    let alarm = app.engine.store.alarm(alarm).await.unwrap().value;
    assert_eq!(
        (alarm.outcome.as_deref(), alarm.note),
        (Some("worker_safe"), None)
    );
    let bound = app.engine.now() - Duration::days(180);
    let messages = app.engine.store.messages(None).await.unwrap();
    assert!(messages.iter().any(|m| m.created_at < bound));
    for m in &messages {
        assert_eq!(m.message.body.is_empty(), m.created_at < bound, "{m:?}");
    }

    // A warning that expired long ago keeps its kind and dates; one still in force keeps its text.
    let park = app.engine.store.warnings(f.park.id).await.unwrap();
    assert_eq!(
        park.iter().map(|w| (w.kind, w.text.as_str())).collect::<Vec<_>>(),
        [(WarningKind::Dog, "")]
    );
    let dog_home = app.engine.store.warnings(f.dog_home.id).await.unwrap();
    assert!(dog_home.iter().all(|w| w.text == "Hund"), "{dog_home:?}");

    // The recent visit is untouched; a second run changes nothing more.
    let recent = app.engine.store.visit(VisitId(recent.id)).await.unwrap().value;
    assert_eq!(
        (recent.place, recent.lone_reason.as_deref()),
        (f.home.id, Some("Kender borgeren godt"))
    );
    let again = Maintenance::new(app.engine.clone(), 30)
        .run_once()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.visit_details, 0, "{again:?}");
}

fn audit_line(at: chrono::DateTime<Utc>, subject: PersonId, object: &str) -> AuditEntry {
    AuditEntry {
        at,
        actor: None,
        action: "position.read".into(),
        subject: Some(subject),
        object: Some(object.into()),
    }
}

async fn audit_lines_are_deleted_after_their_retention_time_and_never_younger_than_a_year(
    store: Arc<dyn Store>,
) {
    let (app, f) = ready(store).await;
    let subject = f.anna.person.id;
    let objects = |lines: Vec<AuditEntry>| lines.into_iter().filter_map(|l| l.object).collect::<Vec<_>>();
    // The database decides by its own clock (the real one): the manual clock is set back so
    // that lines written "then" are as old by both clocks.
    app.clock.set(Utc::now() - Duration::days(800));
    for (object, then_days) in [("old", 300), ("middle", 440), ("recent", 0)] {
        let line = audit_line(app.engine.now(), subject, object);
        app.engine.store.append_audit(&[line]).await.unwrap();
        app.clock.advance(Duration::days(then_days));
    }
    // Now is 60 days ago by the database's clock: the lines are 800, 500 and 60 days old.

    // 730 days: only the line from 800 days ago goes.
    let purged = Maintenance::new(app.engine.clone(), 30)
        .run_once()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(purged.audit, 1);
    let left = app
        .engine
        .store
        .audit_about(subject, "position.read")
        .await
        .unwrap();
    assert_eq!(objects(left), ["middle", "recent"]);

    // A shorter setting still keeps a year: the 500-day-old line goes, the 60-day-old stays.
    let purged = Maintenance::new(app.engine.clone(), 30)
        .with_retention(180, 30)
        .run_once()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(purged.audit, 1);
    let left = app
        .engine
        .store
        .audit_about(subject, "position.read")
        .await
        .unwrap();
    assert_eq!(objects(left), ["recent"]);
}

both! {
    visit_details => visit_details_are_pseudonymised_after_their_retention_time,
    audit => audit_lines_are_deleted_after_their_retention_time_and_never_younger_than_a_year,
}
