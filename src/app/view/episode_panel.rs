//! The episode panel, off air after a room that recorded an episode: waiting while it is
//! rendered, then "Episode ready" with its page and feed links, its title to rename, Unlist or
//! Publish, and Delete (which takes a second click). Every change goes through the model's
//! [`EpisodePanel`]; nothing here talks to the server.

use std::time::Instant;

use eframe::egui::{self, Color32, RichText, Ui};

use super::ViewState;
use super::room_tab::link_row;
use super::widgets::{CARD, LIVE_RED, MUTED_GREY, SPEAK_GREEN, card, heading};
use crate::app::episode::{EpisodePanel, EpisodeRequest, EpisodeStage};
use crate::app::model::Overlay;
use crate::episodes::Status;

/// The panel, when the last room became an episode.
pub(super) fn show(ui: &mut Ui, o: &mut Overlay, v: &mut ViewState, now: Instant) {
    let Some(p) = o.episode.as_mut() else {
        return;
    };
    let id = p.id;
    let mut close = false;
    match p.stage() {
        EpisodeStage::Waiting(status) => {
            let doing = if status == Some(Status::Recording) {
                "finishing the recording"
            } else {
                "rendering: normalising the sound, making the MP3 and its chapters"
            };
            card(ui, CARD, |ui| {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label(format!("Episode {id}: {doing}..."));
                });
            });
        }
        EpisodeStage::Failed(why) => {
            let text = format!("Episode {id} could not be rendered: {why}");
            card(ui, LIVE_RED, |ui| {
                ui.label(RichText::new(text).color(Color32::WHITE));
                close = ui.button("Close").clicked();
            });
        }
        EpisodeStage::Deleted => {
            card(ui, CARD, |ui| {
                ui.label(format!("Episode {id} is deleted, with its files."));
                close = ui.button("Close").clicked();
            });
        }
        EpisodeStage::Ready(view) => {
            let (page, feed) = (view.page.clone(), view.feed.clone());
            let listed = view.episode.status == Status::Published;
            card(ui, SPEAK_GREEN, |ui| {
                heading(ui, "Episode ready");
                link_row(ui, v, "Episode page", &page, now);
                link_row(ui, v, "Podcast feed", &feed, now);
                changes(ui, p, listed);
            });
        }
    }
    if close {
        o.episode = None;
    }
}

/// The host's changes: rename, unlist or publish, delete.
fn changes(ui: &mut Ui, p: &mut EpisodePanel, listed: bool) {
    let free = p.can_change();
    ui.horizontal(|ui| {
        let field = ui.add(egui::TextEdit::singleline(&mut p.title).hint_text("episode title"));
        let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.add_enabled(free, egui::Button::new("Rename")).clicked() || (entered && free) {
            p.rename();
        }
    });
    ui.horizontal(|ui| {
        let (said, toggle) = if listed {
            ("In the feed", "Unlist")
        } else {
            ("Unlisted: only its link finds it", "Publish")
        };
        ui.label(RichText::new(said).color(MUTED_GREY));
        if ui.add_enabled(free, egui::Button::new(toggle)).clicked() {
            p.set_listed(!listed);
        }
        if !p.confirm_delete
            && ui
                .add_enabled(
                    free,
                    egui::Button::new(RichText::new("Delete").color(LIVE_RED)),
                )
                .clicked()
        {
            p.delete();
        }
    });
    if p.confirm_delete {
        confirm_delete(ui, p);
    }
    if let Some(asked) = &p.asked {
        let doing = match asked {
            EpisodeRequest::Rename(_) => "Renaming...",
            EpisodeRequest::SetStatus(Status::Published) => "Publishing...",
            EpisodeRequest::SetStatus(_) => "Unlisting...",
            EpisodeRequest::Delete => "Deleting...",
        };
        ui.label(RichText::new(doing).color(MUTED_GREY));
    }
    if let Some(problem) = &p.problem {
        ui.label(RichText::new(problem).color(LIVE_RED));
    }
}

/// Deleting takes a second click: the files, the page and the feed entry all go.
fn confirm_delete(ui: &mut Ui, p: &mut EpisodePanel) {
    card(ui, LIVE_RED, |ui| {
        ui.label("Delete this episode and its files for good? Its page and feed entry go too.");
        ui.horizontal(|ui| {
            if ui
                .add(
                    egui::Button::new(RichText::new("Delete it").color(Color32::WHITE))
                        .fill(LIVE_RED),
                )
                .clicked()
            {
                p.delete();
            }
            if ui.button("Keep it").clicked() {
                p.keep();
            }
        });
    });
}
