//! Everything that reads the database, on the read pool beside the writer (WAL lets readers
//! run while the writer commits): boot-time instance load, history pages, and the event
//! pages that watch streams replay.

use super::codec::{decode, spec_from_json, strings_from_json, to_i64, to_u64};
use super::error::StoreError;
use super::time::{from_micros, to_micros, to_timestamp};
use super::token::{self, List};
use super::types::{HistoryQuery, Page, StoredInstance, StoredSyncGroup};
use havip_proto::v1;
use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use std::path::Path;
use std::sync::Arc;

const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 1000;

/// The oldest event seq still kept, or last_seq + 1 when every event was pruned (or none
/// was ever written): exactly the first seq a replay can still deliver.
const OLDEST_KEPT_SQL: &str = "SELECT COALESCE((SELECT MIN(seq) FROM events), \
     (SELECT value + 1 FROM meta WHERE key = 'last_seq')) AS oldest";

#[derive(Debug, Clone)]
pub(crate) struct Reader {
    pool: SqlitePool,
    path: Arc<Path>,
}

/// A page of events for a replay, read in one snapshot together with the oldest seq kept
/// at that moment, so the caller can tell a filtered-out stretch from a pruned one.
#[derive(Debug)]
pub(crate) struct EventsPage {
    pub(crate) events: Vec<v1::Event>,
    pub(crate) oldest_kept: u64,
}

/// The event filter of a replay, as JSON arrays for `json_each`; `None` matches all.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventsFilter {
    pub(crate) instances_json: Option<String>,
    pub(crate) kinds_json: Option<String>,
}

