use async_graphql::{Context, ID, InputObject, Object, Upload};
use tenfold_app::{ImportInput, SetAliasInput as AppSetAlias};

use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind};
use crate::types::{Family, Model, ModelVersion, SetAliasInput, SetAliasPayload, SetPromotionRulesInput};

/// A model trained elsewhere, sent by the GraphQL multipart request spec:
/// in Tenfold's format (the files a version's downloads give: weights,
/// card, report), or a pretrained base model in Hugging Face's format for
/// the families that fine-tune one (CHAT: a BERT encoder's weights,
/// `config.json` and `tokenizer.json`).
#[derive(InputObject)]
pub struct ImportModelVersionInput {
    /// The model the version joins (created if new).
    pub model: String,
    pub family: Family,
    /// `model.safetensors`.
    pub weights: Upload,
    /// `model.json`, for a model in Tenfold's format.
    pub card: Option<Upload>,
    /// `report.json`, if it has one (the ship gate and comparisons need it).
    pub report: Option<Upload>,
    /// `config.json`, for a Hugging Face base model.
    pub config: Option<Upload>,
    /// `tokenizer.json`, for a Hugging Face base model.
    pub tokenizer: Option<Upload>,
}

#[derive(Default)]
pub struct ModelsMutation;

#[Object]
impl ModelsMutation {
    /// Points an alias of a model at one of its versions. Moving
    /// `production` checks every promotion rule and answers with each
    /// verdict; a refused move changes nothing (`moved: false`) unless an
    /// owner gives an `overrideReason`, which is audited.
    async fn set_alias(&self, ctx: &Context<'_>, input: SetAliasInput) -> async_graphql::Result<SetAliasPayload> {
        let version = GlobalId::decode_kind(&input.model_version_id, NodeKind::ModelVersion, "model version").gql(ctx)?;
        let moved = app(ctx)?
            .set_alias(
                principal(ctx)?,
                AppSetAlias { alias: input.alias, model_version_id: version, override_reason: input.override_reason },
            )
            .await
            .gql(ctx)?;
        Ok(moved.into())
    }

    async fn remove_alias(&self, ctx: &Context<'_>, model_id: ID, alias: String) -> async_graphql::Result<bool> {
        let model_id = GlobalId::decode_kind(&model_id, NodeKind::Model, "model").gql(ctx)?;
        app(ctx)?.remove_alias(principal(ctx)?, model_id, &alias).await.gql(ctx)
    }

    /// Sets the model's ship gate (owners and admins); empty rules clear it.
    async fn set_promotion_rules(&self, ctx: &Context<'_>, input: SetPromotionRulesInput) -> async_graphql::Result<Model> {
        let model_id = GlobalId::decode_kind(&input.model_id, NodeKind::Model, "model").gql(ctx)?;
        Ok(app(ctx)?.set_promotion_rules(principal(ctx)?, model_id, input.rules.into()).await.gql(ctx)?.into())
    }

    /// Imports a model trained elsewhere, or a pretrained base model: the
    /// card (or config and tokenizer), the architecture and every tensor's
    /// shape are checked before anything is stored.
    async fn import_model_version(&self, ctx: &Context<'_>, input: ImportModelVersionInput) -> async_graphql::Result<ModelVersion> {
        let p = principal(ctx)?;
        let import = ImportInput {
            model: input.model,
            family: input.family.into(),
            weights: input.weights.value(ctx)?.content,
            card: input.card.map(|r| r.value(ctx)).transpose()?.map(|r| r.content),
            report: input.report.map(|r| r.value(ctx)).transpose()?.map(|r| r.content),
            config: input.config.map(|r| r.value(ctx)).transpose()?.map(|r| r.content),
            tokenizer: input.tokenizer.map(|r| r.value(ctx)).transpose()?.map(|r| r.content),
        };
        Ok(app(ctx)?.import_model_version(p, import).await.gql(ctx)?.into())
    }

    /// Deletes a version and its files. Refused (CONFLICT, reason IN_USE)
    /// while an alias points at it, an unfinished job starts from it, or an
    /// endpoint serves it.
    async fn delete_model_version(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let id = GlobalId::decode_kind(&id, NodeKind::ModelVersion, "model version").gql(ctx)?;
        app(ctx)?.delete_model_version(principal(ctx)?, id).await.gql(ctx)
    }
}
