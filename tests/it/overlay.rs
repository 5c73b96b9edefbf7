//! The overlay, driven through its views with egui_kittest (widgets found by their labels, then
//! clicked, stepped or typed into), on a real engine (the demo recordings played as devices, or
//! the test sound server's devices) and a real room server in the same process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use booth::app::settings::Settings;
use booth::app::{HotkeyAction, Launch, Overlay, Phase, ViewState, Window};
use booth::server::live::forward::ForwardState;
use eframe::egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use crate::support::{
    BoothProcess, OwnSoundServer, Process, PulseModule, booth, ffmpeg_decode, have_tool, http_get,
    play, run, sound_lock, sound_server, sox_tone, speech, zero_crossing_hz,
};

fn demo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("assets/demo")
        .join(name)
}

/// Settings for a test: the in-process server on a free loopback port.
fn launch(dir: &Path, files: bool) -> Launch {
    let path = dir.join("settings.toml");
    if !path.exists() {
        let settings = Settings {
            bind: "127.0.0.1:0".into(),
            title: "Overlay test".into(),
            game: "Test game".into(),
            ..Settings::default()
        };
        settings.save(&path).unwrap();
    }
    Launch {
        settings_path: Some(path),
        files: files.then(|| (demo("game.ogg"), demo("voice.ogg"))),
        server: None,
        data_dir: dir.join("data"),
        udp_ports: (50_000, 50_100),
        go_live: false,
    }
}

fn harness(launch: Launch) -> Harness<'static, Window> {
    let overlay = Overlay::new(launch, Arc::new(|| {}));
    let window = Window {
        overlay,
        view: ViewState::default(),
    };
    Harness::builder()
        // Tall enough that nothing is scrolled out of reach.
        .with_size(eframe::egui::vec2(440.0, 1200.0))
        .build_ui_state(|ui, w: &mut Window| w.ui(ui), window)
}

/// Steps the window until `done` holds (the engine and the room work on other threads).
fn wait_for(h: &mut Harness<'_, Window>, what: &str, done: impl Fn(&Window) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        h.step();
        if done(h.state()) {
            h.step();
            return;
        }
        let o = &h.state().overlay;
        assert!(
            Instant::now() < deadline,
            "waited 25 s for {what}; phase {:?}, notices {:?}",
            o.phase,
            o.notices
        );
        std::thread::sleep(Duration::from_millis(30));
    }
}

/// Clicks the button with this label.
fn click(h: &Harness<'_, Window>, label: &str) {
    h.get_by_role_and_label(Role::Button, label).click();
}

fn ready(h: &mut Harness<'_, Window>) {
    wait_for(h, "the engine", |w| matches!(w.overlay.phase, Phase::Ready));
}

fn go_live(h: &mut Harness<'_, Window>) -> booth::live::LiveRoom {
    ready(h);
    click(h, "Go live");
    wait_for(h, "going live", |w| {
        w.overlay.live_room().is_some() && w.overlay.room.me.is_some()
    });
    h.state().overlay.live_room().cloned().unwrap()
}

fn get_json(url: &str) -> serde_json::Value {
    serde_json::from_str(&http_get(url)).unwrap()
}

