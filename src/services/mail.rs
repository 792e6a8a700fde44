//! E-mail: rendered from `templates/emails/`, queued in the outbox inside the caller's
//! transaction, delivered by a worker through SMTP (when configured) or as `.eml` files under
//! `var/mail/` in development.

use std::path::PathBuf;

use askama::Template;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgConnection;

use crate::db;

/// Every e-mail the portal sends. Links are absolute.
#[derive(Debug, Clone)]
pub enum Email {
    Activation {
        link: String,
    },
    AlreadyRegistered {
        login_link: String,
        reset_link: String,
    },
    Reset {
        link: String,
    },
    EmailChange {
        link: String,
    },
    Invitation {
        link: String,
        organisation: String,
        inviter: String,
    },
    /// The invitation of an organisation's first owner, sent by staff (manual onboarding).
    OwnerInvitation {
        link: String,
        organisation: String,
    },
    /// A notice after a password change or reset, in case it was not the account's owner.
    PasswordChanged {
        reset_link: String,
    },
    /// A notice to the old address after the e-mail address changed.
    EmailChanged {
        new_email: String,
        contact_link: String,
    },
    /// The available balance crossed below the organisation's threshold (once per crossing).
    LowBalance {
        organisation: String,
        available: i64,
        threshold: i64,
        dashboard_link: String,
        buy_link: String,
    },
    /// Credits will be lost (not carried over) at the end of `last_day`.
    CreditsExpiring {
        organisation: String,
        credits: i64,
        /// « 31 décembre 2026 ».
        last_day: String,
        days: i64,
        dashboard_link: String,
    },
    /// A renewal charge failed: the subscription is past due until paid (retried meanwhile).
    RenewalFailed {
        organisation: String,
        /// The order's line (« Plan Église (renouvellement) »).
        plan: String,
        /// « 29,00 € ».
        amount: String,
        /// The provider's reason (`card_declined`, `insufficient_funds`, `expired_card`,
        /// `no_answer`).
        reason: String,
        /// The day of the next try, « 2 janvier 2027 ».
        next_try: String,
        pay_link: String,
    },
    /// The last retry failed: launches are refused until the subscription is paid.
    SubscriptionSuspended {
        organisation: String,
        amount: String,
        pay_link: String,
    },
}

#[derive(Template)]
#[template(path = "emails/subject.txt")]
struct Subject<'a> {
    email: &'a Email,
}

#[derive(Template)]
#[template(path = "emails/body.txt")]
struct Text<'a> {
    email: &'a Email,
}

#[derive(Template)]
#[template(path = "emails/body.html")]
struct Html<'a> {
    email: &'a Email,
}

/// Renders `email` and writes it to the outbox in the caller's transaction.
pub async fn queue(conn: &mut PgConnection, to: &str, email: &Email) -> anyhow::Result<i64> {
    let subject = Subject { email }.render()?;
    let text = Text { email }.render()?;
    let html = Html { email }.render()?;
    Ok(db::outbox::enqueue(conn, to, &subject, &text, &html).await?)
}

pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

impl Transport {
    /// SMTP from a URL such as `smtps://user:password@smtp.example.org`, else files in `dir`.
    pub fn new(smtp_url: Option<&str>, dir: PathBuf) -> anyhow::Result<Self> {
        match smtp_url {
            Some(url) => Ok(Self::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.build(),
            )),
            None => {
                std::fs::create_dir_all(&dir)?;
                Ok(Self::Files(AsyncFileTransport::<Tokio1Executor>::new(dir)))
            }
        }
    }

    async fn send(&self, message: Message) -> anyhow::Result<()> {
        match self {
            Self::Smtp(t) => t.send(message).await.map(|_| ()).map_err(Into::into),
            Self::Files(t) => t.send(message).await.map(|_| ()).map_err(Into::into),
        }
    }
}

/// Where e-mails leave from: the transport (SMTP or files) and the sender.
pub struct Mailer {
    pub transport: Transport,
    pub from: Mailbox,
}

impl Mailer {
    /// Delivers what is due, a batch at a time, in the caller's transaction (the outbox rows
    /// are claimed with `FOR UPDATE SKIP LOCKED`); returns how many were sent.
    pub async fn deliver_due(&self, conn: &mut PgConnection) -> anyhow::Result<usize> {
        let batch = db::outbox::claim(conn, 20).await?;
        let mut sent = 0;
        for mail in batch {
            let outcome = async {
                let message = Message::builder()
                    .from(self.from.clone())
                    .to(mail.to_address.parse()?)
                    .subject(mail.subject.clone())
                    .multipart(MultiPart::alternative_plain_html(
                        mail.body_text.clone(),
                        mail.body_html.clone(),
                    ))?;
                self.transport.send(message).await
            }
            .await;
            match outcome {
                Ok(()) => {
                    db::outbox::mark_sent(conn, mail.id).await?;
                    sent += 1;
                }
                Err(error) => {
                    // The address is not logged: only the message id and the reason.
                    tracing::warn!(
                        outbox_id = mail.id,
                        attempts = mail.attempts + 1,
                        "e-mail not delivered: {error}"
                    );
                    db::outbox::mark_failed(conn, mail.id, &error.to_string()).await?;
                }
            }
        }
        Ok(sent)
    }
}
