//! Global object ids (`node(id:)`) and pagination cursors: opaque base64url
//! strings. An id names a kind and a UUID; whether the object is visible is
//! decided by the use case, in the caller's organization only.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tenfold_app::AppError;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    User,
    Organization,
    Invitation,
    ApiKey,
    AuditEvent,
    Dataset,
    DatasetVersion,
    Job,
    Model,
    ModelVersion,
    Webhook,
    Endpoint,
    CustomerKey,
}

impl NodeKind {
    const ALL: [NodeKind; 13] = [
        NodeKind::User,
        NodeKind::Organization,
        NodeKind::Invitation,
        NodeKind::ApiKey,
        NodeKind::AuditEvent,
        NodeKind::Dataset,
        NodeKind::DatasetVersion,
        NodeKind::Job,
        NodeKind::Model,
        NodeKind::ModelVersion,
        NodeKind::Webhook,
        NodeKind::Endpoint,
        NodeKind::CustomerKey,
    ];

    fn tag(self) -> &'static str {
        match self {
            NodeKind::User => "User",
            NodeKind::Organization => "Organization",
            NodeKind::Invitation => "Invitation",
            NodeKind::ApiKey => "ApiKey",
            NodeKind::AuditEvent => "AuditEvent",
            NodeKind::Dataset => "Dataset",
            NodeKind::DatasetVersion => "DatasetVersion",
            NodeKind::Job => "Job",
            NodeKind::Model => "Model",
            NodeKind::ModelVersion => "ModelVersion",
            NodeKind::Webhook => "Webhook",
            NodeKind::Endpoint => "Endpoint",
            NodeKind::CustomerKey => "CustomerKey",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalId {
    pub kind: NodeKind,
    pub id: Uuid,
}

impl GlobalId {
    pub fn new(kind: NodeKind, id: Uuid) -> Self {
        Self { kind, id }
    }

    pub fn encode(&self) -> String {
        tenfold_app::views::global_id(self.kind.tag(), self.id)
    }

    pub fn to_id(&self) -> async_graphql::ID {
        async_graphql::ID(self.encode())
    }

    /// Decodes an id; anything malformed is NOT_FOUND, like an unknown id.
    pub fn decode(raw: &str, what: &str) -> Result<Self, AppError> {
        let not_found = || AppError::not_found(what);
        let bytes = URL_SAFE_NO_PAD.decode(raw.as_bytes()).map_err(|_| not_found())?;
        let text = String::from_utf8(bytes).map_err(|_| not_found())?;
        let (tag, id) = text.split_once(':').ok_or_else(not_found)?;
        let kind = NodeKind::ALL.into_iter().find(|k| k.tag() == tag).ok_or_else(not_found)?;
        let id = Uuid::try_parse(id).map_err(|_| not_found())?;
        Ok(Self { kind, id })
    }

    /// Decodes an id that must be of `kind`.
    pub fn decode_kind(raw: &str, kind: NodeKind, what: &str) -> Result<Uuid, AppError> {
        let gid = Self::decode(raw, what)?;
        if gid.kind == kind { Ok(gid.id) } else { Err(AppError::not_found(what)) }
    }
}

pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("cursor:{id}"))
}

pub fn decode_cursor(raw: &str) -> Result<Uuid, AppError> {
    let bad = || AppError::bad_input("after", "the cursor is not valid; pass `endCursor` from a previous page");
    let bytes = URL_SAFE_NO_PAD.decode(raw.as_bytes()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let id = text.strip_prefix("cursor:").ok_or_else(bad)?;
    Uuid::try_parse(id).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_garbage_is_not_found() {
        let g = GlobalId::new(NodeKind::ApiKey, Uuid::new_v4());
        assert_eq!(GlobalId::decode(&g.encode(), "x").unwrap(), g);
        for bad in ["", "!!!", "QXBpS2V5Om5vcGU", &URL_SAFE_NO_PAD.encode("Nope:00000000-0000-0000-0000-000000000000")] {
            let err = GlobalId::decode(bad, "object").unwrap_err();
            assert_eq!(err.code, tenfold_app::ErrorCode::NotFound);
        }
        assert!(GlobalId::decode_kind(&g.encode(), NodeKind::User, "user").is_err());
        let c = Uuid::new_v4();
        assert_eq!(decode_cursor(&encode_cursor(c)).unwrap(), c);
        assert!(decode_cursor("zzz").is_err());
    }
}
