//! A handle on `tests/fakes/push_service.py`: starts it on a port of its own, drives its
//! control API, and stops it on drop. Shared by the notify crate's push tests and the
//! end-to-end suites (included with `#[path]`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use makker_notify::push::Subscription;
use serde_json::Value;

/// `tests/fakes/push_service.py`, on a port of its own, stopped on drop.
pub struct FakePushService {
    child: Child,
    pub origin: String,
    pub http: reqwest::Client,
}

impl FakePushService {
    pub fn start(subject: &str) -> FakePushService {
        let script = script();
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--port", "0", "--subject", subject])
            // It exits when its stdin closes, so it dies with this test process.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts the fake push service");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the fake prints its port");
        let port: u16 = line.trim().parse().unwrap_or_else(|_| {
            panic!(
                "the fake push service printed {line:?}, not its port; \
                 is `pip install http_ece py_vapid cryptography` done?"
            )
        });
        // The control client is a plain reqwest client, which needs a rustls provider.
        let _ = rustls::crypto::ring::default_provider().install_default();
        FakePushService {
            child,
            origin: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        }
    }

    pub async fn control(&self, path: &str, body: Option<Value>) -> reqwest::Response {
        let url = format!("{}/_fake/{path}", self.origin);
        let request = match body {
            Some(body) => self.http.post(url).json(&body),
            None => self.http.get(url),
        };
        request
            .send()
            .await
            .expect("the fake answers")
            .error_for_status()
            .expect("control call")
    }

    /// A new subscription; the fake made the browser's key pair and auth secret.
    pub async fn subscribe(&self) -> Subscription {
        self.control("subscriptions", Some(serde_json::json!({})))
            .await
            .json()
            .await
            .unwrap()
    }

    /// The fake answers the next push with `status` (and `Retry-After`).
    pub async fn answer_next(&self, status: u16, retry_after: Option<&str>) {
        let mut answer = serde_json::json!({ "status": status });
        if let Some(retry_after) = retry_after {
            answer["retry_after"] = retry_after.into();
        }
        self.control("answers", Some(answer)).await;
    }

    /// Every push the fake received, with what it decrypted and verified.
    pub async fn requests(&self) -> Vec<Value> {
        self.control("requests", None).await.json().await.unwrap()
    }
}

impl Drop for FakePushService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The script, found from whichever crate includes this file.
fn script() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("tests/fakes/push_service.py");
        if candidate.exists() {
            return candidate;
        }
        assert!(
            dir.pop(),
            "tests/fakes/push_service.py not found above {}",
            env!("CARGO_MANIFEST_DIR")
        );
    }
}
