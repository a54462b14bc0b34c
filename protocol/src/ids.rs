//! TODO: ids
