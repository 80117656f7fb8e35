//! Frame time of the real app while its real worker uploads 10,000 small files to the embedded
//! store (kittest, no GPU: the UI's own CPU cost), and the longest queue of worker events a
//! frame found waiting.
//!
//! `cargo bench --bench ui_transfers` prints median and p99 in milliseconds (`FILES=n` for
//! another count). Frames are paced at 60 per second, as a window would draw them.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark: a failed unwrap is a failure with its line"
)]

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use s3share::app::S3ShareApp;
use s3share::app::backend::{BackendConfig, ConnectionTarget};
use s3share::app::clipboard::MemoryClipboard;
use s3share::app::model::{Transfer, TransferState};
use s3share::store::StorePaths;

fn main() {
    let files: usize = std::env::var("FILES")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(10_000);
    // The app's own runtime (its threads yield to the window's), as `s3share` builds it.
    let runtime = s3share::app::backend::io_runtime().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = StorePaths {
        config_dir: dir.path().join("config"),
        data_dir: dir.path().join("data"),
    };
    let local = dir.path().join("local").join("many");
    std::fs::create_dir_all(&local).unwrap();
    for i in 0..files {
        std::fs::write(local.join(format!("f-{i:05}.txt")), format!("file {i}\n")).unwrap();
    }

    let handle = runtime.handle().clone();
    let config = BackendConfig {
        store_paths: Some(paths),
        aws_files: None,
    };
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .build_eframe(move |cc| {
            S3ShareApp::new(cc, handle, config, Box::new(MemoryClipboard::default()))
        });
    h.state_mut().connect(ConnectionTarget::Local);
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.state().place.is_none() || h.state().listing.loading {
        assert!(Instant::now() < deadline, "no connection");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }

    let started = Instant::now();
    h.state_mut().upload_paths(vec![local]);
    let frame = Duration::from_millis(16);
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut times = Vec::new();
    loop {
        let t = Instant::now();
        h.step();
        let took = t.elapsed();
        times.push(took);
        let app = h.state();
        if app.transfers.len() == files && !app.transfers.iter().any(Transfer::is_active) {
            break;
        }
        assert!(Instant::now() < deadline, "the uploads did not end");
        std::thread::sleep(frame.saturating_sub(took));
    }
    let elapsed = started.elapsed();
    let finished = h
        .state()
        .transfers
        .iter()
        .filter(|t| t.state == TransferState::Finished)
        .count();
    assert_eq!(finished, files, "every upload finishes");

    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{files} uploads through the app's worker: {:.1} s, {:.0} files/s",
        elapsed.as_secs_f64(),
        files as f64 / elapsed.as_secs_f64()
    );
    println!(
        "frame time while uploading: median {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} frames)",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100]),
        ms(times[times.len() - 1]),
        times.len()
    );
    println!(
        "longest event queue a frame found: {} events",
        h.state().event_queue_peak()
    );
}
