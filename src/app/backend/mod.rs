//! The app's only way to the network and the disk: commands go in, events come back.
//!
//! The UI thread never waits on S3. It sends a [`Command`] through [`Backend::send`] and, once
//! per frame, drains [`Event`]s with [`Backend::poll`]; the worker runs on the tokio runtime and
//! asks for a repaint after each event it sends.
//!
//! - [`protocol`]: the commands and events, plain data.
//! - `worker`: what each command does (listing, uploads with their keep-both naming,
//!   downloads, deletes, links), on the runtime.
//! - `preview`: loading and decoding a file's preview.
//! - `runtime`: the runtime all of this runs on, whose threads yield to the window's.

mod preview;
pub mod protocol;
mod runtime;
mod worker;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};

use crate::store::StorePaths;

pub use crate::s3::numbered_key;
pub use protocol::{
    AfterUpload, Command, ConflictChoice, ConnectionTarget, CustomEndpoint, Event, LinkVia,
    PendingUploadInfo, PlannedUpload, PreviewContent, TransferId, TransferUpdate,
};
pub use runtime::io_runtime;
use worker::Worker;

/// Commands waiting for the worker. User actions are few, so this is never reached in use;
/// if it is (the worker busy for long), the UI keeps further commands in its own queue.
const COMMAND_CAPACITY: usize = 64;
/// Events waiting for the UI. Only state changes travel here (bytes moved go through
/// [`TransferProgress`]), and a worker task with an event for a full queue waits its turn.
const EVENT_CAPACITY: usize = 256;

/// The UI's handle on the worker.
pub struct Backend {
    commands: tokio::sync::mpsc::Sender<Command>,
    /// Commands the full channel did not take yet, sent in order before any newer one.
    waiting: RefCell<VecDeque<Command>>,
    events: RefCell<tokio::sync::mpsc::Receiver<Tagged>>,
    /// The number of the last Connect sent: answers about any other connection are old news.
    connection: Cell<u64>,
    ids: Ids,
    progress: ProgressTable,
    repaint: Arc<dyn Fn() + Send + Sync>,
    /// The most events found waiting at one poll (benchmarks report it).
    queue_peak: Cell<usize>,
}

/// Ids for transfers and requests, shared by the UI and the worker so they never collide.
#[derive(Clone, Default)]
struct Ids(Arc<AtomicU64>);

impl Ids {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// How far one transfer is: written by the worker as bytes move, read by the UI each frame.
/// Progress never travels as events, so a transfer costs the UI the same whatever the size of
/// its chunks.
#[derive(Debug, Default)]
pub struct TransferProgress {
    started: AtomicBool,
    total: AtomicU64,
    done: AtomicU64,
}

impl TransferProgress {
    /// Bytes to move, once the transfer has started (`None` while it waits for a slot).
    pub fn started(&self) -> Option<u64> {
        self.started
            .load(Ordering::Acquire)
            .then(|| self.total.load(Ordering::Relaxed))
    }

    /// Bytes moved so far (it can go down on a retry).
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.started.store(true, Ordering::Release);
    }

    fn set_done(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
    }
}

/// The counters of the transfers under way, by id: the UI registers one before it sends the
/// command, the worker's task picks it up and drops it when it ends. With them, the ids of the
/// transfers that started since the UI last looked: a frame reads the counters of running
/// transfers only, not of the thousands that may wait for a slot.
#[derive(Clone, Default)]
struct ProgressTable {
    counters: Arc<Mutex<HashMap<TransferId, Arc<TransferProgress>>>>,
    started: Arc<Mutex<Vec<TransferId>>>,
}

impl ProgressTable {
    /// Transfer `id` started: its counter says so (and how much it moves) first.
    fn started(&self, id: TransferId, counter: &TransferProgress, total: u64) {
        counter.start(total);
        self.started.lock().push(id);
    }

    /// The transfers that started since the last call.
    fn take_started(&self) -> Vec<TransferId> {
        std::mem::take(&mut *self.started.lock())
    }

    /// A fresh counter for `id` (a retry gets a new one: the old attempt may still be
    /// cleaning up and must not write into it).
    fn track(&self, id: TransferId) -> Arc<TransferProgress> {
        let counter = Arc::new(TransferProgress::default());
        self.counters.lock().insert(id, counter.clone());
        counter
    }

    /// The counter registered for `id` (a detached one if none is: nobody reads it).
    fn counter(&self, id: TransferId) -> Arc<TransferProgress> {
        self.counters.lock().get(&id).cloned().unwrap_or_default()
    }

    /// Forgets `counter`, unless a newer attempt registered its own since.
    fn release(&self, id: TransferId, counter: &Arc<TransferProgress>) {
        let mut table = self.counters.lock();
        if table.get(&id).is_some_and(|c| Arc::ptr_eq(c, counter)) {
            table.remove(&id);
        }
    }
}

/// How the worker finds the embedded store (tests point it at a temporary folder).
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// Where the embedded store lives (default: the user's folders). The relay's secret file
    /// is `relay-secret` in its config folder, as for `s3share serve` with the same folders.
    pub store_paths: Option<StorePaths>,
    /// The AWS shared files its profiles come from (default: where the environment says).
    pub aws_files: Option<crate::s3::AwsFiles>,
}

