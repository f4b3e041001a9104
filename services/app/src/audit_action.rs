//! The one table of audit actions: what the audit log records, as stored
//! and shown (`auditLog { action }`), each written by exactly one use case.

/// Each action with its stored name.
macro_rules! audit_actions {
    ($($variant:ident => $text:literal;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuditAction {
            $($variant,)+
        }

        impl AuditAction {
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $(AuditAction::$variant => $text,)+ }
            }
        }
    };
}

audit_actions! {
    ApiKeyCreated => "api_key.created";
    ApiKeyRevoked => "api_key.revoked";
    AuthPasswordReset => "auth.password_reset";
    AuthRefreshTokenReused => "auth.refresh_token_reused";
    AuthSignInFailed => "auth.sign_in_failed";
    AuthSignedIn => "auth.signed_in";
    AuthSwitchedOrganization => "auth.switched_organization";
    DatasetDeleted => "dataset.deleted";
    DatasetUploaded => "dataset.uploaded";
    InvitationRevoked => "invitation.revoked";
    JobCancelRequested => "job.cancel_requested";
    JobSubmitted => "job.submitted";
    MemberInvited => "member.invited";
    MemberJoined => "member.joined";
    MemberRemoved => "member.removed";
    MemberRoleChanged => "member.role_changed";
    OrgPlanChanged => "org.plan_changed";
    UserSignedUp => "user.signed_up";
    WebhookCreated => "webhook.created";
    WebhookDeleted => "webhook.deleted";
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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
