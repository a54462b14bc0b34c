//! TODO: blob
