//! The Audio tab: device pickers, level meters, the mix and ducking faders, the voice
//! options. The faders edit the settings; the engine hears of them only through the model.

use eframe::egui::{self, Color32, ComboBox, CornerRadius, RichText, Sense, Slider, Ui, Vec2};

use super::widgets::{HAND_AMBER, LIVE_RED, MUTED_GREY, SPEAK_GREEN, heading};
use crate::app::model::Overlay;
use crate::engine::Input;

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

fn fmt_db(v: f32, unit: &str) -> String {
    format!("{} {unit}", crate::dsp::meter_text(v, 6))
}

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

pub(super) fn show(ui: &mut Ui, o: &mut Overlay) {
    heading(ui, "Sources");
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
    let (mut game_pick, mut mic_pick, mut out_pick) = (None, None, None);
    egui::Grid::new("devices")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            game_pick = device_picker(
                ui,
                "Game",
                &o.settings.game_device,
                "What the computer plays (default)",
                &game,
            );
            mic_pick = device_picker(
                ui,
                "Mic",
                &o.settings.mic_device,
                "Default microphone",
                &mic,
            );
            out_pick = device_picker(
                ui,
                "Hear room",
                &o.settings.monitor_device,
                "Nowhere",
                &outputs,
            );
        });
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

    heading(ui, "Levels");
    let m = o.meters();
    if let Some(m) = m {
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
    } else {
        ui.label(RichText::new("The audio engine is starting...").color(MUTED_GREY));
    }

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
    let lookahead = fader(
        ui,
        &mut s.duck_lookahead_ms,
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
    if moved {
        o.apply_program();
    }
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
