//! Web Push against a fake push service that decrypts what it receives with an independent
//! implementation (`tests/fakes/push_service.py`: Python's `http_ece`, `py_vapid` and
//! `cryptography`), plays the browser whose keys it generated, and verifies the VAPID token.
//!
//! Needs `python3` with `pip install http_ece py_vapid cryptography`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use makker_domain::ids::{AlarmId, VisitId};
use makker_notify::SendError;
use makker_notify::push::{
    AddressClass, EndpointError, EndpointPolicy, PushError, PushKind, PushMessage, PushPayload, PushResponse,
    PushTransport, ReqwestTransport, Subscription, Topic, Urgency, VapidConfig, VapidError, VapidKey,
    VapidSubject, WebPush, mask_endpoint,
};
use serde_json::Value;

const SUBJECT: &str = "mailto:drift@makker.dk";

// RFC 8291 §5 (all base64url). Its application server key doubles as our VAPID key, so the
// public key we derive is checked against the RFC too.
const RFC_AS_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
const RFC_AS_PUBLIC: &str =
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
const RFC_UA_PRIVATE: &str = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94";
const RFC_UA_PUBLIC: &str =
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
const RFC_AUTH: &str = "BTBZMqHH6r4Tts7J_aSIgg";
const RFC_BODY: &str = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgD\
                        ll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVB\
                        St2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
const RFC_PLAINTEXT: &str = "When I grow up, I want to be a watermelon";

// The same private key as PEM, in both forms a key file may have.
const RFC_AS_PKCS8_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgyfWPiYE+n46HLnH0
KqZOF1fJJU3MYrct3AELtAQ+oRyhRANCAAT+M/SrDepxkU21WCP3O1SUj0EwbZIH
Mtu5pZpTKGSCIA5Zent7wmC6HCJ5mFgJkuk5cwAvMBKiiujwa7t45ewP
-----END PRIVATE KEY-----
";
const RFC_AS_SEC1_PEM: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIMn1j4mBPp+Ohy5x9CqmThdXySVNzGK3LdwBC7QEPqEcoAoGCCqGSM49
AwEHoUQDQgAE/jP0qw3qcZFNtVgj9ztUlI9BMG2SBzLbuaWaUyhkgiAOWXp7e8Jg
uhwieZhYCZLpOXMALzASooro8Gu7eOXsDw==
-----END EC PRIVATE KEY-----
";

fn b64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}

/// What tests may reach: the fake on 127.0.0.1 over plain HTTP.
const TEST_POLICY: EndpointPolicy = EndpointPolicy {
    allow_http: true,
    allow_loopback: true,
};

fn vapid() -> VapidConfig {
    VapidConfig::parse(RFC_AS_PRIVATE, SUBJECT).expect("the RFC key and our subject are valid")
}

fn web_push(policy: EndpointPolicy) -> WebPush {
    WebPush::new(vapid(), policy).expect("the push HTTP client builds")
}

fn alarm_message() -> PushMessage {
    let alarm: AlarmId = serde_json::from_str("\"0196a3a4-1c2b-7d3e-8f40-5a6b7c8d9e0f\"").unwrap();
    let visit: VisitId = serde_json::from_str("\"0196a3a4-0000-7000-8000-000000000001\"").unwrap();
    PushMessage {
        payload: PushPayload {
            kind: PushKind::Alarm,
            title: "Alarm: Sara".into(),
            body: "Sara har brug for hjælp. Åbn Makker.".into(),
            visit_id: Some(visit),
            alarm_id: Some(alarm),
            urgency: Urgency::High,
        },
        ttl: Duration::from_secs(600),
        topic: Some(Topic::for_alarm(alarm)),
    }
}

/// A browser subscription whose keys are the RFC's, at `endpoint`.
fn rfc_subscription(endpoint: &str) -> Subscription {
    Subscription {
        endpoint: endpoint.into(),
        p256dh: RFC_UA_PUBLIC.into(),
        auth: RFC_AUTH.into(),
    }
}

#[path = "../../../tests/fakes/push_service.rs"]
mod push_service;
use push_service::FakePushService;

/// A transport that must not be reached: the endpoint should have been refused before.
struct MustNotPost;

#[async_trait]
impl PushTransport for MustNotPost {
    async fn post(&self, _: &str, _: Vec<(String, String)>, _: Vec<u8>) -> Result<PushResponse, SendError> {
        panic!("a refused endpoint was posted to");
    }
}

