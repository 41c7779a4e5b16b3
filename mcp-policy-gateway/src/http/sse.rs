//! Response bodies: a whole JSON message, or a Server-Sent Events stream fed by a channel.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use tokio::sync::mpsc;

use crate::http::inflight::InFlight;

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

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> ResBody {
    Full::new(bytes.into()).boxed()
}

/// An empty body.
pub fn empty() -> ResBody {
    Empty::new().boxed()
}

/// One SSE event carrying one JSON-RPC message, with its event id when the stream can be
/// resumed. A message never holds a raw line break inside a JSON string (it would be
/// escaped), so any outside one is whitespace and becomes a space.
pub fn event(json: &[u8], id: Option<(u64, u64)>) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 48);
    if let Some((stream, n)) = id {
        out.extend_from_slice(format!("id: {stream}-{n}\n").as_bytes());
    }
    out.extend_from_slice(b"event: message\ndata: ");
    out.extend(json.iter().map(|b| match b {
        b'\n' | b'\r' => b' ',
        other => *other,
    }));
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// How many written events a POST stream keeps for a client that resumes it.
const REPLAY: usize = 32;
/// How many messages a parked stream holds for its client; past that it is dropped.
const PARKED_MAX: usize = 256;

/// An event of a resumable stream: its number, the message, whether it is the answer.
type Numbered = (u64, Bytes, bool);

/// What a POST stream left behind when its client went away before the answer, so that a
/// GET with `Last-Event-ID` can take it up: a task keeps reading its channel meanwhile (so
/// the session never waits on it), numbering what arrives.
pub struct Parked {
    handover: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Option<Resumed>>,
    pub since: std::time::Instant,
}

/// A parked stream, taken up again.
pub struct Resumed {
    rx: mpsc::Receiver<Msg>,
    /// Written before the client went away, and arrived since: in order.
    events: VecDeque<Numbered>,
    next: u64,
}

impl Parked {
    /// Parks a stream: `written`, its last events; `next`, the next event number.
    fn start(mut rx: mpsc::Receiver<Msg>, written: VecDeque<Numbered>, next: u64) -> Parked {
        let (handover, mut wanted) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut events = written;
            let mut next = next;
            loop {
                tokio::select! {
                    msg = rx.recv() => {
                        let Some(msg) = msg else { break };
                        let (bytes, last) = match msg {
                            Msg::Final(b) => (b, true),
                            Msg::Other(b) => (b, false),
                        };
                        events.push_back((next, bytes, last));
                        next += 1;
                        if events.len() > PARKED_MAX + REPLAY {
                            return None;
                        }
                        if last {
                            break;
                        }
                    }
                    _ = &mut wanted => break,
                }
            }
            Some(Resumed { rx, events, next })
        });
        Parked {
            handover,
            task,
            since: std::time::Instant::now(),
        }
    }

    /// Takes the stream up again: what the client has not seen after event `after`.
    pub async fn resume(self, after: u64) -> Option<Resumed> {
        let _ = self.handover.send(());
        let mut resumed = self.task.await.ok()??;
        resumed.events.retain(|(n, _, _)| *n > after);
        Some(resumed)
    }
}

/// What keeps a stream parked for a while: the session it belongs to.
pub trait Parking: Send + Sync {
    /// Keeps the POST stream `stream`, whose client went away, for a GET that resumes it.
    fn park(&self, stream: u64, parked: Parked);
}

/// Where a resumable stream parks when its client goes away.
pub struct Resumable {
    /// The session it belongs to.
    pub session: std::sync::Weak<dyn Parking>,
    /// Its number in the session.
    pub stream: u64,
}

/// An SSE stream: the messages of a channel, until the final answer (a POST stream) or until
/// the channel closes (a GET stream: the session ended or the gateway is stopping).
pub struct Sse {
    /// Events to write before reading the channel (the first message; a resumed stream's).
    queued: VecDeque<Numbered>,
    rx: mpsc::Receiver<Msg>,
    done: bool,
    keepalive: Option<tokio::time::Interval>,
    /// A POST stream: its events carry ids, and it parks when its client goes away.
    resumable: Option<Resumable>,
    next: u64,
    /// The last events written (a resumable stream's).
    written: VecDeque<Numbered>,
    /// Counts the request as in flight while its stream is open.
    _guard: Option<InFlight>,
}

impl Sse {
    pub fn new(
        first: Option<Bytes>,
        rx: mpsc::Receiver<Msg>,
        keepalive: Option<Duration>,
        guard: Option<InFlight>,
    ) -> Sse {
        Sse {
            queued: first.map(|b| (0, b, false)).into_iter().collect(),
            rx,
            done: false,
            keepalive: keepalive.map(|every| {
                let mut interval =
                    tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                interval
            }),
            resumable: None,
            next: 1,
            written: VecDeque::new(),
            _guard: guard,
        }
    }

    /// Makes a POST stream resumable: its events get ids `STREAM-N`.
    pub fn resumable(mut self, resumable: Resumable) -> Sse {
        self.resumable = Some(resumable);
        self
    }

    /// A parked stream taken up by a GET with `Last-Event-ID`.
    pub fn resumed(resumed: Resumed, resumable: Resumable, keepalive: Duration) -> Sse {
        let mut sse = Sse::new(None, resumed.rx, Some(keepalive), None).resumable(resumable);
        sse.queued = resumed.events;
        sse.next = resumed.next;
        sse
    }

    fn write(&mut self, n: u64, bytes: Bytes, last: bool) -> Bytes {
        if last {
            self.done = true;
        }
        let Some(r) = &self.resumable else {
            return event(&bytes, None);
        };
        let framed = event(&bytes, Some((r.stream, n)));
        self.written.push_back((n, bytes, last));
        if self.written.len() > REPLAY {
            self.written.pop_front();
        }
        framed
    }
}

impl Drop for Sse {
    fn drop(&mut self) {
        // The client went away before the answer: park the stream for a GET that resumes it.
        if self.done || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let Some(r) = self.resumable.take() else {
            return;
        };
        let Some(session) = r.session.upgrade() else {
            return;
        };
        let (_, closed) = mpsc::channel(1);
        let rx = std::mem::replace(&mut self.rx, closed);
        let mut written = std::mem::take(&mut self.written);
        written.extend(std::mem::take(&mut self.queued));
        session.park(r.stream, Parked::start(rx, written, self.next));
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
        if let Some((n, bytes, last)) = this.queued.pop_front() {
            let framed = this.write(n, bytes, last);
            return Poll::Ready(Some(Ok(Frame::data(framed))));
        }
        if this.done {
            return Poll::Ready(None);
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(msg)) => {
                let (bytes, last) = match msg {
                    Msg::Final(b) => (b, true),
                    Msg::Other(b) => (b, false),
                };
                let n = this.next;
                this.next += 1;
                let framed = this.write(n, bytes, last);
                Poll::Ready(Some(Ok(Frame::data(framed))))
            }
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
        self.done && self.queued.is_empty()
    }
}
