//! Drawing the relay: the switch in the sidebar, "Share via relay" in the share dialog, and
//! the "Shared links" panel with its revoke confirmation.

use egui::{Context, RichText, Ui};

use super::relay::{RELAY_EXPIRY_CHOICES, RelayStatus};
use super::{S3ShareApp, ShareDialog};
use crate::links;
use crate::relay::LinkState;

/// The relay switch, its address and its state (in the sidebar).
pub(super) fn relay_switch_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    ui.label(RichText::new("RELAY").small().strong().weak());
    let mut on = app.settings.relay_on;
    let switch = ui.checkbox(&mut on, "Run the relay").on_hover_text(
        "Stable links served by this app while it runs: short, longer than 7 days, revocable.",
    );
    if switch.changed() {
        app.set_relay(on);
    }
    match &app.relay {
        RelayStatus::Off => {
            ui.horizontal(|ui| {
                let label = ui.label(RichText::new("Listen on").small());
                ui.add(
                    egui::TextEdit::singleline(&mut app.settings.relay_listen)
                        .hint_text(crate::relay::DEFAULT_LISTEN)
                        .desired_width(120.0)
                        .font(egui::TextStyle::Small),
                )
                .labelled_by(label.id);
            });
        }
        RelayStatus::Starting => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(RichText::new("Starting…").small());
            });
        }
        RelayStatus::On { url } => {
            ui.label(RichText::new(format!("Relay on {url}")).small().monospace());
        }
        RelayStatus::Failed(e) => {
            ui.add(
                egui::Label::new(
                    RichText::new(format!("The relay could not start: {e}"))
                        .small()
                        .color(ui.visuals().error_fg_color),
                )
                .wrap(),
            );
        }
    }
    if ui
        .add_enabled(app.place.is_some(), egui::Button::new("🔗 Shared links…"))
        .clicked()
    {
        app.open_shared_links();
    }
}

/// What the "Share via relay" part of the share dialog asks for.
pub(super) enum RelayShareAction {
    Nothing,
    Share,
    SwitchOn,
}

/// "Share via relay" in the share dialog (download links only).
pub(super) fn relay_share_ui(
    ui: &mut Ui,
    dialog: &mut ShareDialog,
    relay_url: Option<&str>,
) -> RelayShareAction {
    let mut action = RelayShareAction::Nothing;
    ui.separator();
    ui.strong("Share via relay");
    ui.label(
        RichText::new(
            "A short, stable link served by this app: it can last longer than 7 days, and can be revoked in Shared links. Read-only: it downloads.",
        )
        .small()
        .weak(),
    );
    ui.horizontal(|ui| {
        let label = ui.label("Relay link expires in:");
        // A drop-down, so its choices never stand beside the presigned link's as twins.
        let current = RELAY_EXPIRY_CHOICES
            .iter()
            .find(|(_, s)| *s == dialog.relay_expiry)
            .map_or("?", |(l, _)| *l);
        egui::ComboBox::from_id_salt("relay_expiry")
            .selected_text(current)
            .show_ui(ui, |ui| {
                for (label, secs) in RELAY_EXPIRY_CHOICES {
                    ui.selectable_value(&mut dialog.relay_expiry, secs, label);
                }
            })
            .response
            .labelled_by(label.id);
        let end =
            std::time::SystemTime::now() + std::time::Duration::from_secs(dialog.relay_expiry);
        ui.label(RichText::new(format!("until {}", links::format_time(end))).small());
    });
    ui.horizontal(|ui| {
        let label = ui.label("Note:");
        ui.add(
            egui::TextEdit::singleline(&mut dialog.note)
                .hint_text("(optional, shown in Shared links)")
                .desired_width(300.0),
        )
        .labelled_by(label.id);
    });
    ui.horizontal(|ui| {
        let enabled = relay_url.is_some() && !dialog.busy;
        let button = ui.add_enabled(enabled, egui::Button::new("🔗 Share via relay"));
        if relay_url.is_none() {
            button.on_disabled_hover_text("The relay is off.");
            ui.label(RichText::new("The relay is off.").small().weak());
            if ui.button("Switch the relay on").clicked() {
                action = RelayShareAction::SwitchOn;
            }
        } else if button.clicked() {
            action = RelayShareAction::Share;
        }
    });
    action
}

