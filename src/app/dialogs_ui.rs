//! Modal dialogs (conflicts, share, delete, new folder, endpoint, path), the drop zone, toasts.

use egui::{Context, RichText};

use super::backend::{AfterUpload, ConflictChoice, CustomEndpoint};
use super::model::counted;
use super::{EXPIRY_CHOICES, PathPromptKind, S3ShareApp};
use crate::links;

/// Every open dialog.
pub fn dialogs_ui(app: &mut S3ShareApp, ctx: &Context) {
    conflict_ui(app, ctx);
    share_ui(app, ctx);
    delete_ui(app, ctx);
    new_folder_ui(app, ctx);
    endpoint_ui(app, ctx);
    path_prompt_ui(app, ctx);
    replace_ui(app, ctx);
}

pub(super) fn modal(ctx: &Context, id: &str, add: impl FnOnce(&mut egui::Ui)) -> bool {
    // A dialog taller than the window (the share dialog with its QR code, in a small window)
    // scrolls, rather than putting its title and buttons out of reach.
    let max_height = (ctx.content_rect().height() - 64.0).max(120.0);
    let response = egui::Modal::new(egui::Id::unique(id)).show(ctx, |ui| {
        ui.set_max_width(520.0);
        egui::ScrollArea::vertical()
            .max_height(max_height)
            // A dialog that grows (the share dialog once its link and QR code come) is held
            // to the size it had by the room its area gave it the frame before: it stayed
            // a third of the window tall, the QR code cut in half. Grown content takes the
            // height it needs, up to the window's.
            .min_scrolled_height(max_height)
            .auto_shrink([true, true])
            .show(ui, add);
    });
    response.should_close()
}

fn conflict_ui(app: &mut S3ShareApp, ctx: &Context) {
    let Some(prompt) = &mut app.conflicts else {
        return;
    };
    let Some(first) = prompt.pending.first() else {
        return;
    };
    let key = first.item.key.clone();
    let remaining = prompt.pending.len();
    let mut choice = None;
    let closed = modal(ctx, "conflict", |ui| {
        ui.heading("File already exists");
        ui.label(format!("s3://{}/{key} already exists.", prompt.bucket));
        if remaining > 1 {
            ui.label(
                RichText::new(format!("{} more conflicts after this one.", remaining - 1)).weak(),
            );
            ui.checkbox(&mut prompt.apply_to_all, "Apply to all");
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button("Overwrite").clicked() {
                choice = Some(ConflictChoice::Overwrite);
            }
            if ui
                .button("Keep both")
                .on_hover_text("Upload as “name (1).ext”")
                .clicked()
            {
                choice = Some(ConflictChoice::KeepBoth);
            }
            if ui.button("Skip").clicked() {
                choice = Some(ConflictChoice::Skip);
            }
        });
    });
    if let Some(c) = choice.or(closed.then_some(ConflictChoice::Skip)) {
        app.answer_conflict(c);
    }
}

