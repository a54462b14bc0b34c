//! What every stage of the engine shares: the counters and the first fatal
//! error. Once an error is recorded every stage stops doing work — queued
//! blobs are dropped (returning their budget, so no caller stays blocked)
//! and every later call on the engine reports the error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::UploadError;
use super::progress::Counters;

#[derive(Debug, Default)]
pub(super) struct Shared {
    pub counters: Counters,
    /// Set with the first fatal error, or when the engine is dropped unfinished.
    stopped: AtomicBool,
    /// The first fatal error.
    failure: Mutex<Option<Arc<UploadError>>>,
}

impl Shared {
    /// Records a fatal error; the first one wins, later ones are its consequences.
    pub fn fail(&self, error: UploadError) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        if failure.is_none() {
            *failure = Some(Arc::new(error));
        }
        self.stopped.store(true, Ordering::Release);
    }

    /// Stops every stage without an error (the engine was dropped unfinished).
    pub fn abandon(&self) {
        self.stopped.store(true, Ordering::Release);
    }

    /// Whether stages should drop their work instead of doing it.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// The recorded error, if any.
    pub fn failure(&self) -> Option<Arc<UploadError>> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `Err` with the recorded error once there is one.
    pub fn check(&self) -> Result<(), UploadError> {
        if !self.is_stopped() {
            return Ok(());
        }
        match self.failure() {
            Some(error) => Err(UploadError::Stopped(error)),
            None => Err(UploadError::Engine {
                what: "pipeline",
                problem: "it was stopped".into(),
            }),
        }
    }
}