#[test]
fn going_live_shows_the_listener_link_and_its_qr_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(launch(dir.path(), true));
    let room = go_live(&mut h);
    assert!(room.embedded);
    assert!(room.listener_link.contains("/r/"), "{}", room.listener_link);
    // The link is on screen, with Copy, and the room behind it is live.
    h.get_by_label(&room.listener_link);
    click(&h, "Copy");
    h.run_steps(2);
    h.get_by_label("Copied");
    click(&h, "QR code");
    h.run_steps(2);
    let info = get_json(&format!("{}/api/rooms/{}", room.server, room.room));
    assert_eq!(info["title"], "Overlay test");
    assert_eq!(info["live"], true, "{info}");
    // Invitation links for a co-host and a speaker, from the server.
    click(&h, "Invite co-host");
    click(&h, "Invite speaker");
    wait_for(&mut h, "two invitation links", |w| {
        w.overlay.invites.len() == 2
    });
    for (role, link) in &h.state().overlay.invites {
        assert!(
            link.starts_with(&room.server) && link.contains(&room.room),
            "{role}: {link}"
        );
    }
    h.get_by_label("Co-host invitation");
    h.get_by_label("Speaker invitation");
    // The compact strip says LIVE.
    click(&h, "Compact");
    h.run_steps(2);
    h.get_by_label("LIVE");
    assert!(!h.state().overlay.settings.expanded);
    // Ending the room asks first, then ends it for everyone.
    click(&h, "Expand");
    h.run_steps(2);
    // The window asked to be resized to the expanded size; the harness did so. Back to tall.
    h.set_size(eframe::egui::vec2(440.0, 1200.0));
    h.run_steps(2);
    click(&h, "End room");
    h.run_steps(2);
    click(&h, "Keep going");
    h.run_steps(2);
    assert!(h.state().overlay.live_room().is_some());
    click(&h, "End room");
    h.run_steps(2);
    click(&h, "End it");
    wait_for(&mut h, "the room ended", |w| {
        matches!(w.overlay.phase, Phase::Ready)
    });
    h.get_by_label_contains("off air: you ended the room");
}

#[test]
fn the_host_forwards_the_room_to_a_whip_endpoint_and_removes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(launch(dir.path(), true));
    let room = go_live(&mut h);
    h.get_by_label("Forward to WHIP");
    // Nobody answers there: the forward is listed, retrying, with the reason.
    let field = h.get(
        egui_kittest::kittest::By::new()
            .role(Role::TextInput)
            .label("URL"),
    );
    field.focus();
    field.type_text("http://127.0.0.1:9/whip");
    h.run_steps(2);
    click(&h, "Add");
    wait_for(&mut h, "the forward retrying", |w| {
        w.overlay
            .forwards
            .as_ref()
            .is_some_and(|p| p.forwards.len() == 1 && p.forwards[0].state == ForwardState::Retrying)
    });
    h.get_by_label("retrying");
    h.get_by_label("http://127.0.0.1:9/whip");
    let forwards = format!("{}/api/rooms/{}/forwards", room.server, room.room);
    let listed = runtime().block_on(async {
        reqwest::Client::new()
            .get(&forwards)
            .bearer_auth(&room.token)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap()
    });
    assert_eq!(listed[0]["url"], "http://127.0.0.1:9/whip", "{listed}");
    click(&h, "Remove");
    wait_for(&mut h, "the forward removed", |w| {
        w.overlay
            .forwards
            .as_ref()
            .is_some_and(|p| p.forwards.is_empty() && !p.asked)
    });
}

#[test]
fn approving_a_raised_hand_puts_that_listener_on_stage() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(launch(dir.path(), true));
    let room = go_live(&mut h);
    let rt = runtime();
    // A listener in the room: says hello, raises a hand, and reports what the room tells it.
    let seen_rx = audience_member(&rt, &room.listener_link, "Ada", None);
    wait_for(&mut h, "Ada's raised hand", |w| {
        w.overlay.room.hands.iter().any(|x| x.name == "Ada")
    });
    click(&h, "1 hand");
    h.run_steps(2);
    h.get_by_label("Ada");
    click(&h, "Approve");
    wait_for(&mut h, "Ada on stage", |w| {
        w.overlay
            .room
            .stage
            .iter()
            .any(|m| m.name == "Ada" && m.role == booth::room::Role::Speaker)
    });
    assert!(h.state().overlay.room.hands.is_empty());
    let info = get_json(&format!("{}/api/rooms/{}", room.server, room.room));
    let on_stage: Vec<&str> = info["stage"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(on_stage.contains(&"Ada"), "{info}");
    // Ada herself was told.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut promoted = false;
    while !promoted && Instant::now() < deadline {
        if let Ok(v) = seen_rx.recv_timeout(Duration::from_millis(200)) {
            promoted = v["type"] == "role_changed" && v["role"] == "speaker";
        }
    }
    assert!(promoted, "Ada never heard she is a speaker");
    // The moderation buttons are there for her.
    // Her Mute beside the host's own.
    assert_eq!(h.get_all_by_role_and_label(Role::Button, "Mute").count(), 2);
    click(&h, "To audience");
    wait_for(&mut h, "Ada back in the audience", |w| {
        !w.overlay.room.stage.iter().any(|m| m.name == "Ada")
    });
}

