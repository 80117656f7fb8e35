//! The file browser: toolbar, filter, the file table (only visible rows drawn), keyboard
//! shortcuts, context menu, and the status line.

use egui::{Key, Modifiers, RichText, Ui};
use egui_extras::{Column, TableBuilder};

use super::backend::AfterUpload;
use super::model::{Entry, SortBy, counted, format_size};
use super::{ConnectionState, EXPIRY_CHOICES, S3ShareApp};
use crate::links;

const ROW_HEIGHT: f32 = 24.0;

/// The central panel.
pub fn browser_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    super::credentials_ui::credentials_banner_ui(app, ui);
    if app.place.is_none() {
        return empty_state_ui(app, ui);
    }
    toolbar_ui(app, ui);
    ui.add_space(4.0);
    if let Some(error) = app.listing.error.clone() {
        listing_failed_ui(app, ui, &error);
    }
    shortcuts(app, ui);
    table_ui(app, ui);
}

/// A listing that failed: what happened, wrapped inside the window, and what to do. It never
/// reads as "empty": the rows shown (if any) are the last good ones, marked stale.
fn listing_failed_ui(app: &mut S3ShareApp, ui: &mut Ui, error: &str) {
    let retry = problem_ui(ui, "Could not list this folder", error, || {
        if app.listing.stale {
            let when = app
                .listing
                .listed_at
                .map(|t| format!(" from {}", links::format_time_short(t)))
                .unwrap_or_default();
            format!("The files below are the last listing{when}, and may be out of date.")
        } else {
            String::new()
        }
    });
    if retry {
        app.refresh();
    }
}

/// A framed problem: a heading, the error wrapped to the window, an optional note, what to do,
/// and a Retry button. Returns whether Retry was clicked.
pub(super) fn problem_ui(
    ui: &mut Ui,
    heading: &str,
    error: &str,
    note: impl FnOnce() -> String,
) -> bool {
    let mut retry = false;
    egui::Frame::group(ui.style())
        .stroke(egui::Stroke::new(1.0, ui.visuals().error_fg_color))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.colored_label(ui.visuals().error_fg_color, format!("⚠ {heading}"));
            ui.add(egui::Label::new(error).wrap());
            let note = note();
            if !note.is_empty() {
                ui.add(egui::Label::new(RichText::new(note).italics()).wrap());
            }
            ui.horizontal_wrapped(|ui| {
                retry = ui.button("⟳ Retry").clicked();
                ui.label(RichText::new("Retry, or check the connection in the sidebar.").weak());
            });
        });
    retry
}

fn empty_state_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    let mut retry = None;
    ui.vertical_centered(|ui| {
        ui.add_space(ui.available_height() / 3.0);
        match &app.connection {
            ConnectionState::Connected { .. } => {
                ui.heading("Choose a bucket");
                ui.label("Pick one in the bar above, or type its name if your credentials may not list buckets.");
            }
            ConnectionState::Failed(target, e) => {
                ui.heading("Cannot connect");
                ui.add(egui::Label::new(e.as_str()).wrap());
                if ui.button("⟳ Retry").clicked() {
                    retry = Some(target.clone());
                }
            }
            _ => {
                ui.spinner();
                ui.label("Connecting…");
            }
        }
    });
    if let Some(target) = retry {
        app.connect(target);
    }
}

