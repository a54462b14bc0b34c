//! The dedup thread: gathers blobs from every caller into [`Batch`]es, asks
//! the server which it lacks, and passes only those on to the seal pool.

use std::sync::Arc;
use std::time::Instant;

use flume::RecvTimeoutError;
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::UploadSessionId;
use tokio::runtime::Handle;

use super::batch::{Batch, BatchLimits, split_missing};
use super::progress::add;
use super::state::Shared;
use super::{Blob, UploadError};
use crate::api::ServerClient;

#[derive(Debug)]
pub(super) struct Dedup {
    pub client: ServerClient,
    pub runtime: Handle,
    pub session: UploadSessionId,
    pub shared: Arc<Shared>,
    pub limits: BatchLimits,
    /// To the seal pool.
    pub output: flume::Sender<Blob>,
}

impl Dedup {
    /// Runs until every caller's sender is gone, then sends the last batch;
    /// dropping `self` then tells the seal pool no more blobs come.
    pub fn run(self, input: &flume::Receiver<Blob>) {
        let mut batch = Batch::default();
        loop {
            let received = match batch.deadline(&self.limits) {
                None => input.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(deadline) => input.recv_deadline(deadline),
            };
            match received {
                Ok(blob) => {
                    batch.push(blob, Instant::now());
                    if batch.is_full(&self.limits) {
                        self.send(batch.take());
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.send(batch.take()),
                Err(RecvTimeoutError::Disconnected) => {
                    if !batch.is_empty() {
                        self.send(batch.take());
                    }
                    return;
                }
            }
        }
    }

    /// One `missing` query for `blobs`; the missing ones go to sealing.
    fn send(&self, blobs: Vec<Blob>) {
        if self.shared.is_stopped() {
            return;
        }
        let ids = blobs.iter().map(|blob| blob.id).collect::<Vec<_>>();
        let count = ids.len();
        let missing = match self
            .runtime
            .block_on(self.client.missing(&self.session, ids))
        {
            Ok(missing) => missing,
            Err(source) => {
                self.shared.fail(UploadError::Missing {
                    ids: count,
                    source: Box::new(source),
                });
                return;
            }
        };
        let (new, present) = split_missing(blobs, &missing);
        let counters = &self.shared.counters;
        add(&counters.blobs_deduplicated, present.len() as u64);
        drop(present);
        for blob in new {
            if blob.kind == BlobKind::Data {
                add(&counters.chunks_new, 1);
                add(&counters.bytes_new, blob.plaintext.len() as u64);
            }
            if self.output.send(blob).is_err() {
                self.shared.fail(UploadError::Engine {
                    what: "seal pool",
                    problem: "every seal thread has ended".into(),
                });
                return;
            }
        }
    }
}
