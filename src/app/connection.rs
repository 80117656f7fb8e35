//! Which S3 the app talks to: connecting, and what the connection is as the UI shows it.

use std::time::SystemTime;

use super::S3ShareApp;
use super::backend::{Command, ConnectionTarget, CustomEndpoint};
use super::model::Place;
use crate::{CredentialProblem, ErrorReport};

/// Credentials that stopped working on a connection: the app offers the way out (sign in
/// again and reconnect, or switch connection) rather than only showing the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsTrouble {
    /// The connection whose credentials failed.
    pub target: ConnectionTarget,
    /// What is wrong with them.
    pub problem: CredentialProblem,
}

/// The connection as the UI shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionState {
    /// Not connected yet.
    Idle,
    /// Waiting for the worker.
    Connecting(ConnectionTarget),
    /// Ready.
    Connected {
        /// Where.
        target: ConnectionTarget,
        /// Endpoint label.
        endpoint: String,
        /// When the credentials expire.
        credentials_expiry: Option<SystemTime>,
        /// Port of the embedded store, when that is the connection.
        local_port: Option<u16>,
    },
    /// Failed, with what to do.
    Failed(ConnectionTarget, String),
}

impl S3ShareApp {
    /// Switches to `target`.
    pub fn connect(&mut self, target: ConnectionTarget) {
        self.fall_back_to_local = false;
        self.connection = ConnectionState::Connecting(target.clone());
        self.buckets = None;
        self.buckets_failed = None;
        self.place = None;
        // Interrupted uploads are offered per connection: the new one lists its own.
        self.pending_uploads.clear();
        self.listing.reset(0);
        self.listing.loading = false;
        self.backend.connect(target);
    }

    /// Removes an endpoint the user added. When it is the connection in use (or being tried,
    /// or the one that failed), the app goes to the embedded store: it stayed on the removed
    /// endpoint, its error on screen and "Reconnect" reconnecting to it, with no entry left
    /// to select.
    pub fn remove_endpoint(&mut self, endpoint: &CustomEndpoint) {
        self.settings.custom_endpoints.retain(|e| e != endpoint);
        let removed = ConnectionTarget::Custom(endpoint.clone());
        self.connection_problems.remove(&removed);
        let current = match &self.connection {
            ConnectionState::Connecting(t)
            | ConnectionState::Connected { target: t, .. }
            | ConnectionState::Failed(t, _) => Some(t),
            ConnectionState::Idle => None,
        };
        if current == Some(&removed) {
            self.connect(ConnectionTarget::Local);
        }
    }

    /// Connects as a start does: if `target` fails, the app lands on the embedded store and
    /// the problem shows on `target`'s entry in the sidebar, not as a page in the way.
    pub fn connect_at_start(&mut self, target: ConnectionTarget) {
        self.connect(target);
        self.fall_back_to_local = true;
    }

    /// The connection asked for last failed (the backend drops the answers of earlier ones):
    /// the problem stays on its entry; at start, the embedded store opens.
    pub(super) fn connect_failed(&mut self, target: ConnectionTarget, error: ErrorReport) {
        self.connection_problems
            .insert(target.clone(), error.message.clone());
        if std::mem::take(&mut self.fall_back_to_local) && target != ConnectionTarget::Local {
            // The problem stays on the connection's entry; nothing stands in the way at start.
            tracing::info!("the first connection failed; opening the embedded store");
            return self.connect(ConnectionTarget::Local);
        }
        self.note_credentials(&target, &error);
        self.connection = ConnectionState::Failed(target, error.message);
    }

    /// Remembers that `target`'s credentials failed, when that is what `error` says, so the
    /// app offers to sign in again.
    pub(super) fn note_credentials(&mut self, target: &ConnectionTarget, error: &ErrorReport) {
        if let Some(problem) = error.credentials {
            self.credentials_trouble = Some(CredentialsTrouble {
                target: target.clone(),
                problem,
            });
        }
    }

    /// [`Self::note_credentials`] for a failure on the connection in use.
    pub(super) fn note_credentials_here(&mut self, error: &ErrorReport) {
        if let ConnectionState::Connected { target, .. } = &self.connection {
            let target = target.clone();
            self.note_credentials(&target, error);
        }
    }

    /// The sidebar label of `target`: its name and where it goes (a custom endpoint's host, or
    /// AWS and the region).
    pub fn connection_label(&self, target: &ConnectionTarget) -> String {
        match target {
            ConnectionTarget::Local => "This computer (embedded store)".to_owned(),
            ConnectionTarget::Profile(p) => {
                let to = self
                    .profile_destinations
                    .get(p)
                    .map_or_else(|| "AWS".to_owned(), crate::s3::ProfileDestination::label);
                format!("{p} · {to}")
            }
            ConnectionTarget::Custom(c) => {
                format!("{} · {}", c.name, crate::s3::endpoint_host(&c.endpoint))
            }
        }
    }

    /// The worker connected: remember it, and open the last place there (or its default bucket).
    pub(super) fn connected(
        &mut self,
        target: ConnectionTarget,
        default_bucket: Option<String>,
        endpoint: String,
        credentials_expiry: Option<SystemTime>,
        local_port: Option<u16>,
    ) {
        self.fall_back_to_local = false;
        self.connection_problems.remove(&target);
        // Connected (again, or elsewhere): the credentials in use work.
        self.credentials_trouble = None;
        self.connection = ConnectionState::Connected {
            target: target.clone(),
            endpoint,
            credentials_expiry,
            local_port,
        };
        let remembered = self
            .settings
            .last_place
            .clone()
            .filter(|_| self.settings.last_target.as_ref() == Some(&target));
        self.settings.last_target = Some(target);
        if let Some(place) = remembered.or_else(|| {
            default_bucket.map(|bucket| Place {
                bucket,
                prefix: String::new(),
            })
        }) {
            self.history.clear();
            self.open(place);
        }
    }

    /// The local-store note shown where a link is made.
    pub fn local_note(&self) -> Option<String> {
        match &self.connection {
            ConnectionState::Connected {
                local_port: Some(port),
                ..
            } => Some(format!(
                "Links to the embedded store (127.0.0.1:{port}) work on this computer while s3share is running."
            )),
            _ => None,
        }
    }

    /// The bucket list arrived. A failure keeps the last good list (marked stale); with a
    /// single bucket and nothing open yet, that bucket opens.
    pub(super) fn buckets_listed(&mut self, result: Result<Vec<String>, String>) {
        match result {
            Ok(list) => {
                self.buckets_failed = None;
                if self.place.is_none()
                    && let [only] = list.as_slice()
                {
                    self.open(Place {
                        bucket: only.clone(),
                        prefix: String::new(),
                    });
                }
                self.buckets = Some(Ok(list));
            }
            Err(e) if matches!(self.buckets, Some(Ok(_))) => self.buckets_failed = Some(e),
            Err(e) => self.buckets = Some(Err(e)),
        }
    }

    /// Lists the buckets again (Retry).
    pub fn retry_buckets(&mut self) {
        if matches!(self.buckets, Some(Err(_))) {
            self.buckets = None;
        }
        self.backend.send(Command::ListBuckets);
    }
}
