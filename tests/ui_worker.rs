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
