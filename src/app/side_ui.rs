//! The top bar (navigation, bucket), the connection list, and the preview panel.

use egui::{RichText, Ui};

use super::backend::{ConnectionTarget, CustomEndpoint, PreviewContent};
use super::model::{Place, format_size, shortened};
use super::{ConnectionState, S3ShareApp};
use crate::links;

/// Back / forward / up, breadcrumbs, bucket picker.
pub fn top_bar_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.heading(RichText::new("s3share").strong());
        ui.separator();
        let has_place = app.place.is_some();
        if ui
            .add_enabled(app.history.can_go_back(), egui::Button::new("⬅"))
            .on_hover_text("Back")
            .clicked()
        {
            app.go_back();
        }
        if ui
            .add_enabled(app.history.can_go_forward(), egui::Button::new("➡"))
            .on_hover_text("Forward")
            .clicked()
        {
            app.go_forward();
        }
        let can_go_up = app.place.as_ref().and_then(Place::parent).is_some();
        if ui
            .add_enabled(can_go_up, egui::Button::new("⬆"))
            .on_hover_text("Up (Backspace)")
            .clicked()
        {
            app.go_up();
        }
        if ui
            .add_enabled(has_place, egui::Button::new("⟳"))
            .on_hover_text("Refresh (F5)")
            .clicked()
        {
            app.refresh();
        }
        ui.separator();
        bucket_picker_ui(app, ui);
        if let Some(place) = app.place.clone() {
            ui.separator();
            for (i, (label, target)) in place.crumbs().into_iter().enumerate() {
                if i > 0 {
                    ui.label(RichText::new("›").weak());
                }
                let current = target == place;
                let text = if i == 0 {
                    format!("🗄 {label}")
                } else {
                    label
                };
                if ui.selectable_label(current, text).clicked() && !current {
                    app.open(target);
                }
            }
        }
    });
    ui.add_space(4.0);
}

fn bucket_picker_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    if !matches!(app.connection, ConnectionState::Connected { .. }) {
        return;
    }
    let current = app
        .place
        .as_ref()
        .map(|p| p.bucket.clone())
        .unwrap_or_default();
    let mut chosen = None;
    let mut retry = false;
    let label = ui.label(RichText::new("Bucket").weak());
    let combo = egui::ComboBox::from_id_salt("bucket")
        .selected_text(if current.is_empty() {
            "Choose a bucket".to_owned()
        } else {
            current.clone()
        })
        .show_ui(ui, |ui| match &app.buckets {
            Some(Ok(list)) if list.is_empty() => {
                ui.label("No buckets");
            }
            Some(Ok(list)) => {
                if let Some(e) = &app.buckets_failed {
                    ui.set_max_width(360.0);
                    retry |= super::browser_ui::problem_ui(
                        ui,
                        "Could not list the buckets again",
                        e,
                        || "These are the last known buckets.".to_owned(),
                    );
                }
                for b in list {
                    if ui.selectable_label(*b == current, b).clicked() {
                        chosen = Some(b.clone());
                    }
                }
            }
            Some(Err(e)) => {
                ui.set_max_width(360.0);
                retry |= super::browser_ui::problem_ui(ui, "Could not list the buckets", e, || {
                    "You can still type a bucket's name beside this menu.".to_owned()
                });
            }
            None => {
                ui.spinner();
            }
        });
    combo.response.labelled_by(label.id);
    if retry {
        app.retry_buckets();
    }
    let typed = ui.add(
        egui::TextEdit::singleline(&mut app.bucket_input)
            .hint_text("or type a bucket")
            .desired_width(130.0),
    );
    if typed.lost_focus()
        && ui.input(|i| i.key_pressed(egui::Key::Enter))
        && !app.bucket_input.trim().is_empty()
    {
        chosen = Some(app.bucket_input.trim().to_owned());
        app.bucket_input.clear();
    }
    if let Some(bucket) = chosen {
        app.open(Place {
            bucket,
            prefix: String::new(),
        });
    }
}

