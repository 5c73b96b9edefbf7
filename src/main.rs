//! The `booth` command line: parse, then call into the library. No audio, network or room logic
//! lives here: only arguments in, and what the library reports printed for a terminal.

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

mod serve_cli;

use serve_cli::ServeArgs;

use booth::dsp::{DuckerParams, ProgramSettings};
use booth::mix::{MixOptions, MixSummary};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// Host a live audio room from inside your game. With no command, opens the overlay.
#[derive(Parser, Debug)]
#[command(name = "booth", version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    overlay: OverlayArgs,
}

/// The overlay's options (`booth` with no command).
#[derive(Args, Debug)]
struct OverlayArgs {
    /// Use this room server (its base URL) instead of one in this process.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Play this file as the game audio, in real time (a demo), instead of a device.
    #[arg(long, value_name = "FILE", requires = "mic_file")]
    game_file: Option<PathBuf>,
    /// Play this file as the microphone, in real time, instead of a device.
    #[arg(long, value_name = "FILE", requires = "game_file")]
    mic_file: Option<PathBuf>,
    /// The settings file (default: settings.toml in the platform's config directory).
    #[arg(long, value_name = "FILE")]
    settings: Option<PathBuf>,
    /// Recordings of rooms run in this process.
    #[arg(long, value_name = "DIR", default_value = "booth-data")]
    data: PathBuf,
    /// Go live as soon as the audio runs.
    #[arg(long)]
    go_live: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Mix a game recording and a voice recording into one ducked program (offline).
    Mix(MixArgs),
    /// Run the live host pipeline: game audio and mic in, the ducked program out.
    Host(Box<HostArgs>),
    /// List capture and playback devices; loopback (monitor) sources are marked.
    Devices(DevicesArgs),
    /// Run the room server alone (for a VPS): rooms, WHIP/WHEP, the WebSocket room channel.
    Serve(Box<ServeArgs>),
    /// Listen to a room in the terminal (WHEP), or record it to a file.
    Listen(ListenArgs),
    /// The podcast episodes recorded rooms became: list, show, publish, unlist, delete, export.
    Episodes(EpisodesArgs),
}

#[derive(Args, Debug)]
struct EpisodesArgs {
    #[command(subcommand)]
    command: EpisodesCommand,
    /// The server's data directory.
    #[arg(long, value_name = "DIR", default_value = "booth-data", global = true)]
    data: PathBuf,
}

#[derive(Subcommand, Debug)]
enum EpisodesCommand {
    /// Every episode, newest first.
    List,
    /// One episode: its chapters, who spoke, its files.
    Show { id: i64 },
    /// Put an episode in the feed and on the episodes page.
    Publish { id: i64 },
    /// Take an episode out of the feed and the list (its page still answers its link).
    Unlist { id: i64 },
    /// Delete an episode and its files.
    Delete { id: i64 },
    /// Copy every rendered episode's files (MP3, Ogg Opus, chapters, tracks) into DIR.
    Export { dir: PathBuf },
}

#[derive(Args, Debug)]
struct ListenArgs {
    /// The room's listener link (http://HOST:PORT/r/ROOM) or WHEP URL.
    url: String,
    /// Write the room to this file (.ogg/.opus or .wav) instead of playing it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Stop after this many seconds.
    #[arg(long, value_name = "N")]
    seconds: Option<f64>,
    /// Your participant token: on stage, you hear everyone but yourself. Also read from
    /// BOOTH_TOKEN, or from a file with --token-file (either keeps it out of `ps`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "BOOTH_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Read the token from this file (its first line; wins over --token and BOOTH_TOKEN).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Play on this output device (default: the default output).
    #[arg(long, value_name = "NAME")]
    device: Option<String>,
}

