//! Identity and tenancy: users, organizations, memberships, invitations,
//! API keys, the audit log, refresh-token families and emailed tokens.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261128_000001_identity"
    }
}

fn fk(name: &str, from: (&'static str, &'static str), to: (&'static str, &'static str)) -> ForeignKeyCreateStatement {
    ForeignKey::create().name(name).from(from.0, from.1).to(to.0, to.1).on_delete(ForeignKeyAction::Cascade).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Global tables: a user exists across organizations.
        m.create_table(
            Table::create()
                .table("users")
                .col(uuid("id").primary_key())
                .col(string_len_uniq("email", 254))
                .col(string("password_hash"))
                .col(timestamp_with_time_zone_null("email_verified_at"))
                .col(boolean("is_platform_admin").default(false))
                .col(timestamp_with_time_zone("password_changed_at"))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("organizations")
                .col(uuid("id").primary_key())
                .col(string_len("name", 100))
                .col(string_len_uniq("slug", 48))
                .col(string_len("plan", 16))
                .col(timestamp_with_time_zone("created_at"))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("memberships")
                .col(uuid("org_id"))
                .col(uuid("user_id"))
                .col(string_len("role", 16))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("org_id").col("user_id"))
                .foreign_key(&mut fk("fk_memberships_org", ("memberships", "org_id"), ("organizations", "id")))
                .foreign_key(&mut fk("fk_memberships_user", ("memberships", "user_id"), ("users", "id")))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_memberships_user").table("memberships").col("user_id").to_owned()).await?;

        m.create_table(
            Table::create()
                .table("invitations")
                .col(uuid("org_id"))
                .col(uuid("id"))
                .col(string_len("email", 254))
                .col(string_len("role", 16))
                .col(string_len("token_hash", 64))
                .col(uuid("invited_by"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .col(timestamp_with_time_zone_null("accepted_at"))
                .col(timestamp_with_time_zone_null("revoked_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(&mut fk("fk_invitations_org", ("invitations", "org_id"), ("organizations", "id")))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ux_invitations_token").table("invitations").col("org_id").col("token_hash").unique().to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("api_keys")
                .col(uuid("org_id"))
                .col(uuid("id"))
                .col(string_len("name", 100))
                .col(string_len_uniq("lookup_id", 32))
                .col(string_len("prefix", 32))
                .col(string_len("secret_hash", 64))
                .col(text("scopes"))
                .col(uuid("created_by"))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone_null("last_used_at"))
                .col(timestamp_with_time_zone_null("revoked_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(&mut fk("fk_api_keys_org", ("api_keys", "org_id"), ("organizations", "id")))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table("audit_events")
                .col(uuid("org_id"))
                .col(uuid("id"))
                .col(uuid_null("actor_user_id"))
                .col(uuid_null("actor_api_key_id"))
                .col(string_len("action", 64))
                .col(string_len_null("target", 128))
                .col(string_len_null("ip", 64))
                .col(text("details"))
                .col(timestamp_with_time_zone("created_at"))
                .primary_key(Index::create().col("org_id").col("id"))
                .foreign_key(&mut fk("fk_audit_events_org", ("audit_events", "org_id"), ("organizations", "id")))
                .to_owned(),
        )
        .await?;

        // A sign-in is a family of refresh tokens; each is used once (rotation).
        m.create_table(
            Table::create()
                .table("refresh_tokens")
                .col(uuid("id").primary_key())
                .col(uuid("family_id"))
                .col(uuid("user_id"))
                .col(uuid("org_id"))
                .col(string_len_uniq("token_hash", 64))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .col(timestamp_with_time_zone("family_expires_at"))
                .col(timestamp_with_time_zone_null("used_at"))
                .col(timestamp_with_time_zone_null("revoked_at"))
                .foreign_key(&mut fk("fk_refresh_tokens_user", ("refresh_tokens", "user_id"), ("users", "id")))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_refresh_tokens_family").table("refresh_tokens").col("family_id").to_owned()).await?;
        m.create_index(Index::create().name("ix_refresh_tokens_user").table("refresh_tokens").col("user_id").to_owned()).await?;

        m.create_table(
            Table::create()
                .table("email_tokens")
                .col(uuid("id").primary_key())
                .col(uuid("user_id"))
                .col(string_len("purpose", 32))
                .col(string_len_uniq("token_hash", 64))
                .col(timestamp_with_time_zone("created_at"))
                .col(timestamp_with_time_zone("expires_at"))
                .col(timestamp_with_time_zone_null("used_at"))
                .foreign_key(&mut fk("fk_email_tokens_user", ("email_tokens", "user_id"), ("users", "id")))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in ["email_tokens", "refresh_tokens", "audit_events", "api_keys", "invitations", "memberships", "organizations", "users"]
        {
            m.drop_table(Table::drop().table(table).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}
