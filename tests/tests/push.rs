//! Web Push end to end: a phone registers its subscription, a reminder is pushed through a
//! local fake push service that decrypts it independently (Python `http_ece`) and verifies
//! the VAPID token; a subscription the push service calls gone is forgotten.

use std::sync::Arc;

use chrono::Duration;
use makker_domain::PersonId;
use makker_engine::dispatcher::Dispatcher;
use makker_mobile_api::{PushKeys, PushSubscriptionRequest};
use makker_notify::push::{EndpointPolicy, WebPush};
use makker_notify::sms::{LogProvider, SmsProvider};
use makker_store::Store;
use makker_tests::app::{VAPID_SUBJECT, ready, test_vapid};
use makker_tests::both;
use makker_tests::fake_push::FakePushService;
use serde_json::Value;

async fn a_reminder_is_pushed_encrypted_and_a_gone_subscription_is_forgotten(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let fake = FakePushService::start(VAPID_SUBJECT);
    let browser = fake.subscribe().await;
    let key = f.anna.phone.push_key().await.unwrap().public_key.unwrap();
    assert_eq!(key, test_vapid().key.public_key());
    let keys = PushKeys {
        p256dh: browser.p256dh.clone(),
        auth: browser.auth.clone(),
    };
    f.anna
        .phone
        .subscribe_push(&PushSubscriptionRequest {
            endpoint: browser.endpoint.clone(),
            keys,
        })
        .await
        .unwrap();

    f.anna_at_the_drop_in().await;
    app.clock.advance(Duration::minutes(25));
    app.scheduler().run_due().await.unwrap();
    let local = EndpointPolicy {
        allow_http: true,
        allow_loopback: true,
    };
    let log: Arc<dyn SmsProvider> = Arc::new(LogProvider::new());
    let dispatch =
        Dispatcher::new(app.engine.clone(), vec![log]).with_push(WebPush::new(test_vapid(), local).unwrap());
    assert_eq!(
        dispatch.tick().await.unwrap(),
        2,
        "the reminder by push and by SMS"
    );

    let pushed = fake.requests().await;
    assert_eq!(pushed.len(), 1, "{pushed:?}");
    assert_eq!(pushed[0]["vapid_ok"], Value::Bool(true), "{pushed:?}");
    let plaintext = pushed[0]["plaintext"]
        .as_str()
        .expect("the fake decrypted the push");
    let payload: Value = serde_json::from_str(plaintext).unwrap();
    assert_eq!(payload["kind"], "check_in_due");
    assert_eq!(payload["body"], "Makker: Tjek ind inden 5 min. Svar OK.");
    assert!(!plaintext.contains("56.14"), "no position is ever pushed");
    let messages = app.engine.store.messages(None).await.unwrap();
    assert!(messages.iter().all(|m| m.state == "sent"), "{messages:?}");

    // The browser unsubscribed: the push service answers 410 and we forget the subscription.
    fake.answer_next(410, None).await;
    f.anna
        .phone
        .sos(&makker_mobile_api::EventRequest::default())
        .await
        .unwrap();
    app.scheduler().run_due().await.unwrap();
    dispatch.tick().await.unwrap();
    assert!(
        app.engine
            .store
            .push_subscriptions(PersonId(f.anna.id()))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_phone_signed_out_gets_no_more_pushes(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let subscription = PushSubscriptionRequest {
        endpoint: "https://push.example/anna-phone".into(),
        keys: PushKeys {
            p256dh: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
                .into(),
            auth: "BTBZMqHH6r4Tts7J_aSIgg".into(),
        },
    };
    f.anna.phone.subscribe_push(&subscription).await.unwrap();
    let anna = PersonId(f.anna.id());
    assert_eq!(app.engine.store.push_subscriptions(anna).await.unwrap().len(), 1);
    // A lost phone is signed out: alarm texts must stop reaching it.
    f.anna.phone.logout().await.unwrap();
    assert!(
        app.engine
            .store
            .push_subscriptions(anna)
            .await
            .unwrap()
            .is_empty()
    );
}

both! {
    push_round_trip => a_reminder_is_pushed_encrypted_and_a_gone_subscription_is_forgotten,
    signed_out => a_phone_signed_out_gets_no_more_pushes,
}