/// How the program is mixed: the same options live and offline.
#[derive(Args, Debug)]
struct ProgramArgs {
    /// How far the game dips under the voice, dB.
    #[arg(long, value_name = "DB", default_value_t = 12.0)]
    duck_depth: f32,
    /// Time from the voice's onset to full dip, ms.
    #[arg(long, value_name = "MS", default_value_t = 10.0)]
    attack: f32,
    /// How long the dip stays after the voice stops, ms.
    #[arg(long, value_name = "MS", default_value_t = 300.0)]
    hold: f32,
    /// Time to come back to full level, ms.
    #[arg(long, value_name = "MS", default_value_t = 400.0)]
    release: f32,
    /// How far ahead the ducker listens, ms (the dip is in place before the first syllable).
    #[arg(long, value_name = "MS", default_value_t = 10.0)]
    lookahead: f32,
    /// Game level, dB.
    #[arg(
        long,
        value_name = "DB",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    game_gain: f32,
    /// Voice level, dB.
    #[arg(
        long,
        value_name = "DB",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    mic_gain: f32,
    /// Limiter ceiling, dBFS.
    #[arg(long, value_name = "DBFS", default_value_t = -1.0, allow_negative_numbers = true)]
    ceiling: f32,
}

impl ProgramArgs {
    fn settings(&self, voice_gate_db: f32) -> ProgramSettings {
        ProgramSettings {
            duck: DuckerParams {
                depth_db: self.duck_depth,
                attack_ms: self.attack,
                hold_ms: self.hold,
                release_ms: self.release,
                lookahead_ms: self.lookahead,
            },
            game_gain_db: self.game_gain,
            voice_gain_db: self.mic_gain,
            ceiling_db: self.ceiling,
            voice_gate_db,
            ..ProgramSettings::default()
        }
    }
}

#[derive(Args, Debug)]
struct DevicesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct HostArgs {
    /// No window: run in the terminal (`booth` alone opens the overlay).
    #[arg(long)]
    headless: bool,
    /// Game audio device (id, name or a unique part of it). Default: the monitor of the default
    /// output, i.e. what the computer plays.
    #[arg(long, value_name = "NAME", conflicts_with = "game_file")]
    game_device: Option<String>,
    /// Play a file as the game audio, paced in real time.
    #[arg(long, value_name = "FILE")]
    game_file: Option<PathBuf>,
    /// Microphone device. Default: the default input.
    #[arg(long, value_name = "NAME", conflicts_with = "mic_file")]
    mic_device: Option<String>,
    /// Play a file as the microphone, paced in real time.
    #[arg(long, value_name = "FILE")]
    mic_file: Option<PathBuf>,
    /// Play the room's voices on this output device (a headset; not the output whose monitor is
    /// the game audio).
    #[arg(long, value_name = "NAME")]
    monitor_device: Option<String>,
    /// Take the room's other voices from a file, paced in real time, instead of from the room
    /// (rehearsals and tests). They duck the game and play on --monitor-device.
    #[arg(long, value_name = "FILE")]
    remote_file: Option<PathBuf>,
    /// Record the live program to this Ogg Opus file (.ogg or .opus).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "N")]
    seconds: Option<f64>,
    #[command(flatten)]
    program: ProgramArgs,
    /// Turn off the mic's noise suppression (on by default; it rests, at almost no cost, while
    /// you are not speaking).
    #[arg(long)]
    no_noise_suppression: bool,
    /// Voice gate: turn the mic down this far between phrases, dB (0 = off).
    #[arg(long, value_name = "DB", default_value_t = 12.0)]
    voice_gate: f32,
    /// Opus bitrate of the program, kbit/s.
    #[arg(long, value_name = "KBPS", default_value_t = 128)]
    bitrate: u32,
    /// Go live on this room server (default: start one in this process).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Publish the program into this WHIP endpoint (an SFU, a streaming service) instead of a
    /// Booth room; no room server is started. Its bearer token, if it wants one: --token.
    #[arg(long, value_name = "URL", conflicts_with_all = ["server", "room", "episode", "offline"])]
    whip: Option<String>,
    /// Don't go live: only record (with --record) or meter.
    #[arg(long, conflicts_with_all = ["server", "room"])]
    offline: bool,
    /// The room's title.
    #[arg(long, value_name = "TITLE", default_value = "Live from Booth")]
    title: String,
    /// The game being played.
    #[arg(long, value_name = "NAME", default_value = "")]
    game: String,
    /// Join this existing room instead of creating one (with --token or --token-file).
    #[arg(long, value_name = "ID")]
    room: Option<String>,
    /// The host's or a speaker's token for --room; the bearer token for --whip. Also read from
    /// BOOTH_TOKEN, or from a file with --token-file (either keeps it out of `ps`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "BOOTH_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    /// Read the token from this file (its first line; wins over --token and BOOTH_TOKEN).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The key of a room server that creates rooms only for its owner (`booth serve
    /// --room-key`), for the room this host creates there. Also read from BOOTH_ROOM_KEY.
    #[arg(
        long,
        value_name = "KEY",
        env = "BOOTH_ROOM_KEY",
        hide_env_values = true,
        conflicts_with = "room"
    )]
    room_key: Option<String>,
    /// Where the in-process room server listens (a busy port falls back to a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    bind: std::net::SocketAddr,
    /// The in-process server's data directory.
    #[arg(long, value_name = "DIR", default_value = "booth-data")]
    data: PathBuf,
    /// Record the new room as a podcast episode (published when the room ends).
    #[arg(long, conflicts_with = "room")]
    episode: bool,
    /// Push the new room to this Icecast server (http://source:PASSWORD@HOST:PORT/PREFIX) as
    /// {ROOM}.mp3 and {ROOM}.ogg mounts.
    #[arg(long, value_name = "URL", conflicts_with = "room")]
    icecast: Option<String>,
}

