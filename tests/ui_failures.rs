//! Failures that must never look like loss: a failed listing, preview or bucket list keeps what
//! was last seen (marked stale), says what to do, and offers Retry; and folders behave as on S3.
//! The failures are real: the embedded store's bucket folder is moved away under the server.

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use s3share::app::S3ShareApp;
use s3share::app::model::{Place, TransferState};

use crate::ui::{Fixture, listed, wait_for};

fn shown(h: &Harness<'_, S3ShareApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// Waits for `name` in the listing, opens it, and waits for its preview to come.
fn open_preview(h: &mut Harness<'_, S3ShareApp>, name: &str) {
    wait_for(h, "the listing", |a| listed(a, name));
    let entry = (0..h.state().listing.len())
        .map(|i| h.state().listing.row(i).clone())
        .find(|e| e.name == name)
        .unwrap();
    h.state_mut().activate(&entry);
    wait_for(h, "the preview", |a| {
        a.preview.as_ref().is_some_and(|p| p.content.is_some())
    });
}

/// Every label that mentions "empty", in any case.
fn empty_texts(h: &Harness<'_, S3ShareApp>) -> Vec<String> {
    ["empty", "Empty"]
        .iter()
        .flat_map(|w| h.query_all_by_label_contains(w))
        .filter_map(|n| {
            let node = n.accesskit_node();
            node.label().or_else(|| node.value())
        })
        .collect()
}

#[test]
fn a_failed_listing_never_says_empty_and_keeps_the_last_listing_marked_stale() {
    let f = Fixture::new();
    f.put("keep me.txt", b"still here");
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| {
        listed(a, "keep me.txt") && !a.listing.loading
    });

    // The server loses the bucket (as if it went away) and the user refreshes.
    let bucket = f.bucket_dir("s3share");
    let away = f.dir.path().join("away");
    std::fs::rename(&bucket, &away).unwrap();
    h.key_press(egui::Key::F5);
    wait_for(&mut h, "the failure", |a| a.listing.error.is_some());

    assert_eq!(empty_texts(&h), Vec::<String>::new(), "never 'empty'");
    assert!(shown(&h, "Could not list this folder"));
    assert!(shown(&h, "Retry, or check the connection"));
    assert!(
        listed(h.state(), "keep me.txt"),
        "the last good listing stays"
    );
    assert!(h.state().listing.stale);
    assert!(shown(&h, "may be out of date"), "marked stale");
    let error = h.state().listing.error.clone().unwrap();
    let label = h
        .query_all_by_label_contains(&error)
        .next()
        .expect("the error is shown");
    assert!(
        label.rect().max.x <= 1200.0,
        "the error wraps inside the window: {:?}",
        label.rect()
    );

    // Back again: Retry lists it for real.
    std::fs::rename(&away, &bucket).unwrap();
    h.get_by_label("⟳ Retry").click();
    wait_for(&mut h, "the fresh listing", |a| {
        a.listing.error.is_none() && !a.listing.loading && listed(a, "keep me.txt")
    });
    assert!(!h.state().listing.stale && !shown(&h, "Could not list"));
}

#[test]
fn a_folder_that_cannot_be_listed_is_not_called_empty() {
    let f = Fixture::new();
    let mut h = f.harness();
    wait_for(&mut h, "the bucket", |a| {
        a.place.is_some() && !a.listing.loading
    });
    h.state_mut().open(Place {
        bucket: "no-such-bucket".into(),
        prefix: String::new(),
    });
    wait_for(&mut h, "the failure", |a| a.listing.error.is_some());
    assert_eq!(empty_texts(&h), Vec::<String>::new(), "never 'empty'");
    assert!(shown(&h, "Could not list this folder"));
    assert!(
        shown(&h, "The folder could not be listed"),
        "the status bar too"
    );

    // Nothing can go into a bucket that does not exist: the buttons that add are off, and
    // a drop says why instead of starting uploads that would all fail.
    for label in [
        "⬆ Upload…",
        "🔗 Upload and copy link…",
        "📂 Upload folder…",
        "➕ New folder",
        "📥 Upload link…",
    ] {
        assert!(
            h.get_by_label(label).accesskit_node().is_disabled(),
            "{label}"
        );
    }
    let file = f.dir.path().join("report.txt");
    std::fs::write(&file, b"words").unwrap();
    h.input_mut()
        .dropped_files
        .push(std::sync::Arc::new(crate::ui::DroppedPath(file)));
    h.run_steps(4);
    assert!(shown(&h, "\"no-such-bucket\" does not exist"), "said why");
    assert!(h.state().transfers.is_empty(), "no upload started");

    // A bucket that exists takes uploads again.
    h.state_mut().open(Place {
        bucket: "s3share".into(),
        prefix: String::new(),
    });
    wait_for(&mut h, "the bucket", |a| {
        a.listing.error.is_none() && !a.listing.loading
    });
    assert!(!h.get_by_label("⬆ Upload…").accesskit_node().is_disabled());
}

