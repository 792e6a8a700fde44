//! Password hashing (argon2id, OWASP parameters) off the async executor, with a bound on the
//! hashes in flight so that a storm of logins never stalls page serving; and the strength rules.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::content::text::fold;

/// Hashes per second and per hashing core (about 20 ms each: a quarter of the core), and the
/// burst allowed. Far above what people typing passwords need; a storm gets 429s.
const HASHES_PER_SECOND: f64 = 12.0;
const HASH_BURST: f64 = 20.0;

/// OWASP's recommendation for argon2id: 19 MiB, 2 iterations, parallelism 1.
fn argon2() -> Argon2<'static> {
    let params = Params::new(
        Params::DEFAULT_M_COST,
        Params::DEFAULT_T_COST,
        Params::DEFAULT_P_COST,
        None,
    )
    .unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The parameters part of a current PHC string, to spot hashes made with older parameters.
fn current_params() -> String {
    format!(
        "m={},t={},p={}",
        Params::DEFAULT_M_COST,
        Params::DEFAULT_T_COST,
        Params::DEFAULT_P_COST
    )
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Too many hashes queued: answer 429 rather than queue without end.
    #[error("too many password checks in flight")]
    Busy,
    #[error("password hashing failed: {0}")]
    Internal(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// Hashed with older parameters: store a new hash now that we have the password.
    pub needs_rehash: bool,
}

pub struct Hasher {
    /// Requests allowed to wait for a hash; past it, Busy.
    admission: Arc<Semaphore>,
    /// Hashes computed at once: half the cores, leaving the others to serve pages.
    cpu: Arc<Semaphore>,
    /// A token bucket of hashes per second: under a storm the hashing core is busy only part
    /// of the time, and every instance keeps serving pages at nearly full speed.
    budget: std::sync::Mutex<(std::time::Instant, f64)>,
    per_second: f64,
    /// Verified against when the e-mail is unknown, so both cost the same time. Made on first
    /// use (on a blocking thread), not at start-up.
    dummy: Arc<std::sync::OnceLock<String>>,
}

impl Hasher {
    pub fn new() -> Result<Self, HashError> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        // Half the cores at most hash at once: the rest keep serving pages during a login storm.
        let hashing = (cores / 2).max(1);
        Self::with_limits(hashing, hashing * 4)
    }

    /// `cpu` hashes at once, `admitted` requests waiting or hashing at most.
    pub fn with_limits(cpu: usize, admitted: usize) -> Result<Self, HashError> {
        Ok(Self {
            admission: Arc::new(Semaphore::new(admitted)),
            cpu: Arc::new(Semaphore::new(cpu)),
            dummy: Arc::new(std::sync::OnceLock::new()),
            budget: std::sync::Mutex::new((std::time::Instant::now(), HASH_BURST)),
            per_second: HASHES_PER_SECOND * cpu as f64,
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        self.take_token()?;
        let _admitted = self
            .admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| HashError::Busy)?;
        let _cpu = self
            .cpu
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| HashError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError::Internal(e.to_string()))
    }

    fn take_token(&self) -> Result<(), HashError> {
        let mut budget = self.budget.lock().map_err(|_| HashError::Busy)?;
        let (last, tokens) = *budget;
        let now = std::time::Instant::now();
        let refilled =
            (tokens + now.duration_since(last).as_secs_f64() * self.per_second).min(HASH_BURST);
        if refilled < 1.0 {
            *budget = (now, refilled);
            return Err(HashError::Busy);
        }
        *budget = (now, refilled - 1.0);
        Ok(())
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.run(move || {
            argon2()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
        })
        .await?
        .map_err(|e| HashError::Internal(e.to_string()))
    }

    /// Checks `password` against `stored` (or against a dummy hash when there is no account).
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let exists = stored.is_some();
        let stored_phc = stored.map(str::to_owned);
        let dummy = self.dummy.clone();
        let password = password.to_owned();
        let ok = self
            .run(move || {
                let phc = stored_phc.unwrap_or_else(|| {
                    dummy
                        .get_or_init(|| {
                            argon2()
                                .hash_password(b"nanoclip-dummy-password-for-unknown-accounts")
                                .map(|h| h.to_string())
                                .unwrap_or_default()
                        })
                        .clone()
                });
                match PasswordHash::new(&phc) {
                    Ok(hash) => argon2().verify_password(password.as_bytes(), &hash).is_ok(),
                    Err(_) => false,
                }
            })
            .await?;
        let needs_rehash = ok && exists && !stored.unwrap_or_default().contains(&current_params());
        Ok(Verified {
            ok: ok && exists,
            needs_rehash,
        })
    }
}

/// Why a new password is refused; the templates word it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weakness {
    TooShort { min: usize },
    TooLong { max: usize },
    Guessable,
    Personal,
}

pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 128;