fn share_ui(app: &mut S3ShareApp, ctx: &Context) {
    let Some(dialog) = &app.share else { return };
    let requested = S3ShareApp::share_expiry(dialog);
    let honest = requested.as_ref().ok().map(|d| app.honest_end(*d));
    let note = app.local_note();
    let relay_url = app.relay_url().map(str::to_owned);
    let mut relay_action = super::relay_ui::RelayShareAction::Nothing;
    let mut make = false;
    let mut close = false;
    let Some(dialog) = &mut app.share else { return };
    let closed = modal(ctx, "share", |ui| {
        if dialog.upload {
            ui.heading("Upload link");
            ui.label(format!(
                "Anyone with this link can upload one file into s3://{}/{}",
                dialog.bucket, dialog.keys[0]
            ));
            ui.horizontal(|ui| {
                ui.label("File name:");
                ui.text_edit_singleline(&mut dialog.upload_name);
            });
        } else if dialog.keys.len() == 1 {
            ui.heading("Share a link");
            ui.label(
                RichText::new(format!("s3://{}/{}", dialog.bucket, dialog.keys[0])).monospace(),
            );
        } else {
            ui.heading(format!("Share {} links", dialog.keys.len()));
        }
        ui.add_space(6.0);
        ui.horizontal_wrapped(|ui| {
            ui.label("Expires in:");
            for (label, secs) in EXPIRY_CHOICES {
                ui.selectable_value(&mut dialog.expiry, Some(secs), label);
            }
            let chose_custom = ui
                .selectable_value(&mut dialog.expiry, None, "Custom")
                .clicked();
            if dialog.expiry.is_none() {
                let field = ui.add(
                    egui::TextEdit::singleline(&mut dialog.custom)
                        .hint_text("e.g. 2h, 3d")
                        .desired_width(80.0),
                );
                if chose_custom {
                    field.request_focus();
                }
            }
        });
        if !dialog.upload && dialog.keys.len() == 1 {
            ui.horizontal(|ui| {
                ui.label("Download as:");
                ui.add(egui::TextEdit::singleline(&mut dialog.filename).hint_text("(same name)"));
            });
        }
        // The honest expiry, before anything is copied.
        match (&requested, honest) {
            // Nothing typed yet is no mistake to point at; the button says what it needs.
            (Err(_), _) if dialog.expiry.is_none() && dialog.custom.trim().is_empty() => {}
            (Err(e), _) => {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            (Ok(_), Some((end, true))) => {
                ui.colored_label(
                    ui.visuals().warn_fg_color,
                    format!("⚠ This link will stop working at {} ({} from now), sooner than asked: the credentials that sign it expire then.", links::format_time(end), links::format_duration(end.duration_since(std::time::SystemTime::now()).unwrap_or_default())),
                );
            }
            (Ok(_), Some((end, false))) => {
                ui.label(format!("Works until {}.", links::format_time(end)));
            }
            _ => {}
        }
        if let Some(n) = &note {
            ui.label(RichText::new(n).small().weak());
        }
        if let Some(e) = &dialog.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            let label = if dialog.links.is_some() {
                "Copy again"
            } else {
                "Copy link"
            };
            let enter = !ui.ctx().egui_wants_keyboard_input()
                && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if ui
                .add_enabled(
                    !dialog.busy && requested.is_ok(),
                    egui::Button::new(format!("🔗 {label}")),
                )
                .clicked()
                || (enter && !dialog.busy && requested.is_ok())
            {
                make = true;
            }
            if dialog.busy {
                ui.spinner();
            }
            if ui.button("Close").clicked() {
                close = true;
            }
        });
        if let Some(links) = &dialog.links {
            ui.separator();
            for (_, link) in links {
                let mut url = link.url.clone();
                ui.add(
                    egui::TextEdit::singleline(&mut url)
                        .desired_width(480.0)
                        .font(egui::TextStyle::Monospace),
                );
            }
            if dialog.upload {
                ui.label(
                    RichText::new("Upload with: curl -T FILE 'LINK'")
                        .small()
                        .weak(),
                );
            }
            if dialog.via_relay {
                ui.label(
                    RichText::new(
                        "Relay link: it works while the relay runs, until it expires or is revoked.",
                    )
                    .small()
                    .weak(),
                );
            }
            if let Some(qr) = &dialog.qr {
                ui.image((qr.id(), egui::vec2(180.0, 180.0)));
            }
        }
        if !dialog.upload {
            relay_action = super::relay_ui::relay_share_ui(ui, dialog, relay_url.as_deref());
        }
    });
    if make {
        app.make_links();
    }
    match relay_action {
        super::relay_ui::RelayShareAction::Share => app.make_relay_links(),
        super::relay_ui::RelayShareAction::SwitchOn => app.set_relay(true),
        super::relay_ui::RelayShareAction::Nothing => {}
    }
    if close || closed {
        app.share = None;
    }
}

