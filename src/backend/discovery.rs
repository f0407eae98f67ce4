//! Keeping a backend's names resolved: one task per name, off the request path.
//!
//! A name is looked up at once, then again when its records' TTL ends, clamped to
//! `server.dns.min_refresh` and `max_refresh`. A lookup that gives no address (a failure, or
//! an answer that the name has none) is asked again after 1 s, then 2 s, 4 s and so on up to
//! `max_refresh`, until one gives addresses. What an answer does to the backend's hosts is for
//! [`Members::record`] to say.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::members::Members;
use crate::config::DnsSettings;
use crate::dns::{Answer, Resolver};

/// The first wait after a lookup that gave no address.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Starts resolving each name of `members` on `runtime`, for as long as some pipeline holds
/// the members.
pub(super) fn spawn(
    runtime: &tokio::runtime::Handle,
    members: &Arc<Members>,
    resolver: &Arc<Resolver>,
    settings: &DnsSettings,
) {
    for (entry, name) in members.names() {
        let members: Weak<Members> = Arc::downgrade(members);
        let resolver = resolver.clone();
        let settings = settings.clone();
        let name = name.to_owned();
        runtime.spawn(async move {
            let mut schedule = Schedule::default();
            loop {
                let answer = resolver.lookup(&name).await;
                let Some(live) = members.upgrade() else {
                    return;
                };
                live.record(entry, &name, &answer);
                drop(live);
                tokio::time::sleep(schedule.next(&answer, &settings)).await;
            }
        });
    }
}

/// When to look a name up again, given the last answer.
#[derive(Debug, Default)]
struct Schedule {
    /// Lookups in a row that gave no address.
    misses: u32,
}

impl Schedule {
    fn next(&mut self, answer: &Answer, settings: &DnsSettings) -> Duration {
        match answer {
            Answer::Addresses { ttl, .. } => {
                self.misses = 0;
                (*ttl).clamp(settings.min_refresh, settings.max_refresh)
            }
            Answer::NoRecords | Answer::Failed(_) => {
                let wait = FIRST_BACKOFF
                    .saturating_mul(1 << self.misses.min(16))
                    .min(settings.max_refresh);
                self.misses = self.misses.saturating_add(1);
                wait
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DnsSettings {
        DnsSettings {
            min_refresh: Duration::from_secs(5),
            max_refresh: Duration::from_secs(60),
            ..DnsSettings::default()
        }
    }

    fn addresses(ttl: u64) -> Answer {
        Answer::Addresses {
            ips: vec!["10.0.0.1".parse().expect("an address")],
            ttl: Duration::from_secs(ttl),
        }
    }

    #[test]
    fn a_ttl_is_clamped_to_the_refresh_bounds() {
        let mut s = Schedule::default();
        assert_eq!(s.next(&addresses(1), &settings()), Duration::from_secs(5));
        assert_eq!(s.next(&addresses(30), &settings()), Duration::from_secs(30));
        assert_eq!(
            s.next(&addresses(86400), &settings()),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn misses_back_off_from_one_second_to_the_cap_and_an_answer_resets() {
        let mut s = Schedule::default();
        let failed = Answer::Failed("timeout".into());
        let waits: Vec<u64> = (0..8)
            .map(|_| s.next(&failed, &settings()).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(s.next(&addresses(10), &settings()), Duration::from_secs(10));
        assert_eq!(
            s.next(&Answer::NoRecords, &settings()),
            Duration::from_secs(1)
        );
    }
}
