//! Envoy's connection circuit breakers for a backend: at most `max_connections` exchanges
//! with it at once (each an upstream connection in use; on an HTTP/2 backend, a stream), and
//! at most `max_pending` requests waiting for one to free. A request past both is answered
//! 503 at once; a waiting one gets 503 when none frees within the backend's
//! `connect_timeout`, the time it would have had to open a connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A backend's connection slots, when it bounds them.
#[derive(Debug)]
pub struct ConnectionSlots {
    slots: Arc<Semaphore>,
    max_pending: usize,
    pending: AtomicUsize,
}

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSlot {
    /// Every slot in use and the waiting line full.
    PendingFull,
    /// None freed within the wait.
    TimedOut,
}

/// The waiting line's count, held while a request waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnectionSlots {
    pub fn new(max_connections: u32, max_pending: u32) -> Self {
        ConnectionSlots {
            slots: Arc::new(Semaphore::new(
                usize::try_from(max_connections).unwrap_or(usize::MAX),
            )),
            max_pending: usize::try_from(max_pending).unwrap_or(usize::MAX),
            pending: AtomicUsize::new(0),
        }
    }

    /// A slot, at once or after waiting at most `wait` in line.
    pub async fn acquire(&self, wait: Duration) -> Result<OwnedSemaphorePermit, NoSlot> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        self.pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_pending).then_some(n + 1)
            })
            .map_err(|_| NoSlot::PendingFull)?;
        let _waiting = Waiting(&self.pending);
        match tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; a closed one is as good as none freeing.
            Ok(Err(_)) | Err(_) => Err(NoSlot::TimedOut),
        }
    }

    /// Requests waiting now.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_then_a_bounded_line_then_refusal() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        runtime.block_on(line());
    }

    async fn line() {
        let slots = ConnectionSlots::new(1, 1);
        let held = slots.acquire(Duration::from_secs(1)).await.expect("a slot");
        let waiter = {
            let slots = &slots;
            async move { slots.acquire(Duration::from_secs(1)).await }
        };
        tokio::pin!(waiter);
        // The second waits in line; a third finds the line full.
        assert!(futures_poll_once(waiter.as_mut()).await.is_none());
        assert_eq!(slots.pending(), 1);
        assert_eq!(
            slots.acquire(Duration::from_secs(1)).await.err(),
            Some(NoSlot::PendingFull)
        );
        drop(held);
        assert!(waiter.await.is_ok());
        assert_eq!(slots.pending(), 0);
        let _held = slots.acquire(Duration::from_secs(1)).await.expect("a slot");
        assert_eq!(
            slots.acquire(Duration::from_millis(10)).await.err(),
            Some(NoSlot::TimedOut)
        );
    }

    /// Polls `f` once: its output if it was ready.
    async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
        let mut f = f;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
