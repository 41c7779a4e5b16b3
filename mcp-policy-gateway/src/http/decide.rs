//! Where a client's message is decided and carried out: right in the request's task when
//! nothing can block (the in-memory store, a remote upstream), else a `tools/call`'s decision
//! awaited on the event loop (Redis) and the rest on a blocking thread. A call's exchange
//! outlives a client that goes away ([`Outliving`]): its answer is still audited, or its
//! charges refunded.

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use mcp_policy::Decider;
use mcp_policy::Decision;
use mcp_policy::mcp::{ClientMessage, Output};

use crate::host::sync::{lock, try_lock};
use crate::http::app::App;
use crate::http::inflight::InFlight;
use crate::http::session::Session;

/// Decides a client's message and carries it out: here when nothing in it can block (the
/// in-memory store, a remote upstream's queue), else in a task of its own (a client that goes
/// away while the decision is awaited or made loses nothing: the call decided is carried
/// out, audited or refunded). `read`: the message as already read from `line`, if it was.
pub async fn run(
    app: &Arc<App>,
    session: &Arc<Session>,
    line: Bytes,
    read: Option<ClientMessage<'_>>,
    is_call: bool,
    seq: Option<u64>,
) -> Result<(), ()> {
    if app.ctx.inline_store() && session.nonblocking_upstream() {
        // The message was read before the lock: the session's other messages wait only for
        // the decision.
        let message = read.unwrap_or_else(|| ClientMessage::read(&line));
        let outputs = lock(&session.gateway).from_client_message(app.ctx.engine.as_ref(), message);
        return carry_out_here(app, session, outputs, line, is_call, seq).await;
    }
    let (app, session) = (Arc::clone(app), Arc::clone(session));
    tokio::spawn(decide_elsewhere(app, session, line, is_call, seq))
        .await
        .map_err(|_| ())
        .and_then(|done| done)
}

/// Decides a client's message where deciding may wait (Redis), and carries it out. With
/// Redis, a `tools/call`'s decision is awaited on this event loop (one round trip, no thread
/// blocked, the gateway not locked meanwhile); anything else is decided on a blocking thread.
/// With a remote upstream, what follows the decision never blocks: it runs here.
///
/// The event loop never waits for a session's gateway: a blocking thread may hold it for a
/// Redis round trip. When it is held, the rest of the work goes to a blocking thread too.
async fn decide_elsewhere(
    app: Arc<App>,
    session: Arc<Session>,
    line: Bytes,
    is_call: bool,
    seq: Option<u64>,
) -> Result<(), ()> {
    let _busy = InFlight::new(&app.in_flight);
    let mut decided = Decided::Not;
    if let Some(engine) = app.ctx.engine.async_engine().filter(|_| is_call) {
        let message = ClientMessage::read(&line);
        let call = try_lock(&session.gateway).and_then(|mut gw| gw.call_to_decide(&message));
        if let Some(call) = call {
            let t0 = std::time::Instant::now();
            let mut decision = engine.decide(call.subject(), call.args, &call.grant).await;
            let us = u64::try_from(t0.elapsed().as_micros()).unwrap_or(u64::MAX);
            let handed = match try_lock(&session.gateway) {
                Some(mut gateway) => {
                    // The server went away meanwhile: the gateway answers the call without
                    // forwarding it, and its charges are refunded here.
                    let refund = match gateway.is_gone() {
                        true => decision.reservation.take(),
                        false => None,
                    };
                    Ok((gateway.from_client_decided(&message, decision, us), refund))
                }
                None => Err(decision),
            };
            decided = match handed {
                Ok((outputs, refund)) => {
                    // The same message was a call a moment ago: it still is.
                    let mut outputs = outputs.ok_or(())?;
                    if let Some(reservation) = refund {
                        match engine.release(reservation).await {
                            Ok(()) => refunded(&mut outputs),
                            Err(e) => eprintln!("mcp-policy proxy: a refund failed: {e}"),
                        }
                    }
                    Decided::Outputs(outputs)
                }
                Err(decision) => Decided::Decision(Box::new(decision), us),
            };
        }
    }
    let outputs = match decided {
        Decided::Outputs(outputs) if session.nonblocking_upstream() => Some(outputs),
        decided => on_blocking_thread(&app, &session, &line, seq, decided).await?,
    };
    match outputs {
        Some(outputs) => carry_out_here(&app, &session, outputs, line, is_call, seq).await,
        None => Ok(()),
    }
}

/// How far a client's message was decided before it went to a blocking thread.
enum Decided {
    Not,
    /// Decided, and handed to the gateway: what to carry out.
    Outputs(Vec<Output>),
    /// A plain call's decision, made in `us` microseconds, for the gateway to carry on.
    Decision(Box<Decision>, u64),
}

/// Marks a call's audit record refunded (the host refunded it: see `Gateway::is_gone`).
fn refunded(outputs: &mut [Output]) {
    for output in outputs {
        if let Output::Audit(record) = output {
            record.refunded = true;
        }
    }
}

