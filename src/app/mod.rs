//! The overlay: a small always-on-top window that runs the whole room from inside a game.
//!
//! - [`settings`]: what the overlay remembers (a TOML file in the platform's config directory).
//! - [`room_view`]: the room as last heard from its channel (pure).
//! - [`episode`]: the episode a room became, after it ends: its state and the thread that asks
//!   the server about it and sends the host's changes.
//! - [`forwards`]: while live, the room's WHIP forwards and the thread that manages them.
//! - [`worker`]: the thread that owns the engine, the devices and the room connection.
//! - [`model`]: the overlay's state and every user action, with no egui types.
//! - [`view`]: the compact strip and the expanded panel, drawn with egui.
//! - this module: the eframe window (borderless, on top, translucent, remembering its place)
//!   and the global hotkeys.
//!
//! This module is glue: it never keeps room or audio state of its own (the model does) and
//! never waits on a device or the network inside a frame (the worker does that).

pub mod episode;
pub mod forwards;
pub mod model;
pub mod room_view;
pub mod settings;
pub mod view;
pub mod worker;

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use eframe::egui::{self, ViewportCommand};
use global_hotkey::hotkey::HotKey;
use global_hotkey::{GlobalHotKeyEvent, GlobalHotKeyManager, HotKeyState};

pub use model::{HotkeyAction, Launch, Overlay, Phase};
pub use view::{ViewState, Window};

/// Why the overlay could not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// No display to open a window on.
    #[error(
        "there is no display to open the overlay on (DISPLAY and WAYLAND_DISPLAY are unset): run `booth host --headless` to go live without a window"
    )]
    NoDisplay,
    /// The window system refused.
    #[error("cannot open the overlay window: {0}")]
    Window(String),
}

