//! Queries grouped by table. Functions on tenant-owned tables take the
//! `OrgId` as a required parameter and always filter on it.

pub mod api_keys;
pub mod audit;
pub mod customer_keys;
pub mod datasets;
pub mod dispatch;
pub mod email_tokens;
pub mod endpoints;
pub mod feedback;
pub mod invitations;
pub mod jobs;
pub mod memberships;
pub mod models;
pub mod orgs;
pub mod refresh_tokens;
pub mod storage;
pub mod uploads;
pub mod usage;
pub mod users;
pub mod webhooks;

/// One page of a keyset-paginated list: rows after the cursor, in id order,
/// and whether more follow.
#[derive(Debug)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub has_next: bool,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows.
    pub fn from_overfetch(mut rows: Vec<T>, limit: u64) -> Self {
        let has_next = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        Self { rows, has_next }
    }
}
