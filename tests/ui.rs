//! The desktop app driven through egui_kittest: real app state, real worker, real embedded
//! store over HTTP. Clicks and key presses go through egui's input like a user's would.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use s3share::app::S3ShareApp;
use s3share::app::backend::BackendConfig;
use s3share::app::clipboard::MemoryClipboard;
use s3share::app::model::TransferState;
use s3share::s3::{ConnectOptions, Connection};

use crate::support::{random_file, store_paths};

/// A dropped file, as a window system would hand it over.
#[derive(Debug)]
pub(crate) struct DroppedPath(pub(crate) PathBuf);

impl egui::DroppedFile for DroppedPath {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

pub(crate) struct Fixture {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clipboard: MemoryClipboard,
    /// The library's own connection to the same store, to set up and check.
    pub(crate) store: Connection,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = runtime
            .block_on(
                ConnectOptions {
                    local: true,
                    store_paths: Some(store_paths(dir.path())),
                    ..Default::default()
                }
                .connect(),
            )
            .unwrap();
        Self {
            runtime,
            dir,
            clipboard: MemoryClipboard::default(),
            store,
        }
    }

    pub(crate) fn put(&self, key: &str, bytes: &[u8]) {
        let put = crate::support::put_via_link(&self.store.client, "s3share", key, bytes.to_vec());
        self.runtime.block_on(put).error_for_status().unwrap();
    }

    pub(crate) fn harness(&self) -> Harness<'static, S3ShareApp> {
        let mut harness = self.harness_as_started();
        // First connection: the embedded store (no AWS config in tests, and explicitly here).
        harness
            .state_mut()
            .connect(s3share::app::backend::ConnectionTarget::Local);
        harness
    }

    /// The app as it starts, before the test picks a connection.
    pub(crate) fn harness_as_started(&self) -> Harness<'static, S3ShareApp> {
        let handle = self.runtime.handle().clone();
        let config = BackendConfig {
            store_paths: Some(store_paths(self.dir.path())),
            aws_files: None,
        };
        let clipboard = self.clipboard.clone();
        Harness::builder()
            .with_size(egui::vec2(1200.0, 800.0))
            .build_eframe(move |cc| S3ShareApp::new(cc, handle, config, Box::new(clipboard)))
    }

    /// The embedded store's folder of bucket `bucket` (a bucket is a folder of its objects
    /// folder there).
    pub(crate) fn bucket_dir(&self, bucket: &str) -> PathBuf {
        store_paths(self.dir.path())
            .data_dir
            .join("objects")
            .join(bucket)
    }
}

/// Steps the UI until `done` holds (the worker answers on its own threads), or panics.
pub(crate) fn wait_for(
    harness: &mut Harness<'_, S3ShareApp>,
    what: &str,
    mut done: impl FnMut(&S3ShareApp) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        harness.step();
        if done(harness.state()) {
            harness.step();
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn listed(app: &S3ShareApp, name: &str) -> bool {
    (0..app.listing.len()).any(|i| app.listing.row(i).name == name)
}

#[test]
fn open_a_folder_by_clicking_and_filter() {
    let f = Fixture::new();
    f.put("reports/2024 q1.pdf", b"q1");
    f.put("reports/2024 q2.pdf", b"q2");
    f.put("notes.txt", b"hello");
    let mut h = f.harness();
    wait_for(&mut h, "the bucket listing", |a| {
        listed(a, "reports") && !a.listing.loading
    });
    assert!(
        h.query_all_by_label_contains("1 folder, 1 file, ")
            .next()
            .is_some(),
        "status line"
    );

    h.get_by_label_contains("reports").click();
    h.step();
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the folder listing", |a| listed(a, "2024 q1.pdf"));
    assert_eq!(h.state().place.as_ref().unwrap().prefix, "reports/");
    assert_eq!(h.state().listing.len(), 2);

    // Filter through the keyboard, as a user would.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::F);
    h.step();
    h.event(egui::Event::Text("Q2".into()));
    wait_for(&mut h, "the filter", |a| a.listing.len() == 1);
    assert_eq!(h.state().listing.row(0).name, "2024 q2.pdf");

    // Backspace with the filter focused edits the filter; Escape-free way up: the Up button.
    h.get_by_label("⬆").click();
    wait_for(&mut h, "the bucket root", |a| {
        a.place.as_ref().is_some_and(|p| p.prefix.is_empty()) && listed(a, "notes.txt")
    });
}

#[test]
fn dropped_files_upload_and_appear_then_conflicts_ask() {
    let f = Fixture::new();
    let files = f.dir.path().join("local");
    std::fs::create_dir_all(files.join("album")).unwrap();
    let photo = random_file(&files, "photo one.jpg", 5000, 1);
    random_file(&files.join("album"), "a.png", 100, 2);
    let mut h = f.harness();
    wait_for(&mut h, "the bucket", |a| {
        a.place.is_some() && !a.listing.loading
    });

    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(photo.clone())));
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(files.join("album"))));
    wait_for(&mut h, "the uploads to be listed", |a| {
        listed(a, "photo one.jpg") && listed(a, "album")
    });
    assert!(
        h.state()
            .transfers
            .iter()
            .all(|t| t.state == TransferState::Finished),
        "{:?}",
        h.state().transfers
    );
    let keys: Vec<String> = f
        .runtime
        .block_on(f.store.client.list_all("s3share", "", true))
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(
        keys.contains(&"album/a.png".to_owned()),
        "folders keep their structure: {keys:?}"
    );

    // The same file again: the app asks.
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(photo)));
    wait_for(&mut h, "the conflict prompt", |a| a.conflicts.is_some());
    assert!(
        h.query_all_by_label_contains("already exists")
            .next()
            .is_some()
    );
    h.get_by_label("Keep both").click();
    wait_for(&mut h, "the renamed upload", |a| {
        listed(a, "photo one (1).jpg")
    });
    assert!(h.state().conflicts.is_none());
    h.run_steps(4);
    assert!(
        h.query_by_label("photo one.jpg (stored as photo one (1).jpg)")
            .is_some(),
        "the row says the name it was stored under"
    );
}

