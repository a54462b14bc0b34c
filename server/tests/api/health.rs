use std::sync::Arc;

use stowage_server::storage::MemoryStore;

use crate::helpers::{spawn_app, spawn_on};

#[tokio::test]
async fn healthz_answers_ok() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.get("/healthz").await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn readyz_reports_every_dependency_ok() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.get("/readyz").await;

    // Assert
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"database": "ok", "object_store": "ok"})
    );
}

#[tokio::test]
async fn readyz_is_503_naming_the_database_when_it_is_gone() {
    // Arrange
    let app = spawn_app().await;
    app.database.close().await;

    // Act
    let response = app.get("/readyz").await;

    // Assert
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"database": "down", "object_store": "ok"})
    );
}

#[tokio::test]
async fn readyz_is_503_naming_the_object_store_when_it_is_down() {
    // Arrange
    let data = spawn_app().await; // only for a migrated database
    let store = Arc::new(MemoryStore::new());
    store.set_unavailable(true);
    let app = spawn_on(data.database.clone(), store).await;

    // Act
    let response = app.get("/readyz").await;

    // Assert
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"database": "ok", "object_store": "down"})
    );
}

#[tokio::test]
async fn an_unknown_path_is_404() {
    let app = spawn_app().await;

    let response = app.get("/no/such/page").await;

    assert_eq!(response.status(), 404);
}