/// Carries out what the gateway said about a client's message, from the request's task. An
/// allowed call goes up from here (no hop through the session's sender) when nothing queued
/// is still on its way; what waits for its answer runs in a task of its own, so that a
/// client that goes away does not cancel the exchange (its answer is still audited, or its
/// charges refunded).
async fn carry_out_here(
    app: &Arc<App>,
    session: &Arc<Session>,
    outputs: Vec<Output>,
    line: Bytes,
    is_call: bool,
    seq: Option<u64>,
) -> Result<(), ()> {
    if is_call && matches!(outputs.as_slice(), [Output::Forward]) && session.remote_idle().is_some()
    {
        let (app, session) = (Arc::clone(app), Arc::clone(session));
        let busy = InFlight::new(&app.in_flight);
        // It runs here, in order with the session's other messages; if the client goes away
        // first, what is left of it goes on in a task of its own.
        Outliving::new(async move {
            let _busy = busy;
            match session.remote_idle() {
                Some(remote) => remote.send_now(line).await,
                None => session.carry_out_in(&app.ctx, outputs, &line, None, true, seq, true),
            }
        })
        .await;
        return Ok(());
    }
    session.carry_out_in(&app.ctx, outputs, &line, None, true, seq, true);
    Ok(())
}

/// A future polled by the task that awaits it, as any other, except that it outlives that
/// task: dropped before it completed (hyper drops a request's task when its client hangs
/// up), it is handed, as far as it got, to a task of its own on the same event loop and
/// finishes there. A call's exchange so costs no task of its own unless its client leaves,
/// and a client that leaves does not cancel it (its answer is still audited, or its charges
/// refunded).
struct Outliving<F: Future<Output = ()> + Send + 'static> {
    fut: Option<Pin<Box<F>>>,
}

impl<F: Future<Output = ()> + Send + 'static> Outliving<F> {
    fn new(fut: F) -> Self {
        Outliving {
            fut: Some(Box::pin(fut)),
        }
    }
}

impl<F: Future<Output = ()> + Send + 'static> Future for Outliving<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if let Some(fut) = self.fut.as_mut() {
            std::task::ready!(fut.as_mut().poll(cx));
            self.fut = None;
        }
        Poll::Ready(())
    }
}

impl<F: Future<Output = ()> + Send + 'static> Drop for Outliving<F> {
    fn drop(&mut self) {
        if let Some(fut) = self.fut.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(fut);
        }
    }
}

/// On a blocking thread (a Redis round trip, a pipe write): decides a client's message as
/// far as `decided` has not, and carries the outputs out there, unless the upstream is
/// remote (then they are returned, to be carried out by the request's task).
async fn on_blocking_thread(
    app: &Arc<App>,
    session: &Arc<Session>,
    line: &Bytes,
    seq: Option<u64>,
    decided: Decided,
) -> Result<Option<Vec<Output>>, ()> {
    let app = Arc::clone(app);
    let session = Arc::clone(session);
    let line = line.clone();
    tokio::task::spawn_blocking(move || {
        let message = || ClientMessage::read(&line);
        let outputs = match decided {
            Decided::Outputs(outputs) => outputs,
            Decided::Not => {
                lock(&session.gateway).from_client_message(app.ctx.engine.as_ref(), message())
            }
            Decided::Decision(mut decision, us) => {
                let mut gateway = lock(&session.gateway);
                let refund = match gateway.is_gone() {
                    true => decision.reservation.take(),
                    false => None,
                };
                let mut outputs = gateway.from_client_decided(&message(), *decision, us)?;
                if let Some(reservation) = refund {
                    match app.ctx.engine.release(reservation) {
                        Ok(()) => refunded(&mut outputs),
                        Err(e) => eprintln!("mcp-policy proxy: a refund failed: {e}"),
                    }
                }
                outputs
            }
        };
        if session.nonblocking_upstream() {
            return Some(Some(outputs));
        }
        session.carry_out(&app.ctx, outputs, &line, true, seq);
        Some(None)
    })
    .await
    .map_err(|_| ())?
    .ok_or(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    /// An `Outliving` future dropped half-way finishes in a task of its own; one polled to
    /// its end runs once, in the task that awaited it.
    #[test]
    fn outliving_futures_finish_when_their_task_is_dropped() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            let (go, wait) = tokio::sync::oneshot::channel::<()>();
            let (done, finished) = tokio::sync::oneshot::channel::<&str>();
            let waiting = tokio::spawn(Outliving::new(async move {
                let _ = wait.await;
                let _ = done.send("finished");
            }));
            tokio::task::yield_now().await;
            // The task that awaits it goes away (as hyper drops a request's task).
            waiting.abort();
            let _ = waiting.await;
            go.send(()).expect("the future is still alive");
            let got = tokio::time::timeout(Duration::from_secs(5), finished).await;
            assert_eq!(got.ok().and_then(Result::ok), Some("finished"));

            // Polled to its end, it leaves no task behind (a finished future handed on
            // would be a task alive until polled).
            tokio::task::yield_now().await;
            let tasks = || {
                tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks()
            };
            let before = tasks();
            let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counted = Arc::clone(&runs);
            Outliving::new(async move {
                counted.fetch_add(1, Ordering::SeqCst);
            })
            .await;
            assert_eq!(tasks(), before);
            assert_eq!(runs.load(Ordering::SeqCst), 1);
        });
    }
}