fn toolbar_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    let selection = app.listing.selection();
    let files_selected = selection.iter().filter(|e| !e.is_folder).count();
    // Wraps onto a second line in a narrow window instead of overlapping.
    // Nothing goes into a bucket that does not exist: the buttons say why instead of
    // starting uploads that would all fail alike.
    let refusal = app.upload_refusal();
    let can_add = refusal.is_none();
    let why_not = refusal.unwrap_or_default();
    // In a narrow browser (a small window, the preview open) the buttons keep their icons
    // and say their names on hover: with their words they wrapped onto six rows and left no
    // room for a single file.
    let compact = ui.available_width() < COMPACT_BELOW;
    let label = |icon: &str, words: &str| {
        if compact {
            icon.to_owned()
        } else {
            format!("{icon} {words}")
        }
    };
    ui.horizontal_wrapped(|ui| {
        let upload = ui.add_enabled(can_add, egui::Button::new(label("⬆", "Upload…")));
        if upload
            .on_hover_text("Upload files (Ctrl+U, or drop them on the window)")
            .on_disabled_hover_text(&why_not)
            .clicked()
        {
            app.pick_upload(false, AfterUpload::Nothing);
        }
        let upload_link = ui.add_enabled(
            can_add,
            // Alone, 🔗 would read as "Copy link".
            egui::Button::new(if compact {
                "🔗⬆".to_owned()
            } else {
                "🔗 Upload and copy link…".to_owned()
            }),
        );
        if upload_link
            .on_hover_text(
                "Upload files, then put their links on the clipboard, one per line (Ctrl+Shift+U)",
            )
            .on_disabled_hover_text(&why_not)
            .clicked()
        {
            let then = app.settings.after_upload_with_link();
            app.pick_upload(false, then);
        }
        link_expiry_ui(app, ui);
        let upload_folder =
            ui.add_enabled(can_add, egui::Button::new(label("📂", "Upload folder…")));
        if upload_folder
            .on_hover_text("Upload a folder, with everything in it")
            .on_disabled_hover_text(&why_not)
            .clicked()
        {
            app.pick_upload(true, AfterUpload::Nothing);
        }
        let new_folder = ui.add_enabled(can_add, egui::Button::new(label("➕", "New folder")));
        if new_folder
            .on_hover_text("New folder")
            .on_disabled_hover_text(&why_not)
            .clicked()
        {
            app.new_folder = Some(String::new());
        }
        let upload_link = ui.add_enabled(can_add, egui::Button::new(label("📥", "Upload link…")));
        if upload_link
            .on_hover_text("A link others can upload a file into this folder with")
            .on_disabled_hover_text(&why_not)
            .clicked()
            && let Some(p) = &app.place
        {
            app.share_upload_link(p.prefix.clone());
        }
        ui.separator();
        let share = ui.add_enabled(
            files_selected > 0,
            egui::Button::new(label("🔗", "Copy link…")),
        );
        if share
            .on_hover_text("Share an expiring link (Ctrl+L; Ctrl+C copies at once)")
            .clicked()
        {
            app.share_selection();
        }
        if ui
            .add_enabled(
                files_selected > 0,
                egui::Button::new(label("⬇", "Download…")),
            )
            .on_hover_text("Download the selected files")
            .clicked()
        {
            app.pick_download();
        }
        let anything_selected = !app.listing.selected.is_empty();
        let delete = ui.add_enabled(anything_selected, egui::Button::new(label("🗑", "Delete")));
        if delete.on_hover_text("Delete (Del)").clicked() {
            app.request_delete();
        }
        ui.separator();
        let filter =
            egui::TextEdit::singleline(&mut app.listing.filter).hint_text("🔍 Filter (Ctrl+F)");
        let filter = ui.add(filter.desired_width(if compact { 120.0 } else { 180.0 }));
        if std::mem::take(&mut app.focus_filter) {
            filter.request_focus();
        }
        // Escape in the filter clears it (and leaves it).
        let escape =
            (filter.has_focus() || filter.lost_focus()) && ui.input(|i| i.key_pressed(Key::Escape));
        if escape && !app.listing.filter.is_empty() {
            app.listing.filter.clear();
            filter.surrender_focus();
            app.listing.refresh();
        } else if filter.changed() {
            app.listing.refresh();
        }
    });
}

/// The browser's width below which the toolbar's buttons show their icons only.
const COMPACT_BELOW: f32 = 480.0;

/// How long copied links work (remembered): the one lifetime of every link copied at once.
fn link_expiry_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    let secs = &mut app.settings.link_expiry_secs;
    let current = EXPIRY_CHOICES.iter().find(|(_, s)| s == secs).map_or_else(
        || links::format_duration(std::time::Duration::from_secs(*secs)),
        |(label, _)| (*label).to_owned(),
    );
    egui::ComboBox::from_id_salt("upload_link_expiry")
        .selected_text(format!("link: {current}"))
        .width(110.0)
        .show_ui(ui, |ui| {
            for (label, s) in EXPIRY_CHOICES {
                ui.selectable_value(secs, s, label);
            }
        })
        .response
        .on_hover_text(
            "How long copied links work: Ctrl+C, Upload and copy link, a drop's links and a \
             row's Copy link (the share dialog starts from it)",
        );
}

