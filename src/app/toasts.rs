//! Short messages in a corner: what just happened, or what went wrong.

use std::time::{Duration, Instant};

use super::S3ShareApp;

/// A toast message.
#[derive(Debug, Clone)]
pub struct Toast {
    /// Text.
    pub text: String,
    /// Whether it reports a problem.
    pub error: bool,
    /// When it disappears.
    pub until: Instant,
}

impl S3ShareApp {
    /// Shows `text` for a few seconds.
    pub(super) fn toast(&mut self, text: String) {
        self.toasts.push(Toast {
            text,
            error: false,
            until: Instant::now() + Duration::from_secs(4),
        });
    }

    /// Shows a problem, for longer.
    pub(super) fn toast_error(&mut self, text: String) {
        self.toasts.push(Toast {
            text,
            error: true,
            until: Instant::now() + Duration::from_secs(8),
        });
    }

    /// Forgets the toasts whose time is up.
    pub(super) fn expire_toasts(&mut self) {
        let now = Instant::now();
        self.toasts.retain(|t| t.until > now);
    }
}
