//! Pack uploads: several at once on the runtime, all under one shared
//! `--limit-upload` throttle.
//!
//! A seal thread hands over a finished pack and blocks until one of the
//! `uploads_in_flight` slots is free, so finished packs never pile up in
//! memory; the upload itself runs as a task on the runtime (network I/O
//! needs no CPU thread of its own). `ServerClient::put_pack` already retries
//! what may succeed on a second try; a failure after that is recorded as the
//! engine's fatal error, naming the pack.

use std::sync::Arc;

use bytes::Bytes;
use stowage_protocol::blob::BlobKind;
use stowage_protocol::ids::UploadSessionId;
use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use super::UploadError;
use super::pack::FinishedPack;
use super::progress::add;
use super::state::Shared;
use crate::api::ServerClient;
use crate::throttle::Throttle;

#[derive(Debug)]
pub(super) struct Uploads {
    client: ServerClient,
    runtime: Handle,
    session: UploadSessionId,
    throttle: Arc<Throttle>,
    /// One permit per upload that may run at once.
    slots: Arc<Semaphore>,
    /// The number of permits `slots` was created with.
    capacity: u32,
    shared: Arc<Shared>,
}

impl Uploads {
    pub fn new(
        client: ServerClient,
        runtime: Handle,
        session: UploadSessionId,
        throttle: Throttle,
        in_flight: usize,
        shared: Arc<Shared>,
    ) -> Self {
        let capacity = u32::try_from(in_flight.clamp(1, 64)).expect("at most 64");
        Self {
            client,
            runtime,
            session,
            throttle: Arc::new(throttle),
            slots: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            shared,
        }
    }

    /// Starts uploading `pack` once a slot is free. Blocking: call from a
    /// std thread, never from the runtime.
    pub fn submit(&self, pack: FinishedPack) {
        if self.shared.is_stopped() {
            return;
        }
        let Ok(permit) = self
            .runtime
            .block_on(Arc::clone(&self.slots).acquire_owned())
        else {
            return;
        };
        let client = self.client.clone();
        let session = self.session;
        let throttle = Arc::clone(&self.throttle);
        let shared = Arc::clone(&self.shared);
        self.runtime.spawn(async move {
            let kind = pack.kind;
            let bytes = pack.bytes.len() as u64;
            match upload(&client, &session, &throttle, pack).await {
                Ok(()) => {
                    let counters = &shared.counters;
                    add(&counters.packs_uploaded, 1);
                    add(&counters.bytes_uploaded, bytes);
                    match kind {
                        BlobKind::Data => add(&counters.data_packs_uploaded, 1),
                        BlobKind::Tree => add(&counters.tree_packs_uploaded, 1),
                    }
                }
                Err(error) => shared.fail(error),
            }
            drop(permit);
        });
    }

    /// Waits until every submitted upload has ended (succeeded or failed).
    pub fn wait_all(&self) {
        let all = self
            .runtime
            .block_on(self.slots.acquire_many(self.capacity));
        drop(all);
    }
}

async fn upload(
    client: &ServerClient,
    session: &UploadSessionId,
    throttle: &Throttle,
    pack: FinishedPack,
) -> Result<(), UploadError> {
    let FinishedPack {
        kind,
        id,
        bytes,
        blobs,
        place: _place,
    } = pack;
    let len = bytes.len();
    throttle.take(len as u64).await;
    // `Bytes` takes the buffer without a copy and shares it with retries.
    let answer = client
        .put_pack(session, &id, Bytes::from(bytes))
        .await
        .map_err(|source| UploadError::Upload {
            pack: id,
            kind,
            bytes: len,
            blobs,
            source: Box::new(source),
        })?;
    if answer.pack_id != id {
        return Err(UploadError::PackMismatch {
            sent: id,
            answered: answer.pack_id,
        });
    }
    Ok(())
}
