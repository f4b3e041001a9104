//! The recommendation routes' bodies: Amazon Personalize's shapes
//! (`GetRecommendations`, `PutEvents`), which recommendation clients know.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/endpoints/{slug}/recommendations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({ "userId": "196", "numResults": 10 }))]
pub struct RecommendationsRequest {
    /// The user, as your interaction data names them. A user the model has
    /// not seen gets the most popular items (`coldStart: true`).
    #[schema(min_length = 1, max_length = 256)]
    pub user_id: String,
    /// Items to list (default 25).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 500)]
    pub num_results: Option<u32>,
    /// Leave out what the user already interacted with (default true).
    #[serde(default)]
    pub exclude_seen: Option<bool>,
    #[serde(default)]
    pub filter: Option<ItemFilter>,
}

/// Which items may be listed.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ItemFilter {
    /// Only these items (ids the model does not know are ignored).
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub include_item_ids: Option<Vec<String>>,
    /// Never these items.
    #[serde(default)]
    #[schema(max_items = 10000)]
    pub exclude_item_ids: Option<Vec<String>>,
}

/// `POST /v1/endpoints/{slug}/similar-items`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({ "itemId": "50", "numResults": 10 }))]
pub struct SimilarItemsRequest {
    #[schema(min_length = 1, max_length = 256)]
    pub item_id: String,
    /// Items to list (default 25).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 500)]
    pub num_results: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScoredItem {
    pub item_id: String,
    /// Higher is better; comparable within one answer.
    pub score: f32,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationsResponse {
    /// Best first.
    pub item_list: Vec<ScoredItem>,
    /// Report impressions and clicks against it (`/events`).
    pub recommendation_id: String,
    /// The user was unknown: these are the most popular items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cold_start: Option<bool>,
    /// The model version that answered.
    pub model_version: String,
}

/// `POST /v1/endpoints/{slug}/events`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({ "eventList": [{ "eventType": "click", "recommendationId": "0192f0c2-1c1e-7bb5-9c2f-6f6a4e3c2b10", "itemId": "50" }] }))]
pub struct EventsRequest {
    #[schema(min_items = 1, max_items = 100)]
    pub event_list: Vec<Event>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    /// The recommendation (or an item of it) was shown.
    Impression,
    /// The user chose an item of it.
    Click,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    pub event_type: EventType,
    /// What a recommendations or similar-items answer gave.
    pub recommendation_id: String,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub item_id: Option<String>,
    /// Your id of the event: a retried report is counted once.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    pub event_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventsResponse {
    /// Events that were new (a retried one is not counted again).
    pub recorded: u64,
}
