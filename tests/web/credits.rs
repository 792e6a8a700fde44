//! The credit ledger: operations, idempotency, concurrency (storms from two processes, with a
//! naive control the storm catches), holds racing their timeout, random interleavings against a
//! model, renewals at any date, alerts and the operator commands. `check-ledger` runs after each.

use std::sync::Arc;

use nanoclip::db;
use nanoclip::domain::ledger::HoldState;
use nanoclip::domain::money::Credits;
use nanoclip::services::credits::{self, Actor, Adjustment, HoldInput, HoldOutcome};
use sqlx::PgPool;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::common::{TestApp, spawn_app};

const SYSTEM: Actor<'static> = Actor {
    actor: "system",
    reason: "test",
};

/// The ledger agrees with every balance.
pub async fn assert_ledger_clean(pool: &PgPool) {
    let differences = credits::check(pool).await.expect("check-ledger");
    assert!(differences.is_empty(), "check-ledger: {differences:#?}");
}

/// What `check-ledger` finds, by its description.
async fn differences_found(pool: &PgPool) -> Vec<String> {
    credits::check(pool)
        .await
        .expect("check-ledger")
        .into_iter()
        .map(|d| d.what)
        .collect()
}

/// A new organisation on `plan`, with `credits` credits in all (its allotment, then an
/// adjustment for the rest, or a removal).
pub async fn organisation_with(app: &TestApp, plan: &str, credits: i64) -> Uuid {
    let mut conn = app.pool.acquire().await.expect("connection");
    let organisation = nanoclip::services::accounts::open_organisation(
        &mut conn,
        &format!("Paroisse {}", Uuid::new_v4().simple()),
        plan,
        app.clock.now(),
    )
    .await
    .expect("organisation");
    drop(conn);
    let now = app.clock.now();
    let have = credits::available(&app.pool, organisation, now)
        .await
        .unwrap();
    if have.0 != credits {
        let key = Uuid::new_v4().to_string();
        credits::adjust(
            &app.pool,
            Adjustment {
                organisation,
                credits: Credits(credits - have.0),
                reason: "test",
                last_day: None,
                key: &key,
                actor: "cli",
            },
            now,
        )
        .await
        .unwrap();
    }
    organisation
}

fn hold_input<'a>(
    organisation: Uuid,
    amount: i64,
    creation_type: &'a str,
    key: &'a str,
) -> HoldInput<'a> {
    HoldInput {
        organisation,
        amount: Credits(amount),
        creation_type,
        key,
        reference: "generation:test",
        actor: "user:test",
    }
}

/// A video's hold of `amount` credits placed at `at` (the test stops if it is not).
async fn placed(
    app: &TestApp,
    org: Uuid,
    amount: i64,
    key: &str,
    at: OffsetDateTime,
) -> db::credits::Hold {
    match credits::hold(&app.pool, hold_input(org, amount, "video", key), at)
        .await
        .unwrap()
    {
        HoldOutcome::Placed { hold, .. } => hold,
        other => panic!("{other:?}"),
    }
}

/// `amount` credits spent at `at` (a render held and captured).
async fn spend(app: &TestApp, org: Uuid, amount: i64, at: OffsetDateTime) {
    let hold = placed(app, org, amount, "spend", at).await;
    credits::capture(&app.pool, hold.id, SYSTEM, at)
        .await
        .unwrap();
}

/// A Plan Église organisation on 31 January 2026 (its period ends at midnight, Paris, on
/// 28 February; the test clock stays there) that has spent `spent` of its 30 credits.
async fn eglise_having_spent(app: &TestApp, spent: i64) -> Uuid {
    app.clock.set(datetime!(2026-01-31 10:00 UTC));
    let org = organisation_with(app, "eglise", 30).await;
    spend(app, org, spent, app.clock.now()).await;
    org
}

/// A render of `amount` launched at 23:50 (Paris) on 28 February 2026, in the last ten minutes
/// of `eglise_having_spent`'s period; the renewal at midnight; the render failing at 00:05.
/// Returns that last moment.
async fn late_render_failing_after_the_renewal(
    app: &TestApp,
    org: Uuid,
    amount: i64,
) -> OffsetDateTime {
    let end = datetime!(2026-02-27 23:00 UTC);
    let late = placed(app, org, amount, "late", end - Duration::minutes(10)).await;
    assert_eq!(app.renew_due(end).await.unwrap(), 1);
    let after = end + Duration::minutes(5);
    credits::release(&app.pool, late.id, SYSTEM, after)
        .await
        .unwrap();
    after
}