fn gone_reason(result: Result<makker_notify::Receipt, PushError>) -> String {
    match result {
        Err(PushError::Gone { reason }) => reason,
        other => panic!("expected the subscription to be gone, got {other:?}"),
    }
}

#[tokio::test]
async fn a_push_is_encrypted_for_the_browser_and_signed_for_its_push_service() {
    let fake = FakePushService::start(SUBJECT);
    let subscription = fake.subscribe().await;
    let push = web_push(TEST_POLICY);
    let message = alarm_message();

    let receipt = push
        .send(&subscription, &message)
        .await
        .expect("the fake accepts the push");

    assert_eq!(receipt.provider, "web_push");
    let location = receipt.provider_id.expect("the push message's Location");
    assert!(
        location.starts_with(&format!("{}/message/", fake.origin)),
        "{location}"
    );

    let requests = fake.requests().await;
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert_eq!(request["decrypt_error"], Value::Null, "{request:#}");
    assert_eq!(request["vapid_ok"], true, "{request:#}");

    // The browser's side decrypts exactly the payload we sent.
    let plaintext = request["plaintext"].as_str().expect("decrypted");
    let received: PushPayload = serde_json::from_str(plaintext).expect("a push payload");
    assert_eq!(received, message.payload);

    // RFC 8292: the token is for this origin, from us, for at most 24 hours, and signed by
    // the key the header names, which is ours.
    let claims = &request["claims"];
    assert_eq!(claims["aud"], fake.origin.as_str());
    assert_eq!(claims["sub"], SUBJECT);
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(exp > now && exp <= now + 24 * 60 * 60, "exp {exp}, now {now}");
    assert_eq!(request["k"], push.public_key());
    assert_eq!(push.public_key(), RFC_AS_PUBLIC);

    // RFC 8030 headers.
    let headers = &request["headers"];
    assert_eq!(headers["content-encoding"], "aes128gcm");
    assert_eq!(headers["ttl"], "600");
    assert_eq!(headers["urgency"], "high");
    assert_eq!(headers["topic"], message.topic.as_ref().unwrap().as_str());
    assert!(headers["authorization"].as_str().unwrap().starts_with("vapid t="));
}

#[test]
fn the_rfc_8291_example_decrypts_with_the_ece_crate_that_encrypts_our_pushes() {
    let browser = ece::EcKeyComponents::new(b64(RFC_UA_PRIVATE), b64(RFC_UA_PUBLIC));
    let plaintext = ece::decrypt(&browser, &b64(RFC_AUTH), &b64(RFC_BODY)).expect("decrypts");
    assert_eq!(String::from_utf8(plaintext).unwrap(), RFC_PLAINTEXT);
}

#[tokio::test]
async fn the_fake_push_service_decrypts_the_rfc_8291_example() {
    // The fake is the oracle for every other test, so it is checked against the RFC first.
    let fake = FakePushService::start(SUBJECT);
    let given = serde_json::json!({ "private_key": RFC_UA_PRIVATE, "auth": RFC_AUTH });
    let subscription: Subscription = fake
        .control("subscriptions", Some(given))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        subscription.p256dh, RFC_UA_PUBLIC,
        "the fake derives the RFC's public key"
    );

    let answer = fake
        .http
        .post(&subscription.endpoint)
        .header("Content-Encoding", "aes128gcm")
        .header("TTL", "60")
        .body(b64(RFC_BODY))
        .send()
        .await
        .unwrap();

    assert_eq!(answer.status(), 401, "the RFC's example carries no VAPID token");
    let requests = fake.requests().await;
    assert_eq!(requests[0]["plaintext"], RFC_PLAINTEXT, "{:#}", requests[0]);
}

#[tokio::test]
async fn a_gone_subscription_is_reported_as_gone_which_is_permanent() {
    let fake = FakePushService::start(SUBJECT);
    let subscription = fake.subscribe().await;
    let push = web_push(TEST_POLICY);
    for status in [410, 404] {
        fake.answer_next(status, None).await;

        let error = push.send(&subscription, &alarm_message()).await.unwrap_err();

        assert!(matches!(error, PushError::Gone { .. }), "{status}: {error:?}");
        assert!(matches!(SendError::from(error), SendError::Permanent { .. }));
    }
}

