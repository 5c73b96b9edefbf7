//! The Audio tab: device pickers, level meters, the mix and ducking faders, the voice
//! options. The faders edit the settings; the engine hears of them only through the model.

use eframe::egui::{self, Color32, ComboBox, CornerRadius, RichText, Sense, Slider, Ui, Vec2};

use super::widgets::{HAND_AMBER, LIVE_RED, MUTED_GREY, SPEAK_GREEN, heading};
use crate::app::model::Overlay;
use crate::engine::Feed as Input;

/// A level bar from -60 to 0 dBFS.
fn meter(ui: &mut Ui, label: &str, dbfs: f32, text: &str) {
    ui.horizontal(|ui| {
        ui.add_sized(
            [56.0, 16.0],
            egui::Label::new(RichText::new(label).color(MUTED_GREY)),
        );
        let (rect, _) =
            ui.allocate_exact_size(Vec2::new(ui.available_width() - 90.0, 10.0), Sense::hover());
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, CornerRadius::same(3), Color32::from_gray(45));
        let db = if dbfs.is_finite() {
            dbfs
        } else {
            crate::dsp::METER_FLOOR_DB
        };
        let frac = crate::dsp::level_fraction(db);
        let color = if db > -3.0 {
            LIVE_RED
        } else if db > -12.0 {
            HAND_AMBER
        } else {
            SPEAK_GREEN
        };
        let mut bar = rect;
        bar.set_width(rect.width() * frac);
        painter.rect_filled(bar, CornerRadius::same(3), color);
        ui.label(RichText::new(text).monospace().size(11.0));
    });
}

/// A meter's reading as text, with its unit.
fn fmt_db(v: f32, unit: &str) -> String {
    format!("{} {unit}", crate::dsp::meter_text(v, 6))
}

/// One labelled grid row with a device list; the device picked this frame, if any.
fn device_picker(
    ui: &mut Ui,
    label: &str,
    current: &str,
    default_label: &str,
    choices: &[(String, String)],
) -> Option<String> {
    let mut picked = None;
    ui.label(label);
    let shown = if current.is_empty() {
        default_label.to_owned()
    } else {
        choices
            .iter()
            .find(|(id, _)| id == current)
            .map_or_else(|| current.to_owned(), |(_, name)| name.clone())
    };
    ComboBox::from_id_salt(label)
        .selected_text(shown)
        .width(ui.available_width() - 8.0)
        .show_ui(ui, |ui| {
            if ui
                .selectable_label(current.is_empty(), default_label)
                .clicked()
            {
                picked = Some(String::new());
            }
            for (id, name) in choices {
                if ui.selectable_label(current == id, name).clicked() {
                    picked = Some(id.clone());
                }
            }
        });
    ui.end_row();
    picked
}

/// A labelled slider with its unit; true when the user moved it.
fn fader(
    ui: &mut Ui,
    value: &mut f32,
    range: std::ops::RangeInclusive<f32>,
    step: f64,
    unit: &str,
    label: &str,
) -> bool {
    ui.add(
        Slider::new(value, range)
            .step_by(step)
            .suffix(format!(" {unit}"))
            .text(label),
    )
    .changed()
}

/// Sources, levels, the mix and ducking faders, the voice options.
pub(super) fn show(ui: &mut Ui, o: &mut Overlay) {
    sources(ui, o);
    levels(ui, o);
    let moved = mix_and_ducking_faders(ui, o);
    lookahead(ui, o);
    if moved {
        o.apply_program();
    }
    voice(ui, o);
}

/// The devices the game, the mic and the room's voices use, and the inputs that are lost.
fn sources(ui: &mut Ui, o: &mut Overlay) {
    heading(ui, "Sources");
    let (game_pick, mic_pick, out_pick) = device_pickers(ui, o);
    if let Some(p) = game_pick {
        o.pick_input(Input::Game, &p);
    }
    if let Some(p) = mic_pick {
        o.pick_input(Input::Mic, &p);
    }
    if let Some(p) = out_pick {
        o.pick_monitor(&p);
    }
    for (what, input) in [("Game audio", &o.game_input), ("Mic", &o.mic_input)] {
        if let Some(why) = &input.lost {
            ui.label(RichText::new(format!("{what}: lost ({why})")).color(LIVE_RED));
        }
    }
    if ui.small_button("Refresh devices").clicked() {
        o.refresh_devices();
    }
}

