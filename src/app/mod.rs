//! The desktop app: browse a bucket, drop files to upload, copy expiring links.
//!
//! Nothing here talks to S3 or the disk: every such request goes to the [`backend`] as a
//! command and comes back as an event, so no frame ever waits. The rooms:
//!
//! - `s3share_app.rs`: the app type [`S3ShareApp`] and its `eframe::App` impl (each frame).
//! - `events.rs`: the worker's answers, applied once per frame.
//! - `connection.rs`: which S3 the app talks to; `settings.rs`: what survives a restart.
//! - `navigation.rs`: opening folders, Back / Forward (the `History` type), Up, refresh.
//! - `transfers.rs`: where a dropped or picked file goes (uploads, conflicts), downloads,
//!   cancel and retry; `pickers.rs`: native file dialogs or a typed path.
//! - `share.rs`: links and their honest expiry, the share dialog's state, the QR code.
//! - `relay.rs`: the relay switch and the "Shared links" panel (`relay_ui.rs` draws them).
//! - `edits.rs`: delete, new folder; `preview.rs`: the preview panel's state;
//!   `toasts.rs`: short messages; `quit.rs`: closing while transfers run; `resume.rs`:
//!   interrupted uploads found at start, resumed or discarded.
//! - `*_ui.rs`: drawing, each a small function over `&mut Ui`; [`model`]: the listing and
//!   transfer rows.
//! - [`backend`]: the worker on the tokio runtime (`protocol`, `worker`, `preview`).

pub mod backend;
pub mod clipboard;
pub mod model;

mod browser_ui;
mod connection;
mod credentials_ui;
mod dialogs_ui;
mod edits;
mod events;
mod navigation;
mod pickers;
mod preview;
mod quit;
mod relay;
mod relay_ui;
mod resume;
mod resume_ui;
mod s3share_app;
mod settings;
mod share;
mod side_ui;
mod toasts;
mod transfers;
mod transfers_ui;

pub use connection::{ConnectionState, CredentialsTrouble};
pub use edits::DeletePlan;
pub use navigation::History;
pub use pickers::PathPromptKind;
pub use preview::Preview;
pub use quit::QuitState;
pub use relay::{RELAY_EXPIRY_CHOICES, RelayStatus, SharedLinksPanel};
pub use resume::PendingRow;
pub use s3share_app::{PROCESS_START, S3ShareApp};
pub use settings::Settings;
pub use share::{EXPIRY_CHOICES, ShareDialog};
pub use toasts::Toast;
pub use transfers::{ConflictPrompt, ReplacePrompt, TransferTally};

use backend::BackendConfig;

/// Runs the desktop app on `runtime` until its window closes.
pub fn run_desktop(runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let handle = runtime.handle().clone();
    let icon = eframe::icon_data::from_png_bytes(include_bytes!("../../assets/icon-256.png")).ok();
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("s3share")
        .with_app_id("s3share")
        .with_inner_size([1100.0, 700.0])
        .with_min_inner_size([640.0, 400.0])
        .with_drag_and_drop(true);
    if let Some(icon) = icon {
        viewport = viewport.with_icon(icon);
    }
    let options = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Glow,
        persist_window: true,
        ..Default::default()
    };
    eframe::run_native(
        "s3share",
        options,
        Box::new(move |cc| {
            let mut app = S3ShareApp::new(
                cc,
                handle,
                BackendConfig::default(),
                Box::new(clipboard::SystemClipboard::default()),
            );
            app.quit_on_terminate();
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}
