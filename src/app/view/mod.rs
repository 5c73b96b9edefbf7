//! How the overlay is drawn: a compact strip (live and time, listeners, mic, who speaks, raised
//! hands) and an expanded panel (room, audio, hotkeys). Views read the [`Overlay`] and call its
//! methods; they hold only what is about drawing ([`ViewState`]) and never keep room or audio
//! state of their own.
//!
//! - `status_bar`: the header both modes start with (the whole compact strip).
//! - `room_tab`, `audio_tab`, `setup_tab`: the expanded panel's tabs.
//! - `episode_panel`: off air, the episode the last room became (in the Room tab).
//! - `forwards_panel`: live, the room's WHIP forwards (in the Room tab).
//! - `widgets`: the palette and the cards and headings the panels share.

mod audio_tab;
mod episode_panel;
mod forwards_panel;
mod room_tab;
mod setup_tab;
mod status_bar;
mod widgets;

use std::time::Instant;

use eframe::egui::{self, Color32, CornerRadius, Frame, Margin, RichText, Stroke, Ui, Vec2};

use super::model::{Level, Overlay, Phase};
use widgets::{LIVE_RED, PANEL, card};

/// The compact strip's size.
pub const COMPACT_SIZE: Vec2 = Vec2::new(540.0, 46.0);
/// The expanded panel's usual size.
pub const EXPANDED_SIZE: Vec2 = Vec2::new(440.0, 600.0);

/// The panel shown in the expanded window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tab {
    /// Going live, the stage, the hand queue.
    #[default]
    Room,
    /// Devices, faders, meters, ducking.
    Audio,
    /// Hotkeys and the window.
    Setup,
}

/// What only the drawing needs.
#[derive(Debug, Default)]
pub struct ViewState {
    /// The panel shown.
    pub tab: Tab,
    /// Asking "end the room for everyone?".
    pub confirm_end: bool,
    /// The QR code is shown.
    pub show_qr: bool,
    /// When a link was last copied (the button says "Copied").
    copied: Option<(String, Instant)>,
    /// The QR code of a link, made once.
    qr: Option<(String, Vec<bool>, usize)>,
}

/// The overlay and its view state: what the window (and a test harness) draws.
#[derive(Debug)]
pub struct Window {
    /// The model.
    pub overlay: Overlay,
    /// The view state.
    pub view: ViewState,
}

impl Window {
    /// Draws one frame.
    pub fn ui(&mut self, ui: &mut Ui) {
        let now = Instant::now();
        self.overlay.logic(now);
        let alpha = (self.overlay.settings.opacity.clamp(0.3, 1.0) * 255.0) as u8;
        let fill = Color32::from_rgba_unmultiplied(PANEL.r(), PANEL.g(), PANEL.b(), alpha);
        let frame = Frame::NONE
            .fill(fill)
            .inner_margin(Margin::symmetric(10, 6))
            .corner_radius(CornerRadius::same(10))
            .stroke(Stroke::new(1.0, Color32::from_gray(60)));
        self.overlay
            .set_meters_on_screen(self.overlay.settings.expanded && self.view.tab == Tab::Audio);
        egui::CentralPanel::default().frame(frame).show(ui, |ui| {
            if self.overlay.settings.expanded {
                expanded(ui, &mut self.overlay, &mut self.view, now);
            } else {
                compact(ui, &mut self.overlay, &mut self.view, now);
            }
        });
        if let Some(after) = self.overlay.next_change() {
            ui.ctx().request_repaint_after(after);
        }
    }
}

fn compact(ui: &mut Ui, o: &mut Overlay, v: &mut ViewState, now: Instant) {
    status_bar::show(ui, o, v, now);
}

fn expanded(ui: &mut Ui, o: &mut Overlay, v: &mut ViewState, now: Instant) {
    status_bar::show(ui, o, v, now);
    ui.add_space(4.0);
    notices(ui, o);
    ui.horizontal(|ui| {
        for (tab, name) in [
            (Tab::Room, "Room"),
            (Tab::Audio, "Audio"),
            (Tab::Setup, "Setup"),
        ] {
            ui.selectable_value(&mut v.tab, tab, RichText::new(name).strong());
        }
    });
    ui.separator();
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| match v.tab {
            Tab::Room => room_tab::show(ui, o, v, now),
            Tab::Audio => audio_tab::show(ui, o),
            Tab::Setup => setup_tab::show(ui, o),
        });
}

fn notices(ui: &mut Ui, o: &mut Overlay) {
    if let Phase::Broken(why) = &o.phase {
        let why = why.clone();
        card(ui, LIVE_RED, |ui| {
            ui.label(
                RichText::new(format!("The audio engine is not running: {why}"))
                    .color(Color32::WHITE),
            );
            if ui.button("Try again").clicked() {
                o.start_engine();
            }
        });
    }
    let mut dismiss = None;
    for (i, n) in o.notices.iter().enumerate().rev().take(3) {
        let color = match n.level {
            Level::Problem => LIVE_RED,
            Level::Info => Color32::from_rgb(0x3d, 0x7e, 0xd6),
        };
        card(ui, color, |ui| {
            ui.horizontal_top(|ui| {
                ui.add(egui::Label::new(RichText::new(&n.text).color(Color32::WHITE)).wrap());
                if ui.small_button("Dismiss").clicked() {
                    dismiss = Some(i);
                }
            });
        });
    }
    if let Some(i) = dismiss {
        o.dismiss(i);
    }
}
