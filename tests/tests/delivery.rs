//! The outbox dispatcher against local fakes of an SMS provider's HTTP API: the outbox id
//! travels as the reference, failover, retries honouring `Retry-After`, permanent failures
//! visible, and nothing sent twice.

use std::sync::Arc;

use chrono::Duration;
use makker_engine::dispatcher::Dispatcher;
use makker_engine::scheduler::Scheduler;
use makker_mobile_api::EventRequest;
use makker_notify::sms::{GatewayApi, GatewayApiConfig, Secret, SmsProvider, http_client};
use makker_store::{Message, Store};
use makker_tests::app::{TestApp, ready};
use makker_tests::both;
use makker_tests::fake_sms::{FakeGatewayApi, TOKEN};

fn provider(fake: &FakeGatewayApi, token: &str) -> Arc<dyn SmsProvider> {
    let config = GatewayApiConfig {
        base_url: fake.base_url.parse().unwrap(),
        token: Secret::new(token),
        sender: "Makker".into(),
        callback_url: None,
    };
    Arc::new(GatewayApi::new(config, http_client().unwrap()))
}

/// An SOS by Carl queues its first step (urgent chain: Carl himself) right away.
async fn one_alarm_sms(app: &TestApp, f: &makker_tests::app::Fixture) -> Message {
    fired_by(app.scheduler(), app, f).await
}

/// Carl's SOS, fired by `scheduler`: its one SMS.
async fn fired_by(scheduler: Scheduler, app: &TestApp, f: &makker_tests::app::Fixture) -> Message {
    f.carl.phone.sos(&EventRequest::default()).await.unwrap();
    scheduler.run_due().await.unwrap();
    let queued = app.engine.store.messages(None).await.unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    queued[0].clone()
}

/// Carl's SOS, fired by a deadline loop that hands what it queues to `dispatch`.
async fn handed_to(dispatch: &mut Dispatcher, app: &TestApp, f: &makker_tests::app::Fixture) -> Message {
    let mut scheduler = app.scheduler();
    scheduler.relay = Some(dispatch.relay());
    fired_by(scheduler, app, f).await
}

async fn message(app: &TestApp, id: uuid::Uuid) -> Message {
    app.engine
        .store
        .messages(None)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.message.id == id)
        .unwrap()
}

async fn an_alarm_sms_carries_its_outbox_id_and_is_sent_once(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let primary = FakeGatewayApi::start().await;
    let sms = one_alarm_sms(&app, &f).await;
    let dispatch = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    assert_eq!(dispatch.tick().await.unwrap(), 1);
    assert_eq!(dispatch.tick().await.unwrap(), 0, "nothing is left to send");
    let got = primary.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["userref"], sms.message.id.to_string());
    assert_eq!(
        got[0]["recipients"][0]["msisdn"].to_string(),
        f.carl.person.phone.as_deref().unwrap().trim_start_matches('+')
    );
    assert!(
        got[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("MAKKER ALARM: SOS")
    );
    let sent = message(&app, sms.message.id).await;
    assert_eq!(
        (sent.state.as_str(), sent.attempts, sent.provider_ref.as_deref()),
        ("sent", 1, Some("1"))
    );
}

async fn the_failover_provider_takes_over_when_the_primary_fails(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let (primary, failover) = (FakeGatewayApi::start().await, FakeGatewayApi::start().await);
    primary.script(&[(500, None)]);
    let sms = one_alarm_sms(&app, &f).await;
    let dispatch = Dispatcher::new(
        app.engine.clone(),
        vec![provider(&primary, TOKEN), provider(&failover, TOKEN)],
    );
    dispatch.tick().await.unwrap();
    assert!(primary.received().is_empty());
    assert_eq!(
        failover.received().len(),
        1,
        "sent by the failover in the same attempt"
    );
    assert_eq!(message(&app, sms.message.id).await.state, "sent");
    // The supervisor sees the trail: to whom, how, and the provider's answers.
    let alarm = sms.message.alarm.unwrap().0;
    let trail = f.sofie.phone.deliveries(alarm).await.unwrap();
    assert_eq!(trail.len(), 1);
    let d = &trail[0];
    assert_eq!(
        (
            d.recipient_id,
            d.channel.as_str(),
            d.kind.as_str(),
            d.state.as_str()
        ),
        (f.carl.id(), "sms", "alarm", "sent")
    );
    // One attempt: the primary's failure, then the failover's delivery, both on the trail.
    let outcomes: Vec<_> = d
        .attempts
        .iter()
        .map(|a| (a.attempt, a.outcome.as_str()))
        .collect();
    assert_eq!(outcomes, [(1, "failed"), (1, "sent")], "{:?}", d.attempts);
    let status = |e: makker_mobile_api::client::ClientError| e.problem().map(|p| p.status);
    assert_eq!(
        status(f.carl.phone.deliveries(alarm).await.unwrap_err()),
        Some(403),
        "a worker does not read the trail"
    );
    let vejle = app.team("Gadeteam Vejle").await;
    let otto = app.member("otto", makker_domain::Role::Supervisor, &vejle).await;
    assert_eq!(
        status(otto.phone.deliveries(alarm).await.unwrap_err()),
        Some(404),
        "another team's alarm does not exist for its supervisor"
    );
}