/// Keyboard: Enter opens, Backspace goes up, Ctrl+C copies links, Ctrl+U uploads, Ctrl+Shift+U
/// uploads and copies links, Delete deletes, F5 refreshes, Ctrl+F filters, arrows move the
/// selection.
fn shortcuts(app: &mut S3ShareApp, ui: &mut Ui) {
    let ctx = ui.ctx().clone();
    let modal_open = app.share.is_some()
        || app.confirm_delete.is_some()
        || app.conflicts.is_some()
        || app.new_folder.is_some()
        || app.path_prompt.is_some()
        || app.endpoint_form.is_some();
    if modal_open {
        return;
    }
    let typing = S3ShareApp::typing(&ctx);
    let (copy, find, refresh, share, upload_link, upload) = ctx.input_mut(|i| {
        let copy = !typing
            && (i.events.iter().any(|e| matches!(e, egui::Event::Copy))
                || i.consume_key(Modifiers::COMMAND, Key::C));
        // Ctrl+Shift+U before Ctrl+U: a shortcut without Shift also matches with it.
        let upload_link = i.consume_key(Modifiers::COMMAND | Modifiers::SHIFT, Key::U);
        (
            copy,
            i.consume_key(Modifiers::COMMAND, Key::F),
            i.consume_key(Modifiers::NONE, Key::F5),
            i.consume_key(Modifiers::COMMAND, Key::L),
            upload_link,
            i.consume_key(Modifiers::COMMAND, Key::U),
        )
    });
    if upload_link {
        let then = app.settings.after_upload_with_link();
        app.pick_upload(false, then);
    }
    if share {
        app.share_selection();
    }
    if upload {
        app.pick_upload(false, AfterUpload::Nothing);
    }
    if find {
        app.focus_filter = true;
    }
    if refresh {
        app.refresh();
    }
    if typing {
        return;
    }
    if copy {
        app.quick_copy_links();
    }
    let (enter, back, delete, select_all) = ctx.input_mut(|i| {
        (
            i.consume_key(Modifiers::NONE, Key::Enter),
            i.consume_key(Modifiers::NONE, Key::Backspace),
            i.consume_key(Modifiers::NONE, Key::Delete),
            i.consume_key(Modifiers::COMMAND, Key::A),
        )
    });
    // Moves, each with Shift to extend the selection: ↑ ↓, Page Up/Down, Home, End.
    let moved = ctx.input_mut(|i| {
        let mut moved = None;
        for (key, step) in [
            (Key::ArrowUp, -1),
            (Key::ArrowDown, 1),
            (Key::PageUp, -PAGE_ROWS),
            (Key::PageDown, PAGE_ROWS),
            (Key::Home, isize::MIN),
            (Key::End, isize::MAX),
        ] {
            // Shift first: a shortcut without Shift also matches with it.
            for (mods, extend) in [(Modifiers::SHIFT, true), (Modifiers::NONE, false)] {
                if i.consume_key(mods, key) {
                    moved = Some((step, extend));
                }
            }
        }
        moved
    });
    if select_all {
        app.listing.select_all();
        select_changed(app);
    }
    if enter && let Some(e) = app.listing.selection().first().map(|e| (*e).clone()) {
        app.activate(&e);
    }
    if back {
        app.go_up();
    }
    if delete {
        app.request_delete();
    }
    if let Some((step, extend)) = moved
        && !app.listing.is_empty()
    {
        let next = match app.listing.cursor.or(app.listing.anchor) {
            // Nothing chosen yet: the first row.
            None => 0,
            Some(current) => current.saturating_add_signed(step),
        };
        app.listing.move_to(next, extend);
        select_changed(app);
    }
}

/// Rows Page Up and Page Down move by.
const PAGE_ROWS: isize = 20;

