//! The durable store: queues and histories in an embedded database file, so that they
//! survive a restart (even `kill -9`) without any external server.
//!
//! The engine is [redb](https://docs.rs/redb): pure Rust, one file, ACID transactions whose
//! commit is an `fsync` (copy-on-write pages with checksums, so a torn write rolls back to
//! the last commit instead of corrupting the file), no background compaction threads, no C
//! dependency. A log-structured engine (fjall) would write faster under heavy churn, but
//! the broker's records are small and already group-committed, and redb's single file and
//! crash model are simpler to reason about and to ship inside a C library.
//!
//! One thread owns the database. The broker appends [`Record`]s (never blocking) to a
//! channel; the thread writes every record that waits in one transaction (group commit),
//! commits it durably, then advances the [`DurableSignal`] and tells the broker, which only
//! now delivers those messages and lets their RECEIPTs go. A failing commit is retried with
//! backoff; meanwhile new persisted messages are refused once the backlog is full.

pub mod codec;
pub mod config;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::broker::{
    DurableSignal, Journal, JournalStats, Message, Record, Restored, RestoredStream, Ticket,
};
pub use config::{FsyncPolicy, StoreConfig};

/// History streams: route → last offset and epoch.
const STREAMS: TableDefinition<&str, &[u8]> = TableDefinition::new("streams");
/// History entries: (route, offset) → encoded message.
const ENTRIES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("entries");
/// Queue messages not yet consumed: (route, message id) → encoded message.
const QUEUED: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("queued");

/// Name of the database file inside the data directory.
pub const FILE_NAME: &str = "wsbroker.redb";
/// Most records written in one transaction.
const MAX_BATCH: usize = 8192;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("data dir {path}: {message}")]
pub struct StoreError {
    /// The directory or file concerned.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

enum Item {
    Record(Ticket, Record),
    Stop,
}

/// State shared by the broker's side ([`Journal`]) and the writer thread.
struct Shared {
    tx: Sender<Item>,
    /// Appends take their ticket and send under this lock, so the channel holds them in
    /// ticket order whoever appends.
    next_ticket: Mutex<Ticket>,
    durable: Arc<DurableSignal>,
    backlog: AtomicUsize,
    max_backlog: usize,
    failing: AtomicBool,
    last_error: Mutex<String>,
    commits: AtomicU64,
    /// Tests: this many next commits fail as a full disk would.
    #[cfg(test)]
    fail_next: AtomicUsize,
}

impl Journal for Shared {
    fn append(&self, record: Record) -> Ticket {
        let mut next = self.next_ticket.lock();
        *next += 1;
        let ticket = *next;
        self.backlog.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(Item::Record(ticket, record)).is_err() {
            // The writer is gone (the server stopped): nothing will commit it.
            self.backlog.fetch_sub(1, Ordering::AcqRel);
        }
        ticket
    }

    fn durable(&self) -> &Arc<DurableSignal> {
        &self.durable
    }

    fn refusal(&self) -> Option<String> {
        let backlog = self.backlog.load(Ordering::Acquire);
        if self.failing.load(Ordering::Acquire) && backlog >= self.max_backlog {
            return Some(format!(
                "the message store is failing ({}); persisted messages are refused until it \
                 recovers",
                self.last_error.lock()
            ));
        }
        if backlog >= self.max_backlog.saturating_mul(2) {
            return Some(format!(
                "the message store is {backlog} records behind; try again later"
            ));
        }
        None
    }

    fn is_backed_up(&self) -> bool {
        self.backlog.load(Ordering::Acquire) >= self.max_backlog
    }