#[tokio::test]
async fn a_new_organisation_starts_its_first_period_with_its_allotment() {
    let app = spawn_app().await;
    let eglise = organisation_with(&app, "eglise", 30).await;
    let reseau = app.owner("reseau").await.org();
    let now = app.clock.now();
    assert_eq!(
        credits::available(&app.pool, eglise, now).await.unwrap(),
        Credits(30)
    );
    assert_eq!(
        credits::available(&app.pool, reseau, now).await.unwrap(),
        Credits(150)
    );
    let mut conn = app.pool.acquire().await.unwrap();
    let sub = db::credits::subscription(&mut conn, reseau)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sub.period_number, 1);
    assert!(sub.period_start <= now && now < sub.period_end);
    let buckets = db::credits::buckets(&mut conn, reseau).await.unwrap();
    assert_eq!(buckets.len(), 1);
    assert_eq!(buckets[0].expires_at, sub.period_end);
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn the_same_key_twice_gives_the_first_hold_and_no_second_movement() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "eglise", 30).await;
    let now = app.clock.now();
    let first = credits::hold(&app.pool, hold_input(org, 3, "video", "k1"), now)
        .await
        .unwrap();
    let HoldOutcome::Placed { hold, available } = first else {
        panic!("placed: {first:?}")
    };
    assert_eq!(available, Credits(27));
    let again = credits::hold(&app.pool, hold_input(org, 3, "video", "k1"), now)
        .await
        .unwrap();
    let HoldOutcome::Existing { hold: same } = again else {
        panic!("existing: {again:?}")
    };
    assert_eq!(same.id, hold.id);
    assert_eq!(
        credits::available(&app.pool, org, now).await.unwrap(),
        Credits(27)
    );
    // Capture twice: one capture; a release afterwards changes nothing.
    let c1 = credits::capture(&app.pool, hold.id, SYSTEM, now)
        .await
        .unwrap();
    let c2 = credits::capture(&app.pool, hold.id, SYSTEM, now)
        .await
        .unwrap();
    let r = credits::release(&app.pool, hold.id, SYSTEM, now)
        .await
        .unwrap();
    assert!(c1.changed && !c2.changed && !r.changed);
    assert_eq!(r.state, HoldState::Captured);
    assert_eq!(
        credits::available(&app.pool, org, now).await.unwrap(),
        Credits(27)
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM credit_ledger WHERE hold_id = $1")
        .bind(hold.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(rows, 2, "one hold row and one capture row");
    // A released hold gives its credits back.
    let HoldOutcome::Placed { hold, .. } =
        credits::hold(&app.pool, hold_input(org, 4, "video", "k2"), now)
            .await
            .unwrap()
    else {
        panic!()
    };
    credits::release(&app.pool, hold.id, SYSTEM, now)
        .await
        .unwrap();
    assert_eq!(
        credits::available(&app.pool, org, now).await.unwrap(),
        Credits(27)
    );
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn a_hold_draws_from_the_type_s_buckets_then_the_soonest_to_expire() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "eglise", 30).await;
    let now = app.clock.now();
    let mut conn = app.pool.acquire().await.unwrap();
    let grant = |source, only: Option<&'static str>, amount: i64, days: i64, key: &'static str| {
        (source, only, amount, days, key)
    };
    for (source, only, amount, days, key) in [
        grant(
            nanoclip::domain::ledger::BucketSource::Purchase,
            Some("musique"),
            3,
            300,
            "order:m",
        ),
        grant(
            nanoclip::domain::ledger::BucketSource::Purchase,
            None,
            10,
            300,
            "order:p",
        ),
    ] {
        credits::grant_in(
            &mut conn,
            org,
            source,
            only,
            Credits(amount),
            now + Duration::days(days),
            key,
            SYSTEM,
            now,
        )
        .await
        .unwrap();
    }
    drop(conn);
    // Music: the music-only bucket (3), then the allotment (expires first), not the pack.
    let HoldOutcome::Placed { hold, .. } =
        credits::hold(&app.pool, hold_input(org, 5, "musique", "m1"), now)
            .await
            .unwrap()
    else {
        panic!()
    };
    let drawn: Vec<(String, i64)> = sqlx::query_as(
        "SELECT b.grant_key, l.amount FROM credit_ledger l JOIN credit_buckets b ON b.id = l.bucket_id
         WHERE l.hold_id = $1 ORDER BY l.id",
    )
    .bind(hold.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        drawn,
        vec![("order:m".to_owned(), 3), ("period:1".to_owned(), 2)]
    );
    // A video cannot use music credits: 28 + 10 - 0 available to it.
    let short = credits::hold(&app.pool, hold_input(org, 39, "video", "v1"), now)
        .await
        .unwrap();
    assert!(
        matches!(
            short,
            HoldOutcome::Short {
                available: Credits(38)
            }
        ),
        "{short:?}"
    );
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn the_database_refuses_what_cannot_be() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "eglise", 30).await;
    for statement in [
        "UPDATE credit_ledger SET delta = 100",
        "DELETE FROM credit_ledger",
        "TRUNCATE credit_ledger CASCADE",
        "UPDATE credit_buckets SET remaining = remaining + 5",
    ] {
        let error = sqlx::query(statement)
            .execute(&app.pool)
            .await
            .expect_err(statement);
        assert!(error.to_string().contains("ledger"), "{statement}: {error}");
    }
    // A movement past what a bucket holds: refused by the bucket's constraint.
    let bucket: i64 =
        sqlx::query_scalar("SELECT id FROM credit_buckets WHERE organisation_id = $1")
            .bind(org)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let error = sqlx::query(
        "INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, actor, reason, reference, created_at)
         VALUES ($1, $2, 'expiry', -31, 31, 'test', 'test', 'test', now())",
    )
    .bind(org)
    .bind(bucket)
    .execute(&app.pool)
    .await
    .expect_err("more than the bucket holds");
    // The bucket's constraint: its credits stay between 0 and its amount.
    assert!(
        error.to_string().contains("remaining_within_amount"),
        "{error}"
    );
    assert_eq!(
        credits::available(&app.pool, org, app.clock.now())
            .await
            .unwrap(),
        Credits(30)
    );
    assert_ledger_clean(&app.pool).await;
}

/// The ledger has no CHECK of its own (PostgreSQL parses each again at every write: a third of
/// a hold's time with the foreign keys); `check-ledger` verifies each row against its kind's rules
/// instead, and a unique index keeps a hold's rows from being resolved twice.
#[tokio::test]
async fn check_ledger_finds_rows_that_break_their_kinds_rules() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "eglise", 30).await;
    let now = app.clock.now();
    let HoldOutcome::Placed { hold, .. } =
        credits::hold(&app.pool, hold_input(org, 4, "video", "regles"), now)
            .await
            .unwrap()
    else {
        panic!("placed")
    };
    credits::capture(&app.pool, hold.id, SYSTEM, now)
        .await
        .unwrap();
    assert_ledger_clean(&app.pool).await;
    let bucket: i64 = sqlx::query_scalar(
        "SELECT bucket_id FROM credit_ledger WHERE hold_id = $1 AND kind = 'hold'",
    )
    .bind(hold.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let insert = |kind: &'static str, amount: i64, hold_id: Option<Uuid>| {
        sqlx::query(
            "INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at)
             VALUES ($1, $2, $3, 0, $4, $5, 'test', 'test', 'test', now())",
        )
        .bind(org)
        .bind(bucket)
        .bind(kind)
        .bind(amount)
        .bind(hold_id)
        .execute(&app.pool)
    };
    // A second resolution of a hold's row: refused by the database (a unique index).
    let error = insert("release", 4, Some(hold.id))
        .await
        .expect_err("released after its capture");
    assert!(
        error.to_string().contains("credit_ledger_resolved_once"),
        "{error}"
    );
    // Rows that moved nothing (delta 0, so no trigger) but say what cannot be: an unknown kind,
    // a grant of nothing. Written, and found.
    insert("bonus", 2, None).await.unwrap();
    insert("grant", 3, None).await.unwrap();
    let found = differences_found(&app.pool).await;
    assert!(
        found.iter().any(|w| w.contains("(bonus) delta")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|w| w.contains("(grant) delta")),
        "{found:?}"
    );
    assert_eq!(found.len(), 2, "{found:?}");
}

/// An engine's report that reaches an instance whose clock is behind the one that placed the
/// hold: its capture or release is dated at the hold's moment, not before it (it would count on
/// the wrong day, and `check-ledger` would report it for ever: the ledger is append-only).
#[tokio::test]
async fn a_resolution_from_a_clock_behind_the_hold_s_is_dated_at_the_hold() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "eglise", 30).await;
    let now = app.clock.now();
    let behind = now - Duration::minutes(5);
    let released = placed(&app, org, 2, "retard-echec", now).await;
    credits::release(&app.pool, released.id, SYSTEM, behind)
        .await
        .unwrap();
    let captured = placed(&app, org, 3, "retard-succes", now).await;
    credits::capture(&app.pool, captured.id, SYSTEM, behind)
        .await
        .unwrap();
    for hold in [released.id, captured.id] {
        // The hold's row and its resolution's, at one moment (the database's microseconds).
        let (moments, resolutions): (i64, i64) = sqlx::query_as(
            "SELECT count(DISTINCT created_at), count(*) FILTER (WHERE kind <> 'hold')
               FROM credit_ledger WHERE hold_id = $1",
        )
        .bind(hold)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!((moments, resolutions), (1, 1), "hold {hold}");
    }
    assert_ledger_clean(&app.pool).await;
}

