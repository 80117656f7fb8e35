//! Closing the window while transfers run: ask first, then stop them cleanly.
//!
//! Closing the window ends the process, and with it every task on the runtime: an upload
//! stopped that way leaves its multipart upload open (costing storage) and a download leaves
//! its partial file. So a close request with transfers running is held back, the user is
//! asked, and on "Cancel transfers and quit" the worker cancels them (aborting multipart
//! uploads, removing partial files) and says when it is done; only then does the window close.

use std::time::{Duration, Instant};

use egui::{Context, RichText};

use super::S3ShareApp;
use super::backend::Command;
use super::model::Transfer;

/// Where the app is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QuitState {
    /// Not closing.
    #[default]
    Running,
    /// A close was requested while transfers run; the user is being asked.
    Asking,
    /// The user chose to quit: transfers are being cancelled and cleaned up.
    Stopping {
        /// When stopping began (the dialog shows progress, and gives up waiting after a while).
        since: Instant,
    },
    /// Everything is stopped: the window may close.
    Closing,
}

/// How long the window waits for cancelled transfers to clean up before closing anyway: an
/// abort that cannot reach the server must not keep the window open forever.
const CLEANUP_GRACE: Duration = Duration::from_secs(20);

impl S3ShareApp {
    /// Holds back a close request while transfers run (called every frame, before drawing).
    pub(super) fn handle_close_request(&mut self, ctx: &Context) {
        if let QuitState::Stopping { since } = self.quit
            && since.elapsed() > CLEANUP_GRACE
        {
            tracing::warn!("transfers did not stop in time; closing anyway");
            self.quit = QuitState::Closing;
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
        if !ctx.input(|i| i.viewport().close_requested()) {
            return;
        }
        match self.quit {
            QuitState::Closing => {}
            _ if !self.transfers.iter().any(Transfer::is_active) => {
                self.quit = QuitState::Closing;
            }
            QuitState::Running => {
                ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
                self.quit = QuitState::Asking;
            }
            QuitState::Asking | QuitState::Stopping { .. } => {
                ctx.send_viewport_cmd(egui::ViewportCommand::CancelClose);
            }
        }
    }

    /// "Cancel transfers and quit": the worker cancels everything, then the window closes.
    pub fn confirm_quit(&mut self) {
        self.quit = QuitState::Stopping {
            since: Instant::now(),
        };
        self.backend.send(Command::StopAll);
    }

    /// What a request from the system to end does (see [`S3ShareApp::quit_on_terminate`]):
    /// quit without asking, as nobody may be there to answer (a logout), but as "Cancel
    /// transfers and quit" does: transfers are stopped cleanly, and the window closes the
    /// normal way, so the settings (connection, folder, window size) are saved. Killed by the
    /// signal's default instead, the process lost them and left uploads open.
    pub fn quit_now(&mut self, ctx: &Context) {
        match self.quit {
            QuitState::Stopping { .. } | QuitState::Closing => {}
            _ if self.transfers.iter().any(Transfer::is_active) => self.confirm_quit(),
            _ => {
                self.quit = QuitState::Closing;
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    /// Turns SIGTERM and SIGHUP into [`S3ShareApp::quit_now`] (the desktop app's process only:
    /// a library user keeps the signals' defaults). A second one ends the process at once.
    pub fn quit_on_terminate(&mut self) {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (flag, ctx) = (self.terminate.clone(), self.repaint_ctx.clone());
            self.runtime.spawn(async move {
                let (Ok(mut term), Ok(mut hup)) = (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
                tracing::info!("asked to end: closing the window");
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
                ctx.request_repaint();
                tokio::select! {
                    _ = term.recv() => {}
                    _ = hup.recv() => {}
                }
                std::process::exit(143);
            });
        }
    }

    /// "Keep transferring": the close request is forgotten.
    pub fn keep_running(&mut self) {
        self.quit = QuitState::Running;
    }

    /// The worker has stopped every transfer: close the window if the user asked to quit.
    pub(super) fn all_transfers_stopped(&mut self, ctx: &Context) {
        if matches!(self.quit, QuitState::Stopping { .. }) {
            self.quit = QuitState::Closing;
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

/// The question, and the wait while transfers are cleaned up.
pub(super) fn quit_ui(app: &mut S3ShareApp, ctx: &Context) {
    let running = app.transfer_tally().active;
    match app.quit {
        QuitState::Asking => {
            let mut answer = None;
            let dismissed = super::dialogs_ui::modal(ctx, "quit", |ui| {
                ui.heading("Transfers are still running");
                ui.label(format!(
                    "{running} transfer{} will be cancelled if you quit now.",
                    if running == 1 { "" } else { "s" }
                ));
                ui.label(
                    RichText::new(
                        "Unfinished uploads are removed from the server and partly \
                         downloaded files are deleted; nothing half-written is left behind.",
                    )
                    .weak(),
                );
                ui.add_space(8.0);
                ui.horizontal(|ui| {
                    if ui.button("Keep transferring").clicked() {
                        answer = Some(false);
                    }
                    if ui.button("Cancel transfers and quit").clicked() {
                        answer = Some(true);
                    }
                });
            });
            match answer {
                Some(true) => app.confirm_quit(),
                Some(false) => app.keep_running(),
                None if dismissed => app.keep_running(),
                None => {}
            }
        }
        QuitState::Stopping { .. } => {
            super::dialogs_ui::modal(ctx, "quitting", |ui| {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Cancelling transfers and cleaning up…");
                });
            });
        }
        QuitState::Running | QuitState::Closing => {}
    }
}
