//! TODO: chunker
