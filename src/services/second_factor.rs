//! Staff's second factor: a TOTP (RFC 6238, SHA-1, 6 digits, 30-second steps, one step of skew)
//! and ten single-use recovery codes. `nanoclip create-staff` makes the secret and prints a
//! single-use enrolment link; the staff member opens it, scans the QR code, and confirms with
//! their password and a first code; the recovery codes are then shown once. At each sign-in a
//! staff member gives a code (never one already accepted: `last_step`) or a recovery code before
//! the back office opens. Failures are counted per staff member: 5 in 15 minutes, then wait.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::accounts::{AccountError, token_hash};
use super::fault::Fault;
use crate::db;

/// An enrolment link works this long.
pub const ENROLMENT_LIFETIME: Duration = Duration::hours(72);
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// Wrong codes allowed per staff member in a window of `FAILURE_WINDOW_SECS`.
const MAX_FAILURES: i32 = 5;
const FAILURE_WINDOW_SECS: i32 = 15 * 60;
/// The name authenticator apps show.
const ISSUER: &str = "NanoClip";

#[derive(Debug, thiserror::Error)]
pub enum SecondFactorError {
    /// The enrolment link is unknown, used or expired.
    #[error("invalid enrolment link")]
    InvalidLink,
    /// The code (or recovery code) is wrong, or was used already.
    #[error("wrong code")]
    WrongCode,
    /// Too many wrong codes: wait this many seconds.
    #[error("too many attempts")]
    TooManyAttempts(i64),
    /// This staff member has no second factor in force (an enrolment link is needed).
    #[error("no second factor")]
    NotEnrolled,
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl From<sqlx::Error> for SecondFactorError {
    fn from(e: sqlx::Error) -> Self {
        SecondFactorError::Account(AccountError::from(Fault::from(e)))
    }
}

/// What the enrolment page shows.
pub struct Enrolment {
    pub user: Uuid,
    pub email: String,
    /// The secret in base32, in groups of four for typing by hand.
    pub secret_groups: String,
    /// The `otpauth://` URI as an SVG QR code.
    pub qr_svg: String,
}

fn totp(secret_base32: &str, email: &str) -> Result<totp_rs::Totp, SecondFactorError> {
    let secret = totp_rs::Secret::try_from_base32(secret_base32)
        .map_err(|e| Fault::Internal(anyhow::anyhow!("stored TOTP secret: {e:?}")))
        .map_err(AccountError::from)?;
    totp_rs::Builder::new()
        .with_secret(secret)
        .with_issuer(Some(ISSUER))
        .with_account_name(email.replace(':', ""))
        .build()
        .map_err(|e| Fault::Internal(anyhow::anyhow!("TOTP: {e:?}")).into())
        .map_err(SecondFactorError::Account)
}

/// A new secret: 160 bits (SHA-256 of 244 random bits, cut), as RFC 4226 recommends.
fn new_secret() -> String {
    let bytes = Sha256::digest(crate::random::token().as_bytes());
    totp_rs::Secret::from(bytes[..20].to_vec()).to_base32()
}

/// Makes (or makes again) the staff member's secret and an enrolment link: `{public_url}/…`.
/// A second factor in force is replaced only once the new one is confirmed.
pub async fn start_enrolment(
    pool: &PgPool,
    user: Uuid,
    public_url: &str,
    now: OffsetDateTime,
) -> Result<String, SecondFactorError> {
    let (token, hash) = super::accounts::new_token();
    let mut conn = pool.acquire().await?;
    db::second_factor::start_enrolment(
        &mut conn,
        user,
        &new_secret(),
        &hash,
        now + ENROLMENT_LIFETIME,
        now,
    )
    .await?;
    Ok(format!(
        "{public_url}/compte/second-facteur/inscription?jeton={token}"
    ))
}

/// The enrolment behind a link, if it still works.
pub async fn enrolment(
    pool: &PgPool,
    token: &str,
    now: OffsetDateTime,
) -> Result<Enrolment, SecondFactorError> {
    let mut conn = pool.acquire().await?;
    let pending = db::second_factor::pending_enrolment(&mut conn, &token_hash(token), now)
        .await?
        .ok_or(SecondFactorError::InvalidLink)?;
    let totp = totp(&pending.secret, &pending.email)?;
    let uri = totp
        .to_url()
        .map_err(|e| Fault::Internal(anyhow::anyhow!("otpauth URI: {e:?}")))
        .map_err(AccountError::from)?;
    let qr_svg = qr_svg(&uri)
        .map_err(|e| Fault::Internal(anyhow::anyhow!("QR code: {e}")))
        .map_err(AccountError::from)?;
    let secret_groups = pending
        .secret
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(Enrolment {
        user: pending.user_id,
        email: pending.email,
        secret_groups,
        qr_svg,
    })
}

/// Confirms the enrolment with a first code: the secret is in force, the link is spent, and
/// the recovery codes are returned (to show once; only their hashes are kept).
pub async fn confirm_enrolment(
    pool: &PgPool,
    token: &str,
    user: Uuid,
    code: &str,
    now: OffsetDateTime,
) -> Result<Vec<String>, SecondFactorError> {
    let mut tx = pool.begin().await?;
    let pending = db::second_factor::lock_pending_enrolment(&mut tx, &token_hash(token), now)
        .await?
        .filter(|p| p.user_id == user)
        .ok_or(SecondFactorError::InvalidLink)?;
    let totp = totp(&pending.secret, &pending.email)?;
    let step = check(&totp, code, now).ok_or(SecondFactorError::WrongCode)?;
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| crate::random::password())
        .collect();
    let hashes: Vec<String> = codes.iter().map(|c| recovery_hash(c)).collect();
    db::second_factor::confirm(&mut tx, user, step, &hashes, now).await?;
    tx.commit().await?;
    Ok(codes)
}

