//! The relay in the desktop app: the switch, "Share via relay", the "Shared links" panel
//! (copy again, revoke) and drop → link with the relay running. Real app, real worker, real
//! embedded store (which the relay streams), real HTTP to the links.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable as _};
use s3share::app::backend::ConnectionTarget;
use s3share::app::{RelayStatus, S3ShareApp};

use crate::support::{random_file, store_paths};
use crate::ui::{DroppedPath, Fixture, listed, wait_for};

fn shown(h: &Harness<'_, S3ShareApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// What a GET of `url` (following redirects) answers: status and body, or the error.
fn get(f: &Fixture, url: &str) -> Result<(u16, Vec<u8>), reqwest::Error> {
    f.runtime.block_on(async {
        let r = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
            .get(url)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.bytes().await?.to_vec()))
    })
}

/// Waits (bounded) until nothing listens at `url` any more: the relay stops accepting once its
/// accept loop sees the stop, a moment after the stop is reported.
fn assert_refused_soon(f: &Fixture, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match get(f, url) {
            Err(e) if e.is_connect() => return,
            other => assert!(
                Instant::now() < deadline,
                "still answering after the relay was stopped: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn clipboard(f: &Fixture) -> Option<String> {
    f.clipboard.0.lock().clone()
}

/// A harness in folder `shared/`, with the relay set to listen on a free port.
fn in_shared_folder(f: &Fixture) -> Harness<'static, S3ShareApp> {
    let mut h = f.harness();
    wait_for(&mut h, "the listing", |a| listed(a, "shared"));
    let folder = h.state().listing.row(0).clone();
    h.state_mut().activate(&folder);
    wait_for(&mut h, "the folder", |a| {
        listed(a, "report 2024.txt") && !a.listing.loading
    });
    h.state_mut().settings.relay_listen = "127.0.0.1:0".into();
    h
}

#[test]
fn share_via_relay_then_the_panel_copies_again_and_revokes_then_the_switch_stops_it() {
    let f = Fixture::new();
    let bytes: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 251) as u8).collect();
    f.put("shared/report 2024.txt", &bytes);
    let mut h = in_shared_folder(&f);

    h.get_by_label_contains("report 2024.txt").click();
    h.step();
    h.get_by_label("🔗 Copy link…").click();
    wait_for(&mut h, "the share dialog", |a| a.share.is_some());
    // Relay off: the button is there but disabled, says why, and offers to switch it on.
    assert!(
        h.get_by_label("🔗 Share via relay")
            .accesskit_node()
            .is_disabled()
    );
    assert!(shown(&h, "The relay is off."));
    h.get_by_label("Switch the relay on").click();
    wait_for(&mut h, "the relay", |a| a.relay_url().is_some());
    let base = h.state().relay_url().unwrap().to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    assert!(h.state().settings.relay_on, "the switch is remembered");
    assert!(shown(&h, &format!("Relay on {base}")), "the URL is shown");
    // As `serve` does: the links base is noted beside the secret for `link --relay`.
    let secret = store_paths(f.dir.path()).config_dir.join("relay-secret");
    assert_eq!(
        s3share::relay::remembered_public_url(&secret).as_deref(),
        Some(base.as_str())
    );

    h.state_mut().share.as_mut().unwrap().note = "for Ana".into();
    h.get_by_label("🔗 Share via relay").click();
    wait_for(&mut h, "the relay link", |_| clipboard(&f).is_some());
    let url = clipboard(&f).unwrap();
    assert!(url.starts_with(&format!("{base}/")), "{url}");
    assert!(url.len() < 140, "short: {url}");
    assert!(!url.contains("X-Amz-"), "not presigned: {url}");
    assert_eq!(get(&f, &url).unwrap(), (200, bytes.clone()), "{url}");
    assert!(shown(&h, "Relay link copied. It works until"), "the toast");
    let week = s3share::links::format_time(SystemTime::now() + Duration::from_secs(7 * 86400));
    assert!(
        shown(&h, &format!("until {week}")),
        "the default 7 days, beyond a presigned link's limit"
    );
    assert!(h.state().share.as_ref().unwrap().qr.is_some(), "its QR");
    h.get_by_label("Close").click();
    h.step();

    // The panel lists it from the ledger.
    h.get_by_label("🔗 Shared links…").click();
    wait_for(&mut h, "the ledger", |a| {
        a.shared_links.as_ref().is_some_and(|p| p.records.is_some())
    });
    let records = h
        .state()
        .shared_links
        .as_ref()
        .unwrap()
        .records
        .clone()
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let id = records[0].id.clone();
    assert_eq!(records[0].scope, "shared/report 2024.txt");
    assert_eq!(records[0].note.as_deref(), Some("for Ana"));
    assert!(shown(&h, &id) && shown(&h, "for Ana") && shown(&h, "active"));

    // Copy again: the same link, rebuilt from the record and the secret.
    *f.clipboard.0.lock() = None;
    h.get_by_label("📋 Copy").click();
    wait_for(&mut h, "the link again", |_| clipboard(&f).is_some());
    assert_eq!(clipboard(&f).unwrap(), url);

    // Revoke, with a confirmation; then the link is refused within a second.
    h.get_by_label("Revoke…").click();
    wait_for(&mut h, "the confirmation", |a| {
        a.shared_links
            .as_ref()
            .is_some_and(|p| p.confirm_revoke.is_some())
    });
    h.get_by_label("Revoke link").click();
    wait_for(&mut h, "the revocation", |a| {
        a.shared_links.as_ref().is_some_and(|p| {
            p.revoking.is_none()
                && !p.loading
                && p.records
                    .as_ref()
                    .is_some_and(|r| r.first().is_some_and(|r| r.revoked))
        })
    });
    let revoked = Instant::now();
    loop {
        let (status, _) = get(&f, &url).unwrap();
        if status == 403 {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "still {status} a second after the revocation"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(shown(&h, "revoked"), "the panel shows its state");

    // The switch off: nothing listens any more.
    h.get_by_label("Run the relay").click();
    wait_for(&mut h, "the relay to stop", |a| a.relay == RelayStatus::Off);
    assert!(!h.state().settings.relay_on);
    assert_refused_soon(&f, &url);
}

#[test]
fn with_the_relay_running_drop_to_link_gives_a_relay_link_and_quitting_stops_it() {
    let f = Fixture::new();
    f.put("shared/report 2024.txt", b"x");
    let local = f.dir.path().join("local");
    std::fs::create_dir_all(&local).unwrap();
    let photo = random_file(&local, "holiday photo.jpg", 30_000, 5);
    let mut h = in_shared_folder(&f);

    h.get_by_label("Run the relay").click();
    wait_for(&mut h, "the relay", |a| a.relay_url().is_some());
    let base = h.state().relay_url().unwrap().to_owned();

    // The drop zone's right half: "Upload and copy link".
    h.event(egui::Event::PointerMoved(egui::pos2(900.0, 400.0)));
    h.step();
    h.input_mut()
        .dropped_files
        .push(Arc::new(DroppedPath(photo.clone())));
    wait_for(&mut h, "the link on the clipboard", |_| {
        clipboard(&f).is_some()
    });
    let url = clipboard(&f).unwrap();
    assert!(url.starts_with(&format!("{base}/")), "a relay link: {url}");
    assert_eq!(
        get(&f, &url).unwrap(),
        (200, std::fs::read(&photo).unwrap())
    );
    let day = SystemTime::now() + Duration::from_secs(86400);
    assert!(
        [day, day + Duration::from_secs(60)].iter().any(|t| shown(
            &h,
            &format!(
                "Relay link copied. It works until {}",
                s3share::links::format_time(*t)
            )
        )),
        "the toast says it is a relay link, and until when"
    );

    // "Copy link" on the finished upload: a relay link too.
    *f.clipboard.0.lock() = None;
    h.get_by_label("🔗 Copy link").click();
    wait_for(&mut h, "the row's link", |_| clipboard(&f).is_some());
    let again = clipboard(&f).unwrap();
    assert!(again.starts_with(&format!("{base}/")), "{again}");
    assert_eq!(get(&f, &again).unwrap().0, 200);

    // Closing the app stops the relay with it.
    drop(h);
    assert_refused_soon(&f, &url);
}

#[test]
fn every_relay_widget_can_be_reached_by_name() {
    let f = Fixture::new();
    f.put("shared/report 2024.txt", b"x");
    let mut h = in_shared_folder(&f);
    h.get_by_label_contains("report 2024.txt").click();
    h.step();
    h.get_by_label("🔗 Copy link…").click();
    wait_for(&mut h, "the share dialog", |a| a.share.is_some());
    let unnamed = h.unnamed_widgets();
    assert!(
        unnamed.is_empty(),
        "the sidebar and the share dialog: {unnamed:?}"
    );
    h.get_by_label("Close").click();
    h.step();
    h.get_by_label("🔗 Shared links…").click();
    wait_for(&mut h, "the ledger", |a| {
        a.shared_links.as_ref().is_some_and(|p| p.records.is_some())
    });
    assert!(shown(&h, "No relay links in this bucket yet."));
    let unnamed = h.unnamed_widgets();
    assert!(unnamed.is_empty(), "the panel: {unnamed:?}");
}

/// Asks the worker something after whatever it is doing now, and waits for the answer: the
/// worker takes commands in turn, so every event it sent before (a relay started again on a
/// new connection, or not) has reached the app by then.
fn settle(h: &mut Harness<'_, S3ShareApp>) {
    h.state_mut().buckets = None;
    h.state_mut().retry_buckets();
    wait_for(h, "the worker's answer", |a| a.buckets.is_some());
}

/// A free port on loopback, to listen on at a fixed address.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn the_relay_moves_to_a_new_connection_on_its_own_address_and_stays_off_when_it_failed() {
    let f = Fixture::new();
    f.put("shared/report 2024.txt", b"x");
    let mut h = in_shared_folder(&f);
    let port = free_port();
    h.state_mut().settings.relay_listen = format!("127.0.0.1:{port}");
    h.get_by_label("Run the relay").click();
    wait_for(&mut h, "the relay", |a| a.relay_url().is_some());

    // Another connection (the same store again): the relay restarts for it at the same
    // address. It said "Address already in use" and switched itself off: the old relay's
    // socket was still open when the new one bound.
    h.state_mut().connect(ConnectionTarget::Local);
    wait_for(&mut h, "connected again", |a| a.place.is_some());
    settle(&mut h);
    assert!(
        matches!(h.state().relay, RelayStatus::On { .. }),
        "{:?}",
        h.state().relay
    );
    assert!(h.state().settings.relay_on);
    let url = format!("http://127.0.0.1:{port}/");
    assert!(get(&f, &url).is_ok(), "the relay answers on its address");

    // A relay that could not start stays off: another program holds the address when it is
    // switched on; once it is free, a new connection must not start the relay the app shows
    // as off (it did, and handed out relay links under an unticked switch).
    h.get_by_label("Run the relay").click();
    wait_for(&mut h, "the relay to stop", |a| a.relay_url().is_none());
    assert_refused_soon(&f, &url);
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    h.get_by_label("Run the relay").click();
    wait_for(&mut h, "the failure", |a| {
        matches!(a.relay, RelayStatus::Failed(_))
    });
    assert!(!h.state().settings.relay_on);
    drop(squatter);
    h.state_mut().connect(ConnectionTarget::Local);
    wait_for(&mut h, "connected again", |a| a.place.is_some());
    settle(&mut h);
    assert!(h.state().relay_url().is_none(), "{:?}", h.state().relay);
    assert!(
        get(&f, &url).is_err_and(|e| e.is_connect()),
        "nothing listens on the relay's address"
    );
}