#[test]
fn mute_by_button_and_by_the_hotkey_reaches_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(launch(dir.path(), true));
    ready(&mut h);
    click(&h, "Mute");
    wait_for(&mut h, "the engine muting the mic", |w| {
        w.overlay.applied.is_some_and(|s| s.voice_muted)
    });
    assert!(h.state().overlay.muted);
    h.get_by_label("Unmute");
    // The mute hotkey does what the button does.
    h.state_mut().overlay.hotkey(HotkeyAction::ToggleMute);
    wait_for(&mut h, "the engine unmuting the mic", |w| {
        w.overlay.applied.is_some_and(|s| !s.voice_muted)
    });
    h.get_by_label("Mute");
    // Push-to-talk: the key held opens the mic, released closes it.
    h.state_mut().overlay.set_push_to_talk(true);
    h.step();
    assert!(!h.state().overlay.mic_open());
    h.get_by_label("PTT");
    h.state_mut().overlay.hotkey(HotkeyAction::PushToTalk(true));
    h.step();
    assert!(h.state().overlay.mic_open());
    h.state_mut()
        .overlay
        .hotkey(HotkeyAction::PushToTalk(false));
    h.step();
    assert!(!h.state().overlay.mic_open());
}

#[test]
fn the_ducking_slider_changes_the_engine_and_the_setting_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(launch(dir.path(), true));
    ready(&mut h);
    click(&h, "Audio");
    h.run_steps(2);
    let before = h.state().overlay.settings.duck_depth_db;
    for _ in 0..4 {
        h.get_by_role_and_label(Role::Slider, "Duck depth")
            .increment_accesskit();
        h.run_steps(2);
    }
    let after = h.state().overlay.settings.duck_depth_db;
    assert!(
        after > before,
        "the slider did not move: {before} -> {after}"
    );
    wait_for(&mut h, "the engine taking the new depth", |w| {
        w.overlay
            .applied
            .is_some_and(|s| (s.duck.depth_db - after).abs() < 1e-3)
    });
    // The readout is on screen while the demo voice talks.
    wait_for(&mut h, "the game ducked under the demo voice", |w| {
        w.overlay
            .meters()
            .is_some_and(|m| m.duck_reduction_db > 3.0)
    });
    h.get_by_label_contains("Game ducked by");
    // A title typed in the Room tab, and the depth, are there after a restart.
    click(&h, "Room");
    h.run_steps(2);
    let field = h.get(
        egui_kittest::kittest::By::new()
            .role(Role::TextInput)
            .value("Overlay test"),
    );
    field.focus();
    field.type_text(" - raid night");
    h.run_steps(3);
    assert_eq!(
        h.state().overlay.settings.title,
        "Overlay test - raid night"
    );
    drop(h);
    let saved = Settings::load(&dir.path().join("settings.toml")).unwrap();
    assert!((saved.duck_depth_db - after).abs() < 1e-3);
    let mut h = harness(launch(dir.path(), true));
    ready(&mut h);
    assert_eq!(
        h.state().overlay.settings.title,
        "Overlay test - raid night"
    );
    assert!(
        h.query_all_by_value("Overlay test - raid night")
            .next()
            .is_some()
    );
    assert!((h.state().overlay.settings.duck_depth_db - after).abs() < 1e-3);
    wait_for(&mut h, "the engine started with the saved depth", |w| {
        w.overlay.meters().is_some()
    });
}

