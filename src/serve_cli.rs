//! `booth serve`'s command line: the room server's options, the podcast show's and the live
//! streams', and how they become [`booth::server::ServeOptions`].

use std::path::PathBuf;

use clap::Args;

/// The podcast every recorded room is an episode of.
#[derive(Args, Debug)]
pub(crate) struct ShowArgs {
    /// The show's config file (TOML: title, author, email, description, language, category,
    /// explicit, artwork, public_url); the flags below win over it.
    #[arg(long, value_name = "FILE")]
    show: Option<PathBuf>,
    /// The podcast's title.
    #[arg(long, value_name = "TITLE")]
    show_title: Option<String>,
    /// Who makes it.
    #[arg(long, value_name = "NAME")]
    show_author: Option<String>,
    /// The owner's email (podcast directories write to it).
    #[arg(long, value_name = "EMAIL")]
    show_email: Option<String>,
    /// What the show is about.
    #[arg(long, value_name = "TEXT")]
    show_description: Option<String>,
    /// Its language (en, fr-CA...).
    #[arg(long, value_name = "TAG")]
    show_language: Option<String>,
    /// Its Apple Podcasts category (Leisure/Video Games).
    #[arg(long, value_name = "CATEGORY")]
    show_category: Option<String>,
    /// Square cover art, JPEG or PNG, 1400-3000 px (default: drawn from the title).
    #[arg(long, value_name = "FILE")]
    show_artwork: Option<PathBuf>,
    /// Mark the show explicit.
    #[arg(long)]
    show_explicit: bool,
}

impl ShowArgs {
    fn show(self) -> anyhow::Result<booth::episodes::Show> {
        let mut show = match &self.show {
            Some(path) => booth::episodes::manage::load_show(path)?,
            None => booth::episodes::Show::default(),
        };
        let set = |field: &mut String, v: Option<String>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(&mut show.title, self.show_title);
        set(&mut show.author, self.show_author);
        set(&mut show.email, self.show_email);
        set(&mut show.description, self.show_description);
        set(&mut show.language, self.show_language);
        set(&mut show.category, self.show_category);
        show.artwork = self.show_artwork.or(show.artwork);
        show.explicit |= self.show_explicit;
        Ok(show)
    }
}

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// HTTP address for the API, WebSocket, WHIP/WHEP and pages.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8080")]
    bind: std::net::SocketAddr,
    /// The address clients reach the media at, when behind NAT.
    #[arg(long, value_name = "IP")]
    public_ip: Option<std::net::IpAddr>,
    /// UDP media port, or a range to take the first free one from.
    #[arg(long, value_name = "PORT|RANGE", default_value = "50000-50100", value_parser = booth::server::parse_port_range)]
    udp_port: (u16, u16),
    /// Recordings and the database.
    #[arg(long, value_name = "DIR", default_value = "booth-data")]
    data: PathBuf,
    /// A STUN/TURN server URL to advertise to WHIP/WHEP clients (repeatable).
    #[arg(long, value_name = "URL")]
    ice_server: Vec<String>,
    /// The public base URL links are made with (default: http://BIND).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Push every room to this Icecast server as two mounts, {PREFIX}/{ROOM}.mp3 and
    /// {PREFIX}/{ROOM}.ogg (Ogg Opus), titled with the room's title, reconnecting when Icecast
    /// restarts. URL: http://source:PASSWORD@HOST:PORT/PREFIX. A room created with its own
    /// "icecast" URL goes there instead.
    #[arg(long, value_name = "URL")]
    icecast: Option<String>,
    /// A TOML config file; its [limits] table sets what any one client, address and room may
    /// take (the names are those of --limit).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Sets one limit, over the config file (repeatable): max_rooms, room_creations_burst,
    /// room_creations_per_hour, host_absent_secs, idle_secs, sessions_per_room,
    /// pending_sessions_per_room, sessions_per_address, pending_sessions_per_address,
    /// candidates_per_session, name_chars, hand_queue, ws_messages_per_sec, ws_per_address,
    /// big_audience, audience_page, invite_secs, max_connections, connections_per_address,
    /// header_timeout_secs, request_timeout_secs, trusted_proxies (a list: ["IP", ...]).
    #[arg(long, value_name = "NAME=VALUE")]
    limit: Vec<String>,
    /// Only those with this key may create rooms (`Authorization: Bearer KEY` on
    /// POST /api/rooms): a public server private to its owner. Read from the environment
    /// variable BOOTH_ROOM_KEY when not given (keeps it out of `ps`).
    #[arg(
        long,
        value_name = "KEY",
        env = "BOOTH_ROOM_KEY",
        hide_env_values = true
    )]
    room_key: Option<String>,
    /// `/metrics` needs `Authorization: Bearer TOKEN`. Read from BOOTH_METRICS_TOKEN when not
    /// given.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "BOOTH_METRICS_TOKEN",
        hide_env_values = true
    )]
    metrics_token: Option<String>,
    /// Serve /metrics (and /healthz) on this address, e.g. 127.0.0.1:9100, instead of the main
    /// listener. Without it or --metrics-token, /metrics answers only clients on this machine.
    #[arg(long, value_name = "ADDR")]
    metrics_bind: Option<std::net::SocketAddr>,
    #[command(flatten)]
    show: ShowArgs,
    #[command(flatten)]
    live: LiveArgs,
}

