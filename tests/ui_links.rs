//! Drop a file, get a link: "Upload and copy link" from the drop zone and the Upload button,
//! "Copy link" and Retry in the transfers panel. Real app, real worker, real embedded store.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use s3share::app::S3ShareApp;
use s3share::app::model::TransferState;

use crate::support::random_file;
use crate::ui::{DroppedPath, Fixture, listed, state, wait_for};

/// Puts the pointer over the drop zone's right half ("Upload and copy link"), as a window system
/// that reports the pointer during a drag would.
fn point_at_link_half(h: &mut Harness<'_, S3ShareApp>) {
    h.event(egui::Event::PointerMoved(egui::pos2(900.0, 400.0)));
    h.step();
}

/// Whether some label contains `text`.
fn shown(h: &Harness<'_, S3ShareApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// The times a link asked for now with `lifetime` may show as ending (the minute may turn).
fn until(lifetime: Duration) -> [String; 2] {
    let end = SystemTime::now() + lifetime;
    [
        s3share::links::format_time(end),
        s3share::links::format_time(end + Duration::from_secs(60)),
    ]
}

#[test]
fn dropping_on_upload_and_copy_link_puts_one_link_per_line_on_the_clipboard() {
    let f = Fixture::new();
    let local = f.dir.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    let a = random_file(&local, "holiday photo.jpg", 3000, 1);
    let b = random_file(&local, "notes.txt", 500, 2);
    let plain = random_file(&local, "plain.bin", 100, 3);
    let mut h = f.harness();
    wait_for(&mut h, "the bucket", |a| {
        a.place.is_some() && !a.listing.loading
    });

    // A plain drop (no pointer over a half, nothing chosen before) uploads and copies nothing.
    h.event(egui::Event::PointerGone);
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(plain)));
    wait_for(&mut h, "the plain upload", |a| listed(a, "plain.bin"));
    wait_for(&mut h, "the plain upload to end", |a| {
        a.transfers.iter().all(|t| !t.is_active())
    });
    assert!(
        f.clipboard.0.lock().is_none(),
        "a plain upload copies nothing"
    );

    point_at_link_half(&mut h);
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(a.clone())));
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(b.clone())));
    wait_for(&mut h, "the links on the clipboard", |_| {
        f.clipboard.0.lock().is_some()
    });
    let text = f.clipboard.0.lock().clone().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "one link per file, one per line: {text}");
    for (url, path) in lines.iter().zip([&a, &b]) {
        assert!(
            url.contains("X-Amz-Expires=86400"),
            "the default lifetime: {url}"
        );
        let body = f
            .runtime
            .block_on(async { reqwest::get(*url).await.unwrap().bytes().await.unwrap() });
        assert_eq!(body.as_ref(), std::fs::read(path).unwrap(), "{url}");
    }
    assert!(
        shown(&h, "2 links copied, one per line. They work until"),
        "the toast says so"
    );
    assert!(
        until(Duration::from_secs(86400))
            .iter()
            .any(|t| shown(&h, &format!("until {t}"))),
        "the toast says until when, honestly"
    );
    assert!(
        h.state().settings.drop_copies_link,
        "the choice is remembered"
    );

    // Every finished upload can copy its link again from the transfers panel.
    *f.clipboard.0.lock() = None;
    let buttons = h.query_all_by_label("🔗 Copy link").count();
    assert_eq!(buttons, 3, "one per finished upload");
    // Newest on top: the last row is the first upload, the plain one.
    h.query_all_by_label("🔗 Copy link").last().unwrap().click();
    wait_for(&mut h, "the row's link", |_| f.clipboard.0.lock().is_some());
    let one = f.clipboard.0.lock().clone().unwrap();
    assert_eq!(one.lines().count(), 1, "{one}");
    assert!(
        one.contains("plain.bin"),
        "the last row is the plain upload: {one}"
    );
    assert!(shown(&h, "Link copied. It works until"));
}