impl BackendConfig {
    /// Where interrupted transfers are remembered: `resume/` in the data folder, as for the
    /// command line with the same folders.
    pub fn resume_store(&self) -> Option<crate::transfer::ResumeStore> {
        match &self.store_paths {
            Some(p) => Some(crate::transfer::ResumeStore::new(p.data_dir.join("resume"))),
            None => crate::transfer::ResumeStore::for_user(),
        }
    }
}

impl Backend {
    /// Starts the worker on `runtime`; `repaint` is called after each event.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        config: BackendConfig,
        repaint: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        let (commands, command_rx) = tokio::sync::mpsc::channel(COMMAND_CAPACITY);
        let (event_tx, events) = tokio::sync::mpsc::channel(EVENT_CAPACITY);
        let repaint: Arc<dyn Fn() + Send + Sync> = Arc::new(repaint);
        let progress = ProgressTable::default();
        let emitter = Emitter {
            tx: event_tx,
            repaint: repaint.clone(),
            progress: progress.clone(),
        };
        let ids = Ids::default();
        runtime.spawn(Worker::new(config, emitter, ids.clone()).run(command_rx));
        Self {
            commands,
            waiting: RefCell::default(),
            events: RefCell::new(events),
            connection: Cell::new(0),
            ids,
            progress,
            repaint,
            queue_peak: Cell::new(0),
        }
    }

    /// Sends a command; never blocks. When the worker's queue is full the command waits in
    /// the UI's own queue and goes at a later frame, still in order.
    pub fn send(&self, command: Command) {
        self.waiting.borrow_mut().push_back(command);
        self.flush();
    }

    /// Connects to `target`, which becomes the connection in use: from now on the answers
    /// about earlier connections (a slow connect, the bucket list or a listing of the one
    /// before) are dropped before the UI sees them, however late they come.
    pub fn connect(&self, target: ConnectionTarget) {
        let connection = self.connection.get() + 1;
        self.connection.set(connection);
        self.send(Command::Connect { target, connection });
    }

    /// Hands the waiting commands to the worker, as many as its queue takes.
    fn flush(&self) {
        let mut waiting = self.waiting.borrow_mut();
        while let Some(command) = waiting.pop_front() {
            match self.commands.try_send(command) {
                Ok(()) => {}
                Err(TrySendError::Full(command)) => {
                    waiting.push_front(command);
                    // The worker takes them soon: look again then.
                    (self.repaint)();
                    return;
                }
                Err(TrySendError::Closed(_)) => {
                    tracing::error!("the background worker has stopped");
                    waiting.clear();
                    return;
                }
            }
        }
    }

    /// The events that arrived since the last call (at most a queue's worth, so one frame
    /// never has more to apply; the rest come at the next).
    pub fn poll(&self) -> Vec<Event> {
        self.flush();
        let mut events = Vec::new();
        let mut rx = self.events.borrow_mut();
        while events.len() < EVENT_CAPACITY {
            match rx.try_recv() {
                Ok(tagged) => events.extend(tagged.open(self.connection.get())),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if !rx.is_empty() {
            (self.repaint)();
        }
        self.queue_peak.set(self.queue_peak.get().max(events.len()));
        events
    }

    /// The most events that were waiting at one [`poll`](Self::poll) so far.
    pub fn queue_peak(&self) -> usize {
        self.queue_peak.get()
    }

    /// A fresh transfer or request id.
    pub fn next_id(&self) -> u64 {
        self.ids.next()
    }

    /// Registers transfer `id` (before its command is sent): the returned counter shows how
    /// far it is, read once per frame.
    pub fn track(&self, id: TransferId) -> Arc<TransferProgress> {
        self.progress.track(id)
    }

    /// The transfers whose counters started since the last call (each id at most once per
    /// start), for the UI to read from then on.
    pub fn take_started(&self) -> Vec<TransferId> {
        self.progress.take_started()
    }
}

/// An event on its way to the UI, with the connection it is about (`None`: about no
/// connection in particular, as a transfer's progress is).
struct Tagged {
    connection: Option<u64>,
    event: Event,
}

impl Tagged {
    /// The event as the UI should see it, when the connection in use is `current`: an
    /// answer about another connection is dropped, except that what a delete did is still
    /// told, marked as not about the listing on screen.
    fn open(self, current: u64) -> Option<Event> {
        match self {
            Self { connection, event } if connection.is_none_or(|c| c == current) => Some(event),
            Self {
                event:
                    Event::Deleted {
                        bucket,
                        deleted,
                        errors,
                        ..
                    },
                ..
            } => Some(Event::Deleted {
                bucket,
                deleted,
                errors,
                here: false,
            }),
            Self { .. } => {
                tracing::debug!("dropped an answer about a connection left since");
                None
            }
        }
    }
}

#[derive(Clone)]
struct Emitter {
    tx: tokio::sync::mpsc::Sender<Tagged>,
    repaint: Arc<dyn Fn() + Send + Sync>,
    progress: ProgressTable,
}

impl Emitter {
    /// Sends `event` to the UI, waiting while its queue is full (events are state changes,
    /// a handful per transfer, so the wait is a frame at most).
    async fn emit(&self, event: Event) {
        self.send(Tagged {
            connection: None,
            event,
        })
        .await;
    }

    /// [`Self::emit`] for an answer about connection number `connection`.
    async fn emit_for(&self, connection: u64, event: Event) {
        self.send(Tagged {
            connection: Some(connection),
            event,
        })
        .await;
    }

    async fn send(&self, tagged: Tagged) {
        if self.tx.send(tagged).await.is_ok() {
            (self.repaint)();
        }
    }
}
