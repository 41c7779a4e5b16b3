//! Response bodies: a whole JSON message, or a Server-Sent Events stream fed by a channel.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use tokio::sync::mpsc;

/// The body type of every response.
pub type ResBody = BoxBody<Bytes, Infallible>;

/// One message for a client stream.
#[derive(Debug)]
pub enum Msg {
    /// The answer the stream exists for: sent, then the stream ends.
    Final(Bytes),
    /// Anything else (a server's request or notification, the gateway's elicitation).
    Other(Bytes),
}

pub fn full(bytes: impl Into<Bytes>) -> ResBody {
    Full::new(bytes.into()).boxed()
}

pub fn empty() -> ResBody {
    Empty::new().boxed()
}

/// One SSE event carrying one JSON-RPC message. A message never holds a raw line break inside
/// a JSON string (it would be escaped), so any outside one is whitespace and becomes a space.
pub fn event(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 24);
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend(json.iter().map(|b| match b {
        b'\n' | b'\r' => b' ',
        other => *other,
    }));
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// An SSE stream: the messages of a channel, until the final answer (a POST stream) or until
/// the channel closes (a GET stream: the session ended or the gateway is stopping).
pub struct Sse {
    first: Option<Bytes>,
    rx: mpsc::Receiver<Msg>,
    done: bool,
    keepalive: Option<tokio::time::Interval>,
    /// Counts the request as in flight while its stream is open.
    _guard: Option<super::InFlight>,
}

impl Sse {
    pub fn new(
        first: Option<Bytes>,
        rx: mpsc::Receiver<Msg>,
        keepalive: Option<Duration>,
        guard: Option<super::InFlight>,
    ) -> Sse {
        Sse {
            first,
            rx,
            done: false,
            keepalive: keepalive.map(|every| {
                let mut interval =
                    tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                interval
            }),
            _guard: guard,
        }
    }
}

impl Body for Sse {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(event(&first)))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(Msg::Final(b))) => {
                this.done = true;
                Poll::Ready(Some(Ok(Frame::data(event(&b)))))
            }
            Poll::Ready(Some(Msg::Other(b))) => Poll::Ready(Some(Ok(Frame::data(event(&b))))),
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => {
                if let Some(interval) = this.keepalive.as_mut()
                    && interval.poll_tick(cx).is_ready()
                {
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                        b": keepalive\n\n",
                    )))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.first.is_none()
    }
}
