//! The app type, [`S3ShareApp`], and its `eframe::App` impl: what runs every frame.

use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::backend::{Backend, BackendConfig, ConnectionTarget, CustomEndpoint, TransferId};
use super::clipboard::Clipboard;
use super::edits::DeletePlan;
use super::model::{Listing, Place, Transfer};
use super::navigation::History;
use super::pickers::{DialogAnswer, PathPromptKind};
use super::preview::Preview;
use super::share::ShareDialog;
use super::toasts::Toast;
use super::transfers::{ConflictPrompt, LinkBatch, RetryInfo};
use super::{
    ConnectionState, QuitState, RelayStatus, Settings, SharedLinksPanel, browser_ui, dialogs_ui,
    quit, side_ui, transfers_ui,
};

/// The app: every piece of UI state, and the handles it sends work through.
///
/// Its actions live in the rooms beside this file (`navigation`, `transfers`, `share`, …); its
/// drawing in the `*_ui` modules.
pub struct S3ShareApp {
    /// Persistent settings.
    pub settings: Settings,
    pub(super) backend: Backend,
    pub(super) clipboard: Box<dyn Clipboard>,
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) dialogs: (mpsc::Sender<DialogAnswer>, mpsc::Receiver<DialogAnswer>),
    pub(super) repaint_ctx: egui::Context,

    /// The connection.
    pub connection: ConnectionState,
    /// AWS profiles found in the shared config files.
    pub profiles: Vec<String>,
    /// Why a connection failed, shown on its entry in the sidebar until it connects.
    pub connection_problems: HashMap<ConnectionTarget, String>,
    /// Credentials that stopped working, until a connection succeeds: the app offers to sign
    /// in again, reconnect, or switch connection.
    pub credentials_trouble: Option<super::connection::CredentialsTrouble>,
    /// Where each profile goes (endpoint or region), read once at start for the labels.
    pub profile_destinations: HashMap<String, crate::s3::ProfileDestination>,
    /// A failure of the connection under way falls back to the embedded store (at start).
    pub(super) fall_back_to_local: bool,
    /// Bucket names (or why they cannot be listed).
    pub buckets: Option<Result<Vec<String>, String>>,
    /// Why listing the buckets again failed, while the last good list stays shown (stale).
    pub buckets_failed: Option<String>,
    /// A bucket name being typed.
    pub bucket_input: String,
    /// Where the user is.
    pub place: Option<Place>,
    /// Where Back and Forward go.
    pub(super) history: History,
    /// The current folder's listing.
    pub listing: Listing,
    /// Every transfer of this session.
    pub transfers: Vec<Transfer>,
    /// Where each transfer's row is in `transfers`: events find their row without a scan.
    pub(super) transfer_rows: HashMap<TransferId, usize>,
    /// The rows that may be running (see `transfers.rs`).
    pub(super) active_rows: super::transfers::ActiveRows,
    /// What the transfers added up to at the start of this frame.
    pub(super) transfer_tally: super::transfers::TransferTally,
    pub(super) retry_info: HashMap<TransferId, RetryInfo>,
    /// Interrupted uploads found for this connection, to resume or discard.
    pub pending_uploads: Vec<super::PendingRow>,
    /// "Upload and copy link" uploads whose links are not copied yet.
    pub(super) link_batches: Vec<LinkBatch>,
    /// [`Command::MakeLinks`](super::backend::Command::MakeLinks) requests whose links go
    /// straight to the clipboard (no dialog).
    pub(super) link_copies: HashSet<u64>,
    /// An open conflict question.
    pub conflicts: Option<ConflictPrompt>,
    /// The share dialog.
    pub share: Option<ShareDialog>,
    /// A delete waiting for its confirmation.
    pub confirm_delete: Option<DeletePlan>,
    /// A new folder's name being typed.
    pub new_folder: Option<String>,
    /// The preview panel.
    pub preview: Option<Preview>,
    /// Where the relay is.
    pub relay: RelayStatus,
    /// The "Shared links" panel, when open.
    pub shared_links: Option<SharedLinksPanel>,
    /// Toasts.
    pub toasts: Vec<Toast>,
    /// The "add endpoint" form.
    pub endpoint_form: Option<CustomEndpoint>,
    /// A path typed instead of a native dialog.
    pub path_prompt: Option<(PathPromptKind, String)>,
    /// A typed download path that names a file which exists: replace it, keep both, or not.
    pub replace_prompt: Option<super::transfers::ReplacePrompt>,
    /// Whether the window is on its way out (close requested while transfers run).
    pub quit: QuitState,
    pub(super) focus_filter: bool,
    pub(super) first_frame_shown: bool,
    /// Where the embedded store keeps its objects (shown to say where files go).
    pub(super) store_dir: Option<std::path::PathBuf>,
    /// Set when the system asked the process to end (SIGTERM, SIGHUP: a logout, `kill`).
    pub(super) terminate: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Set by `main` first thing, so the start-up time to the first frame can be reported
/// (`S3SHARE_STARTUP_PROBE=1` prints it and closes the window: used by benchmarks).
pub static PROCESS_START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

