//! The host layer: what the stdio relay and the HTTP gateway do the same way, written once —
//! a child process over stdio ([`child`]) and its lines ([`lines`]), carrying out the core's
//! outputs ([`outputs`]), the stop signals ([`signals`]), the timer ([`timer`]), watching the
//! policy file ([`watch`]), the locks every thread takes ([`sync`]), and the engine, audit log
//! and gateway options every decision needs ([`context`]). The store is chosen in
//! [`crate::store`], the audit log written by [`audit`].

pub mod audit;
pub mod child;
pub mod context;
pub mod lines;
pub mod outputs;
pub mod signals;
pub mod sync;
pub mod timer;
pub mod watch;