fn delete_ui(app: &mut S3ShareApp, ctx: &Context) {
    let Some(plan) = &app.confirm_delete else {
        return;
    };
    let mut confirm = false;
    let mut cancel = false;
    let closed = modal(ctx, "delete", |ui| {
        ui.heading(delete_question(plan));
        let names = plan.folders.iter().chain(&plan.files);
        for k in names.clone().take(8) {
            ui.label(RichText::new(crate::location::shown(k)).monospace());
        }
        let count = names.count();
        if count > 8 {
            ui.label(format!("… and {} more", count - 8));
        }
        let ready = plan.ready();
        match &plan.contents {
            _ if plan.folders.is_empty() => {}
            None => {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Counting what the folders hold…");
                });
            }
            Some(Ok((keys, _))) if keys.iter().all(|k| k.ends_with('/')) => {
                ui.label(if plan.folders.len() == 1 {
                    "The folder is empty."
                } else {
                    "The folders are empty."
                });
            }
            Some(Ok((keys, bytes))) => {
                let files = keys.iter().filter(|k| !k.ends_with('/')).count();
                ui.label(format!(
                    "With everything in the {}: {} ({}).",
                    if plan.folders.len() == 1 {
                        "folder"
                    } else {
                        "folders"
                    },
                    counted(files, "file", "files"),
                    super::model::format_size(*bytes)
                ));
            }
            Some(Err(e)) => {
                ui.colored_label(
                    ui.visuals().error_fg_color,
                    format!("Cannot list what the folders hold, so nothing is deleted: {e}"),
                );
            }
        }
        ui.label(RichText::new("This cannot be undone.").weak());
        ui.horizontal(|ui| {
            confirm = ui
                .add_enabled(
                    ready,
                    egui::Button::new(
                        RichText::new("🗑 Delete permanently").color(ui.visuals().error_fg_color),
                    ),
                )
                .clicked();
            cancel = ui.button("Cancel").clicked();
        });
    });
    if confirm {
        app.confirm_delete();
    } else if cancel || closed {
        app.confirm_delete = None;
    }
}

/// "Delete this file?", "Delete 2 folders and 3 files?"…
fn delete_question(plan: &super::DeletePlan) -> String {
    match (plan.folders.len(), plan.files.len()) {
        (0, 1) => "Delete this file?".into(),
        (1, 0) => "Delete this folder?".into(),
        (0, n) => format!("Delete {n} files?"),
        (n, 0) => format!("Delete {n} folders?"),
        (d, f) => format!(
            "Delete {} and {}?",
            counted(d, "folder", "folders"),
            counted(f, "file", "files")
        ),
    }
}

fn new_folder_ui(app: &mut S3ShareApp, ctx: &Context) {
    let Some(name) = &mut app.new_folder else {
        return;
    };
    let mut create = false;
    let mut cancel = false;
    let typed = name.clone();
    let problem = app.folder_name_problem(&typed);
    let closed = modal(ctx, "new_folder", |ui| {
        ui.heading("New folder");
        let Some(name) = &mut app.new_folder else {
            return;
        };
        let edit = ui.add(egui::TextEdit::singleline(name).hint_text("Folder name"));
        edit.request_focus();
        create = (edit.lost_focus() || edit.has_focus())
            && ui.input(|i| i.key_pressed(egui::Key::Enter));
        // Nothing typed yet is not an error to show; the button waits for a name.
        if let Some(p) = problem.as_ref().filter(|_| !typed.trim().is_empty()) {
            ui.colored_label(ui.visuals().error_fg_color, p);
        }
        ui.horizontal(|ui| {
            create |= ui
                .add_enabled(problem.is_none(), egui::Button::new("Create"))
                .clicked();
            cancel = ui.button("Cancel").clicked();
        });
    });
    if create && problem.is_none() {
        let name = app.new_folder.take().unwrap_or_default();
        app.create_folder(&name);
    } else if cancel || closed {
        app.new_folder = None;
    }
}