#[test]
fn a_dropped_folder_of_many_files_is_counted_as_its_files_end() {
    let f = Fixture::new();
    let folder = f.dir.path().join("many");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..60 {
        random_file(&folder, &format!("f{i:02}.txt"), 10 + i, i as u64);
    }
    let mut h = f.harness();
    wait_for(&mut h, "the bucket", |a| {
        a.place.is_some() && !a.listing.loading
    });
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(folder)));
    // Most of these end between two frames, while their rows still say "queued": each is
    // counted once all the same, and nothing stays counted as running.
    wait_for(&mut h, "every upload counted", |a| {
        a.transfer_tally().finished == 60
    });
    h.step();
    let tally = h.state().transfer_tally();
    assert_eq!(
        (tally.active, tally.failed, tally.finished, tally.total),
        (0, 0, 60, 0),
        "{tally:?}"
    );
    assert!(
        h.state()
            .transfers
            .iter()
            .all(|t| t.state == TransferState::Finished)
    );
    assert!(h.query_by_label_contains("60 done").is_some());
}

#[test]
fn copy_link_gives_a_link_that_returns_the_bytes() {
    let f = Fixture::new();
    f.put("shared/résumé final.pdf", b"the real bytes");
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| listed(a, "shared"));
    let folder = h.state().listing.row(0).clone();
    h.state_mut().activate(&folder);
    share_dialog_for(&mut h, "résumé final.pdf");
    h.get_by_label("1 day").click();
    h.step();
    assert!(
        h.query_all_by_label_contains("Works until")
            .next()
            .is_some(),
        "the real expiry shows before copying"
    );
    assert!(
        h.query_all_by_label_contains("while s3share is running")
            .next()
            .is_some(),
        "the local-store note shows"
    );
    h.get_by_label("🔗 Copy link").click();
    wait_for(&mut h, "the clipboard", |_| f.clipboard.0.lock().is_some());
    let url = f.clipboard.0.lock().clone().unwrap();
    assert!(url.contains("X-Amz-Expires=86400"), "{url}");
    let body = f
        .runtime
        .block_on(async { reqwest::get(&url).await.unwrap().bytes().await.unwrap() });
    assert_eq!(body.as_ref(), b"the real bytes");
    assert!(
        h.state().share.as_ref().unwrap().qr.is_some(),
        "a QR code is shown"
    );
}

/// Chooses `name` in the folder shown and opens the share dialog for it.
fn share_dialog_for(h: &mut Harness<'_, S3ShareApp>, name: &str) {
    wait_for(h, "the listing", |a| listed(a, name));
    h.get_by_label_contains(name).click();
    h.step();
    h.get_by_label("🔗 Copy link…").click();
    wait_for(h, "the share dialog", |a| a.share.is_some());
}

/// "Custom" opens its field ready to type, shows no error before anything is typed, and a
/// custom lifetime is for these links only: the one remembered stays the last chosen from
/// the list (a one-off "90s" had become every later link's).
#[test]
fn a_custom_link_lifetime_is_asked_quietly_and_used_once() {
    let f = Fixture::new();
    f.put("notes.txt", b"n");
    let mut h = f.harness();
    share_dialog_for(&mut h, "notes.txt");
    let remembered = h.state().settings.link_expiry_secs;
    h.get_by_label("Custom").click();
    h.step();
    h.step();
    assert!(
        h.query_all_by_label_contains("cannot read the expiry")
            .next()
            .is_none(),
        "no error before anything is typed"
    );
    h.event(egui::Event::Text("90s".into()));
    h.step();
    assert_eq!(
        h.state().share.as_ref().unwrap().custom,
        "90s",
        "typed into the field"
    );
    h.get_by_label("🔗 Copy link").click();
    wait_for(&mut h, "the clipboard", |_| f.clipboard.0.lock().is_some());
    let url = f.clipboard.0.lock().clone().unwrap();
    assert!(url.contains("X-Amz-Expires=90"), "{url}");
    assert_eq!(
        h.state().settings.link_expiry_secs,
        remembered,
        "the lifetime remembered is the list's"
    );
}

/// In a small window the share dialog (its QR code shown) fits by scrolling: its title is not
/// cut off above the window, and its last button can be scrolled to. It ran past both edges.
#[test]
fn the_share_dialog_fits_a_small_window() {
    let f = Fixture::new();
    f.put("notes.txt", b"n");
    let mut h = f.harness();
    h.set_size(egui::vec2(800.0, 500.0));
    share_dialog_for(&mut h, "notes.txt");
    h.get_by_label("🔗 Copy link").click();
    wait_for(&mut h, "the QR code", |a| {
        a.share.as_ref().is_some_and(|s| s.qr.is_some())
    });
    h.step();
    let window = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(800.0, 500.0));
    let title = h.get_by_label("Share a link").rect();
    assert!(
        window.contains_rect(title),
        "the title {title:?} is in the window"
    );
    let relay = h.get_by_label("🔗 Share via relay");
    relay.scroll_to_me();
    for _ in 0..10 {
        h.step();
    }
    let relay = h.get_by_label("🔗 Share via relay").rect();
    assert!(
        window.contains_rect(relay),
        "the last button {relay:?} can be reached"
    );
}