fn header_ui(app: &mut S3ShareApp, ui: &mut Ui, label: &str, by: SortBy) {
    let arrow = match app.listing.sort {
        Some((b, true)) if b == by => " ⏶",
        Some((b, false)) if b == by => " ⏷",
        None if by == SortBy::Name => " ⏶",
        _ => "",
    };
    if ui
        .add(egui::Button::new(RichText::new(format!("{label}{arrow}")).strong()).frame(false))
        .clicked()
    {
        let ascending =
            !matches!(app.listing.sort.or(Some((SortBy::Name, true))), Some((b, true)) if b == by);
        app.listing.sort = Some((by, ascending));
        app.listing.refresh();
    }
}

fn table_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    let rows = app.listing.len();
    // After a failure nothing is known about the folder: the problem above says so, and an
    // empty table must not read as "the folder is empty".
    if rows == 0 && app.listing.error.is_some() {
        return;
    }
    if rows == 0 && !app.listing.loading {
        ui.vertical_centered(|ui| {
            ui.add_space(60.0);
            let text = if app.listing.filter.is_empty() {
                "This folder is empty. Drop files here to upload them."
            } else {
                "Nothing matches the filter."
            };
            ui.label(RichText::new(text).weak());
            // A first run opens on the embedded store: say where its files go.
            if let (true, ConnectionState::Connected { target, .. }, Some(dir)) = (
                app.listing.filter.is_empty(),
                &app.connection,
                &app.store_dir,
            ) && *target == crate::app::backend::ConnectionTarget::Local
            {
                ui.label(
                    RichText::new(format!(
                        "Files uploaded here are kept on this computer, in {}.",
                        dir.display()
                    ))
                    .weak()
                    .small(),
                );
            }
        });
        return;
    }
    let mut clicked: Option<(usize, Modifiers)> = None;
    let mut activated: Option<Entry> = None;
    let mut menu_action: Option<(MenuAction, usize)> = None;
    // The keyboard moved: its row comes into view (the keys were consumed by `shortcuts`).
    let scroll_to = app.listing.scroll_to.take();
    let mut table = TableBuilder::new(ui)
        .striped(true)
        .sense(egui::Sense::click())
        .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
        .column(Column::remainder().at_least(140.0).clip(true))
        .column(Column::exact(90.0))
        .column(Column::exact(150.0))
        .min_scrolled_height(0.0);
    if let Some(row) = scroll_to {
        table = table.scroll_to_row(row, None);
    }
    table
        .header(ROW_HEIGHT, |mut header| {
            header.col(|ui| header_ui(app, ui, "Name", SortBy::Name));
            header.col(|ui| header_ui(app, ui, "Size", SortBy::Size));
            header.col(|ui| header_ui(app, ui, "Modified", SortBy::Modified));
        })
        .body(|body| {
            // Only the rows in view are laid out: 100,000 keys cost what 30 do.
            body.rows(ROW_HEIGHT, rows, |mut row| {
                let i = row.index();
                let entry = app.listing.row(i);
                row.set_selected(app.listing.selected.contains(&entry.key));
                row.col(|ui| {
                    let icon = if entry.is_folder {
                        "📁"
                    } else {
                        file_icon(&entry.name)
                    };
                    ui.add(
                        egui::Label::new(format!("{icon}  {}", entry.name))
                            .selectable(false)
                            .truncate(),
                    );
                });
                row.col(|ui| {
                    if !entry.is_folder {
                        ui.add(egui::Label::new(format_size(entry.size)).selectable(false));
                    }
                });
                row.col(|ui| {
                    if let Some(m) = entry.modified {
                        ui.add(egui::Label::new(links::format_time_short(m)).selectable(false));
                    }
                });
                let response = row.response();
                if response.double_clicked() {
                    activated = Some(entry.clone());
                } else if response.clicked() {
                    clicked = Some((i, response.ctx.input(|i| i.modifiers)));
                }
                if response.secondary_clicked() && !app.listing.selected.contains(&entry.key) {
                    clicked = Some((i, Modifiers::NONE));
                }
                let is_folder = entry.is_folder;
                response.context_menu(|ui| {
                    if let Some(a) = context_menu_ui(ui, is_folder) {
                        menu_action = Some((a, i));
                    }
                });
            });
        });
    if let Some((i, m)) = clicked {
        app.listing.click(i, m.command, m.shift);
        select_changed(app);
    }
    if let Some(e) = activated {
        app.activate(&e);
    }
    if let Some((action, i)) = menu_action {
        run_menu_action(app, action, i);
    }
}

