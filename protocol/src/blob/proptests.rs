//! Property tests: round trips, tamper detection and hostile input.

use proptest::prelude::*;

use super::*;
use crate::crypto::DataKey;

fn kind() -> impl Strategy<Value = BlobKind> {
    prop_oneof![Just(BlobKind::Data), Just(BlobKind::Tree)]
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![Just(Compression::NONE), Just(Compression::DEFAULT)]
}

/// Arbitrary bytes, half of the time very compressible.
fn plaintext() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..3000),
        (any::<u8>(), 0usize..5000).prop_map(|(b, n)| vec![b; n]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn sealed_blobs_open_to_their_plaintext(
        data in plaintext(), kind in kind(), compression in compression(),
        key in any::<[u8; 32]>(), id in any::<[u8; 32]>(), nonce in any::<[u8; 24]>(),
    ) {
        let key = DataKey::from_bytes(key);
        let id = BlobId::from_bytes(id);
        let sealed = seal_blob(&key, &id, kind, &data, compression, nonce);
        prop_assert!(sealed.len() <= data.len() + SEALED_BLOB_OVERHEAD);
        prop_assert_eq!(open_blob(&key, &id, kind, &sealed, data.len()).unwrap(), data);
    }

    #[test]
    fn flipping_any_single_bit_is_detected(
        data in plaintext(), kind in kind(), compression in compression(), bit in any::<prop::sample::Index>(),
    ) {
        let key = DataKey::from_bytes([3; 32]);
        let id = BlobId::from_bytes([4; 32]);
        let mut sealed = seal_blob(&key, &id, kind, &data, compression, [5; 24]);
        let bit = bit.index(sealed.len() * 8);
        sealed[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(open_blob(&key, &id, kind, &sealed, data.len()).is_err());
    }

    #[test]
    fn a_wrong_id_kind_or_key_is_rejected(
        data in plaintext(), kind in kind(), compression in compression(), other in any::<[u8; 32]>(),
    ) {
        let key = DataKey::from_bytes([3; 32]);
        let id = BlobId::from_bytes([4; 32]);
        let sealed = seal_blob(&key, &id, kind, &data, compression, [5; 24]);
        let other_kind = if kind == BlobKind::Data { BlobKind::Tree } else { BlobKind::Data };
        let wrong_kind = open_blob(&key, &id, other_kind, &sealed, data.len());
        let is_wrong_kind = matches!(wrong_kind, Err(BlobError::WrongKind { .. }));
        prop_assert!(is_wrong_kind);
        let other_id = BlobId::from_bytes(other);
        prop_assume!(other_id != id);
        prop_assert!(open_blob(&key, &other_id, kind, &sealed, data.len()).is_err());
        prop_assert!(open_blob(&DataKey::from_bytes(other), &id, kind, &sealed, data.len()).is_err());
    }

    #[test]
    fn hostile_bytes_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        valid_header in any::<bool>(), flags in 0u8..2, max in 0usize..1_000_000,
    ) {
        let mut bytes = bytes;
        if valid_header && bytes.len() >= 5 {
            bytes[..5].copy_from_slice(&[b'S', b'B', 1, 1, flags]);
        }
        let id = BlobId::from_bytes([1; 32]);
        let _ = BlobHeader::parse(&id, &bytes);
        prop_assert!(open_blob(&DataKey::from_bytes([0; 32]), &id, BlobKind::Data, &bytes, max).is_err());
    }

    #[test]
    fn truncated_blobs_are_rejected(data in plaintext(), cut in any::<prop::sample::Index>()) {
        let key = DataKey::from_bytes([3; 32]);
        let id = BlobId::from_bytes([4; 32]);
        let sealed = seal_blob(&key, &id, BlobKind::Data, &data, Compression::DEFAULT, [5; 24]);
        let cut = cut.index(sealed.len());
        prop_assert!(open_blob(&key, &id, BlobKind::Data, &sealed[..cut], usize::MAX).is_err());
    }
}
