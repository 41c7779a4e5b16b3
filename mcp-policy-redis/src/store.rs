//! The Redis store: keys, the script call, answers, errors.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use mcp_policy::document::Reset;
use mcp_policy::store::{Charge, CounterKey, ReservedCharge, ScopeKey};
use mcp_policy::{AsyncCounterStore, HostError, Outcome, Plan, Reservation, StoreError};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, ErrorKind, RedisError, Script, ServerErrorKind, Value};

use crate::options::{Options, TimeSource};
use crate::{MAX_EXACT, SCRIPT};

/// Why a store could not be built or connected.
///
/// A store that has been built never returns this: its calls fail with
/// [`StoreError`] (decisions, releases) or [`HostError`] (approvals).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key prefix is empty or contains `{` or `}` (it is the keys' hash tag).
    #[error("invalid key prefix {0:?}: it must be non-empty and contain no `{{` or `}}`")]
    InvalidPrefix(String),
    /// The URL is not a Redis URL this build understands.
    #[error("invalid redis url: {0}")]
    Url(#[source] RedisError),
    /// There is no Tokio runtime on this thread (the connection needs one, with time enabled).
    #[error("the redis store needs a tokio runtime (with time enabled) on this thread")]
    NoRuntime,
    /// The first connection (and loading the script) failed or timed out.
    #[error("could not connect to redis: {0}")]
    Connect(String),
}

/// A [`AsyncCounterStore`] on Redis (or Valkey), shared by every replica that uses the same
/// Redis and prefix.
///
/// Generic over the connection: [`connect`](Self::connect) builds one on a
/// [`ConnectionManager`] (one multiplexed connection that reconnects by itself); with
/// [`new`](Self::new) the host passes any `redis::aio::ConnectionLike` that is `Clone`
/// (a `MultiplexedConnection`, a cluster connection, a TLS connection, a pool's handle).
/// Each call clones the connection handle, which for these types is cheap.
///
/// Cloning the store is cheap and shares the connection.
///
/// ```no_run
/// use mcp_policy::{AsyncCounterStore, HostError};
/// use mcp_policy_redis::{Options, RedisStore};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/", Options::new()).await?;
/// // What `mcp-policy approve ID --store URL` does:
/// match store.approve("ap-0123456789abcdef0123456789abcdef").await {
///     Ok(()) => println!("approved"),
///     Err(HostError::UnknownApproval(id)) => eprintln!("unknown or expired approval id {id}"),
///     Err(e) => eprintln!("{e}"), // the store is unreachable: nothing was recorded
/// }
/// # Ok(())
/// # }
/// ```
pub struct RedisStore<C = ConnectionManager> {
    conn: C,
    shared: Arc<Shared>,
}

struct Shared {
    script: Script,
    /// `{prefix}`: the hash tag every key starts with.
    tag: String,
    options: Options,
}

impl<C: Clone> Clone for RedisStore<C> {
    fn clone(&self) -> Self {
        RedisStore {
            conn: self.conn.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C> fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

fn client(url: &str) -> Result<redis::Client, Error> {
    redis::Client::open(url).map_err(Error::Url)
}

fn manager_config(options: &Options) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(options.timeout))
        .set_response_timeout(Some(options.timeout))
        .set_min_delay(Duration::from_millis(50).min(options.reconnect_max_delay))
        .set_max_delay(options.reconnect_max_delay)
}

impl RedisStore<ConnectionManager> {
    /// Connects to the Redis at `url` (`redis://[user:password@]host:port/db`, or
    /// `redis+unix:///path`; `rediss://` when the host enables a TLS feature of `redis`), loads
    /// the script, and returns the store. Fails if Redis cannot be reached within
    /// [`Options::connect_timeout`].
    ///
    /// Later outages are handled by the connection manager: calls during an outage fail
    /// within [`Options::timeout`], and succeed again soon after Redis returns.
    pub async fn connect(url: &str, options: Options) -> Result<Self, Error> {
        tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let client = client(url)?;
        let config = manager_config(&options);
        let deadline = options.connect_timeout;
        let manager = match tokio::time::timeout(
            deadline,
            ConnectionManager::new_with_config(client, config),
        )
        .await
        {
            Ok(Ok(manager)) => manager,
            Ok(Err(e)) => return Err(Error::Connect(describe(&e))),
            Err(_) => {
                return Err(Error::Connect(format!(
                    "no connection within {} ms",
                    deadline.as_millis()
                )));
            }
        };
        let store = RedisStore::new(manager, options)?;
        store
            .load_script()
            .await
            .map_err(|e| Error::Connect(e.to_string()))?;
        Ok(store)
    }

