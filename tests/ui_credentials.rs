//! Credentials that stop working: the app tells them from other failures by the error's type
//! and offers the way out (sign in again, reconnect, switch connection); a failure of the
//! network gets no such offer. The server is real (the embedded store), the credentials come
//! from AWS profile files the test writes, as a user's would.

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use s3share::CredentialProblem;
use s3share::app::backend::{BackendConfig, ConnectionTarget, CustomEndpoint};
use s3share::app::{ConnectionState, CredentialsTrouble, S3ShareApp};
use s3share::s3::AwsFiles;

use crate::support::proxy::{Fault, Kind, Proxy};
use crate::support::store_paths;
use crate::ui::{Fixture, wait_for};

pub(crate) fn shown(h: &Harness<'_, S3ShareApp>, text: &str) -> bool {
    h.query_all_by_label_contains(text).next().is_some()
}

/// A connection to `endpoint` signing with the keys of `profile`.
pub(crate) fn custom(name: &str, endpoint: &str, profile: &str) -> ConnectionTarget {
    ConnectionTarget::Custom(CustomEndpoint {
        name: name.into(),
        endpoint: endpoint.into(),
        region: "us-east-1".into(),
        path_style: true,
        profile: profile.into(),
    })
}

fn failed_on(app: &S3ShareApp, target: &ConnectionTarget) -> bool {
    matches!(&app.connection, ConnectionState::Failed(t, _) if t == target)
}

/// An app whose AWS profile files hold two profiles with the embedded store's access key: `right`
/// with its secret, `wrong` with another one. Returns the harness and the store's endpoint.
pub(crate) fn app_with_profiles(f: &Fixture) -> (Harness<'static, S3ShareApp>, String) {
    let store = f.store.local_store.as_ref().unwrap();
    let (endpoint, key, secret) = (
        store.endpoint(),
        store.state().access_key.clone(),
        store.state().secret_key.clone(),
    );
    let aws = f.dir.path().join("aws");
    std::fs::create_dir_all(&aws).unwrap();
    let files = AwsFiles {
        config: aws.join("config"),
        credentials: aws.join("credentials"),
    };
    std::fs::write(&files.config, "[profile right]\n[profile wrong]\n").unwrap();
    std::fs::write(
        &files.credentials,
        format!(
            "[right]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n\n\
             [wrong]\naws_access_key_id = {key}\naws_secret_access_key = not-{secret}\n"
        ),
    )
    .unwrap();
    let handle = f.runtime.handle().clone();
    let config = BackendConfig {
        store_paths: Some(store_paths(f.dir.path())),
        aws_files: Some(files),
    };
    let clipboard = f.clipboard.clone();
    let h = Harness::builder()
        .with_size(egui::vec2(1200.0, 800.0))
        .build_eframe(move |cc| S3ShareApp::new(cc, handle, config, Box::new(clipboard)));
    (h, endpoint.to_string())
}

#[test]
fn refused_credentials_offer_to_sign_in_again_and_a_network_failure_does_not() {
    let f = Fixture::new();
    let (mut h, endpoint) = app_with_profiles(&f);
    h.state_mut().connect(ConnectionTarget::Local);
    wait_for(&mut h, "the embedded store", |a| a.place.is_some());

    // The network: a port nobody listens on, with working keys.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let down = custom("down", &format!("http://127.0.0.1:{port}"), "right");
    h.state_mut().connect(down.clone());
    wait_for(&mut h, "the network failure", |a| failed_on(a, &down));
    assert!(shown(&h, "Cannot connect"));
    assert!(shown(&h, "cannot reach"), "a network failure");
    assert_eq!(h.state().credentials_trouble, None);
    assert!(!shown(&h, "⟳ Reconnect") && !shown(&h, "Sign in again"));

    // The same store with a wrong secret: the server refuses the keys.
    let office = custom("office", &endpoint, "wrong");
    h.state_mut().connect(office.clone());
    wait_for(&mut h, "the refused credentials", |a| failed_on(a, &office));
    assert_eq!(
        h.state().credentials_trouble,
        Some(CredentialsTrouble {
            target: office.clone(),
            problem: CredentialProblem::Rejected,
        })
    );
    assert!(shown(&h, "does not accept the credentials of office"));
    assert!(shown(&h, "aws sso login --profile wrong"), "how to sign in");
    assert!(shown(&h, "⟳ Reconnect"));
    // The failure itself still reads as before.
    assert!(shown(&h, "Cannot connect") && shown(&h, "access denied"));

    // Switching connection gets the user going again, and the offer goes.
    h.get_by_label("Switch connection").click();
    wait_for(&mut h, "the embedded store again", |a| {
        matches!(
            &a.connection,
            ConnectionState::Connected {
                target: ConnectionTarget::Local,
                ..
            }
        )
    });
    assert_eq!(h.state().credentials_trouble, None);
    assert!(!shown(&h, "⟳ Reconnect"));
}

/// A failure after connecting (here creating a folder, refused because of the keys) raises
/// the same offer as a refused connection: the worker's events carry the error's facts, not
/// only its words.
#[test]
fn refused_credentials_on_creating_a_folder_offer_to_sign_in_again() {
    let f = Fixture::new();
    let (mut h, endpoint) = app_with_profiles(&f);
    let proxy = f.runtime.block_on(Proxy::start(&endpoint));
    let office = custom("office", &proxy.endpoint, "right");
    h.state_mut().connect(office.clone());
    wait_for(&mut h, "the connection and a bucket", |a| {
        a.place.is_some() && matches!(&a.connection, ConnectionState::Connected { .. })
    });
    assert_eq!(h.state().credentials_trouble, None);
    // The server stops accepting the keys (as when they are revoked).
    proxy.fault(
        Kind::PutObject,
        Fault::Fail {
            status: 403,
            code: "InvalidAccessKeyId",
        },
        usize::MAX,
    );
    h.state_mut().create_folder("reports");
    wait_for(&mut h, "the credentials offer", |a| {
        a.credentials_trouble.is_some()
    });
    assert_eq!(
        h.state().credentials_trouble,
        Some(CredentialsTrouble {
            target: office,
            problem: CredentialProblem::Rejected,
        })
    );
}

/// An endpoint of one's own whose profile has no keys: the app says where the keys go, not
/// "aws sso login", and one line of the credential chain's details, not all of them.
#[test]
fn an_endpoint_without_keys_says_where_they_go() {
    let f = Fixture::new();
    let (mut h, endpoint) = app_with_profiles(&f);
    let config = f.dir.path().join("aws").join("config");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[profile nokeys]\nregion = us-east-1\n");
    std::fs::write(&config, text).unwrap();
    let lab = custom("lab", &endpoint, "nokeys");
    h.state_mut().connect(lab.clone());
    wait_for(&mut h, "the failure", |a| failed_on(a, &lab));
    let ConnectionState::Failed(_, message) = &h.state().connection else {
        unreachable!()
    };
    assert!(
        message.starts_with("no keys in profile \"nokeys\" for this endpoint: add aws_access_key_id and aws_secret_access_key"),
        "{message}"
    );
    assert!(
        !message.contains('\n') && !message.contains("aws sso login"),
        "{message}"
    );
    assert!(shown(&h, "no keys in profile"));
}
