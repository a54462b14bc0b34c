//! Load generator for the ingest benchmark (`scripts/bench-ingest`): several
//! agents enroll with one token each, open an upload session, and upload
//! real sealed packs concurrently over HTTP, as fast as the server takes them.
//!
//! The packs are built (random, incompressible data sealed with the real
//! protocol code) before the clock starts, so the measurement is the
//! server's: HTTP, hashing, table checks, spooling, the object store and the
//! index. Prints one JSON line with bytes, seconds and MB/s.
//!
//! ```text
//! cargo run --release -p stowage-server --example ingest_load -- \
//!     --server http://127.0.0.1:8080 --tokens-file tokens.txt --packs-per-agent 16
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use stowage_protocol::api::{
    EnrollRequest, EnrollResponse, OpenUploadSessionRequest, PackUploadResponse, UploadSession,
};
use stowage_protocol::blob::{BlobKind, Compression, seal_blob_random};
use stowage_protocol::crypto::{DataKey, IdKey, TenantKeys, seal_data_key_random};
use stowage_protocol::ids::PackId;
use stowage_protocol::pack::PackWriter;

/// Size of each data blob inside a pack: the chunker's average.
const BLOB_SIZE: usize = 1 << 20;

#[derive(Debug, Parser)]
struct Args {
    /// Base URL of the server.
    #[arg(long)]
    server: String,
    /// One enrollment token per line; one agent per token.
    #[arg(long)]
    tokens_file: PathBuf,
    /// Packs each agent uploads.
    #[arg(long, default_value_t = 16)]
    packs_per_agent: usize,
    /// Size of each pack in MiB.
    #[arg(long, default_value_t = 16)]
    pack_mib: usize,
}

struct Agent {
    credential: String,
    session: String,
    packs: Vec<(PackId, bytes::Bytes)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tokens = std::fs::read_to_string(&args.tokens_file)
        .with_context(|| format!("unable to read {}", args.tokens_file.display()))?;
    let tokens: Vec<&str> = tokens.lines().filter(|line| !line.is_empty()).collect();
    if tokens.is_empty() {
        bail!("{} holds no enrollment token", args.tokens_file.display());
    }
    let client = reqwest::Client::builder().no_proxy().build()?;

    let mut agents = Vec::new();
    for (n, token) in tokens.iter().enumerate() {
        let (credential, session) = enroll_and_open(&client, &args.server, token, n).await?;
        let (packs_per_agent, pack_mib) = (args.packs_per_agent, args.pack_mib);
        let packs = tokio::task::spawn_blocking(move || {
            (0..packs_per_agent)
                .map(|_| build_pack(pack_mib))
                .collect::<Vec<_>>()
        })
        .await?;
        agents.push(Agent {
            credential,
            session,
            packs,
        });
    }
    let total_bytes: usize = agents
        .iter()
        .flat_map(|agent| agent.packs.iter().map(|(_, bytes)| bytes.len()))
        .sum();
    eprintln!(
        "{} agents, {} packs of {} MiB each, {total_bytes} bytes built; uploading",
        agents.len(),
        args.packs_per_agent,
        args.pack_mib
    );

    let started = Instant::now();
    let mut uploads = tokio::task::JoinSet::new();
    for agent in agents {
        let client = client.clone();
        let server = args.server.clone();
        uploads.spawn(async move { upload_all(&client, &server, agent).await });
    }
    while let Some(done) = uploads.join_next().await {
        done??;
    }
    let seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let mb_per_s = total_bytes as f64 / 1e6 / seconds;
    println!(
        r#"{{"bytes":{total_bytes},"seconds":{seconds:.3},"mb_per_s":{mb_per_s:.1},"agents":{}}}"#,
        tokens.len()
    );
    Ok(())
}

async fn enroll_and_open(
    client: &reqwest::Client,
    server: &str,
    token: &str,
    n: usize,
) -> anyhow::Result<(String, String)> {
    let enrolled: EnrollResponse = client
        .post(format!("{server}/api/v1/agents/enroll"))
        .json(&EnrollRequest {
            token: token.to_owned(),
            agent_name: format!("load-{n}"),
            hostname: format!("load-host-{n}"),
        })
        .send()
        .await?
        .error_for_status()
        .context("enrollment was refused")?
        .json()
        .await?;
    let session: UploadSession = client
        .post(format!("{server}/api/v1/uploads"))
        .bearer_auth(&enrolled.credential)
        .json(&OpenUploadSessionRequest::default())
        .send()
        .await?
        .error_for_status()
        .context("opening an upload session was refused")?
        .json()
        .await?;
    Ok((enrolled.credential, session.session_id.to_hex()))
}

/// Uploads an agent's packs one after another, as an agent with one upload
/// in flight would.
async fn upload_all(client: &reqwest::Client, server: &str, agent: Agent) -> anyhow::Result<()> {
    for (id, bytes) in agent.packs {
        let response = client
            .put(format!(
                "{server}/api/v1/uploads/{}/packs/{}",
                agent.session,
                id.to_hex()
            ))
            .bearer_auth(&agent.credential)
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!(
                "pack {id} was refused with {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        let _: PackUploadResponse = response.json().await?;
    }
    Ok(())
}

/// A pack of `mib` one-MiB random data blobs, sealed as an agent would.
fn build_pack(mib: usize) -> (PackId, bytes::Bytes) {
    let keys = TenantKeys::generate();
    let data_key = DataKey::random();
    let sealed_key =
        seal_data_key_random(&data_key, &keys.public_key()).expect("a fresh key seals");
    let id_key = IdKey::random();
    let mut writer = PackWriter::with_capacity(&sealed_key, mib * (BLOB_SIZE + 64));
    let mut plaintext = vec![0u8; BLOB_SIZE];
    for _ in 0..mib {
        getrandom::fill(&mut plaintext).expect("the system has randomness");
        let id = id_key.chunk_id(&plaintext);
        let sealed = seal_blob_random(
            &data_key,
            &id,
            BlobKind::Data,
            &plaintext,
            Compression::NONE,
        );
        writer
            .add(BlobKind::Data, id, &sealed, &[])
            .expect("a fresh blob fits the pack");
    }
    let (id, bytes) = writer.finish();
    (id, bytes.into())
}
