//! A supervisor's board as the tests see it: the live stream (SSE) read event by event.

use std::time::Duration;

use serde_json::Value;

use crate::app::{Member, TestApp};

/// A board's stream, read event by event.
pub struct Board {
    response: reqwest::Response,
    buffer: String,
}

#[derive(Debug)]
pub struct Received {
    pub id: i64,
    pub kind: String,
    pub data: Value,
}

/// A device token for `m` (the board's bearer).
pub async fn token(app: &TestApp, m: &Member) -> String {
    app.engine.issue_token(m.person.id, "board").await.unwrap().0
}

impl Board {
    /// Opens the stream; the HTTP status when refused.
    pub async fn open(app: &TestApp, token: &str, last: Option<i64>) -> Result<Board, u16> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut req = reqwest::Client::new()
            .get(format!("{}/api/v1/live", app.base))
            .bearer_auth(token);
        if let Some(id) = last {
            req = req.header("last-event-id", id.to_string());
        }
        let response = req.send().await.unwrap();
        if response.status() != 200 {
            return Err(response.status().as_u16());
        }
        let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(kind.starts_with("text/event-stream"), "{kind}");
        Ok(Board {
            response,
            buffer: String::new(),
        })
    }

    /// The next event within `wait`; `None` when the stream ended or nothing came.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.next()).await.ok().flatten()
    }

    pub async fn next(&mut self) -> Option<Received> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim_start().to_owned())
                };
                // Keep-alive comments carry no event.
                if let (Some(id), Some(kind), Some(data)) = (field("id:"), field("event:"), field("data:")) {
                    return Some(Received {
                        id: id.parse().unwrap(),
                        kind,
                        data: serde_json::from_str(&data).unwrap(),
                    });
                }
            }
            let chunk = self.response.chunk().await.ok().flatten()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event, which must be of `kind`, within 5 s.
    pub async fn expect(&mut self, kind: &str) -> Received {
        let got = self
            .next_within(Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("no {kind} event within 5 s"));
        assert_eq!(got.kind, kind, "{got:?}");
        got
    }
}