    fn stats(&self) -> JournalStats {
        JournalStats {
            backlog: self.backlog.load(Ordering::Relaxed) as u64,
            commits: self.commits.load(Ordering::Relaxed),
            records: self.durable.committed(),
            failing: self.failing.load(Ordering::Relaxed),
        }
    }
}

/// An open store: the journal for the broker and the writer thread.
pub struct Store {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Called by the writer after each commit with the last committed ticket.
pub type OnCommit = Box<dyn Fn(Ticket) + Send>;

impl Store {
    /// Opens (or creates) the store in `config.data_dir` and reads what it holds. A file that
    /// cannot be opened as a database is moved aside (`wsbroker.redb.corrupt-<time>`) and a
    /// new one started: its streams get new epochs, so resuming clients learn that they
    /// lost data. A file another process holds open is an error.
    pub fn open(config: &StoreConfig) -> Result<(Database, Restored), StoreError> {
        let dir = &config.data_dir;
        std::fs::create_dir_all(dir).map_err(|e| StoreError {
            path: dir.clone(),
            message: format!("cannot create it: {e}"),
        })?;
        let path = dir.join(FILE_NAME);
        let db = match Database::create(&path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError {
                    path,
                    message: "already open in another process (one server per data dir)".into(),
                });
            }
            Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))
                if e.kind() != std::io::ErrorKind::InvalidData =>
            {
                return Err(StoreError {
                    path,
                    message: format!("cannot open it: {e}"),
                });
            }
            Err(e) => {
                let aside = set_aside(&path)?;
                tracing::error!(
                    path = %path.display(),
                    moved_to = %aside.display(),
                    error = %e,
                    "message store is damaged: moved aside, starting a new one (history epochs change)"
                );
                Database::create(&path).map_err(|e| StoreError {
                    path: path.clone(),
                    message: format!("cannot create a new store: {e}"),
                })?
            }
        };
        let restored = read_all(&db).map_err(|message| StoreError {
            path: path.clone(),
            message,
        })?;
        Ok((db, restored))
    }

    /// Starts the writer thread on `db`; `on_commit` runs on it after each commit.
    pub fn start(
        db: Database,
        config: &StoreConfig,
        restored: &Restored,
        on_commit: OnCommit,
    ) -> Result<Store, StoreError> {
        let path = config.data_dir.join(FILE_NAME);
        let (tx, rx) = crossbeam_channel::unbounded();
        let shared = Arc::new(Shared {
            tx,
            next_ticket: Mutex::new(0),
            durable: Arc::new(DurableSignal::default()),
            backlog: AtomicUsize::new(0),
            max_backlog: config.max_backlog,
            failing: AtomicBool::new(false),
            last_error: Mutex::new(String::new()),
            commits: AtomicU64::new(0),
            #[cfg(test)]
            fail_next: AtomicUsize::new(0),
        });
        let first_kept = restored
            .streams
            .iter()
            .filter_map(|s| Some((s.route.clone(), s.entries.first()?.0)))
            .collect();
        let writer = Writer {
            db,
            rx,
            shared: shared.clone(),
            fsync: config.fsync,
            on_commit,
            first_kept,
        };
        let thread = std::thread::Builder::new()
            .name("wsbroker-store".into())
            .spawn(move || writer.run())
            .map_err(|e| StoreError {
                path: path.clone(),
                message: format!("cannot start the store thread: {e}"),
            })?;
        Ok(Store {
            shared,
            thread: Some(thread),
            path,
        })
    }

    /// The broker's side.
    pub fn journal(&self) -> Arc<dyn Journal> {
        self.shared.clone()
    }

    /// Commits what was appended before this call and stops the writer, waiting up to
    /// `grace` (a store that keeps failing is given up on, with an error logged).
    pub fn close(&mut self, grace: Duration) {
        let _ = self.shared.tx.send(Item::Stop);
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = Instant::now() + grace;
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            tracing::error!(
                path = %self.path.display(),
                records = self.shared.backlog.load(Ordering::Acquire),
                "message store did not finish writing within the grace period"
            );
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close(Duration::from_secs(5));
    }
}

/// Renames a damaged store file out of the way; returns where it went.
fn set_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let stamp = crate::broker::journal::unix_ms();
    let aside = path.with_extension(format!("redb.corrupt-{stamp}"));
    std::fs::rename(path, &aside).map_err(|e| StoreError {
        path: path.to_path_buf(),
        message: format!("damaged, and it cannot be moved aside: {e}"),
    })?;
    Ok(aside)
}