/// Whether a window can be opened here (Linux: an X11 or Wayland display is set).
#[must_use]
pub fn display_available() -> bool {
    if cfg!(any(target_os = "windows", target_os = "macos")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Global hotkeys: registered with the window system, so they work while the game has focus.
struct Hotkeys {
    manager: Option<GlobalHotKeyManager>,
    registered: Vec<HotKey>,
    bindings: Vec<(u32, &'static str)>,
    events: mpsc::Receiver<GlobalHotKeyEvent>,
}

impl Hotkeys {
    fn new(ctx: &egui::Context) -> (Self, Option<String>) {
        let (tx, events) = mpsc::channel();
        let ctx = ctx.clone();
        GlobalHotKeyEvent::set_event_handler(Some(move |e: GlobalHotKeyEvent| {
            let _ = tx.send(e);
            ctx.request_repaint();
        }));
        let (manager, problem) = match GlobalHotKeyManager::new() {
            Ok(m) => (Some(m), None),
            Err(e) => (
                None,
                Some(format!(
                    "global hotkeys are not available here ({e}); use the buttons"
                )),
            ),
        };
        (
            Self {
                manager,
                registered: Vec::new(),
                bindings: Vec::new(),
                events,
            },
            problem,
        )
    }

    /// Registers the configured keys; returns a message per key that could not be.
    fn register(&mut self, keys: &settings::Hotkeys) -> Vec<String> {
        let Some(manager) = &self.manager else {
            return Vec::new();
        };
        let _ = manager.unregister_all(&self.registered);
        self.registered.clear();
        self.bindings.clear();
        let mut problems = Vec::new();
        for (what, text) in [
            ("mute", &keys.mute),
            ("push_to_talk", &keys.push_to_talk),
            ("mark_moment", &keys.mark_moment),
            ("click_through", &keys.click_through),
        ] {
            if text.trim().is_empty() {
                continue;
            }
            match text.trim().parse::<HotKey>() {
                Ok(key) => match manager.register(key) {
                    Ok(()) => {
                        self.registered.push(key);
                        self.bindings.push((key.id(), what));
                    }
                    Err(e) => problems.push(format!(
                        "the {what} hotkey {text} is taken by another program ({e}): pick another in Setup"
                    )),
                },
                Err(e) => problems.push(format!(
                    "the {what} hotkey '{text}' is not a key combination ({e}): write it like Ctrl+Shift+KeyM"
                )),
            }
        }
        problems
    }

    fn actions(&self) -> Vec<HotkeyAction> {
        let mut out = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            let Some((_, what)) = self.bindings.iter().find(|(id, _)| *id == e.id()) else {
                continue;
            };
            let pressed = e.state() == HotKeyState::Pressed;
            out.push(match (*what, pressed) {
                ("push_to_talk", held) => HotkeyAction::PushToTalk(held),
                (_, false) => continue,
                ("mute", true) => HotkeyAction::ToggleMute,
                ("mark_moment", true) => HotkeyAction::MarkMoment,
                _ => HotkeyAction::ToggleClickThrough,
            });
        }
        out
    }
}

struct OverlayApp {
    window: Window,
    hotkeys: Hotkeys,
    click_through: bool,
    last_rect: Option<egui::Rect>,
    announced: Option<String>,
    frames: u64,
    frames_since: Instant,
}

impl eframe::App for OverlayApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.frames += 1;
        if self.frames_since.elapsed() >= std::time::Duration::from_secs(10) {
            tracing::debug!(
                "the overlay drew {} frames in {:.1} s",
                self.frames,
                self.frames_since.elapsed().as_secs_f32()
            );
            self.frames = 0;
            self.frames_since = Instant::now();
        }
        for action in self.hotkeys.actions() {
            self.window.overlay.hotkey(action);
        }
        let o = &mut self.window.overlay;
        // The links, for whoever started Booth from a terminal (and for scripts).
        let link = o.live_room().map(|r| r.listener_link.clone());
        if link != self.announced {
            if let Some(link) = &link {
                println!("listen: {link}");
                let _ = std::io::Write::flush(&mut std::io::stdout());
            }
            self.announced = link;
        }
        if o.hotkeys_changed {
            o.hotkeys_changed = false;
            for p in self.hotkeys.register(&o.settings.hotkeys) {
                o.notices.push(model::Notice {
                    text: p,
                    level: model::Level::Problem,
                    at: Instant::now(),
                });
            }
        }
        if o.click_through != self.click_through {
            self.click_through = o.click_through;
            ctx.send_viewport_cmd(ViewportCommand::MousePassthrough(self.click_through));
        }
        // Remember where the window is and how big (expanded) for the next start.
        if let Some(rect) = ctx.input(|i| i.viewport().outer_rect)
            && self.last_rect != Some(rect)
        {
            self.last_rect = Some(rect);
            o.settings.window_pos = Some([rect.min.x, rect.min.y]);
            if o.settings.expanded
                && let Some(inner) = ctx.input(|i| i.viewport().inner_rect)
                && inner.height() > view::COMPACT_SIZE.y * 2.0
            {
                o.settings.window_size = Some([inner.width(), inner.height()]);
            }
            o.changed();
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.window.ui(ui);
    }

    fn clear_color(&self, _visuals: &egui::Visuals) -> [f32; 4] {
        [0.0, 0.0, 0.0, 0.0]
    }
}

/// Reactions are emoji; egui's own fonts have only some. A monochrome emoji font of the system
/// (Debian's fonts-symbola, Noto Emoji) fills in the rest when there is one.
fn add_emoji_font(ctx: &egui::Context) {
    const CANDIDATES: [&str; 3] = [
        "/usr/share/fonts/truetype/ancient-scripts/Symbola_hint.ttf",
        "/usr/share/fonts/truetype/noto/NotoEmoji-Regular.ttf",
        "C:\\Windows\\Fonts\\seguisym.ttf",
    ];
    let Some(bytes) = CANDIDATES.iter().find_map(|p| std::fs::read(p).ok()) else {
        return;
    };
    let families = [egui::FontFamily::Proportional, egui::FontFamily::Monospace]
        .into_iter()
        .map(|family| egui::epaint::text::InsertFontFamily {
            family,
            priority: egui::epaint::text::FontPriority::Lowest,
        })
        .collect();
    ctx.add_font(egui::epaint::text::FontInsert::new(
        "emoji-fallback",
        egui::FontData::from_owned(bytes),
        families,
    ));
}

/// Opens the overlay and runs until its window is closed.
///
/// # Errors
/// No display, or the window system refused the window.
pub fn run(launch: Launch) -> Result<(), AppError> {
    if !display_available() {
        return Err(AppError::NoDisplay);
    }
    // Where the window was, read before the window opens.
    let remembered = launch
        .settings_path
        .as_deref()
        .and_then(|p| settings::Settings::load(p).ok())
        .unwrap_or_default();
    let size = if remembered.expanded {
        remembered
            .window_size
            .map_or(view::EXPANDED_SIZE, |[w, h]| egui::vec2(w, h))
    } else {
        view::COMPACT_SIZE
    };
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("Booth")
        .with_app_id("booth")
        .with_inner_size(size)
        .with_min_inner_size(egui::vec2(320.0, 40.0))
        .with_always_on_top()
        .with_decorations(false)
        .with_transparent(true)
        .with_resizable(true);
    if let Some([x, y]) = remembered.window_pos {
        viewport = viewport.with_position(egui::pos2(x, y));
    }
    let options = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Glow,
        ..eframe::NativeOptions::default()
    };
    eframe::run_native(
        "booth",
        options,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            ctx.set_visuals(egui::Visuals::dark());
            add_emoji_font(&ctx);
            let wake_ctx = ctx.clone();
            let overlay = Overlay::new(launch, Arc::new(move || wake_ctx.request_repaint()));
            let (mut hotkeys, problem) = Hotkeys::new(&ctx);
            let mut window = Window {
                overlay,
                view: ViewState::default(),
            };
            let o = &mut window.overlay;
            for p in problem
                .into_iter()
                .chain(hotkeys.register(&o.settings.hotkeys))
            {
                o.notices.push(model::Notice {
                    text: p,
                    level: model::Level::Problem,
                    at: Instant::now(),
                });
            }
            let click_through = o.click_through;
            if click_through {
                ctx.send_viewport_cmd(ViewportCommand::MousePassthrough(true));
            }
            Ok(Box::new(OverlayApp {
                window,
                hotkeys,
                click_through,
                last_rect: None,
                announced: None,
                frames: 0,
                frames_since: Instant::now(),
            }))
        }),
    )
    .map_err(|e| AppError::Window(e.to_string()))
}
