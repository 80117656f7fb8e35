//! The app's state, apart from any drawing: what is listed, how it is sorted and filtered,
//! what is selected, where navigation goes back to, and how each transfer is doing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::backend::{TransferId, TransferProgress};
use crate::s3::{ListPage, ObjectEntry};

/// One row of the file table.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Full key (folders end with `/`).
    pub key: String,
    /// The last segment, shown in the table.
    pub name: String,
    /// Folder or file.
    pub is_folder: bool,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// Last modified (files only).
    pub modified: Option<SystemTime>,
    /// `name` in lower case, computed once: sorting and filtering 100,000 rows must not
    /// allocate per comparison.
    lower: String,
}

impl Entry {
    /// A row; `name` is what the table shows.
    pub fn new(
        key: String,
        name: String,
        is_folder: bool,
        size: u64,
        modified: Option<SystemTime>,
    ) -> Self {
        let lower = name.to_lowercase();
        Self {
            key,
            name,
            is_folder,
            size,
            modified,
            lower,
        }
    }

    fn folder(prefix: &str, key: String) -> Self {
        let name = key[prefix.len()..].trim_end_matches('/').to_owned();
        Self::new(key, name, true, 0, None)
    }

    /// A file row for `o` listed under `prefix`.
    pub fn file(prefix: &str, o: &ObjectEntry) -> Self {
        let name = o.key.strip_prefix(prefix).unwrap_or(&o.key).to_owned();
        Self::new(o.key.clone(), name, false, o.size, o.modified)
    }
}

/// Table columns that sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortBy {
    /// By name (natural enough: case-insensitive).
    Name,
    /// By size.
    Size,
    /// By modification time.
    Modified,
}

/// Where the user is: a bucket and a folder in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Place {
    /// Bucket name.
    pub bucket: String,
    /// Folder prefix ("" or ending with `/`).
    pub prefix: String,
}

impl Place {
    /// The parent folder, if any.
    pub fn parent(&self) -> Option<Place> {
        if self.prefix.is_empty() {
            return None;
        }
        let trimmed = self.prefix.trim_end_matches('/');
        let parent = trimmed
            .rfind('/')
            .map_or(String::new(), |i| trimmed[..=i].to_owned());
        Some(Place {
            bucket: self.bucket.clone(),
            prefix: parent,
        })
    }

    /// Breadcrumbs: (label, place) from the bucket down.
    pub fn crumbs(&self) -> Vec<(String, Place)> {
        let mut out = vec![(
            self.bucket.clone(),
            Place {
                bucket: self.bucket.clone(),
                prefix: String::new(),
            },
        )];
        let mut acc = String::new();
        for part in self.prefix.split_terminator('/') {
            acc.push_str(part);
            acc.push('/');
            out.push((
                part.to_owned(),
                Place {
                    bucket: self.bucket.clone(),
                    prefix: acc.clone(),
                },
            ));
        }
        out
    }
}

/// The listing of the current folder and how it is shown.
#[derive(Debug, Default)]
pub struct Listing {
    /// Every entry received so far, unsorted.
    entries: Vec<Entry>,
    /// Where each key is in `entries`: a finished upload or a deleted key finds its row
    /// without a scan (10,000 of them must not cost 10,000 scans).
    index: HashMap<String, usize>,
    /// Indices into `entries`: filtered and sorted, what the table shows.
    visible: Vec<usize>,
    /// Keys of the selected entries.
    pub selected: BTreeSet<String>,
    /// Anchor of shift-click range selection (an index into `visible`).
    pub anchor: Option<usize>,
    /// The row the keyboard is on: the last one clicked or moved to (the anchor stays where
    /// a Shift range began).
    pub cursor: Option<usize>,
    /// A row to bring into view at the next frame (the keyboard moved to it).
    pub scroll_to: Option<usize>,
    /// Filter text (case-insensitive substring of the name).
    pub filter: String,
    /// Sort column and direction.
    pub sort: Option<(SortBy, bool)>,
    /// The request whose pages are accepted; older answers are dropped.
    pub request: u64,
    /// Whether more pages are on their way.
    pub loading: bool,
    /// Why the listing failed.
    pub error: Option<String>,
    /// The listing found that its bucket does not exist: nothing can be uploaded into it.
    pub missing_bucket: Option<String>,
    /// The rows shown are not what the folder holds now: the last good listing kept after a
    /// refresh failed (or the pages that arrived before a failure).
    pub stale: bool,
    /// When the rows shown were listed completely (what "stale" dates from).
    pub listed_at: Option<SystemTime>,
    /// The folder these rows belong to.
    shown: Option<Place>,
    /// The last complete listing of `shown`, kept while it is listed again, so a failure
    /// brings it back instead of an empty table.
    last_good: Option<(Vec<Entry>, Option<SystemTime>)>,
}

