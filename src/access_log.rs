//! The access log: one JSON line per request, written by a thread of its own so that a slow
//! disk or terminal never holds up a request. When the writer falls behind by more than
//! [`QUEUE`] lines, new lines are dropped and counted rather than queued without bound.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

const QUEUE: usize = 16 * 1024;
/// Lines are flushed at least this often, so `tail -f` keeps up.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

enum Message {
    Line(String),
    /// Flush, then answer.
    Flush(SyncSender<()>),
}

#[derive(Clone)]
pub struct AccessLog {
    tx: SyncSender<Message>,
}

impl AccessLog {
    /// Starts the writer thread, appending to `path` or writing to standard output.
    pub fn start(path: Option<&Path>) -> std::io::Result<AccessLog> {
        let sink: Box<dyn Write + Send> = match path {
            Some(path) => Box::new(OpenOptions::new().create(true).append(true).open(path)?),
            None => Box::new(std::io::stdout()),
        };
        let (tx, rx) = sync_channel::<Message>(QUEUE);
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut out = BufWriter::new(sink);
                loop {
                    match rx.recv_timeout(FLUSH_EVERY) {
                        Ok(Message::Line(line)) => {
                            if writeln!(out, "{line}").is_err() {
                                return;
                            }
                        }
                        Ok(Message::Flush(done)) => {
                            let _ = out.flush();
                            let _ = done.send(());
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            if out.flush().is_err() {
                                return;
                            }
                        }
                        Err(RecvTimeoutError::Disconnected) => {
                            let _ = out.flush();
                            return;
                        }
                    }
                }
            })?;
        Ok(AccessLog { tx })
    }

    /// Queues one line; `false` when it had to be dropped.
    pub fn write(&self, line: String) -> bool {
        match self.tx.try_send(Message::Line(line)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Writes out every line queued so far (before the process exits), waiting at most
    /// `timeout`.
    pub fn flush(&self, timeout: Duration) {
        let (done_tx, done_rx) = sync_channel(1);
        if self.tx.send(Message::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv_timeout(timeout);
        }
    }
}