#[derive(Args, Debug)]
struct MixArgs {
    /// Game (program) audio: WAV, FLAC, MP3, Ogg Vorbis or Ogg Opus, any rate and channels.
    #[arg(long, value_name = "FILE")]
    game: PathBuf,
    /// Voice audio, same formats.
    #[arg(long, value_name = "FILE")]
    mic: PathBuf,
    /// Output: .ogg/.opus (Ogg Opus) or .wav (16-bit WAV).
    #[arg(long, value_name = "FILE", default_value = "mix.ogg")]
    out: PathBuf,
    #[command(flatten)]
    program: ProgramArgs,
    /// Opus bitrate, kbit/s.
    #[arg(long, value_name = "KBPS", default_value_t = 128)]
    bitrate: u32,
    /// Opus encoder complexity, 0-10.
    #[arg(long, value_name = "N", default_value_t = 10)]
    complexity: u8,
    /// Bring the program to this integrated loudness, LUFS (e.g. -16 for podcasts).
    #[arg(long, value_name = "LUFS", allow_negative_numbers = true)]
    normalize: Option<f32>,
    /// Voice gate: turn the voice down this far between phrases, dB (0 = off).
    #[arg(long, value_name = "DB", default_value_t = 0.0)]
    voice_gate: f32,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => overlay(cli.overlay),
        Some(Command::Mix(args)) => mix(args),
        Some(Command::Host(args)) => host(*args),
        Some(Command::Serve(args)) => serve_cli::serve(*args),
        Some(Command::Listen(args)) => listen(args),
        Some(Command::Devices(args)) => devices(args),
        Some(Command::Episodes(args)) => episodes(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("booth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(feature = "gui")]
fn overlay(a: OverlayArgs) -> anyhow::Result<()> {
    init_logging();
    let launch = booth::app::Launch {
        settings_path: a
            .settings
            .or_else(booth::app::settings::Settings::default_path),
        files: a.game_file.zip(a.mic_file),
        server: a.server,
        data_dir: a.data,
        udp_ports: (50_000, 50_100),
        go_live: a.go_live,
    };
    booth::app::run(launch).map_err(|e| anyhow::anyhow!("{e}"))
}

#[cfg(not(feature = "gui"))]
fn overlay(_: OverlayArgs) -> anyhow::Result<()> {
    anyhow::bail!(
        "this booth was built without the overlay (the `gui` feature): run `booth host --headless` to go live, or `booth --help`"
    )
}

fn mix(a: MixArgs) -> anyhow::Result<()> {
    let opts = MixOptions {
        game: a.game,
        mic: a.mic,
        out: a.out,
        settings: a.program.settings(a.voice_gate),
        bitrate_kbps: a.bitrate,
        complexity: a.complexity,
        normalize_lufs: a.normalize,
    };
    let bar = (!a.quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {percent:>3}%  {msg}  eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    let mut progress = |done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(format!("{:.0} s", done as f64 / 48_000.0));
        }
    };
    // Booth's errors carry their whole story in one line; print that, not the cause chain.
    let summary = booth::mix::run(&opts, &mut progress).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    print_summary(&summary);
    Ok(())
}

fn print_summary(s: &MixSummary) {
    let mins = (s.duration_s / 60.0).floor();
    let secs = s.duration_s - mins * 60.0;
    println!("wrote      {}", s.out.display());
    println!("duration   {mins:.0}:{secs:06.3}");
    println!("loudness   {:.1} LUFS integrated", s.integrated_lufs);
    println!("peak       {:.1} dBFS", s.peak_dbfs);
    println!("ducked     {:.0}% of the time", s.ducked_share * 100.0);
    if s.normalize_gain_db != 0.0 {
        println!("normalized {:+.1} dB", s.normalize_gain_db);
    }
}

fn devices(a: DevicesArgs) -> anyhow::Result<()> {
    let list = booth::audio::list_devices().map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("no audio devices found");
    }
    print!("{}", devices_table(&list));
    Ok(())
}

/// `booth devices` as a table: what to pass to `--*-device`, the name people see, the sound
/// system, the format the device runs at and what else it takes, and what Booth uses it for.
fn devices_table(list: &[booth::audio::DeviceInfo]) -> String {
    use booth::audio::spans_text;
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|d| {
            let mut marks = Vec::new();
            match (d.direction, d.is_default) {
                (booth::audio::Direction::Input, true) => marks.push("default mic"),
                (booth::audio::Direction::Output, true) => marks.push("default output"),
                _ => {}
            }
            if d.is_default_game_audio {
                marks.push("default game audio");
            } else if d.is_monitor {
                marks.push("loopback");
            }
            let takes = format!(
                "takes {} ch, {} Hz",
                spans_text(&d.channels),
                spans_text(&d.sample_rates)
            );
            [
                d.direction.word().to_owned(),
                d.id.clone(),
                d.name.clone(),
                d.host.clone(),
                d.native
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), ToString::to_string),
                if marks.is_empty() {
                    takes
                } else {
                    format!("{takes}  [{}]", marks.join(", "))
                },
            ]
        })
        .collect();
    let header = ["", "ID", "NAME", "SYSTEM", "RUNS AT", ""].map(str::to_owned);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// An input, as the terminal names it.