#[test]
fn ctrl_c_copies_links_of_several_files() {
    let f = Fixture::new();
    f.put("a.txt", b"A");
    f.put("b.txt", b"B");
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| {
        a.listing.len() == 2 && !a.listing.loading
    });
    h.get_by_label_contains("a.txt").click();
    h.step();
    h.get_by_label_contains("b.txt")
        .click_modifiers(egui::Modifiers::COMMAND);
    h.step();
    assert_eq!(h.state().listing.selected.len(), 2);
    h.event(egui::Event::Copy);
    wait_for(&mut h, "the clipboard", |_| f.clipboard.0.lock().is_some());
    let text = f.clipboard.0.lock().clone().unwrap();
    let urls: Vec<&str> = text.lines().collect();
    assert_eq!(urls.len(), 2);
    let bodies: Vec<Vec<u8>> = f.runtime.block_on(async {
        futures::future::join_all(urls.iter().map(|u| async move {
            reqwest::get(*u)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .to_vec()
        }))
        .await
    });
    assert_eq!(bodies, [b"A".to_vec(), b"B".to_vec()]);
}

#[test]
fn cancel_an_upload_from_the_transfers_panel() {
    let f = Fixture::new();
    let small = random_file(f.dir.path(), "small.txt", 100, 4);
    let big = random_file(f.dir.path(), "big.iso", 400 << 20, 3);
    let mut h = f.harness();
    wait_for(&mut h, "the bucket", |a| {
        a.place.is_some() && !a.listing.loading
    });
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(small)));
    wait_for(&mut h, "the small upload", |a| {
        a.transfer_tally().finished == 1
    });
    assert!(h.query_by_label_contains("1 done").is_some());

    h.input_mut().dropped_files.push(Arc::new(DroppedPath(big)));
    wait_for(&mut h, "the transfer row", |a| a.transfers.len() == 2);
    h.get_by_label("✖ Cancel").click();
    wait_for(&mut h, "the cancellation", |a| {
        a.transfers[1].state == TransferState::Cancelled
    });
    // Give the worker a moment to abort, then check nothing is left on the server.
    std::thread::sleep(Duration::from_millis(500));
    let client = f.store.client.clone();
    let (head, open) = f.runtime.block_on(async {
        (
            client.head("s3share", "big.iso").await.unwrap(),
            client.list_open_uploads("s3share", "").await.unwrap(),
        )
    });
    assert!(
        head.is_none(),
        "a cancelled upload must not create the object"
    );
    assert!(
        open.is_empty(),
        "a cancelled upload must not leave a multipart upload: {open:?}"
    );
    h.step();
    let tally = h.state().transfer_tally();
    assert_eq!(
        (tally.active, tally.failed, tally.finished),
        (0, 1, 1),
        "{tally:?}"
    );
    assert!(h.query_by_label_contains("Retry cancelled (1)").is_some());
    assert!(
        h.query_by_label("⟳ Retry").is_some(),
        "a cancelled row has its own Retry, as a failed one"
    );
    assert_eq!(tally.cancelled, 1, "{tally:?}");

    // Retried, the cancelled row runs again and leaves the failed count; cancelled again, it
    // is back; "Clear finished" forgets both rows, and the counts with them.
    h.get_by_label_contains("Retry cancelled (1)").click();
    wait_for(&mut h, "the retry", |a| a.transfer_tally().active == 1);
    assert_eq!(h.state().transfer_tally().failed, 0);
    assert!(h.query_by_label_contains("1 running").is_some());
    h.get_by_label("✖ Cancel").click();
    wait_for(&mut h, "the second cancellation", |a| {
        a.transfer_tally().failed == 1 && a.transfer_tally().active == 0
    });
    h.get_by_label("Clear finished").click();
    wait_for(&mut h, "the cleared panel", |a| a.transfers.is_empty());
    let tally = h.state().transfer_tally();
    assert_eq!((tally.failed, tally.finished), (0, 0), "{tally:?}");
}

#[test]
fn delete_asks_first() {
    let f = Fixture::new();
    f.put("old.log", b"x");
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| listed(a, "old.log"));
    h.get_by_label_contains("old.log").click();
    h.step();
    h.key_press(egui::Key::Delete);
    wait_for(&mut h, "the confirmation", |a| a.confirm_delete.is_some());
    assert!(
        listed(h.state(), "old.log"),
        "nothing is deleted before confirming"
    );
    h.get_by_label("🗑 Delete permanently").click();
    wait_for(&mut h, "the deletion", |a| !listed(a, "old.log"));
    let head = f
        .runtime
        .block_on(f.store.client.head("s3share", "old.log"))
        .unwrap();
    assert!(head.is_none());
}