    /// Like [`connect`](Self::connect), but connects on the first call instead of now: a host
    /// can start while Redis is down (its calls are denied until Redis answers). Must be
    /// called inside a Tokio runtime; fails only on a bad URL or prefix.
    pub fn connect_lazy(url: &str, options: Options) -> Result<Self, Error> {
        tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let client = client(url)?;
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config(&options))
            .map_err(|e| Error::Connect(describe(&e)))?;
        RedisStore::new(manager, options)
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync,
{
    /// A store over a connection the host built. Fails only on an invalid prefix.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use mcp_policy_redis::{Options, RedisStore, redis};
    /// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
    /// let conn = client.get_multiplexed_async_connection().await?;
    /// let store = RedisStore::new(conn, Options::new().prefix("billing"))?;
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(conn: C, options: Options) -> Result<Self, Error> {
        if options.prefix.is_empty() || options.prefix.contains(['{', '}']) {
            return Err(Error::InvalidPrefix(options.prefix));
        }
        Ok(RedisStore {
            conn,
            shared: Arc::new(Shared {
                script: Script::new(SCRIPT),
                tag: format!("{{{}}}", options.prefix),
                options,
            }),
        })
    }

    /// The options the store was built with.
    pub fn options(&self) -> &Options {
        &self.shared.options
    }

    /// The connection handle.
    pub fn connection(&self) -> &C {
        &self.conn
    }

    /// The Redis key of a counter (see [`counter_key`](crate::counter_key)).
    pub fn counter_key(&self, key: &CounterKey<'_>) -> String {
        let mut out = String::new();
        push_counter_key(&mut out, &self.shared.tag, key);
        out
    }

    fn counter_key_rendered(&self, rendered: &str) -> String {
        format!("{}:c:{rendered}", self.shared.tag)
    }

    /// The Redis key of an approval (see [`approval_key`](crate::approval_key)).
    pub fn approval_key(&self, id: &str) -> String {
        format!("{}:a:{id}", self.shared.tag)
    }

    /// Loads the script into Redis's script cache now, so the first call takes one round trip
    /// (calls load it again by themselves whenever Redis has lost it).
    pub async fn load_script(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let load = self.shared.script.load_async(&mut conn);
        self.bounded(load).await.map(|_| ())
    }

    /// A warning to print at start when Redis may evict live counters: its `maxmemory-policy`
    /// is not `noeviction` (evicting a counter resets a budget, so limits would over-admit), or
    /// it could not be read. `None` when all is well.
    pub async fn eviction_warning(&self) -> Option<String> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("maxmemory-policy");
        let query = cmd.query_async::<Vec<String>>(&mut conn);
        match self.bounded(query).await {
            Ok(reply) => match reply.get(1).map(String::as_str) {
                Some("noeviction") => None,
                Some(policy) => Some(format!(
                    "redis maxmemory-policy is `{policy}`: when Redis reaches maxmemory it may evict live counters and approvals, which resets budgets (limits over-admit); set `maxmemory-policy noeviction`"
                )),
                None => Some(
                    "could not read redis maxmemory-policy (CONFIG GET answered nothing); make sure it is `noeviction`".to_owned(),
                ),
            },
            Err(e) => Some(format!(
                "could not read redis maxmemory-policy ({e}); make sure it is `noeviction`"
            )),
        }
    }

