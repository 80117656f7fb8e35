//! Which S3 the app talks to: connecting, and what the connection is as the UI shows it.

use std::time::SystemTime;

use super::S3ShareApp;
use super::backend::{Command, ConnectionTarget};
use super::model::Place;

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
        self.connection = ConnectionState::Connecting(target.clone());
        self.buckets = None;
        self.place = None;
        self.listing.reset(0);
        self.listing.loading = false;
        self.backend.send(Command::Connect(target));
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
}