impl Listing {
    /// An empty listing with a sort order.
    pub fn sorted_by(sort: Option<(SortBy, bool)>) -> Self {
        Self {
            sort,
            ..Default::default()
        }
    }

    /// Starts listing `place` under `request`. Listing the folder already shown again (a
    /// refresh) keeps its last complete rows aside, to bring back if this listing fails.
    pub fn begin(&mut self, request: u64, place: &Place) {
        let same = self.shown.as_ref() == Some(place);
        let good = same && !self.loading && (self.error.is_none() || self.stale);
        let kept = if good {
            Some((std::mem::take(&mut self.entries), self.listed_at))
        } else if same {
            self.last_good.take()
        } else {
            None
        };
        self.reset(request);
        self.last_good = kept;
        self.shown = Some(place.clone());
    }

    /// The listing is complete: its rows are the folder's.
    pub fn done(&mut self) {
        self.loading = false;
        self.stale = false;
        self.last_good = None;
        self.listed_at = Some(SystemTime::now());
    }

    /// The listing failed: the last complete rows come back, marked stale; without any, the
    /// pages that arrived stay (also stale). Either way the error is shown, never "empty".
    pub fn failed(&mut self, error: String) {
        self.loading = false;
        self.error = Some(error);
        if let Some((entries, at)) = self.last_good.take() {
            self.entries = entries;
            self.reindex();
            self.listed_at = at;
            self.refresh();
        }
        self.stale = !self.entries.is_empty();
    }

    /// Forgets everything for a new listing tagged `request`.
    pub fn reset(&mut self, request: u64) {
        self.stale = false;
        self.missing_bucket = None;
        self.listed_at = None;
        self.shown = None;
        self.last_good = None;
        self.entries.clear();
        self.index.clear();
        self.visible.clear();
        self.selected.clear();
        self.anchor = None;
        self.cursor = None;
        self.request = request;
        self.loading = true;
        self.error = None;
    }

    /// Adds a page of the listing of `prefix`: the page is sorted on its own and merged into
    /// the rows shown, so each page costs O(rows), not a full sort.
    pub fn add_page(&mut self, prefix: &str, page: ListPage) {
        let start = self.entries.len();
        self.entries
            .extend(page.folders.into_iter().map(|f| Entry::folder(prefix, f)));
        self.entries.extend(
            page.objects
                .iter()
                .filter(|o| o.key != prefix)
                .map(|o| Entry::file(prefix, o)),
        );
        for (i, e) in self.entries.iter().enumerate().skip(start) {
            self.index.insert(e.key.clone(), i);
        }
        let needle = self.filter.to_lowercase();
        let mut fresh: Vec<usize> = (start..self.entries.len())
            .filter(|&i| self.entries[i].lower.contains(&needle))
            .collect();
        fresh.sort_by(|&a, &b| self.compare(a, b));
        let mut merged = Vec::with_capacity(self.visible.len() + fresh.len());
        let (mut old, mut new) = (self.visible.iter().peekable(), fresh.iter().peekable());
        while let (Some(&&a), Some(&&b)) = (old.peek(), new.peek()) {
            if self.compare(a, b) == std::cmp::Ordering::Greater {
                merged.push(b);
                new.next();
            } else {
                merged.push(a);
                old.next();
            }
        }
        merged.extend(old);
        merged.extend(new);
        self.visible = merged;
    }

    /// Adds or replaces one entry (a finished upload, a new folder): found by key and put in
    /// place by binary search, never a scan or a full sort.
    pub fn upsert(&mut self, entry: Entry) {
        let i = match self.index.get(&entry.key) {
            Some(&i) if self.entries[i] == entry => {
                // A folder row made again by each file uploaded into it: nothing changes.
                return;
            }
            Some(&i) => {
                if let Some(at) = self.visible_position(i) {
                    self.visible.remove(at);
                }
                self.entries[i] = entry;
                i
            }
            None => {
                self.index.insert(entry.key.clone(), self.entries.len());
                self.entries.push(entry);
                self.entries.len() - 1
            }
        };
        if self.entries[i].lower.contains(&self.filter.to_lowercase()) {
            let at = self
                .visible
                .partition_point(|&v| self.compare(v, i) != std::cmp::Ordering::Greater);
            self.visible.insert(at, i);
        }
    }

