//! Enterprises, users, groups and sessions.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::accounts::{
    AgentStatus, Enterprise, EnterpriseId, Group, GroupId, User, UserId, UserRole,
};
use crate::store::{Store, StoreError, conflict, parse_column};

/// A user to create; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub enterprise_id: EnterpriseId,
    pub login: String,
    pub role: UserRole,
    pub real_name: String,
    pub id_number_enc: Option<String>,
    pub password_hash: String,
    pub capacity: u32,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: UserId,
    pub created_at: i64,
    pub expires_at: i64,
}

// Column lists as macros, so every query stays a `&'static str` (sqlx refuses
// runtime-built SQL unless asserted safe).
macro_rules! enterprise_columns {
    () => {
        "id, name, main_account, time_zone, verification_period, \
         ring_timeout_secs, queue_capacity, recording_enabled, created_at, request_wait_secs"
    };
}
macro_rules! user_columns {
    ($p:literal) => {
        concat!(
            $p,
            "id, ",
            $p,
            "enterprise_id, ",
            $p,
            "login, ",
            $p,
            "role, ",
            $p,
            "real_name, ",
            $p,
            "id_number_enc, ",
            $p,
            "video_enabled, ",
            $p,
            "capacity, ",
            $p,
            "status, ",
            $p,
            "accepting, ",
            $p,
            "idle_since, ",
            $p,
            "created_at"
        )
    };
}

fn enterprise_from_row(row: &AnyRow) -> Result<Enterprise, StoreError> {
    Ok(Enterprise {
        id: EnterpriseId(row.try_get("id")?),
        name: row.try_get("name")?,
        main_account: row.try_get("main_account")?,
        time_zone: row.try_get("time_zone")?,
        verification_period: to_u32(row.try_get("verification_period")?)?,
        ring_timeout_secs: to_u32(row.try_get("ring_timeout_secs")?)?,
        queue_capacity: to_u32(row.try_get("queue_capacity")?)?,
        recording_enabled: flag(row.try_get("recording_enabled")?),
        created_at: row.try_get("created_at")?,
        request_wait_secs: to_u32(row.try_get("request_wait_secs")?)?,
    })
}

fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    let role: String = row.try_get("role")?;
    let status: String = row.try_get("status")?;
    Ok(User {
        id: UserId(row.try_get("id")?),
        enterprise_id: EnterpriseId(row.try_get("enterprise_id")?),
        login: row.try_get("login")?,
        role: parse_column(&role, "users.role")?,
        real_name: row.try_get("real_name")?,
        id_number_enc: row.try_get("id_number_enc")?,
        video_enabled: flag(row.try_get("video_enabled")?),
        capacity: to_u32(row.try_get("capacity")?)?,
        status: parse_column(&status, "users.status")?,
        accepting: flag(row.try_get("accepting")?),
        idle_since: row.try_get("idle_since")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Flags are stored as 0/1.
fn flag(v: i64) -> bool {
    v != 0
}

fn to_u32(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} is out of range")))
}

impl Store {
    pub async fn create_enterprise(&self, e: &Enterprise) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO enterprises (",
            enterprise_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(e.id.as_str())
        .bind(&e.name)
        .bind(&e.main_account)
        .bind(&e.time_zone)
        .bind(i64::from(e.verification_period))
        .bind(i64::from(e.ring_timeout_secs))
        .bind(i64::from(e.queue_capacity))
        .bind(i64::from(e.recording_enabled))
        .bind(e.created_at)
        .bind(i64::from(e.request_wait_secs))
        .execute(&self.pool)
        .await
        .map_err(conflict("enterprise main account"))?;
        Ok(())
    }

    pub async fn enterprise(&self, id: &EnterpriseId) -> Result<Option<Enterprise>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            enterprise_columns!(),
            " FROM enterprises WHERE id = $1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(enterprise_from_row).transpose()
    }

    pub async fn enterprise_by_main_account(
        &self,
        main_account: &str,
    ) -> Result<Option<Enterprise>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            enterprise_columns!(),
            " FROM enterprises WHERE main_account = $1"
        ))
        .bind(main_account)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(enterprise_from_row).transpose()
    }

    /// Seconds an unanswered call rings before it times out.
    pub async fn set_ring_timeout(&self, id: &EnterpriseId, secs: u32) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE enterprises SET ring_timeout_secs = $1 WHERE id = $2")
            .bind(i64::from(secs))
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Seconds a customer's request may wait in all before it times out.
    pub async fn set_request_wait(&self, id: &EnterpriseId, secs: u32) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE enterprises SET request_wait_secs = $1 WHERE id = $2")
            .bind(i64::from(secs))
            .bind(id.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn count_enterprises(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM enterprises")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    pub async fn create_user(&self, new: &NewUser, now_ms: i64) -> Result<User, StoreError> {
        let user = User {
            id: UserId::generate(),
            enterprise_id: new.enterprise_id.clone(),
            login: new.login.clone(),
            role: new.role,
            real_name: new.real_name.clone(),
            id_number_enc: new.id_number_enc.clone(),
            video_enabled: false,
            capacity: new.capacity,
            status: AgentStatus::Offline,
            accepting: false,
            idle_since: now_ms,
            created_at: now_ms,
        };
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(""),
            ", password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(user.id.as_str())
        .bind(user.enterprise_id.as_str())
        .bind(&user.login)
        .bind(user.role.as_str())
        .bind(&user.real_name)
        .bind(user.id_number_enc.clone())
        .bind(i64::from(user.video_enabled))
        .bind(i64::from(user.capacity))
        .bind(user.status.as_str())
        .bind(i64::from(user.accepting))
        .bind(user.idle_since)
        .bind(user.created_at)
        .bind(&new.password_hash)
        .execute(&self.pool)
        .await
        .map_err(conflict("login"))?;
        Ok(user)
    }

    pub async fn user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(""),
            " FROM users WHERE id = $1 AND deleted_at IS NULL"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The user with this login and their password hash.
    pub async fn user_by_login(&self, login: &str) -> Result<Option<(User, String)>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(""),
            ", password_hash FROM users WHERE login = $1 AND deleted_at IS NULL"
        ))
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((user_from_row(&row)?, row.try_get("password_hash")?))),
            None => Ok(None),
        }
    }

    /// Users of one enterprise, by login.
    pub async fn users_of(&self, enterprise: &EnterpriseId) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(""),
            " FROM users WHERE enterprise_id = $1 AND deleted_at IS NULL ORDER BY login"
        ))
        .bind(enterprise.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Every user's name in one enterprise, removed users included (records and
    /// recordings keep naming them).
    pub async fn user_names_of(
        &self,
        enterprise: &EnterpriseId,
    ) -> Result<Vec<(UserId, String)>, StoreError> {
        let rows = sqlx::query("SELECT id, real_name FROM users WHERE enterprise_id = $1")
            .bind(enterprise.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((UserId(r.try_get("id")?), r.try_get("real_name")?)))
            .collect()
    }

    pub async fn set_password_hash(&self, user: &UserId, hash: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(hash)
                .bind(user.as_str())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_video_enabled(
        &self,
        user: &UserId,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE users SET video_enabled = $1 WHERE id = $2 AND deleted_at IS NULL")
                .bind(i64::from(enabled))
                .bind(user.as_str())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sets an agent's presence; coming online starts their idle time.
    pub async fn set_presence(
        &self,
        user: &UserId,
        status: AgentStatus,
        accepting: bool,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE users SET \
               idle_since = CASE WHEN status <> 'online' AND $1 = 'online' THEN $2 ELSE idle_since END, \
               status = $1, accepting = $3 \
             WHERE id = $4 AND deleted_at IS NULL",
        )
        .bind(status.as_str())
        .bind(now_ms)
        .bind(i64::from(accepting))
        .bind(user.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The agent became idle (a call ended): routing ties go to the longest idle.
    pub async fn set_idle_since(&self, user: &UserId, now_ms: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET idle_since = $1 WHERE id = $2")
            .bind(now_ms)
            .bind(user.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn create_group(
        &self,
        enterprise: &EnterpriseId,
        name: &str,
        now_ms: i64,
    ) -> Result<Group, StoreError> {
        let group = Group {
            id: GroupId::generate(),
            enterprise_id: enterprise.clone(),
            name: name.to_owned(),
        };
        sqlx::query(
            "INSERT INTO reception_groups (id, enterprise_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(group.id.as_str())
        .bind(enterprise.as_str())
        .bind(name)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(conflict("group name"))?;
        Ok(group)
    }

    pub async fn group_by_name(
        &self,
        enterprise: &EnterpriseId,
        name: &str,
    ) -> Result<Option<Group>, StoreError> {
        let row = sqlx::query(
            "SELECT id, enterprise_id, name FROM reception_groups WHERE enterprise_id = $1 AND name = $2",
        )
        .bind(enterprise.as_str())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Group {
                id: GroupId(r.try_get("id")?),
                enterprise_id: EnterpriseId(r.try_get("enterprise_id")?),
                name: r.try_get("name")?,
            })
        })
        .transpose()
    }

    /// An enterprise's groups, by name.
    pub async fn groups_of(&self, enterprise: &EnterpriseId) -> Result<Vec<Group>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, enterprise_id, name FROM reception_groups WHERE enterprise_id = $1 ORDER BY name",
        )
        .bind(enterprise.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Group {
                    id: GroupId(r.try_get("id")?),
                    enterprise_id: EnterpriseId(r.try_get("enterprise_id")?),
                    name: r.try_get("name")?,
                })
            })
            .collect()
    }

    /// Groups an agent belongs to.
    pub async fn groups_of_user(&self, user: &UserId) -> Result<Vec<GroupId>, StoreError> {
        let rows = sqlx::query("SELECT group_id FROM group_members WHERE user_id = $1")
            .bind(user.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok(GroupId(r.try_get("group_id")?)))
            .collect()
    }

    /// Adds an agent to a group. Both must belong to the same enterprise (checked by the
    /// caller); adding twice is a conflict.
    pub async fn add_to_group(&self, group: &GroupId, user: &UserId) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO group_members (group_id, user_id) VALUES ($1, $2)")
            .bind(group.as_str())
            .bind(user.as_str())
            .execute(&self.pool)
            .await
            .map_err(conflict("group member"))?;
        Ok(())
    }

    /// Agents of a group, by login.
    pub async fn group_members(&self, group: &GroupId) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!("u."),
            " FROM users u JOIN group_members m ON m.user_id = u.id \
             WHERE m.group_id = $1 AND u.deleted_at IS NULL ORDER BY u.login"
        ))
        .bind(group.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    pub async fn create_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&s.token_hash)
        .bind(s.user_id.as_str())
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The user behind a live session (not expired at `now_ms`, not revoked), and when
    /// that session began.
    pub async fn session_user(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<(User, i64)>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!("u."),
            ", s.created_at AS session_started_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.revoked_at IS NULL \
             AND u.deleted_at IS NULL"
        ))
        .bind(token_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => Ok(Some((
                user_from_row(&row)?,
                row.try_get("session_started_at")?,
            ))),
            None => Ok(None),
        }
    }

    /// Revokes a session; returns whether it was live.
    pub async fn revoke_session(&self, token_hash: &str, now_ms: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms)
        .bind(token_hash)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a user for good, in one transaction: the account can no longer sign in,
    /// be routed to or be listed; its sessions, groups, beauty settings, lock and face
    /// reference go. The row stays (calls, recordings and records name it), keeping
    /// the name only: the ID number and password hash are cleared and the login freed.
    /// Returns the removed reference's photo object keys (for the caller to delete),
    /// or `None` when there was no such live user.
    pub async fn remove_user(
        &self,
        user: &UserId,
        now_ms: i64,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET deleted_at = $1, login = 'deleted:' || id, id_number_enc = NULL, \
             password_hash = '!', video_enabled = 0, status = 'offline', accepting = 0 \
             WHERE id = $2 AND deleted_at IS NULL",
        )
        .bind(now_ms)
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let photos: Option<String> =
            sqlx::query_scalar("SELECT photo_keys FROM face_references WHERE agent_id = $1")
                .bind(user.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        for statement in [
            "DELETE FROM face_references WHERE agent_id = $1",
            "DELETE FROM group_members WHERE user_id = $1",
            "DELETE FROM beauty_settings WHERE user_id = $1",
            "DELETE FROM verification_locks WHERE agent_id = $1",
        ] {
            sqlx::query(statement)
                .bind(user.as_str())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms)
        .bind(user.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let keys = match photos {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("photo keys: {e}")))?,
            None => Vec::new(),
        };
        Ok(Some(keys))
    }

    /// Revokes every session of a user (password change, account disabled).
    pub async fn revoke_sessions_of(&self, user: &UserId, now_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(now_ms)
        .bind(user.as_str())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
