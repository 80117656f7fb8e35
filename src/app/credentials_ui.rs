//! The way out of credentials that stopped working: what is wrong, how to sign in again, and
//! buttons to reconnect or switch to another connection. Drawn above the browser while
//! [`S3ShareApp::credentials_trouble`] is set; a successful connection clears it.

use egui::{RichText, Ui};

use super::S3ShareApp;
use super::backend::ConnectionTarget;
use crate::CredentialProblem;

/// The banner, when some credentials failed.
pub(super) fn credentials_banner_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    let Some(trouble) = app.credentials_trouble.clone() else {
        return;
    };
    let label = app.connection_label(&trouble.target);
    let mut connect = None;
    egui::Frame::group(ui.style())
        .fill(ui.visuals().extreme_bg_color)
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            let what = match trouble.problem {
                CredentialProblem::Expired => format!("The credentials of {label} have expired."),
                CredentialProblem::Missing => format!("No credentials were found for {label}."),
                CredentialProblem::Rejected => {
                    format!("The server does not accept the credentials of {label}.")
                }
                CredentialProblem::Unavailable => {
                    format!("The credentials of {label} cannot be fetched.")
                }
            };
            ui.colored_label(ui.visuals().warn_fg_color, RichText::new(what).strong());
            ui.add(egui::Label::new(sign_in_hint(&trouble.target)).wrap());
            ui.horizontal_wrapped(|ui| {
                if ui.button("⟳ Reconnect").clicked() {
                    connect = Some(trouble.target.clone());
                }
                if trouble.target != ConnectionTarget::Local
                    && ui
                        .button("Switch connection")
                        .on_hover_text(
                            "Open the embedded store; other connections are in the sidebar",
                        )
                        .clicked()
                {
                    connect = Some(ConnectionTarget::Local);
                }
            });
        });
    ui.add_space(4.0);
    if let Some(target) = connect {
        app.connect(target);
    }
}

/// How to get working credentials for `target` again.
fn sign_in_hint(target: &ConnectionTarget) -> String {
    let profile = match target {
        ConnectionTarget::Profile(p) => Some(p.as_str()),
        ConnectionTarget::Custom(c) => Some(c.profile.as_str()).filter(|p| !p.is_empty()),
        ConnectionTarget::Local => None,
    };
    match profile {
        Some(p) => format!(
            "Sign in again: run `aws sso login --profile {p}` in a terminal (or update the profile's keys), then Reconnect."
        ),
        None if *target == ConnectionTarget::Local => {
            "Reconnect to read the embedded store's credentials again.".to_owned()
        }
        None => "Sign in again, or set the AWS credentials this connection uses, then Reconnect."
            .to_owned(),
    }
}