    /// Where entry `i` is among the rows shown: a binary search to the rows that sort equal to
    /// it, then a look among those.
    fn visible_position(&self, i: usize) -> Option<usize> {
        let from = self
            .visible
            .partition_point(|&v| self.compare(v, i) == std::cmp::Ordering::Less);
        self.visible[from..]
            .iter()
            .take_while(|&&v| self.compare(v, i) == std::cmp::Ordering::Equal)
            .position(|&v| v == i)
            .map(|p| from + p)
    }

    /// Removes entries by key: one pass over the rows however many keys go (deleting 10,000
    /// keys is not 10,000 scans).
    pub fn remove(&mut self, keys: &[String]) {
        let gone: HashSet<usize> = keys
            .iter()
            .filter_map(|k| self.index.get(k))
            .copied()
            .collect();
        for k in keys {
            self.selected.remove(k);
        }
        if gone.is_empty() {
            return;
        }
        let mut i = 0;
        self.entries.retain(|_| {
            i += 1;
            !gone.contains(&(i - 1))
        });
        self.reindex();
        self.refresh();
    }

    /// The row of `key`, shown or filtered out.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.index.get(key).map(|&i| &self.entries[i])
    }

    fn reindex(&mut self) {
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.key.clone(), i))
            .collect();
    }

    /// Re-applies filter and sort; folders always come first.
    pub fn refresh(&mut self) {
        let needle = self.filter.to_lowercase();
        let mut visible: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].lower.contains(&needle))
            .collect();
        visible.sort_by(|&a, &b| self.compare(a, b));
        self.visible = visible;
    }

    /// The table order of entries `a` and `b`: folders first, then the chosen column.
    fn compare(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let (by, ascending) = self.sort.unwrap_or((SortBy::Name, true));
        let (a, b) = (&self.entries[a], &self.entries[b]);
        let order = match by {
            SortBy::Name => natural_cmp(&a.lower, &b.lower).then_with(|| a.name.cmp(&b.name)),
            SortBy::Size => a.size.cmp(&b.size),
            SortBy::Modified => a.modified.cmp(&b.modified),
        };
        b.is_folder
            .cmp(&a.is_folder)
            .then(if ascending { order } else { order.reverse() })
    }

    /// Number of rows shown.
    pub fn len(&self) -> usize {
        self.visible.len()
    }

    /// Whether no rows are shown.
    pub fn is_empty(&self) -> bool {
        self.visible.is_empty()
    }

    /// Row `i` as shown.
    pub fn row(&self, i: usize) -> &Entry {
        &self.entries[self.visible[i]]
    }

    /// Every entry, shown or filtered out.
    pub fn all(&self) -> &[Entry] {
        &self.entries
    }

    /// The selected entries, in table order.
    pub fn selection(&self) -> Vec<&Entry> {
        self.visible
            .iter()
            .map(|&i| &self.entries[i])
            .filter(|e| self.selected.contains(&e.key))
            .collect()
    }

    /// Keys of the selected files (folders left out), in table order.
    pub fn selected_files(&self) -> Vec<String> {
        self.selection()
            .into_iter()
            .filter(|e| !e.is_folder)
            .map(|e| e.key.clone())
            .collect()
    }

    /// Clicking row `i`: alone, with Ctrl (toggle) or with Shift (range from the anchor).
    pub fn click(&mut self, i: usize, ctrl: bool, shift: bool) {
        let key = self.row(i).key.clone();
        self.cursor = Some(i);
        match (shift, self.anchor) {
            (true, Some(anchor)) => {
                if !ctrl {
                    self.selected.clear();
                }
                let (lo, hi) = if anchor <= i {
                    (anchor, i)
                } else {
                    (i, anchor)
                };
                for j in lo..=hi.min(self.len().saturating_sub(1)) {
                    let k = self.row(j).key.clone();
                    self.selected.insert(k);
                }
            }
            _ if ctrl => {
                if !self.selected.remove(&key) {
                    self.selected.insert(key);
                }
                self.anchor = Some(i);
            }
            _ => {
                self.selected.clear();
                self.selected.insert(key);
                self.anchor = Some(i);
            }
        }
    }

    /// Moves the keyboard's row to `i` (clamped to the rows), extending the selection from
    /// the anchor with `extend` (Shift), and asks for it to be brought into view.
    pub fn move_to(&mut self, i: usize, extend: bool) {
        if self.is_empty() {
            return;
        }
        let i = i.min(self.len() - 1);
        self.click(i, false, extend && self.anchor.is_some());
        self.scroll_to = Some(i);
    }

    /// Selects every row shown.
    pub fn select_all(&mut self) {
        self.selected = self
            .visible
            .iter()
            .map(|&i| self.entries[i].key.clone())
            .collect();
    }

    /// Folder and file counts and the total size of the files shown.
    pub fn summary(&self) -> (usize, usize, u64) {
        let (mut folders, mut files, mut bytes) = (0, 0, 0);
        for &i in &self.visible {
            let e = &self.entries[i];
            if e.is_folder {
                folders += 1;
            } else {
                files += 1;
                bytes += e.size;
            }
        }
        (folders, files, bytes)
    }
}

