//! What survives a restart: eframe persistence stores [`Settings`]; secrets never go here.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::backend::{AfterUpload, ConnectionTarget, CustomEndpoint};
use super::model::{Place, SortBy};

/// What survives a restart (eframe persistence). Secrets never go here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The connection used last.
    pub last_target: Option<ConnectionTarget>,
    /// The bucket and folder open last.
    pub last_place: Option<Place>,
    /// Endpoints the user added.
    pub custom_endpoints: Vec<CustomEndpoint>,
    /// The link lifetime chosen last, in seconds: in the toolbar or the share dialog's list.
    /// Every link copied at once (Ctrl+C, "Upload and copy link", a drop's links, a row's
    /// "Copy link") has it, and the share dialog starts from it. (There were two, and the
    /// toolbar's "link: 15 minutes" did not apply to Ctrl+C; settings saved then keep an
    /// `upload_link_expiry_secs`, now ignored.)
    pub link_expiry_secs: u64,
    /// Sort column and direction.
    pub sort: Option<(SortBy, bool)>,
    /// What a drop does: upload only, or upload and copy a link (the choice made last).
    pub drop_copies_link: bool,
    /// Whether the relay runs (the switch in the sidebar; off until turned on).
    pub relay_on: bool,
    /// Where the relay listens (loopback by default: only this computer reaches it).
    pub relay_listen: String,
}

impl Settings {
    /// What to do after an upload started by a drop.
    pub fn after_drop(&self) -> AfterUpload {
        if self.drop_copies_link {
            self.after_upload_with_link()
        } else {
            AfterUpload::Nothing
        }
    }

    /// "Upload and copy link", with the remembered lifetime.
    pub fn after_upload_with_link(&self) -> AfterUpload {
        AfterUpload::CopyLinks {
            expires: Duration::from_secs(self.link_expiry_secs),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            last_target: None,
            last_place: None,
            custom_endpoints: Vec::new(),
            link_expiry_secs: 86400,
            sort: None,
            drop_copies_link: false,
            relay_on: false,
            relay_listen: crate::relay::DEFAULT_LISTEN.to_owned(),
        }
    }
}