/// The usage counters (migration 27) are recomputed from the ledger by `check-ledger`: a launch
/// counted twice, or a capture's credits missing from its day, is reported with its day.
#[tokio::test]
async fn check_ledger_finds_usage_counters_that_differ_from_the_ledger() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "eglise", 30).await;
    let now = app.clock.now();
    let captured = placed(&app, org, 2, "compte", now).await;
    credits::capture(&app.pool, captured.id, SYSTEM, now)
        .await
        .unwrap();
    placed(&app, org, 1, "encours", now).await;
    assert_ledger_clean(&app.pool).await;
    let day: time::Date =
        sqlx::query_scalar("SELECT ($1::timestamptz AT TIME ZONE 'Europe/Paris')::date")
            .bind(now)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    sqlx::query("UPDATE credit_usage_days SET launches = launches + 1 WHERE organisation_id = $1")
        .bind(org)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE credit_capture_days SET credits = credits - 2 WHERE organisation_id = $1")
        .bind(org)
        .execute(&app.pool)
        .await
        .unwrap();
    let found = credits::check(&app.pool).await.unwrap();
    let found: Vec<_> = found
        .iter()
        .map(|d| (d.what.as_str(), d.expected, d.found))
        .collect();
    assert_eq!(
        found,
        [
            (format!("captures of {day} (usage counter)").as_str(), 2, 0),
            (format!("launches of {day} (usage counter)").as_str(), 2, 3),
        ]
    );
}

/// A hold resolved at a moment before its placement (written before the fix above, or by hand)
/// is reported: the day's usage counts a release with the day of its hold.
#[tokio::test]
async fn check_ledger_finds_a_hold_resolved_before_it_was_placed() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "eglise", 30).await;
    let now = app.clock.now();
    let hold = placed(&app, org, 2, "avant", now).await;
    // The release as a statement of its own would write it: the open row gone, the credits back
    // in their bucket (the ledger's trigger), dated five minutes before the hold (and the day's
    // launches one fewer: the usage counters' trigger counts what any writer writes).
    sqlx::query("DELETE FROM credit_holds_open WHERE hold_id = $1")
        .bind(hold.id)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at)
         SELECT organisation_id, bucket_id, 'release', amount, amount, hold_id, 'test', 'test', reference, $2
           FROM credit_ledger WHERE hold_id = $1 AND kind = 'hold'",
    )
    .bind(hold.id)
    .bind(now - Duration::minutes(5))
    .execute(&app.pool)
    .await
    .unwrap();
    let found = differences_found(&app.pool).await;
    assert_eq!(
        found,
        [format!("hold {} resolved before it was placed", hold.id)]
    );
}

/// The index entries of `credit_ledger` that `usage` reads at `now` (all of them, and those of
/// `credit_ledger_resolved_once`, where a probe for each launch's release would look), with the
/// usage. On a connection of its own (a pooled connection's statistics include what it did before
/// and has not reported yet), without sequential scans (on a test's small table they would hide
/// what the read costs at scale); entries read, whether their rows are visible to all or not.
/// After `ANALYZE`, as autovacuum keeps the statistics of a ledger of any size (the function's
/// plan is made once per connection, for what the statistics say of the table).
async fn usage_and_index_entries_read(
    app: &TestApp,
    org: Uuid,
    now: OffsetDateTime,
) -> (nanoclip::domain::limits::Usage, i64, i64) {
    sqlx::query("ANALYZE credit_ledger")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&app.database_url())
        .await
        .unwrap();
    sqlx::query("SET enable_seqscan = off")
        .execute(&mut conn)
        .await
        .unwrap();
    let mut tx = sqlx::Connection::begin(&mut conn).await.unwrap();
    let usage = db::credits::usage(&mut tx, org, now).await.unwrap();
    let (all, probes): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(indexrelid)), 0)::bigint,
                coalesce(sum(pg_stat_get_xact_tuples_returned(indexrelid))
                           FILTER (WHERE indexrelid = 'credit_ledger_resolved_once'::regclass), 0)::bigint
           FROM pg_index WHERE indrelid = 'credit_ledger'::regclass",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    (usage, all, probes)
}

/// The fair-use limits' use, as PRODUCT.md counts it (Paris days and months): the launches of
/// the day that run or succeeded, a hold released from two buckets not counted, a launch of
/// the day before released today not taken off today; the credits held and captured in the
/// month. And the read does not grow with the day's launches (migration 27, its counters; before
/// it, two index entries per launch, and before migration 25 a probe each): every launch locks
/// its organisation and reads this.
#[tokio::test]
async fn the_day_s_usage_counts_running_and_succeeded_launches_without_a_probe_each() {
    let app = spawn_app().await;
    // 2 December, 23:40 in Paris.
    app.clock.set(datetime!(2026-12-02 22:40 UTC));
    let org = organisation_with(&app, "eglise", 1_000).await;
    spend(&app, org, 2, datetime!(2026-12-02 22:40 UTC)).await;
    let yesterday = placed(&app, org, 1, "hier", datetime!(2026-12-02 22:50 UTC)).await;
    // 3 December in Paris from here on: yesterday's render fails at 00:05.
    credits::release(
        &app.pool,
        yesterday.id,
        SYSTEM,
        datetime!(2026-12-02 23:05 UTC),
    )
    .await
    .unwrap();
    // 40 credits: the allotment's 28, then 12 of the adjustment; released from both.
    let two_buckets = placed(&app, org, 40, "deux", datetime!(2026-12-03 08:00 UTC)).await;
    credits::release(
        &app.pool,
        two_buckets.id,
        SYSTEM,
        datetime!(2026-12-03 08:30 UTC),
    )
    .await
    .unwrap();
    let released_rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM credit_ledger WHERE hold_id = $1 AND kind = 'release'",
    )
    .bind(two_buckets.id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(released_rows, 2, "a release from two buckets");
    let succeed = |from: usize, to: usize| {
        let app = &app;
        async move {
            for i in from..to {
                let at = datetime!(2026-12-03 09:00 UTC) + Duration::minutes(i as i64);
                let hold = placed(app, org, 1, &format!("ok{i}"), at).await;
                credits::capture(&app.pool, hold.id, SYSTEM, at)
                    .await
                    .unwrap();
            }
        }
    };
    succeed(0, 30).await;
    let running = placed(&app, org, 3, "encours", datetime!(2026-12-03 11:00 UTC)).await;
    let now = datetime!(2026-12-03 12:00 UTC);
    let expected = |succeeded: i64| nanoclip::domain::limits::Usage {
        generations_today: succeeded + 1,
        credits_this_month: 2 + succeeded + 3,
        renders_running: 1,
    };
    let (usage, read_at_30, probes) = usage_and_index_entries_read(&app, org, now).await;
    assert_eq!(usage, expected(30));
    assert_eq!(
        probes, 0,
        "the usage looked up launches' releases one by one"
    );
    succeed(30, 90).await;
    let (usage, read_at_90, probes) = usage_and_index_entries_read(&app, org, now).await;
    assert_eq!(usage, expected(90));
    assert_eq!(
        probes, 0,
        "the usage looked up launches' releases one by one"
    );
    // The usage is read from its counters (migration 27): 60 more launches of the day cost the
    // read no entry of the ledger's indexes (it read two per launch before, one in the launches'
    // index and one in the captures').
    assert_eq!(
        read_at_90, read_at_30,
        "the usage read more of the ledger's index entries as the day's launches grew"
    );
    credits::capture(&app.pool, running.id, SYSTEM, now)
        .await
        .unwrap();
    assert_ledger_clean(&app.pool).await;
}

