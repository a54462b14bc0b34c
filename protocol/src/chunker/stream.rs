//! Chunking a reader with bounded memory.

use std::io::{ErrorKind, Read};

use super::{Chunker, ChunkerError};

/// Smallest read buffer, so small files do not allocate the full window.
const INITIAL_BUFFER: usize = 64 * 1024;

/// A chunk lent by [`StreamChunker::next_chunk`]; valid until the next call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef<'a> {
    /// Offset of the chunk's first byte in the stream.
    pub offset: u64,
    /// The chunk's bytes (never empty).
    pub data: &'a [u8],
}

/// A chunk owned by the caller, yielded by the [`Iterator`] impl of [`StreamChunker`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedChunk {
    /// Offset of the chunk's first byte in the stream.
    pub offset: u64,
    /// The chunk's bytes (never empty).
    pub data: Vec<u8>,
}

/// Chunks a reader; holds at most 1.5 times the maximum chunk size in memory.
///
/// A buffer of up to `1.5 × max_size` bytes keeps at least one full window
/// (`max_size`) ahead of the cut; the unchunked bytes are moved to the
/// front only when the buffer's end is reached, about twice per `max_size`
/// chunked. A buffer of twice the window would move each byte about once
/// instead of twice; the memmove costs about 1 % of a backup's CPU either
/// way, while every reader thread's buffer is 4 MiB smaller (with the
/// default 8 MiB maximum) — and memory is what a backup on a busy machine
/// runs short of.
#[derive(Debug)]
pub struct StreamChunker<R> {
    /// Cuts the chunks.
    chunker: Chunker,
    /// The input.
    reader: R,
    /// Read buffer; `buffer[start..end]` is read but not yet chunked.
    buffer: Vec<u8>,
    /// Start of the unchunked bytes.
    start: usize,
    /// End of the bytes read.
    end: usize,
    /// Whether the reader has reported end of input.
    eof: bool,
    /// Stream offset of `buffer[start]`.
    offset: u64,
}

impl<R: Read> StreamChunker<R> {
    /// A reused `buffer` keeps its length: `start..end` marks the valid
    /// bytes, so its old contents are never read, and not zero-filling it
    /// again for every file saves a pass over up to 1.5 times the maximum chunk size.
    pub(super) fn new(chunker: Chunker, reader: R, buffer: Vec<u8>) -> Self {
        Self {
            chunker,
            reader,
            buffer,
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
        }
    }

    /// The next chunk, lent without copying; `None` at the end of input.
    ///
    /// # Errors
    ///
    /// [`ChunkerError::Read`] if the reader fails (interrupted reads are retried).
    pub fn next_chunk(&mut self) -> Result<Option<ChunkRef<'_>>, ChunkerError> {
        self.fill()?;
        let len = self.chunker.cut(&self.buffer[self.start..self.end]);
        if len == 0 {
            return Ok(None);
        }
        let begin = self.start;
        let offset = self.offset;
        self.start += len;
        self.offset += len as u64;
        Ok(Some(ChunkRef {
            offset,
            data: &self.buffer[begin..begin + len],
        }))
    }

    /// Bytes chunked so far.
    pub fn position(&self) -> u64 {
        self.offset
    }

    /// Gives back the read buffer, to reuse its allocation for the next stream.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buffer
    }

    /// Reads until a full window (`max_size` bytes) is buffered or the input ends.
    fn fill(&mut self) -> Result<(), ChunkerError> {
        let window = self.chunker.params.max_size as usize;
        let capacity = window + window / 2;
        while !self.eof && self.end - self.start < window {
            if self.end == self.buffer.len() {
                if self.buffer.len() < capacity {
                    let grown = (self.buffer.len() * 2).max(INITIAL_BUFFER).min(capacity);
                    self.buffer.resize(grown, 0);
                } else {
                    self.buffer.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                }
            }
            match self.reader.read(&mut self.buffer[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ChunkerError::Read {
                        offset: self.offset,
                        source,
                    });
                }
            }
        }
        Ok(())
    }
}

impl<R: Read> Iterator for StreamChunker<R> {
    type Item = Result<OwnedChunk, ChunkerError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_chunk() {
            Ok(Some(chunk)) => Some(Ok(OwnedChunk {
                offset: chunk.offset,
                data: chunk.data.to_vec(),
            })),
            Ok(None) => None,
            Err(err) => Some(Err(err)),
        }
    }
}