#[test]
fn a_lost_microphone_is_a_message_in_the_window_and_comes_back() {
    if !sound_server() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let sink = format!("booth_overlay_mic_{}", std::process::id());
    let mut module = PulseModule::null_sink(&sink, 48_000);
    let path = dir.path().join("settings.toml");
    Settings {
        bind: "127.0.0.1:0".into(),
        game_device: "game.monitor".into(),
        mic_device: format!("{sink}.monitor"),
        ..Settings::default()
    }
    .save(&path)
    .unwrap();
    let mut h = harness(launch(dir.path(), false));
    ready(&mut h);
    module.unload();
    wait_for(&mut h, "the lost microphone reported", |w| {
        w.overlay.mic_input.lost.is_some()
    });
    h.get_by_label_contains("The microphone is gone");
    click(&h, "Audio");
    h.run_steps(2);
    h.get_by_label_contains("Mic: lost");
    // The program goes on without it.
    let frames = h.state().overlay.meters().unwrap().frames;
    std::thread::sleep(Duration::from_millis(300));
    assert!(h.state().overlay.meters().unwrap().frames > frames);
    let _back = PulseModule::null_sink(&sink, 48_000);
    wait_for(&mut h, "the microphone back", |w| {
        w.overlay.mic_input.lost.is_none()
    });
    h.get_by_label_contains("The microphone is back");
}

/// The game audio follows the default output in the window as on the command line: a host on
/// the default (the settings name no game device) moves to the new default's monitor when the
/// user switches outputs, and the window says so. On a sound server of its own, since the
/// default is the whole server's.
#[test]
fn the_window_says_the_game_audio_follows_a_new_default_output() {
    if !sound_server() || !have_tool("pactl") || !have_tool("pulseaudio") {
        return;
    }
    // The window reads its sound server from the environment of this process.
    if std::env::var_os("NEXTEST_RUN_ID").is_none() {
        eprintln!("skipping: needs a process of its own (cargo nextest run)");
        return;
    }
    let server = OwnSoundServer::start();
    server.serve_this_process();
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(launch(dir.path(), false));
    ready(&mut h);
    // Whether the game audio plays from a device named like `name`.
    let game_on = |name: &'static str| {
        move |w: &Window| {
            let device = w.overlay.game_input.device.as_deref();
            device.is_some_and(|d| d.contains(name))
        }
    };
    wait_for(
        &mut h,
        "the game on the default output's monitor",
        game_on("Monitor of Game"),
    );
    run(server.client(std::process::Command::new("pactl").args(["set-default-sink", "phones"])));
    wait_for(
        &mut h,
        "the game following the new default",
        game_on("Monitor of Phones"),
    );
    h.get_by_label_contains("The game audio follows the new default: Monitor of Phones");
    click(&h, "Audio");
    h.run_steps(2);
    h.get_by_label_contains("Monitor of Phones");
}

/// Whether an X display is there for the real window (tests/run starts Xvfb). Skips without
/// one, unless `BOOTH_REQUIRE_DISPLAY=1` (as tests/run sets), where it fails.
fn display() -> bool {
    if std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty()) {
        return true;
    }
    assert!(
        std::env::var("BOOTH_REQUIRE_DISPLAY").map_or(true, |v| v != "1"),
        "BOOTH_REQUIRE_DISPLAY=1 but DISPLAY is unset"
    );
    eprintln!("skipping: no X display (DISPLAY unset)");
    false
}

/// The real `booth` window, as a user starts it.
struct RealWindow {
    _booth: BoothProcess,
    link: String,
}

impl RealWindow {
    fn start(dir: &Path, settings: &Settings) -> Self {
        let path = dir.join("settings.toml");
        settings.save(&path).unwrap();
        let booth = BoothProcess::start(
            std::process::Command::new(booth())
                .arg("--settings")
                .arg(&path)
                .arg("--data")
                .arg(dir.join("data"))
                .arg("--go-live")
                .env("LIBGL_ALWAYS_SOFTWARE", "1"),
        );
        // Going live is what the window prints its listener link for.
        let link = booth.line("listen: ", Duration::from_secs(60));
        Self {
            _booth: booth,
            link,
        }
    }

