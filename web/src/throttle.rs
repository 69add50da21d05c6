//! Throttling of sign-in attempts, per account and per address.
//!
//! Failed sign-ins are counted in a sliding window. An account with too many
//! failures is locked for the rest of the window whatever the password (so
//! guessing one account's password from many addresses does not work); an
//! address with too many failures is refused for any account (so one
//! address cannot try many accounts). A success clears the account's count.
//! The memory is bounded: the oldest keys go first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits of the throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// The window failures are counted in.
    pub window: Duration,
    /// Failures of one account within the window that lock it.
    pub per_account: usize,
    /// Failures from one address within the window that block it.
    pub per_address: usize,
    /// Keys remembered at most.
    pub max_keys: usize,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        ThrottleLimits {
            window: Duration::from_secs(15 * 60),
            per_account: 5,
            per_address: 20,
            max_keys: 100_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

/// Counts failed sign-ins.
#[derive(Debug)]
pub struct Throttle {
    limits: ThrottleLimits,
    failures: Mutex<HashMap<Key, Vec<Instant>>>,
}

impl Throttle {
    /// A throttle with `limits`.
    pub fn new(limits: ThrottleLimits) -> Throttle {
        Throttle {
            limits,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(login: &str, address: Option<IpAddr>) -> Vec<Key> {
        let mut keys = vec![Key::Account(login.trim().to_lowercase())];
        keys.extend(address.map(Key::Address));
        keys
    }

    /// `None` when a sign-in of `login` from `address` may be tried now;
    /// otherwise how long to wait.
    pub fn check(&self, login: &str, address: Option<IpAddr>, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        Self::keys(login, address)
            .into_iter()
            .filter_map(|key| {
                let limit = match key {
                    Key::Account(_) => self.limits.per_account,
                    Key::Address(_) => self.limits.per_address,
                };
                let times = failures.get(&key)?;
                let recent: Vec<&Instant> = times
                    .iter()
                    .filter(|t| now.duration_since(**t) < self.limits.window)
                    .collect();
                (recent.len() >= limit).then(|| {
                    let oldest = recent.iter().min().map_or(now, |t| **t);
                    self.limits
                        .window
                        .saturating_sub(now.duration_since(oldest))
                })
            })
            .max()
    }

    /// Records a failed sign-in.
    pub fn failed(&self, login: &str, address: Option<IpAddr>, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= self.limits.max_keys {
            let window = self.limits.window;
            failures.retain(|_, times| times.iter().any(|t| now.duration_since(*t) < window));
            if failures.len() >= self.limits.max_keys {
                // Still full: forget the keys whose last failure is oldest.
                let mut last: Vec<(Instant, Key)> = failures
                    .iter()
                    .map(|(k, t)| (t.iter().max().copied().unwrap_or(now), k.clone()))
                    .collect();
                last.sort_by_key(|(t, _)| *t);
                for (_, key) in last.into_iter().take(self.limits.max_keys / 10 + 1) {
                    failures.remove(&key);
                }
            }
        }
        for key in Self::keys(login, address) {
            let limit = match key {
                Key::Account(_) => self.limits.per_account,
                Key::Address(_) => self.limits.per_address,
            };
            let times = failures.entry(key).or_default();
            times.retain(|t| now.duration_since(*t) < self.limits.window);
            times.push(now);
            if times.len() > limit {
                times.remove(0);
            }
        }
    }

    /// Records a successful sign-in: the account's failures are forgotten.
    pub fn succeeded(&self, login: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&Key::Account(login.trim().to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ThrottleLimits {
        ThrottleLimits {
            window: Duration::from_secs(60),
            per_account: 3,
            per_address: 5,
            max_keys: 8,
        }
    }

    #[test]
    fn an_account_is_locked_after_repeated_failures_from_any_address() {
        let throttle = Throttle::new(limits());
        let now = Instant::now();
        for i in 0..3u8 {
            assert_eq!(
                throttle.check("aino", Some([10, 0, 0, i].into()), now),
                None
            );
            throttle.failed("aino", Some([10, 0, 0, i].into()), now);
        }
        let wait = throttle.check("AINO", Some([10, 0, 0, 99].into()), now);
        assert_eq!(wait, Some(Duration::from_secs(60)));
        // Another account from a fresh address is not affected.
        assert_eq!(
            throttle.check("maria", Some([10, 0, 1, 1].into()), now),
            None
        );
        // The lock ends with the window.
        let later = now + Duration::from_secs(61);
        assert_eq!(throttle.check("aino", None, later), None);
    }

    #[test]
    fn one_address_cannot_try_many_accounts() {
        let throttle = Throttle::new(limits());
        let now = Instant::now();
        let address = Some(IpAddr::from([192, 0, 2, 1]));
        for i in 0..5 {
            throttle.failed(&format!("user{i}"), address, now);
        }
        assert!(throttle.check("someone-else", address, now).is_some());
        assert_eq!(
            throttle.check("someone-else", Some([192, 0, 2, 2].into()), now),
            None
        );
    }

    #[test]
    fn a_success_clears_the_accounts_failures() {
        let throttle = Throttle::new(limits());
        let now = Instant::now();
        throttle.failed("aino", None, now);
        throttle.failed("aino", None, now);
        throttle.succeeded("aino");
        throttle.failed("aino", None, now);
        assert_eq!(throttle.check("aino", None, now), None);
    }

    #[test]
    fn the_throttle_remembers_a_bounded_number_of_keys() {
        let throttle = Throttle::new(limits());
        let now = Instant::now();
        for i in 0..100 {
            throttle.failed(&format!("user{i}"), None, now + Duration::from_millis(i));
        }
        let kept = throttle.failures.lock().unwrap().len();
        assert!(kept <= limits().max_keys, "{kept} keys kept");
    }
}
