//! Provider webhooks end to end: inbound SMS checks in and out (the duress PIN too), delivery
//! reports are recorded, and wrongly signed callbacks and unknown senders change nothing.

use std::sync::Arc;

use makker_domain::alarm::AlarmKind;
use makker_domain::{PersonId, VisitId};
use makker_mobile_api::VisitView;
use makker_notify::sms::twilio;
use makker_store::Store;
use makker_tests::app::{Fixture, TWILIO_TOKEN, TestApp, WEBHOOK_SECRET, ready};
use makker_tests::both;

type Form<'a> = Vec<(&'a str, &'a str)>;

fn owned(form: &Form<'_>) -> Vec<(String, String)> {
    form.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// POSTs a form to a webhook path; `signature` adds Twilio's header. Returns the status.
async fn post(app: &TestApp, path: &str, form: &Form<'_>, signature: Option<String>) -> u16 {
    let mut request = reqwest_client().post(format!("{}{path}", app.base)).form(form);
    if let Some(s) = signature {
        request = request.header(twilio::SIGNATURE_HEADER, s);
    }
    request.send().await.unwrap().status().as_u16()
}

fn reqwest_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn twilio_inbound(app: &TestApp, from: &str, body: &str, token: &str) -> u16 {
    let path = "/webhooks/sms/twilio/inbound";
    let form: Form<'_> = vec![("From", from), ("Body", body), ("MessageSid", "SM123")];
    let signature = twilio::signature(token, &format!("{}{path}", app.base), &owned(&form));
    post(app, path, &form, Some(signature)).await
}

async fn elks_inbound(app: &TestApp, from: &str, text: &str, secret: &str) -> u16 {
    let path = format!("/webhooks/sms/46elks/inbound?secret={secret}");
    post(
        app,
        &path,
        &vec![("from", from), ("message", text), ("id", "s1")],
        None,
    )
    .await
}

async fn started(f: &Fixture) -> VisitView {
    f.anna_at_the_drop_in().await
}

fn phone(m: &makker_tests::app::Member) -> &str {
    m.person.phone.as_deref().unwrap()
}

async fn checked_in(app: &TestApp, visit: uuid::Uuid) -> usize {
    let log = app.engine.store.visit_events(VisitId(visit)).await.unwrap();
    log.iter().filter(|e| e.effect.kind() == "checked_in").count()
}

async fn an_sms_ok_checks_in_and_a_wrong_secret_changes_nothing(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let v = started(&f).await;
    assert_eq!(
        elks_inbound(&app, phone(&f.anna), " ok ", WEBHOOK_SECRET).await,
        204
    );
    assert_eq!(checked_in(&app, v.id).await, 1);
    assert_eq!(elks_inbound(&app, phone(&f.anna), "OK", "guess").await, 403);
    assert_eq!(
        twilio_inbound(&app, phone(&f.anna), "OK", "not-the-token").await,
        403
    );
    assert_eq!(
        checked_in(&app, v.id).await,
        1,
        "refused callbacks change nothing"
    );
    assert_eq!(
        twilio_inbound(&app, phone(&f.anna), "OK", TWILIO_TOKEN).await,
        204
    );
    assert_eq!(checked_in(&app, v.id).await, 2);
}

async fn an_sms_out_with_the_duress_pin_checks_out_and_raises_the_silent_alarm(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let v = started(&f).await;
    assert_eq!(
        twilio_inbound(&app, phone(&f.anna), "OUT 0000", TWILIO_TOKEN).await,
        422,
        "a wrong PIN"
    );
    assert_eq!(
        twilio_inbound(&app, phone(&f.anna), "OUT 9876", TWILIO_TOKEN).await,
        204
    );
    let ended = app.engine.store.visit(VisitId(v.id)).await.unwrap().value;
    assert!(ended.ended_at.is_some());
    let alarms = app.engine.store.alarms_of(PersonId(f.anna.id())).await.unwrap();
    assert_eq!(
        alarms.iter().map(|a| a.kind).collect::<Vec<_>>(),
        vec![AlarmKind::Duress]
    );
}

async fn an_unknown_sender_is_refused(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let v = started(&f).await;
    assert_eq!(elks_inbound(&app, "+4599999999", "OK", WEBHOOK_SECRET).await, 403);
    assert_eq!(checked_in(&app, v.id).await, 0);
}

async fn a_delivery_report_is_recorded_on_its_message(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    f.carl
        .phone
        .sos(&makker_mobile_api::EventRequest::default())
        .await
        .unwrap();
    app.scheduler().run_due().await.unwrap();
    let message = app.engine.store.messages(None).await.unwrap().remove(0);
    let path = format!(
        "/webhooks/sms/46elks/delivery?ref={}&secret={WEBHOOK_SECRET}",
        message.message.id
    );
    assert_eq!(
        post(&app, &path, &vec![("id", "s9"), ("status", "delivered")], None).await,
        204
    );
    let after = app.engine.store.messages(None).await.unwrap().remove(0);
    assert_eq!(after.receipt.as_deref(), Some("delivered: delivered"));
    let trail = f
        .sofie
        .phone
        .deliveries(message.message.alarm.unwrap().0)
        .await
        .unwrap();
    assert_eq!(
        trail[0].receipt.as_deref(),
        Some("delivered: delivered"),
        "the board shows it"
    );
    let forged = format!(
        "/webhooks/sms/46elks/delivery?ref={}&secret=nope",
        message.message.id
    );
    assert_eq!(
        post(&app, &forged, &vec![("id", "s9"), ("status", "failed")], None).await,
        403
    );
    assert_eq!(
        app.engine.store.messages(None).await.unwrap()[0].receipt,
        after.receipt
    );
}

async fn a_supervisor_acknowledges_an_alarm_by_replying_tag(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let v = started(&f).await;
    assert_eq!(
        twilio_inbound(&app, phone(&f.sofie), "TAG", TWILIO_TOKEN).await,
        404,
        "no alarm told to her yet"
    );
    // Anna misses her check-out; by step 3 of the standard chain Sofie has been told.
    let sched = app.scheduler();
    for _ in 0..55 {
        app.clock.advance(chrono::Duration::minutes(1));
        sched.run_due().await.unwrap();
    }
    assert_eq!(
        twilio_inbound(&app, phone(&f.sofie), " tag ", TWILIO_TOKEN).await,
        204
    );
    let alarms = app.engine.store.alarms_of(PersonId(f.anna.id())).await.unwrap();
    assert_eq!(alarms.len(), 1);
    assert_eq!(alarms[0].acknowledged_by, Some(PersonId(f.sofie.id())));
    assert_eq!(alarms[0].visit, Some(VisitId(v.id)));
}

both! {
    acknowledge_by_sms => a_supervisor_acknowledges_an_alarm_by_replying_tag,
    sms_ok => an_sms_ok_checks_in_and_a_wrong_secret_changes_nothing,
    sms_out_duress => an_sms_out_with_the_duress_pin_checks_out_and_raises_the_silent_alarm,
    unknown_sender => an_unknown_sender_is_refused,
    delivery_report => a_delivery_report_is_recorded_on_its_message,
}
