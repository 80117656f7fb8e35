//! Moving around: opening folders, Back / Forward / Up, refreshing, and the [`History`] behind it.

use super::S3ShareApp;
use super::backend::Command;
use super::model::{Entry, Place};

/// Where Back and Forward go, as in a web browser.
#[derive(Debug, Default)]
pub struct History {
    back: Vec<Place>,
    forward: Vec<Place>,
}

impl History {
    /// Records leaving `from` for a new place: a new path forgets the old way forward.
    pub fn leave(&mut self, from: Place) {
        self.back.push(from);
        self.forward.clear();
    }

    /// The place Back goes to, if any; `current` (taken) becomes the way forward.
    pub fn back(&mut self, current: &mut Option<Place>) -> Option<Place> {
        let to = self.back.pop()?;
        if let Some(c) = current.take() {
            self.forward.push(c);
        }
        Some(to)
    }

    /// The place Forward goes to, if any; `current` (taken) becomes the way back.
    pub fn forward(&mut self, current: &mut Option<Place>) -> Option<Place> {
        let to = self.forward.pop()?;
        if let Some(c) = current.take() {
            self.back.push(c);
        }
        Some(to)
    }

    /// Forgets both ways (a new connection starts a new history).
    pub fn clear(&mut self) {
        self.back.clear();
        self.forward.clear();
    }

    /// Whether Back has somewhere to go.
    pub fn can_go_back(&self) -> bool {
        !self.back.is_empty()
    }

    /// Whether Forward has somewhere to go.
    pub fn can_go_forward(&self) -> bool {
        !self.forward.is_empty()
    }
}

impl S3ShareApp {
    /// Opens `place`, remembering where we were.
    pub fn open(&mut self, place: Place) {
        if let Some(current) = self.place.take()
            && current != place
        {
            self.history.leave(current);
        }
        self.show(place);
    }

    /// Lists `place` and makes it the current one (history is the caller's business).
    fn show(&mut self, place: Place) {
        let request = self.backend.next_id();
        self.listing.begin(request, &place);
        // A filter belongs to the folder it was typed in.
        self.listing.filter.clear();
        self.preview = None;
        self.backend.send(Command::List {
            request,
            bucket: place.bucket.clone(),
            prefix: place.prefix.clone(),
        });
        self.settings.last_place = Some(place.clone());
        let title = format!("s3share — {}/{}", place.bucket, place.prefix);
        self.repaint_ctx
            .send_viewport_cmd(egui::ViewportCommand::Title(title));
        self.place = Some(place);
    }

    /// Back in history.
    pub fn go_back(&mut self) {
        if let Some(p) = self.history.back(&mut self.place) {
            self.show(p);
        }
    }

    /// Forward in history.
    pub fn go_forward(&mut self) {
        if let Some(p) = self.history.forward(&mut self.place) {
            self.show(p);
        }
    }

    /// To the parent folder.
    pub fn go_up(&mut self) {
        if let Some(parent) = self.place.as_ref().and_then(Place::parent) {
            self.open(parent);
        }
    }

    /// Lists the current folder again.
    pub fn refresh(&mut self) {
        if let Some(p) = self.place.clone() {
            // The same folder again: what the user chose in it stays (F5 closed the preview
            // and lost the selection and the filter). Selected keys that are gone since are
            // simply not shown.
            let selected = std::mem::take(&mut self.listing.selected);
            let filter = std::mem::take(&mut self.listing.filter);
            let preview = self.preview.take();
            self.show(p);
            self.listing.selected = selected;
            self.listing.filter = filter;
            self.preview = preview;
        }
    }

    /// Opens a row: a folder is entered, a file is previewed.
    pub fn activate(&mut self, entry: &Entry) {
        let Some(place) = &self.place else { return };
        if entry.is_folder {
            self.open(Place {
                bucket: place.bucket.clone(),
                prefix: entry.key.clone(),
            });
        } else {
            self.load_preview(entry.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(prefix: &str) -> Option<Place> {
        Some(Place {
            bucket: "b".into(),
            prefix: prefix.into(),
        })
    }

    #[test]
    fn history_goes_back_and_forward_like_a_browser() {
        let mut h = History::default();
        assert!(!h.can_go_back() && !h.can_go_forward());
        h.leave(at("").unwrap());
        h.leave(at("a/").unwrap());
        let mut current = at("a/b/");
        assert_eq!(h.back(&mut current), at("a/"));
        assert_eq!(current, None, "the current place was taken");
        assert!(h.can_go_forward());
        let mut current = at("a/");
        assert_eq!(h.forward(&mut current), at("a/b/"));
        // A new path forgets the way forward.
        let mut current = at("a/");
        h.back(&mut current);
        h.leave(at("").unwrap());
        assert!(!h.can_go_forward());
        let mut nowhere = None;
        assert_eq!(History::default().back(&mut nowhere), None);
    }
}