/// How the live HTTP streams (`/live/ROOM.mp3`, `.ogg`) and HLS (`/hls/ROOM/index.m3u8`) are made.
#[derive(Args, Debug)]
pub(crate) struct LiveArgs {
    /// Also write each room's HLS playlist and segments under DIR/ROOM/, for any web server or
    /// CDN to serve (HLS is then made for as long as each room lives).
    #[arg(long, value_name = "DIR")]
    hls_dir: Option<PathBuf>,
    /// HLS segment length, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = parse_segment)]
    hls_segment: f64,
    /// Segments a live HLS playlist lists.
    #[arg(long, value_name = "N", default_value_t = 6, value_parser = clap::value_parser!(u16).range(3..=60))]
    hls_window: u16,
    /// Bitrate of the MP3 stream and HLS, kbit/s.
    #[arg(long, value_name = "KBPS", default_value_t = 128, value_parser = parse_mp3_kbps)]
    mp3_bitrate: u32,
}

impl LiveArgs {
    fn options(&self) -> booth::server::live::LiveOptions {
        booth::server::live::LiveOptions {
            mp3_kbps: self.mp3_bitrate,
            hls_segment: std::time::Duration::from_secs_f64(self.hls_segment),
            hls_window: usize::from(self.hls_window),
            hls_dir: self.hls_dir.clone(),
        }
    }
}

fn parse_segment(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.5..=10.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a segment length from 0.5 to 10 seconds"
        )),
    }
}

fn parse_mp3_kbps(s: &str) -> Result<u32, String> {
    const RATES: [u32; 14] = [
        32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ];
    match s.parse::<u32>() {
        Ok(v) if RATES.contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not an MP3 bitrate (one of {RATES:?} kbit/s)"
        )),
    }
}

pub(crate) fn serve(a: ServeArgs) -> anyhow::Result<()> {
    crate::init_logging();
    let opts = booth::server::ServeOptions {
        bind: a.bind,
        public_ip: a.public_ip,
        udp_ports: a.udp_port,
        data_dir: a.data,
        ice_servers: a.ice_server,
        public_url: a.public_url,
        show: a.show.show()?,
        live: a.live.options(),
        // Parsed here rather than by clap, whose errors would echo the password.
        icecast: a
            .icecast
            .as_deref()
            .map(booth::server::live::icecast::IcecastTarget::parse)
            .transpose()?,
        limits: serve_limits(a.config.as_deref(), &a.limit, a.room_key, a.metrics_token)?,
        metrics_bind: a.metrics_bind,
    };
    crate::runtime()?.block_on(async move {
        let mut server = booth::server::start(opts).await?;
        println!("booth: serving rooms on {}", server.base_url);
        if let Some(metrics) = server.metrics_http {
            println!("booth: metrics on http://{metrics}/metrics");
        }
        if let Some(icecast) = &server.state.icecast {
            println!("booth: pushing every room to Icecast at {icecast}");
        }
        tokio::select! {
            r = server.wait() => r?,
            () = booth::server::stop_signal() => {
                eprintln!("booth: stopping (finishing recordings)");
                server.shutdown().await;
            }
        }
        anyhow::Ok(())
    })
}

/// The config file's limits, then each `--limit`, then the keys given on their own.
fn serve_limits(
    config: Option<&std::path::Path>,
    flags: &[String],
    room_key: Option<String>,
    metrics_token: Option<String>,
) -> anyhow::Result<booth::server::limits::Limits> {
    let mut limits = match config {
        Some(path) => booth::server::limits::Limits::load(path)?,
        None => booth::server::limits::Limits::default(),
    };
    for flag in flags {
        limits.set(flag)?;
    }
    if room_key.is_some() {
        limits.room_key = room_key;
    }
    if metrics_token.is_some() {
        limits.metrics_token = metrics_token;
    }
    Ok(limits)
}