/// A single selected file gets its preview.
fn select_changed(app: &mut S3ShareApp) {
    let selection = app.listing.selection();
    match selection.as_slice() {
        [one] if !one.is_folder && app.preview.is_some() => {
            let e = (*one).clone();
            app.activate(&e);
        }
        // A folder (or several rows) chosen: the preview of another file would read as theirs.
        _ if app.preview.is_some() => app.preview = None,
        _ => {}
    }
}

#[derive(Clone, Copy)]
enum MenuAction {
    Open,
    CopyLink,
    UploadLink,
    Download,
    Delete,
}

fn context_menu_ui(ui: &mut Ui, is_folder: bool) -> Option<MenuAction> {
    let mut action = None;
    let mut item = |ui: &mut Ui, label: &str, shortcut: &str, a: MenuAction| {
        if ui
            .add(egui::Button::new(label).shortcut_text(shortcut))
            .clicked()
        {
            action = Some(a);
            ui.close();
        }
    };
    item(
        ui,
        if is_folder {
            "📂 Open"
        } else {
            "👁 Preview"
        },
        "Enter",
        MenuAction::Open,
    );
    if is_folder {
        item(ui, "🔗 Copy upload link…", "", MenuAction::UploadLink);
        ui.separator();
        item(ui, "🗑 Delete…", "Del", MenuAction::Delete);
    } else {
        item(ui, "🔗 Copy link…", "Ctrl+C", MenuAction::CopyLink);
        item(ui, "⬇ Download…", "", MenuAction::Download);
        ui.separator();
        item(ui, "🗑 Delete…", "Del", MenuAction::Delete);
    }
    action
}

fn run_menu_action(app: &mut S3ShareApp, action: MenuAction, row: usize) {
    let entry = app.listing.row(row).clone();
    match action {
        MenuAction::Open => app.activate(&entry),
        MenuAction::CopyLink => app.share_selection(),
        MenuAction::UploadLink => app.share_upload_link(entry.key),
        MenuAction::Download => app.pick_download(),
        MenuAction::Delete => app.request_delete(),
    }
}

fn file_icon(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "bmp" | "svg" => "🖼",
        "mp4" | "mov" | "mkv" | "webm" | "avi" => "🎞",
        "mp3" | "wav" | "flac" | "ogg" | "m4a" => "🎵",
        "zip" | "gz" | "tgz" | "xz" | "zst" | "7z" | "rar" | "tar" => "📦",
        "txt" | "md" | "csv" | "json" | "log" | "toml" | "yaml" | "yml" | "rs" | "py" => "📝",
        "pdf" => "📕",
        _ => "🗋",
    }
}

/// Folder and file counts, total size, and listing progress.
pub fn status_bar_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    ui.horizontal(|ui| {
        if app.place.is_some() && app.listing.error.is_some() && app.listing.all().is_empty() {
            ui.label("The folder could not be listed");
        } else if app.place.is_some() {
            let (folders, files, bytes) = app.listing.summary();
            ui.label(format!(
                "{}, {}, {}",
                counted(folders, "folder", "folders"),
                counted(files, "file", "files"),
                format_size(bytes)
            ));
            // Filtered: what the counts are out of.
            if !app.listing.filter.is_empty() {
                ui.label(
                    RichText::new(format!(
                        "shown of {} (filter \"{}\")",
                        app.listing.all().len(),
                        app.listing.filter
                    ))
                    .weak(),
                );
            }
            if app.listing.stale {
                ui.separator();
                ui.colored_label(ui.visuals().warn_fg_color, "stale: the last listing");
            }
            let selected = app.listing.selected.len();
            if selected > 0 {
                ui.separator();
                ui.label(format!("{selected} selected"));
            }
            if app.listing.loading {
                ui.separator();
                ui.spinner();
                ui.label(format!("loading… {} so far", app.listing.all().len()));
            }
        }
        if let Some(note) = app.local_note() {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.label(RichText::new(note).small().weak());
            });
        }
    });
}