#[tokio::test]
async fn too_many_requests_is_retried_after_the_delay_the_push_service_asks_for() {
    let fake = FakePushService::start(SUBJECT);
    let subscription = fake.subscribe().await;
    fake.answer_next(429, Some("7")).await;

    let error = web_push(TEST_POLICY)
        .send(&subscription, &alarm_message())
        .await
        .unwrap_err();

    match error {
        PushError::Send(SendError::Retry { after, .. }) => {
            assert_eq!(after, Some(Duration::from_secs(7)));
        }
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn a_server_error_is_retried_and_a_bad_request_is_not() {
    let fake = FakePushService::start(SUBJECT);
    let subscription = fake.subscribe().await;
    let push = web_push(TEST_POLICY);

    fake.answer_next(503, None).await;
    let error = push.send(&subscription, &alarm_message()).await.unwrap_err();
    assert!(
        matches!(error, PushError::Send(SendError::Retry { after: None, .. })),
        "{error:?}"
    );

    fake.answer_next(400, None).await;
    let error = push.send(&subscription, &alarm_message()).await.unwrap_err();
    assert!(
        matches!(error, PushError::Send(SendError::Permanent { .. })),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_push_service_that_cannot_be_reached_is_retried_without_naming_the_path() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/push/secret-capability", closed.local_addr().unwrap());
    drop(closed);

    let error = web_push(TEST_POLICY)
        .send(&rfc_subscription(&endpoint), &alarm_message())
        .await
        .unwrap_err();

    match error {
        PushError::Send(SendError::Retry { reason, .. }) => {
            assert!(!reason.contains("secret-capability"), "{reason}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn a_loopback_endpoint_is_refused_unless_loopback_is_allowed() {
    let fake = FakePushService::start(SUBJECT);
    let subscription = fake.subscribe().await;
    let no_loopback = EndpointPolicy {
        allow_http: true,
        allow_loopback: false,
    };

    let reason = gone_reason(web_push(no_loopback).send(&subscription, &alarm_message()).await);
    assert!(reason.contains("loopback"), "{reason}");
    assert!(!reason.contains("/push/"), "the reason names no path: {reason}");

    // By name too: localhost resolves to loopback addresses, and each one is checked.
    let by_name = subscription.endpoint.replace("127.0.0.1", "localhost");
    let reason = gone_reason(
        web_push(no_loopback)
            .send(&rfc_subscription(&by_name), &alarm_message())
            .await,
    );
    assert!(reason.contains("loopback"), "{reason}");
    assert!(
        fake.requests().await.is_empty(),
        "nothing reached the push service"
    );

    web_push(TEST_POLICY)
        .send(&subscription, &alarm_message())
        .await
        .expect("allowed in tests");
}

#[tokio::test]
async fn the_http_client_itself_refuses_a_name_that_resolves_to_loopback() {
    // The check the sender makes first is made again by the client's resolver at connect
    // time, so a name that re-resolves between the two (DNS rebinding) gets nowhere.
    let fake = FakePushService::start(SUBJECT);
    let endpoint = format!("{}/push/x", fake.origin.replace("127.0.0.1", "localhost"));
    let transport = ReqwestTransport::new(EndpointPolicy {
        allow_http: true,
        allow_loopback: false,
    })
    .unwrap();

    let error = transport
        .post(&endpoint, Vec::new(), Vec::new())
        .await
        .unwrap_err();

    match error {
        SendError::Permanent { reason } => assert!(reason.contains("loopback"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(fake.requests().await.is_empty());
}

#[tokio::test]
async fn private_link_local_and_unique_local_endpoints_are_refused_even_in_tests() {
    let push = WebPush::with_transport(vapid(), TEST_POLICY, Arc::new(MustNotPost));
    let cases = [
        ("https://10.1.2.3/push/x", AddressClass::Private),
        ("https://192.168.0.10/push/x", AddressClass::Private),
        ("https://[::ffff:172.16.0.1]/push/x", AddressClass::Private),
        (
            "https://169.254.169.254/latest/meta-data",
            AddressClass::LinkLocal,
        ),
        ("https://[fe80::1]/push/x", AddressClass::LinkLocal),
        ("https://[fd00::1]/push/x", AddressClass::UniqueLocal),
        ("https://0.0.0.0/push/x", AddressClass::Reserved),
    ];
    for (endpoint, class) in cases {
        let url = TEST_POLICY.check_url(endpoint).unwrap();
        match TEST_POLICY.resolve(&url).await {
            Err(EndpointError::Refused { class: refused, .. }) => {
                assert_eq!(refused, class, "{endpoint}");
            }
            other => panic!("{endpoint} must be refused, got {other:?}"),
        }
        let reason = gone_reason(push.send(&rfc_subscription(endpoint), &alarm_message()).await);
        assert!(reason.contains(&class.to_string()), "{endpoint}: {reason}");
    }
}

#[tokio::test]
async fn a_plain_http_endpoint_is_refused_unless_http_is_allowed() {
    let push = WebPush::with_transport(vapid(), EndpointPolicy::default(), Arc::new(MustNotPost));

    let reason = gone_reason(
        push.send(
            &rfc_subscription("http://push.example.net/push/x"),
            &alarm_message(),
        )
        .await,
    );

    assert!(reason.contains("https"), "{reason}");
}

#[test]
fn a_vapid_subject_must_be_a_contact_push_services_can_reach() {
    for good in [
        "mailto:drift@makker.dk",
        "https://makker.dk/kontakt",
        "mailto:it@kommune.dk",
    ] {
        let subject = VapidSubject::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(subject.as_str(), good);
    }
    for bad in [
        "mailto:x@localhost",
        "mailto:ops@makker.localhost",
        "mailto:ops@example.com",
        "mailto:ops@printer.local",
        "mailto:ops@127.0.0.1",
        "mailto:ops",
        "mailto:@makker.dk",
        "mailto:a@makker.dk,b@makker.dk",
        "mailto:ops@makker.dk/x",
        "http://makker.dk/kontakt",
        "https://localhost/",
        "https://127.0.0.1/",
        "https://[::1]/",
        "drift@makker.dk",
        "",
    ] {
        match VapidSubject::parse(bad) {
            Err(VapidError::Subject { subject, .. }) => assert_eq!(subject, bad),
            other => panic!("{bad:?} must be refused, got {other:?}"),
        }
    }
    let message = VapidSubject::parse("mailto:x@localhost").unwrap_err().to_string();
    assert!(
        message.contains("mailto:x@localhost") && message.contains("reach"),
        "{message}"
    );
}

#[test]
fn a_vapid_key_is_read_from_base64url_or_pem_and_never_shown() {
    for text in [RFC_AS_PRIVATE, RFC_AS_PKCS8_PEM, RFC_AS_SEC1_PEM] {
        let key = VapidKey::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(key.public_key(), RFC_AS_PUBLIC);
        let shown = format!("{key:?}");
        assert!(
            !shown.contains(RFC_AS_PRIVATE) && !shown.contains("MIG"),
            "{shown}"
        );
    }
    for bad in [
        "",
        "not a key",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
    ] {
        assert_eq!(VapidKey::parse(bad).unwrap_err(), VapidError::Key, "{bad:?}");
    }
}

#[test]
fn endpoints_and_auth_secrets_stay_out_of_logs() {
    let subscription = rfc_subscription("https://fcm.googleapis.com/fcm/send/secret-capability");
    let shown = format!("{subscription:?}");
    assert!(shown.contains("https://fcm.googleapis.com/…"), "{shown}");
    assert!(
        !shown.contains("secret-capability") && !shown.contains(RFC_AUTH),
        "{shown}"
    );
    assert_eq!(
        mask_endpoint("https://web.push.apple.com:443/QGx9-token"),
        "https://web.push.apple.com/…"
    );
}

#[test]
fn a_push_payload_has_no_room_for_a_position() {
    // The payload's fields are the whole of what a push can carry; a new one must be
    // added here, deliberately, and a position never will be.
    let payload = serde_json::to_value(alarm_message().payload).unwrap();
    let mut fields: Vec<&str> = payload.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["alarm_id", "body", "kind", "title", "urgency", "visit_id"]
    );

    let mut with_position = payload.clone();
    with_position["lat"] = 55.68.into();
    assert!(serde_json::from_value::<PushPayload>(with_position).is_err());
}

#[test]
fn a_topic_is_at_most_32_base64url_characters() {
    let alarm: AlarmId = serde_json::from_str("\"0196a3a4-1c2b-7d3e-8f40-5a6b7c8d9e0f\"").unwrap();
    assert_eq!(
        Topic::for_alarm(alarm).as_str(),
        "0196a3a41c2b7d3e8f405a6b7c8d9e0f"
    );
    assert!(Topic::parse("alarm_42-x").is_ok());
    for bad in ["", "has space", "a+b", &"x".repeat(33)] {
        assert!(Topic::parse(bad).is_err(), "{bad:?}");
    }
}
