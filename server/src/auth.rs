//! Secrets the server checks but never stores: user passwords (argon2id,
//! slow on purpose because people choose them) and machine tokens (random
//! 32-byte secrets, where a fast keyed hash suffices), and the extractor
//! that authenticates agents by their credential.

pub mod agent;
pub mod api_key;
pub mod bearer;
pub mod password;
pub mod token;