/// A hold of no credit, or of fewer than none, is refused by the hold's function and writes
/// nothing (the dropped `amount > 0` CHECKs used to refuse it; the function must, or a negative
/// hold would add credits to a bucket).
#[tokio::test]
async fn a_hold_of_no_credit_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "eglise", 30).await;
    let now = app.clock.now();
    for (amount, key) in [(0, "rien"), (-5, "moins")] {
        let outcome = credits::hold(&app.pool, hold_input(org, amount, "video", key), now).await;
        assert!(outcome.is_err(), "{amount}: {outcome:?}");
    }
    let (rows, open): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM credit_ledger WHERE organisation_id = $1 AND kind = 'hold'),
                (SELECT count(*) FROM credit_holds_open WHERE organisation_id = $1)",
    )
    .bind(org)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((rows, open), (0, 0));
    assert_eq!(
        credits::available(&app.pool, org, now).await.unwrap(),
        Credits(30)
    );
    assert_ledger_clean(&app.pool).await;
}

/// An organisation whose credits have moved keeps its account and its ledger: deleting it is
/// refused (the ledger's foreign key did it before migration 24; a trigger does it now).
#[tokio::test]
async fn an_organisation_with_a_ledger_cannot_be_deleted() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "eglise", 30).await;
    let error = sqlx::query("DELETE FROM credit_accounts WHERE organisation_id = $1")
        .bind(org)
        .execute(&app.pool)
        .await
        .expect_err("deleted with its ledger");
    assert!(error.to_string().contains("has a ledger"), "{error}");
    assert_ledger_clean(&app.pool).await;
}

/// A launch a second before a pack expires, and the expiry job at its expiry: the job must
/// expire what the hold left, whichever reads the pack first. It used to read the pack's credits
/// before waiting for the organisation's lock, then take them all out once the launch had
/// committed: below zero, so the bucket's constraint failed the whole run (every organisation's
/// expiries) at the periods' ends, when launches and expiries meet.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_expiry_job_expires_what_a_concurrent_hold_left() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "eglise", 30).await;
    let now = app.clock.now();
    let expiry = now + Duration::days(1);
    let mut conn = app.pool.acquire().await.unwrap();
    credits::grant_in(
        &mut conn,
        org,
        nanoclip::domain::ledger::BucketSource::Purchase,
        None,
        Credits(100),
        expiry,
        "order:course",
        SYSTEM,
        now,
    )
    .await
    .unwrap();
    drop(conn);
    // The launch: 60 of the pack's 100 held (it expires first), not committed yet.
    let mut launch = app.pool.begin().await.unwrap();
    let placed = credits::hold_in(
        &mut launch,
        hold_input(org, 60, "video", "course"),
        expiry - Duration::seconds(1),
    )
    .await
    .unwrap();
    assert!(matches!(placed, HoldOutcome::Placed { .. }), "{placed:?}");
    // The job, meanwhile, in its run's transaction.
    let pool = app.pool.clone();
    let job = tokio::spawn(async move {
        let mut tx = pool.begin().await?;
        let expired = credits::expire_due(&mut tx, expiry).await?;
        tx.commit().await?;
        anyhow::Ok(expired)
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    launch.commit().await.unwrap();
    let expired = job.await.unwrap().expect("the expiry job's run");
    assert_eq!(expired, 40);
    assert_ledger_clean(&app.pool).await;
}

/// How a storm went: holds placed, refused for want of credits, and errors (which a user would
/// see as a 500).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Storm {
    placed: u32,
    short: u32,
    errors: u32,
}

/// `count` concurrent holds of `amount` credits, each with its own key, through `hold`.
async fn storm<F, Fut>(
    pool: &PgPool,
    org: Uuid,
    count: usize,
    amount: i64,
    tag: &str,
    hold: F,
) -> Storm
where
    F: Fn(PgPool, Uuid, i64, String) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = anyhow::Result<bool>> + Send + 'static,
{
    let barrier = Arc::new(tokio::sync::Barrier::new(count));
    let mut tasks = Vec::new();
    for i in 0..count {
        let (pool, barrier, hold) = (pool.clone(), barrier.clone(), hold.clone());
        let key = format!("{tag}-{i}");
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            hold(pool, org, amount, key).await
        }));
    }
    let mut outcome = Storm::default();
    for task in tasks {
        match task.await.expect("task") {
            Ok(true) => outcome.placed += 1,
            Ok(false) => outcome.short += 1,
            Err(_) => outcome.errors += 1,
        }
    }
    outcome
}

/// The portal's hold.
async fn portal_hold(pool: PgPool, org: Uuid, amount: i64, key: String) -> anyhow::Result<bool> {
    let now = OffsetDateTime::now_utc();
    match credits::hold(&pool, hold_input(org, amount, "video", &key), now).await? {
        HoldOutcome::Placed { .. } => Ok(true),
        HoldOutcome::Short { .. } => Ok(false),
        HoldOutcome::Existing { .. } => anyhow::bail!("a fresh key found a hold"),
    }
}

/// The control: a naive hold that reads the balance, then writes, without the account lock.
async fn naive_hold(pool: PgPool, org: Uuid, amount: i64, key: String) -> anyhow::Result<bool> {
    let mut tx = pool.begin().await?;
    let buckets: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, remaining FROM credit_buckets WHERE organisation_id = $1 AND remaining > 0 AND expires_at > now() ORDER BY expires_at, id",
    )
    .bind(org)
    .fetch_all(&mut *tx)
    .await?;
    if buckets.iter().map(|b| b.1).sum::<i64>() < amount {
        return Ok(false);
    }
    tokio::task::yield_now().await;
    // Past the guard, as the hold's own function is (and without its lock).
    sqlx::query("SET LOCAL nanoclip.ledger = 'hold'")
        .execute(&mut *tx)
        .await?;
    let hold = Uuid::new_v4();
    let mut left = amount;
    for (bucket, remaining) in buckets {
        let n = remaining.min(left);
        if n == 0 {
            break;
        }
        sqlx::query("UPDATE credit_buckets SET remaining = remaining - $2 WHERE id = $1")
            .bind(bucket)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO credit_ledger (organisation_id, bucket_id, kind, delta, amount, hold_id, actor, reason, reference, created_at, operation_key, creation_type, expires_at)
             VALUES ($1, $2, 'hold', -$3::bigint, $3, $4, 'naive', 'naive', 'naive', now(), CASE WHEN $5 THEN $6 END, 'video', now() + interval '30 minutes')",
        )
        .bind(org)
        .bind(bucket)
        .bind(n)
        .bind(hold)
        .bind(left == amount)
        .bind(&key)
        .execute(&mut *tx)
        .await?;
        left -= n;
    }
    sqlx::query(
        "INSERT INTO credit_holds_open (hold_id, organisation_id, amount, expires_at)
         VALUES ($1, $2, $3, now() + interval '30 minutes')",
    )
    .bind(hold)
    .bind(org)
    .bind(amount)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Run by the storm test in a second process (the test binary again), against the database
