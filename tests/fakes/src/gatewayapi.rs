//! A local fake of GatewayAPI's SMS API (`POST /rest/mtsms`, token auth, JSON), speaking its
//! documented request and answer shapes. It records what it receives and answers what the
//! test scripts: the next statuses (e.g. 500, 429 with `Retry-After`), then 200. It can answer
//! after a delay, as a slow provider does, and records when each message arrived (the
//! benchmarks measure escalation latency up to that moment). An [`Outage`] lasts until ended:
//! down (connections dropped and reset), or every request answered 500 or 429.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

pub const TOKEN: &str = "fake-gatewayapi-token";

/// A provider outage, until [`FakeGatewayApi::set_outage`] ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Unreachable: new connections are dropped at once and open ones are reset.
    Down,
    /// Every request answered with this status (e.g. 500, 503), and a `Retry-After` in
    /// seconds when given (e.g. 429).
    Status(u16, Option<u64>),
}

#[derive(Default)]
struct Inner {
    outage: Option<Outage>,
    /// Requests answered with an outage status or cut off, while the outage lasted.
    refused: usize,
    /// Accepted messages with the wall-clock time their request arrived.
    received: Vec<(SystemTime, Value)>,
    script: VecDeque<(u16, Option<u64>)>,
    next_id: u64,
    delay: Duration,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: usize,
    most_at_once: usize,
}

#[derive(Clone, Default)]
pub struct FakeGatewayApi {
    inner: Arc<Mutex<Inner>>,
    /// Read by the listener and every connection: set while [`Outage::Down`].
    down: Arc<AtomicBool>,
    pub base_url: String,
}

impl FakeGatewayApi {
    /// Starts on 127.0.0.1:0.
    pub async fn start() -> FakeGatewayApi {
        let mut fake = FakeGatewayApi::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        fake.base_url = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/rest/mtsms", post(mtsms))
            .with_state(fake.clone());
        let gate = Gate {
            listener,
            fake: fake.clone(),
        };
        tokio::spawn(async move { axum::serve(gate, app).await.unwrap() });
        fake
    }

    /// Starts (`Some`) or ends (`None`) an outage.
    pub fn set_outage(&self, outage: Option<Outage>) {
        self.down.store(outage == Some(Outage::Down), Ordering::SeqCst);
        self.inner.lock().unwrap().outage = outage;
    }

    /// How many requests (or connections, while down) the outages turned away.
    pub fn refused(&self) -> usize {
        self.inner.lock().unwrap().refused
    }

    fn cut_off(&self) -> bool {
        let down = self.down.load(Ordering::SeqCst);
        if down {
            self.inner.lock().unwrap().refused += 1;
        }
        down
    }

    /// The next answers, in order: a status and an optional `Retry-After` in seconds.
    pub fn script(&self, answers: &[(u16, Option<u64>)]) {
        self.inner.lock().unwrap().script.extend(answers.iter().copied());
    }

    /// Answers every request `delay` after it arrived (zero, the default, answers at once).
    pub fn set_delay(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    /// Accepted messages' bodies, in order.
    pub fn received(&self) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .received
            .iter()
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// The most requests that were being answered at once.
    pub fn most_at_once(&self) -> usize {
        self.inner.lock().unwrap().most_at_once
    }

    /// Accepted messages with the wall-clock time each request arrived, in order.
    pub fn received_at(&self) -> Vec<(SystemTime, Value)> {
        self.inner.lock().unwrap().received.clone()
    }
}

async fn mtsms(State(fake): State<FakeGatewayApi>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let arrived = SystemTime::now();
    let _answering = Answering::new(&fake);
    let delay = fake.inner.lock().unwrap().delay;
    let response = answer(&fake, &headers, body, arrived);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

/// A request being answered, counted until answered (or its connection dropped).
struct Answering<'a>(&'a FakeGatewayApi);

impl<'a> Answering<'a> {
    fn new(fake: &'a FakeGatewayApi) -> Self {
        let mut inner = fake.inner.lock().unwrap();
        inner.in_flight += 1;
        inner.most_at_once = inner.most_at_once.max(inner.in_flight);
        Answering(fake)
    }
}

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.inner.lock().unwrap().in_flight -= 1;
    }
}

/// The answer to one request, recording it when accepted.
fn answer(fake: &FakeGatewayApi, headers: &HeaderMap, body: Value, arrived: SystemTime) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Token {TOKEN}")) {
        return (StatusCode::UNAUTHORIZED, Json(json!({"message": "bad token"}))).into_response();
    }
    let well_formed = body["message"].is_string()
        && body["recipients"][0]["msisdn"].is_number()
        && body["userref"].is_string();
    if !well_formed {
        return (StatusCode::BAD_REQUEST, Json(json!({"message": "bad request"}))).into_response();
    }
    let mut inner = fake.inner.lock().unwrap();
    let outage = match inner.outage {
        Some(Outage::Status(status, retry_after)) => Some((status, retry_after)),
        _ => None,
    };
    if outage.is_some() {
        inner.refused += 1;
    }
    if let Some((status, retry_after)) = outage.or_else(|| inner.script.pop_front()) {
        let mut response = (
            StatusCode::from_u16(status).unwrap(),
            Json(json!({"message": "scripted"})),
        )
            .into_response();
        if let Some(s) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", s.to_string().parse().unwrap());
        }
        return response;
    }
    inner.next_id += 1;
    let id = inner.next_id;
    inner.received.push((arrived, body));
    Json(json!({"ids": [id], "usage": {"total_cost": 0.0}})).into_response()
}

/// The fake's listener: while the fake is down it drops every new connection at once.
struct Gate {
    listener: TcpListener,
    fake: FakeGatewayApi,
}

impl axum::serve::Listener for Gate {
    type Io = Gated;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Gated, SocketAddr) {
        loop {
            let Ok((stream, addr)) = self.listener.accept().await else {
                continue;
            };
            if !self.fake.cut_off() {
                let fake = self.fake.clone();
                return (Gated { stream, fake }, addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// A connection that is reset on its next read or write while the fake is down (a client's
/// kept-alive connection must fail too, not only new ones).
struct Gated {
    stream: TcpStream,
    fake: FakeGatewayApi,
}

fn reset() -> io::Error {
    io::Error::from(io::ErrorKind::ConnectionReset)
}

impl AsyncRead for Gated {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.fake.cut_off() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Gated {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.fake.down.load(Ordering::SeqCst) {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
