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

mod preview;
pub mod protocol;
mod worker;

use std::sync::Arc;
use std::sync::mpsc;

use tokio::sync::mpsc::UnboundedSender;

use crate::store::StorePaths;

pub use protocol::{
    AfterUpload, Command, ConflictChoice, ConnectionTarget, CustomEndpoint, Event, LinkVia,
    PlannedUpload, PreviewContent, TransferId, TransferUpdate,
};
use worker::Worker;
pub use worker::numbered_key;

/// The UI's handle on the worker.
pub struct Backend {
    commands: UnboundedSender<Command>,
    events: mpsc::Receiver<Event>,
    ids: Ids,
    /// The most events found waiting at one poll (benchmarks report it).
    queue_peak: std::cell::Cell<usize>,
}

/// Ids for transfers and requests, shared by the UI and the worker so they never collide.
#[derive(Clone, Default)]
struct Ids(Arc<std::sync::atomic::AtomicU64>);

impl Ids {
    fn next(&self) -> u64 {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1
    }
}

/// How the worker finds the embedded store (tests point it at a temporary folder).
#[derive(Debug, Clone, Default)]
pub struct BackendConfig {
    /// Where the embedded store lives (default: the user's folders). The relay's secret file
    /// is `relay-secret` in its config folder, as for `s3share serve` with the same folders.
    pub store_paths: Option<StorePaths>,
}

impl Backend {
    /// Starts the worker on `runtime`; `repaint` is called after each event.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        config: BackendConfig,
        repaint: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        // Commands are few and small (user actions), events are drained every frame: neither
        // channel can grow without bound in practice, and the UI must never block on a send.
        #[expect(
            clippy::disallowed_methods,
            reason = "the UI cannot wait on a full queue; bounding it needs a policy for a full \
                      one (follow-up: the worker event rework, issue #9)"
        )]
        let (commands, command_rx) = tokio::sync::mpsc::unbounded_channel();
        #[expect(
            clippy::disallowed_methods,
            reason = "progress events would block the worker on a bounded one; to be bounded \
                      with coalesced progress in the worker event rework (issue #9)"
        )]
        let (event_tx, events) = mpsc::channel();
        let emitter = Emitter {
            tx: event_tx,
            repaint: Arc::new(repaint),
        };
        let ids = Ids::default();
        runtime.spawn(Worker::new(config, emitter, ids.clone()).run(command_rx));
        Self {
            commands,
            events,
            ids,
            queue_peak: std::cell::Cell::new(0),
        }
    }

    /// Sends a command; never blocks.
    pub fn send(&self, command: Command) {
        if self.commands.send(command).is_err() {
            tracing::error!("the background worker has stopped");
        }
    }

    /// The events that arrived since the last call.
    pub fn poll(&self) -> Vec<Event> {
        let events: Vec<Event> = self.events.try_iter().collect();
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
}

#[derive(Clone)]
struct Emitter {
    tx: mpsc::Sender<Event>,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

impl Emitter {
    fn emit(&self, event: Event) {
        if self.tx.send(event).is_ok() {
            (self.repaint)();
        }
    }
}
