//! Password hashing (argon2id, OWASP parameters) off the async executor, with a bound on the
//! hashes in flight so that a storm of logins never stalls page serving; and the strength rules.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::cpu::{CpuError, CpuPool};

use crate::content::text::fold;

/// Hashes per second and per hashing thread (about 20 ms each: a quarter of the core), and the
/// burst allowed. Far above what people typing passwords need; a storm gets 429s.
const HASHES_PER_SECOND: f64 = 12.0;
const HASH_BURST: f64 = 20.0;
/// Refused attempts held back at once before their 429; past it they are answered at once.
const MAX_HELD_REFUSALS: usize = 256;

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
    /// Requests allowed to wait for a hash or hashing; past it, Busy.
    admission: Arc<Semaphore>,
    /// The hashing threads: half the cores, at a lower scheduling priority (nice 10), so
    /// that serving pages always comes first: under load, hashing gets what is left of the
    /// CPU, its queue fills and further attempts get a 429.
    threads: CpuPool,
    /// A token bucket of hashes per second: under a storm the hashing core is busy only part
    /// of the time, and every instance keeps serving pages at nearly full speed.
    budget: std::sync::Mutex<(std::time::Instant, f64)>,
    per_second: f64,
    burst: f64,
    /// Attempts refused before any work (see `saturated`), for a log line now and then.
    refused: std::sync::atomic::AtomicU64,
    /// Refusals being held back (see `web::compte::password_gate`): at most this many at once,
    /// so that the delay cannot pile up open connections.
    held_refusals: Arc<Semaphore>,
    /// Verified against when the e-mail is unknown, so both cost the same time. Made on first
    /// use (on a hashing thread), not at start-up.
    dummy: Arc<std::sync::OnceLock<String>>,
    /// Each client's share of the budget, taken before the global one: one client (a signed-in
    /// user guessing their current password, a script) cannot drain the checks everyone shares.
    clients: std::sync::Mutex<ClientShares>,
}

/// A client's share: a quarter of the checks per second (at least one), with a burst of as
/// many (at least 5); far more than a person typing passwords needs.
const CLIENT_MIN_BURST: f64 = 5.0;
/// Each client's bucket: when it was last charged, and the checks it had left then.
type ClientShares = std::collections::HashMap<String, (std::time::Instant, f64)>;

/// Clients remembered at most; past it, those whose share has refilled are forgotten.
const MAX_CLIENTS: usize = 10_000;

impl Hasher {
    pub fn new() -> Result<Self, HashError> {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        // Half the cores at most hash at once: the rest keep serving pages during a login storm.
        let hashing = (cores / 2).max(1);
        Self::with_limits(hashing, hashing * 4)
    }

    /// The hasher of a portal: `per_second` password checks at most (default: 12 per hashing
    /// thread), with a burst of up to 20.
    pub fn with_rate(per_second: Option<f64>) -> Result<Self, HashError> {
        let mut hasher = Self::new()?;
        if let Some(rate) = per_second {
            hasher.per_second = rate;
            hasher.burst = (rate * 2.0).clamp(1.0, HASH_BURST);
            hasher.budget = std::sync::Mutex::new((std::time::Instant::now(), hasher.burst));
        }
        Ok(hasher)
    }

    /// `threads` hashing threads, `admitted` requests waiting or hashing at most.
    pub fn with_limits(threads: usize, admitted: usize) -> Result<Self, HashError> {
        let pool = CpuPool::new("argon2", threads, admitted)
            .map_err(|e| HashError::Internal(format!("starting a hashing thread: {e}")))?;
        Ok(Self {
            admission: Arc::new(Semaphore::new(admitted)),
            threads: pool,
            dummy: Arc::new(std::sync::OnceLock::new()),
            budget: std::sync::Mutex::new((std::time::Instant::now(), HASH_BURST)),
            per_second: HASHES_PER_SECOND * threads as f64,
            burst: HASH_BURST,
            refused: std::sync::atomic::AtomicU64::new(0),
            held_refusals: Arc::new(Semaphore::new(MAX_HELD_REFUSALS)),
            clients: Default::default(),
        })
    }

    /// True when a password check would be refused now (no hash left in this second's budget,
    /// or the queue full). Checked before a form is even read, so that the attempts of a storm
    /// cost next to nothing: no session, no database, no body.
    pub fn saturated(&self) -> bool {
        let out_of_budget = match self.budget.lock() {
            Ok(budget) => self.refilled(&budget, std::time::Instant::now()) < 1.0,
            Err(_) => true,
        };
        let saturated = out_of_budget || self.admission.available_permits() == 0;
        if saturated {
            let refused = self
                .refused
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if refused.is_multiple_of(1000) {
                tracing::warn!(
                    refused = refused + 1,
                    "password checks saturated: attempts answered 429"
                );
            }
        }
        saturated
    }

    /// Whether `client` has some of its share left (the gate's early answer; takes nothing).
    pub fn client_share_left(&self, client: &str) -> bool {
        let Ok(clients) = self.clients.lock() else {
            return false;
        };
        self.client_tokens(&clients, client, std::time::Instant::now()) >= 1.0
    }

    /// A client's share: a quarter of the checks per second (at least one), and its burst.
    fn client_rate_and_burst(&self) -> (f64, f64) {
        let rate = (self.per_second / 4.0).max(1.0);
        (rate, rate.max(CLIENT_MIN_BURST))
    }

    /// The checks left in `client`'s share at `now` (a full burst for a client not seen yet).
    fn client_tokens(&self, clients: &ClientShares, client: &str, now: std::time::Instant) -> f64 {
        let (rate, burst) = self.client_rate_and_burst();
        clients.get(client).map_or(burst, |(last, tokens)| {
            (tokens + now.duration_since(*last).as_secs_f64() * rate).min(burst)
        })
    }

