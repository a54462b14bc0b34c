//! Request budgets over HTTP: an agent that spends its budget gets
//! `429 rate_limited` with `Retry-After` while its neighbours carry on, and
//! failed authentication spends the client address's budget, never the
//! budget of the credential it claims.

use reqwest::StatusCode;
use stowage_protocol::api::codes;

use crate::agent_api::{enrolled, enrolled_in, error_of};
use crate::helpers::{TestApp, env, spawn_with};

/// An app whose agents may make `agent_burst` requests at once and whose
/// addresses may fail `address_burst` times, each replenished at 1 per second.
async fn app_with_budgets(agent_burst: u32, address_burst: u32) -> TestApp {
    let data_dir = tempfile::tempdir().unwrap();
    let path = data_dir.path().to_str().unwrap().to_owned();
    let agent_burst = agent_burst.to_string();
    let address_burst = address_burst.to_string();
    let settings = stowage_server::configuration::Settings::from_sources(
        None,
        &env(&[
            ("STOWAGE_LISTEN", "127.0.0.1:0"),
            ("STOWAGE_DATA_DIR", &path),
            ("STOWAGE_AGENT_RATE_LIMIT", "1"),
            ("STOWAGE_AGENT_RATE_BURST", &agent_burst),
            ("STOWAGE_ADDRESS_RATE_LIMIT", "1"),
            ("STOWAGE_ADDRESS_RATE_BURST", &address_burst),
        ]),
    )
    .unwrap();
    spawn_with(settings, data_dir).await
}

async fn list_snapshots(app: &TestApp, credential: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/api/v1/snapshots", app.address))
        .bearer_auth(credential)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_agent_over_its_budget_gets_429_with_retry_after_while_another_agent_carries_on() {
    let app = app_with_budgets(3, 20).await;
    let busy = enrolled(&app).await;
    let neighbour = enrolled_in(&app, busy.tenant, "neighbour").await;

    for _ in 0..3 {
        assert_eq!(
            list_snapshots(&app, &busy.credential).await.status(),
            StatusCode::OK
        );
    }
    let refused = list_snapshots(&app, &busy.credential).await;

    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok()),
        Some("1")
    );
    let body = error_of(refused).await;
    assert_eq!(body.code, codes::RATE_LIMITED);
    assert!(body.retryable);
    assert!(
        body.message.contains(&busy.agent.to_string()),
        "{}",
        body.message
    );
    assert_eq!(
        list_snapshots(&app, &neighbour.credential).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn failed_authentication_spends_the_address_budget_not_the_claimed_agents() {
    let app = app_with_budgets(5, 3).await;
    let victim = enrolled(&app).await; // enrollment spent one of the address's 3
    let (tenant, agent) = (victim.tenant.to_hex(), victim.agent.to_hex());
    let forged = format!("{tenant}.{agent}.{}", "00".repeat(32));

    let first = list_snapshots(&app, &forged).await;
    let second = list_snapshots(&app, &forged).await;
    let third = list_snapshots(&app, &forged).await;

    assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(second.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let body = error_of(third).await;
    assert!(body.message.contains("127.0.0.1"), "{}", body.message);
    for _ in 0..5 {
        assert_eq!(
            list_snapshots(&app, &victim.credential).await.status(),
            StatusCode::OK,
            "the real agent keeps its own budget"
        );
    }
}