#[test]
fn a_folder_is_deleted_with_everything_in_it_after_saying_how_much() {
    let f = Fixture::new();
    f.put("old/a.txt", b"aa");
    f.put("old/deep/b.txt", b"bbb");
    f.put("old-notes.txt", b"kept");
    f.put("empty/", b"");
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| {
        listed(a, "old") && listed(a, "empty")
    });
    h.get_by_label_contains("old-notes.txt").click();
    h.step();
    h.get_by_label("📁  old")
        .click_modifiers(egui::Modifiers::COMMAND);
    h.step();
    h.key_press(egui::Key::Delete);
    wait_for(&mut h, "the count", |a| {
        a.confirm_delete
            .as_ref()
            .is_some_and(s3share::app::DeletePlan::ready)
    });
    assert!(h.query_by_label("Delete 1 folder and 1 file?").is_some());
    assert!(
        h.query_by_label_contains("With everything in the folder: 2 files (5 B)")
            .is_some()
    );
    assert!(
        listed(h.state(), "old"),
        "nothing is deleted before confirming"
    );
    h.get_by_label("🗑 Delete permanently").click();
    wait_for(&mut h, "the deletion", |a| {
        !listed(a, "old") && !listed(a, "old-notes.txt")
    });
    let head = |key: &str| {
        f.runtime
            .block_on(f.store.client.head("s3share", key))
            .unwrap()
    };
    assert!(head("old/a.txt").is_none() && head("old/deep/b.txt").is_none());
    assert!(head("old-notes.txt").is_none());

    // A folder made with "New folder" holds only its marker: it can be deleted too.
    h.get_by_label("📁  empty").click();
    h.step();
    h.key_press(egui::Key::Delete);
    wait_for(&mut h, "the count", |a| {
        a.confirm_delete
            .as_ref()
            .is_some_and(s3share::app::DeletePlan::ready)
    });
    assert!(h.query_by_label("Delete this folder?").is_some());
    assert!(h.query_by_label("The folder is empty.").is_some());
    h.get_by_label("🗑 Delete permanently").click();
    wait_for(&mut h, "the deletion", |a| !listed(a, "empty"));
    assert!(head("empty/").is_none());
}

#[test]
fn a_connection_that_fails_says_what_to_do() {
    let f = Fixture::new();
    let mut h = f.harness();
    wait_for(&mut h, "the embedded store", |a| a.place.is_some());
    h.state_mut()
        .connect(s3share::app::backend::ConnectionTarget::Profile(
            "no-such-profile-here".into(),
        ));
    wait_for(&mut h, "the failure", |a| {
        matches!(a.connection, s3share::app::ConnectionState::Failed(..))
    });
    assert!(
        h.query_all_by_label_contains("Cannot connect")
            .next()
            .is_some()
    );
    assert!(
        h.query_all_by_label_contains("aws sso login")
            .next()
            .is_some(),
        "the message says what to do"
    );
    // Back to a working connection with one click.
    h.get_by_label_contains("This computer").click();
    wait_for(&mut h, "the embedded store again", |a| {
        matches!(
            a.connection,
            s3share::app::ConnectionState::Connected { .. }
        ) && a.place.is_some()
    });
}

/// Empties the path field, which opens holding the user's Downloads or home folder (checked:
/// an absolute folder, ending with a separator, for the name to follow).
pub(crate) fn clear_path_field(h: &mut Harness<'_, S3ShareApp>) {
    let (_, start) = h.state_mut().path_prompt.as_mut().unwrap();
    if !start.is_empty() {
        assert!(
            std::path::Path::new(start.as_str()).is_absolute(),
            "{start}"
        );
        assert!(start.ends_with(std::path::MAIN_SEPARATOR), "{start}");
    }
    start.clear();
    h.step();
}

#[test]
fn download_through_the_path_field_when_no_file_dialog_exists() {
    // Under a bare test (no desktop portal) rfd answers at once with nothing: the app must offer
    // a path field rather than silently doing nothing.
    let f = Fixture::new();
    f.put("report.csv", b"a,b\n1,2\n");
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| listed(a, "report.csv"));
    h.get_by_label_contains("report.csv").click();
    h.step();
    h.get_by_label("⬇ Download…").click();
    wait_for(&mut h, "the path field", |a| a.path_prompt.is_some());
    clear_path_field(&mut h);
    let target = f.dir.path().join("saved report.csv");
    h.event(egui::Event::Text(target.to_string_lossy().into_owned()));
    h.step();
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the download", |a| {
        a.transfers
            .iter()
            .any(|t| t.state == TransferState::Finished)
    });
    assert_eq!(std::fs::read(&target).unwrap(), b"a,b\n1,2\n");

    // A typed path that names a file which exists: asked, as a save dialog asks; it used to
    // be replaced without a word. Keep both, then Replace.
    std::fs::write(&target, b"my own work").unwrap();
    let download_typed = |h: &mut Harness<'_, S3ShareApp>| {
        h.get_by_label("⬇ Download…").click();
        wait_for(h, "the path field", |a| a.path_prompt.is_some());
        clear_path_field(h);
        h.event(egui::Event::Text(target.to_string_lossy().into_owned()));
        h.step();
        h.key_press(egui::Key::Enter);
        wait_for(h, "the question", |a| a.replace_prompt.is_some());
        h.run_steps(4);
        assert!(
            h.query_by_label_contains("Replace “saved report.csv”?")
                .is_some()
        );
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"my own work",
            "asked first"
        );
    };
    let finished = |n: usize| {
        move |a: &S3ShareApp| {
            a.transfers
                .iter()
                .filter(|t| t.state == TransferState::Finished)
                .count()
                == n
        }
    };
    download_typed(&mut h);
    h.get_by_label("Keep both").click();
    wait_for(&mut h, "the download beside it", finished(2));
    assert_eq!(std::fs::read(&target).unwrap(), b"my own work");
    let beside = f.dir.path().join("saved report (1).csv");
    assert_eq!(std::fs::read(&beside).unwrap(), b"a,b\n1,2\n");
    download_typed(&mut h);
    h.get_by_label("Cancel").click();
    h.run_steps(4);
    assert!(h.state().replace_prompt.is_none());
    assert_eq!(h.state().transfers.len(), 2, "nothing started");
    download_typed(&mut h);
    h.get_by_label("Replace").click();
    wait_for(&mut h, "the replacing download", finished(3));
    assert_eq!(std::fs::read(&target).unwrap(), b"a,b\n1,2\n");
}