    /// Records that a human approved `id`, judged by the store's clock (the server's, or this
    /// machine's with [`TimeSource::Plan`]). Errors: [`HostError::UnknownApproval`] when the
    /// id is unknown or expired, [`HostError::Store`] when Redis could not be reached (then
    /// nothing was recorded, or the answer was lost).
    pub async fn approve(&self, id: &str) -> Result<(), HostError> {
        let now = match self.shared.options.time {
            TimeSource::Server => 0,
            TimeSource::Plan => system_now_ms(),
        };
        AsyncCounterStore::record_approval(self, id, now).await
    }

    /// Runs `future` within the store's deadline, naming the failure.
    async fn bounded<T>(
        &self,
        future: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::Unavailable(
                "redis store called outside a tokio runtime".into(),
            ));
        }
        let timeout = self.shared.options.timeout;
        match tokio::time::timeout(timeout, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) if e.is_timeout() => Err(timed_out(timeout)),
            Ok(Err(e)) => Err(StoreError::Unavailable(describe(&e))),
            Err(_) => Err(timed_out(timeout)),
        }
    }

    /// `EVALSHA <script> <numkeys>`: the start of every call.
    fn evalsha(&self, keys: usize) -> Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.shared.script.get_hash()).arg(keys);
        cmd
    }

    /// Runs a script call within the deadline; when Redis lost the script (restart,
    /// `SCRIPT FLUSH`), loads it and runs the call again.
    async fn invoke(&self, cmd: &Cmd) -> Result<Value, StoreError> {
        let mut conn = self.conn.clone();
        let run = async {
            match cmd.query_async::<Value>(&mut conn).await {
                Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                    self.shared.script.load_async(&mut conn).await?;
                    cmd.query_async::<Value>(&mut conn).await
                }
                other => other,
            }
        };
        self.bounded(run).await
    }

    /// With the plan's time: how much longer than their window keys live, in ms.
    fn slack_arg(&self) -> u64 {
        match self.shared.options.time {
            TimeSource::Server => 0,
            TimeSource::Plan => {
                u64::try_from(self.shared.options.plan_time_slack.as_millis()).unwrap_or(MAX_EXACT)
            }
        }
        .min(MAX_EXACT / 2)
    }

    /// `''` for the server's clock, else the caller's time.
    fn time_arg(&self, now_ms: u64) -> Result<String, StoreError> {
        match self.shared.options.time {
            TimeSource::Server => Ok(String::new()),
            TimeSource::Plan => exact("time", now_ms).map(|t| t.to_string()),
        }
    }
}

/// The Redis key of a counter under `prefix`: the hash tag `{prefix}`, `:c:`, then
/// [`CounterKey::render`] (JSON, so distinct keys never collide).
///
/// ```
/// use mcp_policy::document::Reset;
/// use mcp_policy::store::{CounterKey, ScopeKey};
/// let key = CounterKey { counter: "calls", window_ms: 60_000, reset: Reset::Sliding, scope: ScopeKey::Grant("alice") };
/// assert_eq!(mcp_policy_redis::counter_key("prod", &key), r#"{prod}:c:["calls",60000,"sliding","grant","alice"]"#);
/// ```
pub fn counter_key(prefix: &str, key: &CounterKey<'_>) -> String {
    let mut out = String::new();
    push_counter_key(&mut out, &format!("{{{prefix}}}"), key);
    out
}