impl S3ShareApp {
    /// Creates the app: restores settings and connects to the last connection (or the
    /// embedded store when nothing is configured).
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        runtime: tokio::runtime::Handle,
        config: BackendConfig,
        clipboard: Box<dyn Clipboard>,
    ) -> Self {
        let store_dir = config
            .store_paths
            .clone()
            .or_else(crate::store::StorePaths::for_user)
            .map(|p| p.data_dir);
        let settings: Settings = cc
            .storage
            .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
            .unwrap_or_default();
        cc.egui_ctx
            .options_mut(|o| o.theme_preference = egui::ThemePreference::System);
        style(&cc.egui_ctx);
        let ctx = cc.egui_ctx.clone();
        let repaint = ctx.clone();
        let backend = Backend::start(&runtime, config, move || repaint.request_repaint());
        #[expect(
            clippy::disallowed_methods,
            reason = "one answer per native dialog the user opened, drained every frame; the \
                      senders are runtime tasks, where a full bounded channel would block a worker"
        )]
        let dialogs = mpsc::channel();
        let mut app = Self {
            listing: Listing::sorted_by(settings.sort),
            settings,
            backend,
            clipboard,
            runtime,
            dialogs,
            repaint_ctx: ctx,
            connection: ConnectionState::Idle,
            profiles: crate::s3::aws_profiles(),
            connection_problems: HashMap::new(),
            credentials_trouble: None,
            profile_destinations: profile_destinations(),
            fall_back_to_local: false,
            buckets: None,
            buckets_failed: None,
            bucket_input: String::new(),
            place: None,
            history: History::default(),
            transfers: Vec::new(),
            transfer_rows: HashMap::new(),
            active_rows: Default::default(),
            transfer_tally: Default::default(),
            retry_info: HashMap::new(),
            link_batches: Vec::new(),
            pending_uploads: Vec::new(),
            link_copies: HashSet::new(),
            conflicts: None,
            share: None,
            confirm_delete: None,
            new_folder: None,
            preview: None,
            relay: RelayStatus::Off,
            shared_links: None,
            toasts: Vec::new(),
            endpoint_form: None,
            path_prompt: None,
            replace_prompt: None,
            quit: QuitState::Running,
            focus_filter: false,
            first_frame_shown: false,
            terminate: Default::default(),
            store_dir,
        };
        let target = app.settings.last_target.clone().unwrap_or_else(|| {
            crate::s3::first_run_profile()
                .map_or(ConnectionTarget::Local, ConnectionTarget::Profile)
        });
        app.connect_at_start(target);
        if app.settings.relay_on {
            // The worker starts it once the connection is made.
            app.set_relay(true);
        }
        app
    }

    /// The most worker events that waited for one frame so far (benchmarks report it: the
    /// queue between the worker and the UI stays short however many transfers run).
    pub fn event_queue_peak(&self) -> usize {
        self.backend.queue_peak()
    }

    /// Whether a text field has keyboard focus (then shortcuts stay out of the way).
    pub(super) fn typing(ctx: &egui::Context) -> bool {
        ctx.egui_wants_keyboard_input()
    }
}

impl eframe::App for S3ShareApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.apply_events(ctx);
        self.read_transfer_counters();
        if self
            .terminate
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            self.quit_now(ctx);
        }
        self.handle_close_request(ctx);
        self.handle_drops(ctx);
        // Keep speeds, ETAs and toasts moving without a repaint per byte.
        if self.transfer_tally.active > 0 || !self.toasts.is_empty() {
            ctx.request_repaint_after(Duration::from_millis(250));
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.app_ui(ui);
        if !std::mem::replace(&mut self.first_frame_shown, true)
            && std::env::var_os("S3SHARE_STARTUP_PROBE").is_some()
            && let Some(start) = PROCESS_START.get()
        {
            println!(
                "first frame after {:.1} ms",
                start.elapsed().as_secs_f64() * 1000.0
            );
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        self.settings.sort = self.listing.sort;
        eframe::set_value(storage, eframe::APP_KEY, &self.settings);
    }
}

impl S3ShareApp {
    /// The whole window.
    pub fn app_ui(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("top_bar").show(ui, |ui| side_ui::top_bar_ui(self, ui));
        egui::Panel::bottom("status_bar").show(ui, |ui| browser_ui::status_bar_ui(self, ui));
        if !self.transfers.is_empty() {
            egui::Panel::bottom("transfers")
                .resizable(true)
                .default_size(180.0)
                .show(ui, |ui| transfers_ui::transfers_ui(self, ui));
        }
        egui::Panel::left("connections")
            .resizable(true)
            .default_size(230.0)
            .show(ui, |ui| side_ui::connections_ui(self, ui));
        if self.preview.is_some() {
            egui::Panel::right("preview")
                .resizable(true)
                .default_size(300.0)
                .show(ui, |ui| side_ui::preview_ui(self, ui));
        }
        egui::CentralPanel::default_margins().show(ui, |ui| browser_ui::browser_ui(self, ui));
        dialogs_ui::dialogs_ui(self, ui.ctx());
        super::relay_ui::shared_links_ui(self, ui.ctx());
        super::resume_ui::pending_uploads_ui(self, ui.ctx());
        dialogs_ui::drop_zone_ui(self, ui.ctx());
        dialogs_ui::toasts_ui(self, ui.ctx());
        quit::quit_ui(self, ui.ctx());
    }
}

/// Calm spacing for the whole app.
fn style(ctx: &egui::Context) {
    ctx.global_style_mut(|s| {
        s.spacing.item_spacing = egui::vec2(8.0, 6.0);
        s.spacing.button_padding = egui::vec2(8.0, 4.0);
        s.spacing.interact_size.y = 24.0;
    });
}

/// Where each AWS profile goes, for the sidebar labels.
fn profile_destinations() -> HashMap<String, crate::s3::ProfileDestination> {
    crate::s3::aws_profiles()
        .into_iter()
        .map(|p| {
            let d = crate::s3::profile_destination(&p);
            (p, d)
        })
        .collect()
}
