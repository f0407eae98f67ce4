//! What the running server lends filters for work off the request path: a runtime for
//! background tasks (refreshing a key cache) and a store for state that outlives one config.
//!
//! Neither exists when a config is only checked or explained (`switchyard check`,
//! `switchyard explain`): factories then build filters that do no background work.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Handed to factories through [`BuildContext::background`](crate::BuildContext::background).
pub struct Background {
    runtime: tokio::runtime::Handle,
    shared: Mutex<HashMap<String, Weak<dyn Any + Send + Sync>>>,
}

impl Background {
    /// `runtime` runs the filters' background tasks; it must live as long as the server.
    pub fn new(runtime: tokio::runtime::Handle) -> Self {
        Background {
            runtime,
            shared: Mutex::new(HashMap::new()),
        }
    }

    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// The state stored under `key` while some filter still holds it, or a new one from
    /// `make`. A reload builds every filter anew while the old ones still serve, so a filter
    /// of the new config finds what its predecessor holds (a key cache with its keys and its
    /// refresh task) instead of starting cold. The store keeps no state alive by itself: once
    /// no filter holds it, it is dropped, and `key` makes a new one.
    ///
    /// `key` must name everything the state depends on: two filters that get the same state
    /// must want exactly the same thing.
    pub fn shared<T: Any + Send + Sync>(&self, key: &str, make: impl FnOnce() -> T) -> Arc<T> {
        let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = shared
            .get(key)
            .and_then(Weak::upgrade)
            .and_then(|any| any.downcast::<T>().ok())
        {
            return found;
        }
        shared.retain(|_, state| state.strong_count() > 0);
        let state = Arc::new(make());
        let erased: Arc<dyn Any + Send + Sync> = state.clone();
        shared.insert(key.to_owned(), Arc::downgrade(&erased));
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_shared_while_held_and_dropped_after() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let background = Background::new(runtime.handle().clone());
        let first = background.shared("a", || 1u32);
        let again = background.shared("a", || 2u32);
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(*background.shared("b", || 3u32), 3);
        drop((first, again));
        assert_eq!(
            *background.shared("a", || 4u32),
            4,
            "nothing held it: made anew"
        );
        // The same key with another type is a new state, not a wrong cast.
        assert_eq!(*background.shared("a", || "x"), "x");
    }
}