async fn a_busy_provider_is_retried_no_sooner_than_it_asks(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let primary = FakeGatewayApi::start().await;
    primary.script(&[(429, Some(120)), (503, None)]);
    let sms = one_alarm_sms(&app, &f).await;
    let dispatch = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    dispatch.tick().await.unwrap();
    let waiting = message(&app, sms.message.id).await;
    assert_eq!((waiting.state.as_str(), waiting.attempts), ("pending", 1));
    assert!(
        waiting.next_attempt_at >= app.engine.now() + Duration::seconds(120),
        "Retry-After is honoured"
    );
    assert_eq!(dispatch.tick().await.unwrap(), 0, "not before its time");
    app.clock.advance(Duration::seconds(121));
    dispatch.tick().await.unwrap();
    let again = message(&app, sms.message.id).await;
    assert_eq!(
        (again.state.as_str(), again.attempts),
        ("pending", 2),
        "the 503 is retried too"
    );
    assert!(
        again.last_error.as_deref().is_some_and(|e| e.contains("503")),
        "{again:?}"
    );
    app.clock.advance(Duration::minutes(5));
    dispatch.tick().await.unwrap();
    assert_eq!(message(&app, sms.message.id).await.state, "sent");
    assert_eq!(primary.received().len(), 1, "sent exactly once");
}

async fn a_refused_message_fails_visibly_without_retries(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let primary = FakeGatewayApi::start().await;
    let sms = one_alarm_sms(&app, &f).await;
    let dispatch = Dispatcher::new(app.engine.clone(), vec![provider(&primary, "wrong-token")]);
    dispatch.tick().await.unwrap();
    let failed = message(&app, sms.message.id).await;
    assert_eq!((failed.state.as_str(), failed.attempts), ("failed", 1));
    assert!(failed.last_error.is_some());
    app.clock.advance(Duration::hours(1));
    assert_eq!(dispatch.tick().await.unwrap(), 0);
}

/// One batch whose sends come out differently: each message is recorded as its own send
/// came out, with its own attempt line, although the batch is recorded in one statement per
/// table.
async fn one_batch_records_each_message_as_it_came_out(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let primary = FakeGatewayApi::start().await;
    primary.script(&[(429, Some(120)), (400, None)]);
    for worker in [&f.anna, &f.bo, &f.carl] {
        worker.phone.sos(&EventRequest::default()).await.unwrap();
    }
    app.scheduler().run_due().await.unwrap();
    let dispatch = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    assert_eq!(dispatch.tick().await.unwrap(), 3, "one batch");
    let mut outcomes = Vec::new();
    for m in app.engine.store.messages(None).await.unwrap() {
        let alarm = m.message.alarm.unwrap().0;
        let trail = f.sofie.phone.deliveries(alarm).await.unwrap();
        let lines: Vec<(u32, String)> = trail[0]
            .attempts
            .iter()
            .map(|a| (a.attempt, a.outcome.clone()))
            .collect();
        match m.state.as_str() {
            "sent" => assert!(m.provider_ref.is_some() && m.last_error.is_none(), "{m:?}"),
            "pending" => assert!(
                m.next_attempt_at >= app.engine.now() + Duration::seconds(120) && m.last_error.is_some(),
                "{m:?}"
            ),
            _ => assert!(m.provider_ref.is_none() && m.last_error.is_some(), "{m:?}"),
        }
        outcomes.push((m.state, m.attempts, lines));
    }
    outcomes.sort();
    let line = |outcome: &str| vec![(1, outcome.to_owned())];
    assert_eq!(
        outcomes,
        [
            ("failed".into(), 1, line("failed")),
            ("pending".into(), 1, line("retry")),
            ("sent".into(), 1, line("sent")),
        ]
    );
}

/// Three SOS alarms at once against a provider that takes 400 ms to answer.
async fn three_sos_to_a_slow_provider(app: &TestApp, f: &makker_tests::app::Fixture) -> FakeGatewayApi {
    let primary = FakeGatewayApi::start().await;
    primary.set_delay(std::time::Duration::from_millis(400));
    for worker in [&f.anna, &f.bo, &f.carl] {
        worker.phone.sos(&EventRequest::default()).await.unwrap();
    }
    app.scheduler().run_due().await.unwrap();
    primary
}

