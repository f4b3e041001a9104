//! A `graphql-transport-ws` client over a real WebSocket.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::TestApp;

pub struct GqlSocket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection attempt ended when it did not get `connection_ack`.
#[derive(Debug)]
pub enum WsRefused {
    /// The HTTP upgrade was refused with this status.
    Handshake(u16),
    /// The server closed the socket with this code.
    Closed(u16),
}

impl TestApp {
    /// Opens a socket and authenticates in `connection_init`.
    pub async fn ws_connect(&self, credential: Option<&str>, origin: Option<&str>) -> Result<GqlSocket, WsRefused> {
        let url = self.address.replace("http://", "ws://") + "/graphql";
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
        if let Some(origin) = origin {
            request.headers_mut().insert("Origin", origin.parse().unwrap());
        }
        let (ws, _) = match tokio_tungstenite::connect_async(request).await {
            Ok(ok) => ok,
            Err(tokio_tungstenite::tungstenite::Error::Http(res)) => return Err(WsRefused::Handshake(res.status().as_u16())),
            Err(e) => panic!("websocket connect failed: {e}"),
        };
        let mut socket = GqlSocket { ws };
        let payload = credential.map_or(json!({}), |c| json!({ "authorization": format!("Bearer {c}") }));
        socket.send(json!({ "type": "connection_init", "payload": payload })).await;
        match socket.next_raw(Duration::from_secs(5)).await {
            Some(Ok(msg)) if msg["type"] == "connection_ack" => Ok(socket),
            Some(Err(code)) => Err(WsRefused::Closed(code)),
            other => panic!("unexpected reply to connection_init: {other:?}"),
        }
    }
}

impl GqlSocket {
    async fn send(&mut self, msg: Value) {
        self.ws.send(Message::Text(msg.to_string().into())).await.unwrap();
    }

    pub async fn subscribe(&mut self, id: &str, query: &str) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query } })).await;
    }

    pub async fn subscribe_with(&mut self, id: &str, query: &str, variables: Value) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } })).await;
    }

    /// The next protocol message (pings answered), `Err(close code)` when the
    /// server closed, `None` on timeout.
    async fn next_raw(&mut self, within: Duration) -> Option<Result<Value, u16>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next()).await.ok()??;
            match msg {
                Ok(Message::Text(text)) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if value["type"] == "ping" {
                        self.send(json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Some(Ok(value));
                }
                Ok(Message::Close(frame)) => return Some(Err(frame.map_or(1005, |f| u16::from(f.code)))),
                Ok(_) => continue,
                Err(_) => return Some(Err(1006)),
            }
        }
    }

    /// The next `next`/`error`/`complete` message, or `None` within `within`.
    pub async fn next_message(&mut self, within: Duration) -> Option<Value> {
        match self.next_raw(within).await {
            Some(Ok(v)) => Some(v),
            Some(Err(code)) => Some(json!({ "type": "closed", "code": code })),
            None => None,
        }
    }
}
