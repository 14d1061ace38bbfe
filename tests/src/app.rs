//! `spawn_app`: the real router on port 0, on a real database, with a manual clock.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use makker_domain::geo::{Position, Shape};
use makker_domain::place::{Place, PlaceKind, Warning, WarningKind};
use makker_domain::policy::Policy;
use makker_domain::text::Lang;
use makker_domain::{PlaceId, Role, TeamId, WarningId};
use makker_engine::clock::ManualClock;
use makker_engine::{Engine, NewPersonInput};
use makker_http::AppState;
use makker_http::webhooks::Webhooks;
use makker_mobile_api::client::Client;
use makker_store::{Person, Store, Team};
use tokio::sync::oneshot;
use uuid::Uuid;

pub const PIN: &str = "1234";
/// The SMS webhooks' shared secret (46elks, GatewayAPI) and Twilio auth token in tests.
pub const WEBHOOK_SECRET: &str = "test-webhook-secret";
pub const TWILIO_TOKEN: &str = "test-twilio-token";
pub const DURESS_PIN: &str = "9876";

/// A running server. Dropping it stops the server.
pub struct TestApp {
    pub base: String,
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    /// The server's state (its live hub included).
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The VAPID key of the tests (RFC 8291 §5's application server key) and its subject.
pub const VAPID_PRIVATE: &str = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw";
pub const VAPID_SUBJECT: &str = "mailto:drift@makker.dk";

pub fn test_vapid() -> makker_notify::push::VapidConfig {
    makker_notify::push::VapidConfig::parse(VAPID_PRIVATE, VAPID_SUBJECT)
        .expect("the test VAPID key is valid")
}

/// The time every test starts at: a Monday afternoon in Copenhagen.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 13, 0, 0).unwrap()
}

/// Serves the real router on 127.0.0.1:0 over `store`, with the default policy.
pub async fn spawn_app(store: Arc<dyn Store>) -> TestApp {
    spawn_app_with(store, Policy::default()).await
}

/// Serves the real router on 127.0.0.1:0 over `store`, under `policy`.
pub async fn spawn_app_with(store: Arc<dyn Store>, policy: Policy) -> TestApp {
    spawn_app_configured(store, policy, |_, state| state).await
}

/// [`spawn_app_with`], with the state changed by `configure` (given the app's base URL) before
/// it serves: e.g. single sign-on.
pub async fn spawn_app_configured(
    store: Arc<dyn Store>,
    policy: Policy,
    configure: impl FnOnce(&str, AppState) -> AppState,
) -> TestApp {
    let clock = Arc::new(ManualClock::new(start_time()));
    let mut engine = Engine::new(store, Arc::new(policy), clock.clone());
    Arc::make_mut(&mut engine.settings).push_public_key = Some(test_vapid().key.public_key().to_owned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let base = format!("http://{}", listener.local_addr().expect("a local address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let webhooks = Webhooks::new(&base, Some(WEBHOOK_SECRET), Some(TWILIO_TOKEN));
    let state = configure(&base, AppState::new(engine.clone(), webhooks));
    let served = state.clone();
    tokio::spawn(async move {
        let shutdown = async {
            let _ = stopped.await;
        };
        makker_http::launch(listener, served, shutdown)
            .await
            .expect("the server runs");
    });
    TestApp {
        base,
        engine,
        clock,
        state,
        stop: Some(stop),
    }
}

/// A person in the fixture with a signed-in phone.
pub struct Member {
    pub person: Person,
    pub phone: Client,
}

impl Member {
    pub fn id(&self) -> Uuid {
        self.person.id.0
    }
}

/// A team in Aarhus with workers, a supervisor, places — and a second team to stay out of.
pub struct Fixture {
    pub team: Team,
    pub anna: Member,
    pub bo: Member,
    pub carl: Member,
    pub sofie: Member,
    pub lars: Member,
    pub olga: Member,
    pub park: Place,
    pub home: Place,
    pub drop_in: Place,
    pub dog_home: Place,
    pub other_place: Place,
}

impl Fixture {
    /// Anna starts a drop-in visit at the drop-in centre, from her phone.
    pub async fn anna_at_the_drop_in(&self) -> makker_mobile_api::VisitView {
        self.anna
            .phone
            .start_visit(&start_request(
                makker_domain::visit::VisitKind::DropIn,
                self.drop_in.id.0,
                &[],
            ))
            .await
            .unwrap()
    }
}

impl TestApp {
    /// A deadline loop for this app (tests tick it by hand; a second one is a second replica).
    pub fn scheduler(&self) -> makker_engine::scheduler::Scheduler {
        makker_engine::scheduler::Scheduler::new(self.engine.clone())
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    pub async fn team(&self, name: &str) -> Team {
        let team = Team {
            id: TeamId(Uuid::now_v7()),
            name: name.into(),
            time_zone: "Europe/Copenhagen".into(),
            created_at: self.engine.now(),
        };
        self.engine.store.create_team(&team).await.expect("create a team");
        team
    }

    /// A person with password "pw", PIN 1234, duress PIN 9876, signed in on a phone.
    pub async fn member(&self, username: &str, role: Role, team: &Team) -> Member {
        let input = NewPersonInput {
            username: username.into(),
            display_name: username.into(),
            role,
            teams: vec![team.id],
            phone: Some(format!(
                "+4520{:06}",
                username.bytes().map(u32::from).sum::<u32>()
            )),
            lang: Lang::Da,
            password: Some("pw".into()),
            pin: Some(PIN.into()),
            duress_pin: Some(DURESS_PIN.into()),
        };
        let person = self.engine.create_person(input).await.expect("create a person");
        let (token, _) = self
            .engine
            .issue_token(person.id, "test phone")
            .await
            .expect("issue a token");
        Member {
            person,
            phone: self.client().with_token(token),
        }
    }

    pub async fn place(&self, team: &Team, name: &str, kind: PlaceKind, lat: f64, lon: f64) -> Place {
        let place = Place {
            id: PlaceId(Uuid::now_v7()),
            team: team.id,
            name: name.into(),
            kind,
            shape: Shape::Circle {
                center: Position::parse(lat, lon).unwrap(),
                radius_m: 50.0,
            },
        };
        self.engine
            .store
            .create_place(&place, self.engine.now())
            .await
            .expect("create a place");
        place
    }

    pub async fn warn(&self, place: &Place, kind: WarningKind, days: i64) {
        let now = self.engine.now();
        let w = Warning {
            id: WarningId(Uuid::now_v7()),
            place: place.id,
            kind,
            text: "Hund".into(),
            created_at: now,
            expires_at: now + chrono::Duration::days(days),
        };
        self.engine.store.add_warning(&w).await.expect("add a warning");
    }

    pub async fn fixture(&self) -> Fixture {
        let team = self.team("Gadeteam Aarhus").await;
        let other = self.team("Gadeteam Odense").await;
        let dog_home = self
            .place(&team, "Hjem T-04", PlaceKind::Home, 56.1719, 10.2110)
            .await;
        self.warn(&dog_home, WarningKind::Dog, 180).await;
        Fixture {
            anna: self.member("anna", Role::Worker, &team).await,
            bo: self.member("bo", Role::Worker, &team).await,
            carl: self.member("carl", Role::Worker, &team).await,
            sofie: self.member("sofie", Role::Supervisor, &team).await,
            lars: self.member("lars", Role::Manager, &team).await,
            olga: self.member("olga", Role::Worker, &other).await,
            park: self
                .place(&team, "Mølleparken", PlaceKind::Park, 56.1563, 10.2038)
                .await,
            home: self
                .place(&team, "Hjem G-17", PlaceKind::Home, 56.1592, 10.1405)
                .await,
            drop_in: self
                .place(&team, "Værestedet", PlaceKind::DropIn, 56.1478, 10.2045)
                .await,
            other_place: self
                .place(&other, "Kongens Have", PlaceKind::Park, 55.4000, 10.3900)
                .await,
            dog_home,
            team,
        }
    }
}

/// Answers to every question of the default policy: "yes" to the ids given.
pub fn answers(yes: &[&str]) -> std::collections::BTreeMap<String, bool> {
    Policy::default()
        .assessment
        .questions
        .iter()
        .map(|q| (q.id.clone(), yes.contains(&q.id.as_str())))
        .collect()
}

/// An app with the fixture, and the Aarhus team's workers and supervisor on shift.
pub async fn ready(store: Arc<dyn Store>) -> (TestApp, Fixture) {
    let app = spawn_app(store).await;
    let f = app.fixture().await;
    for m in [&f.anna, &f.bo, &f.carl, &f.sofie] {
        m.phone.start_shift(None).await.expect("start a shift");
    }
    (app, f)
}

/// A lone 30-minute visit as the talker, with "yes" to the questions named.
pub fn start_request(
    kind: makker_domain::visit::VisitKind,
    place: Uuid,
    yes: &[&str],
) -> makker_mobile_api::StartVisitRequest {
    makker_mobile_api::StartVisitRequest {
        kind,
        place_id: place,
        planned_minutes: 30,
        role: makker_domain::visit::ParticipantRole::Talker,
        partners: vec![],
        answers: Some(answers(yes)),
        lone_reason: None,
        lone_approval_id: None,
        tell_colleague_id: None,
        client_time: None,
        position: None,
    }
}