#[test]
fn an_upload_link_for_a_folder_takes_a_plain_put() {
    let f = Fixture::new();
    f.put("inbox/.keep", b"");
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| listed(a, "inbox"));
    let folder = h.state().listing.row(0).clone();
    h.state_mut().activate(&folder);
    wait_for(&mut h, "the folder", |a| {
        a.place.as_ref().is_some_and(|p| p.prefix == "inbox/") && !a.listing.loading
    });
    h.get_by_label("📥 Upload link…").click();
    wait_for(&mut h, "the dialog", |a| a.share.is_some());
    h.state_mut().share.as_mut().unwrap().upload_name = "from a colleague.txt".into();
    h.get_by_label("🔗 Copy link").click();
    wait_for(&mut h, "the link", |_| f.clipboard.0.lock().is_some());
    let url = f.clipboard.0.lock().clone().unwrap();
    let status = f.runtime.block_on(async {
        reqwest::Client::new()
            .put(&url)
            .body("hello from curl -T")
            .send()
            .await
            .unwrap()
            .status()
    });
    assert!(status.is_success(), "{status}");
    let head = f
        .runtime
        .block_on(f.store.client.head("s3share", "inbox/from a colleague.txt"))
        .unwrap();
    assert_eq!(head.map(|h| h.size), Some(18));
}

/// Asks the window to close, as the window manager's close button does.
fn request_close(h: &mut Harness<'_, S3ShareApp>) {
    h.input_mut()
        .viewports
        .entry(egui::ViewportId::ROOT)
        .or_default()
        .events
        .push(egui::ViewportEvent::Close);
    h.step();
}

/// Whether the last frame told the window to stay open.
fn close_was_held_back(h: &Harness<'_, S3ShareApp>) -> bool {
    h.output()
        .viewport_output
        .get(&egui::ViewportId::ROOT)
        .is_some_and(|v| v.commands.contains(&egui::ViewportCommand::CancelClose))
}

#[test]
fn closing_the_window_while_transfers_run_asks_then_cleans_up() {
    use s3share::app::QuitState;
    let f = Fixture::new();
    // Content does not matter here, only that the transfers are still running when the window
    // closes: a sparse file is made in no time.
    let sparse = |name: &str, len: u64| {
        let path = f.dir.path().join(name);
        std::fs::File::create(&path).unwrap().set_len(len).unwrap();
        path
    };
    let upload = sparse("new.iso", 400 << 20);
    let item = s3share::transfer::UploadItem {
        path: sparse("served.iso", 96 << 20),
        key: "served.iso".into(),
        size: 96 << 20,
    };
    let client = f.store.client.clone();
    let stored = f
        .runtime
        .block_on(client.upload_file(s3share::transfer::UploadJob::new("s3share", item.clone())));
    assert!(stored.is_ok(), "{stored:?}");

    let mut h = f.harness();
    wait_for(&mut h, "the bucket", |a| listed(a, "served.iso"));
    // Nothing running: the window closes at once, no question.
    request_close(&mut h);
    assert_eq!(h.state().quit, QuitState::Closing);
    assert!(!close_was_held_back(&h));
    h.state_mut().quit = QuitState::Running;

    let downloads = f.dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    // The slow one first (a big upload), then the download: close while both move bytes.
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(upload)));
    let moving = |a: &S3ShareApp, n: usize| {
        a.transfers.len() == n
            && a.transfers
                .iter()
                .all(|t| t.state == TransferState::Running && t.done > 0)
    };
    wait_for(&mut h, "the upload moving bytes", |a| moving(a, 1));
    h.state_mut().download_to(
        vec!["served.iso".into()],
        downloads.join("served.iso"),
        false,
    );
    wait_for(&mut h, "both transfers moving bytes", |a| moving(a, 2));

    request_close(&mut h);
    assert!(
        close_was_held_back(&h),
        "a running transfer must hold the window open"
    );
    assert_eq!(h.state().quit, QuitState::Asking);
    // The question is a modal: it takes a frame to appear.
    h.step();
    h.get_by_label("Cancel transfers and quit").click();
    wait_for(
        &mut h,
        "the transfers to stop and the window to close",
        |a| a.quit == QuitState::Closing,
    );
    assert!(
        h.state()
            .transfers
            .iter()
            .all(|t| t.state == TransferState::Cancelled),
        "{:?}",
        h.state()
            .transfers
            .iter()
            .map(|t| &t.state)
            .collect::<Vec<_>>()
    );
    let (head, open) = f.runtime.block_on(async {
        (
            client.head("s3share", "new.iso").await.unwrap(),
            client.list_open_uploads("s3share", "").await.unwrap(),
        )
    });
    assert!(
        head.is_none(),
        "the cancelled upload must not create the object"
    );
    assert!(
        open.is_empty(),
        "no multipart upload may be left open: {open:?}"
    );
    let left: Vec<_> = std::fs::read_dir(&downloads)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty(),
        "no partial or final file may be left: {left:?}"
    );
}

