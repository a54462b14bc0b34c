//! Writing file content so that runs of zero bytes stay holes.
//!
//! Every restored file is a new, empty file, so whatever is not written
//! reads back as zeros. Content is written at explicit offsets, skipping
//! every file-system block (4 KiB, aligned to the file) that is all zeros;
//! the file's length is set at the end, so trailing zeros are a hole too.
//! A sparse source file stays sparse, and a dense one costs one scan of
//! each block.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The granularity of holes: the usual file-system block size.
pub const BLOCK: u64 = 4096;

/// Writes `data` at `offset` of `file`, leaving all-zero blocks unwritten.
///
/// # Errors
///
/// The write fails (e.g. the disk is full).
pub fn write_sparse(file: &File, offset: u64, data: &[u8]) -> io::Result<()> {
    let mut position = 0usize;
    // A run of non-zero blocks waiting to be written: data[run_start..position].
    let mut run_start: Option<usize> = None;
    while position < data.len() {
        let absolute = offset + position as u64;
        let to_boundary = usize::try_from(BLOCK - absolute % BLOCK).expect("a block fits usize");
        let end = (position + to_boundary).min(data.len());
        let block = &data[position..end];
        if is_zero(block) {
            if let Some(start) = run_start.take() {
                file.write_all_at(&data[start..position], offset + start as u64)?;
            }
        } else if run_start.is_none() {
            run_start = Some(position);
        }
        position = end;
    }
    if let Some(start) = run_start {
        file.write_all_at(&data[start..], offset + start as u64)?;
    }
    Ok(())
}

/// Whether every byte is zero, eight at a time.
fn is_zero(bytes: &[u8]) -> bool {
    let mut words = bytes.chunks_exact(8);
    let words_zero = words
        .by_ref()
        .all(|w| u64::from_ne_bytes(w.try_into().expect("eight bytes")) == 0);
    words_zero && words.remainder().iter().all(|b| *b == 0)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn zero_runs_become_holes_and_the_content_reads_back_exactly() {
        // Arrange: 1 MiB of data, 8 MiB of zeros, 1 MiB of data, 4 MiB of trailing zeros,
        // written as chunks that do not line up with blocks.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let file = File::create(&path).unwrap();
        let mut content = vec![0u8; 14 << 20];
        content[..1 << 20].fill(7);
        content[9 << 20..10 << 20].fill(9);
        content[5000] = 0;

        // Act
        let mut offset = 0u64;
        for chunk in content.chunks(777_777) {
            write_sparse(&file, offset, chunk).unwrap();
            offset += chunk.len() as u64;
        }
        file.set_len(offset).unwrap();
        file.sync_all().unwrap();

        // Assert
        assert_eq!(std::fs::read(&path).unwrap(), content);
        let allocated = file.metadata().unwrap().blocks() * 512;
        assert!(
            allocated < 4 << 20,
            "{allocated} bytes allocated for 2 MiB of data in a 14 MiB file"
        );
    }

    #[test]
    fn a_dense_file_is_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dense");
        let file = File::create(&path).unwrap();
        let content: Vec<u8> = (0..100_000u32)
            .map(|i| u8::try_from(i % 251 + 1).unwrap())
            .collect();
        write_sparse(&file, 0, &content[..5]).unwrap();
        write_sparse(&file, 5, &content[5..]).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), content);
    }

    #[test]
    fn zero_detection_checks_every_byte() {
        assert!(is_zero(&[0; 4096]));
        for at in [0, 7, 8, 4095, 4090] {
            let mut block = [0u8; 4096];
            block[at] = 1;
            assert!(!is_zero(&block), "{at}");
        }
        assert!(!is_zero(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    }
}