/// The three pickers; each returns the device picked this frame (`""`: the default).
fn device_pickers(ui: &mut Ui, o: &Overlay) -> (Option<String>, Option<String>, Option<String>) {
    let name = |d: &crate::audio::DeviceInfo| {
        let tag = if d.is_monitor {
            " (what the computer plays)"
        } else {
            ""
        };
        (d.name.clone(), format!("{}{tag}", d.name))
    };
    let game: Vec<_> = o.devices.game.iter().map(name).collect();
    let mic: Vec<_> = o.devices.mic.iter().map(name).collect();
    let outputs: Vec<_> = o.devices.outputs.iter().map(name).collect();
    egui::Grid::new("devices")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            let game_pick = device_picker(
                ui,
                "Game",
                &o.settings.game_device,
                "What the computer plays (default)",
                &game,
            );
            let mic_pick = device_picker(
                ui,
                "Mic",
                &o.settings.mic_device,
                "Default microphone",
                &mic,
            );
            let out_pick = device_picker(
                ui,
                "Hear room",
                &o.settings.monitor_device,
                "Nowhere",
                &outputs,
            );
            (game_pick, mic_pick, out_pick)
        })
        .inner
}

/// Peak meters for the game, the mic and the program, and how far the game is ducked.
fn levels(ui: &mut Ui, o: &Overlay) {
    heading(ui, "Levels");
    let Some(m) = o.meters() else {
        ui.label(RichText::new("The audio engine is starting...").color(MUTED_GREY));
        return;
    };
    meter(
        ui,
        "Game",
        m.game_peak_dbfs,
        &fmt_db(m.game_peak_dbfs, "dB"),
    );
    meter(ui, "Mic", m.mic_peak_dbfs, &fmt_db(m.mic_peak_dbfs, "dB"));
    meter(
        ui,
        "Program",
        m.program_peak_dbfs,
        &fmt_db(m.program_short_term_lufs, "LU"),
    );
    let ducked = m.duck_reduction_db;
    let text = if ducked > 0.5 {
        format!("Game ducked by {ducked:.0} dB")
    } else {
        "Game at full level".to_owned()
    };
    ui.label(RichText::new(text).color(if ducked > 0.5 { HAND_AMBER } else { MUTED_GREY }));
}

/// The gains and the ducker's depth and timing; true when one moved (the engine takes them
/// live).
fn mix_and_ducking_faders(ui: &mut Ui, o: &mut Overlay) -> bool {
    heading(ui, "Mix");
    ui.spacing_mut().slider_width = 200.0;
    let s = &mut o.settings;
    let mut moved = false;
    moved |= fader(
        ui,
        &mut s.game_gain_db,
        -30.0..=12.0,
        0.5,
        "dB",
        "Game level",
    );
    moved |= fader(ui, &mut s.mic_gain_db, -30.0..=20.0, 0.5, "dB", "Mic level");
    heading(ui, "Ducking");
    moved |= fader(
        ui,
        &mut s.duck_depth_db,
        0.0..=40.0,
        1.0,
        "dB",
        "Duck depth",
    );
    moved |= fader(ui, &mut s.duck_attack_ms, 1.0..=200.0, 1.0, "ms", "Attack");
    moved |= fader(ui, &mut s.duck_hold_ms, 0.0..=2000.0, 10.0, "ms", "Hold");
    moved |= fader(
        ui,
        &mut s.duck_release_ms,
        10.0..=3000.0,
        10.0,
        "ms",
        "Release",
    );
    moved
}

/// The ducker's lookahead: the running engine keeps its own until it restarts, so a change
/// is only saved, with a note and (off air) a button to restart the audio.
fn lookahead(ui: &mut Ui, o: &mut Overlay) {
    let lookahead = fader(
        ui,
        &mut o.settings.duck_lookahead_ms,
        0.0..=50.0,
        1.0,
        "ms",
        "Lookahead",
    );
    if lookahead {
        o.changed();
    }
    if o.lookahead_pending() {
        ui.horizontal(|ui| {
            ui.label(
                RichText::new("The lookahead applies when the audio restarts.")
                    .small()
                    .color(MUTED_GREY),
            );
            if o.live_room().is_none() && ui.small_button("Restart audio").clicked() {
                o.start_engine();
            }
        });
    }
}

/// The mic chain's options: noise suppression, push-to-talk.
fn voice(ui: &mut Ui, o: &mut Overlay) {
    heading(ui, "Voice");
    let mut ns = o.settings.noise_suppression;
    if ui.checkbox(&mut ns, "Noise suppression").changed() {
        o.set_noise_suppression(ns);
    }
    let mut ptt = o.settings.push_to_talk;
    if ui
        .checkbox(&mut ptt, "Push-to-talk")
        .on_hover_text("the mic is live only while the push-to-talk hotkey is held")
        .changed()
    {
        o.set_push_to_talk(ptt);
    }
}
