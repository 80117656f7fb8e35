//! Once per frame: what the worker and the native dialogs sent is applied to the state.
//!
//! Each event is handed to the room it belongs to; only the listing's own events are handled
//! here.

use super::S3ShareApp;
use super::backend::Event;
use crate::ErrorReport;

impl S3ShareApp {
    /// Applies everything the worker and the dialogs sent since the last frame.
    pub fn apply_events(&mut self, ctx: &egui::Context) {
        for event in self.backend.poll() {
            self.apply(ctx, event);
        }
        self.apply_dialog_answers();
        self.expire_toasts();
    }

    fn apply(&mut self, ctx: &egui::Context, event: Event) {
        match event {
            Event::Connected {
                target,
                default_bucket,
                endpoint,
                credentials_expiry,
                local_port,
            } => self.connected(
                target,
                default_bucket,
                endpoint,
                credentials_expiry,
                local_port,
            ),
            Event::ConnectFailed { target, error } => self.connect_failed(target, error),
            Event::Buckets(b) => {
                let b = self.words_of(b);
                self.buckets_listed(b);
            }
            Event::ListPage { request, page } if request == self.listing.request => {
                let prefix = self
                    .place
                    .as_ref()
                    .map(|p| p.prefix.clone())
                    .unwrap_or_default();
                self.listing.add_page(&prefix, page);
            }
            Event::ListDone { request } if request == self.listing.request => self.listing.done(),
            Event::ListFailed { request, error } if request == self.listing.request => {
                self.note_credentials_here(&error);
                self.listing.missing_bucket = error.missing_bucket;
                self.listing.failed(error.message);
            }
            // Answers for a folder the user already left.
            Event::ListPage { .. } | Event::ListDone { .. } | Event::ListFailed { .. } => {}
            Event::UploadPlanned {
                bucket,
                uploads,
                errors,
                then,
            } => self.upload_planned(bucket, uploads, errors, then),
            Event::Transfer { id, event } => self.transfer_event(id, event),
            Event::Uploaded {
                id,
                bucket,
                key,
                size,
            } => self.uploaded(id, bucket, key, size),
            Event::AllStopped => self.all_transfers_stopped(ctx),
            Event::PendingUploads(found) => self.pending_uploads_found(found),
            Event::UploadDiscarded { pending, result } => {
                let result = self.words_of(result);
                self.upload_discarded(pending, result);
            }
            Event::Deleted {
                bucket,
                deleted,
                errors,
                here,
            } => {
                if here {
                    for e in &errors {
                        self.note_credentials_here(e);
                    }
                }
                let errors = errors.into_iter().map(|e| e.message).collect();
                self.deleted(bucket, deleted, errors, here);
            }
            Event::FolderCreated { bucket, prefix } => self.folder_created(bucket, prefix),
            Event::FolderContents {
                bucket,
                folders,
                result,
            } => {
                let result = result.map_err(|e| e.message);
                self.folder_contents(bucket, folders, result);
            }
            Event::FolderFailed(e) => {
                self.note_credentials_here(&e);
                self.toast_error(e.message);
            }
            Event::Links { request, result } => {
                let result = self.words_of(result);
                self.links_ready(ctx, request, result);
            }
            Event::Preview { key, info, content } => {
                let content = self.words_of(content);
                self.preview_ready(ctx, key, info, content);
            }
            Event::RelayStarted { url } => self.relay_started(url),
            Event::RelayStopped => self.relay_stopped(),
            Event::RelayFailed(e) => {
                self.note_credentials_here(&e);
                self.relay_failed(e.message);
            }
            Event::SharedLinks { bucket, result } => {
                let result = self.words_of(result);
                self.shared_links_listed(bucket, result);
            }
            Event::LinkRevoked { bucket, id, result } => {
                let result = self.words_of(result);
                self.link_revoked(bucket, id, result);
            }
        }
    }

    /// A result as the rooms show it (the error in words), once a credential failure in it
    /// has raised the credentials banner.
    fn words_of<T>(&mut self, result: Result<T, ErrorReport>) -> Result<T, String> {
        if let Err(e) = &result {
            self.note_credentials_here(e);
        }
        result.map_err(|e| e.message)
    }
}
