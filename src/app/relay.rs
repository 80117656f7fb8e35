//! The relay switch and the "Shared links" panel: the state, and what the buttons do.
//!
//! The relay itself runs in the worker (on the runtime, never on the UI thread); the app only
//! asks for it to start or stop and shows what the worker reports.

use super::S3ShareApp;
use super::backend::Command;
use crate::relay::LinkRecord;

/// Where the relay is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RelayStatus {
    /// Not running: links are presigned.
    #[default]
    Off,
    /// Asked to start (or waiting for a connection).
    Starting,
    /// Running; its links start with `url`.
    On {
        /// The base of its links.
        url: String,
    },
    /// Could not start, and why.
    Failed(String),
}

/// Link lifetimes offered for relay links: beyond the 7 days of a presigned URL, since each
/// request is signed afresh.
pub const RELAY_EXPIRY_CHOICES: [(&str, u64); 5] = [
    ("1 day", 86400),
    ("7 days", 7 * 86400),
    ("30 days", 30 * 86400),
    ("90 days", 90 * 86400),
    ("1 year", 365 * 86400),
];

/// The "Shared links" panel: the relay links recorded in a bucket's ledger.
#[derive(Debug, Clone, Default)]
pub struct SharedLinksPanel {
    /// The bucket whose ledger is shown.
    pub bucket: String,
    /// The links as last read (kept, marked stale, when a refresh fails).
    pub records: Option<Vec<LinkRecord>>,
    /// Why the last read or revoke failed.
    pub error: Option<String>,
    /// A read is under way.
    pub loading: bool,
    /// The link whose revocation waits for a confirmation.
    pub confirm_revoke: Option<String>,
    /// The link being revoked.
    pub revoking: Option<String>,
}

impl S3ShareApp {
    /// The relay switch: starts or stops the relay in the worker, and remembers the choice.
    pub fn set_relay(&mut self, on: bool) {
        self.settings.relay_on = on;
        if !on {
            self.relay = RelayStatus::Off;
            return self.backend.send(Command::RelayStop);
        }
        match self.settings.relay_listen.trim().parse() {
            Ok(listen) => {
                self.relay = RelayStatus::Starting;
                self.backend.send(Command::RelayStart { listen });
            }
            Err(_) => {
                self.settings.relay_on = false;
                self.relay = RelayStatus::Failed(format!(
                    "{:?} is not an address to listen on; write e.g. 127.0.0.1:8457",
                    self.settings.relay_listen
                ));
            }
        }
    }

    /// The base of the running relay's links.
    pub fn relay_url(&self) -> Option<&str> {
        match &self.relay {
            RelayStatus::On { url } => Some(url),
            _ => None,
        }
    }

    pub(super) fn relay_started(&mut self, url: String) {
        self.relay = RelayStatus::On { url };
    }

    pub(super) fn relay_stopped(&mut self) {
        self.relay = RelayStatus::Off;
    }

    pub(super) fn relay_failed(&mut self, error: String) {
        self.settings.relay_on = false;
        self.relay = RelayStatus::Failed(error);
    }

    /// Opens the "Shared links" panel for the open bucket and reads its ledger.
    pub fn open_shared_links(&mut self) {
        let Some(place) = &self.place else {
            return self.toast_error("Open a bucket to see its shared links.".into());
        };
        self.shared_links = Some(SharedLinksPanel {
            bucket: place.bucket.clone(),
            ..Default::default()
        });
        self.refresh_shared_links();
    }

    /// Reads the ledger again.
    pub fn refresh_shared_links(&mut self) {
        let Some(panel) = &mut self.shared_links else {
            return;
        };
        panel.loading = true;
        self.backend.send(Command::ListSharedLinks {
            bucket: panel.bucket.clone(),
        });
    }

    /// "Copy": the link minted again from its record; it goes on the clipboard.
    pub fn copy_shared_link(&mut self, id: String) {
        let Some(panel) = &self.shared_links else {
            return;
        };
        let request = self.backend.next_id();
        self.link_copies.insert(request);
        self.backend.send(Command::CopySharedLink {
            request,
            bucket: panel.bucket.clone(),
            id,
        });
    }

    /// "Revoke" confirmed.
    pub fn revoke_shared_link(&mut self, id: String) {
        let Some(panel) = &mut self.shared_links else {
            return;
        };
        panel.confirm_revoke = None;
        panel.revoking = Some(id.clone());
        panel.error = None;
        self.backend.send(Command::RevokeSharedLink {
            bucket: panel.bucket.clone(),
            id,
        });
    }

    pub(super) fn shared_links_listed(
        &mut self,
        bucket: String,
        result: Result<Vec<LinkRecord>, String>,
    ) {
        let Some(panel) = self.shared_links.as_mut().filter(|p| p.bucket == bucket) else {
            return;
        };
        panel.loading = false;
        match result {
            Ok(records) => {
                panel.records = Some(records);
                panel.error = None;
            }
            // The last good list stays; an error never reads as "no links".
            Err(e) => panel.error = Some(format!("Cannot read the shared links: {e}")),
        }
    }

    pub(super) fn link_revoked(&mut self, bucket: String, id: String, result: Result<(), String>) {
        if let Some(panel) = self.shared_links.as_mut().filter(|p| p.bucket == bucket) {
            panel.revoking = None;
            if let Err(e) = &result {
                panel.error = Some(format!("Link {id} was not revoked: {e}"));
            }
        }
        match result {
            Ok(()) => {
                self.toast(format!(
                    "Link {id} revoked: it stops working within a second."
                ));
                self.refresh_shared_links();
            }
            Err(e) => self.toast_error(format!("Link {id} was not revoked: {e}")),
        }
    }
}