/// Reads every stream and queue. A damaged entry drops its whole stream (whose next
/// message then starts a new epoch) or, in a queue, that one message.
fn read_all(db: &Database) -> Result<Restored, String> {
    let fail = |e: &dyn std::fmt::Display| format!("cannot read it: {e}");
    // Tables exist from the first start on, so that reading never has to special-case them.
    let txn = db.begin_write().map_err(|e| fail(&e))?;
    txn.open_table(STREAMS).map_err(|e| fail(&e))?;
    txn.open_table(ENTRIES).map_err(|e| fail(&e))?;
    txn.open_table(QUEUED).map_err(|e| fail(&e))?;
    txn.commit().map_err(|e| fail(&e))?;

    let txn = db.begin_read().map_err(|e| fail(&e))?;
    let streams = txn.open_table(STREAMS).map_err(|e| fail(&e))?;
    let entries = txn.open_table(ENTRIES).map_err(|e| fail(&e))?;
    let queued = txn.open_table(QUEUED).map_err(|e| fail(&e))?;
    let mut restored = Restored::default();
    let mut max_id = 0;
    for row in streams.iter().map_err(|e| fail(&e))? {
        let (route, meta) = row.map_err(|e| fail(&e))?;
        let route = route.value().to_string();
        let Some((epoch, last)) = codec::decode_meta(meta.value()) else {
            tracing::error!(
                destination = route,
                "message store: damaged stream, dropped"
            );
            continue;
        };
        let mut kept = Vec::new();
        let mut damaged = false;
        for row in entries
            .range((route.as_str(), 0)..=(route.as_str(), u64::MAX))
            .map_err(|e| fail(&e))?
        {
            let (key, value) = row.map_err(|e| fail(&e))?;
            match codec::decode(value.value()) {
                Some((at_ms, message)) => {
                    max_id = max_id.max(message.id());
                    kept.push((key.value().1, at_ms, message));
                }
                None => damaged = true,
            }
        }
        if damaged {
            tracing::error!(
                destination = route,
                "message store: damaged history entry, the stream starts a new epoch"
            );
            continue;
        }
        restored.streams.push(RestoredStream {
            route,
            epoch,
            last,
            entries: kept,
        });
    }
    let mut queues: Vec<(String, Vec<Arc<Message>>)> = Vec::new();
    for row in queued.iter().map_err(|e| fail(&e))? {
        let (key, value) = row.map_err(|e| fail(&e))?;
        let (route, id) = key.value();
        let Some((_, message)) = codec::decode(value.value()) else {
            tracing::error!(
                destination = route,
                id,
                "message store: damaged queue message, dropped"
            );
            continue;
        };
        max_id = max_id.max(id);
        match queues.last_mut() {
            Some((name, messages)) if name == route => messages.push(message),
            _ => queues.push((route.to_string(), vec![message])),
        }
    }
    restored.queues = queues;
    restored.next_message_id = max_id + 1;
    Ok(restored)
}

struct Writer {
    db: Database,
    rx: Receiver<Item>,
    shared: Arc<Shared>,
    fsync: FsyncPolicy,
    on_commit: OnCommit,
    /// Per stream, the first offset the file still holds (retention trims below it).
    first_kept: HashMap<String, u64>,
}

