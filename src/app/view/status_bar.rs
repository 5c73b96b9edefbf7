//! The status bar: live state and time, listeners, the mic button, who speaks, raised hands.
//! It is the whole compact strip and the head of the expanded panel; it only calls the model.

use std::time::{Duration, Instant};

use eframe::egui::{self, Align, Color32, Layout, RichText, Sense, Ui, Vec2, ViewportCommand};

use super::widgets::{HAND_AMBER, LIVE_RED, MUTED_GREY, SPEAK_GREEN};
use super::{COMPACT_SIZE, EXPANDED_SIZE, Tab, ViewState};
use crate::app::model::{Overlay, Phase};

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 60, s % 60)
    }
}

/// The expanded window's size: as the user left it, or the usual one.
fn expanded_size(o: &Overlay) -> Vec2 {
    o.settings
        .window_size
        .map_or(EXPANDED_SIZE, |[w, h]| Vec2::new(w, h))
}

/// The header both modes start with: status, time, listeners, mic. Dragging it moves the
/// window.
pub(super) fn show(ui: &mut Ui, o: &mut Overlay, v: &mut ViewState, now: Instant) {
    drag_to_move(ui);
    ui.horizontal(|ui| {
        on_air_and_time(ui, o, now);
        if o.live_room().is_some() {
            ui.separator();
            audience(ui, o);
        }
        ui.separator();
        mic_button(ui, o);
        if !o.settings.expanded {
            speaking_and_ducking(ui, o);
        }
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            size_toggle(ui, o);
            if !o.room.hands.is_empty() {
                hands_badge(ui, o, v);
            }
        });
    });
    if o.settings.expanded {
        ui.horizontal(|ui| {
            ui.add_space(16.0);
            speaking_and_ducking(ui, o);
        });
    }
}

/// The window has no title bar: a drag on the header's background moves it.
fn drag_to_move(ui: &mut Ui) {
    // Under the row's widgets (made first), so their clicks stay theirs.
    let row = egui::Rect::from_min_size(ui.max_rect().min, Vec2::new(ui.max_rect().width(), 30.0));
    let drag = ui.interact(row, ui.scope_id().with("drag"), Sense::click_and_drag());
    if drag.drag_started() {
        ui.ctx().send_viewport_cmd(ViewportCommand::StartDrag);
    }
}

/// Where the overlay is (live, off air...) and, live, how long for.
fn on_air_and_time(ui: &mut Ui, o: &Overlay, now: Instant) {
    let (text, color) = match &o.phase {
        Phase::Live(_) => ("LIVE", LIVE_RED),
        Phase::GoingLive => ("GOING LIVE", HAND_AMBER),
        Phase::Starting => ("STARTING", MUTED_GREY),
        Phase::Ready => ("OFF AIR", MUTED_GREY),
        Phase::Broken(_) => ("NO AUDIO", LIVE_RED),
    };
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(12.0), Sense::hover());
    ui.painter().circle_filled(rect.center(), 5.5, color);
    ui.label(RichText::new(text).strong().color(color));
    if let Some(d) = o.live_for(now) {
        ui.label(RichText::new(clock(d)).monospace());
    }
}

/// How many listen, and whether the room is recorded.
fn audience(ui: &mut Ui, o: &Overlay) {
    let listeners = o.room.listener_count.max(o.room.listening);
    ui.label(format!("{listeners} listening")).on_hover_text(
        "people in the room's audience (players listening without the page count too)",
    );
    if o.room.recording {
        ui.label(RichText::new("REC").color(LIVE_RED).small());
    }
}

/// The mic's state as a button that mutes and unmutes it.
fn mic_button(ui: &mut Ui, o: &mut Overlay) {
    let (mic_text, mic_color) = if o.muted {
        ("Unmute", LIVE_RED)
    } else if o.settings.push_to_talk && !o.ptt_held {
        ("PTT", HAND_AMBER)
    } else {
        ("Mute", SPEAK_GREEN)
    };
    let mic = ui
        .add(egui::Button::new(RichText::new(mic_text).color(mic_color)))
        .on_hover_text(if o.muted {
            "your mic is muted: click (or the mute hotkey) to talk"
        } else {
            "your mic is live: click (or the mute hotkey) to mute"
        });
    if mic.clicked() {
        o.toggle_mute();
    }
}

/// Switches between the compact strip and the expanded panel, resizing the window.
fn size_toggle(ui: &mut Ui, o: &mut Overlay) {
    let toggle = if o.settings.expanded {
        "Compact"
    } else {
        "Expand"
    };
    if ui.small_button(toggle).clicked() {
        o.settings.expanded = !o.settings.expanded;
        o.changed();
        let size = if o.settings.expanded {
            expanded_size(o)
        } else {
            COMPACT_SIZE
        };
        ui.ctx().send_viewport_cmd(ViewportCommand::InnerSize(size));
    }
}

/// How many hands are up; a click opens the Room tab where they are answered.
fn hands_badge(ui: &mut Ui, o: &mut Overlay, v: &mut ViewState) {
    let n = o.room.hands.len();
    let badge = ui.add(
        egui::Button::new(
            RichText::new(format!("{n} hand{}", if n == 1 { "" } else { "s" }))
                .color(Color32::BLACK)
                .strong(),
        )
        .fill(HAND_AMBER),
    );
    if badge.clicked() {
        o.settings.expanded = true;
        o.changed();
        v.tab = Tab::Room;
        ui.ctx()
            .send_viewport_cmd(ViewportCommand::InnerSize(expanded_size(o)));
    }
}

/// Who is speaking, and how far the game is ducked under them.
fn speaking_and_ducking(ui: &mut Ui, o: &Overlay) {
    let speaking = o.room.speaking();
    if !speaking.is_empty() {
        ui.label(
            RichText::new(speaking.join(", "))
                .color(SPEAK_GREEN)
                .strong(),
        )
        .on_hover_text("speaking now");
    }
    if let Some(db) = o
        .meters()
        .and_then(|m| crate::app::model::duck_readout(m.duck_reduction_db))
    {
        ui.label(
            RichText::new(format!("game -{db} dB"))
                .color(HAND_AMBER)
                .small(),
        )
        .on_hover_text("how far the game is ducked under the voices now");
    }
}