/// named by NANOCLIP_STORM_DATABASE_URL: 100 concurrent holds of 3 credits.
#[tokio::test]
#[ignore = "run by the_storm_of_200_holds_from_two_processes_places_exactly_16"]
async fn storm_second_process() {
    let Ok(url) = std::env::var("NANOCLIP_STORM_DATABASE_URL") else {
        return;
    };
    let org: Uuid = std::env::var("NANOCLIP_STORM_ORGANISATION")
        .unwrap()
        .parse()
        .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(10)
        .connect(&url)
        .await
        .unwrap();
    let outcome = storm(&pool, org, 100, 3, "second", portal_hold).await;
    println!(
        "STORM {} {} {}",
        outcome.placed, outcome.short, outcome.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_storm_of_200_holds_from_two_processes_places_exactly_16() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "reseau", 50).await;
    let second = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "credits::storm_second_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("NANOCLIP_STORM_DATABASE_URL", app.database_url())
        .env("NANOCLIP_STORM_ORGANISATION", org.to_string())
        .output();
    let here = storm(&app.pool, org, 100, 3, "first", portal_hold);
    let (second, here) = tokio::join!(second, here);
    let second = second.unwrap();
    let stdout = String::from_utf8_lossy(&second.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("STORM "))
        .unwrap_or_else(|| panic!("second process: {stdout}"));
    let there: Vec<u32> = line.split(' ').map(|n| n.parse().unwrap()).collect();
    assert_eq!(here.errors + there[2], 0, "no errors: {here:?} {there:?}");
    assert_eq!(
        here.placed + there[0],
        16,
        "exactly 16 holds: {here:?} {there:?}"
    );
    assert_eq!(here.short + there[1], 184);
    assert!(there[0] > 0 || there[1] > 0, "the second process took part");
    let now = app.clock.now();
    assert_eq!(
        credits::available(&app.pool, org, now).await.unwrap(),
        Credits(2)
    );
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_storm_catches_a_naive_hold() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "reseau", 50).await;
    let naive = storm(&app.pool, org, 200, 3, "naive", naive_hold).await;
    // Without the lock, concurrent holds pass the check on the same credits: the bucket's
    // constraint refuses the overdraft, but as errors (a user would get a 500), not refusals.
    assert!(
        naive.errors > 0 || naive.placed != 16,
        "the control must be caught: {naive:?}"
    );
    // The database still never lost a credit.
    assert!(naive.placed <= 16, "{naive:?}");
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_racing_its_timeout_is_captured_or_released_never_both() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "reseau", 150).await;
    let start = app.clock.now();
    let mut holds = Vec::new();
    for i in 0..40 {
        let key = format!("race-{i}");
        let HoldOutcome::Placed { hold, .. } =
            credits::hold(&app.pool, hold_input(org, 3, "video", &key), start)
                .await
                .unwrap()
        else {
            panic!()
        };
        holds.push(hold.id);
    }
    let late = start + Duration::minutes(31);
    let mut captures = Vec::new();
    for id in holds.clone() {
        let pool = app.pool.clone();
        captures.push(tokio::spawn(async move {
            credits::capture(
                &pool,
                id,
                Actor {
                    actor: "engine",
                    reason: "succeeded",
                },
                late,
            )
            .await
        }));
    }
    let timeouts = {
        let pool = app.pool.clone();
        tokio::spawn(
            async move { nanoclip::services::generations::expire_overdue(&pool, late).await },
        )
    };
    let mut captured = 0;
    for c in captures {
        if c.await.unwrap().unwrap().changed {
            captured += 1;
        }
    }
    let released = timeouts.await.unwrap().unwrap();
    assert_eq!(
        captured + released,
        40,
        "each hold resolved once: {captured} + {released}"
    );
    let both: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT hold_id FROM credit_ledger WHERE kind IN ('capture', 'release')
         GROUP BY hold_id HAVING count(DISTINCT kind) > 1) x",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(both, 0);
    let still: i64 = sqlx::query_scalar("SELECT count(*) FROM credit_holds_open")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(still, 0);
    assert_eq!(
        credits::available(&app.pool, org, late).await.unwrap(),
        Credits(150 - 3 * captured as i64)
    );
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn renewal_carries_up_to_the_cap_expires_the_rest_and_grants_the_allotment() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-01-31 10:00 UTC));
    let org = organisation_with(&app, "eglise", 30).await;
    let now = app.clock.now();
    // 18 credits spent: 12 left of the allotment, 10 carry over (the cap), 2 expire.
    let HoldOutcome::Placed { hold, .. } =
        credits::hold(&app.pool, hold_input(org, 18, "video", "spend"), now)
            .await
            .unwrap()
    else {
        panic!()
    };
    credits::capture(&app.pool, hold.id, SYSTEM, now)
        .await
        .unwrap();
    // Nothing due yet.
    assert_eq!(app.renew_due(now).await.unwrap(), 0);
    // Anchored on 31 January: the period ends at midnight (Paris) on 28 February.
    let end = datetime!(2026-02-27 23:00 UTC);
    assert_eq!(app.renew_due(end - Duration::seconds(1)).await.unwrap(), 0);
    let renewed = app.renew_due(end).await.unwrap();
    assert_eq!(renewed, 1);
    assert_eq!(
        credits::available(&app.pool, org, end).await.unwrap(),
        Credits(40)
    );
    let mut conn = app.pool.acquire().await.unwrap();
    let buckets = db::credits::buckets(&mut conn, org).await.unwrap();
    let summary: Vec<(String, i64, OffsetDateTime)> = buckets
        .iter()
        .map(|b| (b.source.as_str().to_owned(), b.remaining.0, b.expires_at))
        .collect();
    // Period 2 ends on 31 March (the anchor's day again), midnight Paris (summer time: 22:00 UTC).
    let next_end = datetime!(2026-03-30 22:00 UTC);
    assert_eq!(
        summary,
        vec![
            ("rollover".to_owned(), 10, next_end),
            ("allotment".to_owned(), 30, next_end)
        ]
    );
    drop(conn);
    // Run again, or by two instances at once: nothing more.
    let (a, b) = tokio::join!(app.renew_due(end), app.renew_due(end));
    assert_eq!(a.unwrap() + b.unwrap(), 0);
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn renewal_catches_up_the_periods_missed_while_the_portal_was_down() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-03-10 09:00 UTC));
    let org = organisation_with(&app, "reseau", 150).await;
    // Three months later, the renewals of three periods run at once.
    let later = datetime!(2026-06-10 12:00 UTC);
    let (a, b) = tokio::join!(app.renew_due(later), app.renew_due(later));
    assert_eq!(a.unwrap() + b.unwrap(), 3, "three periods, once each");
    // Period 4's allotment (150) and what period 3 carried over (the cap, 50).
    assert_eq!(
        credits::available(&app.pool, org, later).await.unwrap(),
        Credits(200)
    );
    let periods: Vec<(i32, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT number, expired, carried FROM subscription_periods WHERE organisation_id = $1 ORDER BY number",
    )
    .bind(org)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        periods,
        vec![
            (1, Some(100), Some(50)),
            (2, Some(150), Some(50)),
            (3, Some(150), Some(50)),
            (4, None, None)
        ]
    );
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn a_past_due_subscription_gets_no_new_allotment() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-04-02 08:00 UTC));
    let org = organisation_with(&app, "eglise", 30).await;
    sqlx::query("UPDATE subscriptions SET status = 'past_due' WHERE organisation_id = $1")
        .bind(org)
        .execute(&app.pool)
        .await
        .unwrap();
    let later = datetime!(2026-05-02 12:00 UTC);
    assert_eq!(app.renew_due(later).await.unwrap(), 1);
    assert_eq!(
        credits::available(&app.pool, org, later).await.unwrap(),
        Credits(10),
        "the rollover only"
    );
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn one_low_balance_alert_per_crossing() {
    let app = spawn_app().await;
    let owner = app.owner("eglise").await;
    let org = owner.org();
    let now = app.clock.now();
    let alerts = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM credit_alerts WHERE kind = 'low_balance'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let mut holds = Vec::new();
    for (i, amount) in [20, 6, 2, 1].into_iter().enumerate() {
        let key = format!("low-{i}");
        if let HoldOutcome::Placed { hold, .. } =
            credits::hold(&app.pool, hold_input(org, amount, "video", &key), now)
                .await
                .unwrap()
        {
            holds.push(hold.id);
        }
    }
    // 30 → 10 → 4 (crossed below 5) → 2 → 1: one alert.
    assert_eq!(alerts(app.pool.clone()).await, 1);
    // Back above the threshold (a release), then below again: a second alert.
    credits::release(&app.pool, holds[0], SYSTEM, now)
        .await
        .unwrap();
    assert_eq!(alerts(app.pool.clone()).await, 1);
    credits::hold(&app.pool, hold_input(org, 19, "video", "low-again"), now)
        .await
        .unwrap();
    assert_eq!(alerts(app.pool.clone()).await, 2);
    // The job sends it to the owner through the outbox.
    let mut conn = app.pool.acquire().await.unwrap();
    credits::send_alerts(&mut conn, "http://portail.test", now)
        .await
        .unwrap();
    let subjects: Vec<String> = sqlx::query_scalar("SELECT subject FROM outbox ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects
            .iter()
            .all(|s| s.starts_with("Solde de crédits bas pour Paroisse")),
        "{subjects:?}"
    );
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn a_staff_adjustment_never_takes_the_balance_below_zero() {
    let app = spawn_app().await;
    let org = organisation_with(&app, "eglise", 30).await;
    let now = app.clock.now();
    let adjust = |credits: i64, key: &'static str| Adjustment {
        organisation: org,
        credits: Credits(credits),
        reason: "geste commercial",
        last_day: None,
        key,
        actor: "cli",
    };
    assert_eq!(
        credits::adjust(&app.pool, adjust(12, "a"), now)
            .await
            .unwrap(),
        Credits(42)
    );
    assert_eq!(
        credits::adjust(&app.pool, adjust(12, "a"), now)
            .await
            .unwrap(),
        Credits(42),
        "same key"
    );
    assert_eq!(
        credits::adjust(&app.pool, adjust(-40, "b"), now)
            .await
            .unwrap(),
        Credits(2)
    );
    let refused = credits::adjust(&app.pool, adjust(-3, "c"), now).await;
    assert!(
        matches!(
            refused,
            Err(credits::CreditError::NotEnough {
                available: Credits(2)
            })
        ),
        "{refused:?}"
    );
    assert_ledger_clean(&app.pool).await;
}

