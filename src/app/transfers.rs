//! Uploads and downloads: where a dropped or picked file goes, the question when its name is
//! taken, and cancelling or retrying transfers. The worker side is `backend/worker.rs`.
//!
//! A dropped file: [`S3ShareApp::handle_drops`] → [`S3ShareApp::upload_paths`] (the worker plans
//! it and checks which names exist) → `upload_planned` (asks about conflicts) → `start_uploads`
//! → the worker uploads, reporting progress as events. With "Upload and copy link" (a
//! [`LinkBatch`]), once every file of the drop has ended their links go on the clipboard.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use super::S3ShareApp;
use super::backend::{
    AfterUpload, Command, ConflictChoice, PlannedUpload, TransferId, TransferUpdate,
};
use super::model::{Direction, Entry, Transfer, TransferState};

/// The conflict question for a planned upload.
#[derive(Debug)]
pub struct ConflictPrompt {
    pub(super) bucket: String,
    /// Uploads still to decide (the first is the one asked about).
    pub(super) pending: Vec<PlannedUpload>,
    /// Decided so far.
    pub(super) decided: Vec<(PlannedUpload, ConflictChoice)>,
    /// Apply the next answer to all remaining conflicts.
    pub apply_to_all: bool,
}

/// What the transfers add up to, for the panel's header and the quit question: counted from
/// the rows still running each frame, not from every row of the session (a drop of 10,000
/// files would otherwise cost several passes over 10,000 rows per frame).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TransferTally {
    /// Queued or running.
    pub active: usize,
    /// Bytes moved by the active transfers.
    pub done: u64,
    /// Bytes the active transfers move in all.
    pub total: u64,
    /// Their speeds together, bytes per second.
    pub speed: f64,
    /// Failed or cancelled: what the panel's Retry runs again.
    pub failed: usize,
    /// Of those, the cancelled ones (the Retry button names them, as they did not fail).
    pub cancelled: usize,
    /// Finished.
    pub finished: usize,
}

/// The transfers counted as they change, so a frame visits only the rows that are running:
/// a queued row waits unread until the worker says it started (`Backend::take_started`), and
/// an ended row is counted once, when it ends.
#[derive(Debug, Default)]
pub(super) struct ActiveRows {
    /// Rows read each frame: running, or ended since the last frame.
    running: Vec<usize>,
    /// Queued rows (not in `running`), and the bytes they will move.
    queued: usize,
    queued_bytes: u64,
    /// Ended rows counted so far.
    failed: usize,
    cancelled: usize,
    finished: usize,
    /// Rows were re-indexed or came back to life: count everything again.
    stale: bool,
}

impl ActiveRows {
    /// A row joins: queued, or already ended (skipped, failed to plan).
    fn add(&mut self, t: &Transfer) {
        if t.state == TransferState::Queued {
            self.queued += 1;
            self.queued_bytes += t.total;
        } else {
            self.count_ended(t);
        }
    }

    /// A queued row of `total` bytes left the queue without being read: started, or ended
    /// (the worker's answer came between two frames).
    fn unqueue(&mut self, total: u64) {
        self.queued = self.queued.saturating_sub(1);
        self.queued_bytes = self.queued_bytes.saturating_sub(total);
    }

    /// A row ended: counted where it belongs.
    fn count_ended(&mut self, t: &Transfer) {
        match t.state {
            TransferState::Failed(_) => self.failed += 1,
            TransferState::Cancelled => {
                self.failed += 1;
                self.cancelled += 1;
            }
            TransferState::Finished => self.finished += 1,
            _ => {}
        }
    }
}

/// Whether the worker started the row's current attempt.
fn counter_started(t: &Transfer) -> bool {
    t.counter.as_ref().is_some_and(|c| c.started().is_some())
}

/// Uploads started by "Upload and copy link": once all have ended, their links are copied.
#[derive(Debug)]
pub(super) struct LinkBatch {
    bucket: String,
    /// The transfers of the batch, in the order their links are copied.
    ids: Vec<TransferId>,
    expires: Duration,
}

/// What a failed or cancelled transfer needs to run again.
#[derive(Debug, Clone)]
pub(super) enum RetryInfo {
    Upload {
        bucket: String,
        planned: PlannedUpload,
        choice: ConflictChoice,
    },
    Download {
        bucket: String,
        item: crate::transfer::DownloadItem,
        overwrite: bool,
    },
}

/// A download to a typed path where a file exists: the question a save dialog asks.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplacePrompt {
    /// The object to download.
    pub key: String,
    /// The file that exists.
    pub path: PathBuf,
}

