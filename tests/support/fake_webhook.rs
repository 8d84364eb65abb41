//! A fake chat platform on 127.0.0.1: records every request (path with query, headers, JSON
//! body) and answers from a script of replies, then with a default reply.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::{Request, Response};
use serde_json::Value;

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query.
    pub path: String,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Received {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter.
    pub fn query(&self, name: &str) -> Option<String> {
        let u = url::Url::parse(&format!("http://x{}", self.path)).ok()?;
        u.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl Answer {
    /// `status` with `body`.
    pub fn new(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    script: VecDeque<Answer>,
    default: Option<Answer>,
}

/// The running fake.
pub struct FakeWebhook {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    state: Arc<Mutex<State>>,
}

impl FakeWebhook {
    /// Starts a fake answering `default` to every request.
    pub async fn start(default: Answer) -> FakeWebhook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, default)
    }

    /// Starts a fake on a given address (to come back on a port used before).
    pub async fn start_on(addr: std::net::SocketAddr, default: Answer) -> FakeWebhook {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        Self::serve(listener, default)
    }

    fn serve(listener: tokio::net::TcpListener, default: Answer) -> FakeWebhook {
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            default: Some(default),
            ..State::default()
        }));
        let st = state.clone();
        let ep = poem::endpoint::make(move |req: Request| {
            let st = st.clone();
            async move {
                let path = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let bytes = req.into_body().into_vec().await.unwrap_or_default();
                let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let answer = {
                    let mut s = st.lock().unwrap();
                    s.received.push(Received {
                        path,
                        headers,
                        body,
                    });
                    s.script.pop_front().or_else(|| s.default.clone()).unwrap()
                };
                let mut r = Response::builder()
                    .status(poem::http::StatusCode::from_u16(answer.status).unwrap());
                for (k, v) in &answer.headers {
                    r = r.header(k.as_str(), v.as_str());
                }
                r.body(answer.body)
            }
        });
        let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
        tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(ep).await;
        });
        FakeWebhook {
            base: format!("http://{addr}"),
            state,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Answers the next requests with these, in order, before the default.
    pub fn script(&self, answers: Vec<Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Waits (up to 10 s) until at least `n` requests arrived and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..1000 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} requests, got {}", self.received().len());
    }
}
