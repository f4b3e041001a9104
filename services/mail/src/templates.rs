//! The emails Tenfold sends, as plain text. Links carry single-use tokens.

use crate::OutgoingMail;

pub enum Template<'a> {
    VerifyEmail {
        link: &'a str,
    },
    PasswordReset {
        link: &'a str,
        ttl_minutes: u64,
    },
    Invitation {
        org_name: &'a str,
        inviter: &'a str,
        role: &'a str,
        link: &'a str,
        token: &'a str,
    },
    RefreshReuse,
    JobSucceeded {
        what: &'a str,
        metrics: &'a str,
        link: &'a str,
        compute_seconds: f64,
    },
    JobFailed {
        what: &'a str,
        error: &'a str,
        link: &'a str,
    },
    /// A monthly allowance at 80 % or used up.
    QuotaNotice {
        what: &'a str,
        percent: u64,
        used: u64,
        limit: u64,
        renews: &'a str,
    },
}

impl Template<'_> {
    pub fn render(&self, to: &str) -> OutgoingMail {
        let (subject, text) = match self {
            Template::VerifyEmail { link } => (
                "Confirm your email address for Tenfold".to_owned(),
                format!("Welcome to Tenfold.\n\nConfirm your email address by opening this link:\n\n{link}\n\nIf you did not sign up, ignore this email.\n"),
            ),
            Template::PasswordReset { link, ttl_minutes } => (
                "Reset your Tenfold password".to_owned(),
                format!(
                    "Someone asked to reset the password of your Tenfold account.\n\nChoose a new password here (the link works once, for {ttl_minutes} minutes):\n\n{link}\n\nIf it was not you, ignore this email; your password stays as it is.\n"
                ),
            ),
            Template::Invitation { org_name, inviter, role, link, token } => (
                format!("{inviter} invited you to {org_name} on Tenfold"),
                format!(
                    "{inviter} invited you to join {org_name} on Tenfold as {role}.\n\nAccept the invitation here:\n\n{link}\n\nOr with the API: acceptInvitation(token: \"{token}\")\n\nThe invitation works once. If you did not expect it, ignore this email.\n"
                ),
            ),
            Template::RefreshReuse => (
                "Security alert: your Tenfold session was ended".to_owned(),
                "A refresh token of your Tenfold session was used twice, which can mean it was stolen.\nWe signed that session out everywhere. Sign in again, and change your password if you did not expect this.\n".to_owned(),
            ),
            Template::JobSucceeded { what, metrics, link, compute_seconds } => (
                format!("Your Tenfold job succeeded: {what}"),
                format!(
                    "Your {what} job finished successfully in {compute_seconds:.0} compute-seconds.\n\n{metrics}\n\nThe report and the new model version:\n\n{link}\n"
                ),
            ),
            Template::QuotaNotice { what, percent, used, limit, renews } if *percent >= 100 => (
                format!("Tenfold: {what} is used up for this month"),
                format!(
                    "{what} has used all of its monthly allowance: {used} of {limit}.\n\nFurther requests are refused with 402 QUOTA_EXCEEDED until it renews on {renews}. Raise the limit (or the plan) to lift it sooner.\n"
                ),
            ),
            Template::QuotaNotice { what, percent, used, limit, renews } => (
                format!("Tenfold: {what} is at {percent}% of its monthly allowance"),
                format!(
                    "{what} has used {used} of its {limit} for this month ({percent}%).\n\nAt {limit}, requests are refused with 402 QUOTA_EXCEEDED until it renews on {renews}.\n"
                ),
            ),
            Template::JobFailed { what, error, link } => (
                format!("Your Tenfold job failed: {what}"),
                format!("Your {what} job failed.\n\nWhat went wrong: {error}\n\nDetails and its events:\n\n{link}\n"),
            ),
        };
        OutgoingMail { to: to.to_owned(), subject, text }
    }
}
