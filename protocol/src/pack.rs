//! TODO: pack
