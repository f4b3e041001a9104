use async_graphql::{Context, ID, Object};
use tenfold_app::SubmitJobInput as AppSubmit;

use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind};
use crate::types::{DeviceType, Job, SubmitJobInput};

#[derive(Default)]
pub struct JobsMutation;

fn model_ref(id: Option<&ID>, what: &str) -> Result<Option<uuid::Uuid>, tenfold_app::AppError> {
    id.map(|id| GlobalId::decode_kind(id, NodeKind::ModelVersion, what)).transpose()
}

#[Object]
impl JobsMutation {
    /// Queues a job after checking it: the dataset is READY and of the
    /// family, every hyperparameter is in range, the plan's compute quota
    /// allows it. The answer carries the estimate and the queue position.
    /// The same `idempotencyKey` returns the same job.
    async fn submit_job(&self, ctx: &Context<'_>, input: SubmitJobInput) -> async_graphql::Result<Job> {
        let p = principal(ctx)?;
        let dataset = GlobalId::decode_kind(&input.dataset_version_id, NodeKind::DatasetVersion, "dataset version").gql(ctx)?;
        let base = model_ref(input.base_model_version_id.as_ref(), "model version").gql(ctx)?;
        let teacher = model_ref(input.teacher_model_version_id.as_ref(), "model version").gql(ctx)?;
        let submit = AppSubmit {
            kind: input.kind.into(),
            family: input.family.into(),
            dataset_version_id: dataset,
            architecture: input.architecture,
            base_model_version_id: base,
            teacher_model_version_id: teacher,
            hyperparameters: input.hyperparameters.map(|h| h.0).unwrap_or_default(),
            priority: input.priority,
            idempotency_key: input.idempotency_key,
            device: match input.device {
                DeviceType::Cpu => "cpu".into(),
                DeviceType::Cuda => "cuda".into(),
            },
            model: input.model,
        };
        Ok(app(ctx)?.submit_job(p, submit).await.gql(ctx)?.into())
    }

    /// Cancels a job: a queued one at once; a running one stops within a
    /// training step and keeps its last checkpoint.
    async fn cancel_job(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Job> {
        let id = GlobalId::decode_kind(&id, NodeKind::Job, "job").gql(ctx)?;
        Ok(app(ctx)?.cancel_job(principal(ctx)?, id).await.gql(ctx)?.into())
    }
}