fn endpoint_ui(app: &mut S3ShareApp, ctx: &Context) {
    let Some(form) = &mut app.endpoint_form else {
        return;
    };
    let mut save = false;
    let mut cancel = false;
    let valid = !form.name.trim().is_empty()
        && (form.endpoint.starts_with("http://") || form.endpoint.starts_with("https://"))
        && form.endpoint.len() > 8;
    let closed = modal(ctx, "endpoint", |ui| {
        ui.heading("Add an S3-compatible endpoint");
        egui::Grid::new("endpoint_form")
            .num_columns(2)
            .spacing([10.0, 6.0])
            .show(ui, |ui| {
                ui.label("Name");
                ui.text_edit_singleline(&mut form.name);
                ui.end_row();
                ui.label("Endpoint URL");
                ui.text_edit_singleline(&mut form.endpoint);
                ui.end_row();
                ui.label("Region");
                ui.add(egui::TextEdit::singleline(&mut form.region).hint_text("us-east-1"));
                ui.end_row();
                ui.label("AWS profile");
                ui.add(
                    egui::TextEdit::singleline(&mut form.profile)
                        .hint_text("(environment / default)"),
                );
                ui.end_row();
                ui.label("");
                ui.checkbox(
                    &mut form.path_style,
                    "Path-style addressing (MinIO, SeaweedFS…)",
                );
                ui.end_row();
            });
        ui.label(RichText::new("Keys are read from the AWS config files or the environment; s3share never stores secrets.").small().weak());
        ui.horizontal(|ui| {
            save = ui.add_enabled(valid, egui::Button::new("Add")).clicked();
            cancel = ui.button("Cancel").clicked();
        });
    });
    if save {
        let form: CustomEndpoint = app.endpoint_form.take().expect("open");
        app.settings.custom_endpoints.push(form.clone());
        app.connect(super::backend::ConnectionTarget::Custom(form));
    } else if cancel || closed {
        app.endpoint_form = None;
    }
}

fn path_prompt_ui(app: &mut S3ShareApp, ctx: &Context) {
    let Some((kind, path)) = &mut app.path_prompt else {
        return;
    };
    let mut go = false;
    let mut cancel = false;
    let closed = modal(ctx, "path_prompt", |ui| {
        ui.heading(match kind {
            PathPromptKind::Upload(AfterUpload::Nothing) => "Upload a file or folder",
            PathPromptKind::Upload(AfterUpload::CopyLinks { .. }) => {
                "Upload a file or folder and copy its link"
            }
            PathPromptKind::Download(_) => "Download to",
        });
        ui.label("No file was chosen (no file dialog may be available on this desktop). Type a path instead:");
        let edit = ui.add(
            egui::TextEdit::singleline(path)
                .desired_width(440.0)
                .hint_text("~/file.txt"),
        );
        if ui.memory(|m| m.focused().is_none()) {
            edit.request_focus();
        }
        go = (edit.lost_focus() || edit.has_focus())
            && ui.input(|i| i.key_pressed(egui::Key::Enter));
        ui.horizontal(|ui| {
            go |= ui.button("OK").clicked();
            cancel = ui.button("Cancel").clicked();
        });
    });
    if go && !path.trim().is_empty() {
        let (kind, path) = app.path_prompt.take().expect("open");
        let path = super::pickers::typed_path(&path, &super::pickers::UserFolders::of_user());
        match kind {
            PathPromptKind::Upload(then) => app.upload_paths_then(vec![path], then),
            PathPromptKind::Download(keys) => app.download_typed(keys, path),
        }
    } else if cancel || closed {
        app.path_prompt = None;
    }
}

