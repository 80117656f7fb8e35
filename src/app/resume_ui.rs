//! The "Interrupted uploads" window: each upload's file, destination and how much is done,
//! with Resume and Discard.

use egui::{Context, RichText};

use super::S3ShareApp;
use super::model::format_size;

/// The window, while interrupted uploads wait for an answer.
pub fn pending_uploads_ui(app: &mut S3ShareApp, ctx: &Context) {
    if app.pending_uploads.is_empty() {
        return;
    }
    let (mut resume, mut discard, mut later) = (None, None, false);
    egui::Window::new("Interrupted uploads")
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_TOP, egui::vec2(0.0, 60.0))
        .show(ctx, |ui| {
            ui.label("These uploads stopped before they were complete. Resume sends only what is missing; Discard removes what was sent.");
            ui.separator();
            for (i, row) in app.pending_uploads.iter().enumerate() {
                let p = &row.info.pending;
                ui.push_id(i, |ui| {
                    ui.horizontal(|ui| {
                        ui.vertical(|ui| {
                            ui.strong(p.path.display().to_string());
                            ui.label(format!("to s3://{}/{}", p.bucket, p.key));
                            let done = match row.info.stored {
                                Some(stored) => format!(
                                    "{} of {} uploaded",
                                    format_size(stored),
                                    format_size(p.size)
                                ),
                                None => format!("{} in all", format_size(p.size)),
                            };
                            ui.label(RichText::new(done).small());
                        });
                        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                            if row.discarding {
                                ui.spinner();
                                return;
                            }
                            if ui.button("Discard").clicked() {
                                discard = Some(i);
                            }
                            if ui.button("Resume").clicked() {
                                resume = Some(i);
                            }
                        });
                    });
                });
                ui.separator();
            }
            // The window sat over the toolbar with no way to put it off.
            later = ui
                .button("Later")
                .on_hover_text("Keep them for now: they are offered again at the next start")
                .clicked();
        });
    if later {
        app.pending_uploads.clear();
    }
    if let Some(i) = resume {
        app.resume_pending(i);
    } else if let Some(i) = discard {
        app.discard_pending(i);
    }
}