    /// Whether the room shows its host (first on stage) muted.
    fn host_muted(&self) -> bool {
        let info_url = self.link.replace("/r/", "/api/rooms/");
        get_json(&info_url)["stage"]
            .as_array()
            .and_then(|s| s.first())
            .and_then(|m| m["muted"].as_bool())
            .unwrap_or(false)
    }

    /// The window's place on the screen, from xwininfo.
    fn geometry(&self) -> (i32, i32, u32, u32) {
        let out = run(std::process::Command::new("xwininfo").args(["-name", "Booth"]));
        let text = String::from_utf8_lossy(&out.stdout);
        let field = |name: &str| -> i64 {
            text.lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in xwininfo:\n{text}"))
        };
        (
            field("Absolute upper-left X:") as i32,
            field("Absolute upper-left Y:") as i32,
            field("Width:") as u32,
            field("Height:") as u32,
        )
    }

    /// A screenshot of the window, with a margin of the desktop around it.
    fn screenshot(&self, name: &str) -> PathBuf {
        let (x, y, w, h) = self.geometry();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = dir.join(name);
        let display = std::env::var("DISPLAY").unwrap();
        run(std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "x11grab", "-video_size"])
            .arg(format!("{}x{}", w + 24, h + 24))
            .arg("-i")
            .arg(format!("{display}+{},{}", (x - 12).max(0), (y - 12).max(0)))
            .args(["-frames:v", "1"])
            .arg(&png));
        png
    }
}

/// A runtime for the room clients the tests run beside the window.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A listener in the room channel of the room at `link`: says hello as `name`, raises a hand,
/// sends a reaction (`emoji`), then reports what the room tells it, for as long as `rt` runs.
fn audience_member(
    rt: &tokio::runtime::Runtime,
    link: &str,
    name: &str,
    emoji: Option<&str>,
) -> std::sync::mpsc::Receiver<serde_json::Value> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let ws = link.replacen("http", "ws", 1).replace("/r/", "/api/rooms/") + "/ws";
    let hello =
        serde_json::json!({"v": 1, "type": "hello", "token": null, "name": name}).to_string();
    let react = emoji.map(|e| serde_json::json!({"v": 1, "type": "react", "emoji": e}).to_string());
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let (mut ws, _) = tokio_tungstenite::connect_async(ws.as_str()).await.unwrap();
        ws.send(Message::Text(hello.into())).await.unwrap();
        ws.send(Message::Text(r#"{"v":1,"type":"raise_hand"}"#.into()))
            .await
            .unwrap();
        if let Some(r) = react {
            ws.send(Message::Text(r.into())).await.unwrap();
        }
        while let Some(Ok(msg)) = ws.next().await {
            if let Message::Text(t) = msg
                && let Ok(v) = serde_json::from_str(&t)
            {
                let _ = seen_tx.send(v);
            }
        }
    });
    seen_rx
}

#[test]
fn the_real_window_goes_live_on_the_sound_servers_devices_and_a_listener_hears_it() {
    if !display() || !sound_server() {
        return;
    }
    let _lock = sound_lock();
    let dir = tempfile::tempdir().unwrap();
    let tone = sox_tone(dir.path(), 440, 0.3, 60);
    let _game = play("game", &tone);
    let settings = Settings {
        bind: "127.0.0.1:0".into(),
        title: "Friday raid review".into(),
        game: "Elden Ring".into(),
        game_device: "game.monitor".into(),
        mic_device: "mic".into(),
        name: "Kai".into(),
        window_pos: Some([24.0, 24.0]),
        ..Settings::default()
    };
    let window = RealWindow::start(dir.path(), &settings);
    let rt = runtime();
    assert_a_listener_hears_the_game(&window, &dir.path().join("heard.ogg"));
    assert!(!window.host_muted());
    audience_member(&rt, &window.link, "Ada", Some("🔥"));
    audience_member(&rt, &window.link, "Bo", Some("👏"));
    assert_the_mute_hotkey_mutes_the_host(&window);
    // The host talks over the game for the pictures: the speaking light, the ducked game.
    speech(
        dir.path(),
        "words",
        "Welcome back to the raid review. Tonight we look at the new boss fight.",
    );
    let words = dir.path().join("words.wav");
    let _voice = pictures_of_the_expanded_window(&window, &words);
    drop(window);

    // The compact strip, after a restart that remembers where the window was.
    let compact = Settings {
        expanded: false,
        ..Settings::load(&dir.path().join("settings.toml")).unwrap()
    };
    let window = RealWindow::start(dir.path(), &compact);
    audience_member(&rt, &window.link, "Cy", None);
    let _voice = play("mic_feed", &words);
    std::thread::sleep(Duration::from_millis(1500));
    let (_, _, w, h) = window.geometry();
    assert!(h < 80 && w > 300, "the compact strip is {w}x{h}");
    window.screenshot("overlay-compact.png");
}