/// A typed download path names a file that exists: a save dialog would ask, so this does.
fn replace_ui(app: &mut S3ShareApp, ctx: &Context) {
    let Some(prompt) = &app.replace_prompt else {
        return;
    };
    let (mut replace, mut keep_both, mut cancel) = (false, false, false);
    let closed = modal(ctx, "replace", |ui| {
        let name = prompt.path.file_name().map_or_else(
            || prompt.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        ui.heading(format!("Replace “{}”?", crate::location::shown(&name)));
        ui.add(
            egui::Label::new(format!(
                "{} exists already. Downloading {} there replaces it.",
                crate::location::shown(&prompt.path.display().to_string()),
                crate::location::shown(&prompt.key)
            ))
            .wrap(),
        );
        ui.horizontal(|ui| {
            replace = ui.button("Replace").clicked();
            keep_both = ui
                .button("Keep both")
                .on_hover_text("Download beside it, as “name (1).ext”")
                .clicked();
            cancel = ui.button("Cancel").clicked();
        });
    });
    if replace || keep_both {
        let prompt = app.replace_prompt.take().expect("open");
        let path = if keep_both {
            match super::transfers::free_path(&prompt.path) {
                Some(p) => p,
                None => {
                    return app.toast_error(format!(
                        "No free name beside {}: choose another.",
                        prompt.path.display()
                    ));
                }
            }
        } else {
            prompt.path
        };
        app.download_to(vec![prompt.key], path, replace);
    } else if cancel || closed {
        app.replace_prompt = None;
    }
}

/// The two halves of the drop zone: plain upload (left) and upload and copy link (right).
pub(super) fn drop_halves(rect: egui::Rect) -> (egui::Rect, egui::Rect) {
    let inner = rect.shrink(24.0);
    let (left, right) = inner.split_left_right_at_fraction(0.5);
    (
        left.shrink2(egui::vec2(6.0, 0.0)),
        right.shrink2(egui::vec2(6.0, 0.0)),
    )
}

/// What a drop at `pointer` does: the half under the pointer, where the window system reports
/// the pointer during a drag; else the choice made last (shown highlighted).
pub(super) fn drop_copies_link(app: &S3ShareApp, ctx: &Context) -> bool {
    let (upload, link) = drop_halves(ctx.content_rect());
    match ctx.input(|i| i.pointer.hover_pos()) {
        Some(p) if link.contains(p) => true,
        Some(p) if upload.contains(p) => false,
        _ => app.settings.drop_copies_link,
    }
}

/// While files are dragged over the window: where they will go, and the two ways to drop them.
pub fn drop_zone_ui(app: &S3ShareApp, ctx: &Context) {
    let hovering = ctx.input(|i| !i.raw.hovered_files.is_empty());
    if !hovering {
        return;
    }
    let target = app
        .place
        .as_ref()
        .map(|p| format!("s3://{}/{}", p.bucket, p.prefix))
        .unwrap_or_else(|| "— open a bucket first".into());
    let rect = ctx.content_rect();
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("drop_zone"),
    ));
    painter.rect_filled(rect, 0.0, egui::Color32::from_black_alpha(160));
    let link_chosen = drop_copies_link(app, ctx);
    let expiry = links::format_duration(std::time::Duration::from_secs(
        app.settings.link_expiry_secs,
    ));
    let (upload, link) = drop_halves(rect);
    for (half, chosen, text) in [
        (upload, !link_chosen, format!("⬆ Upload\n\nto {target}")),
        (
            link,
            link_chosen,
            format!("🔗 Upload and copy link\n\nto {target}\nthe link works for {expiry}"),
        ),
    ] {
        let (stroke, fill) = if chosen {
            (
                egui::Stroke::new(3.0, egui::Color32::from_rgb(80, 180, 220)),
                egui::Color32::from_rgba_unmultiplied(80, 180, 220, 40),
            )
        } else {
            (
                egui::Stroke::new(1.5, egui::Color32::from_gray(160)),
                egui::Color32::TRANSPARENT,
            )
        };
        painter.rect(half, 12.0, fill, stroke, egui::StrokeKind::Inside);
        painter.text(
            half.center(),
            egui::Align2::CENTER_CENTER,
            text,
            egui::FontId::proportional(20.0),
            egui::Color32::WHITE,
        );
    }
}

/// Toasts in the bottom-right corner.
pub fn toasts_ui(app: &S3ShareApp, ctx: &Context) {
    if app.toasts.is_empty() {
        return;
    }
    egui::Area::new(egui::Id::unique("toasts"))
        .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-16.0, -40.0))
        .order(egui::Order::Tooltip)
        .show(ctx, |ui| {
            for t in &app.toasts {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    ui.set_max_width(380.0);
                    if t.error {
                        ui.colored_label(ui.visuals().warn_fg_color, &t.text);
                    } else {
                        ui.label(&t.text);
                    }
                });
            }
        });
}