/// What a transfer moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Local file to S3.
    Upload,
    /// S3 to a local file.
    Download,
}

/// Where a transfer stands.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferState {
    /// Waiting for a free slot.
    Queued,
    /// Moving bytes.
    Running,
    /// Done.
    Finished,
    /// The key existed and was kept.
    Skipped,
    /// Cancelled by the user.
    Cancelled,
    /// Failed, with the reason.
    Failed(String),
}

/// One row of the transfers panel.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Its id.
    pub id: TransferId,
    /// Upload or download.
    pub direction: Direction,
    /// Shown name (the key).
    pub name: String,
    /// Bytes to move.
    pub total: u64,
    /// Bytes moved.
    pub done: u64,
    /// State.
    pub state: TransferState,
    /// Smoothed speed in bytes per second.
    pub speed: f64,
    /// For a finished upload: the bucket and the key it was stored under (after "keep both"
    /// this differs from the planned one), so its row can copy a link.
    pub uploaded: Option<(String, String)>,
    /// Where the worker writes how far it is, while it runs (read each frame).
    pub counter: Option<std::sync::Arc<TransferProgress>>,
    /// A failed download that found a local file in its place: its row offers to replace it
    /// (retrying alone would meet the same file).
    pub can_replace: bool,
    last_sample: Option<(Instant, u64)>,
}

impl Transfer {
    /// A queued transfer.
    pub fn new(id: TransferId, direction: Direction, name: String, total: u64) -> Self {
        Self {
            id,
            direction,
            name,
            total,
            done: 0,
            state: TransferState::Queued,
            speed: 0.0,
            uploaded: None,
            counter: None,
            can_replace: false,
            last_sample: None,
        }
    }

    /// Takes in what its counter says: started (and its size), and bytes moved.
    pub fn read_counter(&mut self, now: Instant) {
        if !self.is_active() {
            return;
        }
        let Some(counter) = &self.counter else { return };
        let Some(total) = counter.started() else {
            return;
        };
        let done = counter.done();
        self.total = total;
        self.state = TransferState::Running;
        self.progress(done, now);
    }

    /// Records progress at `now`, smoothing the speed over roughly a second.
    pub fn progress(&mut self, done: u64, now: Instant) {
        if self.state == TransferState::Queued {
            self.state = TransferState::Running;
        }
        match self.last_sample {
            Some((t, d)) => {
                let dt = now.duration_since(t).as_secs_f64();
                if dt >= 0.2 {
                    let rate = done.saturating_sub(d) as f64 / dt;
                    let weight = (dt / 1.0).min(1.0);
                    self.speed = if self.speed == 0.0 {
                        rate
                    } else {
                        self.speed * (1.0 - weight) + rate * weight
                    };
                    self.last_sample = Some((now, done));
                }
            }
            None => self.last_sample = Some((now, done)),
        }
        self.done = done;
    }

    /// Seconds left at the current speed.
    pub fn eta_secs(&self) -> Option<u64> {
        (self.state == TransferState::Running && self.speed > 1.0)
            .then(|| (self.total.saturating_sub(self.done) as f64 / self.speed).ceil() as u64)
    }

    /// Whether it can still change.
    pub fn is_active(&self) -> bool {
        matches!(self.state, TransferState::Queued | TransferState::Running)
    }
}

