//! The public GraphQL API: schema, types, limits. No HTTP here; the `api`
//! crate serves it. Resolvers are thin: they map arguments to a use case of
//! [`tenfold_app::App`] and its result back to GraphQL types.

mod context;
mod error;
mod ids;
mod limits;
mod mutation;
mod query;
mod subscription;
mod types;

use async_graphql::Schema;
use tenfold_app::App;
use tenfold_config::GraphqlSettings;

pub use context::RequestAuth;
pub use error::to_graphql_error;
pub use ids::{GlobalId, NodeKind};

/// The largest `first` any connection accepts. Settings may lower it; the
/// complexity of list fields counts `first` up to this, so an oversized
/// `first` reaches the resolver and gets a clear BAD_USER_INPUT.
pub const MAX_PAGE_SIZE: i32 = 100;

pub type TenfoldSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// Builds the schema with the limits from settings. Introspection and
/// field suggestions are on only where settings say so (never in production).
pub fn build_schema(app: Option<App>, settings: &GraphqlSettings) -> TenfoldSchema {
    let mut builder = Schema::build(query::Query, mutation::Mutation::default(), subscription::Subscription)
        .limit_depth(settings.max_depth)
        .limit_complexity(settings.max_complexity)
        .limit_directives(settings.max_directives)
        .limit_recursive_depth(32)
        .extension(limits::AliasLimit::new(settings.max_aliases));
    if !settings.introspection {
        builder = builder.disable_introspection().disable_suggestions();
    }
    if let Some(app) = app {
        builder = builder.data(app);
    }
    builder.finish()
}

/// The schema in SDL, for `tenfold schema` and the authorization-matrix check.
pub fn sdl() -> String {
    build_schema(None, &GraphqlSettings::default()).sdl()
}

/// Names of every root operation (`query.x`, `mutation.y`, `subscription.z`) in the schema,
/// read from the SDL so the list is exactly what clients can call.
pub fn root_operations() -> Vec<String> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let mut out = Vec::new();
    let Ok(doc) = async_graphql::parser::parse_schema(sdl()) else { return out };
    for def in doc.definitions {
        if let TypeSystemDefinition::Type(t) = def {
            let prefix = match t.node.name.node.as_str() {
                "Query" => "query",
                "Mutation" => "mutation",
                "Subscription" => "subscription",
                _ => continue,
            };
            if let TypeKind::Object(obj) = &t.node.kind {
                out.extend(obj.fields.iter().map(|f| format!("{prefix}.{}", f.node.name.node)));
            }
        }
    }
    out.sort();
    out
}
