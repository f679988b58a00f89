//! Persistence: sqlx over SQLite (default, a file under the data folder) or PostgreSQL
//! (when `database.url` says so), through sqlx's `Any` driver so one set of queries and
//! one set of portable migrations serve both.
//!
//! This module holds the pool, the migrations and the shared helpers; each feature's
//! queries live beside it (`accounts/store.rs`, `calls/store.rs`, …) as `impl Store`
//! blocks.

use std::path::Path;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, migrate::Migrator};

static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Where the data lives.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` or `sqlite://…`. Unset: `sqlite://<data_dir>/kefu.db`.
    pub url: Option<String>,
    /// Connections in the pool.
    pub max_connections: Option<u32>,
}

/// Which engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Something went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule refused the write (e.g. a login already taken).
    #[error("already exists: {0}")]
    Conflict(&'static str),
    /// The URL names no engine we support.
    #[error("unsupported database URL (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value does not decode into the domain (corrupt or foreign data).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

/// The database handle. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Connects (creating a SQLite file if needed) and applies pending migrations.
    pub async fn open(config: &DatabaseConfig, data_dir: &Path) -> Result<Self, StoreError> {
        let url = match &config.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", data_dir.join("kefu.db").display()),
        };
        Self::connect(&url, config.max_connections).await
    }

    pub async fn connect(url: &str, max_connections: Option<u32>) -> Result<Self, StoreError> {
        install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let mut options = AnyPoolOptions::new();
        options = options.max_connections(max_connections.unwrap_or(match backend {
            // One writer at a time is what SQLite can do anyway; a few readers help.
            Backend::Sqlite => 4,
            Backend::Postgres => 16,
        }));
        if backend == Backend::Sqlite {
            // Every connection enforces foreign keys and waits on a busy writer.
            options = options.after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("PRAGMA foreign_keys = ON")
                        .execute(&mut *conn)
                        .await?;
                    sqlx::query("PRAGMA busy_timeout = 5000")
                        .execute(&mut *conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = options.connect(url).await?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        MIGRATIONS.run(&pool).await?;
        Ok(Self { pool, backend })
    }

    /// A bare pool without migrations (test setup creating databases).
    #[cfg(test)]
    pub(crate) async fn connect_raw(url: &str) -> Result<AnyPool, StoreError> {
        install_default_drivers();
        Ok(AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await?)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
pub(crate) fn conflict(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(e),
    }
}

/// Parses a stored enum-like text column.
pub(crate) fn parse_column<T: FromStr>(value: &str, column: &str) -> Result<T, StoreError> {
    value
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("{column} = {value:?}")))
}

/// Parses a stored column with `parse`, reporting corrupt data by column.
pub(crate) fn parse_column_with<T>(
    value: &str,
    column: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(value).ok_or_else(|| StoreError::Corrupt(format!("{column} = {value:?}")))
}

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
