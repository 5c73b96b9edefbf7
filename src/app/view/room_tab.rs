//! The Room tab: going live, the links and invitations, the stage, the hand queue, reactions,
//! recording and ending the room. Every decision goes through the model's actions.

use std::time::{Duration, Instant};

use eframe::egui::{self, Align, Color32, CornerRadius, Layout, RichText, Sense, Ui, Vec2};

use super::ViewState;
use super::widgets::{CARD, HAND_AMBER, LIVE_RED, MUTED_GREY, SPEAK_GREEN, card, heading};
use crate::app::model::{Overlay, Phase};
use crate::app::room_view::{Hand, OnStage};
use crate::room::Role;

/// A link with a Copy button (it says "Copied" for two seconds), selectable as text too.
pub(super) fn link_row(ui: &mut Ui, v: &mut ViewState, label: &str, link: &str, now: Instant) {
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

/// Off air, the form to go live; live, everything about the room.
pub(super) fn show(ui: &mut Ui, o: &mut Overlay, v: &mut ViewState, now: Instant) {
    let Some(room) = o.live_room().cloned() else {
        super::episode_panel::show(ui, o, v, now);
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
    links(ui, o, v, &room.listener_link, now);
    for url in &room.icecast {
        link_row(ui, v, "Icecast", url, now);
    }
    stage(ui, o);
    hand_queue(ui, o);
    reactions(ui, o);
    ui.add_space(8.0);
    recording_and_moments(ui, o);
    ui.add_space(8.0);
    super::forwards_panel::show(ui, o);
    ui.add_space(8.0);
    end_room(ui, o, v);
}

/// The listener link (and its QR code), and the invitation links asked for.
fn links(ui: &mut Ui, o: &mut Overlay, v: &mut ViewState, listener_link: &str, now: Instant) {
    link_row(ui, v, "Listener link", listener_link, now);
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
        qr(ui, v, listener_link);
    }
    for (role, link) in o.invites.clone() {
        let label = if role == Role::CoHost {
            "Co-host invitation"
        } else {
            "Speaker invitation"
        };
        link_row(ui, v, label, &link, now);
    }
}

/// Who is on stage, each with the moderator's buttons.
fn stage(ui: &mut Ui, o: &mut Overlay) {
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
                on_stage_row(ui, o, &m, me);
            });
        });
    }
}

/// One person on stage: speaking or muted, name, role; for others, what a moderator can do.
fn on_stage_row(ui: &mut Ui, o: &mut Overlay, m: &OnStage, me: Option<u64>) {
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
            moderation_buttons(ui, o, m);
        });
    }
}

/// Remove, move to the audience, (un)make co-host, mute: laid out right to left.
fn moderation_buttons(ui: &mut Ui, o: &mut Overlay, m: &OnStage) {
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
}

/// The raised hands, each to approve or deny.
fn hand_queue(ui: &mut Ui, o: &mut Overlay) {
    heading(ui, &format!("Raised hands ({})", o.room.hands.len()));
    if o.room.hands.is_empty() {
        ui.label(RichText::new("Nobody has asked to speak.").color(MUTED_GREY));
    }
    for h in o.room.hands.clone() {
        card(ui, HAND_AMBER, |ui| {
            ui.horizontal(|ui| {
                raised_hand_row(ui, o, &h);
            });
        });
    }
}

fn raised_hand_row(ui: &mut Ui, o: &mut Overlay, h: &Hand) {
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
                egui::Button::new(RichText::new("Approve").color(Color32::BLACK)).fill(SPEAK_GREEN),
            )
            .clicked()
        {
            o.approve(h.id);
        }
    });
}

/// The latest reactions, while there are any.
fn reactions(ui: &mut Ui, o: &Overlay) {
    if !o.room.reactions.is_empty() {
        heading(ui, "Reactions");
        ui.horizontal_wrapped(|ui| {
            for r in &o.room.reactions {
                ui.label(RichText::new(&r.emoji).size(22.0))
                    .on_hover_text(&r.from);
            }
        });
    }
}

/// Recording on or off, and marking moments (chapters of the episode).
fn recording_and_moments(ui: &mut Ui, o: &mut Overlay) {
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
    if let Some(episode) = o.room.episode.as_ref().filter(|_| o.room.recording) {
        ui.label(RichText::new(format!("Recording episode {}", episode.id)).color(LIVE_RED))
            .on_hover_text("when the room ends it is rendered and published in the feed");
    }
}

/// Ending the room takes a second click: it ends it for everyone.
fn end_room(ui: &mut Ui, o: &mut Overlay, v: &mut ViewState) {
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

/// What the server field means, on hover.
const SERVER_HINT: &str = "empty: the room runs on this computer; or a Booth server's address, like https://rooms.example.org";

/// What recording as an episode means, on hover.
const RECORD_HINT: &str = "record the room from its start: when it ends it becomes a podcast episode, in the feed, with a page of its own";

/// What the Icecast field means, on hover.
const ICECAST_HINT: &str = "empty: no Icecast; or an Icecast server's source address, like http://source:PASSWORD@radio.example:8000/ : the room goes there as .mp3 and .ogg mounts for radio players and Icecast relays";

/// The room's details (saved with the settings) and the Go live button.
fn go_live_form(ui: &mut Ui, o: &mut Overlay) {
    heading(ui, "Your room");
    let mut changed = false;
    egui::Grid::new("go-live")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            let s = &mut o.settings;
            ui.label("Your name");
            changed |= ui
                .add(egui::TextEdit::singleline(&mut s.name).hint_text("Host"))
                .changed();
            ui.end_row();
            ui.label("Title");
            changed |= ui
                .add(egui::TextEdit::singleline(&mut s.title).hint_text("Live review"))
                .changed();
            ui.end_row();
            ui.label("Game");
            changed |= ui
                .add(egui::TextEdit::singleline(&mut s.game).hint_text("what you play"))
                .changed();
            ui.end_row();
            ui.label("Podcast");
            changed |= ui
                .checkbox(&mut s.record_episode, "Record as episode")
                .on_hover_text(RECORD_HINT)
                .changed();
            ui.end_row();
            ui.label("Server");
            changed |= ui
                .add(egui::TextEdit::singleline(&mut s.server).hint_text("this computer"))
                .on_hover_text(SERVER_HINT)
                .changed();
            ui.end_row();
            ui.label("Icecast URL");
            changed |= ui
                .add(
                    egui::TextEdit::singleline(&mut s.icecast)
                        .hint_text("none")
                        .password(true),
                )
                .on_hover_text(ICECAST_HINT)
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

/// The link as a QR code for a phone, made once per link.
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
