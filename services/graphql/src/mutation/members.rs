use async_graphql::{Context, ID, InputObject, Object};
use tenfold_domain::{InvitationId, UserId};

use crate::context::{GqlResult, app, meta, optional_principal, principal};
use crate::ids::{GlobalId, NodeKind};
use crate::types::{AuthPayload, Invitation, Member, Role};

#[derive(InputObject)]
pub struct InviteMemberInput {
    pub email: String,
    pub role: Role,
}

#[derive(Default)]
pub struct MembersMutation;

#[Object]
impl MembersMutation {
    /// Emails an invitation with a single-use token. Owners and admins.
    async fn invite_member(&self, ctx: &Context<'_>, input: InviteMemberInput) -> async_graphql::Result<Invitation> {
        Ok(app(ctx)?.invite_member(principal(ctx)?, &input.email, input.role.into()).await.gql(ctx)?.into())
    }

    /// Joins the organization of an invitation. Signed in: the account must
    /// have the invited address. Not signed in and without an account: give
    /// a `password` to create one.
    async fn accept_invitation(&self, ctx: &Context<'_>, token: String, password: Option<String>) -> async_graphql::Result<AuthPayload> {
        let caller = optional_principal(ctx)?;
        Ok(app(ctx)?.accept_invitation(meta(ctx)?, caller, &token, password.as_deref()).await.gql(ctx)?.into())
    }

    async fn revoke_invitation(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Invitation> {
        let id = GlobalId::decode_kind(&id, NodeKind::Invitation, "invitation").gql(ctx)?;
        Ok(app(ctx)?.revoke_invitation(principal(ctx)?, InvitationId(id)).await.gql(ctx)?.into())
    }

    /// Removes a member (owners and admins), or leaves (anyone, for
    /// themselves). The last owner cannot be removed.
    async fn remove_member(&self, ctx: &Context<'_>, user_id: ID) -> async_graphql::Result<bool> {
        let user = GlobalId::decode_kind(&user_id, NodeKind::User, "member").gql(ctx)?;
        app(ctx)?.remove_member(principal(ctx)?, UserId(user)).await.gql(ctx)
    }

    /// Changes a member's role. Only owners grant or take away OWNER; the
    /// last owner cannot be demoted.
    async fn change_role(&self, ctx: &Context<'_>, user_id: ID, role: Role) -> async_graphql::Result<Member> {
        let user = GlobalId::decode_kind(&user_id, NodeKind::User, "member").gql(ctx)?;
        Ok(app(ctx)?.change_role(principal(ctx)?, UserId(user), role.into()).await.gql(ctx)?.into())
    }
}
