//! A WebSocket client for the channel protocols (tokio-tungstenite's client handshake):
//! binary messages whose first byte is the channel, or base64 text messages.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub struct Client {
    pub ws: WebSocketStream<TcpStream>,
    pub protocol: String,
    pub binary: bool,
    /// Messages received per channel (in order), and the concatenated data.
    pub messages: HashMap<u8, Vec<Vec<u8>>>,
    pub closed: bool,
}

/// Connect offering `protocols`; the client, or the HTTP status of the refusal.
pub async fn connect(url: &str, protocols: &[&str]) -> Result<Client, u16> {
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut req = ws_url.into_client_request().unwrap();
    if !protocols.is_empty() {
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(&protocols.join(", ")).unwrap(),
        );
    }
    let (addr, _) = super::spdy::split_url(url);
    let tcp = TcpStream::connect(&addr).await.unwrap();
    match tokio_tungstenite::client_async(req, tcp).await {
        Ok((ws, resp)) => {
            let protocol = resp
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let binary = !protocol.contains("base64");
            Ok(Client {
                ws,
                protocol,
                binary,
                messages: HashMap::new(),
                closed: false,
            })
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("websocket connect: {e}"),
    }
}

impl Client {
    pub async fn send(&mut self, channel: u8, data: &[u8]) {
        let m = if self.binary {
            let mut b = vec![channel];
            b.extend_from_slice(data);
            Message::Binary(b.into())
        } else {
            let s = format!(
                "{}{}",
                char::from(b'0' + channel),
                base64::engine::general_purpose::STANDARD.encode(data)
            );
            Message::Text(s.into())
        };
        self.ws.send(m).await.unwrap();
    }

    /// Read one message; false at the end.
    pub async fn step(&mut self) -> bool {
        match self.ws.next().await {
            Some(Ok(Message::Binary(b))) if !b.is_empty() => {
                self.messages.entry(b[0]).or_default().push(b[1..].to_vec());
                true
            }
            Some(Ok(Message::Text(t))) if !t.is_empty() => {
                let ch = t.as_bytes()[0] - b'0';
                let data = base64::engine::general_purpose::STANDARD
                    .decode(&t.as_str()[1..])
                    .unwrap();
                self.messages.entry(ch).or_default().push(data);
                true
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                self.closed = true;
                false
            }
            Some(Ok(_)) => true,
        }
    }

    pub async fn run_to_end(&mut self) {
        let r = tokio::time::timeout(Duration::from_secs(60), async {
            while self.step().await {}
        })
        .await;
        assert!(r.is_ok(), "the server did not end the session in 60 s");
    }

    pub async fn until_contains(&mut self, ch: u8, needle: &str) {
        let r = tokio::time::timeout(Duration::from_secs(30), async {
            while !self.text(ch).contains(needle) {
                assert!(self.step().await, "connection ended before {needle:?}");
            }
        })
        .await;
        assert!(
            r.is_ok(),
            "no {needle:?} on channel {ch}: {:?}",
            self.text(ch)
        );
    }

    /// Everything received on `ch`.
    pub fn bytes(&self, ch: u8) -> Vec<u8> {
        self.messages
            .get(&ch)
            .map(|v| v.concat())
            .unwrap_or_default()
    }

    pub fn text(&self, ch: u8) -> String {
        String::from_utf8_lossy(&self.bytes(ch)).into_owned()
    }
}
