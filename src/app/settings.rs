//! What survives a restart: eframe persistence stores [`Settings`]; secrets never go here.

use serde::{Deserialize, Serialize};

use super::backend::{ConnectionTarget, CustomEndpoint};
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
    /// The link lifetime chosen last, in seconds.
    pub link_expiry_secs: u64,
    /// Sort column and direction.
    pub sort: Option<(SortBy, bool)>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            last_target: None,
            last_place: None,
            custom_endpoints: Vec::new(),
            link_expiry_secs: 3600,
            sort: None,
        }
    }
}