#[test]
fn downloading_several_files_keeps_local_files_and_stays_confined() {
    let f = Fixture::new();
    f.put("docs/a.txt", b"A");
    f.put("docs/b.txt", b"B");
    let dest = f.dir.path().join("downloads");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("b.txt"), b"my own b").unwrap();
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| listed(a, "docs"));
    let folder = h.state().listing.row(0).clone();
    h.state_mut().activate(&folder);
    wait_for(&mut h, "the folder", |a| {
        listed(a, "a.txt") && listed(a, "b.txt")
    });

    h.get_by_label_contains("a.txt").click();
    h.step();
    h.get_by_label_contains("b.txt")
        .click_modifiers(egui::Modifiers::COMMAND);
    h.step();
    h.get_by_label("⬇ Download…").click();
    wait_for(&mut h, "the path field", |a| a.path_prompt.is_some());
    clear_path_field(&mut h);
    h.event(egui::Event::Text(dest.to_string_lossy().into_owned()));
    h.step();
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "both downloads to end", |a| {
        a.transfers.len() == 2 && a.transfers.iter().all(|t| !t.is_active())
    });
    assert_eq!(state(&h, "docs/a.txt"), TransferState::Finished);
    assert!(
        matches!(state(&h, "docs/b.txt"), TransferState::Failed(e) if e.contains("will not overwrite")),
        "{:?}",
        state(&h, "docs/b.txt")
    );
    assert_eq!(std::fs::read(dest.join("a.txt")).unwrap(), b"A");
    assert_eq!(
        std::fs::read(dest.join("b.txt")).unwrap(),
        b"my own b",
        "a file already in the folder is kept"
    );
    // Its row offers to replace it (Retry alone meets the same file again); the other row,
    // finished, does not.
    h.run_steps(4);
    assert_eq!(h.query_all_by_label("Replace").count(), 1);
    h.get_by_label("Replace").click();
    wait_for(&mut h, "the replacing download", |a| {
        a.transfers
            .iter()
            .all(|t| t.state == TransferState::Finished)
    });
    assert_eq!(std::fs::read(dest.join("b.txt")).unwrap(), b"B");

    // Keys the server resolves to one object but that are different keys (`./`), and a key
    // that names the parent folder: planned as the CLI plans them, reported in the panel.
    let other = f.dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    h.state_mut().download_to(
        vec!["docs/a.txt".into(), "docs/./a.txt".into(), "docs/..".into()],
        other.clone(),
        false,
    );
    wait_for(&mut h, "the second batch to end", |a| {
        a.transfers.len() == 5 && a.transfers.iter().all(|t| !t.is_active())
    });
    assert_eq!(state(&h, "docs/a.txt"), TransferState::Finished);
    assert!(
        matches!(state(&h, "docs/./a.txt"), TransferState::Failed(e) if e.contains("already takes")),
        "{:?}",
        state(&h, "docs/./a.txt")
    );
    assert!(
        matches!(state(&h, "docs/.."), TransferState::Failed(e) if e.contains("outside")),
        "{:?}",
        state(&h, "docs/..")
    );
    h.step();
    assert!(
        h.query_all_by_label_contains("already takes")
            .next()
            .is_some(),
        "the transfers panel shows why"
    );
    assert_eq!(std::fs::read(other.join("a.txt")).unwrap(), b"A");
    let names: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.to_string_lossy().contains("partial")),
        "{names:?}"
    );
}

/// The state of the latest transfer of `name`.
pub(crate) fn state(h: &Harness<'_, S3ShareApp>, name: &str) -> TransferState {
    h.state()
        .transfers
        .iter()
        .rev()
        .find(|t| t.name == name)
        .map(|t| t.state.clone())
        .unwrap_or_else(|| panic!("no transfer of {name}"))
}

#[test]
fn new_folder_says_why_a_name_cannot_be_used() {
    use egui_kittest::kittest::NodeT as _;
    let f = Fixture::new();
    f.put("reports/q1.txt", b"x");
    f.put("notes", b"x");
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| {
        listed(a, "reports") && listed(a, "notes")
    });
    h.get_by_label("➕ New folder").click();
    wait_for(&mut h, "the dialog", |a| a.new_folder.is_some());
    h.step();
    // (Queried by "contains": the exact-label query leaves disabled buttons out.)
    let create_enabled = |h: &Harness<'_, S3ShareApp>| {
        h.query_all_by_label_contains("Create")
            .find(|n| n.accesskit_node().label().as_deref() == Some("Create"))
            .map(|n| !n.accesskit_node().is_disabled())
            .expect("the Create button")
    };
    assert!(!create_enabled(&h), "no name yet");
    for (name, says) in [
        (
            "reports",
            "There is already a folder named \"reports\" here.",
        ),
        ("notes", "There is already a file named \"notes\" here."),
        ("a/../b", "cannot have empty"),
    ] {
        h.state_mut().new_folder = Some(name.into());
        h.step();
        h.step();
        assert!(h.query_by_label_contains(says).is_some(), "{name}");
        assert!(!create_enabled(&h), "{name}");
        h.key_press(egui::Key::Enter);
        h.step();
        h.step();
        assert!(
            h.state().new_folder.is_some(),
            "{name}: the dialog stays open"
        );
    }
    h.state_mut().new_folder = Some("reports 2024".into());
    h.step();
    h.step();
    assert!(create_enabled(&h));
    h.get_by_label("Create").click();
    wait_for(&mut h, "the new folder", |a| listed(a, "reports 2024"));
}

