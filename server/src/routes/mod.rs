//! HTTP handlers, one file per URL area.

pub mod api;
pub mod health;
