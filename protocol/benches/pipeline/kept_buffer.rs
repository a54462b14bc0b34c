//! Prototype of a fix for `StreamChunker` (protocol/src/chunker/stream.rs),
//! here only to measure it.
//!
//! `StreamChunker::new` clears the reused buffer (`buffer.clear()`), so
//! `fill` grows it again from 64 KiB with `Vec::resize(grown, 0)` for every
//! file: each stream zero-fills up to twice its file's size before reading
//! into it. This copy of the buffering keeps the buffer's length (and thus its
//! already initialised bytes) across streams and otherwise does what
//! `fill`/`next_chunk` do, cutting through the public slice API (the first
//! chunk of the unchunked window is exactly `Chunker::cut`).

use std::io::{ErrorKind, Read};

use stowage_protocol::chunker::Chunker;

/// Smallest buffer, as in `StreamChunker`.
const INITIAL_BUFFER: usize = 64 * 1024;

/// Calls `each` with every chunk of `reader`, buffering in `buffer`, which
/// keeps its length for the next call.
pub fn for_each_chunk(
    chunker: &Chunker,
    mut reader: impl Read,
    buffer: &mut Vec<u8>,
    mut each: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    let window = chunker.params().max_size as usize;
    let capacity = 2 * window;
    let (mut start, mut end, mut eof) = (0, 0, false);
    loop {
        while !eof && end - start < window {
            if end == buffer.len() {
                if buffer.len() < capacity {
                    let grown = (buffer.len() * 2).clamp(INITIAL_BUFFER, capacity);
                    buffer.resize(grown, 0);
                } else {
                    buffer.copy_within(start..end, 0);
                    end -= start;
                    start = 0;
                }
            }
            match reader.read(&mut buffer[end..]) {
                Ok(0) => eof = true,
                Ok(n) => end += n,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        let Some(span) = chunker.chunks(&buffer[start..end]).next() else {
            return Ok(());
        };
        each(&buffer[start..start + span.len]);
        start += span.len;
    }
}
