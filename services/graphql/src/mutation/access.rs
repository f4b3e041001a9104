//! Sign-up, sign-in, sessions, email verification and password reset.

use async_graphql::{Context, ID, InputObject, Object};
use tenfold_domain::OrgId;

use crate::context::{GqlResult, app, meta, principal};
use crate::ids::{GlobalId, NodeKind};
use crate::types::AuthPayload;

#[derive(InputObject)]
pub struct SignUpInput {
    pub email: String,
    /// At least 12 characters.
    pub password: String,
    pub organization_name: String,
}

#[derive(InputObject)]
pub struct LogInInput {
    pub email: String,
    pub password: String,
}

#[derive(Default)]
pub struct AccessMutation;

#[Object]
impl AccessMutation {
    /// Creates an account and an organization owned by it.
    async fn sign_up(&self, ctx: &Context<'_>, input: SignUpInput) -> async_graphql::Result<AuthPayload> {
        let input = tenfold_app::identity_inputs::SignUpInput {
            email: input.email,
            password: input.password,
            organization_name: input.organization_name,
        };
        Ok(app(ctx)?.sign_up(meta(ctx)?, input).await.gql(ctx)?.into())
    }

    async fn log_in(&self, ctx: &Context<'_>, input: LogInInput) -> async_graphql::Result<AuthPayload> {
        Ok(app(ctx)?.log_in(meta(ctx)?, &input.email, &input.password).await.gql(ctx)?.into())
    }

    /// Exchanges a refresh token for new tokens. Each refresh token works
    /// once; using one twice ends the whole sign-in.
    async fn refresh_session(&self, ctx: &Context<'_>, refresh_token: String) -> async_graphql::Result<AuthPayload> {
        Ok(app(ctx)?.refresh_session(meta(ctx)?, &refresh_token).await.gql(ctx)?.into())
    }

    /// Ends the current sign-in: its refresh and access tokens stop working.
    async fn log_out(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        app(ctx)?.log_out(principal(ctx)?).await.gql(ctx)
    }

    /// New tokens for another organization the user belongs to.
    async fn switch_organization(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<AuthPayload> {
        let org = GlobalId::decode_kind(&id, NodeKind::Organization, "organization").gql(ctx)?;
        Ok(app(ctx)?.switch_organization(principal(ctx)?, OrgId(org)).await.gql(ctx)?.into())
    }

    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> async_graphql::Result<bool> {
        app(ctx)?.verify_email(&token).await.gql(ctx)
    }

    async fn resend_verification_email(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        app(ctx)?.resend_verification_email(principal(ctx)?).await.gql(ctx)
    }

    /// Emails a reset link if an account has this address. Answers `true`
    /// either way, so it reveals nothing about who has an account.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> async_graphql::Result<bool> {
        app(ctx)?.request_password_reset(meta(ctx)?, &email).await.gql(ctx)
    }

    /// Sets a new password with the token from a reset email; every
    /// sign-in of the account ends.
    async fn reset_password(&self, ctx: &Context<'_>, token: String, new_password: String) -> async_graphql::Result<bool> {
        app(ctx)?.reset_password(meta(ctx)?, &token, &new_password).await.gql(ctx)
    }
}