/// `n` with its noun: "1 file", "2 files".
pub fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The first `max` characters of `text`, with an ellipsis when it goes on.
pub fn shortened(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Human sizes: `1.5 MiB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub use crate::names::natural_cmp;

#[cfg(test)]
mod tests {
    use super::*;

    fn page(folders: &[&str], files: &[(&str, u64)]) -> ListPage {
        ListPage {
            folders: folders.iter().map(ToString::to_string).collect(),
            objects: files
                .iter()
                .map(|(k, s)| ObjectEntry {
                    key: k.to_string(),
                    size: *s,
                    modified: None,
                    etag: None,
                })
                .collect(),
        }
    }

    #[test]
    fn folders_first_then_sorted_and_filtered() {
        let mut l = Listing::default();
        l.reset(1);
        l.add_page("p/", page(&["p/zeta/"], &[("p/b.txt", 5), ("p/A.txt", 50)]));
        l.add_page("p/", page(&["p/alpha/"], &[("p/c.bin", 1)]));
        let names: Vec<_> = (0..l.len()).map(|i| l.row(i).name.clone()).collect();
        assert_eq!(names, ["alpha", "zeta", "A.txt", "b.txt", "c.bin"]);
        l.sort = Some((SortBy::Size, false));
        l.refresh();
        assert_eq!(l.row(2).name, "A.txt");
        l.filter = "TXT".into();
        l.refresh();
        assert_eq!(l.len(), 2);
        assert_eq!(l.summary(), (0, 2, 55));
    }

    #[test]
    fn merged_pages_and_upserts_match_a_full_sort() {
        let mut l = Listing::sorted_by(Some((SortBy::Size, false)));
        for p in 0..5u64 {
            let files: Vec<(String, u64)> = (0..50u64)
                .map(|i| (format!("f{p}-{i}"), (i * 7919 + p * 104729) % 1000))
                .collect();
            let files: Vec<(&str, u64)> = files.iter().map(|(k, s)| (k.as_str(), *s)).collect();
            l.add_page("", page(&[&format!("d{p}/")], &files));
        }
        l.upsert(Entry::new("late".into(), "late".into(), false, 500, None));
        let merged: Vec<String> = (0..l.len()).map(|i| l.row(i).key.clone()).collect();
        l.refresh();
        let sorted: Vec<String> = (0..l.len()).map(|i| l.row(i).key.clone()).collect();
        assert_eq!(merged, sorted);
        assert_eq!(l.len(), 5 * 51 + 1);
        assert!(l.row(0).is_folder && !l.row(5).is_folder);
    }

    #[test]
    fn removing_and_finding_many_keys_is_not_a_scan_per_key() {
        let mut l = Listing::default();
        let files: Vec<(String, u64)> = (0..100_000u64).map(|i| (format!("f{i:06}"), i)).collect();
        for chunk in files.chunks(1000) {
            let chunk: Vec<(&str, u64)> = chunk.iter().map(|(k, s)| (k.as_str(), *s)).collect();
            l.add_page("", page(&[], &chunk));
        }
        let gone: Vec<String> = files.iter().step_by(2).map(|(k, _)| k.clone()).collect();
        // A scan per key is 50,000 × 100,000 comparisons (minutes); one pass is milliseconds.
        let t = Instant::now();
        l.remove(&gone);
        for (k, _) in files.iter().skip(1).step_by(2).take(5000) {
            l.upsert(Entry::new(k.clone(), k.clone(), false, 7, None));
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(l.len(), 50_000);
        assert!(l.get("f000000").is_none());
        assert_eq!(l.get("f000001").map(|e| e.size), Some(7));
        assert_eq!(l.row(0).key, "f000001");
        l.remove(&["f000001".to_owned()]);
        assert_eq!(l.row(0).key, "f000003");
    }

    #[test]
    fn selection_with_ctrl_and_shift() {
        let mut l = Listing::default();
        l.add_page("", page(&[], &[("a", 1), ("b", 1), ("c", 1), ("d", 1)]));
        l.click(0, false, false);
        l.click(2, false, true);
        assert_eq!(l.selected.len(), 3);
        l.click(1, true, false);
        assert_eq!(
            l.selection()
                .iter()
                .map(|e| e.key.as_str())
                .collect::<Vec<_>>(),
            ["a", "c"]
        );
        l.click(3, false, false);
        assert_eq!(l.selected.len(), 1);
    }

    #[test]
    fn places_have_parents_and_crumbs() {
        let p = Place {
            bucket: "b".into(),
            prefix: "x/y/".into(),
        };
        assert_eq!(p.parent().unwrap().prefix, "x/");
        assert_eq!(p.parent().unwrap().parent().unwrap().prefix, "");
        let crumbs: Vec<_> = p.crumbs().into_iter().map(|(l, _)| l).collect();
        assert_eq!(crumbs, ["b", "x", "y"]);
    }

    #[test]
    fn speed_and_eta() {
        let mut t = Transfer::new(1, Direction::Upload, "f".into(), 10_000_000);
        let t0 = Instant::now();
        t.progress(0, t0);
        t.progress(1_000_000, t0 + std::time::Duration::from_secs(1));
        assert!((t.speed - 1_000_000.0).abs() < 1.0);
        assert_eq!(t.eta_secs(), Some(9));
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(12), "12 B");
    }
}
