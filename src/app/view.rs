//! How the overlay is drawn: a compact strip (live and time, listeners, mic, who speaks, raised
//! hands) and an expanded panel (room, audio, hotkeys). Views read the [`Overlay`] and call its
//! methods; they hold only what is about drawing ([`ViewState`]).

use std::time::{Duration, Instant};

use eframe::egui::{
    self, Align, Color32, ComboBox, CornerRadius, Frame, Layout, Margin, RichText, Sense, Slider,
    Stroke, Ui, Vec2, ViewportCommand,
};

use super::model::{Level, Overlay, Phase};
use crate::engine::Feed as Input;
use crate::room::Role;

/// The compact strip's size.
pub const COMPACT_SIZE: Vec2 = Vec2::new(540.0, 46.0);
/// The expanded panel's usual size.
pub const EXPANDED_SIZE: Vec2 = Vec2::new(440.0, 600.0);

const LIVE_RED: Color32 = Color32::from_rgb(0xe5, 0x39, 0x35);
const SPEAK_GREEN: Color32 = Color32::from_rgb(0x43, 0xd1, 0x7a);
const HAND_AMBER: Color32 = Color32::from_rgb(0xff, 0xb3, 0x00);
const MUTED_GREY: Color32 = Color32::from_rgb(0x8a, 0x8f, 0x98);
const PANEL: Color32 = Color32::from_rgb(0x16, 0x18, 0x1d);
const CARD: Color32 = Color32::from_rgb(0x22, 0x25, 0x2c);

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
fn status_row(ui: &mut Ui, o: &mut Overlay, v: &mut ViewState, now: Instant) {
    // Under the row's widgets (made first), so their clicks stay theirs.
    let row = egui::Rect::from_min_size(ui.max_rect().min, Vec2::new(ui.max_rect().width(), 30.0));
    let drag = ui.interact(row, ui.scope_id().with("drag"), Sense::click_and_drag());
    if drag.drag_started() {
        ui.ctx().send_viewport_cmd(ViewportCommand::StartDrag);
    }
    ui.horizontal(|ui| {
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
        if o.live_room().is_some() {
            ui.separator();
            let listeners = o.room.listener_count.max(o.room.listening);
            ui.label(format!("{listeners} listening")).on_hover_text(
                "people in the room's audience (players listening without the page count too)",
            );
            if o.room.recording {
                ui.label(RichText::new("REC").color(LIVE_RED).small());
            }
        }
        ui.separator();
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
        if !o.settings.expanded {
            speaking_and_ducking(ui, o);
        }
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
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
            if !o.room.hands.is_empty() {
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
        });
    });
    if o.settings.expanded {
        ui.horizontal(|ui| {
            ui.add_space(16.0);
            speaking_and_ducking(ui, o);
        });
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
        .and_then(|m| super::model::duck_readout(m.duck_reduction_db))
    {
        ui.label(
            RichText::new(format!("game -{db} dB"))
                .color(HAND_AMBER)
                .small(),
        )
        .on_hover_text("how far the game is ducked under the voices now");
    }
}

fn compact(ui: &mut Ui, o: &mut Overlay, v: &mut ViewState, now: Instant) {
    status_row(ui, o, v, now);
}

