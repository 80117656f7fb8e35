//! The transfers panel: a total at the top, then one row per file with progress, speed, ETA,
//! state, and cancel.

use egui::{RichText, Ui};

use super::S3ShareApp;
use super::model::{Direction, TransferState, format_size};
use super::transfers::TransferTally;
use crate::links::format_duration;

/// The panel.
pub fn transfers_ui(app: &mut S3ShareApp, ui: &mut Ui) {
    let TransferTally {
        active,
        done,
        total,
        speed,
        failed,
        cancelled,
        finished,
    } = app.transfer_tally();
    ui.add_space(4.0);
    ui.horizontal(|ui| {
        ui.strong("Transfers");
        if active == 0 {
            ui.label(format!("{finished} done"));
        } else {
            ui.label(format!(
                "{active} running · {} of {} · {}/s",
                format_size(done),
                format_size(total),
                format_size(speed as u64)
            ));
            if speed > 1.0 {
                let eta = (total.saturating_sub(done) as f64 / speed).ceil() as u64;
                ui.label(format!(
                    "· {} left",
                    format_duration(std::time::Duration::from_secs(eta))
                ));
            }
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("Clear finished").clicked() {
                app.clear_finished();
            }
            // Named for what it runs again: a cancelled transfer did not fail.
            let which = if cancelled == 0 {
                "failed"
            } else if cancelled == failed {
                "cancelled"
            } else {
                "failed and cancelled"
            };
            if ui
                .add_enabled(
                    failed > 0,
                    egui::Button::new(format!("⟳ Retry {which} ({failed})")),
                )
                .clicked()
            {
                app.retry_failed();
            }
        });
    });
    if total > 0 {
        ui.add(egui::ProgressBar::new(done as f32 / total as f32).desired_height(6.0));
    }
    ui.separator();
    let mut cancel = None;
    let mut retry = None;
    let mut replace_file = None;
    let mut copy = None;
    // Newest first: what was just dropped (and is running) is at the top, in view, not below
    // the rows of earlier transfers.
    let rows = app.transfers.len();
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show_rows(ui, 22.0, rows, |ui, range| {
            for t in range.map(|i| &app.transfers[rows - 1 - i]) {
                ui.horizontal(|ui| {
                    ui.label(if t.direction == Direction::Upload {
                        "⬆"
                    } else {
                        "⬇"
                    });
                    fixed_width(ui, 260.0, |ui| {
                        // "Keep both" stored it under another name: the row says which, as
                        // its link and the folder do.
                        let name = match &t.uploaded {
                            Some((_, key)) if *key != t.name => format!(
                                "{} (stored as {})",
                                t.name,
                                key.rsplit('/').next().unwrap_or(key)
                            ),
                            _ => t.name.clone(),
                        };
                        ui.add(egui::Label::new(name).truncate());
                    });
                    let fraction = if t.total == 0 {
                        if t.state == TransferState::Finished {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        t.done as f32 / t.total as f32
                    };
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .desired_width(180.0)
                            .desired_height(14.0),
                    );
                    // Cells of fixed width: the buttons after them stay put while the
                    // figures change (Cancel moved under the pointer as the speed did).
                    fixed_width(ui, 130.0, |ui| {
                        ui.label(
                            RichText::new(format!(
                                "{} / {}",
                                format_size(t.done),
                                format_size(t.total)
                            ))
                            .small(),
                        );
                    });
                    match &t.state {
                        // As wide as a running row's figures: Cancel stays where it was
                        // when the row starts.
                        TransferState::Queued => {
                            fixed_width(ui, 150.0, |ui| {
                                ui.label(RichText::new("queued").weak());
                            });
                        }
                        TransferState::Running => {
                            let eta = t
                                .eta_secs()
                                .map(|s| {
                                    format!(
                                        " · {} left",
                                        format_duration(std::time::Duration::from_secs(s))
                                    )
                                })
                                .unwrap_or_default();
                            fixed_width(ui, 150.0, |ui| {
                                ui.label(
                                    RichText::new(format!(
                                        "{}/s{eta}",
                                        format_size(t.speed as u64)
                                    ))
                                    .small(),
                                );
                            });
                        }
                        TransferState::Finished => {
                            ui.label(
                                RichText::new("✔ done").color(egui::Color32::from_rgb(60, 170, 90)),
                            );
                            if let Some(target) = &t.uploaded
                                && ui.small_button("🔗 Copy link").clicked()
                            {
                                copy = Some(target.clone());
                            }
                        }
                        TransferState::Skipped => {
                            ui.label(RichText::new("skipped (exists)").weak());
                        }
                        TransferState::Cancelled => {
                            ui.label(RichText::new("cancelled").weak());
                            // As a failed row: the panel's Retry runs it too.
                            if ui.small_button("⟳ Retry").clicked() {
                                retry = Some(t.id);
                            }
                        }
                        TransferState::Failed(e) => {
                            ui.colored_label(ui.visuals().error_fg_color, "✖ failed")
                                .on_hover_text(e);
                            if t.can_replace {
                                let replace = ui
                                    .small_button("Replace")
                                    .on_hover_text("Download it again, replacing the local file");
                                if replace.clicked() {
                                    replace_file = Some(t.id);
                                }
                            }
                            if ui.small_button("⟳ Retry").clicked() {
                                retry = Some(t.id);
                            }
                            // A truncated label shows its whole text on hover by itself: a
                            // tooltip of ours came on top of it, the same text twice.
                            ui.add(egui::Label::new(RichText::new(e).small()).truncate());
                        }
                    }
                    if t.is_active() && ui.small_button("✖ Cancel").clicked() {
                        cancel = Some(t.id);
                    }
                });
            }
        });
    if let Some(id) = cancel {
        app.cancel_transfer(id);
    }
    if let Some(id) = replace_file {
        app.replace_and_retry(id);
    }
    if let Some(id) = retry {
        app.retry(id);
    }
    if let Some((bucket, key)) = copy {
        let expires = std::time::Duration::from_secs(app.settings.link_expiry_secs);
        app.copy_links(bucket, vec![key], expires);
    }
}

/// A cell `width` wide, whatever it holds.
fn fixed_width(ui: &mut Ui, width: f32, add: impl FnOnce(&mut Ui)) {
    let layout = egui::Layout::left_to_right(egui::Align::Center);
    ui.allocate_ui_with_layout(egui::vec2(width, 18.0), layout, |ui| {
        ui.set_min_width(width);
        add(ui);
    });
}
