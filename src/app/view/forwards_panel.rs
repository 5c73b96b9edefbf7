//! The Room tab's "Forward to WHIP" section while live: the room's program into other WHIP
//! endpoints (an SFU, a streaming service). A URL and an optional token, Add, and each forward
//! with its state and a Remove button. Every change goes through the model's [`ForwardPanel`];
//! nothing here talks to the server.

use eframe::egui::{self, RichText, Ui};

use super::widgets::{CARD, HAND_AMBER, LIVE_RED, MUTED_GREY, SPEAK_GREEN, card, heading};
use crate::app::forwards::ForwardPanel;
use crate::app::model::Overlay;
use crate::server::live::forward::{ForwardInfo, ForwardState};

/// The section, while live.
pub(super) fn show(ui: &mut Ui, o: &mut Overlay) {
    let Some(p) = o.forwards.as_mut() else {
        return;
    };
    card(ui, CARD, |ui| {
        heading(ui, "Forward to WHIP");
        let mut remove = None;
        for f in &p.forwards {
            if row(ui, f, p.asked) {
                remove = Some(f.id.clone());
            }
        }
        if let Some(id) = remove {
            p.remove(&id);
        }
        form(ui, p);
        if let Some(why) = &p.problem {
            ui.label(RichText::new(why).color(LIVE_RED));
        }
    });
}

/// One forward: its state, the endpoint, Remove. True when Remove was clicked.
fn row(ui: &mut Ui, f: &ForwardInfo, busy: bool) -> bool {
    let (word, colour) = match f.state {
        ForwardState::Connecting => ("connecting", HAND_AMBER),
        ForwardState::Live => ("live", SPEAK_GREEN),
        ForwardState::Retrying => ("retrying", LIVE_RED),
        ForwardState::Ended => ("ended", MUTED_GREY),
    };
    let mut clicked = false;
    ui.horizontal(|ui| {
        ui.label(RichText::new(word).color(colour).strong());
        ui.add(egui::Label::new(RichText::new(&f.url).monospace().size(12.0)).truncate());
        clicked = ui
            .add_enabled(!busy, egui::Button::new("Remove"))
            .on_hover_text("stop forwarding to this endpoint")
            .clicked();
    });
    if let Some(why) = &f.error {
        ui.label(RichText::new(why).color(MUTED_GREY).size(12.0));
    }
    clicked
}

/// The endpoint's URL and token, and Add.
fn form(ui: &mut Ui, p: &mut ForwardPanel) {
    ui.horizontal(|ui| {
        let label = ui.label("URL");
        ui.add(
            egui::TextEdit::singleline(&mut p.url)
                .hint_text("https://sfu.example/whip")
                .desired_width(220.0),
        )
        .labelled_by(label.id);
    });
    ui.horizontal(|ui| {
        let label = ui.label("Token");
        ui.add(
            egui::TextEdit::singleline(&mut p.token)
                .password(true)
                .hint_text("optional")
                .desired_width(150.0),
        )
        .labelled_by(label.id);
        if ui
            .add_enabled(
                !p.asked && !p.url.trim().is_empty(),
                egui::Button::new("Add"),
            )
            .on_hover_text("publish the room's program into this WHIP endpoint too")
            .clicked()
        {
            p.add();
        }
    });
}
