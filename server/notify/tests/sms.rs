//! SMS providers against local fakes of their HTTP APIs, webhook verification with known
//! answers, and the inbound command table.

mod sms_fakes;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use makker_notify::sms::{
    self, CheckOutPin, DeliveryOutcome, DeliveryReport, Elks46, Elks46Config, Elks46Webhook, GatewayApi,
    GatewayApiConfig, GatewayApiEvent, GatewayApiWebhook, InboundCommand, InboundSms, LogProvider, Sms,
    SmsProvider, Twilio, TwilioConfig, TwilioWebhook, WebhookError, gatewayapi, twilio,
};
use makker_notify::{Receipt, SendError};
use reqwest::Url;
use serde_json::json;
use sha2::Sha256;
use sms_fakes::{Answer, FakeProvider};

const GATEWAYAPI_TOKEN: &str = "gw-token-0123";
const ELKS_USER: &str = "u0123456789abcdef";
const ELKS_PASSWORD: &str = "elks-password";
const ELKS_WEBHOOK_SECRET: &str = "elks-hook-secret";
const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
const TWILIO_TOKEN: &str = "twilio-auth-token";

fn message() -> Sms {
    Sms {
        to: "+4520123456".into(),
        text: "Påmindelse: tjek ind (svar OK)".into(),
        reference: "outbox-42".into(),
    }
}

fn client() -> reqwest::Client {
    sms::http_client().expect("an HTTP client")
}

fn gatewayapi_at(fake: &FakeProvider, token: &str) -> GatewayApi {
    GatewayApi::new(
        GatewayApiConfig {
            base_url: fake.base_url.clone(),
            token: token.into(),
            sender: "Makker".into(),
            callback_url: None,
        },
        client(),
    )
}

fn elks_at(fake: &FakeProvider, password: &str) -> Elks46 {
    Elks46::new(
        Elks46Config {
            base_url: fake.base_url.clone(),
            username: ELKS_USER.into(),
            password: password.into(),
            from: "Makker".into(),
            delivery_url: Some(Url::parse("https://makker.example/hooks/46elks/dlr").unwrap()),
            webhook_secret: ELKS_WEBHOOK_SECRET.into(),
        },
        client(),
    )
}