/// The keyboard moves through a long folder and the table follows it: ↓, End, Home, Page Down,
/// Shift to extend, Ctrl+A. The arrows moved the selection out of view before (the table's
/// scroll looked for keys the shortcuts had consumed), and the others did nothing.
#[test]
fn the_keyboard_moves_through_a_long_folder_in_view() {
    let f = Fixture::new();
    let client = f.store.client.clone();
    let puts = (1..=120).map(|n| {
        let client = client.clone();
        async move {
            let key = format!("file {n:03}.txt");
            crate::support::put_via_link(&client, "s3share", &key, "x")
                .await
                .error_for_status()
                .unwrap()
        }
    });
    f.runtime.block_on(futures::future::join_all(puts));
    let mut h = f.harness();
    // The table scrolls over a few frames.
    fn frames(h: &mut Harness<'_, S3ShareApp>) {
        for _ in 0..10 {
            h.step();
        }
    }
    wait_for(&mut h, "the listing", |a| {
        listed(a, "file 120.txt") && !a.listing.loading
    });
    let in_view =
        |h: &Harness<'_, S3ShareApp>, name: &str| h.query_by_label_contains(name).is_some();
    let selected = |h: &Harness<'_, S3ShareApp>| {
        h.state()
            .listing
            .selected
            .iter()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        !in_view(&h, "file 060.txt"),
        "a long folder: row 60 is out of view at first"
    );

    h.get_by_label_contains("file 001.txt").click();
    h.step();
    for _ in 0..59 {
        h.key_press(egui::Key::ArrowDown);
    }
    frames(&mut h);
    assert_eq!(selected(&h), ["file 060.txt"]);
    assert!(
        in_view(&h, "file 060.txt"),
        "the table follows the selection"
    );

    h.key_press(egui::Key::End);
    frames(&mut h);
    assert_eq!(selected(&h), ["file 120.txt"]);
    assert!(in_view(&h, "file 120.txt"));
    h.key_press(egui::Key::Home);
    frames(&mut h);
    assert_eq!(selected(&h), ["file 001.txt"]);
    assert!(in_view(&h, "file 001.txt"));
    h.key_press(egui::Key::PageDown);
    frames(&mut h);
    assert_eq!(selected(&h), ["file 021.txt"]);

    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::ArrowDown);
    h.key_press_modifiers(egui::Modifiers::SHIFT, egui::Key::ArrowDown);
    h.step();
    assert_eq!(
        selected(&h),
        ["file 021.txt", "file 022.txt", "file 023.txt"]
    );

    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.step();
    assert_eq!(h.state().listing.selected.len(), 120);
}

/// F5 lists the folder again and keeps what the user chose in it: the selection, the preview
/// and the filter (it closed the preview and cleared the selection, the file still there).
#[test]
fn refreshing_keeps_the_selection_the_preview_and_the_filter() {
    let f = Fixture::new();
    f.put("notes.txt", b"hello");
    f.put("other.txt", b"x");
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| {
        listed(a, "notes.txt") && !a.listing.loading
    });
    h.state_mut().listing.filter = "notes".into();
    h.state_mut().listing.refresh();
    h.get_by_label_contains("notes.txt").click();
    h.step();
    let entry = h.state().listing.selection()[0].clone();
    h.state_mut().activate(&entry);
    wait_for(&mut h, "the preview", |a| a.preview.is_some());
    f.put("new.txt", b"n");
    h.key_press(egui::Key::F5);
    wait_for(&mut h, "the listing again", |a| !a.listing.loading);
    assert!(h.state().listing.selected.contains("notes.txt"));
    assert!(h.state().preview.is_some(), "the preview stays");
    assert_eq!(h.state().listing.filter, "notes");
    assert!(
        !listed(h.state(), "new.txt") && !listed(h.state(), "other.txt"),
        "filtered"
    );
    h.state_mut().listing.filter.clear();
    h.state_mut().listing.refresh();
    assert!(
        listed(h.state(), "new.txt"),
        "listed again: the new file is there"
    );
}

/// The filter: the status bar says what the counts are out of, Escape clears it; and choosing
/// a folder closes the preview of the file chosen before (it read as the folder's).
#[test]
fn the_filter_says_what_it_hides_and_escape_clears_it() {
    let f = Fixture::new();
    f.put("notes.txt", b"hello");
    f.put("other.txt", b"x");
    f.put("docs/a.txt", b"a");
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| {
        listed(a, "notes.txt") && !a.listing.loading
    });
    h.get_by_label_contains("notes.txt").click();
    h.step();
    let entry = h.state().listing.selection()[0].clone();
    h.state_mut().activate(&entry);
    wait_for(&mut h, "the preview", |a| a.preview.is_some());
    h.get_by_label("📁  docs").click();
    h.step();
    assert!(
        h.state().preview.is_none(),
        "a folder chosen: no file's preview"
    );

    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::F);
    h.step();
    h.event(egui::Event::Text("notes".into()));
    h.step();
    assert_eq!(h.state().listing.filter, "notes");
    assert!(!listed(h.state(), "other.txt"));
    h.step();
    assert!(
        h.query_by_label_contains("shown of 3 (filter \"notes\")")
            .is_some(),
        "the status bar says what the counts are out of"
    );
    h.key_press(egui::Key::Escape);
    h.step();
    assert_eq!(h.state().listing.filter, "");
    assert!(listed(h.state(), "other.txt"));
}

