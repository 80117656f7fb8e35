//! Frame time of the real app with 100,000 rows listed, while scrolling; and the time from
//! creating the app to its first frame (kittest, no GPU: this is the UI's own CPU cost).
//!
//! `cargo bench --bench ui_frame` prints median and p99 in milliseconds.

#![allow(
    clippy::unwrap_used,
    reason = "a benchmark: a failed unwrap is a failure with its line"
)]

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use s3share::app::S3ShareApp;
use s3share::app::backend::{BackendConfig, ConnectionTarget};
use s3share::app::clipboard::MemoryClipboard;
use s3share::s3::{ListPage, ObjectEntry};
use s3share::store::StorePaths;

fn main() {
    let rows: usize = std::env::var("ROWS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let paths = StorePaths {
        config_dir: dir.path().join("config"),
        data_dir: dir.path().join("data"),
    };

    let started = Instant::now();
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
    h.step();
    let first_frame = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.state().place.is_none() {
        assert!(Instant::now() < deadline, "no connection");
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    let connected = started.elapsed();
    // Let the (empty) real listing finish so it cannot replace ours.
    while h.state().listing.loading {
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }

    // Pages of 1,000 as S3 sends them, each applied between two frames as the app does.
    let now = std::time::SystemTime::now();
    let mut page_times = Vec::new();
    for chunk in 0..rows.div_ceil(1000) {
        let objects = (chunk * 1000..((chunk + 1) * 1000).min(rows))
            .map(|i| ObjectEntry {
                key: format!("file-{i:06}.bin"),
                size: (i as u64) * 1013,
                modified: Some(now),
                etag: None,
            })
            .collect();
        let t = Instant::now();
        h.state_mut().listing.add_page(
            "",
            ListPage {
                folders: Vec::new(),
                objects,
            },
        );
        page_times.push(t.elapsed());
    }
    let load_total: Duration = page_times.iter().sum();
    let worst_page = page_times.iter().max().copied().unwrap_or_default();
    assert_eq!(h.state().listing.len(), rows);

    let mut times = Vec::new();
    for i in 0..400 {
        let delta = if (i / 100) % 2 == 0 { -120.0 } else { 120.0 };
        h.event(egui::Event::MouseWheel {
            unit: egui::MouseWheelUnit::Point,
            delta: egui::vec2(0.0, delta * 10.0),
            phase: egui::TouchPhase::Move,
            modifiers: egui::Modifiers::NONE,
            source: egui::MouseWheelSource::Wheel,
        });
        h.hover_at(egui::pos2(600.0, 400.0));
        let t = Instant::now();
        h.step();
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("rows: {rows}");
    println!(
        "frame time while scrolling: median {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} frames)",
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100]),
        ms(times[times.len() - 1]),
        times.len()
    );
    println!(
        "listing {rows} keys in pages of 1,000: {:.1} ms in all, worst page {:.2} ms",
        ms(load_total),
        ms(worst_page)
    );
    println!(
        "app created to first frame: {:.1} ms; to connected and listing: {:.1} ms",
        ms(first_frame),
        ms(connected)
    );
}
