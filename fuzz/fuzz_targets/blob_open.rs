//! Sealed blobs: header parsing and opening must never panic, and opening
//! must never allocate more than the caller's plaintext cap in one go.
//!
//! The first input byte picks one of three harnesses (mod 3):
//!
//! - 0, raw: `id[32] || sealed bytes`, opened as data and as tree under the
//!   vectors' data key. Reaches the header checks; the vector blobs open.
//! - 1, forged: `kind || flags || body`, sealed around `body` as is (see
//!   `forge_blob`), so authentication passes and the kind check, size cap and
//!   zstd decompression see fuzzer bytes — including decompression bombs.
//! - 2, sealed then damaged: `ctl || pos[2] || xor || plaintext`. Seals the
//!   plaintext (ctl bit 0: compress, bit 1: tree), checks it opens with its
//!   own length as the cap and not with one byte less, then flips bits at
//!   `pos` and checks the damage is detected.

#![no_main]

use std::sync::{LazyLock, Mutex};

use libfuzzer_sys::fuzz_target;
use stowage_protocol::blob::{
    BlobError, BlobHeader, BlobKind, BlobOpener, Compression, SEALED_BLOB_OVERHEAD, seal_blob,
    verify_blob_id,
};
use stowage_protocol::ids::BlobId;
use stowage_protocol_fuzz::peak_alloc::{PeakAlloc, measure};
use stowage_protocol_fuzz::{FUZZ_NONCE, data_key, forge_blob, forged_id, id_key};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// The plaintext cap of the raw and forged harnesses: small, so a bomb is
/// cheap for the fuzzer to find and a cap violation obvious.
const CAP: usize = 64 * 1024;
/// Small allocations an open may make besides its buffers (error text).
const SLACK: usize = 1024;

/// One opener for the whole run, as a restore uses it: a zstd context that
/// saw hostile frames must still open the next blob correctly.
static OPENER: LazyLock<Mutex<BlobOpener>> = LazyLock::new(|| Mutex::new(BlobOpener::new()));

const KINDS: [BlobKind; 2] = [BlobKind::Data, BlobKind::Tree];

/// Opens with the shared opener and checks the allocation and length promises.
fn open(id: &BlobId, kind: BlobKind, sealed: &[u8], cap: usize) -> Result<Vec<u8>, BlobError> {
    let mut opener = OPENER
        .lock()
        .expect("a panicking run aborts, never poisons");
    let (result, peak) = measure(|| opener.open(&data_key(), id, kind, sealed, cap));
    assert!(
        peak <= cap + SLACK,
        "opening a {}-byte blob with a {cap}-byte cap made a {peak}-byte allocation",
        sealed.len()
    );
    if let Ok(plaintext) = &result {
        assert!(
            plaintext.len() <= cap,
            "opened {} bytes past a {cap}-byte cap",
            plaintext.len()
        );
    }
    result
}

fn raw(input: &[u8]) {
    let Some((id, sealed)) = input.split_first_chunk::<32>() else {
        return;
    };
    let id = BlobId::from_bytes(*id);
    let header = BlobHeader::parse(&id, sealed);
    for kind in KINDS {
        let Ok(plaintext) = open(&id, kind, sealed, CAP) else {
            continue;
        };
        let header = header
            .as_ref()
            .expect("a blob that opens has a valid header");
        assert_eq!(header.kind, kind);
        // The vector blobs' ids are keyed hashes of their plaintexts.
        let _ = verify_blob_id(&id_key(), &id, kind, &plaintext);
    }
}

fn forged(input: &[u8]) {
    let [kind_byte, flags, body @ ..] = input else {
        return;
    };
    let sealed = forge_blob(*kind_byte, *flags, body);
    let id = forged_id();
    for kind in KINDS {
        let result = open(&id, kind, &sealed, CAP);
        let plain_and_right_kind = *flags == 0 && *kind_byte == kind.as_u8();
        if plain_and_right_kind && body.len() <= CAP {
            assert_eq!(
                result.as_deref(),
                Ok(body),
                "an authentic plain blob must open"
            );
        }
        if result.is_ok() {
            assert_eq!(*kind_byte, kind.as_u8(), "opened a blob of another kind");
            assert!(*flags <= 1, "opened a blob with unknown flags {flags:#x}");
        }
    }
}

fn sealed_then_damaged(input: &[u8]) {
    let [ctl, pos_lo, pos_hi, xor, plaintext @ ..] = input else {
        return;
    };
    let compression = if ctl & 1 == 0 {
        Compression::NONE
    } else {
        Compression::DEFAULT
    };
    let (kind, other) = if ctl & 2 == 0 {
        (BlobKind::Data, BlobKind::Tree)
    } else {
        (BlobKind::Tree, BlobKind::Data)
    };
    let id = id_key().blob_id(kind, plaintext);
    let sealed = seal_blob(&data_key(), &id, kind, plaintext, compression, FUZZ_NONCE);
    assert!(
        sealed.len() <= plaintext.len() + SEALED_BLOB_OVERHEAD,
        "sealing grew a {}-byte plaintext to {} bytes",
        plaintext.len(),
        sealed.len()
    );

    let opened = open(&id, kind, &sealed, plaintext.len())
        .expect("a blob sealed here opens with its own length as the cap");
    assert_eq!(opened, plaintext);
    verify_blob_id(&id_key(), &id, kind, &opened).expect("the id is the plaintext's");
    if let Some(smaller) = plaintext.len().checked_sub(1) {
        assert!(
            open(&id, kind, &sealed, smaller).is_err(),
            "a cap one byte short was accepted"
        );
    }
    assert!(matches!(
        open(&id, other, &sealed, CAP),
        Err(BlobError::WrongKind { .. })
    ));
    assert!(
        open(&id, kind, &sealed[..sealed.len() - 1], CAP).is_err(),
        "a truncated blob opened"
    );

    let at = usize::from(u16::from_le_bytes([*pos_lo, *pos_hi])) % sealed.len();
    let mut damaged = sealed;
    damaged[at] ^= (*xor).max(1);
    assert!(
        open(&id, kind, &damaged, CAP).is_err(),
        "changing byte {at} of a sealed blob went unnoticed"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, input)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => raw(input),
        1 => forged(input),
        _ => sealed_then_damaged(input),
    }
});