/// Checks a sign-in's code (or recovery code) for a staff member. A code is accepted once;
/// wrong ones are counted.
pub async fn verify(
    pool: &PgPool,
    user: Uuid,
    code: &str,
    now: OffsetDateTime,
) -> Result<(), SecondFactorError> {
    let failures_key = format!("second-factor:{user}");
    let mut tx = pool.begin().await?;
    let failures = db::rate_limit::current(&mut tx, &failures_key, FAILURE_WINDOW_SECS).await?;
    let max = i64::from(MAX_FAILURES);
    if failures.count() >= max {
        return Err(SecondFactorError::TooManyAttempts(failures.wait_below(max)));
    }
    let factor = db::second_factor::lock_confirmed(&mut tx, user)
        .await?
        .ok_or(SecondFactorError::NotEnrolled)?;
    let cleaned: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let accepted = if cleaned.len() == 6 && cleaned.bytes().all(|b| b.is_ascii_digit()) {
        let totp = totp(&factor.secret, &factor.email)?;
        match check(&totp, &cleaned, now) {
            Some(step) if step > factor.last_step => {
                db::second_factor::accept_step(&mut tx, user, step).await?
            }
            _ => false,
        }
    } else {
        db::second_factor::use_recovery_code(&mut tx, user, &recovery_hash(&cleaned), now).await?
    };
    if accepted {
        tx.commit().await?;
        return Ok(());
    }
    drop(tx);
    let mut conn = pool.acquire().await?;
    db::rate_limit::hit(&mut conn, &failures_key, FAILURE_WINDOW_SECS, MAX_FAILURES).await?;
    Err(SecondFactorError::WrongCode)
}

/// Whether the staff member has a second factor in force.
pub async fn is_enrolled(pool: &PgPool, user: Uuid) -> Result<bool, SecondFactorError> {
    let mut conn = pool.acquire().await?;
    Ok(db::second_factor::is_confirmed(&mut conn, user).await?)
}

/// The step a code is valid for at `now` (one step of skew either side), if any.
fn check(totp: &totp_rs::Totp, code: &str, now: OffsetDateTime) -> Option<i64> {
    let time = u64::try_from(now.unix_timestamp()).ok()?;
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    totp.check(&code, time).and_then(|s| i64::try_from(s).ok())
}

/// Recovery codes are compared without dashes, spaces or case.
fn recovery_hash(code: &str) -> String {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

/// The code an authenticator shows at `now` for `secret_base32` (tests and the browser walk's
/// helper compute the same).
pub fn code_at(secret_base32: &str, now: OffsetDateTime) -> Option<String> {
    let secret = totp_rs::Secret::try_from_base32(secret_base32.replace(' ', "")).ok()?;
    let totp = totp_rs::Builder::new().with_secret(secret).build().ok()?;
    let time = u64::try_from(now.unix_timestamp()).ok()?;
    Some(totp.generate(time).to_string())
}

/// The QR code of `uri` as an SVG element to put in an HTML page: the renderer's XML
/// declaration, an error in HTML, left out.
fn qr_svg(uri: &str) -> Result<String, qrcode::types::QrError> {
    qrcode::QrCode::new(uri.as_bytes()).map(|code| {
        let document = code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build();
        match document.find("<svg") {
            Some(start) => document[start..].to_owned(),
            None => document,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qr_code_is_an_svg_element_without_an_xml_declaration() {
        // An XML declaration is an error in an HTML page (the Nu checker: « Saw <? »).
        let svg =
            qr_svg("otpauth://totp/NanoClip:equipe@nanoclip.fr?secret=JBSWY3DPEHPK3PXP").unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
    }

    #[test]
    fn rfc_6238_test_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59: 94287082 (8 digits); 6 digits: 287082.
        let secret = totp_rs::Secret::from(b"12345678901234567890".to_vec()).to_base32();
        let at = OffsetDateTime::from_unix_timestamp(59).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(code_at(&secret, at).as_deref(), Some("287082"));
    }

    #[test]
    fn secrets_are_160_bits_and_differ() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32, "160 bits in base32");
    }

    #[test]
    fn recovery_codes_ignore_dashes_spaces_and_case() {
        assert_eq!(recovery_hash("3f9a1-c04e2"), recovery_hash(" 3F9A1 C04E2 "));
        assert_ne!(recovery_hash("3f9a1-c04e2"), recovery_hash("3f9a1-c04e3"));
    }
}
