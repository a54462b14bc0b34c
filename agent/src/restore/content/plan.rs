//! The order a restore reads chunks in: pack by pack, in the order the
//! packs are first needed, each pack's chunks in the order they lie in it.
//!
//! A tree records every chunk's plaintext length, so each chunk's offset in
//! its file is known before anything is downloaded, and a chunk can be
//! written as soon as it arrives, wherever it falls in its file. Reading in
//! pack order turns a restore into a few long range reads per pack (the
//! backup's parallel readers spread neighbouring files over the same
//! packs, so reading in file order would jump between packs), and a chunk
//! used by several files, or several times in one file, is downloaded and
//! opened once and written to every place it belongs.
//!
//! Packs are ranked by the first file (in walk order) that needs them, so
//! files still complete roughly in walk order and few are open at once.
//!
//! Memory: one [`Use`] (24 bytes) per chunk of every file restored, beside
//! the chunk locations the restore holds anyway.

use std::collections::HashMap;
use std::ops::Range;

use stowage_protocol::api::BlobLocation;
use stowage_protocol::ids::{BlobId, PackId};
use stowage_protocol::tree::FileChunk;

/// One place a chunk is written: a file, which of its chunks, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    /// Index of the file among the restore's files.
    pub file: usize,
    /// Byte offset of the chunk in the file.
    pub offset: u64,
    /// Position of the chunk in the file's chunk list.
    pub chunk: u32,
}

impl Use {
    /// The chunk this use writes, looked up in the files' chunk lists (the
    /// ones the plan was made from).
    pub fn chunk_in(&self, files: &[super::FileJob]) -> FileChunk {
        files[self.file].chunks()[self.chunk as usize]
    }
}

/// Every chunk use of a restore, in reading order, cut into batches.
#[derive(Debug)]
pub struct Plan {
    /// Sorted by (pack rank, offset in the pack); the uses of one blob are
    /// adjacent, and blobs the server could not locate come last.
    pub uses: Vec<Use>,
    /// Consecutive ranges of `uses` with about `batch_bytes` of sealed
    /// blobs each; a blob's uses are never split between batches.
    pub batches: Vec<Range<usize>>,
    /// How many uses each file has: its writes left before it is complete.
    pub left: Vec<u32>,
}

impl Plan {
    /// Orders the chunks of `files` (each file's chunk list, in restore
    /// order) for reading from `locations`, in batches of about `batch_bytes`.
    pub fn new(
        files: &[&[FileChunk]],
        locations: &HashMap<BlobId, BlobLocation>,
        batch_bytes: u64,
    ) -> Self {
        let mut rank: HashMap<PackId, u32> = HashMap::new();
        let mut uses = Vec::new();
        let mut left = Vec::with_capacity(files.len());
        for (file, chunks) in files.iter().enumerate() {
            let mut offset = 0u64;
            for (chunk, part) in chunks.iter().enumerate() {
                if let Some(location) = locations.get(&part.id) {
                    let next = u32::try_from(rank.len()).unwrap_or(u32::MAX);
                    rank.entry(location.pack_id).or_insert(next);
                }
                uses.push(Use {
                    file,
                    offset,
                    chunk: u32::try_from(chunk).expect("a tree holds at most u32::MAX chunks"),
                });
                offset += u64::from(part.len);
            }
            left.push(u32::try_from(chunks.len()).expect("a tree holds at most u32::MAX chunks"));
        }
        let id_of = |u: &Use| files[u.file][u.chunk as usize].id;
        uses.sort_by_cached_key(|u| {
            let id = id_of(u);
            match locations.get(&id) {
                Some(location) => (rank[&location.pack_id], location.offset, id),
                None => (u32::MAX, u32::MAX, id),
            }
        });
        let mut batches = Vec::new();
        let mut start = 0;
        let mut bytes = 0u64;
        for index in 0..uses.len() {
            let id = id_of(&uses[index]);
            let first_use = index == 0 || id_of(&uses[index - 1]) != id;
            if !first_use {
                continue;
            }
            if bytes >= batch_bytes {
                batches.push(start..index);
                start = index;
                bytes = 0;
            }
            bytes += locations.get(&id).map_or(0, |l| u64::from(l.length));
        }
        if start < uses.len() {
            batches.push(start..uses.len());
        }
        Self {
            uses,
            batches,
            left,
        }
    }
}

