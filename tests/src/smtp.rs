//! A capture SMTP server on loopback: lettre speaks real SMTP over TCP to
//! it, and tests read what arrived.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct CapturedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The whole message as sent (headers and body).
    pub data: String,
}

impl CapturedMail {
    pub fn subject(&self) -> String {
        self.data.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or("").to_owned()
    }

    /// The first token in the body that starts with `prefix` (e.g. `tfi_`),
    /// undoing quoted-printable soft line breaks first.
    pub fn token(&self, prefix: &str) -> Option<String> {
        let body = self.data.replace("=\r\n", "").replace("=3D", "=");
        let start = body.find(prefix)?;
        Some(body[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
    }
}

#[derive(Clone, Default)]
pub struct Mailbox {
    mails: Arc<Mutex<Vec<CapturedMail>>>,
    /// Milliseconds the server waits before accepting a message (a slow
    /// mail server), for tests of what must not wait for SMTP.
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl Mailbox {
    /// Makes the server slow to accept each message from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn all(&self) -> Vec<CapturedMail> {
        self.mails.lock().unwrap().clone()
    }

    pub fn to(&self, address: &str) -> Vec<CapturedMail> {
        self.all().into_iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address))).collect()
    }

    /// Waits (up to 5 s) for a mail to `address` whose subject contains `subject`.
    pub async fn wait_for(&self, address: &str, subject: &str) -> CapturedMail {
        for _ in 0..100 {
            if let Some(m) = self.to(address).into_iter().rev().find(|m| m.subject().contains(subject)) {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no mail to {address} with subject containing {subject:?}; got: {:#?}",
            self.all().iter().map(|m| (m.to.clone(), m.subject())).collect::<Vec<_>>()
        );
    }

    /// Waits (up to 5 s) until `n` mails to `address` have a subject
    /// containing `subject` (mails sent in the background arrive in any
    /// order); then a little longer, so that one too many would be seen.
    pub async fn wait_for_count(&self, address: &str, subject: &str, n: usize) -> Vec<CapturedMail> {
        let matching = || self.to(address).into_iter().filter(|m| m.subject().contains(subject)).collect::<Vec<_>>();
        for _ in 0..100 {
            if matching().len() >= n {
                tokio::time::sleep(Duration::from_millis(200)).await;
                return matching();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        matching()
    }

    /// Starts the server; returns its port.
    pub async fn start(&self) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mails, delay) = (self.mails.clone(), self.delay_ms.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (mails, delay) = (mails.clone(), delay.clone());
                tokio::spawn(async move {
                    let _ = session(stream, mails, delay).await;
                });
            }
        });
        port
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    mails: Arc<Mutex<Vec<CapturedMail>>>,
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 capture.local ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            write.write_all(b"250-capture.local\r\n250 8BITMIME\r\n").await?;
        } else if upper.starts_with("HELO") || upper.starts_with("RSET") || upper.starts_with("NOOP") {
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            tokio::time::sleep(Duration::from_millis(delay_ms.load(std::sync::atomic::Ordering::SeqCst))).await;
            from = line[10..].trim().trim_matches(['<', '>']).to_owned();
            to.clear();
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(line[8..].trim().trim_matches(['<', '>']).to_owned());
            write.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 end with .\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line));
            }
            mails.lock().unwrap().push(CapturedMail { from: from.clone(), to: to.clone(), data });
            write.write_all(b"250 queued\r\n").await?;
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"502 not implemented\r\n").await?;
        }
    }
}
