//! Accounts made directly through the services (no e-mail round trip, no command-line spawn):
//! verified, with a known password, and signed in in a browser of their own.

use std::sync::atomic::{AtomicUsize, Ordering};

use nanoclip::domain::account::Role;
use nanoclip::services::accounts::create_account;
use nanoclip::services::passwords::Hasher;
use uuid::Uuid;

use super::{Browser, TestApp};

/// The password of every fixture account.
pub const FIXTURE_PASSWORD: &str = "cloche verte sous la pluie";

/// A verified account, signed in in `browser`.
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub password: String,
    /// None for staff.
    pub organisation: Option<Uuid>,
    pub browser: Browser,
}

impl Account {
    /// The organisation's id (panics for staff, which has none).
    pub fn org(&self) -> Uuid {
        self.organisation.expect("an account of an organisation")
    }
}

/// A unique number for names and addresses within the test process.
fn next() -> usize {
    static COUNTER: AtomicUsize = AtomicUsize::new(1);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

impl TestApp {
    /// The owner of a new organisation on `plan` (`"eglise"` or `"reseau"`), named
    /// « Paroisse N », with an unpaid subscription as after sign-up.
    pub async fn owner(&self, plan: &str) -> Account {
        let n = next();
        let mut conn = self.pool.acquire().await.expect("connection");
        let organisation = nanoclip::services::accounts::open_organisation(
            &mut conn,
            &format!("Paroisse {n}"),
            plan,
            self.clock.now(),
        )
        .await
        .expect("organisation");
        drop(conn);
        self.account(
            Some(organisation),
            &format!("proprietaire{n}@paroisse.fr"),
            Role::Owner,
        )
        .await
    }

    /// A member of `organisation`.
    pub async fn member(&self, organisation: Uuid) -> Account {
        let email = format!("membre{}@paroisse.fr", next());
        self.account(Some(organisation), &email, Role::Member).await
    }

    /// A NanoClip staff account.
    pub async fn staff(&self) -> Account {
        let email = format!("equipe{}@nanoclip.fr", next());
        self.account(None, &email, Role::Staff).await
    }

    /// Creates the account with the portal's services, then signs it in in a new browser.
    pub async fn account(&self, organisation: Option<Uuid>, email: &str, role: Role) -> Account {
        let hasher = Hasher::new().expect("hasher");
        let id = create_account(
            &self.pool,
            &hasher,
            organisation,
            email,
            FIXTURE_PASSWORD,
            role,
        )
        .await
        .expect("account");
        let browser = self.browser();
        let response = browser
            .submit(
                "/compte/connexion",
                "/compte/connexion",
                &[("email", email), ("mot_de_passe", FIXTURE_PASSWORD)],
            )
            .await;
        assert_eq!(response.status(), 303, "{email} signs in");
        Account {
            id,
            email: email.to_owned(),
            password: FIXTURE_PASSWORD.to_owned(),
            organisation,
            browser,
        }
    }

    /// A new browser signed in as `account` (after the clock moved past its session's life).
    pub async fn sign_in_again(&self, account: &Account) -> super::Browser {
        let browser = self.browser();
        let response = browser
            .submit(
                "/compte/connexion",
                "/compte/connexion",
                &[
                    ("email", &account.email),
                    ("mot_de_passe", &account.password),
                ],
            )
            .await;
        assert_eq!(response.status(), 303, "{} signs in again", account.email);
        browser
    }
}
