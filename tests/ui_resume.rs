//! Interrupted uploads at the app's start: listed with how much is done, then resumed (only the
//! missing parts are sent) or discarded (aborted on the server, forgotten).

use std::sync::Arc;

use egui_kittest::kittest::Queryable as _;
use s3share::app::model::TransferState;
use s3share::transfer::{ResumeStore, TransferEvent, UploadItem, UploadJob, UploadOptions};

use crate::support::random_file;
use crate::ui::{Fixture, wait_for};

const MIB: usize = 1024 * 1024;

/// Starts a multipart upload of `file` to `key` with a resume record, and drops it (as a kill
/// would: nothing cleans up) once its first part is stored.
fn interrupted_upload(f: &Fixture, store: &ResumeStore, file: &std::path::Path, key: &str) {
    let item = UploadItem {
        path: file.to_owned(),
        key: key.to_owned(),
        size: std::fs::metadata(file).unwrap().len(),
    };
    let options = UploadOptions {
        multipart_threshold: 5 * MIB as u64,
        min_part_size: Some(5 * MIB as u64),
        concurrency: s3share::transfer::Concurrency {
            parts_in_flight: 1,
            ..Default::default()
        },
        resume: Some(store.clone()),
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = parking_lot::Mutex::new(Some(tx));
    // One part in flight: once more than a part went out, the first one is stored.
    let events: s3share::transfer::EventSink = Arc::new(move |e| {
        if matches!(e, TransferEvent::Progress { done, .. } if done > 6 * MIB as u64)
            && let Some(tx) = tx.lock().take()
        {
            let _ = tx.send(());
        }
    });
    let job = UploadJob::new("s3share", item)
        .options(options)
        .events(events);
    f.runtime.block_on(async {
        tokio::select! {
            r = f.store.client.upload_file(job) => panic!("the upload ended: {r:?}"),
            _ = rx => {}
        }
    });
}

/// The resume folder the fixture's app uses (the data folder's `resume/`, as the CLI's).
fn resume_store(f: &Fixture) -> ResumeStore {
    ResumeStore::new(
        crate::support::store_paths(f.dir.path())
            .data_dir
            .join("resume"),
    )
}

#[test]
fn interrupted_uploads_are_offered_at_start_and_resume_or_discard() {
    let f = Fixture::new();
    let store = resume_store(&f);
    let local = f.dir.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    let kept = random_file(&local, "kept.bin", 12 * MIB, 1);
    let dropped = random_file(&local, "dropped.bin", 12 * MIB, 2);
    interrupted_upload(&f, &store, &kept, "kept.bin");
    interrupted_upload(&f, &store, &dropped, "dropped.bin");
    assert_eq!(store.pending_uploads().len(), 2);
    let open = |f: &Fixture| {
        f.runtime
            .block_on(f.store.client.list_open_uploads("s3share", ""))
            .unwrap()
    };
    assert_eq!(open(&f).len(), 2);

    let mut h = f.harness();
    wait_for(&mut h, "the interrupted uploads", |a| {
        a.pending_uploads.len() == 2
    });
    assert!(
        h.query_all_by_label_contains("5.0 MiB of 12.0 MiB uploaded")
            .next()
            .is_some(),
        "how much is done is shown"
    );
    assert!(
        h.query_all_by_label_contains("s3://s3share/kept.bin")
            .next()
            .is_some()
    );

    // Both started within the same second: their order is either.
    let at = |h: &egui_kittest::Harness<'_, s3share::app::S3ShareApp>, key: &str| {
        h.state()
            .pending_uploads
            .iter()
            .position(|r| r.info.pending.key == key)
            .unwrap()
    };
    let i = at(&h, "kept.bin");
    h.get_all_by_label("Resume").nth(i).unwrap().click();
    wait_for(&mut h, "the resumed upload", |a| {
        a.transfers
            .iter()
            .any(|t| t.name == "kept.bin" && t.state == TransferState::Finished)
    });
    let stored = f.runtime.block_on(async {
        let link = f
            .store
            .client
            .link_get(
                "s3share",
                "kept.bin",
                std::time::Duration::from_secs(60),
                None,
            )
            .await
            .unwrap();
        reqwest::get(&link.url)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    });
    assert!(
        stored[..] == std::fs::read(&kept).unwrap()[..],
        "byte for byte"
    );

    h.get_by_label("Discard").click();
    wait_for(&mut h, "the discarded upload", |a| {
        a.pending_uploads.is_empty()
    });
    assert!(open(&f).is_empty(), "{:?}", open(&f));
    assert!(store.pending_uploads().is_empty());
    let gone = f
        .runtime
        .block_on(f.store.client.head("s3share", "dropped.bin"))
        .unwrap();
    assert!(gone.is_none());
}

/// "Later" puts the window away (it sat over the toolbar with no way to close it) and loses
/// nothing: the upload stays open on the server and is offered again at the next start.
#[test]
fn later_puts_the_interrupted_uploads_off_until_the_next_start() {
    let f = Fixture::new();
    let store = resume_store(&f);
    let local = f.dir.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    let file = random_file(&local, "later.bin", 12 * MIB, 3);
    interrupted_upload(&f, &store, &file, "later.bin");
    let mut h = f.harness();
    wait_for(&mut h, "the interrupted upload", |a| {
        a.pending_uploads.len() == 1
    });
    h.run_steps(4);
    h.get_by_label("Later").click();
    h.run_steps(4);
    assert!(h.state().pending_uploads.is_empty());
    assert!(
        h.query_by_label("Interrupted uploads").is_none(),
        "the window went"
    );
    assert_eq!(
        store.pending_uploads().len(),
        1,
        "still there for next time"
    );
    drop(h);
    let mut h = f.harness();
    wait_for(&mut h, "the upload offered again", |a| {
        a.pending_uploads.len() == 1
    });
}
