//! Interrupted uploads found at start (or after connecting): resume or discard each.
//!
//! An upload the app could not clean up after (the process killed, a crash, the network gone)
//! leaves a multipart upload on the server and a record in the resume folder. Once connected,
//! the worker lists those for this endpoint ([`Event::PendingUploads`](super::backend::Event));
//! the panel (`resume_ui.rs`) offers Resume (only the missing parts are sent) and Discard
//! (the upload is aborted on the server and forgotten).

use super::S3ShareApp;
use super::backend::{Command, PendingUploadInfo};
use super::model::{Direction, Transfer};
use crate::transfer::PendingUpload;

/// One interrupted upload in the panel.
#[derive(Debug, Clone)]
pub struct PendingRow {
    /// The upload and how much of it the server holds.
    pub info: PendingUploadInfo,
    /// Discard was clicked; waiting for the server.
    pub discarding: bool,
}

impl S3ShareApp {
    /// The worker found interrupted uploads for this connection.
    pub(super) fn pending_uploads_found(&mut self, found: Vec<PendingUploadInfo>) {
        for info in found {
            let known = self
                .pending_uploads
                .iter()
                .any(|r| r.info.pending == info.pending);
            if !known {
                self.pending_uploads.push(PendingRow {
                    info,
                    discarding: false,
                });
            }
        }
    }

    /// Resumes interrupted upload `i` of the panel as a transfer.
    pub fn resume_pending(&mut self, i: usize) {
        if i >= self.pending_uploads.len() {
            return;
        }
        let row = self.pending_uploads.remove(i);
        let pending = row.info.pending;
        let id = self.backend.next_id();
        let mut t = Transfer::new(id, Direction::Upload, pending.key.clone(), pending.size);
        t.counter = Some(self.backend.track(id));
        self.add_transfer(t);
        self.backend.send(Command::ResumeUpload { id, pending });
    }

    /// Discards interrupted upload `i` of the panel: aborted on the server, then forgotten.
    pub fn discard_pending(&mut self, i: usize) {
        let Some(row) = self.pending_uploads.get_mut(i) else {
            return;
        };
        row.discarding = true;
        self.backend
            .send(Command::DiscardUpload(row.info.pending.clone()));
    }

    /// The worker answered a Discard.
    pub(super) fn upload_discarded(&mut self, pending: PendingUpload, result: Result<(), String>) {
        match result {
            Ok(()) => self.pending_uploads.retain(|r| r.info.pending != pending),
            Err(e) => {
                for r in &mut self.pending_uploads {
                    if r.info.pending == pending {
                        r.discarding = false;
                    }
                }
                self.toast_error(format!(
                    "Cannot discard the upload of {}: {e}",
                    pending.path.display()
                ));
            }
        }
    }
}