/// Appends `tag:c:` and [`CounterKey::render`]'s text (written directly: no JSON tree).
fn push_counter_key(out: &mut String, tag: &str, key: &CounterKey<'_>) {
    fn string(out: &mut Vec<u8>, s: &str) {
        // serde_json escapes exactly as `render` does; writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
    let mut buf = std::mem::take(out).into_bytes();
    buf.extend_from_slice(tag.as_bytes());
    buf.extend_from_slice(b":c:[");
    string(&mut buf, key.counter);
    buf.push(b',');
    buf.extend_from_slice(key.window_ms.to_string().as_bytes());
    buf.extend_from_slice(match key.reset {
        Reset::Sliding => b",\"sliding\",",
        Reset::Calendar => b",\"calendar\",",
    });
    match &key.scope {
        ScopeKey::Global => buf.extend_from_slice(b"\"global\""),
        ScopeKey::Grant(g) => {
            buf.extend_from_slice(b"\"grant\",");
            string(&mut buf, g);
        }
        ScopeKey::Session(g, session) => {
            buf.extend_from_slice(b"\"session\",");
            string(&mut buf, g);
            buf.push(b',');
            match session {
                Some(s) => string(&mut buf, s),
                None => buf.extend_from_slice(b"null"),
            }
        }
        ScopeKey::Tool(t) => {
            buf.extend_from_slice(b"\"tool\",");
            string(&mut buf, t);
        }
        ScopeKey::ArgStr(v) => {
            buf.extend_from_slice(b"\"arg\",");
            string(&mut buf, v);
        }
        ScopeKey::ArgJson(v) => {
            buf.extend_from_slice(b"\"argjson\",");
            string(&mut buf, v);
        }
    }
    buf.push(b']');
    // Only UTF-8 was written.
    *out = String::from_utf8(buf)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
}

/// The Redis key of an approval under `prefix`: `{prefix}:a:` then the approval id.
///
/// ```
/// assert_eq!(mcp_policy_redis::approval_key("prod", "ap-1"), "{prod}:a:ap-1");
/// ```
pub fn approval_key(prefix: &str, id: &str) -> String {
    format!("{{{prefix}}}:a:{id}")
}

fn system_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Refuses numbers the script cannot count exactly.
fn exact(what: &str, value: u64) -> Result<u64, StoreError> {
    if value <= MAX_EXACT {
        Ok(value)
    } else {
        Err(StoreError::Unavailable(format!(
            "redis store: {what} {value} is above 2^52 - 1, which the script cannot count exactly"
        )))
    }
}

fn timed_out(timeout: Duration) -> StoreError {
    StoreError::Unavailable(format!(
        "redis did not answer within {} ms",
        timeout.as_millis()
    ))
}

/// Names a Redis failure for a deny message.
fn describe(e: &RedisError) -> String {
    if e.code() == Some("OOM") {
        format!("redis is out of memory (maxmemory reached; nothing was charged): {e}")
    } else if e.is_timeout() {
        format!("redis timed out: {e}")
    } else if e.is_connection_refusal() {
        format!("redis refused the connection: {e}")
    } else if e.is_connection_dropped() {
        format!("lost the connection to redis: {e}")
    } else {
        format!("redis: {e}")
    }
}

fn unexpected(reply: &Value) -> StoreError {
    let mut text = format!("{reply:?}");
    if text.len() > 200 {
        let mut cut = 200;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    StoreError::Unavailable(format!(
        "redis: unexpected answer from the counter script: {text}"
    ))
}

fn integers(reply: &Value) -> Option<Vec<i64>> {
    match reply {
        Value::Array(items) => items
            .iter()
            .map(|v| match v {
                Value::Int(i) => Some(*i),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// The short form's answer when admitted: the counter's value as the script stored it
/// (big-endian doubles; sliding: used, oldest, expiry, at, cost; calendar: at, used), read as
/// the long form's `[1, remaining, at]`.
fn stored_value(value: &[u8], charge: &Charge<'_>) -> Option<Vec<i64>> {
    let field = |i: usize| {
        let bytes: [u8; 8] = value.get(i * 8..i * 8 + 8)?.try_into().ok()?;
        let x = f64::from_be_bytes(bytes);
        // Exact integers only (every number the script stores is one, below 2^52).
        (x >= 0.0 && x <= MAX_EXACT as f64 && x.fract() == 0.0).then_some(x as u64)
    };
    let (used, at) = match (charge.key.reset, value.len()) {
        (Reset::Sliding, 40) => (field(0)?, field(3)?),
        (Reset::Calendar, 16) => (field(1)?, field(0)?),
        _ => return None,
    };
    let remaining = charge.max.checked_sub(used)?;
    Some(vec![
        1,
        i64::try_from(remaining).ok()?,
        i64::try_from(at).ok()?,
    ])
}

fn reset_code(reset: Reset) -> (&'static str, u64) {
    match reset {
        Reset::Sliding => ("s", 0),
        Reset::Calendar => ("c", 1),
    }
}

impl<C> AsyncCounterStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync,
{
    async fn apply(&self, plan: &Plan<'_>) -> Result<Outcome, StoreError> {
        if plan.charges.is_empty() && plan.approval.is_none() {
            return Ok(Outcome::Admitted {
                remaining: None,
                reservation: None,
            });
        }
        // The keys; `{prefix}:c:` is cut off again for the reservation's handle.
        let mut keys = Vec::with_capacity(plan.charges.len());
        let cmd = if let ([charge], None) = (plan.charges.as_slice(), &plan.approval) {
            // Nearly every call: one charge, no approval (the script's short form).
            let key = self.counter_key(&charge.key);
            let mut cmd = self.evalsha(1);
            cmd.arg(&key)
                .arg(reset_code(charge.key.reset).0)
                .arg(exact("window", charge.key.window_ms)?)
                .arg(exact("max", charge.max)?)
                .arg(exact("cost", charge.cost)?);
            if self.shared.options.time == TimeSource::Plan {
                cmd.arg(exact("time", plan.now_ms)?).arg(self.slack_arg());
            }
            keys.push(key);
            cmd
        } else {
            let mut cmd = self.evalsha(plan.charges.len() + usize::from(plan.approval.is_some()));
            if let Some(check) = &plan.approval {
                cmd.arg(self.approval_key(&check.id));
            }
            for charge in &plan.charges {
                let key = self.counter_key(&charge.key);
                cmd.arg(&key);
                keys.push(key);
            }
            cmd.arg("apply")
                .arg(self.time_arg(plan.now_ms)?)
                .arg(self.slack_arg())
                .arg(plan.charges.len());
            match &plan.approval {
                Some(check) => {
                    cmd.arg("1")
                        .arg(check.binding.as_str())
                        .arg(exact("approval ttl", check.ttl_ms)?);
                }
                None => {
                    cmd.arg("0").arg("").arg(0);
                }
            }
            for charge in &plan.charges {
                cmd.arg(reset_code(charge.key.reset).0)
                    .arg(exact("window", charge.key.window_ms)?)
                    .arg(exact("max", charge.max)?)
                    .arg(exact("cost", charge.cost)?);
            }
            cmd
        };
        let reply = self.invoke(&cmd).await?;
        let numbers = match (&reply, plan.charges.as_slice(), &plan.approval) {
            // The short form's admitted answer: the counter's new value.
            (Value::BulkString(value), [charge], None) => stored_value(value, charge),
            _ => integers(&reply),
        }
        .ok_or_else(|| unexpected(&reply))?;
        let n = plan.charges.len();
        match numbers.as_slice() {
            [1, remaining, times @ ..] if times.len() == n => {
                let remaining = match u64::try_from(*remaining) {
                    Ok(r) if n > 0 => Some(r),
                    Err(_) if n == 0 => None,
                    _ => return Err(unexpected(&reply)),
                };
                let mut reservation = Reservation::default();
                let mut handle = String::new();
                let cut = self.shared.tag.len() + ":c:".len();
                for ((charge, at), key) in plan.charges.iter().zip(times).zip(&keys) {
                    if charge.cost == 0 {
                        continue;
                    }
                    let at_ms = u64::try_from(*at).map_err(|_| unexpected(&reply))?;
                    reservation.charges.push(ReservedCharge {
                        slot: charge.key.window_ms,
                        tag: reset_code(charge.key.reset).1,
                        at_ms,
                        cost: charge.cost,
                    });
                    if !handle.is_empty() {
                        handle.push('\n');
                    }
                    // Rendered keys are JSON: they never hold a raw line break.
                    handle.push_str(key.get(cut..).unwrap_or_default());
                }
                let reservation = if reservation.charges.is_empty() {
                    None
                } else {
                    reservation.handle = Some(handle.into_boxed_str());
                    Some(reservation)
                };
                Ok(Outcome::Admitted {
                    remaining,
                    reservation,
                })
            }
            [2, charge, retry] => {
                let charge = usize::try_from(*charge)
                    .ok()
                    .filter(|c| *c < n)
                    .ok_or_else(|| unexpected(&reply))?;
                let retry_after_ms = u64::try_from(*retry)
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or_else(|| unexpected(&reply))?;
                Ok(Outcome::Limited {
                    charge,
                    retry_after_ms,
                })
            }
            [3] if plan.approval.is_some() => Ok(Outcome::ApprovalRequired),
            _ => Err(unexpected(&reply)),
        }
    }

    async fn release(&self, reservation: Reservation) -> Result<(), StoreError> {
        if reservation.charges.is_empty() {
            return Ok(());
        }
        let Some(handle) = &reservation.handle else {
            return Err(StoreError::Unavailable(
                "redis store: this reservation was not made by a redis store".into(),
            ));
        };
        let keys: Vec<&str> = handle.split('\n').collect();
        if keys.len() != reservation.charges.len() {
            return Err(StoreError::Unavailable(
                "redis store: malformed reservation (keys and charges differ in number)".into(),
            ));
        }
        let mut cmd = self.evalsha(keys.len());
        for key in &keys {
            cmd.arg(self.counter_key_rendered(key));
        }
        cmd.arg("release")
            .arg("")
            .arg(0)
            .arg(reservation.charges.len());
        for charge in &reservation.charges {
            let reset = match charge.tag {
                0 => "s",
                1 => "c",
                _ => {
                    return Err(StoreError::Unavailable(
                        "redis store: malformed reservation (unknown reset)".into(),
                    ));
                }
            };
            cmd.arg(reset)
                .arg(exact("window", charge.slot)?)
                .arg(exact("time", charge.at_ms)?)
                .arg(exact("cost", charge.cost)?);
        }
        let reply = self.invoke(&cmd).await?;
        match reply {
            Value::Int(1) => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    async fn record_approval(&self, id: &str, now_ms: u64) -> Result<(), HostError> {
        let mut cmd = self.evalsha(1);
        cmd.arg(self.approval_key(id))
            .arg("approve")
            .arg(self.time_arg(now_ms)?)
            .arg(self.slack_arg());
        match self.invoke(&cmd).await? {
            Value::Int(1) => Ok(()),
            Value::Int(0) => Err(HostError::UnknownApproval(id.to_owned())),
            other => Err(HostError::Store(unexpected(&other))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scope(kind: u8, a: &str, b: Option<&str>) -> ScopeKey<'static> {
        let a: &'static str = Box::leak(a.to_owned().into_boxed_str());
        let b: Option<&'static str> = b.map(|b| &*Box::leak(b.to_owned().into_boxed_str()));
        match kind % 6 {
            0 => ScopeKey::Global,
            1 => ScopeKey::Grant(a),
            2 => ScopeKey::Session(a, b),
            3 => ScopeKey::Tool(a),
            4 => ScopeKey::ArgStr(a),
            _ => ScopeKey::ArgJson(a.to_owned()),
        }
    }

    proptest! {
        /// The keys are `{prefix}:c:` and exactly `CounterKey::render`'s text.
        #[test]
        fn keys_are_the_rendered_counter_keys(
            counter in ".{0,12}", window in any::<u64>(), calendar in any::<bool>(),
            kind in any::<u8>(), a in ".{0,12}", b in proptest::option::of(".{0,8}"),
        ) {
            let counter: &'static str = Box::leak(counter.into_boxed_str());
            let key = CounterKey {
                counter,
                window_ms: window,
                reset: if calendar { Reset::Calendar } else { Reset::Sliding },
                scope: scope(kind, &a, b.as_deref()),
            };
            prop_assert_eq!(counter_key("p", &key), format!("{{p}}:c:{}", key.render()));
        }
    }
}
