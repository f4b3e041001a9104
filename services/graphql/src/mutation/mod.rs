mod access;
mod api_keys;
mod datasets;
mod endpoints;
mod jobs;
mod members;
mod models;
mod webhooks;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
pub struct Mutation(
    access::AccessMutation,
    members::MembersMutation,
    api_keys::ApiKeysMutation,
    datasets::DatasetsMutation,
    jobs::JobsMutation,
    models::ModelsMutation,
    endpoints::EndpointsMutation,
    webhooks::WebhooksMutation,
);
