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

    /// A NanoClip staff account with its second factor set up, signed in and past the second
    /// factor in its browser.
    pub async fn staff(&self) -> Account {
        let email = format!("equipe{}@nanoclip.fr", next());
        let account = self.account(None, &email, Role::Staff).await;
        let secret = self.enrol_second_factor(account.id).await;
        let code =
            nanoclip::services::second_factor::code_at(&secret, self.clock.now()).expect("a code");
        let response = account
            .browser
            .submit(
                "/compte/second-facteur",
                "/compte/second-facteur",
                &[("code", &code)],
            )
            .await;
        assert_eq!(response.status(), 303, "{email} gives the second factor");
        account
    }

    /// Sets up a staff member's second factor through the services (as the enrolment page
    /// does, with the code of the previous 30-second step): its secret.
    pub async fn enrol_second_factor(&self, user: Uuid) -> String {
        use nanoclip::services::second_factor;
        let now = self.clock.now();
        let link = second_factor::start_enrolment(&self.pool, user, "http://portail.test", now)
            .await
            .expect("enrolment link");
        let token = link.split("jeton=").nth(1).expect("a token").to_owned();
        let secret = self.second_factor_secret(user).await;
        let code =
            second_factor::code_at(&secret, now - time::Duration::seconds(30)).expect("a code");
        second_factor::confirm_enrolment(&self.pool, &token, user, &code, now)
            .await
            .expect("enrolment confirmed");
        secret
    }

    /// The staff member's TOTP secret (the one waiting for confirmation, else the one in force).
    pub async fn second_factor_secret(&self, user: Uuid) -> String {
        sqlx::query_scalar(
            "SELECT coalesce(pending_secret, secret) FROM staff_second_factors WHERE user_id = $1",
        )
        .bind(user)
        .fetch_one(&self.pool)
        .await
        .expect("a second factor")
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
