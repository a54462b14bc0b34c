//! One small Tokio runtime for the harness's own async calls (the object
//! store, the database admin connection, the agent's API client), so tests
//! stay plain `#[test]` functions that block on processes.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// Runs `future` to completion on the harness runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .thread_name("e2e-harness")
                .build()
                .expect("the harness runtime starts")
        })
        .block_on(future)
}