/// `booth listen` records 4 s of the window's room into `out`: the game's 440 Hz tone.
fn assert_a_listener_hears_the_game(window: &RealWindow, out: &Path) {
    let status = std::process::Command::new(booth())
        .args(["listen", &window.link, "--seconds", "4", "--out"])
        .arg(out)
        .status()
        .unwrap();
    assert!(status.success());
    let heard = ffmpeg_decode(out);
    let left: Vec<f32> = heard.iter().step_by(2).copied().skip(48_000).collect();
    let hz = zero_crossing_hz(&left, 48_000.0);
    assert!(
        (hz - 440.0).abs() < 2.0,
        "the listener heard {hz:.1} Hz, not the game's 440 Hz"
    );
}

/// The mute hotkey works while another window has the focus: the room sees the host muted
/// within 5 s. Pressed again after, to unmute.
fn assert_the_mute_hotkey_mutes_the_host(window: &RealWindow) {
    run(std::process::Command::new("xdotool").args(["key", "ctrl+shift+m"]));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !window.host_muted() {
        assert!(
            Instant::now() < deadline,
            "the mute hotkey did not mute the host"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    run(std::process::Command::new("xdotool").args(["key", "ctrl+shift+m"]));
}

/// Screenshots of the expanded window while the host says `words`: the Room tab, then the
/// Audio tab clicked with the mouse (meters, faders, ducking). Returns the words' player,
/// still playing.
fn pictures_of_the_expanded_window(window: &RealWindow, words: &Path) -> Process {
    let voice = play("mic_feed", words);
    std::thread::sleep(Duration::from_millis(1500));
    let png = window.screenshot("overlay-expanded.png");
    assert!(std::fs::metadata(&png).unwrap().len() > 10_000);
    let (x, y, _, _) = window.geometry();
    run(std::process::Command::new("xdotool").args([
        "mousemove",
        &(x + 94).to_string(),
        &(y + 67).to_string(),
        "click",
        "1",
        "mousemove",
        "900",
        "700",
    ]));
    std::thread::sleep(Duration::from_millis(1000));
    window.screenshot("overlay-audio.png");
    voice
}

#[test]
fn an_unreachable_room_server_is_a_message_and_the_audio_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut l = launch(dir.path(), true);
    // Nothing listens on the discard port.
    l.server = Some("http://127.0.0.1:9".into());
    let mut h = harness(l);
    ready(&mut h);
    click(&h, "Go live");
    wait_for(&mut h, "the failure reported", |w| {
        matches!(w.overlay.phase, Phase::Ready) && !w.overlay.notices.is_empty()
    });
    h.get_by_label_contains(
        "could not go live: cannot reach the room server at http://127.0.0.1:9",
    );
    let frames = h.state().overlay.meters().unwrap().frames;
    std::thread::sleep(Duration::from_millis(200));
    assert!(h.state().overlay.meters().unwrap().frames > frames);
    click(&h, "Dismiss");
    h.run_steps(2);
    assert!(h.state().overlay.notices.is_empty());
}

#[test]
fn with_no_display_booth_says_so_and_points_to_the_headless_host() {
    let out = std::process::Command::new(booth())
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no display") && err.contains("booth host --headless"),
        "{err}"
    );
}