    /// Charges one password check to `client`'s share, before the global budget: `Busy` when
    /// that client used its share up.
    pub fn charge_client(&self, client: &str) -> Result<(), HashError> {
        if self.take_client_share(client) {
            Ok(())
        } else {
            Err(HashError::Busy)
        }
    }

    /// Takes one check from `client`'s share; false when that client used it up.
    fn take_client_share(&self, client: &str) -> bool {
        let Ok(mut clients) = self.clients.lock() else {
            return false;
        };
        let now = std::time::Instant::now();
        if clients.len() >= MAX_CLIENTS {
            let (_, burst) = self.client_rate_and_burst();
            let full: Vec<String> = clients
                .keys()
                .filter(|c| self.client_tokens(&clients, c, now) >= burst)
                .cloned()
                .collect();
            for client in full {
                clients.remove(&client);
            }
        }
        let tokens = self.client_tokens(&clients, client, now);
        if tokens < 1.0 {
            clients.insert(client.to_owned(), (now, tokens));
            return false;
        }
        clients.insert(client.to_owned(), (now, tokens - 1.0));
        true
    }

    /// A place among the refusals held back, if one is free.
    pub fn hold_refusal(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.held_refusals.clone().try_acquire_owned().ok()
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
        // The place in the queue is held until the work is done, even if the request that
        // asked for it has gone (work nobody waits for any more is skipped).
        self.threads
            .run(move || {
                let _admitted = _admitted;
                work()
            })
            .await
            .map_err(|e| match e {
                CpuError::Panicked(_) => HashError::Internal("password hashing panicked".into()),
                CpuError::Stopped(_) => HashError::Internal("the hashing thread stopped".into()),
            })
    }

    /// The tokens in the bucket at `now`: those left at the last update plus the refill since.
    fn refilled(
        &self,
        &(last, tokens): &(std::time::Instant, f64),
        now: std::time::Instant,
    ) -> f64 {
        (tokens + now.duration_since(last).as_secs_f64() * self.per_second).min(self.burst)
    }

    fn take_token(&self) -> Result<(), HashError> {
        let mut budget = self.budget.lock().map_err(|_| HashError::Busy)?;
        let now = std::time::Instant::now();
        let refilled = self.refilled(&budget, now);
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
    // `None` when none of the words is in it: a password of digits with a few letters is not
    // « mostly » a word it does not contain.
    let leftover = |words: &mut dyn Iterator<Item = &str>| {
        let mut rest = letters.clone();
        let mut found = false;
        for w in words {
            if rest.contains(w) {
                found = true;
                rest = rest.replace(w, "");
            }
        }
        found.then(|| rest.chars().count())
    };
    if leftover(&mut personal_words.iter().map(String::as_str)).is_some_and(|n| n <= 3) {
        return Err(Weakness::Personal);
    }
    if leftover(&mut CHURCH_WORDS.iter().copied()).is_some_and(|n| n <= 3) {
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
    fn a_generated_password_of_mostly_digits_is_not_taken_for_a_personal_one() {
        // `nanoclip create-staff` generates 20 hex digits; about one in 40 has three letters
        // or fewer, which were once refused as « personal » though no personal word was in them.
        assert_eq!(
            check_strength("80417-29a53-61b07-93826", &["equipe@nanoclip.fr"]),
            Ok(())
        );
        for _ in 0..2000 {
            let generated = crate::random::password();
            assert_ne!(
                check_strength(&generated, &["equipe@nanoclip.fr"]),
                Err(Weakness::Personal),
                "{generated}"
            );
        }
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

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority_than_pages() {
        let hasher = Hasher::with_limits(1, 1).unwrap();
        // SAFETY: getpriority reads a scheduling attribute of the calling thread.
        let nice = hasher
            .run(|| unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) })
            .await
            .unwrap();
        // SAFETY: as above, on this (test) thread.
        let here = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(
            nice,
            (here + crate::services::cpu::NICER_BY).min(19),
            "hashing threads are nicer"
        );
        assert!(nice > here || here == 19, "nice {nice}, pages at {here}");
    }

    #[tokio::test]
    async fn past_its_budget_the_hasher_is_saturated_until_it_refills() {
        let hasher = Hasher::with_rate(Some(0.5)).unwrap();
        assert!(!hasher.saturated(), "a burst of one to begin with");
        assert!(hasher.hash("cloche verte sous la pluie").await.is_ok());
        assert!(hasher.saturated(), "no token left");
        assert!(matches!(
            hasher.hash("une de trop").await,
            Err(HashError::Busy)
        ));
        // 20 checks a second: a burst of 20, then one more every 50 ms.
        let refilling = Hasher::with_rate(Some(20.0)).unwrap();
        for _ in 0..20 {
            refilling.take_token().unwrap();
        }
        assert!(refilling.saturated(), "the burst is spent");
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        assert!(!refilling.saturated(), "refilled after a while");
        assert!(refilling.hash("cloche verte sous la pluie").await.is_ok());
    }

    #[test]
    fn at_most_so_many_refusals_are_held_back_at_once() {
        let hasher = Hasher::with_limits(1, 1).unwrap();
        let held: Vec<_> = (0..MAX_HELD_REFUSALS)
            .map(|_| hasher.hold_refusal().expect("a free place"))
            .collect();
        assert!(
            hasher.hold_refusal().is_none(),
            "the next one is answered at once"
        );
        drop(held);
        assert!(hasher.hold_refusal().is_some(), "places come back");
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
