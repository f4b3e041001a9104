//! Outgoing email. SMTP in production (and in tests, to a capture server on
//! loopback); `.eml` files in an outbox folder for `tenfold dev`.

mod templates;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

pub use templates::Template;

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address {0:?}")]
    Address(String),
    #[error("could not build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("smtp: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("outbox: {0}")]
    File(#[from] lettre::transport::file::Error),
    #[error("outbox folder: {0}")]
    Io(#[from] std::io::Error),
}

/// One message to one recipient, already rendered.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError>;
}

fn build(from: &Mailbox, mail: OutgoingMail) -> Result<Message, MailError> {
    let to: Mailbox = mail.to.parse().map_err(|_| MailError::Address(mail.to.clone()))?;
    Ok(Message::builder().from(from.clone()).to(to).subject(mail.subject).header(ContentType::TEXT_PLAIN).body(mail.text)?)
}

fn parse_from(from: &str) -> Result<Mailbox, MailError> {
    from.parse().map_err(|_| MailError::Address(from.to_owned()))
}

/// TLS mode of an SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain text: only for a capture server on loopback.
    None,
    StartTls,
    Tls,
}

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    pub fn new(
        host: &str,
        port: u16,
        security: SmtpSecurity,
        credentials: Option<(String, String)>,
        from: &str,
    ) -> Result<Self, MailError> {
        let mut builder = match security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
        };
        builder = builder.port(port).timeout(Some(Duration::from_secs(10)));
        if let Some((user, pass)) = credentials {
            builder = builder.credentials(Credentials::new(user, pass));
        }
        Ok(Self { transport: builder.build(), from: parse_from(from)? })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError> {
        let message = build(&self.from, mail)?;
        self.transport.send(message).await?;
        Ok(())
    }
}

/// Writes each message as an `.eml` file: what `tenfold dev` uses, so a
/// developer can open sign-up and invitation emails without a mail server.
pub struct OutboxMailer {
    transport: AsyncFileTransport<Tokio1Executor>,
    from: Mailbox,
    dir: PathBuf,
}

impl OutboxMailer {
    pub fn new(dir: PathBuf, from: &str) -> Result<Self, MailError> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self { transport: AsyncFileTransport::new(&dir), from: parse_from(from)?, dir })
    }

    pub fn dir(&self) -> &PathBuf {
        &self.dir
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, mail: OutgoingMail) -> Result<(), MailError> {
        let message = build(&self.from, mail)?;
        self.transport.send(message).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outbox_writes_an_eml_file() {
        let dir = std::env::temp_dir().join(format!("tenfold-outbox-{}", uuid::Uuid::new_v4()));
        let mailer = OutboxMailer::new(dir.clone(), "Tenfold <no-reply@tenfold.local>").unwrap();
        mailer.send(OutgoingMail { to: "ada@example.com".into(), subject: "Hello".into(), text: "Body text".into() }).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert_eq!(files.len(), 1);
        let content = std::fs::read_to_string(files[0].path()).unwrap();
        assert!(content.contains("To: ada@example.com"), "{content}");
        assert!(content.contains("Subject: Hello"), "{content}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn refuses_a_bad_recipient() {
        let dir = std::env::temp_dir().join(format!("tenfold-outbox-{}", uuid::Uuid::new_v4()));
        let mailer = OutboxMailer::new(dir.clone(), "no-reply@tenfold.local").unwrap();
        let err = mailer.send(OutgoingMail { to: "not an address".into(), subject: "x".into(), text: "y".into() }).await;
        assert!(matches!(err, Err(MailError::Address(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
