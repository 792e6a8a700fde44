//! What signed-in pages read on every request (the session, its user, an organisation's
//! dashboard), kept in each instance's memory and exact across instances.
//!
//! A change is never waited for by a clock: whoever writes says so once the write is committed
//! (`Caches::touch`, `broadcast_reset`). The instance that wrote forgets the entries at once,
//! before its answer leaves (read-your-writes); the others hear it through PostgreSQL's
//! `NOTIFY`, sent after the commit by one task per instance in batches, so that no ledger
//! transaction takes the lock a `NOTIFY` inside it would serialise every commit on (it halved
//! pgbench's TPC-B here).
//!
//! The rules that keep an entry exact:
//! - **A ticket before the read.** `ticket()` records the change counter before the database is
//!   read; `put` keeps the entry only if none of the keys it depends on was touched since
//!   (checked again at each `get`). A key known only after the read (the user's organisation)
//!   is checked against the same counter.
//! - **Only while listening.** Entries are read and kept only while this instance's `LISTEN`
//!   connection is up. When it drops or reconnects, every entry is forgotten: notifications may
//!   have been missed.
//! - **Time.** An entry also ends at the moment its content would change by itself (a Paris
//!   midnight, a bucket's expiry), and after `MAX_AGE` in any case: a write that no code path
//!   announced (an operator's SQL) is seen within it.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db;

/// The channel every instance listens on.
pub const CHANNEL: &str = "nanoclip_cache";

/// The longest an entry is kept, whatever was announced.
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// Past this many entries or touched keys, everything is forgotten (a bound on memory).
const CAPACITY: usize = 50_000;

/// How long the sender gathers touches before one `NOTIFY`.
const BATCH: Duration = Duration::from_millis(5);

/// A `NOTIFY` payload stays under PostgreSQL's 8,000 bytes.
const PAYLOAD_LIMIT: usize = 7_000;

/// What a change is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// The organisation's credits, plan, subscription, limits, members.
    Organisation(Uuid),
    /// A user's row (role, organisation, session epoch).
    User(Uuid),
    /// A session, by the SHA-256 of its cookie's key (hex).
    Session(String),
    /// Who may act for the organisation: its API keys and its plan (touched by its members'
    /// writes, not by its launches).
    Access(Uuid),
}

impl Key {
    fn encode(&self) -> String {
        match self {
            Key::Organisation(id) => format!("o{}", id.simple()),
            Key::User(id) => format!("u{}", id.simple()),
            Key::Session(hash) => format!("s{hash}"),
            Key::Access(id) => format!("a{}", id.simple()),
        }
    }

    fn decode(item: &str) -> Option<Key> {
        let (kind, rest) = item.split_at_checked(1)?;
        match kind {
            "o" => Uuid::parse_str(rest).ok().map(Key::Organisation),
            "u" => Uuid::parse_str(rest).ok().map(Key::User),
            "a" => Uuid::parse_str(rest).ok().map(Key::Access),
            "s" if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(Key::Session(rest.to_owned()))
            }
            _ => None,
        }
    }
}

/// An entry's place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Slot {
    Session(String),
    User(Uuid),
    Dashboard(Uuid),
    /// An API key, by the SHA-256 of its secret (hex).
    ApiKey(String),
}

/// The state of the caches before a read: an entry made from that read is kept only if none of
/// its keys is touched after.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    epoch: u64,
    counter: u64,
}

struct Entry {
    value: Arc<dyn Any + Send + Sync>,
    ticket: Ticket,
    keys: Vec<Key>,
    kept_at: Instant,
    /// The application's clock when it was read (tests move the clock, both ways).
    read_at: OffsetDateTime,
    /// The application's clock at which it ends by itself.
    until: Option<OffsetDateTime>,
}

#[derive(Default)]
struct Inner {
    /// Bumped when everything is forgotten: older tickets are worthless.
    epoch: u64,
    /// Bumped at each touch.
    counter: u64,
    /// Each key's last touch (the counter's value then).
    touched: HashMap<Key, u64>,
    entries: HashMap<Slot, Entry>,
}

impl Inner {
    fn holds(&self, ticket: Ticket, keys: &[Key]) -> bool {
        ticket.epoch == self.epoch
            && keys
                .iter()
                .all(|key| self.touched.get(key).is_none_or(|at| *at <= ticket.counter))
    }

    fn forget_all(&mut self) {
        self.epoch += 1;
        self.touched.clear();
        self.entries.clear();
    }