#[test]
fn a_busy_port_is_said_and_the_room_runs_on_another() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    Settings {
        bind: format!("127.0.0.1:{port}"),
        ..Settings::default()
    }
    .save(&dir.path().join("settings.toml"))
    .unwrap();
    let mut h = harness(launch(dir.path(), true));
    let room = go_live(&mut h);
    assert!(!room.server.ends_with(&format!(":{port}")));
    h.get_by_label_contains(&format!("Port {port} is in use by another program"));
}

/// An episode as the server's API gives it once rendered (`GET /api/episodes/7`).
fn rendered_episode(status: booth::episodes::Status) -> booth::server::episodes::EpisodeView {
    booth::server::episodes::EpisodeView {
        episode: booth::episodes::Episode {
            id: 7,
            guid: "booth-episode-7".into(),
            room: "r1".into(),
            title: "Boss rush".into(),
            description: String::new(),
            game: Some("Test game".into()),
            started_ms: 0,
            duration_ms: 90_000,
            status,
            cut_short: false,
            files: booth::episodes::Files::default(),
            chapters: Vec::new(),
            people: Vec::new(),
            loudness_lufs: None,
            error: None,
        },
        page: "http://127.0.0.1:9/episodes/7".into(),
        audio: Some("http://127.0.0.1:9/media/episodes/7/episode.mp3".into()),
        alternate: "http://127.0.0.1:9/media/episodes/7/program.opus".into(),
        chapters_url: None,
        feed: "http://127.0.0.1:9/podcast.xml".into(),
    }
}

#[test]
fn record_as_episode_is_a_checkbox_that_is_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let l = launch(dir.path(), true);
    let path = l.settings_path.clone().unwrap();
    let mut h = harness(l);
    h.step();
    assert!(!h.state().overlay.settings.record_episode);
    h.get_by_label("Record as episode").click();
    h.run_steps(2);
    assert!(h.state().overlay.settings.record_episode);
    h.state_mut().overlay.save_now();
    assert!(Settings::load(&path).unwrap().record_episode);
}

/// The Icecast URL typed into the Room tab is remembered, and the room the overlay makes goes
/// to that Icecast (Debian's icecast2) as its MP3 and Ogg mounts.
#[test]
fn an_icecast_url_in_the_settings_takes_the_room_to_icecast() {
    use crate::rooms::icecast::{Icecast, SOURCE_PASSWORD};
    if !have_tool("icecast2") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let icecast = Icecast::start("icecast-origin.xml", dir.path(), "icecast", None);
    let url = format!(
        "http://source:{SOURCE_PASSWORD}@127.0.0.1:{}/",
        icecast.port
    );
    let l = launch(dir.path(), true);
    let path = l.settings_path.clone().unwrap();
    let mut h = harness(l);
    ready(&mut h);
    click(&h, "Room");
    h.run_steps(2);
    // The only password field: what it holds is not shown on screen.
    let field = h.get_by_role(Role::PasswordInput);
    field.focus();
    field.type_text(&url);
    h.run_steps(3);
    assert_eq!(h.state().overlay.settings.icecast, url);
    h.state_mut().overlay.save_now();
    assert_eq!(Settings::load(&path).unwrap().icecast, url);
    let room = go_live(&mut h);
    wait_for(&mut h, "the room's mounts on Icecast", |_| {
        icecast.has_room(&room.room)
    });
    // The host sees where radio players tune in.
    let mp3 = format!("http://127.0.0.1:{}/{}.mp3", icecast.port, room.room);
    assert_eq!(room.icecast.first(), Some(&mp3));
    h.get_by_label(&mp3);
}

/// An Icecast URL that cannot work is said before going live, without its password.
#[test]
fn a_bad_icecast_url_is_a_message_before_going_live() {
    let dir = tempfile::tempdir().unwrap();
    let l = launch(dir.path(), true);
    let path = l.settings_path.clone().unwrap();
    let mut settings = Settings::load(&path).unwrap();
    settings.icecast = "https://source:hunter2@radio.example/".into();
    settings.save(&path).unwrap();
    let mut h = harness(l);
    ready(&mut h);
    click(&h, "Go live");
    h.run_steps(2);
    assert!(matches!(h.state().overlay.phase, Phase::Ready));
    let notices = format!("{:?}", h.state().overlay.notices);
    assert!(notices.contains("not an Icecast source URL"), "{notices}");
    assert!(!notices.contains("hunter2"), "{notices}");
    h.get_by_label_contains("clear the Icecast field");
}