#[test]
fn a_failed_preview_keeps_the_last_one_and_offers_retry() {
    let f = Fixture::new();
    f.put("notes.txt", b"the first words");
    f.put("other.txt", b"other words");
    let mut h = f.harness();
    open_preview(&mut h, "notes.txt");
    assert!(shown(&h, "the first words"));

    let bucket = f.bucket_dir("s3share");
    let away = f.dir.path().join("away");
    std::fs::rename(&bucket, &away).unwrap();
    h.state_mut().retry_preview();
    wait_for(&mut h, "the failed reload", |a| {
        a.preview.as_ref().is_some_and(|p| p.failed.is_some())
    });
    assert!(shown(&h, "the first words"), "the last good preview stays");
    assert!(shown(&h, "Could not load the preview again"));
    assert!(shown(&h, "may be out of date"));

    // A preview that never loaded says why, with Retry.
    let other = (0..h.state().listing.len())
        .map(|i| h.state().listing.row(i).clone())
        .find(|e| e.name == "other.txt")
        .unwrap();
    h.state_mut().activate(&other);
    wait_for(&mut h, "the failed preview", |a| {
        a.preview
            .as_ref()
            .is_some_and(|p| matches!(p.content, Some(Err(_))))
    });
    assert!(shown(&h, "Could not load the preview"));
    std::fs::rename(&away, &bucket).unwrap();
    h.query_all_by_label("⟳ Retry")
        .max_by(|a, b| a.rect().min.x.total_cmp(&b.rect().min.x))
        .unwrap()
        .click();
    wait_for(&mut h, "the preview after Retry", |a| {
        a.preview
            .as_ref()
            .is_some_and(|p| matches!(p.content, Some(Ok(_))))
    });
    assert!(shown(&h, "other words"));
}

#[test]
fn a_failed_bucket_list_keeps_the_last_one_marked_stale() {
    let f = Fixture::new();
    let mut h = f.harness();
    wait_for(
        &mut h,
        "the buckets",
        |a| matches!(&a.buckets, Some(Ok(b)) if !b.is_empty()),
    );
    // The whole store folder goes away: listing buckets fails on the server.
    let data = f.bucket_dir("s3share").parent().unwrap().to_owned();
    let away = f.dir.path().join("data-away");
    std::fs::rename(&data, &away).unwrap();
    h.state_mut().retry_buckets();
    wait_for(&mut h, "the failure", |a| a.buckets_failed.is_some());
    assert!(
        matches!(&h.state().buckets, Some(Ok(b)) if b.contains(&"s3share".to_owned())),
        "the last good list stays"
    );
    h.query_all_by_label("Bucket")
        .find(|n| n.accesskit_node().role() == egui::accesskit::Role::ComboBox)
        .expect("the bucket menu")
        .click();
    for _ in 0..3 {
        h.step();
    }
    assert!(shown(&h, "Could not list the buckets again"));
    assert!(shown(&h, "These are the last known buckets."));
    std::fs::rename(&away, &data).unwrap();
}

#[test]
fn folders_behave_as_on_s3_emptied_ones_go_new_ones_stay() {
    let f = Fixture::new();
    f.put("drafts/only file.txt", b"x");
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| listed(a, "drafts"));
    h.state_mut().create_folder("made here");
    wait_for(&mut h, "the new folder", |a| listed(a, "made here"));

    // Deleting the only file of a folder empties it: on S3 the folder is gone.
    f.runtime
        .block_on(f.store.client.delete("s3share", "drafts/only file.txt"))
        .unwrap();
    h.state_mut().refresh();
    wait_for(&mut h, "the listing again", |a| !a.listing.loading);
    assert!(!listed(h.state(), "drafts"), "an emptied folder disappears");
    assert!(
        listed(h.state(), "made here"),
        "a 'New folder' stays (its marker)"
    );
    assert_eq!(empty_texts(&h), Vec::<String>::new());
}