fn twilio_at(fake: &FakeProvider, auth_token: &str) -> Twilio {
    Twilio::new(
        TwilioConfig {
            base_url: fake.base_url.clone(),
            account_sid: TWILIO_SID.into(),
            auth_token: auth_token.into(),
            from: "+4570000000".into(),
            status_callback: Some(Url::parse("https://makker.example/hooks/twilio/status").unwrap()),
        },
        client(),
    )
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn retry_after(result: Result<Receipt, SendError>) -> Option<Duration> {
    match result {
        Err(SendError::Retry { after, .. }) => after,
        other => panic!("expected a retry, got {other:?}"),
    }
}

fn assert_retry(result: Result<Receipt, SendError>) {
    assert!(
        matches!(result, Err(SendError::Retry { .. })),
        "expected a retry, got {result:?}"
    );
}

fn assert_permanent(result: Result<Receipt, SendError>) {
    assert!(
        matches!(result, Err(SendError::Permanent { .. })),
        "expected a permanent failure, got {result:?}"
    );
}

// ---------------------------------------------------------------- GatewayAPI: sending

#[tokio::test]
async fn gatewayapi_gets_the_documented_json_with_our_reference_and_we_get_its_id() {
    let fake = FakeProvider::gatewayapi(GATEWAYAPI_TOKEN).await;
    let receipt = gatewayapi_at(&fake, GATEWAYAPI_TOKEN)
        .send(&message())
        .await
        .expect("sent");
    assert_eq!(
        receipt,
        Receipt {
            provider: "gatewayapi",
            provider_id: Some("1000002".into()),
        }
    );
    let received = fake.received();
    assert_eq!(received.len(), 1);
    let fields = &received[0].fields;
    assert_eq!(fields["sender"], json!("Makker"));
    assert_eq!(fields["message"], json!(message().text));
    assert_eq!(fields["recipients"], json!([{"msisdn": 4_520_123_456_u64}]));
    assert_eq!(fields["userref"], json!("outbox-42"));
    assert!(!fields.contains_key("callback_url"));
}

#[tokio::test]
async fn gatewayapi_rate_limit_is_retried_after_its_retry_after() {
    let fake = FakeProvider::gatewayapi(GATEWAYAPI_TOKEN).await;
    fake.answer(Answer::TooManyRequests {
        retry_after: "30".into(),
    });
    let result = gatewayapi_at(&fake, GATEWAYAPI_TOKEN).send(&message()).await;
    assert_eq!(retry_after(result), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn gatewayapi_server_error_is_retried() {
    let fake = FakeProvider::gatewayapi(GATEWAYAPI_TOKEN).await;
    fake.answer(Answer::Status(500));
    assert_retry(gatewayapi_at(&fake, GATEWAYAPI_TOKEN).send(&message()).await);
}

#[tokio::test]
async fn gatewayapi_with_a_wrong_token_is_a_permanent_failure() {
    let fake = FakeProvider::gatewayapi(GATEWAYAPI_TOKEN).await;
    assert_permanent(gatewayapi_at(&fake, "not-the-token").send(&message()).await);
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn gatewayapi_is_not_called_for_a_number_that_is_not_e164() {
    let fake = FakeProvider::gatewayapi(GATEWAYAPI_TOKEN).await;
    let sms = Sms {
        to: "20 12 34 56".into(),
        ..message()
    };
    assert_permanent(gatewayapi_at(&fake, GATEWAYAPI_TOKEN).send(&sms).await);
    assert!(fake.received().is_empty());
}

// ---------------------------------------------------------------- 46elks: sending

#[tokio::test]
async fn elks46_gets_the_documented_form_with_our_reference_and_we_get_its_id() {
    let fake = FakeProvider::elks46(ELKS_USER, ELKS_PASSWORD).await;
    let receipt = elks_at(&fake, ELKS_PASSWORD)
        .send(&message())
        .await
        .expect("sent");
    assert_eq!(
        receipt,
        Receipt {
            provider: "46elks",
            provider_id: Some("s1000002".into()),
        }
    );
    let received = fake.received();
    assert_eq!(received.len(), 1);
    let form = &received[0];
    assert_eq!(form.text("from"), "Makker");
    assert_eq!(form.text("to"), "+4520123456");
    assert_eq!(form.text("message"), message().text);
    let whendelivered = Url::parse(form.text("whendelivered")).expect("a URL");
    assert_eq!(whendelivered.path(), "/hooks/46elks/dlr");
    let query: Vec<(String, String)> = whendelivered.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        pairs(&[("ref", "outbox-42"), ("secret", ELKS_WEBHOOK_SECRET)])
    );
}

#[tokio::test]
async fn elks46_rate_limit_is_retried_after_its_retry_after() {
    let fake = FakeProvider::elks46(ELKS_USER, ELKS_PASSWORD).await;
    fake.answer(Answer::TooManyRequests {
        retry_after: "12".into(),
    });
    let result = elks_at(&fake, ELKS_PASSWORD).send(&message()).await;
    assert_eq!(retry_after(result), Some(Duration::from_secs(12)));
}

#[tokio::test]
async fn elks46_server_error_is_retried() {
    let fake = FakeProvider::elks46(ELKS_USER, ELKS_PASSWORD).await;
    fake.answer(Answer::Status(500));
    assert_retry(elks_at(&fake, ELKS_PASSWORD).send(&message()).await);
}

#[tokio::test]
async fn elks46_with_a_wrong_password_is_a_permanent_failure() {
    let fake = FakeProvider::elks46(ELKS_USER, ELKS_PASSWORD).await;
    assert_permanent(elks_at(&fake, "wrong").send(&message()).await);
    assert!(fake.received().is_empty());
}

// ---------------------------------------------------------------- Twilio: sending

#[tokio::test]
async fn twilio_gets_the_documented_form_with_our_reference_and_we_get_its_sid() {
    let fake = FakeProvider::twilio(TWILIO_SID, TWILIO_TOKEN).await;
    let receipt = twilio_at(&fake, TWILIO_TOKEN)
        .send(&message())
        .await
        .expect("sent");
    assert_eq!(
        receipt,
        Receipt {
            provider: "twilio",
            provider_id: Some("SM1000002".into()),
        }
    );
    let received = fake.received();
    assert_eq!(received.len(), 1);
    let form = &received[0];
    assert_eq!(form.text("To"), "+4520123456");
    assert_eq!(form.text("From"), "+4570000000");
    assert_eq!(form.text("Body"), message().text);
    assert_eq!(
        form.text("StatusCallback"),
        "https://makker.example/hooks/twilio/status?ref=outbox-42"
    );
}

#[tokio::test]
async fn twilio_rate_limit_is_retried_after_its_retry_after() {
    let fake = FakeProvider::twilio(TWILIO_SID, TWILIO_TOKEN).await;
    fake.answer(Answer::TooManyRequests {
        retry_after: "5".into(),
    });
    let result = twilio_at(&fake, TWILIO_TOKEN).send(&message()).await;
    assert_eq!(retry_after(result), Some(Duration::from_secs(5)));
}

#[tokio::test]
async fn twilio_server_error_is_retried() {
    let fake = FakeProvider::twilio(TWILIO_SID, TWILIO_TOKEN).await;
    fake.answer(Answer::Status(500));
    assert_retry(twilio_at(&fake, TWILIO_TOKEN).send(&message()).await);
}

#[tokio::test]
async fn twilio_with_a_wrong_auth_token_is_a_permanent_failure() {
    let fake = FakeProvider::twilio(TWILIO_SID, TWILIO_TOKEN).await;
    assert_permanent(twilio_at(&fake, "wrong").send(&message()).await);
    assert!(fake.received().is_empty());
}

// ---------------------------------------------------------------- classification, any provider

#[tokio::test]
async fn refusals_are_permanent_and_outages_are_retried() {
    let fake = FakeProvider::twilio(TWILIO_SID, TWILIO_TOKEN).await;
    let twilio = twilio_at(&fake, TWILIO_TOKEN);
    for status in [400, 401, 403, 404, 422] {
        fake.answer(Answer::Status(status));
        assert_permanent(twilio.send(&message()).await);
    }
    for status in [502, 503, 504] {
        fake.answer(Answer::Status(status));
        assert_retry(twilio.send(&message()).await);
    }
}

#[tokio::test]
async fn a_retry_after_date_is_honoured_but_never_beyond_an_hour() {
    let fake = FakeProvider::elks46(ELKS_USER, ELKS_PASSWORD).await;
    fake.answer(Answer::TooManyRequests {
        retry_after: "Fri, 31 Dec 9999 23:59:59 GMT".into(),
    });
    let result = elks_at(&fake, ELKS_PASSWORD).send(&message()).await;
    assert_eq!(retry_after(result), Some(Duration::from_secs(3600)));
}

#[tokio::test]
async fn an_accepted_message_with_an_unreadable_answer_still_counts_as_sent() {
    let fake = FakeProvider::gatewayapi(GATEWAYAPI_TOKEN).await;
    fake.answer(Answer::AcceptUnreadably);
    let receipt = gatewayapi_at(&fake, GATEWAYAPI_TOKEN)
        .send(&message())
        .await
        .expect("sent: a retry would send it twice");
    assert_eq!(receipt.provider_id, None);
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_retried() {
    let fake = FakeProvider::twilio(TWILIO_SID, TWILIO_TOKEN).await;
    fake.answer(Answer::Slowly(Duration::from_secs(5)));
    let config = TwilioConfig {
        base_url: fake.base_url.clone(),
        account_sid: TWILIO_SID.into(),
        auth_token: TWILIO_TOKEN.into(),
        from: "+4570000000".into(),
        status_callback: None,
    };
    let client = sms::http_client_with_timeout(Duration::from_millis(200)).unwrap();
    let result = Twilio::new(config, client).send(&message()).await;
    match result {
        Err(SendError::Retry { after: None, reason }) => {
            assert!(reason.contains("timed out"), "{reason}")
        }
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_retried() {
    // A port that was free a moment ago: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let config = Elks46Config {
        base_url: Url::parse(&format!("http://{address}")).unwrap(),
        username: ELKS_USER.into(),
        password: ELKS_PASSWORD.into(),
        from: "Makker".into(),
        delivery_url: None,
        webhook_secret: ELKS_WEBHOOK_SECRET.into(),
    };
    assert_retry(Elks46::new(config, client()).send(&message()).await);
}

#[test]
fn credentials_never_show_in_debug_output() {
    let config = TwilioConfig {
        base_url: Url::parse(TwilioConfig::DEFAULT_BASE_URL).unwrap(),
        account_sid: TWILIO_SID.into(),
        auth_token: TWILIO_TOKEN.into(),
        from: "+4570000000".into(),
        status_callback: None,
    };
    let shown = format!("{config:?} {:?}", TwilioWebhook::new(TWILIO_TOKEN.into()));
    assert!(!shown.contains(TWILIO_TOKEN), "{shown}");
    let shown = format!("{:?}", message());
    assert!(!shown.contains("20123456"), "{shown}");
}

// ---------------------------------------------------------------- the log provider

#[tokio::test]
async fn the_log_provider_keeps_only_the_latest_messages_and_numbers_its_receipts() {
    let log = LogProvider::with_capacity(2);
    let mut ids = Vec::new();
    for reference in ["a", "b", "c"] {
        let sms = Sms {
            reference: reference.into(),
            ..message()
        };
        ids.push(log.send(&sms).await.expect("always sent").provider_id);
    }
    assert_eq!(
        ids,
        [Some("log-1".into()), Some("log-2".into()), Some("log-3".into())]
    );
    let kept: Vec<String> = log.recent().into_iter().map(|s| s.reference).collect();
    assert_eq!(kept, ["b", "c"]);
    assert_eq!(log.name(), "log");
}

// ---------------------------------------------------------------- Twilio webhooks

/// The worked example in Twilio's webhook-security documentation: auth token `12345`.
const TWILIO_DOC_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const TWILIO_DOC_SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

fn twilio_doc_params() -> Vec<(String, String)> {
    // Out of order on purpose: the signature sorts them by name.
    pairs(&[
        ("To", "+18005551212"),
        ("CallSid", "CA1234567890ABCDE"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("Caller", "+12349013030"),
    ])
}

#[test]
fn twilio_signature_matches_the_documented_example() {
    assert_eq!(
        twilio::signature("12345", TWILIO_DOC_URL, &twilio_doc_params()),
        TWILIO_DOC_SIGNATURE
    );
    assert_eq!(
        twilio::verify_signature(
            "12345",
            TWILIO_DOC_URL,
            &twilio_doc_params(),
            TWILIO_DOC_SIGNATURE
        ),
        Ok(())
    );
}

#[test]
fn a_twilio_signature_fails_for_another_token_url_or_parameter() {
    let params = twilio_doc_params();
    let check = |token: &str, url: &str, params: &[(String, String)], signature: &str| {
        twilio::verify_signature(token, url, params, signature)
    };
    let refused = Err(WebhookError::Unauthenticated);
    assert_eq!(
        check("54321", TWILIO_DOC_URL, &params, TWILIO_DOC_SIGNATURE),
        refused
    );
    assert_eq!(
        check(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            TWILIO_DOC_SIGNATURE
        ),
        refused
    );
    let mut tampered = params.clone();
    tampered[2].1 = "9999".into();
    assert_eq!(
        check("12345", TWILIO_DOC_URL, &tampered, TWILIO_DOC_SIGNATURE),
        refused
    );
    let mut added = params.clone();
    added.push(("Extra".into(), "1".into()));
    assert_eq!(
        check("12345", TWILIO_DOC_URL, &added, TWILIO_DOC_SIGNATURE),
        refused
    );
    assert_eq!(check("12345", TWILIO_DOC_URL, &params, "not base64!"), refused);
    assert_eq!(check("12345", TWILIO_DOC_URL, &params, ""), refused);
    assert_eq!(check("", TWILIO_DOC_URL, &params, TWILIO_DOC_SIGNATURE), refused);
}

#[tokio::test]
async fn a_twilio_status_callback_for_our_send_is_read_when_signed_with_our_token() {
    // The status URL exactly as we handed it to Twilio in the send.
    let fake = FakeProvider::twilio(TWILIO_SID, TWILIO_TOKEN).await;
    twilio_at(&fake, TWILIO_TOKEN)
        .send(&message())
        .await
        .expect("sent");
    let url = fake.received()[0].text("StatusCallback").to_owned();
    let form = pairs(&[
        ("AccountSid", TWILIO_SID),
        ("MessageSid", "SM1000002"),
        ("MessageStatus", "delivered"),
        ("To", "+4520123456"),
    ]);
    let signature = twilio::signature(TWILIO_TOKEN, &url, &form);
    let webhook = TwilioWebhook::new(TWILIO_TOKEN.into());

    assert_eq!(
        webhook.delivery_report(&url, &form, &signature),
        Ok(DeliveryReport {
            reference: "outbox-42".into(),
            outcome: DeliveryOutcome::Delivered,
            provider_status: "delivered".into(),
            provider_id: Some("SM1000002".into()),
        })
    );

    let forged = twilio::signature("someone-else", &url, &form);
    assert_eq!(
        webhook.delivery_report(&url, &form, &forged),
        Err(WebhookError::Unauthenticated)
    );
    let other_reference = url.replace("outbox-42", "outbox-43");
    assert_eq!(
        webhook.delivery_report(&other_reference, &form, &signature),
        Err(WebhookError::Unauthenticated)
    );
    let mut failed = form.clone();
    failed[2].1 = "undelivered".into();
    assert_eq!(
        webhook.delivery_report(&url, &failed, &signature),
        Err(WebhookError::Unauthenticated)
    );
    let failed_signature = twilio::signature(TWILIO_TOKEN, &url, &failed);
    let report = webhook
        .delivery_report(&url, &failed, &failed_signature)
        .expect("signed");
    assert_eq!(report.outcome, DeliveryOutcome::Failed);
}

#[test]
fn a_twilio_inbound_message_is_read_only_when_signed() {
    let url = "https://makker.example/hooks/twilio/inbound";
    let form = pairs(&[
        ("MessageSid", "SM77"),
        ("From", "+4520123456"),
        ("To", "+4570000000"),
        ("Body", " ok "),
    ]);
    let webhook = TwilioWebhook::new(TWILIO_TOKEN.into());
    let signature = twilio::signature(TWILIO_TOKEN, url, &form);
    let sms = webhook.inbound(url, &form, &signature).expect("signed");
    assert_eq!(
        sms,
        InboundSms {
            from: "+4520123456".into(),
            text: " ok ".into(),
            provider_id: Some("SM77".into()),
        }
    );
    assert_eq!(sms.command(), InboundCommand::CheckIn);
    assert_eq!(
        webhook.inbound(url, &form, TWILIO_DOC_SIGNATURE),
        Err(WebhookError::Unauthenticated)
    );
}

// ---------------------------------------------------------------- GatewayAPI webhooks

/// The example in GatewayAPI's webhook documentation, signed with the secret `secret`.
const GATEWAYAPI_DOC_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpZCI6MjM4MTcwMywibXNpc2RuIjo0NTQyNjA5MDQ1LCJ0aW1lIjoxNTIyNzY0MDYyLCJzdGF0dXMiOiJERUxJVkVSRUQiLCJlcnJvciI6bnVsbCwiY29kZSI6bnVsbCwidXNlcnJlZiI6bnVsbCwiY2FsbGJhY2tfdXJsIjoiaHR0cDovL2JiYWY3MTQyLm5ncm9rLmlvIiwiYXBpIjo0fQ.KdfDH65bnQtgxEkFnpAQodOciAJedZFB13r9wEo8t3Y";

/// An HS256 JWT, built here by hand so the test does not lean on the code it checks.
fn jwt(secret: &str, header: serde_json::Value, claims: serde_json::Value) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

fn hs256() -> serde_json::Value {
    json!({"typ": "JWT", "alg": "HS256"})
}

fn status_claims() -> serde_json::Value {
    json!({
        "id": 1000002,
        "msisdn": 4520123456_u64,
        "time": 1450000000,
        "status": "DELIVERED",
        "userref": "outbox-42",
        "country_code": "DK",
        "country_prefix": 45,
    })
}

#[test]
fn gatewayapis_documented_token_verifies_and_its_claims_are_decoded() {
    let claims = gatewayapi::verify_jwt("secret", GATEWAYAPI_DOC_TOKEN).expect("verified");
    assert_eq!(claims["id"], json!(2381703));
    assert_eq!(claims["msisdn"], json!(4542609045_u64));
    assert_eq!(claims["status"], json!("DELIVERED"));
    // It was sent without a reference, so it cannot be matched to an outbox row.
    assert_eq!(
        GatewayApiWebhook::new("secret".into()).event(GATEWAYAPI_DOC_TOKEN),
        Err(WebhookError::Missing("userref"))
    );
    assert_eq!(
        gatewayapi::verify_jwt("not-the-secret", GATEWAYAPI_DOC_TOKEN),
        Err(WebhookError::Unauthenticated)
    );
}

#[test]
fn a_gatewayapi_status_signed_with_our_secret_is_read() {
    let webhook = GatewayApiWebhook::new("hook-secret".into());
    let token = jwt("hook-secret", hs256(), status_claims());
    assert_eq!(
        webhook.event(&token),
        Ok(GatewayApiEvent::Status(DeliveryReport {
            reference: "outbox-42".into(),
            outcome: DeliveryOutcome::Delivered,
            provider_status: "DELIVERED".into(),
            provider_id: Some("1000002".into()),
        }))
    );
    let mut undeliverable = status_claims();
    undeliverable["status"] = json!("UNDELIVERABLE");
    let token = jwt("hook-secret", hs256(), undeliverable);
    let Ok(GatewayApiEvent::Status(report)) = webhook.event(&token) else {
        panic!("a status");
    };
    assert_eq!(report.outcome, DeliveryOutcome::Failed);
}

#[test]
fn a_gatewayapi_token_signed_otherwise_or_tampered_with_is_refused() {
    let webhook = GatewayApiWebhook::new("hook-secret".into());
    let refused = Err(WebhookError::Unauthenticated);

    let other_secret = jwt("another-secret", hs256(), status_claims());
    assert_eq!(webhook.event(&other_secret), refused);

    // Our signature over other claims: a failed message made to look delivered.
    let genuine = jwt("hook-secret", hs256(), status_claims());
    let mut forged_claims = status_claims();
    forged_claims["userref"] = json!("outbox-43");
    let forged = jwt("whatever", hs256(), forged_claims);
    let [header, _, signature] = genuine.split('.').collect::<Vec<_>>()[..] else {
        unreachable!()
    };
    let claims = forged.split('.').nth(1).unwrap();
    assert_eq!(webhook.event(&format!("{header}.{claims}.{signature}")), refused);

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none"}).to_string()),
        URL_SAFE_NO_PAD.encode(status_claims().to_string())
    );
    assert_eq!(webhook.event(&unsigned), refused);
    let wrong_algorithm = jwt(
        "hook-secret",
        json!({"typ": "JWT", "alg": "HS512"}),
        status_claims(),
    );
    assert_eq!(webhook.event(&wrong_algorithm), refused);

    for garbage in ["", "a.b", "a.b.c.d", "not a token"] {
        assert_eq!(webhook.event(garbage), refused, "{garbage:?}");
    }
    let no_secret = GatewayApiWebhook::new("".into());
    assert_eq!(no_secret.event(&jwt("", hs256(), status_claims())), refused);
}

#[test]
fn a_gatewayapi_inbound_message_is_read() {
    let webhook = GatewayApiWebhook::new("hook-secret".into());
    let claims = json!({
        "id": 1000001,
        "msisdn": 4587654321_u64,
        "receiver": 451204,
        "message": "OUT 4711",
        "senttime": 1450000000,
        "webhook_label": "test",
    });
    let Ok(GatewayApiEvent::Inbound(sms)) = webhook.event(&jwt("hook-secret", hs256(), claims)) else {
        panic!("an inbound message");
    };
    assert_eq!(sms.from, "+4587654321");
    assert_eq!(sms.provider_id.as_deref(), Some("1000001"));
    assert_eq!(
        sms.command(),
        InboundCommand::CheckOut {
            pin: CheckOutPin::parse("4711").unwrap()
        }
    );
}

// ---------------------------------------------------------------- 46elks webhooks

#[tokio::test]
async fn a_46elks_delivery_report_for_our_send_is_read_when_it_carries_our_secret() {
    // The whendelivered URL exactly as we handed it to 46elks in the send.
    let fake = FakeProvider::elks46(ELKS_USER, ELKS_PASSWORD).await;
    elks_at(&fake, ELKS_PASSWORD)
        .send(&message())
        .await
        .expect("sent");
    let url = fake.received()[0].text("whendelivered").to_owned();
    let form = pairs(&[
        ("id", "s1000002"),
        ("status", "delivered"),
        ("delivered", "2026-05-04T10:11:12.000000"),
    ]);
    let webhook = Elks46Webhook::new(ELKS_WEBHOOK_SECRET.into());
    assert_eq!(
        webhook.delivery_report(&url, &form),
        Ok(DeliveryReport {
            reference: "outbox-42".into(),
            outcome: DeliveryOutcome::Delivered,
            provider_status: "delivered".into(),
            provider_id: Some("s1000002".into()),
        })
    );
    let failed = pairs(&[("id", "s1000002"), ("status", "failed")]);
    assert_eq!(
        webhook.delivery_report(&url, &failed).map(|r| r.outcome),
        Ok(DeliveryOutcome::Failed)
    );
}

#[test]
fn a_46elks_callback_without_our_secret_is_refused() {
    let webhook = Elks46Webhook::new(ELKS_WEBHOOK_SECRET.into());
    let form = pairs(&[("id", "s1"), ("status", "delivered")]);
    let refused = Err(WebhookError::Unauthenticated);
    for url in [
        "https://makker.example/hooks/46elks/dlr?ref=outbox-42",
        "https://makker.example/hooks/46elks/dlr?ref=outbox-42&secret=",
        "https://makker.example/hooks/46elks/dlr?ref=outbox-42&secret=elks-hook-secreT",
        "https://makker.example/hooks/46elks/dlr?ref=outbox-42&secret=elks-hook-secret-2",
    ] {
        assert_eq!(webhook.delivery_report(url, &form), refused, "{url}");
    }
    let no_secret = Elks46Webhook::new("".into());
    assert_eq!(
        no_secret.delivery_report("https://makker.example/dlr?ref=x&secret=", &form),
        refused
    );
    assert!(matches!(
        webhook.delivery_report("not a url", &form),
        Err(WebhookError::Malformed(_))
    ));
}

#[test]
fn a_46elks_inbound_message_is_read_when_it_carries_our_secret() {
    let webhook = Elks46Webhook::new(ELKS_WEBHOOK_SECRET.into());
    let form = pairs(&[
        ("id", "sf8425555e5d8db61dda7a7b3f1b91bdb"),
        ("from", "+46700000000"),
        ("to", "+46766861004"),
        ("message", "Out 12345678"),
        ("created", "2026-05-04T10:11:12.000000"),
    ]);
    let url = "https://makker.example/hooks/46elks/sms?secret=elks-hook-secret";
    let sms = webhook.inbound(url, &form).expect("authenticated");
    assert_eq!(sms.from, "+46700000000");
    assert_eq!(
        sms.command(),
        InboundCommand::CheckOut {
            pin: CheckOutPin::parse("12345678").unwrap()
        }
    );
    assert_eq!(
        webhook.inbound("https://makker.example/hooks/46elks/sms", &form),
        Err(WebhookError::Unauthenticated)
    );
    assert_eq!(
        webhook.inbound(url, &pairs(&[("from", "+46700000000")])),
        Err(WebhookError::Missing("message"))
    );
}

// ---------------------------------------------------------------- inbound commands

#[test]
fn inbound_texts_become_commands() {
    let out = |pin: &str| InboundCommand::CheckOut {
        pin: CheckOutPin::parse(pin).expect("a valid PIN"),
    };
    let table = [
        ("OK", InboundCommand::CheckIn),
        ("ok", InboundCommand::CheckIn),
        ("Ok", InboundCommand::CheckIn),
        ("  oK \n", InboundCommand::CheckIn),
        ("OUT 1234", out("1234")),
        ("out 12345678", out("12345678")),
        (" Out\t4711 \r\n", out("4711")),
        ("OUT   0000", out("0000")),
        ("OUT 123", InboundCommand::Unknown),
        ("OUT 123456789", InboundCommand::Unknown),
        ("OUT 12a4", InboundCommand::Unknown),
        ("OUT -1234", InboundCommand::Unknown),
        ("OUT ١٢٣٤", InboundCommand::Unknown),
        ("OUT1234", InboundCommand::Unknown),
        ("OUT", InboundCommand::Unknown),
        ("OUT 1234 5678", InboundCommand::Unknown),
        ("OUTSIDE 1234", InboundCommand::Unknown),
        ("OK!", InboundCommand::Unknown),
        ("okay", InboundCommand::Unknown),
        ("OK OUT 1234", InboundCommand::Unknown),
        ("hjælp", InboundCommand::Unknown),
        ("", InboundCommand::Unknown),
        ("   ", InboundCommand::Unknown),
    ];
    for (text, expected) in table {
        assert_eq!(InboundCommand::parse(text), expected, "{text:?}");
    }
}

#[test]
fn a_checkout_pin_keeps_its_digits_for_the_caller() {
    let pin = CheckOutPin::parse("0042").expect("valid");
    assert_eq!(pin.expose(), "0042");
    assert_eq!(format!("{pin:?}"), "CheckOutPin(***)");
}
