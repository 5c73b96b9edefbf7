//! The Setup tab: the global hotkeys and the window's click-through and opacity.

use eframe::egui::{self, RichText, Slider, Ui};

use super::widgets::{MUTED_GREY, heading};
use crate::app::model::{HotkeyAction, Overlay};

/// Why Booth may not show over a game, said under the window options.
const FULLSCREEN_NOTE: &str = "Games in exclusive fullscreen draw over every window: set the game to borderless windowed to see Booth over it.";

/// The hotkey fields (registered again when one loses focus) and the window's options.
pub(super) fn show(ui: &mut Ui, o: &mut Overlay) {
    heading(ui, "Hotkeys");
    ui.label(
        RichText::new("Work while the game has focus. Like Ctrl+Shift+KeyM or F9.")
            .small()
            .color(MUTED_GREY),
    );
    let mut changed = false;
    egui::Grid::new("hotkeys")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            let k = &mut o.settings.hotkeys;
            for (label, value) in [
                ("Mute", &mut k.mute),
                ("Push-to-talk", &mut k.push_to_talk),
                ("Mark moment", &mut k.mark_moment),
                ("Click-through", &mut k.click_through),
            ] {
                ui.label(label);
                changed |= ui.text_edit_singleline(value).lost_focus();
                ui.end_row();
            }
        });
    if changed {
        o.changed();
        o.hotkeys_changed = true;
    }
    heading(ui, "Window");
    let mut ct = o.click_through;
    if ui
        .checkbox(&mut ct, "Click-through")
        .on_hover_text("clicks go to the game; the click-through hotkey turns it off")
        .changed()
    {
        o.hotkey(HotkeyAction::ToggleClickThrough);
    }
    if ui
        .add(Slider::new(&mut o.settings.opacity, 0.3..=1.0).text("Opacity"))
        .changed()
    {
        o.changed();
    }
    ui.label(RichText::new(FULLSCREEN_NOTE).small().color(MUTED_GREY));
}