#[test]
fn the_episode_ready_panel_shows_its_links_and_delete_takes_two_clicks() {
    use booth::app::episode::{EpisodeAnswer, EpisodePanel, EpisodeRequest};
    use booth::episodes::Status;
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(launch(dir.path(), true));
    let mut panel = EpisodePanel::unwatched(7);
    let rendering = EpisodeAnswer::Seen(Box::new(rendered_episode(Status::Rendering)));
    panel.take(rendering);
    h.state_mut().overlay.episode = Some(panel);
    h.run_steps(2);
    h.get_by_label_contains("Episode 7: rendering");
    assert!(h.query_by_label("Episode ready").is_none());
    let published = EpisodeAnswer::Seen(Box::new(rendered_episode(Status::Published)));
    if let Some(p) = h.state_mut().overlay.episode.as_mut() {
        p.take(published);
    }
    h.run_steps(2);
    h.get_by_label("Episode ready");
    h.get_by_label("http://127.0.0.1:9/episodes/7");
    h.get_by_label("http://127.0.0.1:9/podcast.xml");
    h.get_by_label("In the feed");
    // Delete asks first; "Keep it" keeps it.
    click(&h, "Delete");
    h.run_steps(2);
    h.get_by_label_contains("for good");
    assert_eq!(h.state().overlay.episode.as_ref().unwrap().asked, None);
    click(&h, "Keep it");
    h.run_steps(2);
    assert!(h.query_by_label("Delete it").is_none());
    click(&h, "Delete");
    h.run_steps(2);
    click(&h, "Delete it");
    h.run_steps(2);
    let p = h.state().overlay.episode.as_ref().unwrap();
    assert_eq!(p.asked, Some(EpisodeRequest::Delete));
    h.get_by_label("Deleting...");
}

#[test]
fn a_recorded_room_becomes_an_episode_the_overlay_follows_after_the_room_ends() {
    use booth::app::episode::EpisodeStage;
    let dir = tempfile::tempdir().unwrap();
    let l = launch(dir.path(), true);
    let path = l.settings_path.clone().unwrap();
    let mut settings = Settings::load(&path).unwrap();
    settings.record_episode = true;
    settings.save(&path).unwrap();
    let mut h = harness(l);
    let room = go_live(&mut h);
    let episode = room.episode.clone().expect("the room records an episode");
    wait_for(&mut h, "the episode in the room view", |w| {
        w.overlay.room.episode.is_some()
    });
    h.get_by_label(&format!("Recording episode {}", episode.id));
    std::thread::sleep(Duration::from_secs(2));
    click(&h, "End room");
    h.run_steps(2);
    click(&h, "End it");
    wait_for(&mut h, "the room ended", |w| {
        matches!(w.overlay.phase, Phase::Ready)
    });
    // The in-process server stays up for the episode: the panel hears it rendered (or failed).
    wait_for(&mut h, "the episode rendered", |w| {
        w.overlay
            .episode
            .as_ref()
            .is_some_and(|p| matches!(p.stage(), EpisodeStage::Ready(_) | EpisodeStage::Failed(_)))
    });
    // What the panel shows is what the server says, on screen: published, with its links.
    let info = get_json(&format!("{}/api/episodes/{}", room.server, episode.id));
    match h.state().overlay.episode.as_ref().unwrap().stage() {
        EpisodeStage::Ready(view) => {
            assert_eq!(info["status"], "published", "{info}");
            h.get_by_label("Episode ready");
            h.get_by_label(&view.page);
            h.get_by_label(&view.feed);
        }
        other => panic!("the episode did not render: {other:?}; the server says {info}"),
    }
}