#[test]
fn the_upload_and_copy_link_button_works_through_the_path_field() {
    // Under a bare test rfd answers at once with nothing, so the typed path stands in for the
    // file picker; what happens after is the same.
    let f = Fixture::new();
    let file = random_file(f.dir.path(), "report.pdf", 2048, 4);
    let mut h = f.harness();
    wait_for(&mut h, "the bucket", |a| {
        a.place.is_some() && !a.listing.loading
    });
    h.get_by_label("🔗 Upload and copy link…").click();
    wait_for(&mut h, "the path field", |a| a.path_prompt.is_some());
    crate::ui::clear_path_field(&mut h);
    assert!(shown(&h, "Upload a file or folder and copy its link"));
    h.event(egui::Event::Text(file.to_string_lossy().into_owned()));
    h.step();
    h.key_press(egui::Key::Enter);
    wait_for(&mut h, "the link", |_| f.clipboard.0.lock().is_some());
    let url = f.clipboard.0.lock().clone().unwrap();
    assert!(url.contains("report.pdf") && !url.contains('\n'), "{url}");
    assert!(shown(&h, "Link copied. It works until"));
}

#[test]
fn a_failed_upload_says_why_and_retry_runs_it_again() {
    let f = Fixture::new();
    f.put("late.txt", b"already there");
    let file = random_file(f.dir.path(), "late.txt", 64, 5);
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| listed(a, "late.txt"));
    // The name is taken, so the upload waits for an answer; meanwhile the file goes away.
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(file.clone())));
    wait_for(&mut h, "the conflict prompt", |a| a.conflicts.is_some());
    let bytes = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    h.get_by_label("Overwrite").click();
    wait_for(&mut h, "the failure", |a| {
        a.transfers
            .iter()
            .any(|t| matches!(t.state, TransferState::Failed(_)))
    });
    let TransferState::Failed(why) = state(&h, "late.txt") else {
        unreachable!()
    };
    assert!(shown(&h, "✖ failed"));
    // The reason may be cut short to fit the row (all of it shows on hover).
    let start: String = why.chars().take(20).collect();
    assert!(shown(&h, &start), "the row says why: {why}");
    // The panel's Retry names what it runs again: a failure, not a cancellation.
    h.run_steps(4);
    assert!(shown(&h, "⟳ Retry failed (1)"));
    // The file is back; the row's own Retry runs it again.
    std::fs::write(&file, &bytes).unwrap();
    h.get_by_label("⟳ Retry").click();
    wait_for(&mut h, "the retried upload", |a| {
        a.transfers
            .iter()
            .any(|t| t.state == TransferState::Finished)
    });
    assert!(
        shown(&h, "🔗 Copy link"),
        "a finished upload offers its link"
    );
}

/// The toolbar's link lifetime is the one every link copied at once has: Ctrl+C copied a link
/// of the share dialog's last lifetime (1 hour) while the toolbar said "link: 15 minutes",
/// which only "Upload and copy link" followed. The share dialog starts from it too.
#[test]
fn the_toolbar_lifetime_is_the_lifetime_of_copied_links() {
    let f = Fixture::new();
    f.put("notes.txt", b"n");
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| listed(a, "notes.txt"));
    let chooser = |h: &Harness<'_, S3ShareApp>| {
        use egui_kittest::kittest::NodeT as _;
        h.get_all_by_role(egui::accesskit::Role::ComboBox)
            .filter_map(|n| n.accesskit_node().value().map(|v| v.to_string()))
            .find(|v| v.starts_with("link: "))
    };
    assert_eq!(chooser(&h).as_deref(), Some("link: 1 day"), "the default");
    h.get_all_by_role(egui::accesskit::Role::ComboBox)
        .find(|n| {
            use egui_kittest::kittest::NodeT as _;
            n.accesskit_node()
                .value()
                .is_some_and(|v| v.starts_with("link: "))
        })
        .unwrap()
        .click();
    h.run_steps(4);
    h.get_by_label("15 minutes").click();
    h.run_steps(4);
    assert_eq!(chooser(&h).as_deref(), Some("link: 15 minutes"));
    h.get_by_label_contains("notes.txt").click();
    h.run_steps(4);
    h.event(egui::Event::Copy);
    wait_for(&mut h, "the link", |_| f.clipboard.0.lock().is_some());
    let url = f.clipboard.0.lock().clone().unwrap();
    assert!(url.contains("X-Amz-Expires=900"), "{url}");
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::L);
    wait_for(&mut h, "the share dialog", |a| a.share.is_some());
    assert_eq!(h.state().share.as_ref().unwrap().expiry, Some(900));
}