/// Words every church uses, which make a password easy to guess here in particular.
const CHURCH_WORDS: [&str; 24] = [
    "jesus", "christ", "eglise", "paroisse", "dieu", "amen", "alleluia", "marie", "evangile",
    "bible", "priere", "seigneur", "messe", "pasteur", "paques", "noel", "nanoclip", "saint",
    "sainte", "croix", "foi", "louange", "chapelle", "temple",
];

/// A length floor, zxcvbn's estimate (score 3 of 4 needed), and no password that is mostly the
/// organisation's name, the e-mail or a church word with a few digits.
pub fn check_strength(password: &str, personal: &[&str]) -> Result<(), Weakness> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(Weakness::TooShort { min: MIN_LENGTH });
    }
    if length > MAX_LENGTH {
        return Err(Weakness::TooLong { max: MAX_LENGTH });
    }
    let folded = fold(password);
    let letters: String = folded.chars().filter(|c| c.is_alphabetic()).collect();
    let personal_words: Vec<String> = personal
        .iter()
        .flat_map(|p| {
            fold(p)
                .split(|c: char| !c.is_alphanumeric())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|w| w.chars().count() >= 4)
        .collect();
    // Mostly made of the organisation's name or the address (a few letters around are not
    // enough to make it unguessable): what is left once those words are removed is tiny.
    let leftover = |words: &mut dyn Iterator<Item = &str>| {
        let mut rest = letters.clone();
        for w in words {
            rest = rest.replace(w, "");
        }
        rest.chars().count()
    };
    if !personal_words.is_empty() && leftover(&mut personal_words.iter().map(String::as_str)) <= 3 {
        return Err(Weakness::Personal);
    }
    if leftover(&mut CHURCH_WORDS.iter().copied()) <= 3 {
        return Err(Weakness::Guessable);
    }
    let mut inputs: Vec<&str> = personal.to_vec();
    inputs.extend(CHURCH_WORDS);
    if (zxcvbn::zxcvbn(password, &inputs).score() as u8) < 3 {
        return Err(Weakness::Guessable);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_and_church_passwords_are_refused() {
        assert_eq!(
            check_strength("court", &[]),
            Err(Weakness::TooShort { min: MIN_LENGTH })
        );
        assert_eq!(
            check_strength("motdepasse123", &[]),
            Err(Weakness::Guessable)
        );
        assert_eq!(check_strength("jesus2024!!", &[]), Err(Weakness::Guessable));
        assert_eq!(check_strength("Eglise1234", &[]), Err(Weakness::Guessable));
        assert_eq!(
            check_strength("SaintJeanBaptiste7", &["Paroisse Saint-Jean-Baptiste"]),
            Err(Weakness::Personal)
        );
        assert_eq!(
            check_strength(&"x".repeat(200), &[]),
            Err(Weakness::TooLong { max: MAX_LENGTH })
        );
    }

    #[test]
    fn a_long_unusual_passphrase_is_accepted() {
        assert_eq!(
            check_strength(
                "cloche verte sous la pluie d'avril 42",
                &["Paroisse Saint-Jean"]
            ),
            Ok(())
        );
    }

    #[tokio::test]
    async fn hashes_verify_and_an_unknown_account_never_does() {
        let hasher = Hasher::new().unwrap();
        let hash = hasher.hash("cloche verte sous la pluie").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert_eq!(
            hasher
                .verify("cloche verte sous la pluie", Some(&hash))
                .await
                .unwrap(),
            Verified {
                ok: true,
                needs_rehash: false
            }
        );
        assert!(!hasher.verify("autre chose", Some(&hash)).await.unwrap().ok);
        assert!(
            !hasher
                .verify("nanoclip-dummy-password-for-unknown-accounts", None)
                .await
                .unwrap()
                .ok
        );
    }

    #[tokio::test]
    async fn past_the_queue_a_check_is_refused_at_once_rather_than_waiting() {
        let hasher = std::sync::Arc::new(Hasher::with_limits(1, 2).unwrap());
        let running: Vec<_> = (0..2)
            .map(|_| {
                let h = hasher.clone();
                tokio::spawn(async move { h.hash("cloche verte sous la pluie").await })
            })
            .collect();
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert!(matches!(
            hasher.hash("une de trop").await,
            Err(HashError::Busy)
        ));
        for r in running {
            assert!(r.await.unwrap().is_ok());
        }
        assert!(
            hasher.hash("de nouveau possible").await.is_ok(),
            "the queue drains"
        );
    }

    #[tokio::test]
    async fn a_hash_with_old_parameters_asks_to_be_upgraded() {
        let old = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        );
        let hash = old
            .hash_password(b"cloche verte sous la pluie")
            .unwrap()
            .to_string();
        let verified = Hasher::new()
            .unwrap()
            .verify("cloche verte sous la pluie", Some(&hash))
            .await
            .unwrap();
        assert_eq!(
            verified,
            Verified {
                ok: true,
                needs_rehash: true
            }
        );
    }
}