/// The first of `name (1).ext`, `name (2).ext`, … beside `path` that names nothing, as "Keep
/// both" names uploads.
pub(super) fn free_path(path: &std::path::Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    (1..=999)
        .map(|n| path.with_file_name(crate::s3::numbered_key(name, n)))
        .find(|p| std::fs::symlink_metadata(p).is_err())
}

impl S3ShareApp {
    /// Drops files onto the window: dropped paths upload into the current folder.
    pub(super) fn handle_drops(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_owned())
                .filter(|p| !p.as_os_str().is_empty())
                .collect()
        });
        if !dropped.is_empty() {
            // The half of the drop zone it landed on is the choice, remembered for next time.
            self.settings.drop_copies_link = super::dialogs_ui::drop_copies_link(self, ctx);
            let then = self.settings.after_drop();
            self.upload_paths_then(dropped, then);
        }
    }

    /// Uploads dropped or picked paths into the current folder (asking about conflicts).
    pub fn upload_paths(&mut self, paths: Vec<PathBuf>) {
        self.upload_paths_then(paths, AfterUpload::Nothing);
    }

    /// Why nothing can be uploaded into the open folder now, if that is so: its bucket does
    /// not exist (every file would fail alike, and a New folder too).
    pub fn upload_refusal(&self) -> Option<String> {
        let bucket = self.listing.missing_bucket.as_ref()?;
        Some(format!(
            "Bucket \"{bucket}\" does not exist (or these credentials cannot see it): \
             choose another bucket, or create it first."
        ))
    }

    /// Uploads paths into the current folder, then does `then` (e.g. copies their links).
    pub fn upload_paths_then(&mut self, paths: Vec<PathBuf>, then: AfterUpload) {
        let Some(place) = &self.place else {
            return self.toast_error("Open a bucket first, then drop files into it.".into());
        };
        if let Some(why) = self.upload_refusal() {
            return self.toast_error(why);
        }
        if paths.is_empty() {
            return;
        }
        self.backend.send(Command::PlanUpload {
            bucket: place.bucket.clone(),
            prefix: place.prefix.clone(),
            paths,
            then,
        });
    }

    /// Answers the open conflict question for the first pending upload.
    pub fn answer_conflict(&mut self, choice: ConflictChoice) {
        let Some(prompt) = &mut self.conflicts else {
            return;
        };
        let all = prompt.apply_to_all;
        loop {
            if prompt.pending.is_empty() {
                break;
            }
            let planned = prompt.pending.remove(0);
            prompt.decided.push((planned, choice));
            if !all || prompt.pending.is_empty() {
                break;
            }
        }
        if prompt.pending.is_empty() {
            let prompt = self.conflicts.take().expect("checked");
            self.start_uploads(prompt.bucket, prompt.decided);
        }
    }

    fn start_uploads(&mut self, bucket: String, uploads: Vec<(PlannedUpload, ConflictChoice)>) {
        let mut send = Vec::new();
        for (planned, choice) in uploads {
            let mut t = Transfer::new(
                planned.id,
                Direction::Upload,
                planned.item.key.clone(),
                planned.item.size,
            );
            self.retry_info.insert(
                planned.id,
                RetryInfo::Upload {
                    bucket: bucket.clone(),
                    planned: planned.clone(),
                    choice,
                },
            );
            if planned.exists && choice == ConflictChoice::Skip {
                t.state = TransferState::Skipped;
            } else {
                t.counter = Some(self.backend.track(planned.id));
                send.push((planned, choice));
            }
            self.add_transfer(t);
        }
        if !send.is_empty() {
            self.backend.send(Command::Upload {
                bucket,
                uploads: send,
            });
        }
    }

    /// Downloads `keys` to a path the user typed: a file that exists there is not replaced
    /// without asking ([`ReplacePrompt`]), as a save dialog would ask.
    pub fn download_typed(&mut self, keys: Vec<String>, path: PathBuf) {
        let exists = std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir());
        match <[String; 1]>::try_from(keys) {
            Ok([key]) if exists => self.replace_prompt = Some(ReplacePrompt { key, path }),
            Ok(one) => self.download_to(one.into(), path, false),
            Err(keys) => self.download_to(keys, path, false),
        }
    }

    /// Downloads `keys` (files of the current bucket) to `path`: a file for one key, a folder
    /// for several (or when `path` is one). Into a folder, keys are placed as the CLI places
    /// them, relative to the folder being viewed and confined to `path`; keys that would land
    /// outside it or on another key's path show as failed transfers, and files already there
    /// are kept. One file replaces a file at `path` only with `replace` (a save dialog, or the
    /// user, has said so).
    pub fn download_to(&mut self, keys: Vec<String>, path: PathBuf, replace: bool) {
        let Some(place) = &self.place else { return };
        let bucket = place.bucket.clone();
        let listing = &self.listing;
        let size_of = |key: &str| listing.get(key).map_or(0, |e| e.size);
        let into_folder = keys.len() > 1 || path.is_dir();
        let planned = if into_folder {
            let objects: Vec<crate::s3::ObjectEntry> = keys
                .iter()
                .map(|key| crate::s3::ObjectEntry {
                    key: key.clone(),
                    size: size_of(key),
                    modified: None,
                    etag: None,
                })
                .collect();
            crate::transfer::plan_download_each(&objects, &place.prefix, &path)
        } else {
            keys.into_iter()
                .map(|key| {
                    let item = crate::transfer::DownloadItem::file(
                        key.clone(),
                        path.clone(),
                        size_of(&key),
                    );
                    (key, Ok(item))
                })
                .collect()
        };
        let overwrite = replace && !into_folder;
        for (key, planned) in planned {
            let id = self.backend.next_id();
            let size = self.listing.get(&key).map_or(0, |e| e.size);
            let mut transfer = Transfer::new(id, Direction::Download, key.clone(), size);
            match planned {
                Ok(item) => {
                    transfer.counter = Some(self.backend.track(id));
                    self.retry_info.insert(
                        id,
                        RetryInfo::Download {
                            bucket: bucket.clone(),
                            item: item.clone(),
                            overwrite,
                        },
                    );
                    self.backend.send(Command::Download {
                        id,
                        bucket: bucket.clone(),
                        item,
                        overwrite,
                    });
                }
                Err(e) => transfer.state = TransferState::Failed(e.to_string()),
            }
            self.add_transfer(transfer);
        }
    }

    /// Cancels a running transfer.
    pub fn cancel_transfer(&mut self, id: TransferId) {
        self.backend.send(Command::Cancel(id));
        let Some(&at) = self.transfer_rows.get(&id) else {
            return;
        };
        let t = &mut self.transfers[at];
        match t.state {
            TransferState::Queued => {
                t.state = TransferState::Cancelled;
                self.active_rows.unqueue(t.total);
                self.active_rows.count_ended(t);
            }
            // Read each frame: counted as it ends, at the next.
            TransferState::Running => t.state = TransferState::Cancelled,
            _ => {}
        }
    }

    /// Retries every failed or cancelled transfer.
    pub fn retry_failed(&mut self) {
        let ids: Vec<TransferId> = self
            .transfers
            .iter()
            .filter(|t| matches!(t.state, TransferState::Failed(_) | TransferState::Cancelled))
            .map(|t| t.id)
            .collect();
        for id in ids {
            self.retry(id);
        }
    }

    /// Runs a failed download again, replacing the local file that stopped it (the user
    /// said so on its row).
    pub fn replace_and_retry(&mut self, id: TransferId) {
        if let Some(RetryInfo::Download { overwrite, .. }) = self.retry_info.get_mut(&id) {
            *overwrite = true;
            self.retry(id);
        }
    }

    /// Runs one failed or cancelled transfer again.
    pub fn retry(&mut self, id: TransferId) {
        let Some(info) = self.retry_info.get(&id).cloned() else {
            return;
        };
        {
            let counter = self.backend.track(id);
            if let Some(t) = self.transfer_mut(id) {
                *t = Transfer::new(id, t.direction, t.name.clone(), t.total);
                t.counter = Some(counter);
            }
            // An ended row runs again.
            self.active_rows.stale = true;
            match info {
                RetryInfo::Upload {
                    bucket,
                    planned,
                    choice,
                } => self.backend.send(Command::Upload {
                    bucket,
                    uploads: vec![(planned, choice)],
                }),
                RetryInfo::Download {
                    bucket,
                    item,
                    overwrite,
                } => self.backend.send(Command::Download {
                    id,
                    bucket,
                    item,
                    overwrite,
                }),
            }
        }
    }

    /// Forgets finished, skipped and cancelled transfers.
    pub fn clear_finished(&mut self) {
        self.transfers
            .retain(|t| t.is_active() || matches!(t.state, TransferState::Failed(_)));
        self.transfer_rows = self
            .transfers
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id, i))
            .collect();
        self.active_rows.stale = true;
    }

    /// The worker planned an upload: files whose names are free start at once, the others
    /// wait for the conflict question.
    pub(super) fn upload_planned(
        &mut self,
        bucket: String,
        uploads: Vec<PlannedUpload>,
        errors: Vec<String>,
        then: AfterUpload,
    ) {
        for e in errors {
            self.toast_error(e);
        }
        if let AfterUpload::CopyLinks { expires } = then
            && !uploads.is_empty()
        {
            self.link_batches.push(LinkBatch {
                bucket: bucket.clone(),
                ids: uploads.iter().map(|u| u.id).collect(),
                expires,
            });
        }
        let (conflicting, fresh): (Vec<_>, Vec<_>) = uploads.into_iter().partition(|u| u.exists);
        self.start_uploads(
            bucket.clone(),
            fresh
                .into_iter()
                .map(|u| (u, ConflictChoice::Overwrite))
                .collect(),
        );
        if !conflicting.is_empty() {
            match &mut self.conflicts {
                Some(prompt) if prompt.bucket == bucket => prompt.pending.extend(conflicting),
                _ => {
                    self.conflicts = Some(ConflictPrompt {
                        bucket,
                        pending: conflicting,
                        decided: Vec::new(),
                        apply_to_all: false,
                    });
                }
            }
        }
    }

    /// A transfer ended, onto its row.
    pub(super) fn transfer_event(&mut self, id: TransferId, event: TransferUpdate) {
        let Some(&at) = self.transfer_rows.get(&id) else {
            return;
        };
        let t = &mut self.transfers[at];
        // Where the row was counted: a queued one leaves the queue here; a running one is
        // counted at the next frame; a late word on one that had ended (cancelled here,
        // finished there) may move it between the counts.
        let (before, queued_total) = (t.state.clone(), t.total);
        // How far it got: the counter's last word, read before the row stops reading it.
        t.read_counter(Instant::now());
        let mut trouble = None;
        match event {
            TransferUpdate::Finished => {
                t.done = t.total;
                t.state = TransferState::Finished;
            }
            TransferUpdate::Skipped => t.state = TransferState::Skipped,
            TransferUpdate::Cancelled => t.state = TransferState::Cancelled,
            TransferUpdate::Failed { error } => {
                t.state = TransferState::Failed(without_cli_advice(error.message.clone()));
                t.can_replace = error.local_file_exists && t.direction == Direction::Download;
                trouble = Some(error);
            }
        }
        match before {
            // Every answer ends the row: counted here, as it is not read each frame.
            TransferState::Queued => {
                self.active_rows.unqueue(queued_total);
                self.active_rows.count_ended(&self.transfers[at]);
            }
            TransferState::Running => {}
            _ => self.active_rows.stale = true,
        }
        if let Some(error) = trouble {
            self.note_credentials_here(&error);
        }
        self.copy_finished_batches();
    }

    /// Once per frame: how far each running transfer is, from its counter (bytes never travel
    /// as events), and what they add up to ([`S3ShareApp::transfer_tally`]).
    pub(super) fn read_transfer_counters(&mut self) {
        let now = Instant::now();
        let mut started = self.backend.take_started();
        let active = &mut self.active_rows;
        if std::mem::take(&mut active.stale) {
            *active = ActiveRows::default();
            for (at, t) in self.transfers.iter().enumerate() {
                match t.state {
                    TransferState::Queued if !counter_started(t) => active.add(t),
                    TransferState::Queued | TransferState::Running => active.running.push(at),
                    _ => active.count_ended(t),
                }
            }
            // Started ones are all in `running` now.
            started.clear();
        }
        // Several attempts may report the same id: a row joins `running` once, and only once
        // its own counter started (a stale report of a cancelled attempt does not count).
        started.sort_unstable();
        started.dedup();
        for id in started {
            let Some(&at) = self.transfer_rows.get(&id) else {
                continue;
            };
            let t = &self.transfers[at];
            if t.state == TransferState::Queued && counter_started(t) {
                active.unqueue(t.total);
                active.running.push(at);
            }
        }
        let mut tally = TransferTally::default();
        let transfers = &mut self.transfers;
        let mut ended = Vec::new();
        active.running.retain(|&at| {
            let Some(t) = transfers.get_mut(at) else {
                return false;
            };
            t.read_counter(now);
            if !t.is_active() {
                ended.push(at);
                return false;
            }
            tally.active += 1;
            tally.done += t.done;
            tally.total += t.total;
            tally.speed += t.speed;
            true
        });
        for at in ended {
            active.count_ended(&transfers[at]);
        }
        tally.active += active.queued;
        tally.total += active.queued_bytes;
        tally.failed = active.failed;
        tally.cancelled = active.cancelled;
        tally.finished = active.finished;
        self.transfer_tally = tally;
    }

    /// The transfers' totals as of this frame's start.
    pub fn transfer_tally(&self) -> TransferTally {
        self.transfer_tally
    }

    /// Adds a transfer row, findable by id from then on.
    pub(super) fn add_transfer(&mut self, t: Transfer) {
        self.active_rows.add(&t);
        self.transfer_rows.insert(t.id, self.transfers.len());
        self.transfers.push(t);
    }

    fn transfer_mut(&mut self, id: TransferId) -> Option<&mut Transfer> {
        let &at = self.transfer_rows.get(&id)?;
        self.transfers.get_mut(at)
    }

    fn transfer(&self, id: TransferId) -> Option<&Transfer> {
        let &at = self.transfer_rows.get(&id)?;
        self.transfers.get(at)
    }

    /// Copies the links of every "Upload and copy link" batch whose files have all ended.
    fn copy_finished_batches(&mut self) {
        if self.link_batches.is_empty() {
            return;
        }
        let (transfers, rows) = (&self.transfers, &self.transfer_rows);
        let ended = |id: &TransferId| {
            rows.get(id)
                .and_then(|&at| transfers.get(at))
                .is_some_and(|t| {
                    // A finished upload counts once its final key is known (after "keep both").
                    !t.is_active() && (t.state != TransferState::Finished || t.uploaded.is_some())
                })
        };
        let (done, waiting): (Vec<LinkBatch>, Vec<LinkBatch>) =
            std::mem::take(&mut self.link_batches)
                .into_iter()
                .partition(|b| b.ids.iter().all(ended));
        self.link_batches = waiting;
        for batch in done {
            let rows: Vec<&Transfer> = batch
                .ids
                .iter()
                .filter_map(|id| self.transfer(*id))
                .collect();
            let keys: Vec<String> = rows
                .iter()
                .filter_map(|t| t.uploaded.as_ref().map(|(_, key)| key.clone()))
                .collect();
            let failed = rows
                .iter()
                .filter(|t| matches!(t.state, TransferState::Failed(_)))
                .count();
            if failed > 0 {
                self.toast_error(format!(
                    "{failed} file(s) could not be uploaded, so they have no link: see the transfers panel (Retry is there)."
                ));
            } else if keys.is_empty() {
                self.toast("Nothing was uploaded, so no link was copied.".into());
            }
            self.copy_links(batch.bucket, keys, batch.expires);
        }
    }

    /// An upload finished: its row can copy a link, and it shows in the folder being viewed
    /// without listing it again.
    pub(super) fn uploaded(&mut self, id: TransferId, bucket: String, key: String, size: u64) {
        if let Some(t) = self.transfer_mut(id) {
            t.uploaded = Some((bucket.clone(), key.clone()));
        }
        self.copy_finished_batches();
        let Some(place) = &self.place else { return };
        if place.bucket != bucket || !key.starts_with(&place.prefix) {
            return;
        }
        let rest = &key[place.prefix.len()..];
        let entry = match rest.split_once('/') {
            // A file in a sub-folder makes the sub-folder appear.
            Some((folder, _)) => Entry::new(
                format!("{}{folder}/", place.prefix),
                folder.to_owned(),
                true,
                0,
                None,
            ),
            None => Entry::new(
                key.clone(),
                rest.to_owned(),
                false,
                size,
                Some(SystemTime::now()),
            ),
        };
        self.listing.upsert(entry);
    }
}

/// A transfer error as the app shows it. The transfer library's messages end with advice for
/// the command line ("…; pass --overwrite to replace it"), which means nothing in a window;
/// the fact before it stays, and the app says what happened to the file instead.
fn without_cli_advice(error: String) -> String {
    match error.find("; pass --") {
        Some(at) => format!("{}; it was kept", &error[..at]),
        None => error,
    }
}

#[cfg(test)]
mod tests {
    use super::without_cli_advice;

    #[test]
    fn transfer_errors_never_cite_cli_flags() {
        assert_eq!(
            without_cli_advice(
                "will not overwrite /tmp/a.txt: the file exists; pass --overwrite to replace it"
                    .into()
            ),
            "will not overwrite /tmp/a.txt: the file exists; it was kept"
        );
        assert_eq!(without_cli_advice("timed out".into()), "timed out");
    }
}
