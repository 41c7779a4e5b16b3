//! Store options: key prefix, time source, deadlines.

use std::time::Duration;

/// Which clock the script judges windows and approval TTLs by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeSource {
    /// The Redis server's clock (`TIME`, read inside the script). Every replica is judged by
    /// one clock, so replicas whose clocks disagree never over-admit, and keys expire exactly
    /// when their window ends. The plan's time is ignored.
    #[default]
    Server,
    /// The plan's time (the engine's [`Clock`](mcp_policy::Clock)), for replays and tests.
    /// Exact for a single writer, or for replicas whose clocks agree. Keys still expire by
    /// the server's clock: a window's length after their last charge, plus
    /// [`Options::plan_time_slack`] (so that a plan clock running slower than real time, or
    /// frozen in a test, does not see budgets vanish early). Per key, time never goes
    /// backwards: a call stamped before a key's latest charge is judged at that charge's time
    /// (it may wait longer, never over-admit).
    Plan,
}

/// How a [`RedisStore`](crate::RedisStore) names its keys and bounds its calls.
///
/// ```
/// use std::time::Duration;
/// use mcp_policy_redis::{Options, TimeSource};
/// let options = Options::new()
///     .prefix("tenant-a")
///     .timeout(Duration::from_millis(100))
///     .time(TimeSource::Server);
/// assert_eq!(options.prefix, "tenant-a");
/// assert_eq!(Options::default().timeout, Duration::from_millis(250));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// The key prefix; every key starts with the hash tag `{prefix}`. Stores (policies,
    /// tenants) with different prefixes share nothing. Non-empty, without `{` or `}`.
    /// Default: `mcp-policy`.
    pub prefix: String,
    /// The deadline of every store call (decision, release, approval), including any wait for
    /// a reconnection. Past it the call fails with a store error (the engine denies).
    /// Default: 250 ms.
    pub timeout: Duration,
    /// Which clock judges windows. Default: [`TimeSource::Server`].
    pub time: TimeSource,
    /// With [`TimeSource::Plan`]: how much longer than their window (or TTL) keys live, by the
    /// server's clock. Default: 60 s.
    pub plan_time_slack: Duration,
    /// For [`RedisStore::connect`](crate::RedisStore::connect): the deadline of the first
    /// connection. Default: 2 s.
    pub connect_timeout: Duration,
    /// For [`RedisStore::connect`](crate::RedisStore::connect): the longest pause between two
    /// reconnection attempts after Redis went away, so calls succeed again soon after it
    /// returns. Default: 500 ms.
    pub reconnect_max_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            prefix: "mcp-policy".to_owned(),
            timeout: Duration::from_millis(250),
            time: TimeSource::Server,
            plan_time_slack: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(2),
            reconnect_max_delay: Duration::from_millis(500),
        }
    }
}

impl Options {
    /// The defaults.
    pub fn new() -> Self {
        Options::default()
    }

    /// Sets the key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the deadline of every call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the time source.
    pub fn time(mut self, time: TimeSource) -> Self {
        self.time = time;
        self
    }

    /// Sets how much longer than their window keys live with [`TimeSource::Plan`].
    pub fn plan_time_slack(mut self, slack: Duration) -> Self {
        self.plan_time_slack = slack;
        self
    }

    /// Sets the deadline of the first connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the longest pause between reconnection attempts.
    pub fn reconnect_max_delay(mut self, delay: Duration) -> Self {
        self.reconnect_max_delay = delay;
        self
    }
}
