//! HTTP handlers, one file per URL area.

pub mod health;