fn input_word(which: booth::engine::Feed) -> &'static str {
    match which {
        booth::engine::Feed::Game => "game audio",
        booth::engine::Feed::Mic => "mic",
        booth::engine::Feed::Remote => "room's voices",
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BOOTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("booth=info,warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn episodes(a: EpisodesArgs) -> anyhow::Result<()> {
    use booth::episodes::{Status, manage};
    let store = booth::episodes::store::Store::open(&a.data)?;
    let out = match a.command {
        EpisodesCommand::List => manage::list(&store)?,
        EpisodesCommand::Show { id } => manage::show(&store, id)?,
        EpisodesCommand::Publish { id } => manage::set_status(&store, id, Status::Published)?,
        EpisodesCommand::Unlist { id } => manage::set_status(&store, id, Status::Unlisted)?,
        EpisodesCommand::Delete { id } => manage::delete(&store, id)?,
        EpisodesCommand::Export { dir } => manage::export(&store, &dir)?,
    };
    print!("{out}");
    Ok(())
}

/// The secret given by `--token-file FILE` (its first line, trimmed), else by `--token` or
/// the environment.
fn token_from(
    token: Option<String>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<Option<String>> {
    let Some(path) = file else {
        return Ok(token.filter(|t| !t.trim().is_empty()));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the token file {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    if token.is_empty() {
        anyhow::bail!(
            "the token file {} is empty: put the token on its first line",
            path.display()
        );
    }
    Ok(Some(token))
}

fn listen(a: ListenArgs) -> anyhow::Result<()> {
    init_logging();
    let opts = booth::listen::ListenOptions {
        url: a.url,
        token: token_from(a.token, a.token_file.as_deref())?,
        out: a.out.clone(),
        device: a.device,
        seconds: a.seconds,
    };
    let summary = runtime()?.block_on(booth::listen::run(opts))?;
    eprintln!(
        "booth: connected in {} ms; {} packets, {:.2} s {}, {} frames concealed",
        summary.connect_ms,
        summary.packets,
        summary.frames as f64 / 50.0,
        if a.out.is_some() { "written" } else { "played" },
        summary.concealed
    );
    if let Some(ms) = summary.started_unix_ms {
        eprintln!("booth: first frame at unix ms {ms}");
    }
    if let Some(why) = summary.ended {
        eprintln!("booth: the room ended the stream: {why}");
    }
    Ok(())
}

fn host(mut a: HostArgs) -> anyhow::Result<()> {
    if !a.headless {
        anyhow::bail!(
            "`booth host` runs without a window: add --headless (or run `booth` for the overlay)"
        );
    }
    let record = a.record.clone();
    a.token = token_from(a.token.take(), a.token_file.as_deref())?;
    if a.room.is_some() && a.token.is_none() {
        anyhow::bail!(
            "joining a room needs its token: --room ID --token-file FILE (or --token, or BOOTH_TOKEN)"
        );
    }
    let opts = host_options(a);
    if let Some(path) = &record {
        eprintln!("booth: recording the program to {}", path.display());
    }
    let mut terminal = HostTerminal::default();
    let stop = stop_on_signal()?;
    let summary = booth::host::run_headless(&opts, &stop, &mut |s| terminal.say(s))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    print_host_summary(record.as_deref(), &summary);
    Ok(())
}

/// A flag set on Ctrl-C or SIGTERM, watched by a thread of its own.
fn stop_on_signal() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("booth-signals".into())
        .spawn(move || {
            rt.block_on(booth::server::stop_signal());
            eprintln!("booth: stopping (finishing the recordings; again to quit at once)");
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
            rt.block_on(booth::server::stop_signal());
            std::process::exit(130);
        })?;
    Ok(stop)
}

/// What `booth host` was asked to do, from its arguments.
fn host_options(a: HostArgs) -> booth::host::HostOptions {
    use booth::audio::DeviceSelector;
    use booth::host::InputChoice;
    let choice = |file: Option<PathBuf>, device: Option<String>, default| match (file, device) {
        (Some(f), _) => InputChoice::File(f),
        (None, Some(d)) => InputChoice::Device(DeviceSelector::Named(d)),
        (None, None) => InputChoice::Device(default),
    };
    booth::host::HostOptions {
        game: choice(
            a.game_file,
            a.game_device,
            DeviceSelector::DefaultGameMonitor,
        ),
        mic: choice(a.mic_file, a.mic_device, DeviceSelector::DefaultMic),
        remote: a.remote_file.map(InputChoice::File),
        monitor_device: a.monitor_device,
        record: a.record,
        seconds: a.seconds,
        settings: a.program.settings(a.voice_gate),
        noise_suppression: !a.no_noise_suppression,
        bitrate_kbps: a.bitrate,
        whip: a.whip.clone().map(|url| booth::whip_out::WhipTarget {
            url,
            token: a.token.clone(),
        }),
        room: (!a.offline && a.whip.is_none()).then_some(booth::host::RoomTarget {
            server: a.server,
            bind: a.bind,
            udp_ports: (50_000, 50_100),
            data_dir: a.data,
            title: a.title,
            game: a.game,
            room: a.room,
            token: a.token,
            room_key: a.room_key,
            record: a.episode,
            icecast: a.icecast,
        }),
    }
}

/// `booth host`'s terminal: what the host reports, a line each, and the meters once a second.
#[derive(Default)]
struct HostTerminal {
    /// Underruns so far (game, mic): a second with new ones says so on its line.
    short: (u64, u64),
    /// Frames the encoder refused so far: the same.
    refused: u64,
}

impl HostTerminal {
    fn say(&mut self, status: booth::host::HostStatus) {
        use booth::host::HostStatus;
        match status {
            HostStatus::Meters(m) => self.meters(&m),
            HostStatus::Opened(which, source) => {
                eprintln!("booth: {}: {source}", input_word(which))
            }
            HostStatus::Lost(which, why) => {
                eprintln!(
                    "booth: {} lost, carrying on without it: {why}",
                    input_word(which)
                );
            }
            HostStatus::Back(which, name) => eprintln!("booth: {} back: {name}", input_word(which)),
            HostStatus::MonitorLost(why) => {
                eprintln!("booth: monitor output lost, the room goes on unheard there: {why}");
            }
            HostStatus::MonitorBack(name) => eprintln!("booth: monitor output back: {name}"),
            HostStatus::Followed(which, name) => {
                eprintln!(
                    "booth: {} follows the new default: {name}",
                    input_word(which)
                );
            }
            HostStatus::Engine(ev) => eprintln!("booth: {ev}"),
            HostStatus::Live(room) => {
                println!("listen: {}", room.listener_link);
                if let Some(link) = &room.host_link {
                    println!("host:   {link}");
                }
                println!("room:   {}", room.room);
                println!("token:  {}", room.token);
                for url in &room.icecast {
                    println!("icecast: {url}");
                }
                if let Some(e) = &room.episode {
                    println!(
                        "episode: {} (published there when the room ends; feed {})",
                        e.page, e.feed
                    );
                }
                let _ = std::io::Write::flush(&mut std::io::stdout());
            }
            HostStatus::RoomLost(why) => {
                eprintln!("booth: the room connection ended ({why}); the program goes on locally");
            }
            HostStatus::Publishing(url) => {
                println!("whip:   {url}");
                eprintln!("booth: publishing the program into the WHIP endpoint {url}");
                let _ = std::io::Write::flush(&mut std::io::stdout());
            }
            HostStatus::WhipLost(why) => {
                eprintln!("booth: the WHIP endpoint's session ended: {why}");
            }
            HostStatus::Room(message) => {
                if let Some(line) = booth::live::describe(&message) {
                    eprintln!("booth: {line}");
                }
            }
        }
    }

    /// The meters' line, with what went short or unencoded since the last one.
    fn meters(&mut self, m: &booth::engine::Meters) {
        let level = |db: f32| booth::dsp::meter_text(db, 6);
        let now = (m.underruns_game, m.underruns_mic);
        let mut note = if now == self.short {
            String::new()
        } else {
            format!(
                "  short: game {} mic {}",
                now.0.saturating_sub(self.short.0),
                now.1.saturating_sub(self.short.1)
            )
        };
        self.short = now;
        if m.encode_failures != self.refused {
            note.push_str(&format!(
                "  not encoded: {}",
                m.encode_failures.saturating_sub(self.refused)
            ));
        }
        self.refused = m.encode_failures;
        eprintln!(
            "{:>6.1} s  program {} dBFS {:>6.1} LUFS  game {} dBFS  mic {} dBFS  duck -{:.1} dB{note}",
            m.frames as f64 / 50.0,
            level(m.program_peak_dbfs),
            m.program_short_term_lufs,
            level(m.game_peak_dbfs),
            level(m.mic_peak_dbfs),
            m.duck_reduction_db
        );
    }
}

/// `booth host`'s last words: the recording, the frames, loudness and what went wrong.
fn print_host_summary(record: Option<&std::path::Path>, summary: &booth::host::HostSummary) {
    let m = &summary.meters;
    if let (Some(path), Some(frames)) = (record, summary.recorded_frames) {
        println!(
            "recorded   {} ({:.2} s)",
            path.display(),
            frames as f64 / 50.0
        );
    }
    println!("frames     {} ({:.2} s)", m.frames, m.frames as f64 / 50.0);
    println!(
        "loudness   {:.1} LUFS integrated",
        m.program_integrated_lufs
    );
    println!(
        "underruns  game {}, mic {}",
        m.underruns_game, m.underruns_mic
    );
    if m.encode_failures > 0 {
        println!(
            "encoding   {} frames refused by the Opus encoder (not sent, not recorded)",
            m.encode_failures
        );
    }
    let denoised = m.denoiser_ran + m.denoiser_rested;
    if denoised > 0 {
        println!(
            "denoiser   rested {:.0}% of the time the mic was heard (the host was not speaking)",
            100.0 * m.denoiser_rested as f64 / denoised as f64
        );
    }
}
