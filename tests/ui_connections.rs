//! Connections: a start that always lands somewhere usable, problems shown on their entry,
//! labels that say where a connection goes, a lone bucket that opens by itself, and answers
//! about a connection left behind that never reach the one in use.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use s3share::app::backend::{ConnectionTarget, CustomEndpoint};
use s3share::app::{ConnectionState, S3ShareApp};

use crate::ui::{Fixture, wait_for};

fn shown(h: &Harness<'_, S3ShareApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

#[test]
fn a_start_whose_connection_fails_lands_on_the_embedded_store_with_the_problem_on_its_entry() {
    let f = Fixture::new();
    let mut h = f.harness_as_started();
    // A profile that cannot connect (here: not in the AWS files at all), as a first start with
    // a broken default profile would try.
    let broken = ConnectionTarget::Profile("broken".into());
    h.state_mut().profiles.push("broken".into());
    h.state_mut().connect_at_start(broken.clone());
    wait_for(&mut h, "the embedded store", |a| {
        matches!(
            &a.connection,
            ConnectionState::Connected {
                target: ConnectionTarget::Local,
                ..
            }
        ) && a.place.is_some()
    });
    assert!(!shown(&h, "Cannot connect"), "no wall in the way");
    assert!(
        h.state().connection_problems.contains_key(&broken),
        "{:?}",
        h.state().connection_problems
    );
    assert!(
        shown(&h, "broken · AWS  ⚠") || shown(&h, "broken · "),
        "the entry is there"
    );
    assert!(shown(&h, "⚠"), "marked on its entry");
    assert!(shown(&h, "aws sso login"), "its problem says what to do");
    assert!(
        !shown(&h, "--local"),
        "messages in the app never cite CLI flags"
    );
    assert!(!shown(&h, "--"), "no CLI flag anywhere");
}

#[test]
fn connections_are_labelled_by_where_they_go() {
    let f = Fixture::new();
    let mut h = f.harness();
    wait_for(&mut h, "the embedded store", |a| a.place.is_some());
    h.state_mut()
        .settings
        .custom_endpoints
        .push(CustomEndpoint {
            name: "office".into(),
            endpoint: "http://127.0.0.1:8333".into(),
            region: String::new(),
            path_style: true,
            profile: String::new(),
        });
    h.step();
    assert!(
        shown(&h, "office · 127.0.0.1:8333"),
        "an endpoint shows its host"
    );
    let ConnectionState::Connected { endpoint, .. } = &h.state().connection else {
        panic!("not connected: {:?}", h.state().connection)
    };
    assert!(
        endpoint.starts_with("127.0.0.1:") && !endpoint.contains("AWS"),
        "{endpoint}"
    );
    assert!(shown(&h, &format!("✔ {endpoint}")));
}

#[test]
fn the_only_bucket_opens_by_itself() {
    let f = Fixture::new();
    let mut h = f.harness();
    wait_for(&mut h, "the embedded store", |a| {
        a.place.is_some() && a.buckets.is_some()
    });
    // Nothing open (as after a connection without a default bucket), and the bucket list comes
    // in with one bucket: it opens.
    h.state_mut().place = None;
    h.state_mut().retry_buckets();
    wait_for(&mut h, "the bucket to open", |a| {
        a.place.as_ref().is_some_and(|p| p.bucket == "s3share")
    });
    assert!(!shown(&h, "Choose a bucket"));
}

#[test]
fn a_late_bucket_list_of_the_previous_connection_is_dropped() {
    let f = Fixture::new();
    let mut h = f.harness();
    wait_for(&mut h, "the embedded store", |a| {
        a.place.is_some() && a.buckets.is_some()
    });
    // The bucket list is asked for again, and answered while the UI is busy (no frame runs):
    // the answer waits in the channel. The user switches connection before the next frame.
    h.state_mut().retry_buckets();
    std::thread::sleep(std::time::Duration::from_millis(800));
    let nowhere = ConnectionTarget::Custom(CustomEndpoint {
        name: "nowhere".into(),
        // Nothing listens on port 1: the connect fails at once.
        endpoint: "http://127.0.0.1:1".into(),
        region: "us-east-1".into(),
        path_style: true,
        profile: String::new(),
    });
    h.state_mut().connect(nowhere.clone());
    wait_for(
        &mut h,
        "the connect to fail",
        |a| matches!(&a.connection, ConnectionState::Failed(t, _) if *t == nowhere),
    );
    // The embedded store's bucket list never shows as this connection's, and its one bucket
    // is not opened here.
    assert_eq!(h.state().buckets, None);
    assert_eq!(h.state().place, None, "the old connection's bucket opened");
}

#[test]
fn removing_the_endpoint_in_use_goes_back_to_the_embedded_store() {
    let f = Fixture::new();
    let mut h = f.harness();
    wait_for(&mut h, "the embedded store", |a| a.place.is_some());
    let endpoint = CustomEndpoint {
        name: "typo".into(),
        // Nothing listens on port 1: the connect fails at once.
        endpoint: "http://127.0.0.1:1".into(),
        region: "us-east-1".into(),
        path_style: true,
        profile: String::new(),
    };
    let typo = ConnectionTarget::Custom(endpoint.clone());
    h.state_mut()
        .settings
        .custom_endpoints
        .push(endpoint.clone());
    h.state_mut().connect(typo.clone());
    wait_for(
        &mut h,
        "the connect to fail",
        |a| matches!(&a.connection, ConnectionState::Failed(t, _) if *t == typo),
    );
    h.state_mut().remove_endpoint(&endpoint);
    wait_for(&mut h, "the embedded store again", |a| {
        matches!(&a.connection, ConnectionState::Connected { target, .. } if *target == ConnectionTarget::Local)
            && a.place.is_some()
    });
    assert!(h.state().settings.custom_endpoints.is_empty());
    assert!(
        !shown(&h, "typo"),
        "nothing of the removed endpoint is left on screen"
    );
}
