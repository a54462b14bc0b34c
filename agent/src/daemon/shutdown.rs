//! SIGTERM and SIGINT, counted: the daemon stops taking jobs at the first,
//! gives a running job a grace period, and aborts it at the second (see
//! [`super::supervise`]). A watch channel carries the count, so every
//! waiter sees each signal and a test can send its own.

use std::future::pending;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// How many stop signals have arrived.
#[derive(Debug, Clone)]
pub struct Shutdown {
    signals: watch::Receiver<u32>,
}

impl Shutdown {
    /// Installs handlers for SIGTERM and SIGINT, counting both.
    ///
    /// # Errors
    ///
    /// A handler cannot be installed.
    pub fn listen() -> std::io::Result<Self> {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let (count, shutdown) = Self::manual();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
                count.send_modify(|n| *n += 1);
            }
        });
        Ok(shutdown)
    }

    /// A shutdown driven by hand through the returned sender (tests).
    pub fn manual() -> (watch::Sender<u32>, Self) {
        let (count, signals) = watch::channel(0);
        (count, Self { signals })
    }

    /// Signals so far.
    pub fn signals(&self) -> u32 {
        *self.signals.borrow()
    }

    /// Whether a stop was asked for.
    pub fn requested(&self) -> bool {
        self.signals() > 0
    }

    /// Waits for the first signal (at once if one came already).
    pub async fn wait(&mut self) {
        if self.signals.wait_for(|n| *n > 0).await.is_err() {
            pending::<()>().await;
        }
    }

    /// Waits for the next signal and returns the count; never returns once
    /// no signal can come any more.
    pub async fn next(&mut self) -> u32 {
        if self.signals.changed().await.is_err() {
            pending::<()>().await;
        }
        *self.signals.borrow_and_update()
    }
}
