use async_graphql::Context;
use tenfold_app::{App, AppError, Principal, RequestMeta};

use crate::error::to_graphql_error;

/// What the HTTP layer learned from the request's credential. A credential
/// that was present but invalid is kept as an error, so that operations
/// needing a principal fail with UNAUTHENTICATED and say why.
pub struct RequestAuth {
    pub meta: RequestMeta,
    pub principal: Result<Option<Principal>, AppError>,
}

pub(crate) fn app<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a App> {
    ctx.data::<App>()
}

pub(crate) fn auth<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a RequestAuth> {
    ctx.data::<RequestAuth>()
}

pub(crate) fn meta<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a RequestMeta> {
    Ok(&auth(ctx)?.meta)
}

/// The authenticated principal, or UNAUTHENTICATED.
pub(crate) fn principal<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Principal> {
    match &auth(ctx)?.principal {
        Ok(Some(p)) => Ok(p),
        Ok(None) => {
            Err(to_graphql_error(AppError::unauthenticated("sign in first: send `Authorization: Bearer <access token or API key>`"), None))
        }
        Err(e) => Err(to_graphql_error(AppError::unauthenticated(e.public_message().to_owned()), None)),
    }
}

/// The principal when the request carried a valid credential, `None` when
/// it carried none; an invalid credential is still an error.
pub(crate) fn optional_principal<'a>(ctx: &Context<'a>) -> async_graphql::Result<Option<&'a Principal>> {
    match &auth(ctx)?.principal {
        Ok(p) => Ok(p.as_ref()),
        Err(e) => Err(to_graphql_error(AppError::unauthenticated(e.public_message().to_owned()), None)),
    }
}

/// Runs a use case result through the error table.
pub(crate) trait GqlResult<T> {
    fn gql(self, ctx: &Context<'_>) -> async_graphql::Result<T>;
}

impl<T> GqlResult<T> for Result<T, AppError> {
    fn gql(self, ctx: &Context<'_>) -> async_graphql::Result<T> {
        self.map_err(|e| to_graphql_error(e, meta(ctx).ok().map(|m| m.request_id.as_str())))
    }
}
