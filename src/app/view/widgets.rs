//! The overlay's palette and the small building blocks every panel shares (cards, headings);
//! nothing here reads or changes the model.

use eframe::egui::{Color32, CornerRadius, Frame, Margin, RichText, Stroke, Ui};

pub(super) const LIVE_RED: Color32 = Color32::from_rgb(0xe5, 0x39, 0x35);
pub(super) const SPEAK_GREEN: Color32 = Color32::from_rgb(0x43, 0xd1, 0x7a);
pub(super) const HAND_AMBER: Color32 = Color32::from_rgb(0xff, 0xb3, 0x00);
pub(super) const MUTED_GREY: Color32 = Color32::from_rgb(0x8a, 0x8f, 0x98);
pub(super) const PANEL: Color32 = Color32::from_rgb(0x16, 0x18, 0x1d);
pub(super) const CARD: Color32 = Color32::from_rgb(0x22, 0x25, 0x2c);

pub(super) fn card<R>(ui: &mut Ui, accent: Color32, add: impl FnOnce(&mut Ui) -> R) -> R {
    Frame::NONE
        .fill(CARD)
        .stroke(Stroke::new(1.0, accent))
        .corner_radius(CornerRadius::same(6))
        .inner_margin(Margin::same(8))
        .show(ui, |ui| {
            ui.set_width(ui.available_width());
            add(ui)
        })
        .inner
}

pub(super) fn heading(ui: &mut Ui, text: &str) {
    ui.add_space(6.0);
    ui.label(RichText::new(text).strong().size(15.0));
}
