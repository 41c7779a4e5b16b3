//! Keep-alive connections to a remote server: dialing (TCP, TLS for `https://`), the pool of
//! idle ones shared by every session in front of the server, and driving a connection from
//! the task that uses it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use super::Target;
use crate::host::sync::lock;

pub(super) type Response = hyper::Response<hyper::body::Incoming>;

pub(super) type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;
type Io = tokio_util::either::Either<
    tokio::net::TcpStream,
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
>;
type Connection = hyper::client::conn::http1::Connection<hyper_util::rt::TokioIo<Io>, Full<Bytes>>;

/// A keep-alive connection to the server, driven by the task that uses it: a call's request
/// and answer cross no other task (hyper's client otherwise drives each connection in a task
/// of its own, a wake-up and a task switch each way).
pub(super) struct Upconn {
    pub(super) sender: Sender,
    pub(super) conn: Pin<Box<Connection>>,
}

/// Runs `fut` while `conn`'s reading and writing happen in the same task. An error when the
/// connection ended before `fut` did.
pub(super) async fn driving<F: Future>(
    conn: &mut Pin<Box<Connection>>,
    fut: F,
) -> Result<F::Output, String> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        match conn.as_mut().poll(cx) {
            // What the connection just read (an answer's head, its body) may have completed
            // `fut`: finish it in this poll, not in another poll of the whole task.
            Poll::Pending => fut.as_mut().poll(cx).map(Ok),
            // The connection is over: what it finished may still complete `fut`.
            Poll::Ready(ended) => match fut.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(Ok(out)),
                Poll::Pending => Poll::Ready(Err(match ended {
                    Ok(()) => "the server closed the connection".to_owned(),
                    Err(e) => e.to_string(),
                })),
            },
        }
    })
    .await
}

impl Upconn {
    /// Gives the connection to a task of its own (for a request whose answer is a long
    /// stream, read by whoever holds the returned sender).
    pub(super) fn detach(self) -> Sender {
        let conn = self.conn;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender
    }
}

/// Idle keep-alive connections to a server, shared by the sessions in front of it, each
/// with the event loop (thread) it was made on: a call takes one of its own loop's when it
/// can, so that its reads and writes wake no other thread.
#[derive(Default)]
pub struct Pool(Mutex<Vec<(std::thread::ThreadId, Upconn)>>);

impl Pool {
    /// Puts a connection whose answer was read to its end back, for this thread's loop.
    pub(super) fn give_back(&self, up: Upconn) {
        let mut pool = lock(&self.0);
        if pool.len() < POOL && !up.sender.is_closed() {
            pool.push((std::thread::current().id(), up));
        }
    }

    /// An idle connection, one made on this thread's loop when there is one (another loop's
    /// still beats a new connection: a connect costs more than a cross-thread wake-up).
    fn take(&self) -> Option<Upconn> {
        let here = std::thread::current().id();
        let mut pool = lock(&self.0);
        let at = pool
            .iter()
            .rposition(|(on, _)| *on == here)
            .or_else(|| pool.len().checked_sub(1))?;
        Some(pool.swap_remove(at).1)
    }
}

/// Idle connections kept at most (per `--upstream`): as many as calls were in flight at once,
/// from one session or many, up to this.
const POOL: usize = 64;

/// A connection from the pool (one that is still open and ready), or a new one.
pub(super) async fn connection(target: &Target) -> Result<Upconn, String> {
    loop {
        let pooled = target.pool.take();
        match pooled {
            Some(mut up) => {
                // A connection the server closed while it was idle (its end was read, as
                // when the server restarted) ends here, not under the call sent on it.
                let ended = std::future::poll_fn(|cx| Poll::Ready(up.conn.as_mut().poll(cx)))
                    .await
                    .is_ready();
                if !ended && let Ok(Ok(())) = driving(&mut up.conn, up.sender.ready()).await {
                    return Ok(up);
                }
            }
            None => return connect(target).await,
        }
    }
}

/// One request on a fresh connection (DELETE, the GET stream), driven by a task of its own.
pub(super) async fn send(target: &Target, req: Request<Full<Bytes>>) -> Result<Response, String> {
    let mut sender = connect(target).await?.detach();
    sender.send_request(req).await.map_err(|e| format!("{e}"))
}

async fn connect(target: &Target) -> Result<Upconn, String> {
    let stream = tokio::net::TcpStream::connect(&target.authority)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", target.authority))?;
    let _ = stream.set_nodelay(true);
    let io: Io = match &target.tls {
        None => Io::Left(stream),
        Some((connector, name)) => Io::Right(
            connector
                .connect(name.clone(), stream)
                .await
                .map_err(|e| format!("TLS with {}: {e}", target.authority))?,
        ),
    };
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|e| format!("{e}"))?;
    Ok(Upconn {
        sender,
        conn: Box::pin(conn),
    })
}