fn expanded(ui: &mut Ui, o: &mut Overlay, v: &mut ViewState, now: Instant) {
    status_row(ui, o, v, now);
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
            Tab::Room => room_tab(ui, o, v, now),
            Tab::Audio => audio_tab(ui, o),
            Tab::Setup => setup_tab(ui, o),
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

fn card<R>(ui: &mut Ui, accent: Color32, add: impl FnOnce(&mut Ui) -> R) -> R {
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

fn heading(ui: &mut Ui, text: &str) {
    ui.add_space(6.0);
    ui.label(RichText::new(text).strong().size(15.0));
}

fn link_row(ui: &mut Ui, v: &mut ViewState, label: &str, link: &str, now: Instant) {
    ui.horizontal(|ui| {
        ui.label(RichText::new(label).color(MUTED_GREY));
        let copied = v.copied.as_ref().is_some_and(|(l, at)| {
            l == link && now.saturating_duration_since(*at) < Duration::from_secs(2)
        });
        let text = if copied { "Copied" } else { "Copy" };
        if ui
            .button(text)
            .on_hover_text(format!("copy {label}"))
            .clicked()
        {
            ui.ctx().copy_text(link.to_owned());
            v.copied = Some((link.to_owned(), now));
            ui.ctx().request_repaint_after(Duration::from_secs(2));
        }
    });
    ui.add(
        egui::Label::new(RichText::new(link).monospace().size(12.0))
            .wrap()
            .selectable(true),
    );
}

fn room_tab(ui: &mut Ui, o: &mut Overlay, v: &mut ViewState, now: Instant) {
    let Some(room) = o.live_room().cloned() else {
        go_live_form(ui, o);
        return;
    };
    heading(
        ui,
        &if o.room.game.is_empty() {
            o.room.title.clone()
        } else {
            format!("{} - {}", o.room.title, o.room.game)
        },
    );
    link_row(ui, v, "Listener link", &room.listener_link, now);
    ui.horizontal(|ui| {
        ui.toggle_value(&mut v.show_qr, "QR code");
        if ui.button("Invite co-host").clicked() {
            o.invite(Role::CoHost);
        }
        if ui.button("Invite speaker").clicked() {
            o.invite(Role::Speaker);
        }
    });
    if v.show_qr {
        qr(ui, v, &room.listener_link);
    }
    for (role, link) in o.invites.clone() {
        let label = if role == Role::CoHost {
            "Co-host invitation"
        } else {
            "Speaker invitation"
        };
        link_row(ui, v, label, &link, now);
    }

    heading(
        ui,
        &format!(
            "Stage ({}/10 speakers)",
            o.room.stage.len().saturating_sub(1)
        ),
    );
    let me = o.room.me;
    for m in o.room.stage.clone() {
        card(ui, CARD, |ui| {
            ui.horizontal(|ui| {
                let speaking = o.room.is_speaking(m.id) && !m.muted;
                let (rect, _) = ui.allocate_exact_size(Vec2::splat(12.0), Sense::hover());
                let dot = if m.muted {
                    MUTED_GREY
                } else if speaking {
                    SPEAK_GREEN
                } else {
                    Color32::from_gray(70)
                };
                ui.painter().circle_filled(rect.center(), 5.0, dot);
                let name = if Some(m.id) == me {
                    format!("{} (you)", if m.name.is_empty() { "Host" } else { &m.name })
                } else {
                    m.name.clone()
                };
                ui.label(RichText::new(name).strong());
                ui.label(RichText::new(m.role.label()).small().color(MUTED_GREY));
                if m.muted {
                    ui.label(RichText::new("muted").small().color(LIVE_RED));
                }
                if Some(m.id) != me && m.role != Role::Host {
                    ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                        if ui
                            .small_button("Remove")
                            .on_hover_text(format!("remove {} from the room", m.name))
                            .clicked()
                        {
                            o.remove(m.id);
                        }
                        if ui.small_button("To audience").clicked() {
                            o.move_to_audience(m.id);
                        }
                        let co = if m.role == Role::CoHost {
                            "Un-co-host"
                        } else {
                            "Co-host"
                        };
                        if ui.small_button(co).clicked() {
                            o.toggle_co_host(m.id);
                        }
                        if !m.muted
                            && ui
                                .small_button("Mute")
                                .on_hover_text(format!("mute {}", m.name))
                                .clicked()
                        {
                            o.mute_member(m.id);
                        }
                    });
                }
            });
        });
    }

    heading(ui, &format!("Raised hands ({})", o.room.hands.len()));
    if o.room.hands.is_empty() {
        ui.label(RichText::new("Nobody has asked to speak.").color(MUTED_GREY));
    }
    for h in o.room.hands.clone() {
        card(ui, HAND_AMBER, |ui| {
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new(if h.name.is_empty() {
                        format!("#{}", h.id)
                    } else {
                        h.name.clone()
                    })
                    .strong(),
                );
                ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                    if ui.button("Deny").clicked() {
                        o.deny(h.id);
                    }
                    if ui
                        .add(
                            egui::Button::new(RichText::new("Approve").color(Color32::BLACK))
                                .fill(SPEAK_GREEN),
                        )
                        .clicked()
                    {
                        o.approve(h.id);
                    }
                });
            });
        });
    }

    if !o.room.reactions.is_empty() {
        heading(ui, "Reactions");
        ui.horizontal_wrapped(|ui| {
            for r in &o.room.reactions {
                ui.label(RichText::new(&r.emoji).size(22.0))
                    .on_hover_text(&r.from);
            }
        });
    }

    ui.add_space(8.0);
    ui.horizontal(|ui| {
        let rec = if o.room.recording {
            "Stop recording"
        } else {
            "Record"
        };
        if ui.button(rec).clicked() {
            o.toggle_recording();
        }
        if ui
            .button("Mark moment")
            .on_hover_text("a chapter mark in the episode (hotkey too)")
            .clicked()
        {
            o.mark_moment();
        }
        if o.room.moments > 0 {
            ui.label(RichText::new(format!("{} marked", o.room.moments)).color(MUTED_GREY));
        }
    });
    ui.add_space(8.0);
    if v.confirm_end {
        card(ui, LIVE_RED, |ui| {
            ui.label("End the room for everyone? Listeners are told it has ended.");
            ui.horizontal(|ui| {
                if ui
                    .add(
                        egui::Button::new(RichText::new("End it").color(Color32::WHITE))
                            .fill(LIVE_RED),
                    )
                    .clicked()
                {
                    v.confirm_end = false;
                    o.end_room();
                }
                if ui.button("Keep going").clicked() {
                    v.confirm_end = false;
                }
            });
        });
    } else if ui
        .button(RichText::new("End room").color(LIVE_RED))
        .clicked()
    {
        v.confirm_end = true;
    }
}