#[cfg(test)]
mod tests {
    use stowage_protocol::blob::BlobKind;

    use super::*;

    fn id(n: u8) -> BlobId {
        BlobId::from_bytes([n; 32])
    }

    fn chunk(n: u8, len: u32) -> FileChunk {
        FileChunk { id: id(n), len }
    }

    fn at(n: u8, pack: u8, offset: u32, length: u32) -> (BlobId, BlobLocation) {
        let location = BlobLocation {
            id: id(n),
            pack_id: PackId::from_bytes([pack; 32]),
            offset,
            length,
            kind: BlobKind::Data,
        };
        (id(n), location)
    }

    #[test]
    fn packs_are_read_in_first_use_order_and_each_pack_by_offset() {
        // Arrange: file 0 needs chunk 1 (pack B) then chunk 2 (pack A);
        // file 1 needs chunk 3 (pack A, before chunk 2 in it) and chunk 1 again.
        let a = [chunk(1, 10), chunk(2, 20)];
        let b = [chunk(3, 5), chunk(1, 10)];
        let files: Vec<&[FileChunk]> = vec![&a, &b];
        let locations: HashMap<_, _> = [
            at(1, 0xB, 100, 50),
            at(2, 0xA, 900, 50),
            at(3, 0xA, 100, 50),
        ]
        .into_iter()
        .collect();

        // Act
        let plan = Plan::new(&files, &locations, 1 << 20);

        // Assert: pack B first (file 0's first chunk), its one blob used
        // twice; then pack A by offset.
        let order: Vec<(usize, u32, u64)> = plan
            .uses
            .iter()
            .map(|u| (u.file, u.chunk, u.offset))
            .collect();
        assert_eq!(order, [(0, 0, 0), (1, 1, 5), (1, 0, 0), (0, 1, 10)]);
        assert_eq!(plan.left, [2, 2]);
        assert_eq!(plan.batches.len(), 1);
        assert_eq!(plan.batches[0], 0..4);
    }

    #[test]
    fn batches_close_after_enough_sealed_bytes_and_never_split_a_blob() {
        // Arrange: three blobs of 40 sealed bytes in one pack; the middle one used twice.
        let a = [chunk(1, 1), chunk(2, 1), chunk(3, 1)];
        let b = [chunk(2, 1)];
        let files: Vec<&[FileChunk]> = vec![&a, &b];
        let locations: HashMap<_, _> = [at(1, 7, 0, 40), at(2, 7, 40, 40), at(3, 7, 80, 40)]
            .into_iter()
            .collect();

        // Act
        let plan = Plan::new(&files, &locations, 60);

        // Assert: blob 1 alone is under 60 bytes, so blob 2 (both uses) joins it.
        assert_eq!(plan.batches, [0..3, 3..4]);
    }

    #[test]
    fn unlocated_blobs_come_last_and_offsets_still_count_their_lengths() {
        let a = [chunk(9, 100), chunk(1, 10)];
        let files: Vec<&[FileChunk]> = vec![&a];
        let locations: HashMap<_, _> = [at(1, 7, 0, 40)].into_iter().collect();

        let plan = Plan::new(&files, &locations, 1 << 20);

        let order: Vec<(u32, u64)> = plan.uses.iter().map(|u| (u.chunk, u.offset)).collect();
        assert_eq!(order, [(1, 100), (0, 0)]);
    }

    #[test]
    fn an_empty_file_has_no_uses_and_nothing_left() {
        let files: Vec<&[FileChunk]> = vec![&[]];
        let plan = Plan::new(&files, &HashMap::new(), 1 << 20);
        assert!(plan.uses.is_empty() && plan.batches.is_empty());
        assert_eq!(plan.left, [0]);
    }
}
