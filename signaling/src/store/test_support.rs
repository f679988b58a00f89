//! Fresh stores for tests: always SQLite; PostgreSQL too when
//! `TEST_POSTGRES_URL` names a server (`make test` starts one). Under CI the
//! PostgreSQL server is required, so the suite never passes on SQLite alone there.

use super::Store;

/// One empty, migrated store per available backend.
pub async fn fresh_stores() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let mut stores = Vec::new();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
    let sqlite = Store::connect(&url, None).await.expect("sqlite store");
    stores.push((sqlite, Some(dir)));

    match std::env::var("TEST_POSTGRES_URL") {
        Ok(admin_url) => stores.push((fresh_postgres(&admin_url).await, None)),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!(
                "CI must run the store tests on PostgreSQL too: set TEST_POSTGRES_URL (make test does)"
            )
        }
        Err(_) => eprintln!("TEST_POSTGRES_URL unset: store tests ran on SQLite only"),
    }
    stores
}

/// A new database on the server, so tests running at once never share tables.
async fn fresh_postgres(admin_url: &str) -> Store {
    let name = format!("kefu_test_{}", uuid::Uuid::new_v4().simple());
    let admin = Store::connect_raw(admin_url)
        .await
        .expect("postgres admin connection");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("URL with a database name");
    Store::connect(&format!("{base}/{name}"), Some(4))
        .await
        .expect("postgres store")
}