/// A batch goes out at once, but never more sends at a time than the channel's slots: a
/// burst of alarms cannot open more connections than the process has files for.
async fn sends_in_flight_never_exceed_the_slots(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let primary = three_sos_to_a_slow_provider(&app, &f).await;
    let mut dispatch = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    dispatch.limit_sends(2);
    assert_eq!(dispatch.tick().await.unwrap(), 3);
    assert_eq!(primary.received().len(), 3);
    assert_eq!(primary.most_at_once(), 2, "two at once, never three");
}

/// Batches the deadline loop hands over are leased already: each sends the moment it comes,
/// not after one of the slots that bound claiming (with a provider that answers slowly, those
/// would cap a burst of alarms at a few batches per answer). Stopping lets them record.
async fn handed_over_batches_send_at_once_whatever_the_claim_slots(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let primary = FakeGatewayApi::start().await;
    primary.set_delay(std::time::Duration::from_millis(400));
    let mut dispatch = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    dispatch.in_flight = 1;
    let mut scheduler = app.scheduler();
    scheduler.relay = Some(dispatch.relay());
    for worker in [&f.anna, &f.bo, &f.carl] {
        worker.phone.sos(&EventRequest::default()).await.unwrap();
        assert_eq!(
            scheduler.run_due().await.unwrap(),
            1,
            "one batch handed over each"
        );
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(dispatch.run(stopped));
    for _ in 0..250 {
        if primary.received().len() == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();
    assert_eq!(primary.received().len(), 3);
    assert_eq!(
        primary.most_at_once(),
        3,
        "three batches at once with one claim slot"
    );
    for m in app.engine.store.messages(None).await.unwrap() {
        assert_eq!((m.state.as_str(), m.attempts), ("sent", 1), "{m:?}");
    }
}

/// A message whose slot comes free only after half its lease is not sent: meanwhile its
/// lease may lapse and another dispatcher claim it. It is left to the lease and sent once,
/// by whoever claims it next.
async fn a_message_without_a_slot_in_time_is_left_to_its_lease(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let primary = three_sos_to_a_slow_provider(&app, &f).await;
    let mut dispatch = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    dispatch.limit_sends(1);
    let dispatch = Arc::new(dispatch);
    let sending = tokio::spawn({
        let dispatch = dispatch.clone();
        async move { dispatch.tick().await }
    });
    for _ in 0..100 {
        if !primary.received().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(primary.received().len(), 1, "the first send is being answered");
    app.clock.advance(Duration::seconds(16));
    assert_eq!(
        sending.await.unwrap().unwrap(),
        1,
        "the others waited past half the lease"
    );
    let other = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    assert_eq!(other.tick().await.unwrap(), 0, "still leased");
    app.clock.advance(Duration::seconds(15));
    assert_eq!(other.tick().await.unwrap(), 2, "the lease lapsed");
    let mut refs: Vec<String> = primary
        .received()
        .iter()
        .map(|m| m["userref"].as_str().unwrap().to_owned())
        .collect();
    refs.sort();
    refs.dedup();
    assert_eq!(refs.len(), 3, "each sent once");
    for m in app.engine.store.messages(None).await.unwrap() {
        assert_eq!((m.state.as_str(), m.attempts), ("sent", 1), "{m:?}");
    }
}

/// A dispatcher that leased a message and died before sending (SIGKILL between commit and
/// send) leaves it pending: it is sent once, by another, when the lease lapses.
async fn a_message_leased_by_a_dispatcher_that_died_is_sent_once_after_its_lease(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let primary = FakeGatewayApi::start().await;
    let sms = one_alarm_sms(&app, &f).await;
    let now = app.engine.now();
    let leased = app
        .engine
        .store
        .claim_messages(now, "dead-dispatcher", now + Duration::seconds(60), 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    let dispatch = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    assert_eq!(dispatch.tick().await.unwrap(), 0, "leased to the dead dispatcher");
    app.clock.advance(Duration::seconds(61));
    assert_eq!(dispatch.tick().await.unwrap(), 1);
    assert_eq!(dispatch.tick().await.unwrap(), 0);
    assert_eq!(primary.received().len(), 1);
    assert_eq!(message(&app, sms.message.id).await.state, "sent");
}

/// The deadline loop leases what it queues to its process's dispatcher in the same commit
/// and hands it over in memory: that dispatcher sends it without a claim, and no other
/// dispatcher (another replica) can claim it meanwhile.
async fn messages_a_firing_queues_are_handed_to_the_dispatcher_already_leased(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let primary = FakeGatewayApi::start().await;
    let mut dispatch = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    let sms = handed_to(&mut dispatch, &app, &f).await;
    let other = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    assert_eq!(
        other.tick().await.unwrap(),
        0,
        "leased in the commit that queued it"
    );
    assert_eq!(dispatch.tick().await.unwrap(), 1, "handed over");
    assert_eq!(dispatch.tick().await.unwrap(), 0, "nothing is left to send");
    assert_eq!(primary.received().len(), 1);
    assert_eq!(primary.received()[0]["userref"], sms.message.id.to_string());
    let sent = message(&app, sms.message.id).await;
    assert_eq!((sent.state.as_str(), sent.attempts), ("sent", 1));
}

/// A handed-over message whose dispatcher is gone (the process died after the commit) is
/// not lost: once its lease lapses another dispatcher claims and sends it, once. A message
/// already queued under the same dedup key is not handed over again.
async fn a_handed_over_message_never_sent_is_claimed_after_its_lease(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let primary = FakeGatewayApi::start().await;
    let mut dead = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    let sms = handed_to(&mut dead, &app, &f).await;
    drop(dead);
    let heir = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    assert_eq!(
        heir.tick().await.unwrap(),
        0,
        "still leased to the dead dispatcher"
    );
    app.clock.advance(Duration::seconds(31));
    assert_eq!(heir.tick().await.unwrap(), 1, "the lease lapsed");
    assert_eq!(heir.tick().await.unwrap(), 0);
    assert_eq!(primary.received().len(), 1);
    assert_eq!(message(&app, sms.message.id).await.state, "sent");

    // A deadline whose firing queues the same message again (its dedup key) fires, but the
    // message is neither queued twice nor handed over.
    let mut live = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    let relay = live.relay();
    let now = app.engine.now();
    let arm = makker_store::Changes {
        arm: vec![makker_store::NewDeadline {
            kind: makker_store::DeadlineKind::FollowUp,
            visit: None,
            alarm: sms.message.alarm,
            due_at: now,
        }],
        ..makker_store::Changes::default()
    };
    app.engine.store.apply(&arm, now).await.unwrap();
    let due = app
        .engine
        .store
        .claim_due(now, "me", now + Duration::seconds(10), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    let again = makker_store::Changes {
        outbox: vec![makker_store::NewMessage {
            id: uuid::Uuid::now_v7(),
            ..sms.message.clone()
        }],
        ..makker_store::Changes::default()
    };
    let lease = relay.lease(now);
    let fired = app
        .engine
        .store
        .fire_many(&[(&due[0], &again)], "me", now, Some(&lease))
        .await
        .unwrap();
    assert_eq!(fired.deadlines, [due[0].id]);
    assert!(fired.handed.is_empty(), "{fired:?}");
    assert_eq!(app.engine.store.messages(None).await.unwrap().len(), 1);
    relay.hand(&lease, fired.handed);
    assert_eq!(live.tick().await.unwrap(), 0);
    assert_eq!(primary.received().len(), 1, "sent once");
}

/// The dispatcher and the deadline loop end when their stop sender is gone (the server failed
/// after starting them): nobody is left to stop them, and waiting for a stop would return at
/// once, every time, so they would spin instead of sleeping.
async fn the_loops_end_when_nobody_is_left_to_stop_them(store: Arc<dyn Store>) {
    let (app, _) = ready(store).await;
    let primary = FakeGatewayApi::start().await;
    let dispatch = Dispatcher::new(app.engine.clone(), vec![provider(&primary, TOKEN)]);
    let scheduler = app.scheduler();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(async move {
        tokio::join!(dispatch.run(stopped.clone()), scheduler.run(stopped));
    });
    drop(stop);
    tokio::time::timeout(std::time::Duration::from_secs(10), running)
        .await
        .expect("both loops ended")
        .unwrap();
}

both! {
    nobody_to_stop => the_loops_end_when_nobody_is_left_to_stop_them,
    slots => sends_in_flight_never_exceed_the_slots,
    handed_over_at_once => handed_over_batches_send_at_once_whatever_the_claim_slots,
    no_slot_in_time => a_message_without_a_slot_in_time_is_left_to_its_lease,
    handed_over => messages_a_firing_queues_are_handed_to_the_dispatcher_already_leased,
    handed_over_lapses => a_handed_over_message_never_sent_is_claimed_after_its_lease,
    crash_between_commit_and_send => a_message_leased_by_a_dispatcher_that_died_is_sent_once_after_its_lease,
    sent_once => an_alarm_sms_carries_its_outbox_id_and_is_sent_once,
    failover => the_failover_provider_takes_over_when_the_primary_fails,
    retry_after => a_busy_provider_is_retried_no_sooner_than_it_asks,
    permanent_failure => a_refused_message_fails_visibly_without_retries,
    mixed_batch => one_batch_records_each_message_as_it_came_out,
}
