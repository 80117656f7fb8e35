//! The app's worker never stalls: a connect that hangs runs beside everything else, and its
//! late answer does not undo what the user chose since.

use std::time::{Duration, Instant};

use s3share::app::ConnectionState;
use s3share::app::backend::ConnectionTarget;

use crate::ui::{Fixture, wait_for};

/// Points the embedded store's state file at `port`: the app then finds a store that another
/// process serves (the fixture holds its lock) on a port that never answers, and waits for it.
fn store_answers_on(f: &Fixture, port: u16) {
    let file = crate::support::store_paths(f.dir.path())
        .config_dir
        .join("local-store.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    state["port"] = port.into();
    std::fs::write(&file, serde_json::to_vec(&state).unwrap()).unwrap();
}

#[test]
fn a_connect_that_hangs_holds_up_nothing_and_its_late_answer_is_ignored() {
    let f = Fixture::new();
    let hole = f.runtime.block_on(crate::support::proxy::black_hole());
    let port: u16 = hole.rsplit(':').next().unwrap().parse().unwrap();
    store_answers_on(&f, port);

    let mut h = f.harness_as_started();
    h.state_mut().connect(ConnectionTarget::Local);
    h.step();
    // The user gives up on it and picks another connection: its answer comes at once, not
    // after the first one's wait (5 s before the store is called unreachable).
    let other = ConnectionTarget::Profile("no-such-profile-here".into());
    h.state_mut().connect(other.clone());
    let asked = Instant::now();
    wait_for(
        &mut h,
        "the second connection's answer",
        |a| matches!(&a.connection, ConnectionState::Failed(t, _) if *t == other),
    );
    let waited = asked.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "the second connect waited {waited:?} behind the first"
    );
    // The first connect ends (unreachable) a few seconds later; what the user sees stays the
    // answer to what they chose last.
    let until = asked + Duration::from_secs(7);
    while Instant::now() < until {
        h.step();
        assert!(
            matches!(&h.state().connection, ConnectionState::Failed(t, _) if *t == other),
            "a late answer replaced the current one: {:?}",
            h.state().connection
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A delete answered after the user switched connection still says what it did, but leaves
/// the listing on screen alone: it is another store's, with a bucket and a file of the same
/// names that were not deleted.
#[test]
fn a_late_delete_answer_leaves_another_connections_listing_alone() {
    use crate::support::proxy::{Fault, Kind, Proxy};
    use crate::ui::listed;
    use crate::ui_credentials::{app_with_profiles, custom, shown};

    let f = Fixture::new();
    f.put("notes.txt", b"in the first store");
    let second = f.runtime.block_on(crate::support::embedded());
    let put = crate::support::put_via_link(
        &second.client,
        &second.bucket,
        "notes.txt",
        b"in the second store".to_vec(),
    );
    f.runtime.block_on(put).error_for_status().unwrap();
    let (mut h, endpoint) = app_with_profiles(&f);
    // Keys for the second store, beside the profiles the helper wrote.
    let aws = f.dir.path().join("aws");
    let mut config = std::fs::read_to_string(aws.join("config")).unwrap();
    config.push_str("[profile second]\n");
    std::fs::write(aws.join("config"), config).unwrap();
    let mut credentials = std::fs::read_to_string(aws.join("credentials")).unwrap();
    credentials.push_str(&format!(
        "\n[second]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        second.access_key, second.secret_key
    ));
    std::fs::write(aws.join("credentials"), credentials).unwrap();

    let proxy = f.runtime.block_on(Proxy::start(&endpoint));
    let first = custom("first", &proxy.endpoint, "right");
    h.state_mut().connect(first);
    wait_for(&mut h, "the first store's file", |a| {
        listed(a, "notes.txt") && !a.listing.loading
    });
    // The delete reaches the first store only when the test lets it.
    let gate = std::sync::Arc::new(tokio::sync::Barrier::new(2));
    proxy.fault(Kind::DeleteObjects, Fault::HoldLastByte(gate.clone()), 1);
    h.state_mut().listing.selected.insert("notes.txt".into());
    h.state_mut().request_delete();
    h.state_mut().confirm_delete();
    h.step();

    let other = custom("second", &second.endpoint, "second");
    h.state_mut().connect(other.clone());
    wait_for(&mut h, "the second store's file", |a| {
        matches!(&a.connection, ConnectionState::Connected { target, .. } if *target == other)
            && listed(a, "notes.txt")
            && !a.listing.loading
    });
    f.runtime.block_on(gate.wait());
    let until = Instant::now() + Duration::from_secs(10);
    while !shown(&h, "on the connection you left") {
        assert!(Instant::now() < until, "the delete was not told");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        listed(h.state(), "notes.txt"),
        "the second store's file left the listing"
    );
}
