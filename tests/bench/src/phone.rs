//! One phone's kept-alive HTTP/1.1 connection for its check-ins, written and read by hand.
//!
//! The bench shares the machine's two cores with the server and PostgreSQL, so every cycle the
//! load generator spends is one the server under test cannot use. The typed client (reqwest)
//! cost about 70 µs of CPU per check-in on session 19's machine, a fifth of the machine at
//! 5,000/s: a connection pool, URL parsing, a task hop per request and a full decoding of
//! the answer. This sends the same bytes a phone does (the request is built once, each send
//! with a fresh `Idempotency-Key` written into it in place, as the app's offline queue gives
//! every signal one) and reads the answer with `httparse`: its status, and a body that must be
//! whole JSON.

use anyhow::{Context, Result, anyhow, bail};
use makker_mobile_api::{EventRequest, IDEMPOTENCY_KEY};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

/// Response headers beyond these are an error: the server sends about a dozen.
const MAX_HEADERS: usize = 32;

/// A phone's check-in request, ready to send again and again on one connection.
pub struct CheckIns {
    addr: String,
    request: Vec<u8>,
    /// Where in `request` the key goes, if each send carries one.
    key_at: Option<usize>,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
}

impl CheckIns {
    /// Check-ins of `visit` with the device `token` at the server at `base` (`http://host:port`),
    /// each with an idempotency key of its own if `keyed`.
    pub fn new(base: &str, token: &str, visit: Uuid, body: &EventRequest, keyed: bool) -> Result<Self> {
        let addr = base
            .strip_prefix("http://")
            .context("the server's base is not http://")?
            .trim_end_matches('/')
            .to_owned();
        let body = serde_json::to_vec(body)?;
        let mut request = format!(
            "POST /api/v1/visits/{visit}/check-in HTTP/1.1\r\nhost: {addr}\r\n\
             authorization: Bearer {token}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n",
            body.len()
        )
        .into_bytes();
        let key_at = keyed.then(|| {
            request.extend_from_slice(format!("{IDEMPOTENCY_KEY}: ").as_bytes());
            let at = request.len();
            request.extend_from_slice(Uuid::nil().hyphenated().to_string().as_bytes());
            request.extend_from_slice(b"\r\n");
            at
        });
        request.extend_from_slice(b"\r\n");
        request.extend_from_slice(&body);
        Ok(CheckIns {
            addr,
            request,
            key_at,
            conn: None,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends one check-in and waits for its answer; Ok only for a 200 with a whole JSON body.
    /// A connection that failed is dropped, and the next check-in opens a new one.
    pub async fn send(&mut self) -> Result<()> {
        let result = self.exchange().await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn exchange(&mut self) -> Result<()> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(&self.addr).await?;
            stream.set_nodelay(true)?;
            self.conn = Some(stream);
        }
        if let Some(at) = self.key_at {
            let key = &mut self.request[at..at + uuid::fmt::Hyphenated::LENGTH];
            Uuid::new_v4().hyphenated().encode_lower(key);
        }
        let conn = self.conn.as_mut().expect("connected above");
        conn.write_all(&self.request).await?;
        self.buf.clear();
        let (status, head, length) = loop {
            if conn.read_buf(&mut self.buf).await? == 0 {
                bail!("the server closed the connection");
            }
            if let Some(parsed) = parse_head(&self.buf)? {
                break parsed;
            }
        };
        while self.buf.len() < head + length {
            if conn.read_buf(&mut self.buf).await? == 0 {
                bail!("the server closed the connection mid-answer");
            }
        }
        let body = &self.buf[head..head + length];
        if status != 200 {
            bail!("{status}: {}", String::from_utf8_lossy(body));
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(body).context("the answer is not JSON")?;
        Ok(())
    }
}

/// The status, the head's length and the body's `content-length`, once the head is whole.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(head) = response.parse(buf)? else {
        return Ok(None);
    };
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .ok_or_else(|| anyhow!("an answer without content-length"))?;
    let length = std::str::from_utf8(length.value)?.trim().parse()?;
    let status = response
        .code
        .ok_or_else(|| anyhow!("an answer without a status"))?;
    Ok(Some((status, head, length)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_parsed_once_whole() {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_head(&answer[..20]).unwrap(), None);
        let head = answer.len() - 2;
        assert_eq!(parse_head(answer).unwrap(), Some((200, head, 2)));
    }

    #[test]
    fn an_answer_without_a_length_is_refused() {
        let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(parse_head(answer).is_err());
    }
}