/// The list of connections: the embedded store, AWS profiles, custom endpoints.
pub fn connections_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    ui.add_space(6.0);
    ui.label(RichText::new("CONNECTIONS").small().strong().weak());
    ui.add_space(2.0);
    let mut targets = vec![ConnectionTarget::Local];
    targets.extend(app.profiles.iter().cloned().map(ConnectionTarget::Profile));
    targets.extend(
        app.settings
            .custom_endpoints
            .iter()
            .cloned()
            .map(ConnectionTarget::Custom),
    );
    let active = match &app.connection {
        ConnectionState::Connected { target, .. }
        | ConnectionState::Connecting(target)
        | ConnectionState::Failed(target, _) => Some(target.clone()),
        ConnectionState::Idle => None,
    };
    let mut remove = None;
    egui::ScrollArea::vertical()
        .auto_shrink([false, true])
        .max_height(ui.available_height() - 140.0)
        .show(ui, |ui| {
            for target in targets {
                let icon = match target {
                    ConnectionTarget::Local => "💻",
                    ConnectionTarget::Profile(_) => "☁",
                    ConnectionTarget::Custom(_) => "🖧",
                };
                let selected = active.as_ref() == Some(&target);
                let problem = app.connection_problems.get(&target).cloned();
                let mark = if problem.is_some() { "  ⚠" } else { "" };
                let label = format!("{icon}  {}{mark}", app.connection_label(&target));
                let mut response = ui.selectable_label(selected, label);
                if target == ConnectionTarget::Local
                    && let Some(dir) = &app.store_dir
                {
                    response = response.on_hover_text(format!(
                        "An S3 store on this computer: files are kept in {}",
                        dir.display()
                    ));
                }
                if let Some(problem) = problem {
                    // The start of it (what to do comes first); all of it on hover.
                    ui.indent(egui::IdSalt::new(("problem", &target)), |ui| {
                        ui.add(
                            egui::Label::new(
                                RichText::new(shortened(&problem, 160))
                                    .small()
                                    .color(ui.visuals().warn_fg_color),
                            )
                            .wrap(),
                        )
                        .on_hover_text(problem);
                    });
                }
                if response.clicked() && !selected {
                    app.connect(target.clone());
                }
                if let ConnectionTarget::Custom(c) = &target {
                    response.context_menu(|ui| {
                        if ui.button("Remove endpoint").clicked() {
                            remove = Some(c.clone());
                            ui.close();
                        }
                    });
                }
            }
        });
    if let Some(c) = remove {
        app.remove_endpoint(&c);
    }
    ui.add_space(4.0);
    if ui.button("➕ Add S3-compatible endpoint…").clicked() {
        app.endpoint_form = Some(CustomEndpoint {
            name: String::new(),
            endpoint: "https://".into(),
            region: String::new(),
            path_style: false,
            profile: String::new(),
        });
    }
    ui.separator();
    match &app.connection {
        ConnectionState::Connecting(_) => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Connecting…");
            });
        }
        ConnectionState::Connected {
            endpoint,
            credentials_expiry,
            ..
        } => {
            ui.label(RichText::new(format!("✔ {endpoint}")).small());
            if let Some(exp) = credentials_expiry {
                ui.label(
                    RichText::new(format!("Credentials expire {}", links::format_time(*exp)))
                        .small()
                        .weak(),
                );
            }
        }
        ConnectionState::Failed(target, error) => {
            ui.colored_label(ui.visuals().error_fg_color, "Cannot connect");
            ui.label(RichText::new(shortened(error, 160)).small())
                .on_hover_text(error);
            if ui.button("Retry").clicked() {
                app.connect(target.clone());
            }
        }
        ConnectionState::Idle => {}
    }
    ui.separator();
    super::relay_ui::relay_switch_ui(app, ui);
}

/// Preview of the selected file: image, start of text, or metadata.
pub fn preview_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    let Some(preview) = &app.preview else { return };
    let mut close = false;
    ui.horizontal(|ui| {
        ui.strong(preview.key.rsplit('/').next().unwrap_or(&preview.key));
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            close = ui
                .small_button("✖")
                .on_hover_text("Close preview")
                .clicked();
        });
    });
    ui.separator();
    let mut retry = false;
    if let Some(e) = &preview.failed {
        retry |= super::browser_ui::problem_ui(ui, "Could not load the preview again", e, || {
            "What is shown is the last preview, and may be out of date.".to_owned()
        });
    }
    if preview.reloading {
        ui.spinner();
    }
    if let Some(info) = &preview.info {
        egui::Grid::new("meta")
            .num_columns(2)
            .spacing([12.0, 4.0])
            .show(ui, |ui| {
                ui.label(RichText::new("Size").weak());
                ui.label(format!("{} ({} bytes)", format_size(info.size), info.size));
                ui.end_row();
                ui.label(RichText::new("Type").weak());
                ui.label(info.content_type.as_deref().unwrap_or("unknown"));
                ui.end_row();
                ui.label(RichText::new("Modified").weak());
                ui.label(info.modified.map(links::format_time).unwrap_or_default());
                ui.end_row();
                ui.label(RichText::new("ETag").weak());
                ui.label(
                    RichText::new(info.etag.as_deref().unwrap_or(""))
                        .monospace()
                        .small(),
                );
                ui.end_row();
            });
        ui.separator();
    }
    match (&preview.content, &preview.texture) {
        (None, _) => {
            ui.spinner();
        }
        (Some(Ok(PreviewContent::Image(_))), Some(texture)) => {
            let size = texture.size_vec2();
            let scale = (ui.available_width() / size.x).min(1.0);
            ui.image((texture.id(), size * scale));
        }
        (Some(Ok(PreviewContent::Text { text, truncated })), _) => {
            // Said above the text: below 64 KiB of lines nobody scrolls down to it.
            if *truncated {
                ui.label(
                    RichText::new("The first 64 KiB; download the file for all of it.").weak(),
                );
            }
            egui::ScrollArea::both()
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    // The body text's size and colour: small and faint, it was hard to read.
                    ui.add(
                        egui::Label::new(
                            RichText::new(text.as_str())
                                .monospace()
                                .color(ui.visuals().text_color()),
                        )
                        .wrap_mode(egui::TextWrapMode::Extend),
                    );
                });
        }
        (Some(Ok(PreviewContent::Undecodable(why))), _) => {
            ui.add(
                egui::Label::new(
                    RichText::new(format!(
                        "No preview: the file's bytes are not an image this app can read \
                         ({why}). Download it to open it with another program."
                    ))
                    .weak(),
                )
                .wrap(),
            );
        }
        (Some(Ok(_)), _) => {
            ui.label(RichText::new("No preview for this kind of file.").weak());
        }
        (Some(Err(e)), _) => {
            retry |=
                super::browser_ui::problem_ui(ui, "Could not load the preview", e, String::new);
        }
    }
    if close {
        app.preview = None;
    }
    if retry {
        app.retry_preview();
    }
}