    fn touch(&mut self, keys: &[Key]) {
        if self.touched.len() + keys.len() > CAPACITY {
            self.forget_all();
            return;
        }
        for key in keys {
            self.counter += 1;
            self.touched.insert(key.clone(), self.counter);
        }
    }
}

#[derive(Default)]
struct Outbox {
    keys: HashSet<Key>,
    reset: bool,
}

/// One instance's caches, and its part in keeping every instance's exact.
pub struct Caches {
    enabled: bool,
    instance: Uuid,
    /// The `LISTEN` connection is up: entries may be read and kept.
    listening: AtomicBool,
    /// How many times this instance found its `LISTEN` connection lost (and forgot everything).
    losses: AtomicU64,
    inner: Mutex<Inner>,
    outbox: Mutex<Outbox>,
    wake: tokio::sync::Notify,
}

impl Caches {
    /// `enabled: false` (`NANOCLIP_READ_CACHE=off`): nothing is ever kept.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            instance: Uuid::new_v4(),
            listening: AtomicBool::new(false),
            losses: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
            outbox: Mutex::new(Outbox::default()),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Whether this instance hears the others' changes (and so keeps entries).
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// How many times the `LISTEN` connection was found lost so far. Between a loss and the
    /// moment this instance notices it, what it keeps may have missed a change: a test of an
    /// outage waits for this count to move before it expects a fresh page.
    pub fn losses(&self) -> u64 {
        self.losses.load(Ordering::Acquire)
    }

    fn usable(&self) -> bool {
        self.enabled && self.listening.load(Ordering::Acquire)
    }

    /// Taken before reading what will be kept; `None` when nothing may be kept now.
    pub fn ticket(&self) -> Option<Ticket> {
        if !self.usable() {
            return None;
        }
        let inner = self.inner.lock().ok()?;
        Some(Ticket {
            epoch: inner.epoch,
            counter: inner.counter,
        })
    }

    /// The entry at `slot`, if it is still exact at `now` (the application's clock).
    pub fn get<V: Any + Send + Sync>(&self, slot: &Slot, now: OffsetDateTime) -> Option<Arc<V>> {
        if !self.usable() {
            return None;
        }
        let mut inner = self.inner.lock().ok()?;
        let entry = inner.entries.get(slot)?;
        let fresh = inner.holds(entry.ticket, &entry.keys)
            && entry.kept_at.elapsed() < MAX_AGE
            && now >= entry.read_at
            && entry.until.is_none_or(|until| now < until);
        let value = entry.value.clone();
        if !fresh {
            inner.entries.remove(slot);
            return None;
        }
        value.downcast::<V>().ok()
    }

