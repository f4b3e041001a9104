use async_graphql::{Context, ID, InputObject, Object, Upload};
use tenfold_app::UploadInput;

use crate::context::{GqlResult, app, principal};
use crate::ids::{GlobalId, NodeKind};
use crate::types::{DatasetVersion, Family};

#[derive(InputObject)]
pub struct UploadDatasetInput {
    /// The dataset's name; uploading again under it adds a version.
    pub name: String,
    pub family: Family,
    /// The file, by the GraphQL multipart request spec.
    pub file: Upload,
    /// CHAT only: mask email addresses, phone numbers and card numbers in
    /// the messages before the file is stored (the original is never kept).
    #[graphql(default = false)]
    pub redact: bool,
}

#[derive(Default)]
pub struct DatasetsMutation;

#[Object]
impl DatasetsMutation {
    /// Stores a file as a new dataset version and queues its validation
    /// (`DatasetVersion.validation`, run by a worker): the version is
    /// PENDING, then READY or INVALID.
    async fn upload_dataset(&self, ctx: &Context<'_>, input: UploadDatasetInput) -> async_graphql::Result<DatasetVersion> {
        let p = principal(ctx)?;
        let upload = input.file.value(ctx)?;
        let input = UploadInput {
            name: &input.name,
            family: tenfold_domain::Family::from(input.family).as_str(),
            file_name: &upload.filename,
            file: upload.content,
            redact: input.redact,
            counted_bytes: 0,
        };
        Ok(app(ctx)?.upload_dataset(p, input).await.gql(ctx)?.into())
    }

    /// Deletes a dataset with all its versions and files.
    async fn delete_dataset(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let id = GlobalId::decode_kind(&id, NodeKind::Dataset, "dataset").gql(ctx)?;
        app(ctx)?.delete_dataset(principal(ctx)?, id).await.gql(ctx)
    }
}
