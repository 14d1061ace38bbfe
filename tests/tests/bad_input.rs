//! Bad input against the mobile API, as a table: every row is answered with a 4xx
//! `application/problem+json` of the expected type and status, and leaves the database as it
//! was. Runs on SQLite and PostgreSQL.

use std::sync::Arc;

use chrono::Duration;
use makker_domain::risk::RiskLevel;
use makker_domain::visit::VisitKind;
use makker_domain::{PersonId, VisitId};
use makker_mobile_api::client::Client;
use makker_mobile_api::*;
use makker_store::Store;
use makker_tests::app::{Fixture, PIN, TestApp, answers, start_request};
use makker_tests::both;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use uuid::Uuid;

type Expect = (u16, &'static str);

const MALFORMED_JSON: Expect = (400, "malformed-json");
const INVALID_QUERY: Expect = (400, "invalid-query");
const KEY_INVALID: Expect = (400, "idempotency-key-invalid");
const UNAUTHORIZED: Expect = (401, "unauthorized");
const NOT_PARTICIPANT: Expect = (403, "not-participant");
const NOT_FOUND: Expect = (404, "not-found");
const METHOD_NOT_ALLOWED: Expect = (405, "method-not-allowed");
const BODY_TOO_LARGE: Expect = (413, "body-too-large");
const UNSUPPORTED: Expect = (415, "unsupported-media-type");
const INVALID_BODY: Expect = (422, "invalid-body");
const INVALID_INPUT: Expect = (422, "invalid-input");
const CLOCK_SKEW: Expect = (422, "clock-skew");
const WRONG_PIN: Expect = (422, "wrong-pin");

/// One bad request and the problem it must get.
struct Row {
    name: &'static str,
    who: Client,
    method: Method,
    path: String,
    headers: Vec<(&'static str, HeaderValue)>,
    body: Vec<u8>,
    expect: Expect,
}

/// A row sent as JSON (`Content-Type: application/json`) unless its headers say otherwise.
fn row(
    name: &'static str,
    who: &Client,
    method: &str,
    path: impl Into<String>,
    body: impl Into<Vec<u8>>,
    expect: Expect,
) -> Row {
    let json = HeaderValue::from_static("application/json");
    Row {
        name,
        who: who.clone(),
        method: Method::from_bytes(method.as_bytes()).expect("a method"),
        path: path.into(),
        headers: vec![("content-type", json)],
        body: body.into(),
        expect,
    }
}

impl Row {
    /// Sets a header (replacing one of the same name) to raw bytes, which need not be ASCII.
    fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((
            name,
            HeaderValue::from_bytes(value.as_bytes()).expect("a header value"),
        ));
        self
    }

    fn without_content_type(mut self) -> Self {
        self.headers.retain(|(n, _)| *n != "content-type");
        self
    }

    /// Sends the row; a description of what went wrong, if anything did.
    async fn check(self, app: &TestApp, seen: &Seen) -> Option<String> {
        let before = seen.snapshot(app).await;
        let mut request = self.who.request(self.method.clone(), &self.path).body(self.body);
        for (name, value) in self.headers {
            request = request.header(name, value);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Some(format!("{}: transport: {e}", self.name)),
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("?").to_owned());
        let body = response.text().await.unwrap_or_default();
        let problem = serde_json::from_str::<Problem>(&body).ok();
        let (want_status, slug) = self.expect;
        let want_type = format!("urn:makker:problem:{slug}");
        let answered = problem.as_ref().map(|p| (p.type_.as_str(), p.status));
        let mut wrong = Vec::new();
        if !(400..500).contains(&status) || status != want_status {
            wrong.push(format!("status {status}, wanted {want_status}"));
        }
        if content_type.as_deref() != Some("application/problem+json") {
            wrong.push(format!("content-type {content_type:?}"));
        }
        if answered != Some((want_type.as_str(), status)) {
            wrong.push(format!("body {body:?}, wanted type {want_type}"));
        }
        let after = seen.snapshot(app).await;
        if let Some((was, is)) = before.iter().zip(&after).find(|(was, is)| was != is) {
            wrong.push(format!("the database changed: {was} became {is}"));
        }
        (!wrong.is_empty()).then(|| {
            format!(
                "{} ({} {}): {}",
                self.name,
                self.method,
                self.path,
                wrong.join("; ")
            )
        })
    }
}

/// The visits and people whose stored state a row could touch.
struct Seen {
    visits: Vec<VisitId>,
    people: Vec<PersonId>,
}

impl Seen {
    /// What the store holds for them, one `Debug` line per thing read.
    async fn snapshot(&self, app: &TestApp) -> Vec<String> {
        let store: &dyn Store = app.engine.store.as_ref();
        let mut s = Vec::new();
        for &v in &self.visits {
            s.push(format!("visit {:?}", store.visit(v).await.expect("a visit")));
            s.push(format!(
                "events {:?}",
                store.visit_events(v).await.expect("its events")
            ));
        }
        for &p in &self.people {
            s.push(format!(
                "active visit {:?}",
                store.active_visit_of(p).await.expect("an active visit")
            ));
            s.push(format!(
                "open shift {:?}",
                store.open_shift(p).await.expect("an open shift")
            ));
            s.push(format!("alarms {:?}", store.alarms_of(p).await.expect("alarms")));
            s.push(format!("devices {:?}", store.devices(p).await.expect("devices")));
        }
        s
    }
}

/// `base` with the fields of `patch` set, and those set to `null` left out.
fn patched(base: &Value, patch: Value) -> String {
    let mut out = base.clone();
    let fields = out.as_object_mut().expect("an object");
    for (k, v) in patch.as_object().expect("an object") {
        if v.is_null() {
            fields.remove(k);
        } else {
            fields.insert(k.clone(), v.clone());
        }
    }
    out.to_string()
}

/// Everyone of the fixture on shift, Olga in the other team too.
async fn ready(store: Arc<dyn Store>) -> (TestApp, Fixture) {
    let (app, f) = makker_tests::app::ready(store).await;
    f.olga.phone.start_shift(None).await.expect("start a shift");
    (app, f)
}

async fn bad_input_is_refused_with_a_problem_and_changes_nothing(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let start_request_at = |place| start_request(VisitKind::DropIn, place, &[]);
    let visit = f
        .anna
        .phone
        .start_visit(&start_request_at(f.drop_in.id.0))
        .await
        .expect("anna starts")
        .id;
    let other = f
        .olga
        .phone
        .start_visit(&start_request_at(f.other_place.id.0))
        .await
        .expect("olga starts")
        .id;
    // Bo's second phone, signed out; Carl's old phone, signed in 91 days ago.
    let lost = app
        .client()
        .login("bo", "pw", "lost phone")
        .await
        .expect("bo signs in");
    let revoked = app.client().with_token(lost.token);
    revoked.logout().await.expect("bo signs out");
    let now = app.engine.now();
    app.clock.set(now - Duration::days(91));
    let (old_token, _) = app
        .engine
        .issue_token(f.carl.person.id, "old phone")
        .await
        .expect("a token");
    app.clock.set(now);
    let expired = app.client().with_token(old_token);
    let olgas_device = app.engine.store.devices(f.olga.person.id).await.expect("devices")[0].id;
    let other_team = f.olga.person.teams[0].0;

    let anon = app.client();
    let garbage = anon.with_token("mk_garbage");
    let (anna, bo, carl, olga) = (&f.anna.phone, &f.bo.phone, &f.carl.phone, &f.olga.phone);
    let at = |d: Duration| json!({"client_time": (now + d).to_rfc3339()}).to_string();
    let on = |id: Uuid, action: &str| format!("/api/v1/visits/{id}/{action}");
    let (check_in, extend, check_out) = (on(visit, "check-in"), on(visit, "extend"), on(visit, "check-out"));
    let near = |query: &str| format!("/api/v1/places/near?{query}");
    let start_base = serde_json::to_value(start_request_at(f.drop_in.id.0)).expect("a request");
    let start = |patch: Value| patched(&start_base, patch);
    let login_base = json!({"username": "anna", "password": "pw", "device_name": "Annas telefon"});
    let login = |patch: Value| patched(&login_base, patch);
    let pin = |pin: &str| json!({ "pin": pin }).to_string();
    let mut unknown_question = json!(answers(&[]));
    unknown_question["moon_phase"] = json!(true);
    let high_risk = json!(answers(&["violence_known"]));
    let big = "x".repeat(100 * 1024);
    let eleven: Vec<Value> = (0..11)
        .map(|_| json!({"person_id": Uuid::now_v7(), "role": "observer"}))
        .collect();
    let (visits, login_path, sos, me) = (
        "/api/v1/visits",
        "/api/v1/auth/login",
        "/api/v1/sos",
        "/api/v1/me",
    );
    let raw_login = |username: &[u8]| {
        [
            &b"{\"username\":\""[..],
            username,
            b"\",\"password\":\"pw\",\"device_name\":\"x\"}",
        ]
        .concat()
    };

    #[rustfmt::skip]
    let rows = vec![
        // Not JSON.
        row("truncated JSON", anna, "POST", &check_in, r#"{"client_time":"#, MALFORMED_JSON),
        row("not JSON at all", anna, "POST", &check_in, "I'm OK", MALFORMED_JSON),
        row("an empty body", anna, "POST", &check_in, "", MALFORMED_JSON),
        row("trailing garbage", anna, "POST", &check_in, "{}}", MALFORMED_JSON),
        row("a lone UTF-16 surrogate", &anon, "POST", login_path, raw_login(br"\ud800"), MALFORMED_JSON),
        row("bytes that are not UTF-8", &anon, "POST", login_path, raw_login(b"\xff\xfe"), MALFORMED_JSON),
        row("a raw NUL inside a string", &anon, "POST", login_path, raw_login(b"an\x00na"), MALFORMED_JSON),
        // JSON of the wrong shape.
        row("client_time as a number", anna, "POST", &check_in, r#"{"client_time":5}"#, INVALID_BODY),
        row("client_time not RFC 3339", anna, "POST", &check_in, r#"{"client_time":"yesterday"}"#, INVALID_BODY),
        row("position as a string", anna, "POST", &check_in, r#"{"position":"56.1,10.2"}"#, INVALID_BODY),
        row("an array instead of an object", anna, "POST", &check_in, "[]", INVALID_BODY),
        row("null instead of an object", anna, "POST", &check_in, "null", INVALID_BODY),
        row("a number as username", &anon, "POST", login_path, login(json!({"username": 1})), INVALID_BODY),
        row("planned_minutes as a string", carl, "POST", visits, start(json!({"planned_minutes": "30"})), INVALID_BODY),
        row("planned_minutes negative", carl, "POST", visits, start(json!({"planned_minutes": -5})), INVALID_BODY),
        row("planned_minutes fractional", carl, "POST", visits, start(json!({"planned_minutes": 30.5})), INVALID_BODY),
        row("planned_minutes beyond u32", carl, "POST", visits, start(json!({"planned_minutes": 99_999_999_999_u64})), INVALID_BODY),
        row("an unknown visit kind", carl, "POST", visits, start(json!({"kind": "picnic"})), INVALID_BODY),
        row("an unknown role", carl, "POST", visits, start(json!({"role": "boss"})), INVALID_BODY),
        row("a place_id that is not a UUID", carl, "POST", visits, start(json!({"place_id": "park"})), INVALID_BODY),
        row("answers as a list", carl, "POST", visits, start(json!({"answers": ["violence_known"]})), INVALID_BODY),
        row("an answer that is not a boolean", carl, "POST", visits, start(json!({"answers": {"violence_known": "yes"}})), INVALID_BODY),
        // Missing fields.
        row("login without device_name", &anon, "POST", login_path, login(json!({"device_name": null})), INVALID_BODY),
        row("start without place_id", carl, "POST", visits, start(json!({"place_id": null})), INVALID_BODY),
        row("start without planned_minutes", carl, "POST", visits, start(json!({"planned_minutes": null})), INVALID_BODY),
        row("extend without minutes", anna, "POST", &extend, "{}", INVALID_BODY),
        row("join without a role", bo, "POST", on(visit, "join"), "{}", INVALID_BODY),
        row("a position without lon", anna, "POST", &check_in, r#"{"position":{"lat":56.1}}"#, INVALID_BODY),
        // Unknown fields.
        row("an unknown field on check-in", anna, "POST", &check_in, r#"{"mood":"fine"}"#, INVALID_BODY),
        row("a misspelled field", anna, "POST", &check_in, r#"{"client_tme":"2026-11-23T13:00:00Z"}"#, INVALID_BODY),
        row("an unknown field in a position", anna, "POST", &check_in, r#"{"position":{"lat":56.1,"lon":10.2,"alt":3}}"#, INVALID_BODY),
        row("an unknown field on login", &anon, "POST", login_path, login(json!({"remember": true})), INVALID_BODY),
        row("an unknown field on start", carl, "POST", visits, start(json!({"priority": "high"})), INVALID_BODY),
        // Not sent as JSON.
        row("no content-type", anna, "POST", &check_in, "{}", UNSUPPORTED).without_content_type(),
        row("text/plain", anna, "POST", &check_in, "{}", UNSUPPORTED).header("content-type", "text/plain"),
        row("a form-encoded login", &anon, "POST", login_path, "username=anna&password=pw&device_name=x", UNSUPPORTED)
            .header("content-type", "application/x-www-form-urlencoded"),
        // Ids that lead nowhere.
        row("an unknown visit", anna, "POST", on(Uuid::now_v7(), "check-in"), "{}", NOT_FOUND),
        row("reading an unknown visit", anna, "GET", format!("{visits}/{}", Uuid::now_v7()), "", NOT_FOUND),
        row("a visit id that is not a UUID", anna, "POST", "/api/v1/visits/not-a-uuid/check-in", "{}", NOT_FOUND),
        row("a visit id with SQL in it", anna, "GET", "/api/v1/visits/1'%20or%20'1'='1", "", NOT_FOUND),
        row("a device id that is not a UUID", anna, "DELETE", "/api/v1/devices/abc", "", NOT_FOUND),
        row("another person's device", anna, "DELETE", format!("/api/v1/devices/{olgas_device}"), "", NOT_FOUND),
        row("a shift in another team", anna, "POST", "/api/v1/shift/start", json!({"team_id": other_team}).to_string(), NOT_FOUND),
        row("a start at another team's place", carl, "POST", visits, start(json!({"place_id": f.other_place.id.0})), NOT_FOUND),
        row("a partner from another team", carl, "POST", visits, start(json!({"partners": [{"person_id": f.olga.id(), "role": "observer"}]})), NOT_FOUND),
        row("an unknown colleague to tell", carl, "POST", visits, start(json!({"tell_colleague_id": Uuid::now_v7()})), NOT_FOUND),
        row("another team reads a visit", olga, "GET", format!("{visits}/{visit}"), "", NOT_FOUND),
        row("another team checks in", olga, "POST", &check_in, "{}", NOT_FOUND),
        row("checking out of another team's visit", anna, "POST", on(other, "check-out"), pin(PIN), NOT_FOUND),
        row("an unknown route", anna, "GET", "/api/v1/nope", "", NOT_FOUND),
        row("an unknown action on a visit", anna, "POST", on(visit, "teleport"), "{}", NOT_FOUND),
        row("API version 2", anna, "GET", "/api/v2/me", "", NOT_FOUND),
        // Someone else's visit in the same team; a role that may not.
        row("bo checks in on anna's visit", bo, "POST", &check_in, "{}", NOT_PARTICIPANT),
        row("bo extends anna's visit", bo, "POST", &extend, r#"{"minutes":10}"#, NOT_PARTICIPANT),
        row("bo checks out of anna's visit", bo, "POST", &check_out, pin(PIN), NOT_PARTICIPANT),
        row("a worker approves a lone visit", bo, "POST", "/api/v1/lone-approvals",
            json!({"worker_id": f.carl.id(), "place_id": f.home.id.0}).to_string(), (403, "forbidden")),
        // Not signed in.
        row("no token", &anon, "GET", me, "", UNAUTHORIZED),
        row("no token on a check-in", &anon, "POST", &check_in, "{}", UNAUTHORIZED),
        row("no token, with an Idempotency-Key", &anon, "POST", &check_in, "{}", UNAUTHORIZED).header("idempotency-key", "anon-1"),
        row("a garbage token", &garbage, "GET", me, "", UNAUTHORIZED),
        row("a garbage token on SOS", &garbage, "POST", sos, "{}", UNAUTHORIZED),
        row("an empty bearer", &anon, "GET", me, "", UNAUTHORIZED).header("authorization", "Bearer "),
        row("basic authorization", &anon, "GET", me, "", UNAUTHORIZED).header("authorization", "Basic YW5uYTpwdw=="),
        row("a token with non-ASCII bytes", &anon, "GET", me, "", UNAUTHORIZED).header("authorization", "Bearer токен"),
        row("a revoked token", &revoked, "GET", me, "", UNAUTHORIZED),
        row("a revoked token on check-in", &revoked, "POST", &check_in, "{}", UNAUTHORIZED),
        row("an expired token", &expired, "GET", me, "", UNAUTHORIZED),
        row("an expired token on SOS", &expired, "POST", sos, "{}", UNAUTHORIZED),
        row("a wrong password", &anon, "POST", login_path, login(json!({"password": "nope"})), UNAUTHORIZED),
        row("a username in Cyrillic", &anon, "POST", login_path, login(json!({"username": "анна"})), UNAUTHORIZED),
        row("a username with a Cyrillic а", &anon, "POST", login_path, login(json!({"username": "\u{430}nna"})), UNAUTHORIZED),
        // Too much, too little, or text that cannot be stored.
        row("a 100 KiB lone_reason", carl, "POST", visits, start(json!({"lone_reason": big})), BODY_TOO_LARGE),
        row("a 100 KiB body with an Idempotency-Key", carl, "POST", visits, start(json!({"lone_reason": big})), BODY_TOO_LARGE)
            .header("idempotency-key", "big-1"),
        row("a 600-character lone_reason", carl, "POST", visits, start(json!({"lone_reason": "x".repeat(600)})), INVALID_INPUT),
        row("a lone_reason of 501 Cyrillic letters", carl, "POST", visits, start(json!({"lone_reason": "ж".repeat(501)})), INVALID_INPUT),
        row("eleven partners", carl, "POST", visits, start(json!({"partners": eleven})), INVALID_INPUT),
        row("an answer id of 65 bytes", carl, "POST", visits, start(json!({"answers": {"q".repeat(65): true}})), INVALID_INPUT),
        row("an empty username", &anon, "POST", login_path, login(json!({"username": ""})), INVALID_INPUT),
        row("a username of spaces", &anon, "POST", login_path, login(json!({"username": "   "})), INVALID_INPUT),
        row("a username of 65 characters", &anon, "POST", login_path, login(json!({"username": "a".repeat(65)})), INVALID_INPUT),
        row("an empty password", &anon, "POST", login_path, login(json!({"password": ""})), INVALID_INPUT),
        row("a password of 1025 bytes", &anon, "POST", login_path, login(json!({"password": "p".repeat(1025)})), INVALID_INPUT),
        row("an empty device name", &anon, "POST", login_path, login(json!({"device_name": " "})), INVALID_INPUT),
        row("a device name of 101 characters", &anon, "POST", login_path, login(json!({"device_name": "x".repeat(101)})), INVALID_INPUT),
        row("a NUL character in a username", &anon, "POST", login_path, login(json!({"username": "anna\u{0}"})), INVALID_INPUT),
        row("a NUL character in a device name", &anon, "POST", login_path, login(json!({"device_name": "phone\u{0}"})), INVALID_INPUT),
        row("a NUL character in a lone_reason", carl, "POST", visits,
            start(json!({"answers": high_risk, "lone_reason": "alone\u{0}"})), INVALID_INPUT),
        // Positions and places.
        row("latitude 91 on check-in", anna, "POST", &check_in, r#"{"position":{"lat":91,"lon":10.2}}"#, INVALID_INPUT),
        row("longitude 181 on SOS", anna, "POST", sos, r#"{"position":{"lat":56.1,"lon":181}}"#, INVALID_INPUT),
        row("latitude -90.5 on start", carl, "POST", visits, start(json!({"position": {"lat": -90.5, "lon": 0}})), INVALID_INPUT),
        row("places near latitude 200", anna, "GET", near("lat=200&lon=10.2"), "", INVALID_INPUT),
        row("places near latitude NaN", anna, "GET", near("lat=NaN&lon=10.2"), "", INVALID_INPUT),
        row("places near latitude abc", anna, "GET", near("lat=abc&lon=10.2"), "", INVALID_QUERY),
        row("places near without lon", anna, "GET", near("lat=56.1"), "", INVALID_QUERY),
        row("places near, an unknown parameter", anna, "GET", near("lat=56.1&lon=10.2&team=x"), "", INVALID_QUERY),
        row("places within 0 m", anna, "GET", near("lat=56.1&lon=10.2&radius_m=0"), "", INVALID_INPUT),
        row("places within -5 m", anna, "GET", near("lat=56.1&lon=10.2&radius_m=-5"), "", INVALID_INPUT),
        row("places within 100 km", anna, "GET", near("lat=56.1&lon=10.2&radius_m=100000"), "", INVALID_INPUT),
        // The phone's clock.
        row("client_time a day ahead", anna, "POST", &check_in, at(Duration::days(1)), CLOCK_SKEW),
        row("client_time three days behind", anna, "POST", &check_in, at(Duration::days(-3)), CLOCK_SKEW),
        row("client_time in the year 9999 on SOS", anna, "POST", sos, r#"{"client_time":"9999-12-31T23:59:59Z"}"#, CLOCK_SKEW),
        row("client_time in 1970 on start", carl, "POST", visits, start(json!({"client_time": "1970-01-01T00:00:00Z"})), CLOCK_SKEW),
        // Numbers and choices the policy refuses.
        row("planned_minutes 0", carl, "POST", visits, start(json!({"planned_minutes": 0})), (422, "bad-duration")),
        row("planned_minutes above the maximum", carl, "POST", visits, start(json!({"planned_minutes": 241})), (422, "bad-duration")),
        row("an unknown risk question", carl, "POST", visits, start(json!({"answers": unknown_question})), (422, "unknown-question")),
        row("myself as my partner", carl, "POST", visits,
            start(json!({"partners": [{"person_id": f.carl.id(), "role": "observer"}]})), (422, "duplicate-participant")),
        row("extend by 100000 minutes", anna, "POST", &extend, r#"{"minutes":100000}"#, (422, "too-long")),
        row("extend by 0 minutes", anna, "POST", &extend, r#"{"minutes":0}"#, (422, "too-long")),
        // Other scripts where text is not free.
        row("a PIN in Arabic-Indic digits", anna, "POST", &check_out, pin("١٢٣٤"), WRONG_PIN),
        row("a PIN in full-width digits", anna, "POST", &check_out, pin("１２３４"), WRONG_PIN),
        row("no PIN", anna, "POST", &check_out, "{}", WRONG_PIN),
        row("an Idempotency-Key in Cyrillic", anna, "POST", &check_in, "{}", KEY_INVALID).header("idempotency-key", "ключ-1"),
        row("an Idempotency-Key with a space", anna, "POST", &check_in, "{}", KEY_INVALID).header("idempotency-key", "key 1"),
        row("an empty Idempotency-Key", anna, "POST", &check_in, "{}", KEY_INVALID).header("idempotency-key", ""),
        row("an Idempotency-Key of 256 characters", anna, "POST", &check_in, "{}", KEY_INVALID).header("idempotency-key", &"k".repeat(256)),
        // A bad request under a key is answered, and replayed, as a problem.
        row("malformed JSON with an Idempotency-Key", anna, "POST", &check_in, "{", MALFORMED_JSON).header("idempotency-key", "bad-1"),
        row("the same again, replayed", anna, "POST", &check_in, "{", MALFORMED_JSON).header("idempotency-key", "bad-1"),
        // Methods.
        row("PUT /api/v1/visits", anna, "PUT", visits, start(json!({})), METHOD_NOT_ALLOWED),
        row("DELETE /api/v1/me", anna, "DELETE", me, "", METHOD_NOT_ALLOWED),
        row("GET a check-in", anna, "GET", &check_in, "", METHOD_NOT_ALLOWED),
    ];

    let seen = Seen {
        visits: vec![VisitId(visit), VisitId(other)],
        people: [&f.anna, &f.bo, &f.carl, &f.sofie, &f.olga]
            .map(|m| m.person.id)
            .to_vec(),
    };
    let mut failures = Vec::new();
    for r in rows {
        failures.extend(r.check(&app, &seen).await);
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

async fn free_text_in_any_script_is_kept(store: Arc<dyn Store>) {
    let (app, f) = ready(store).await;
    let reasons = [
        (&f.anna, "  Знаю його три роки; він чекає на мене.\n"),
        (&f.bo, "\tأعرفه منذ سنوات، وهو ينتظرني. "),
    ];
    for (member, reason) in reasons {
        let mut req = start_request(VisitKind::DropIn, f.drop_in.id.0, &["violence_known"]);
        let refused = member
            .phone
            .start_visit(&req)
            .await
            .expect_err("alone at high risk needs a reason");
        assert_eq!(
            refused.problem().and_then(|p| p.reason.as_deref()),
            Some("lone-reason-required")
        );
        req.lone_reason = Some(reason.into());
        let v = member
            .phone
            .start_visit(&req)
            .await
            .expect("a written reason is enough");
        assert_eq!(
            (v.risk_level, v.lone_reason.as_deref()),
            (RiskLevel::High, Some(reason.trim()))
        );
        let stored = app
            .engine
            .store
            .visit(VisitId(v.id))
            .await
            .expect("the stored visit")
            .value;
        assert_eq!(stored.lone_reason.as_deref(), Some(reason.trim()));
    }
    let login = app
        .client()
        .login("carl", "pw", " Телефон Карла ")
        .await
        .expect("carl signs in");
    let devices = app.engine.store.devices(f.carl.person.id).await.expect("devices");
    assert!(
        devices
            .iter()
            .any(|d| d.id == login.device_id && d.name == "Телефон Карла"),
        "{devices:?}"
    );
}

both! {
    bad_input => bad_input_is_refused_with_a_problem_and_changes_nothing,
    non_latin_free_text => free_text_in_any_script_is_kept,
}
