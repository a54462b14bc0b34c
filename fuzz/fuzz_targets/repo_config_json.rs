//! Repository configs: `RepoConfig::from_json` on arbitrary bytes.
//!
//! A config that parses was validated, so everything built from it must work:
//! it survives its own JSON, equals itself, names a valid zstd level, and its
//! chunker parameters make a chunker that cuts the input into spans within
//! the configured sizes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stowage_protocol::blob::Compression;
use stowage_protocol::chunker::Chunker;
use stowage_protocol::config::RepoConfig;

fuzz_target!(|data: &[u8]| {
    let config = match RepoConfig::from_json(data) {
        Ok(config) => config,
        Err(err) => {
            assert!(!err.to_string().is_empty());
            return;
        }
    };
    config.validate().expect("a parsed config is valid");
    let json = config.to_json();
    let again = RepoConfig::from_json(json.as_bytes())
        .unwrap_or_else(|err| panic!("its own JSON {json:?} does not parse: {err}"));
    assert_eq!(again, config);
    assert_eq!(again.to_json(), json);
    config
        .ensure_same(&again)
        .expect("a config equals its own copy");
    assert_eq!(
        Compression::zstd(config.zstd_level).expect("the level was validated"),
        config.compression()
    );

    let params = config.chunker;
    let chunker = Chunker::new(params, 0x5eed).expect("validated parameters build a chunker");
    let spans: Vec<_> = chunker.chunks(data).collect();
    let mut next = 0;
    for (i, span) in spans.iter().enumerate() {
        assert_eq!(span.offset, next, "chunks must be contiguous");
        assert!(span.len > 0 && span.len <= params.max_size as usize);
        if i + 1 < spans.len() {
            assert!(
                span.len >= params.min_size as usize,
                "a chunk below the minimum"
            );
        }
        next += span.len;
    }
    assert_eq!(next, data.len(), "chunks must cover the input");
});