/// The steps of a random interleaving.
#[derive(Debug, Clone)]
enum Step {
    Hold {
        amount: i64,
        music: bool,
    },
    Capture(usize),
    Release(usize),
    /// Moves the clock by minutes, then runs the expiry and the hold timeouts.
    Wait(i64),
    Grant {
        amount: i64,
        days: i64,
        music: bool,
    },
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (1..8i64, any::<bool>()).prop_map(|(amount, music)| Step::Hold { amount, music }),
        2 => (0..8usize).prop_map(Step::Capture),
        2 => (0..8usize).prop_map(Step::Release),
        1 => prop_oneof![1..40i64, 1000..20_000i64].prop_map(Step::Wait),
        1 => (1..20i64, 0..10i64, any::<bool>()).prop_map(|(amount, days, music)| Step::Grant { amount, days, music }),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_random_interleavings_keep_the_ledger_equal_to_the_balance() {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let app = spawn_app().await;
    let mut runner = TestRunner::new_with_rng(
        Config::with_cases(1000),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strategy = proptest::collection::vec(step(), 1..12);
    for case in 0..1000 {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        run_interleaving(&app, case, &steps).await;
    }
    assert_ledger_clean(&app.pool).await;
}

async fn run_interleaving(app: &TestApp, case: usize, steps: &[Step]) {
    let org = organisation_with(app, "eglise", 30).await;
    let mut now = app.clock.now();
    let mut holds: Vec<(Uuid, Option<&'static str>)> = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Hold { amount, music } => {
                let key = format!("{case}-{i}");
                let kind = if *music { "musique" } else { "video" };
                if let HoldOutcome::Placed { hold, .. } =
                    credits::hold(&app.pool, hold_input(org, *amount, kind, &key), now)
                        .await
                        .unwrap()
                {
                    holds.push((hold.id, None));
                }
            }
            Step::Capture(n) | Step::Release(n) => {
                if holds.is_empty() {
                    continue;
                }
                let at = n % holds.len();
                let (id, resolved) = holds[at];
                let outcome = if matches!(step, Step::Capture(_)) {
                    credits::capture(&app.pool, id, SYSTEM, now).await.unwrap()
                } else {
                    credits::release(&app.pool, id, SYSTEM, now).await.unwrap()
                };
                // Resolved at most once: a second resolution changes nothing.
                if let Some(first) = resolved {
                    assert!(
                        !outcome.changed,
                        "case {case}: {id} resolved twice ({first})"
                    );
                } else if outcome.changed {
                    holds[at].1 = Some(outcome.state.as_str());
                }
            }
            Step::Wait(minutes) => {
                now += Duration::minutes(*minutes);
                let mut conn = app.pool.acquire().await.unwrap();
                credits::expire_due(&mut conn, now).await.unwrap();
                drop(conn);
                nanoclip::services::generations::expire_overdue(&app.pool, now)
                    .await
                    .unwrap();
            }
            Step::Grant {
                amount,
                days,
                music,
            } => {
                let mut conn = app.pool.acquire().await.unwrap();
                credits::grant_in(
                    &mut conn,
                    org,
                    nanoclip::domain::ledger::BucketSource::Purchase,
                    music.then_some("musique"),
                    Credits(*amount),
                    now + Duration::days(*days) + Duration::minutes(1),
                    &format!("order:{case}-{i}"),
                    SYSTEM,
                    now,
                )
                .await
                .unwrap();
            }
        }
        // After every step: the ledger's sum is the balance, and both are positive.
        let (ledger, account, buckets): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT coalesce(sum(delta), 0)::bigint FROM credit_ledger WHERE organisation_id = $1),
                    (SELECT coalesce(sum(remaining), 0)::bigint FROM credit_buckets WHERE organisation_id = $1),
                    (SELECT coalesce(sum(remaining), 0)::bigint FROM credit_buckets WHERE organisation_id = $1)",
        )
        .bind(org)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(
            (ledger, ledger),
            (account, buckets),
            "case {case} step {i}: {step:?}"
        );
        assert!(ledger >= 0);
    }
}

