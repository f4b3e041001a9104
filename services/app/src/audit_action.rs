//! The one table of audit actions: what the audit log records, as stored
//! and shown (`auditLog { action }`), each written by exactly one use case.

tenfold_domain::code_table! {
    /// Each action with its stored name.
    pub enum AuditAction {
        ApiKeyCreated => "api_key.created",
        ApiKeyRevoked => "api_key.revoked",
        AuthPasswordReset => "auth.password_reset",
        AuthRefreshTokenReused => "auth.refresh_token_reused",
        AuthSignInFailed => "auth.sign_in_failed",
        AuthSignedIn => "auth.signed_in",
        AuthSwitchedOrganization => "auth.switched_organization",
        CustomerKeyCreated => "customer_key.created",
        CustomerKeyRevoked => "customer_key.revoked",
        DatasetDeleted => "dataset.deleted",
        DatasetUploaded => "dataset.uploaded",
        EndpointCanaryRolledBack => "endpoint.canary_rolled_back",
        EndpointCanarySet => "endpoint.canary_set",
        EndpointDeleted => "endpoint.deleted",
        EndpointDeployed => "endpoint.deployed",
        EndpointPaused => "endpoint.paused",
        EndpointResumed => "endpoint.resumed",
        EndpointSwitched => "endpoint.switched",
        EndpointUpdated => "endpoint.updated",
        InvitationRevoked => "invitation.revoked",
        JobCancelRequested => "job.cancel_requested",
        JobSubmitted => "job.submitted",
        MemberInvited => "member.invited",
        ModelAliasMoved => "model.alias_moved",
        ModelAliasRemoved => "model.alias_removed",
        ModelPromotionRulesSet => "model.promotion_rules_set",
        ModelVersionDeleted => "model_version.deleted",
        ModelVersionImported => "model_version.imported",
        MemberJoined => "member.joined",
        MemberRemoved => "member.removed",
        MemberRoleChanged => "member.role_changed",
        OrgPlanChanged => "org.plan_changed",
        UserSignedUp => "user.signed_up",
        WebhookCreated => "webhook.created",
        WebhookDeleted => "webhook.deleted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_one_spelling_of_the_form_subject_dot_verb() {
        let mut seen = std::collections::BTreeSet::new();
        for a in AuditAction::ALL {
            assert!(seen.insert(a.as_str()), "{a} twice");
            assert_eq!(a.as_str().split('.').count(), 2, "{a}");
        }
    }
}