impl Writer {
    fn run(mut self) {
        let mut batch: Vec<(Ticket, Record)> = Vec::new();
        let mut stopping = false;
        while !stopping {
            match self.rx.recv() {
                Ok(Item::Record(ticket, record)) => batch.push((ticket, record)),
                Ok(Item::Stop) | Err(_) => stopping = true,
            }
            if let (FsyncPolicy::Batched(window), false) = (self.fsync, stopping) {
                let deadline = Instant::now() + window;
                while batch.len() < MAX_BATCH {
                    match self.rx.recv_deadline(deadline) {
                        Ok(Item::Record(ticket, record)) => batch.push((ticket, record)),
                        Ok(Item::Stop) | Err(RecvTimeoutError::Disconnected) => {
                            stopping = true;
                            break;
                        }
                        Err(RecvTimeoutError::Timeout) => break,
                    }
                }
            }
            while batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(Item::Record(ticket, record)) => batch.push((ticket, record)),
                    Ok(Item::Stop) => stopping = true,
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit_with_retry(&batch, stopping);
                batch.clear();
            }
        }
    }

    /// Commits `batch`, retrying with backoff while the disk refuses (full, read-only…).
    /// When stopping, gives up after a few attempts.
    fn commit_with_retry(&mut self, batch: &[(Ticket, Record)], stopping: bool) {
        let mut backoff = Duration::from_millis(10);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.write(batch) {
                Ok(()) => break,
                Err(error) => {
                    if !self.shared.failing.swap(true, Ordering::AcqRel) || attempts == 1 {
                        tracing::error!(%error, records = batch.len(), "message store: commit failed, retrying");
                    }
                    *self.shared.last_error.lock() = error;
                    if stopping && attempts >= 5 {
                        tracing::error!(
                            records = batch.len(),
                            "message store: giving up at shutdown; these records are lost"
                        );
                        return;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
        if self.shared.failing.swap(false, Ordering::AcqRel) {
            tracing::info!("message store: commits succeed again");
        }
        let last = batch.last().map_or(0, |(ticket, _)| *ticket);
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
        self.shared.backlog.fetch_sub(batch.len(), Ordering::AcqRel);
        self.shared.durable.advance(last);
        (self.on_commit)(last);
    }

    fn write(&mut self, batch: &[(Ticket, Record)]) -> Result<(), String> {
        #[cfg(test)]
        if self
            .shared
            .fail_next
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err("No space left on device (injected)".into());
        }
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        let mut trimmed: Vec<(String, u64)> = Vec::new();
        {
            let mut streams = txn.open_table(STREAMS).map_err(|e| e.to_string())?;
            let mut entries = txn.open_table(ENTRIES).map_err(|e| e.to_string())?;
            let mut queued = txn.open_table(QUEUED).map_err(|e| e.to_string())?;
            let err = |e: redb::StorageError| e.to_string();
            for (_, record) in batch {
                match record {
                    Record::Append {
                        route,
                        epoch,
                        offset,
                        keep_from,
                        at_ms,
                        message,
                    } => {
                        let route: &str = route;
                        entries
                            .insert((route, *offset), codec::encode(*at_ms, message).as_slice())
                            .map_err(err)?;
                        streams
                            .insert(route, codec::encode_meta(epoch, *offset).as_slice())
                            .map_err(err)?;
                        let first = trimmed
                            .iter()
                            .rev()
                            .find(|(r, _)| r == route)
                            .map(|(_, f)| *f)
                            .or_else(|| self.first_kept.get(route).copied())
                            .unwrap_or(0);
                        if *keep_from > first {
                            entries
                                .retain_in((route, first)..(route, *keep_from), |_, _| false)
                                .map_err(err)?;
                            trimmed.push((route.to_string(), *keep_from));
                        }
                    }
                    Record::DropStream { route } => {
                        let route: &str = route;
                        streams.remove(route).map_err(err)?;
                        entries
                            .retain_in((route, 0)..=(route, u64::MAX), |_, _| false)
                            .map_err(err)?;
                        trimmed.push((route.to_string(), 0));
                    }
                    Record::Enqueue { route, message } => {
                        let route: &str = route;
                        queued
                            .insert((route, message.id()), codec::encode(0, message).as_slice())
                            .map_err(err)?;
                    }
                    Record::Dequeue { route, id } => {
                        let route: &str = route;
                        queued.remove((route, *id)).map_err(err)?;
                    }
                }
            }
        }
        txn.commit().map_err(|e| e.to_string())?;
        for (route, first) in trimmed {
            self.first_kept.insert(route, first);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn message(id: u64, body: &'static str) -> Arc<Message> {
        Arc::new(Message::new(
            id,
            "/queue/a",
            Vec::new(),
            Bytes::from_static(body.as_bytes()),
            None,
        ))
    }

    fn open(dir: &Path) -> (Store, Restored, Arc<Mutex<Vec<Ticket>>>) {
        let config = StoreConfig::new(dir);
        let (db, restored) = Store::open(&config).unwrap();
        let commits = Arc::new(Mutex::new(Vec::new()));
        let seen = commits.clone();
        let store = Store::start(
            db,
            &config,
            &restored,
            Box::new(move |t| seen.lock().push(t)),
        )
        .unwrap();
        (store, restored, commits)
    }

    #[test]
    fn records_survive_a_reopen_in_order_and_trimmed() {
        let dir = std::env::temp_dir().join(format!("wsb-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let (mut store, restored, commits) = open(&dir);
            assert!(restored.streams.is_empty() && restored.queues.is_empty());
            let journal = store.journal();
            for id in 1..=3 {
                journal.append(Record::Enqueue {
                    route: "/queue/a".into(),
                    message: message(id, "job"),
                });
            }
            journal.append(Record::Dequeue {
                route: "/queue/a".into(),
                id: 2,
            });
            for offset in 1..=4 {
                journal.append(Record::Append {
                    route: "/topic/t".into(),
                    epoch: "e1".into(),
                    offset,
                    keep_from: offset.saturating_sub(1).max(1),
                    at_ms: 1000 + offset,
                    message: message(10 + offset, "entry"),
                });
            }
            let last = journal.append(Record::Append {
                route: "/topic/gone".into(),
                epoch: "e2".into(),
                offset: 1,
                keep_from: 1,
                at_ms: 5,
                message: message(20, "x"),
            });
            journal.append(Record::DropStream {
                route: "/topic/gone".into(),
            });
            store.close(Duration::from_secs(5));
            assert!(journal.durable().is_durable(last + 1));
            assert_eq!(commits.lock().last().copied(), Some(last + 1));
        }
        let (store, restored, _) = open(&dir);
        assert_eq!(restored.queues.len(), 1);
        let (route, messages) = &restored.queues[0];
        assert_eq!(route, "/queue/a");
        let ids: Vec<u64> = messages.iter().map(|m| m.id()).collect();
        assert_eq!(ids, [1, 3]);
        assert_eq!(restored.streams.len(), 1);
        let stream = &restored.streams[0];
        assert_eq!(
            (stream.route.as_str(), stream.epoch.as_str(), stream.last),
            ("/topic/t", "e1", 4)
        );
        let offsets: Vec<(u64, u64)> = stream.entries.iter().map(|(o, at, _)| (*o, *at)).collect();
        assert_eq!(offsets, [(3, 1003), (4, 1004)]);
        assert_eq!(restored.next_message_id, 15);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn failing_commits_are_retried_and_refuse_new_messages_once_the_backlog_is_full() {
        let dir = std::env::temp_dir().join(format!("wsb-store-fail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = StoreConfig::new(&dir);
        config.max_backlog = 2;
        let (db, restored) = Store::open(&config).unwrap();
        let store = Store::start(db, &config, &restored, Box::new(|_| {})).unwrap();
        store.shared.fail_next.store(usize::MAX, Ordering::Release);
        let journal = store.journal();
        let enqueue = |id| {
            journal.append(Record::Enqueue {
                route: "/queue/a".into(),
                message: message(id, "m"),
            })
        };
        enqueue(1);
        let last = enqueue(2);
        let wait = |what: &str, done: &dyn Fn() -> bool| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !done() {
                assert!(Instant::now() < deadline, "{what}");
                std::thread::sleep(Duration::from_millis(2));
            }
        };
        wait("the store reports failing", &|| journal.stats().failing);
        let refusal = journal
            .refusal()
            .expect("refused while failing with a full backlog");
        assert!(refusal.contains("No space left on device"), "{refusal}");
        assert!(journal.is_backed_up());
        assert!(!journal.durable().is_durable(last), "nothing committed");
        // The disk has room again: the retry commits everything, in order.
        store.shared.fail_next.store(0, Ordering::Release);
        wait("the retry commits", &|| journal.durable().is_durable(last));
        assert!(journal.refusal().is_none());
        assert!(!journal.stats().failing);
        drop(store);
        let (reopened, restored) = Store::open(&config).unwrap();
        let ids: Vec<u64> = restored.queues[0].1.iter().map(|m| m.id()).collect();
        assert_eq!(ids, [1, 2]);
        drop(reopened);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_file_is_moved_aside_and_a_held_one_refused() {
        let dir = std::env::temp_dir().join(format!("wsb-store-bad-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(FILE_NAME), vec![0x5a; 10_000]).unwrap();
        let config = StoreConfig::new(&dir);
        let (db, restored) = Store::open(&config).unwrap();
        assert!(restored.streams.is_empty());
        let aside = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains("corrupt"))
            .count();
        assert_eq!(aside, 1);
        let again = Store::open(&config).unwrap_err();
        assert!(again.message.contains("already open"), "{again}");
        drop(db);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
