use sea_orm::entity::prelude::*;

/// A key an organization issued to one of its own customers, for its
/// endpoints only, with its own rate limit and monthly quota.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customer_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub org_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub lookup_id: String,
    pub secret_hash: String,
    pub name: String,
    /// JSON object of the organization's own strings.
    pub metadata: String,
    /// JSON array of endpoint ids.
    pub endpoint_ids: String,
    pub rate_per_minute: Option<i32>,
    pub monthly_quota: Option<i64>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
