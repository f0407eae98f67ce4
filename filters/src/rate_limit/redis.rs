//! Counting in Redis, shared by every gateway that asks the same server: one script call per
//! request decides every limit that applies to it, all or nothing, on Redis's own clock.
//!
//! The script runs the GCRA of `gcra.rs` in microseconds: each key holds its TAT and expires
//! by itself once the bucket would be full again, so idle keys cost Redis nothing. It only
//! stores the new TATs when every limit lets the request through, so a request refused by one
//! limit takes nothing from the others.
//!
//! One server, not Redis Cluster: a request's keys may fall in different slots.
//!
//! The connection is redis-rs's `ConnectionManager`: one multiplexed connection, made lazily
//! (the gateway starts while Redis is down) and remade after a failure. A request never waits
//! on Redis longer than `timeout`; past it, or on any error, the filter's `failure_mode`
//! decides, and the failure is counted.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;

use super::gcra::{Decision, Quota};

/// Every limit of one request: KEYS[i] with ARGV[2i-1] (interval, µs) and ARGV[2i] (burst).
/// Returns, per key, `allowed` (1 or 0), `remaining` and `reset` (µs), flattened.
const CHECK: &str = r"
-- Redis before 5 allows writes after TIME only with effects replication (the default since).
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
local store = {}
local all = true
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local limit = now + interval * burst
  if new_tat > limit then
    all = false
    out[#out + 1] = 0
    out[#out + 1] = 0
    out[#out + 1] = new_tat - limit
  else
    local remaining = math.floor((limit - new_tat) / interval)
    local reset = 0
    if remaining == 0 then reset = new_tat + interval - limit end
    out[#out + 1] = 1
    out[#out + 1] = remaining
    out[#out + 1] = reset
    store[#store + 1] = {key, new_tat, new_tat - now}
  end
end
if all then
  for _, s in ipairs(store) do
    redis.call('SET', s[1], s[2], 'PX', math.ceil(s[3] / 1000) + 1)
  end
end
return out
";

/// The state of keys without taking from them (for `explain`).
const PEEK: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local limit = now + interval * burst
  local remaining = math.floor((limit - tat) / interval)
  local reset = 0
  if remaining <= 0 then remaining = 0; reset = tat + interval - limit end
  out[#out + 1] = remaining > 0 and 1 or 0
  out[#out + 1] = remaining
  out[#out + 1] = reset
end
return out
";

/// Why Redis gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no answer from Redis within {0:?}")]
    Timeout(Duration),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("Redis answered {got} values for {keys} keys")]
    Shape { got: usize, keys: usize },
}

/// A Redis server and the scripts run on it.
pub struct RedisCounts {
    connection: ConnectionManager,
    check: Script,
    peek: Script,
    timeout: Duration,
}

/// A quota in microseconds, Redis's unit.
pub fn quota(requests: u64, period: Duration, burst: u64) -> Quota {
    let period = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
    Quota {
        interval: (period / requests.max(1)).max(1),
        burst,
    }
}

/// A decision's `reset` from microseconds to whole seconds, rounded up.
pub fn seconds(micros: u64) -> u64 {
    micros.div_ceil(1_000_000)
}

impl RedisCounts {
    /// A client of `url`; no connection is made until the first request. Must run inside a
    /// Tokio runtime, where the connection will live.
    pub fn new(url: &str, timeout: Duration) -> Result<RedisCounts, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(250))))
            .set_response_timeout(Some(timeout))
            // Reconnecting is retried in the background; requests never wait for it.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(RedisCounts {
            connection,
            check: Script::new(CHECK),
            peek: Script::new(PEEK),
            timeout,
        })
    }

    /// Takes one request from each of `keys` (with its quota) if every one lets it pass.
    pub async fn take(&self, keys: &[(String, Quota)]) -> Result<Vec<Decision>, StoreError> {
        self.run(&self.check, keys).await
    }

    /// The state of each of `keys` without taking from them.
    pub async fn peek(&self, keys: &[(String, Quota)]) -> Result<Vec<Decision>, StoreError> {
        self.run(&self.peek, keys).await
    }

    async fn run(
        &self,
        script: &Script,
        keys: &[(String, Quota)],
    ) -> Result<Vec<Decision>, StoreError> {
        let mut invocation = script.prepare_invoke();
        for (key, _) in keys {
            invocation.key(key);
        }
        for (_, quota) in keys {
            invocation.arg(quota.interval).arg(quota.burst);
        }
        let mut connection = self.connection.clone();
        let values: Vec<u64> =
            tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection))
                .await
                .map_err(|_| StoreError::Timeout(self.timeout))??;
        if values.len() != keys.len() * 3 {
            return Err(StoreError::Shape {
                got: values.len(),
                keys: keys.len(),
            });
        }
        Ok(values
            .chunks_exact(3)
            .map(|v| Decision {
                allowed: v[0] == 1,
                remaining: v[1],
                reset: v[2],
            })
            .collect())
    }
}
