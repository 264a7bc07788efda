//! The listener of one HL7 feed: MLLP over TCP, and `POST /hl7` on the same port for
//! interface engines that speak HTTP. The first byte tells them apart: an HTTP request starts
//! with a method's capital letter; anything else is read as MLLP (whose frames start 0x0B,
//! perhaps after noise that is skipped).

use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::mllp::{Deframer, Event, frame};
use super::{ack, handle, header};
use crate::config::{Config, Feed};
use crate::store::Db;
use crate::time::Clock;

/// Connections served at once; more wait to be accepted (interface engines hold one or two).
const MAX_CONNECTIONS: usize = 32;
/// A connection that sends nothing for this long is closed (engines reconnect).
const IDLE: Duration = Duration::from_secs(300);
/// Time allowed to finish in-flight messages at shutdown.
const DRAIN: Duration = Duration::from_secs(10);
/// The media type of an ER7-encoded message over HTTP.
const HL7_MEDIA: &str = "x-application/hl7-v2+er7";

/// What each connection needs.
#[derive(Clone)]
struct Conn {
    db: Db,
    config: Arc<RwLock<Arc<Config>>>,
    /// The feed as configured at start (used if a reload removes it).
    feed: Arc<Feed>,
    clock: Clock,
    stop: CancellationToken,
}

impl Conn {
    /// The current config and this feed as it now reads (a reload may have fixed a location).
    fn current(&self) -> (Arc<Config>, Feed) {
        let config = Arc::clone(
            &self
                .config
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let feed = config
            .feeds
            .get(&self.feed.name)
            .cloned()
            .unwrap_or_else(|| (*self.feed).clone());
        (config, feed)
    }

    async fn handle(&self, bytes: &[u8]) -> Vec<u8> {
        let (config, feed) = self.current();
        handle(&self.db, &config, &feed, bytes, self.clock).await
    }

    fn max(&self) -> usize {
        self.feed.hl7().map_or(1024 * 1024, |h| h.max_message_bytes)
    }
}

/// Serves `feed` on `listener` until `stop` is cancelled; then stops accepting and lets
/// messages being applied finish (each still gets its ACK).
pub async fn serve(
    listener: TcpListener,
    db: Db,
    config: Arc<RwLock<Arc<Config>>>,
    feed: Feed,
    clock: Clock,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let conn = Conn {
        db,
        config,
        feed: Arc::new(feed),
        clock,
        stop: stop.clone(),
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stop.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(feed = %conn.feed.name, "HL7 accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let conn = conn.clone();
        tokio::spawn(async move {
            tracing::debug!(feed = %conn.feed.name, %peer, "HL7 connection");
            connection(&conn, stream).await;
            drop(permit);
        });
    }
    drop(listener);
    // Every connection holds a permit: all of them back means all are done.
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN, slots.acquire_many(all)).await;
    Ok(())
}

async fn connection(conn: &Conn, stream: TcpStream) {
    let mut first = [0u8; 1];
    let peeked = tokio::select! {
        p = tokio::time::timeout(IDLE, stream.peek(&mut first)) => p,
        () = conn.stop.cancelled() => return,
    };
    match peeked {
        Ok(Ok(1..)) if first[0].is_ascii_uppercase() => http(conn, stream).await,
        Ok(Ok(1..)) => mllp(conn, stream).await,
        _ => {}
    }
}

async fn mllp(conn: &Conn, mut stream: TcpStream) {
    let mut frames = Deframer::new(conn.max());
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = tokio::time::timeout(IDLE, stream.read(&mut buf)) => match r {
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => n,
                Err(_) => {
                    tracing::debug!(feed = %conn.feed.name, "HL7 connection idle; closed");
                    return;
                }
            },
            // Between messages only: a message being applied below is finished first.
            () = conn.stop.cancelled() => return,
        };
        for event in frames.push(&buf[..n]) {
            match event {
                Event::Frame(message) => {
                    let answer = conn.handle(&message).await;
                    if stream.write_all(&frame(&answer)).await.is_err() {
                        return;
                    }
                }
                Event::TooLong(head) => {
                    let text = String::from_utf8_lossy(&head).into_owned();
                    let h = header(&text);
                    tracing::warn!(feed = %conn.feed.name, message = %h.as_ref().map_or("", |h| h.control_id.as_str()), limit = conn.max(), "HL7 message too large; refused and connection closed");
                    let now = conn.clock.now();
                    let answer = ack::ack(
                        h.as_ref(),
                        ack::Code::Reject,
                        Some((
                            ack::ErrCode::Application,
                            &format!(
                                "the message is larger than feeds.{}.max_message_bytes ({} bytes); raise the limit or split the message",
                                conn.feed.name,
                                conn.max()
                            ),
                        )),
                        &format!("R{}", now.format("%Y%m%d%H%M%S%3f")),
                        now,
                    );
                    let _ = stream.write_all(&frame(answer.as_bytes())).await;
                    let _ = stream.shutdown().await;
                    return;
                }
            }
        }
    }
}

type Body = axum::body::Body;

async fn http(conn: &Conn, stream: TcpStream) {
    let service_conn = conn.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let conn = service_conn.clone();
        async move { Ok::<_, Infallible>(post(&conn, req).await) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    let served = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    let mut served = std::pin::pin!(served);
    tokio::select! {
        _ = &mut served => {}
        () = conn.stop.cancelled() => {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
}

async fn post(conn: &Conn, req: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Body> {
    let answer = |status: u16, kind: &str, body: Vec<u8>| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", kind)
            .body(Body::from(body))
            .unwrap_or_else(|_| hyper::Response::new(Body::empty()))
    };
    let text = "text/plain; charset=utf-8";
    if req.uri().path() != "/hl7" {
        return answer(
            404,
            text,
            b"not found: send HL7 messages to POST /hl7\n".to_vec(),
        );
    }
    if req.method() != hyper::Method::POST {
        return answer(405, text, b"send HL7 messages with POST\n".to_vec());
    }
    let max = conn.max();
    let Ok(body) = axum::body::to_bytes(Body::new(req.into_body()), max).await else {
        return answer(
                413,
                text,
                format!(
                    "the message is larger than feeds.{}.max_message_bytes ({max} bytes) or arrived broken\n",
                    conn.feed.name
                )
                .into_bytes(),
        );
    };
    let ack = conn.handle(&body).await;
    answer(200, HL7_MEDIA, ack)
}