impl Reader {
    pub(crate) fn new(pool: SqlitePool, path: Arc<Path>) -> Self {
        Self { pool, path }
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    fn err(&self, e: &sqlx::Error) -> StoreError {
        StoreError::from_sqlx(&self.path, e)
    }

    pub(crate) async fn load_instances(&self) -> Result<Vec<StoredInstance>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, spec_json, revision, created_at, updated_at \
             FROM instances ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(&e))?;
        rows.iter().map(|row| self.instance_from_row(row)).collect()
    }

    pub(crate) async fn load_sync_groups(&self) -> Result<Vec<StoredSyncGroup>, StoreError> {
        let groups = sqlx::query("SELECT name, revision FROM sync_groups ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(&e))?;
        let members = sqlx::query(
            "SELECT instance, sync_group FROM sync_group_members ORDER BY sync_group, position",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(&e))?;
        let mut out = Vec::with_capacity(groups.len());
        for row in &groups {
            let name: String = self.get(row, "name")?;
            let mut list = Vec::new();
            for m in &members {
                if self.get::<String>(m, "sync_group")? == name {
                    list.push(self.get::<String>(m, "instance")?);
                }
            }
            out.push(StoredSyncGroup {
                revision: to_u64(
                    &self.path,
                    "a sync group revision",
                    self.get(row, "revision")?,
                )?,
                name,
                members: list,
            });
        }
        Ok(out)
    }

    fn instance_from_row(&self, row: &SqliteRow) -> Result<StoredInstance, StoreError> {
        let name: String = self.get(row, "name")?;
        let what = format!("the spec of instance {name:?}");
        let spec = spec_from_json(&self.path, &what, &self.get::<String>(row, "spec_json")?)?;
        Ok(StoredInstance {
            revision: to_u64(
                &self.path,
                "an instance revision",
                self.get(row, "revision")?,
            )?,
            create_time: from_micros(self.get(row, "created_at")?),
            update_time: from_micros(self.get(row, "updated_at")?),
            name,
            spec,
        })
    }

    pub(crate) async fn list_transitions(
        &self,
        q: &HistoryQuery,
    ) -> Result<Page<v1::Transition>, StoreError> {
        let below = token::decode(List::Transitions, q)?;
        let size = page_size(q.page_size);
        // Two statements rather than `?1 IS NULL OR instance = ?1`, so that SQLite can use
        // the instance index (which is ordered by seq) when there is an instance.
        let sql = if q.instance.is_some() {
            "SELECT seq, body FROM transitions WHERE instance = ?1 \
             AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at < ?3) \
             AND (?4 IS NULL OR seq < ?4) ORDER BY seq DESC LIMIT ?5"
        } else {
            "SELECT seq, body FROM transitions WHERE ?1 IS NULL \
             AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at < ?3) \
             AND (?4 IS NULL OR seq < ?4) ORDER BY seq DESC LIMIT ?5"
        };
        let rows = sqlx::query(sql)
            .bind(q.instance.as_deref())
            .bind(q.since.map(to_micros))
            .bind(q.until.map(to_micros))
            .bind(below)
            .bind(i64::from(size) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(&e))?;
        let mut items = Vec::with_capacity(rows.len());
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            keys.push(self.get::<i64>(row, "seq")?);
            items.push(decode(
                &self.path,
                "a transition",
                &self.get::<Vec<u8>>(row, "body")?,
            )?);
        }
        Ok(paginate(List::Transitions, q, size, items, &keys))
    }

    pub(crate) async fn list_config_changes(
        &self,
        q: &HistoryQuery,
    ) -> Result<Page<v1::ConfigChange>, StoreError> {
        let below = token::decode(List::ConfigChanges, q)?;
        let size = page_size(q.page_size);
        let rows = sqlx::query(
            "SELECT id, instance, revision, kind, actor, at, old_spec_json, new_spec_json, \
             changed_fields, comment, sync_group, old_group_json, new_group_json \
             FROM config_changes \
             WHERE (?1 IS NULL OR instance = ?1) \
             AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at < ?3) \
             AND (?4 IS NULL OR id < ?4) ORDER BY id DESC LIMIT ?5",
        )
        .bind(q.instance.as_deref())
        .bind(q.since.map(to_micros))
        .bind(q.until.map(to_micros))
        .bind(below)
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(&e))?;
        let mut items = Vec::with_capacity(rows.len());
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            keys.push(self.get::<i64>(row, "id")?);
            items.push(self.change_from_row(row)?);
        }
        Ok(paginate(List::ConfigChanges, q, size, items, &keys))
    }

    fn change_from_row(&self, row: &SqliteRow) -> Result<v1::ConfigChange, StoreError> {
        let spec = |column: &str| -> Result<Option<v1::InstanceSpec>, StoreError> {
            self.get::<Option<String>>(row, column)?
                .map(|json| spec_from_json(&self.path, "a spec in the config history", &json))
                .transpose()
        };
        let group = |column: &str| -> Result<Option<v1::SyncGroup>, StoreError> {
            self.get::<Option<String>>(row, column)?
                .map(|json| {
                    serde_json::from_str(&json).map_err(|e| StoreError::Corrupt {
                        path: Arc::clone(&self.path),
                        detail: format!("a sync group in the config history is not valid: {e}"),
                    })
                })
                .transpose()
        };
        let fields: String = self.get(row, "changed_fields")?;
        Ok(v1::ConfigChange {
            instance: self.get(row, "instance")?,
            revision: to_u64(
                &self.path,
                "a config change revision",
                self.get(row, "revision")?,
            )?,
            kind: self.get(row, "kind")?,
            actor: self.get(row, "actor")?,
            time: Some(to_timestamp(from_micros(self.get(row, "at")?))),
            old_spec: spec("old_spec_json")?,
            new_spec: spec("new_spec_json")?,
            changed_fields: strings_from_json(&self.path, "changed_fields", &fields)?,
            comment: self.get(row, "comment")?,
            sync_group: self
                .get::<Option<String>>(row, "sync_group")?
                .unwrap_or_default(),
            old_group: group("old_group_json")?,
            new_group: group("new_group_json")?,
        })
    }

    pub(crate) async fn oldest_kept_seq(&self) -> Result<u64, StoreError> {
        let row = sqlx::query(OLDEST_KEPT_SQL)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(&e))?;
        self.oldest_from_row(&row)
    }

    fn oldest_from_row(&self, row: &SqliteRow) -> Result<u64, StoreError> {
        let oldest: Option<i64> = self.get(row, "oldest")?;
        let oldest = oldest.ok_or_else(|| StoreError::Corrupt {
            path: Arc::clone(&self.path),
            detail: "the meta table has no last_seq".into(),
        })?;
        to_u64(&self.path, "the oldest seq", oldest)
    }

    /// Events with `after < seq < before` that pass `filter`, in seq order, at most `limit`.
    pub(crate) async fn events_page(
        &self,
        after: u64,
        before: u64,
        filter: &EventsFilter,
        limit: u32,
    ) -> Result<EventsPage, StoreError> {
        // One read transaction: both statements see the same snapshot.
        let mut tx = self.pool.begin().await.map_err(|e| self.err(&e))?;
        let rows = sqlx::query(
            "SELECT body FROM events WHERE seq > ?1 AND seq < ?2 \
             AND (?3 IS NULL OR instance IN (SELECT value FROM json_each(?3))) \
             AND (?4 IS NULL OR kind IN (SELECT value FROM json_each(?4))) \
             ORDER BY seq LIMIT ?5",
        )
        .bind(to_i64(after))
        .bind(to_i64(before))
        .bind(filter.instances_json.as_deref())
        .bind(filter.kinds_json.as_deref())
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.err(&e))?;
        let oldest = sqlx::query(OLDEST_KEPT_SQL)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.err(&e))?;
        tx.rollback().await.map_err(|e| self.err(&e))?;
        let events = rows
            .iter()
            .map(|row| decode(&self.path, "an event", &self.get::<Vec<u8>>(row, "body")?))
            .collect::<Result<Vec<v1::Event>, _>>()?;
        Ok(EventsPage {
            events,
            oldest_kept: self.oldest_from_row(&oldest)?,
        })
    }

    fn get<T>(&self, row: &SqliteRow, column: &str) -> Result<T, StoreError>
    where
        T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
    {
        row.try_get(column).map_err(|e| self.err(&e))
    }
}

fn page_size(requested: u32) -> u32 {
    match requested {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    }
}

/// Cuts the `size + 1` rows fetched to a page; the extra row only says there is more.
fn paginate<T>(
    list: List,
    q: &HistoryQuery,
    size: u32,
    mut items: Vec<T>,
    keys: &[i64],
) -> Page<T> {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    let next_page_token = (items.len() > size).then(|| {
        items.truncate(size);
        token::encode(list, q, keys[size - 1])
    });
    Page {
        items,
        next_page_token,
    }
}