/// A download the network cut off (more often than it reconnects within one try) keeps its
/// partial file, and Retry continues it with a Range request, as the CLI's `get` does: the
/// app's downloads had no resume, so the retry started from zero (and a killed app's partial
/// file stayed beside the finished download).
#[test]
fn a_download_cut_off_continues_from_its_partial_file_on_retry() {
    use crate::support::proxy::{Fault, Kind, Proxy};
    let f = Fixture::new();
    let size = 48 << 20;
    let src = crate::support::random_file(f.dir.path(), "source.bin", size, 9);
    let bytes = std::fs::read(&src).unwrap();
    f.put("big.bin", &bytes);
    let (mut h, endpoint) = crate::ui_credentials::app_with_profiles(&f);
    let proxy = f.runtime.block_on(Proxy::start(&endpoint));
    let office = crate::ui_credentials::custom("office", &proxy.endpoint, "right");
    h.state_mut().connect(office);
    wait_for(&mut h, "the listing", |a| {
        listed(a, "big.bin") && !a.listing.loading
    });

    // The first answer and each reconnect are cut after 10 MiB: the try fails with 40 MiB in.
    proxy.fault(Kind::GetObject, Fault::CutAnswer { after: 10 << 20 }, 4);
    let dest = f.dir.path().join("downloads");
    std::fs::create_dir_all(&dest).unwrap();
    let target = dest.join("big.bin");
    h.state_mut()
        .download_to(vec!["big.bin".into()], target.clone(), false);
    wait_for(&mut h, "the cut-off download", |a| {
        a.transfers
            .iter()
            .any(|t| matches!(t.state, TransferState::Failed(_)))
    });
    let partials = || {
        std::fs::read_dir(&dest)
            .unwrap()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .ends_with(".s3share-partial")
            })
            .count()
    };
    assert_eq!(partials(), 1, "the partial file is kept for the retry");
    let before = proxy.seen_of(Kind::GetObject).len();

    h.run_steps(4);
    h.get_by_label("⟳ Retry").click();
    wait_for(&mut h, "the retried download", |a| {
        a.transfers
            .iter()
            .any(|t| t.state == TransferState::Finished)
    });
    assert!(std::fs::read(&target).unwrap() == bytes, "byte for byte");
    assert_eq!(partials(), 0, "no partial file left");
    let retried = proxy.seen_of(Kind::GetObject);
    let first = &retried[before];
    let range = first.header("range");
    assert!(
        range.first().is_some_and(|r| !r.starts_with("bytes=0-")),
        "the retry continues where the partial file ends: {range:?}"
    );
}

/// An image whose bytes do not decode is not a failure to retry: it says what it is and what
/// to do (it said "Retry, or check the connection", which neither fixes).
#[test]
fn an_image_that_does_not_decode_says_so_without_offering_retry() {
    let f = Fixture::new();
    f.put("bad.png", &[7u8; 5000]);
    let mut h = f.harness();
    open_preview(&mut h, "bad.png");
    h.run_steps(4);
    assert!(shown(&h, "not an image this app can read"));
    assert!(!shown(&h, "check the connection"), "nothing to retry");
    assert!(h.query_by_label("⟳ Retry").is_none());
}

/// A text preview cut at 64 KiB says so where it is seen, above the text: said below it, the
/// note was some 12,000 lines down.
#[test]
fn a_cut_text_preview_says_so_above_the_text() {
    let f = Fixture::new();
    let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    f.put("big.txt", text.as_bytes());
    let mut h = f.harness();
    open_preview(&mut h, "big.txt");
    h.run_steps(4);
    let note = h.get_by_label_contains("The first 64 KiB");
    assert!(note.rect().max.y < 800.0, "in view: {:?}", note.rect());
    let body = h.get_by_label_contains("line 0\nline 1\n");
    assert!(note.rect().max.y <= body.rect().min.y, "above the text");
}