    /// Keeps `value` at `slot`, read at `now` after `ticket` was taken, unless one of `keys` was
    /// touched since. `until`: when it ends by itself.
    pub fn put<V: Any + Send + Sync>(
        &self,
        slot: Slot,
        ticket: Ticket,
        keys: Vec<Key>,
        value: Arc<V>,
        now: OffsetDateTime,
        until: Option<OffsetDateTime>,
    ) {
        if !self.usable() {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if !inner.holds(ticket, &keys) {
            return;
        }
        if inner.entries.len() >= CAPACITY {
            inner.forget_all();
            return;
        }
        inner.entries.insert(
            slot,
            Entry {
                value,
                ticket,
                keys,
                kept_at: Instant::now(),
                read_at: now,
                until,
            },
        );
    }

    /// After a committed write: what depends on `keys` is forgotten here at once, and on the
    /// other instances when they hear of it.
    pub fn touch(&self, keys: &[Key]) {
        if keys.is_empty() {
            return;
        }
        self.touch_here(keys);
        if let Ok(mut outbox) = self.outbox.lock() {
            outbox.keys.extend(keys.iter().cloned());
        }
        self.wake.notify_one();
    }

    /// After a committed write whose extent is not known: everything, everywhere.
    pub fn reset(&self) {
        self.forget_here();
        if let Ok(mut outbox) = self.outbox.lock() {
            outbox.reset = true;
            outbox.keys.clear();
        }
        self.wake.notify_one();
    }

    fn touch_here(&self, keys: &[Key]) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.touch(keys);
        }
    }

    fn forget_here(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.forget_all();
        }
    }

    /// A notification heard on `CHANNEL`: `<instance> <item> <item>…`, an item being `*`
    /// (everything) or a key. This instance's own were applied when touched.
    fn hear(&self, payload: &str) {
        let mut items = payload.split(' ');
        let from = items.next().unwrap_or_default();
        if from == self.instance.simple().to_string() {
            return;
        }
        let mut keys = Vec::new();
        for item in items {
            if item == "*" {
                self.forget_here();
                return;
            }
            match Key::decode(item) {
                Some(key) => keys.push(key),
                // Not understood (another version's format): everything, to stay exact.
                None => {
                    self.forget_here();
                    return;
                }
            }
        }
        self.touch_here(&keys);
    }

    /// Starts the listener and the sender of this instance (a connection of their own for the
    /// listener; the sender borrows one of `pool`'s for each batch).
    pub fn start(self: &Arc<Self>, pool: PgPool, options: PgConnectOptions) {
        if !self.enabled {
            return;
        }
        tokio::spawn(self.clone().listen_forever(pool.clone(), options));
        tokio::spawn(self.clone().send_forever(pool));
    }

    async fn listen_forever(self: Arc<Self>, pool: PgPool, options: PgConnectOptions) {
        // Its own pool of one: the requests' pool keeps all its connections.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .connect_lazy_with(options);
        loop {
            if pool.is_closed() {
                return;
            }
            match self.listen_once(&own).await {
                Ok(()) => {}
                Err(error) => {
                    tracing::warn!("read cache: listening for changes failed: {error}");
                }
            }
            self.listening.store(false, Ordering::Release);
            self.forget_here();
            self.losses.fetch_add(1, Ordering::AcqRel);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn listen_once(&self, own: &PgPool) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(own).await?;
        listener.ignore_pool_close_event(true);
        listener.listen(CHANNEL).await?;
        // Listening from here: what was kept before may have missed a change.
        self.forget_here();
        self.listening.store(true, Ordering::Release);
        loop {
            match listener.try_recv().await? {
                Some(notification) => self.hear(notification.payload()),
                // The connection was lost (made again at the next call): notifications were missed.
                None => {
                    self.forget_here();
                    self.losses.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
    }

    async fn send_forever(self: Arc<Self>, pool: PgPool) {
        loop {
            self.wake.notified().await;
            tokio::time::sleep(BATCH).await;
            let Ok(mut outbox) = self.outbox.lock().map(|mut o| std::mem::take(&mut *o)) else {
                continue;
            };
            let payloads = self.payloads(&mut outbox);
            for payload in payloads {
                if let Err(error) = db::changes::notify(&pool, CHANNEL, &payload).await {
                    if pool.is_closed() {
                        return;
                    }
                    // Not lost: everything is announced at the next try, a second later.
                    tracing::warn!("read cache: announcing changes failed: {error}");
                    if let Ok(mut outbox) = self.outbox.lock() {
                        outbox.reset = true;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    self.wake.notify_one();
                    break;
                }
            }
            if pool.is_closed() {
                return;
            }
        }
    }

    fn payloads(&self, outbox: &mut Outbox) -> Vec<String> {
        let head = self.instance.simple().to_string();
        if outbox.reset {
            return vec![format!("{head} *")];
        }
        let mut payloads = Vec::new();
        let mut current = head.clone();
        for key in outbox.keys.drain() {
            let item = key.encode();
            if current.len() + 1 + item.len() > PAYLOAD_LIMIT {
                payloads.push(std::mem::replace(&mut current, head.clone()));
            }
            current.push(' ');
            current.push_str(&item);
        }
        if current.len() > head.len() {
            payloads.push(current);
        }
        payloads
    }
}

/// For a process that serves no pages (an operator command, a job run by hand): tells every
/// instance to forget everything, after this process's writes are committed.
pub async fn broadcast_reset(pool: &PgPool) {
    if let Err(error) = db::changes::notify(pool, CHANNEL, "- *").await {
        tracing::warn!("read cache: announcing changes failed: {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening() -> Caches {
        let caches = Caches::new(true);
        caches.listening.store(true, Ordering::Release);
        caches
    }

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-12-05 10:00 UTC)
    }

    /// Keeps 7 at `slot`, read at `now()` under `ticket`.
    fn keep(
        caches: &Caches,
        ticket: Ticket,
        slot: Slot,
        keys: Vec<Key>,
        until: Option<OffsetDateTime>,
    ) {
        caches.put(slot, ticket, keys, Arc::new(7_u8), now(), until);
    }

    #[test]
    fn an_entry_read_before_a_touch_of_its_keys_is_not_kept() {
        let caches = listening();
        let org = Key::Organisation(Uuid::new_v4());
        let slot = Slot::Dashboard(Uuid::new_v4());
        let ticket = caches.ticket().expect("listening");
        caches.touch(std::slice::from_ref(&org));
        keep(&caches, ticket, slot.clone(), vec![org], None);
        assert!(caches.get::<u8>(&slot, now()).is_none());
    }

    #[test]
    fn a_touch_after_the_entry_is_kept_forgets_it_and_others_stay() {
        let caches = listening();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let ticket = caches.ticket().expect("listening");
        for id in [a, b] {
            let keys = vec![Key::Organisation(id)];
            keep(&caches, ticket, Slot::Dashboard(id), keys, None);
        }
        assert_eq!(
            caches.get::<u8>(&Slot::Dashboard(a), now()).as_deref(),
            Some(&7)
        );
        caches.touch(&[Key::Organisation(a)]);
        assert!(caches.get::<u8>(&Slot::Dashboard(a), now()).is_none());
        assert_eq!(
            caches.get::<u8>(&Slot::Dashboard(b), now()).as_deref(),
            Some(&7)
        );
    }

    #[test]
    fn an_entry_ends_at_its_moment_and_when_the_clock_goes_back() {
        let caches = listening();
        let id = Uuid::new_v4();
        let slot = Slot::Dashboard(id);
        let ticket = caches.ticket().expect("listening");
        let until = now() + time::Duration::minutes(5);
        let keys = vec![Key::Organisation(id)];
        keep(&caches, ticket, slot.clone(), keys, Some(until));
        assert!(
            caches
                .get::<u8>(&slot, until - time::Duration::SECOND)
                .is_some()
        );
        assert!(
            caches
                .get::<u8>(&slot, now() - time::Duration::SECOND)
                .is_none()
        );
        let ticket = caches.ticket().expect("listening");
        let keys = vec![Key::Organisation(id)];
        keep(&caches, ticket, slot.clone(), keys, Some(until));
        assert!(caches.get::<u8>(&slot, until).is_none());
    }

    #[test]
    fn nothing_is_kept_while_not_listening_and_a_reset_empties_everything() {
        let caches = Caches::new(true);
        assert!(caches.ticket().is_none());
        let caches = listening();
        let id = Uuid::new_v4();
        let ticket = caches.ticket().expect("listening");
        let keys = vec![Key::User(id)];
        keep(&caches, ticket, Slot::User(id), keys, None);
        caches.reset();
        assert!(caches.get::<u8>(&Slot::User(id), now()).is_none());
        // A ticket from before the reset keeps nothing.
        keep(&caches, ticket, Slot::User(id), vec![], None);
        assert!(caches.get::<u8>(&Slot::User(id), now()).is_none());
    }

    #[test]
    fn payloads_from_another_instance_are_heard_and_ours_are_not_applied_twice() {
        let here = listening();
        let there = listening();
        let (org, user) = (Uuid::new_v4(), Uuid::new_v4());
        let ticket = here.ticket().expect("listening");
        for slot in [Slot::Dashboard(org), Slot::User(user)] {
            let keys = vec![Key::Organisation(org), Key::User(user)];
            keep(&here, ticket, slot, keys, None);
        }
        let mut outbox = Outbox::default();
        outbox.keys.insert(Key::Organisation(org));
        let payloads = there.payloads(&mut outbox);
        assert_eq!(payloads.len(), 1);
        // Its own payload changes nothing here.
        let own = here.payloads(&mut Outbox {
            keys: HashSet::from([Key::Organisation(org)]),
            reset: false,
        });
        here.hear(&own[0]);
        assert!(here.get::<u8>(&Slot::Dashboard(org), now()).is_some());
        here.hear(&payloads[0]);
        assert!(here.get::<u8>(&Slot::Dashboard(org), now()).is_none());
        assert!(here.get::<u8>(&Slot::User(user), now()).is_none());
        // Unknown items forget everything; so does `*`.
        let ticket = here.ticket().expect("listening");
        keep(&here, ticket, Slot::User(user), vec![], None);
        here.hear("- x?");
        assert!(here.get::<u8>(&Slot::User(user), now()).is_none());
    }

    #[test]
    fn many_keys_are_split_under_the_payload_limit() {
        let caches = listening();
        let mut outbox = Outbox::default();
        for _ in 0..1_000 {
            outbox.keys.insert(Key::Session(
                hex::encode([7_u8; 32]) + &Uuid::new_v4().simple().to_string(),
            ));
        }
        let payloads = caches.payloads(&mut outbox);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= PAYLOAD_LIMIT));
        let items: usize = payloads.iter().map(|p| p.split(' ').count() - 1).sum();
        assert_eq!(items, 1_000);
    }
}