fn go_live_form(ui: &mut Ui, o: &mut Overlay) {
    heading(ui, "Your room");
    let mut changed = false;
    egui::Grid::new("go-live").num_columns(2).spacing([8.0, 6.0]).show(ui, |ui| {
        ui.label("Your name");
        changed |= ui.add(egui::TextEdit::singleline(&mut o.settings.name).hint_text("Host")).changed();
        ui.end_row();
        ui.label("Title");
        changed |= ui.add(egui::TextEdit::singleline(&mut o.settings.title).hint_text("Live review")).changed();
        ui.end_row();
        ui.label("Game");
        changed |= ui.add(egui::TextEdit::singleline(&mut o.settings.game).hint_text("what you play")).changed();
        ui.end_row();
        ui.label("Server");
        changed |= ui
            .add(egui::TextEdit::singleline(&mut o.settings.server).hint_text("this computer"))
            .on_hover_text("empty: the room runs on this computer; or a Booth server's address, like https://rooms.example.org")
            .changed();
        ui.end_row();
    });
    if changed {
        o.changed();
    }
    ui.add_space(6.0);
    let ready = matches!(o.phase, Phase::Ready);
    let label = if matches!(o.phase, Phase::GoingLive) {
        "Going live..."
    } else {
        "Go live"
    };
    if ui
        .add_enabled(
            ready,
            egui::Button::new(RichText::new(label).strong().color(Color32::WHITE))
                .fill(LIVE_RED)
                .min_size(Vec2::new(120.0, 30.0)),
        )
        .clicked()
    {
        o.go_live();
    }
    ui.label(
        RichText::new("Listeners open the link Booth shows here, on any device with a browser.")
            .small()
            .color(MUTED_GREY),
    );
}

fn qr(ui: &mut Ui, v: &mut ViewState, link: &str) {
    if v.qr.as_ref().is_none_or(|(l, _, _)| l != link) {
        v.qr = qrcode::QrCode::new(link.as_bytes()).ok().map(|code| {
            let width = code.width();
            let dark = code
                .to_colors()
                .into_iter()
                .map(|c| c == qrcode::Color::Dark)
                .collect();
            (link.to_owned(), dark, width)
        });
    }
    let Some((_, dark, width)) = &v.qr else {
        ui.label("The link is too long for a QR code.");
        return;
    };
    let quiet = 2;
    let cells = width + 2 * quiet;
    let side = 180.0;
    let cell = side / cells as f32;
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(side), Sense::hover());
    response.on_hover_text("scan with a phone to listen");
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, CornerRadius::same(4), Color32::WHITE);
    for (i, &d) in dark.iter().enumerate() {
        if d {
            let (x, y) = (i % width + quiet, i / width + quiet);
            let min = rect.min + Vec2::new(x as f32 * cell, y as f32 * cell);
            painter.rect_filled(
                egui::Rect::from_min_size(min, Vec2::splat(cell.ceil())),
                CornerRadius::ZERO,
                Color32::BLACK,
            );
        }
    }
}

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

fn audio_tab(ui: &mut Ui, o: &mut Overlay) {
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

fn setup_tab(ui: &mut Ui, o: &mut Overlay) {
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
        o.hotkey(super::model::HotkeyAction::ToggleClickThrough);
    }
    if ui
        .add(Slider::new(&mut o.settings.opacity, 0.3..=1.0).text("Opacity"))
        .changed()
    {
        o.changed();
    }
    ui.label(RichText::new("Games in exclusive fullscreen draw over every window: set the game to borderless windowed to see Booth over it.").small().color(MUTED_GREY));
}
