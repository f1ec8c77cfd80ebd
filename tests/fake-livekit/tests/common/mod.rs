//! A minimal hand-written worker client for the fake server's tests.
#![allow(dead_code, deprecated)]

use std::time::Duration;

use fake_livekit::livekit_protocol::{
    self as proto, JobType, RegisterWorkerRequest, RegisterWorkerResponse, ServerMessage,
    WorkerMessage, server_message, worker_message,
};
use futures::{SinkExt, StreamExt};
use livekit_api::access_token::{AccessToken, VideoGrants};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const T: Duration = Duration::from_secs(5);

pub fn worker_token(key: &str, secret: &str) -> String {
    AccessToken::with_api_key(key, secret)
        .with_grants(VideoGrants {
            agent: true,
            ..Default::default()
        })
        .to_jwt()
        .unwrap()
}

/// Connects to `url` (a full ws:// URL) with an optional bearer token.
pub async fn connect(url: &str, token: Option<&str>) -> Result<TestWorker, tungstenite::Error> {
    let mut req = url.into_client_request()?;
    if let Some(t) = token {
        req.headers_mut()
            .insert("Authorization", format!("Bearer {t}").parse().unwrap());
    }
    let (ws, _) = tokio::time::timeout(T, tokio_tungstenite::connect_async(req))
        .await
        .expect("connect timed out")?;
    Ok(TestWorker { ws, pings_seen: 0 })
}

/// The HTTP status of a refused upgrade.
pub fn http_status(err: tungstenite::Error) -> u16 {
    match err {
        tungstenite::Error::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

pub struct TestWorker {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub pings_seen: usize,
}

/// How a socket ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    CloseFrame(Option<u16>),
    NoCloseFrame,
}

impl TestWorker {
    pub async fn connect_to(server: &fake_livekit::FakeLiveKit) -> TestWorker {
        let c = server.config();
        connect(
            &format!("{}/agent", server.url()),
            Some(&worker_token(&c.api_key, &c.api_secret)),
        )
        .await
        .expect("upgrade refused")
    }

    pub async fn send(&mut self, m: worker_message::Message) {
        let msg = WorkerMessage { message: Some(m) };
        self.ws
            .send(Message::binary(msg.encode_to_vec()))
            .await
            .unwrap();
    }

    /// Next server message (control pings are counted and skipped).
    pub async fn recv(&mut self) -> Option<server_message::Message> {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("recv timed out")?;
            match frame.ok()? {
                Message::Binary(b) => return ServerMessage::decode(b.as_ref()).unwrap().message,
                Message::Ping(_) => self.pings_seen += 1,
                Message::Close(_) => return None,
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }

    /// Waits for the socket to end; reports whether a close frame came.
    pub async fn ended(&mut self, within: Duration) -> Ended {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("socket still open");
            match frame {
                Some(Ok(Message::Close(f))) => {
                    return Ended::CloseFrame(f.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Ended::NoCloseFrame,
            }
        }
    }

    pub async fn register_with(&mut self, req: RegisterWorkerRequest) -> RegisterWorkerResponse {
        self.send(worker_message::Message::Register(req)).await;
        match self.recv().await {
            Some(server_message::Message::Register(r)) => r,
            other => panic!("expected register response, got {other:?}"),
        }
    }

    pub async fn register(&mut self, agent_name: &str) -> RegisterWorkerResponse {
        self.register_with(RegisterWorkerRequest {
            r#type: JobType::JtRoom as i32,
            agent_name: agent_name.into(),
            version: "test-0.1".into(),
            allowed_permissions: Some(proto::ParticipantPermission {
                can_publish: true,
                can_subscribe: true,
                can_publish_data: true,
                can_update_metadata: true,
                can_subscribe_metrics: true,
                agent: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
    }

    pub async fn expect_offer(&mut self) -> proto::Job {
        match self.recv().await {
            Some(server_message::Message::Availability(a)) => a.job.expect("offer without job"),
            other => panic!("expected an offer, got {other:?}"),
        }
    }

    pub async fn answer(&mut self, job_id: &str, available: bool, terminate: bool) {
        self.send(worker_message::Message::Availability(
            proto::AvailabilityResponse {
                job_id: job_id.into(),
                available,
                terminate,
                participant_identity: format!("agent-{job_id}"),
                participant_name: "agent".into(),
                ..Default::default()
            },
        ))
        .await;
    }

    pub async fn update_status(&mut self, status: proto::WorkerStatus, load: f32) {
        self.send(worker_message::Message::UpdateWorker(
            proto::UpdateWorkerStatus {
                status: Some(status as i32),
                load,
                ..Default::default()
            },
        ))
        .await;
    }

    pub async fn update_job(&mut self, job_id: &str, status: proto::JobStatus) {
        self.send(worker_message::Message::UpdateJob(proto::UpdateJobStatus {
            job_id: job_id.into(),
            status: status as i32,
            error: String::new(),
        }))
        .await;
    }
}