/// The "Shared links" panel and its revoke confirmation.
pub(super) fn shared_links_ui(app: &mut S3ShareApp, ctx: &Context) {
    let Some(panel) = &app.shared_links else {
        return;
    };
    let now = std::time::SystemTime::now();
    let mut open = true;
    let mut refresh = false;
    let mut copy = None;
    let mut ask_revoke = None;
    let revoking = panel.revoking.clone();
    egui::Window::new("Shared links")
        .open(&mut open)
        .default_size([720.0, 360.0])
        .collapsible(false)
        .show(ctx, |ui| {
            ui.horizontal(|ui| {
                ui.label(format!("Relay links recorded in s3://{}", panel.bucket));
                if ui.button("⟳ Refresh").clicked() {
                    refresh = true;
                }
                if panel.loading || revoking.is_some() {
                    ui.spinner();
                }
            });
            if let Some(e) = &panel.error {
                ui.add(
                    egui::Label::new(
                        RichText::new(format!("⚠ {e}")).color(ui.visuals().error_fg_color),
                    )
                    .wrap(),
                );
                if panel.records.is_some() {
                    ui.label(
                        RichText::new(
                            "The list below is the last one read, and may be out of date.",
                        )
                        .small()
                        .weak(),
                    );
                }
            }
            let Some(records) = &panel.records else {
                return;
            };
            if records.is_empty() {
                ui.label(RichText::new("No relay links in this bucket yet.").weak());
                return;
            }
            egui::ScrollArea::vertical().show(ui, |ui| {
                egui::Grid::new("shared_links")
                    .num_columns(7)
                    .striped(true)
                    .spacing([12.0, 4.0])
                    .show(ui, |ui| {
                        for h in ["ID", "File", "Note", "Created", "Expires", "State", ""] {
                            ui.label(RichText::new(h).strong());
                        }
                        ui.end_row();
                        for r in records {
                            let state = r.state(now);
                            ui.label(RichText::new(&r.id).monospace());
                            let scope = if r.folder {
                                format!("{}/ (folder)", r.scope.trim_end_matches('/'))
                            } else {
                                r.scope.clone()
                            };
                            ui.label(scope);
                            ui.label(r.note.as_deref().unwrap_or(""));
                            ui.label(r.created().map(links::format_time).unwrap_or_default());
                            ui.label(links::format_time(r.expires()));
                            ui.label(state.as_str());
                            ui.horizontal(|ui| {
                                let active = state == LinkState::Active;
                                if ui
                                    .add_enabled(active, egui::Button::new("📋 Copy"))
                                    .clicked()
                                {
                                    copy = Some(r.id.clone());
                                }
                                if ui
                                    .add_enabled(
                                        active && revoking.is_none(),
                                        egui::Button::new("Revoke…"),
                                    )
                                    .clicked()
                                {
                                    ask_revoke = Some(r.id.clone());
                                }
                            });
                            ui.end_row();
                        }
                    });
            });
        });
    if let Some(id) = ask_revoke
        && let Some(panel) = &mut app.shared_links
    {
        panel.confirm_revoke = Some(id);
    }
    if let Some(id) = copy {
        app.copy_shared_link(id);
    }
    if refresh {
        app.refresh_shared_links();
    }
    if !open {
        app.shared_links = None;
        return;
    }
    revoke_confirm_ui(app, ctx);
}

fn revoke_confirm_ui(app: &mut S3ShareApp, ctx: &Context) {
    let Some(id) = app
        .shared_links
        .as_ref()
        .and_then(|p| p.confirm_revoke.clone())
    else {
        return;
    };
    let mut answer = None;
    let closed = super::dialogs_ui::modal(ctx, "revoke", |ui| {
        ui.heading(format!("Revoke link {id}?"));
        ui.label("Whoever has this link loses access within a second. This cannot be undone.");
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button("Revoke link").clicked() {
                answer = Some(true);
            }
            if ui.button("Keep it").clicked() {
                answer = Some(false);
            }
        });
    });
    match answer {
        Some(true) => app.revoke_shared_link(id),
        Some(false) => {
            if let Some(p) = &mut app.shared_links {
                p.confirm_revoke = None;
            }
        }
        None if closed => {
            if let Some(p) = &mut app.shared_links {
                p.confirm_revoke = None;
            }
        }
        None => {}
    }
}