/// Run by the SIGKILL test in a process of its own, killed in the middle: holds (dated 30
/// minutes back, so that they are overdue at once), captures and releases from 20 tasks, forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_portal_killed_mid_storm_leaves_a_clean_ledger_and_no_hold_past_its_timeout"]
async fn sigkill_victim_process() {
    let Ok(url) = std::env::var("NANOCLIP_VICTIM_DATABASE_URL") else {
        return;
    };
    let org: Uuid = std::env::var("NANOCLIP_VICTIM_ORGANISATION")
        .unwrap()
        .parse()
        .unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(20)
        .connect(&url)
        .await
        .unwrap();
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for t in 0..20 {
        let (pool, done) = (pool.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let then = OffsetDateTime::now_utc() - Duration::minutes(30) - Duration::seconds(1);
                let key = format!("victim-{t}-{i}");
                if let Ok(HoldOutcome::Placed { hold, .. }) =
                    credits::hold(&pool, hold_input(org, 1, "video", &key), then).await
                {
                    let now = OffsetDateTime::now_utc();
                    match i % 3 {
                        0 => drop(credits::capture(&pool, hold.id, SYSTEM, now).await),
                        1 => drop(credits::release(&pool, hold.id, SYSTEM, now).await),
                        _ => {} // left to the timeout
                    }
                }
                if done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 100 {
                    println!("READY");
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_killed_mid_storm_leaves_a_clean_ledger_and_no_hold_past_its_timeout() {
    use tokio::io::AsyncBufReadExt;
    let app = spawn_app().await;
    let org = organisation_with(&app, "reseau", 100_000).await;
    let mut victim = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "credits::sigkill_victim_process",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("NANOCLIP_VICTIM_DATABASE_URL", app.database_url())
        .env("NANOCLIP_VICTIM_ORGANISATION", org.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(victim.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("READY") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(ready, Ok(true), "the victim ran");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    victim.start_kill().unwrap(); // SIGKILL
    let status = victim.wait().await.unwrap();
    assert!(!status.success());
    // A COMMIT the victim sent just before dying still completes on the server: let it land.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM credit_holds_open")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(held > 0, "holds were left running by the killed process");
    // The restart: the job runner's timeout release, then check-ledger, as the binary.
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nanoclip"))
            .args(args)
            .env("DATABASE_URL", app.database_url())
            .env("RUST_LOG", "error")
            .output()
            .unwrap()
    };
    let released = run(&["run-job", "release-overdue-holds"]);
    assert!(
        released.status.success(),
        "{}",
        String::from_utf8_lossy(&released.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&released.stdout).trim(),
        format!("release-overdue-holds: {held} rows")
    );
    let check = run(&["check-ledger"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert_eq!(String::from_utf8_lossy(&check.stdout).trim(), "0 écart");
    let overdue: i64 =
        sqlx::query_scalar("SELECT count(*) FROM credit_holds_open WHERE expires_at <= now()")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(overdue, 0);
    assert_ledger_clean(&app.pool).await;
}

#[tokio::test]
async fn ledger_transactions_commit_synchronously() {
    let app = spawn_app().await;
    let mut tx = app.pool.begin().await.unwrap();
    let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(setting, "on");
}

#[tokio::test]
async fn credits_about_to_be_lost_are_announced_14_then_3_days_before() {
    let app = spawn_app().await;
    app.clock.set(datetime!(2026-12-01 09:00 UTC));
    let owner = app.owner("eglise").await;
    let mut notices = Vec::new();
    for at in [
        datetime!(2026-12-10 09:00 UTC), // 22 days before: nothing
        datetime!(2026-12-18 09:00 UTC), // 13 days: the first notice
        datetime!(2026-12-19 09:00 UTC), // the same again: nothing new
        datetime!(2026-12-29 09:00 UTC), // 2 days: the second notice
    ] {
        let mut conn = app.pool.acquire().await.unwrap();
        nanoclip::db::credits::note_expiry_notices(&mut conn, at)
            .await
            .unwrap();
        credits::send_alerts(&mut conn, "http://portail.test", at)
            .await
            .unwrap();
        let subjects: Vec<String> =
            sqlx::query_scalar("SELECT subject FROM outbox WHERE to_address = $1 ORDER BY id")
                .bind(&owner.email)
                .fetch_all(&app.pool)
                .await
                .unwrap();
        notices.push(subjects.len());
        if let Some(last) = subjects.last() {
            // 30 allotted, 10 carry over: 20 will be lost.
            assert_eq!(last, "20 crédits expirent le 31\u{a0}décembre 2026");
        }
    }
    assert_eq!(notices, vec![0, 1, 1, 2]);
    let body: String = sqlx::query_scalar("SELECT body_text FROM outbox ORDER BY id DESC LIMIT 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(body.contains("dans 3 jours"), "{body}");
    assert!(body.contains("http://portail.test/tableau-de-bord"));
}

/// A render launched ten minutes before the period ends holds 3 credits of the period's
/// allotment; the renewal closes the period (carrying what is left, under the cap) and the
/// render fails five minutes later. Its credits must carry over as if it had never been
/// launched (8 left, Église's cap is 10), not go back to the closed allotment and expire there:
/// « only generations actually launched and not blocked consume credits ».
#[tokio::test]
async fn a_render_failing_just_after_the_renewal_gives_back_what_the_rollover_would_have_kept() {
    let app = spawn_app().await;
    // 22 credits spent: 8 left of the allotment, under the cap of 10.
    let org = eglise_having_spent(&app, 22).await;
    // A render of 3 fails after the renewal: nothing was consumed.
    let after = late_render_failing_after_the_renewal(&app, org, 3).await;
    assert_eq!(
        credits::available(&app.pool, org, after).await.unwrap(),
        Credits(8 + 30),
        "the 8 credits left (under the cap) carry over and the new allotment is granted, failed render or not"
    );
    assert_ledger_clean(&app.pool).await;
}

/// An upgrade grants its extra credits as a second allotment ending with the period (30 here).
/// A render launched ten minutes before the period ends holds 40 credits: the 20 left of the
/// first allotment, then 20 of the upgrade's. The renewal carries what is left (10) under
/// Réseau's cap of 50; the render fails five minutes later and its 40 credits come back, 20 into
/// each closed allotment. Never launched, 50 would have been left and all 50 carried: the late
/// release must carry its 40, from both allotments (one carry per hold: granting each
/// allotment's share under the hold's one key lost the second share).
#[tokio::test]
async fn a_render_failing_after_the_renewal_gives_back_what_it_held_in_two_allotments() {
    let app = spawn_app().await;
    // 10 credits spent: 20 left of Église's allotment.
    let org = eglise_having_spent(&app, 10).await;
    let now = app.clock.now();
    // The upgrade to Réseau, as `billing` applies it: the plan now, and its extra credits (30
    // here) as an allotment ending with the period.
    let mut conn = app.pool.acquire().await.unwrap();
    db::credits::switch_plan(&mut conn, org, "reseau")
        .await
        .unwrap();
    let sub = db::credits::subscription(&mut conn, org)
        .await
        .unwrap()
        .unwrap();
    credits::grant_in(
        &mut conn,
        org,
        nanoclip::domain::ledger::BucketSource::Allotment,
        None,
        Credits(30),
        sub.period_end,
        "order:upgrade-test",
        Actor {
            actor: "system",
            reason: "upgrade",
        },
        now,
    )
    .await
    .unwrap();
    drop(conn);
    // A render holding 40 (the 20 left of the first allotment, then 20 of the upgrade's) fails
    // after the renewal: 50 were left, never launched; all 50 carry over (Réseau's cap).
    let after = late_render_failing_after_the_renewal(&app, org, 40).await;
    assert_eq!(
        credits::available(&app.pool, org, after).await.unwrap(),
        Credits(50 + 150),
        "the 50 left carry over (Réseau's cap), failed render or not, then Réseau's allotment of 150"
    );
    assert_ledger_clean(&app.pool).await;
}

/// The server runs `expire-credits` and `renew` every minute each, in no set order (each
/// instance starts them at its own offsets). When `expire-credits` comes first after a period's
/// end, it must leave the allotment to the renewal, which carries up to the rollover cap of it
/// first: 8 credits left under Église's cap of 10 carry over whichever job runs first.
#[tokio::test]
async fn the_credits_expiry_job_running_before_the_renewal_keeps_the_rollover() {
    let app = spawn_app().await;
    // 22 credits spent: 8 left of the allotment, under the cap of 10.
    let org = eglise_having_spent(&app, 22).await;
    // The period ends at midnight (Paris) on 28 February; `expire-credits` runs 20 seconds
    // later, `renew` 40 seconds later.
    let end = datetime!(2026-02-27 23:00 UTC);
    let mut conn = app.pool.acquire().await.unwrap();
    credits::expire_due(&mut conn, end + Duration::seconds(20))
        .await
        .unwrap();
    drop(conn);
    let renewed = end + Duration::seconds(40);
    assert_eq!(app.renew_due(renewed).await.unwrap(), 1);
    assert_eq!(
        credits::available(&app.pool, org, renewed).await.unwrap(),
        Credits(8 + 30),
        "the 8 credits left (under the cap) carry over and the new allotment is granted"
    );
    assert_ledger_clean(&app.pool).await;
}

/// The same through a render: launched at 23:50 on the period's last day, it fails at 00:00:30,
/// before `renew` has run. Its credits go back to the allotment, whose expiry has come; the
/// release must not expire that allotment (the 8 left and its own 3) before its renewal carries
/// up to the cap of it.
#[tokio::test]
async fn a_render_failing_after_the_period_s_end_but_before_the_renewal_keeps_the_rollover() {
    let app = spawn_app().await;
    // 19 credits spent: 11 left, 8 once the render below holds its 3.
    let org = eglise_having_spent(&app, 19).await;
    let end = datetime!(2026-02-27 23:00 UTC);
    let late = placed(&app, org, 3, "late", end - Duration::minutes(10)).await;
    credits::release(&app.pool, late.id, SYSTEM, end + Duration::seconds(30))
        .await
        .unwrap();
    let renewed = end + Duration::seconds(40);
    assert_eq!(app.renew_due(renewed).await.unwrap(), 1);
    assert_eq!(
        credits::available(&app.pool, org, renewed).await.unwrap(),
        Credits(10 + 30),
        "11 left, never launched: the cap of 10 carries over, then the new allotment"
    );
    assert_ledger_clean(&app.pool).await;
}

/// `generations` and `idempotency_keys` keep no foreign keys (migration 29: every launch checked
/// and locked its organisation and its type through them). What they did is kept: deleting an
/// organisation deletes its generations and keys; and `check-ledger` reports a generation or a
/// key whose organisation or type does not exist, which nothing refuses any more.
#[tokio::test]
async fn generations_and_keys_without_foreign_keys_follow_their_organisation_and_orphans_are_reported()
 {
    let app = spawn_app().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let org = db::accounts::create_organisation(&mut conn, "Paroisse à fermer", "eglise")
        .await
        .unwrap();
    let refused = Uuid::new_v4();
    let stranger = Uuid::new_v4();
    for (id, organisation, creation_type) in [
        (refused, org, "image"),
        (Uuid::new_v4(), stranger, "image"),
        (Uuid::new_v4(), org, "hologramme"),
    ] {
        sqlx::query(
            "INSERT INTO generations (id, organisation_id, creation_type, request, status, refusal_rule, refusal, via, launched_by, created_at, finished_at)
             VALUES ($1, $2, $3, 'type=image', 'refused', 'daily', '{}', 'api', 'test', now(), now())",
        )
        .bind(id)
        .bind(organisation)
        .bind(creation_type)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    for organisation in [org, stranger] {
        sqlx::query(
            "INSERT INTO idempotency_keys (organisation_id, key, fingerprint, status, body, created_at)
             VALUES ($1, 'clé', 'fp', 201, '{}', now())",
        )
        .bind(organisation)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
    let mut found = differences_found(&app.pool).await;
    found.sort();
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(
        found
            .iter()
            .all(|w| w.ends_with("(organisation or type unknown)")
                || w == "Idempotency-Key clé (organisation unknown)"),
        "{found:#?}"
    );

    sqlx::query(
        "DELETE FROM generations WHERE organisation_id = $1 OR creation_type = 'hologramme'",
    )
    .bind(stranger)
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("DELETE FROM idempotency_keys WHERE organisation_id = $1")
        .bind(stranger)
        .execute(&mut *conn)
        .await
        .unwrap();
    sqlx::query("DELETE FROM organisations WHERE id = $1")
        .bind(org)
        .execute(&mut *conn)
        .await
        .unwrap();
    let left: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM generations WHERE organisation_id = $1),
                (SELECT count(*) FROM idempotency_keys WHERE organisation_id = $1)",
    )
    .bind(org)
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    assert_eq!(left, (0, 0));
    drop(conn);
    assert_ledger_clean(&app.pool).await;
}