/// A dropped folder keeps its empty folders (as folder markers), and a dropped empty folder
/// appears at once; both were dropped without a word.
#[test]
fn dropped_folders_keep_their_empty_folders() {
    let f = Fixture::new();
    let local = f.dir.path().join("local");
    std::fs::create_dir_all(local.join("project/drafts")).unwrap();
    std::fs::create_dir_all(local.join("inbox")).unwrap();
    random_file(&local.join("project"), "plan.txt", 100, 3);
    let mut h = f.harness();
    wait_for(&mut h, "the bucket", |a| {
        a.place.is_some() && !a.listing.loading
    });
    for name in ["project", "inbox"] {
        h.input_mut()
            .dropped_files
            .push(Arc::new(DroppedPath(local.join(name))));
    }
    wait_for(&mut h, "the folders to be listed", |a| {
        listed(a, "project") && listed(a, "inbox")
    });
    let head = |key: &str| {
        f.runtime
            .block_on(f.store.client.head("s3share", key))
            .unwrap()
    };
    assert!(head("project/drafts/").is_some(), "the empty folder inside");
    assert!(head("inbox/").is_some(), "the empty folder dropped");
    wait_for(&mut h, "the upload", |a| {
        a.transfers
            .iter()
            .all(|t| t.state == TransferState::Finished)
            && !a.transfers.is_empty()
    });
    assert!(head("project/plan.txt").is_some());
}

/// Once its link and QR code come, the share dialog grows to show them, up to the window's
/// height: it stayed as tall as before them, the QR code cut in half and the relay's part
/// out of sight in a 1200×800 window.
#[test]
fn the_share_dialog_grows_to_show_its_qr_code() {
    let f = Fixture::new();
    f.put("notes.txt", b"n");
    let mut h = f.harness();
    share_dialog_for(&mut h, "notes.txt");
    h.get_by_label("🔗 Copy link").click();
    wait_for(&mut h, "the QR code", |a| {
        a.share.as_ref().is_some_and(|s| s.qr.is_some())
    });
    for _ in 0..5 {
        h.step();
    }
    let dialog = h
        .ctx
        .memory(|m| m.area_rect(egui::Id::unique("share")))
        .expect("the dialog's area");
    let last = h.get_by_label("🔗 Share via relay").rect();
    assert!(
        dialog.contains_rect(last),
        "the dialog {dialog:?} shows its last button {last:?}"
    );
}

/// In a small window with the preview open, the toolbar's buttons keep their icons (their
/// names on hover) so the table keeps room: with their words they wrapped onto six rows and
/// the table showed no row at 800×500.
#[test]
fn a_narrow_browser_gets_a_compact_toolbar_and_keeps_its_rows() {
    let f = Fixture::new();
    f.put("notes.txt", b"n");
    let mut h = f.harness();
    h.set_size(egui::vec2(800.0, 500.0));
    wait_for(&mut h, "the listing", |a| listed(a, "notes.txt"));
    assert!(
        h.query_by_label("⬆ Upload…").is_some(),
        "words while there is room"
    );
    let entry = h.state().listing.row(0).clone();
    h.state_mut().activate(&entry);
    wait_for(&mut h, "the preview", |a| {
        a.preview.as_ref().is_some_and(|p| p.content.is_some())
    });
    h.run_steps(4);
    assert!(h.query_by_label("⬆ Upload…").is_none());
    assert!(h.query_by_label("📂").is_some(), "the icon stays");
    let row = h
        .get_all_by_label("notes.txt")
        .map(|n| n.rect())
        .min_by(|a, b| a.min.x.total_cmp(&b.min.x))
        .unwrap();
    assert!(row.max.y < 400.0, "the table's row is in view: {row:?}");
}

/// What SIGTERM or SIGHUP (a logout, `kill`) does: the app quits without asking, as nobody
/// may be there to answer, but cleanly: running transfers are cancelled (no multipart upload
/// left open) and the window closes the normal way, so its settings are saved. The signal's
/// default killed the process: settings changed since the last autosave were lost.
#[test]
fn asked_to_end_the_app_stops_its_transfers_and_closes_without_asking() {
    use s3share::app::QuitState;
    let f = Fixture::new();
    let upload = f.dir.path().join("big.iso");
    std::fs::File::create(&upload)
        .unwrap()
        .set_len(400 << 20)
        .unwrap();
    let mut h = f.harness();
    wait_for(&mut h, "the bucket", |a| {
        a.place.is_some() && !a.listing.loading
    });
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(upload)));
    wait_for(&mut h, "the upload moving bytes", |a| {
        a.transfers
            .iter()
            .any(|t| t.state == TransferState::Running && t.done > 0)
    });
    let ctx = h.ctx.clone();
    h.state_mut().quit_now(&ctx);
    h.step();
    assert_ne!(h.state().quit, QuitState::Asking, "nobody is asked");
    wait_for(&mut h, "the window to close", |a| {
        a.quit == QuitState::Closing
    });
    let open = f
        .runtime
        .block_on(f.store.client.list_open_uploads("s3share", ""))
        .unwrap();
    assert!(open.is_empty(), "{open:?}");
}

/// A first run opens on the embedded store: its empty folder says where the files go (nothing
/// in the window said so).
#[test]
fn the_embedded_store_says_where_its_files_are_kept() {
    let f = Fixture::new();
    let mut h = f.harness();
    wait_for(&mut h, "the empty bucket", |a| {
        a.place.is_some() && !a.listing.loading
    });
    h.run_steps(4);
    let dir = crate::support::store_paths(f.dir.path()).data_dir;
    let said = format!(
        "Files uploaded here are kept on this computer, in {}.",
        dir.display()
    );
    assert!(h.query_by_label(&said).is_some(), "{said}");
}
