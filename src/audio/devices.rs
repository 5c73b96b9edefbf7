//! Sound devices: listing what can be captured or played, and picking the device a user named.
//!
//! Booth talks to one sound system (a cpal *host*) at a time, the first that answers in cpal's
//! order of preference: on Linux the PulseAudio protocol (PulseAudio itself, or PipeWire through
//! pipewire-pulse), else ALSA; on Windows WASAPI; on macOS CoreAudio. Game audio is loopback
//! capture of an output: PulseAudio lists it as the source `<sink>.monitor`; on Windows every
//! output is listed a second time as a loopback input; macOS needs a loopback device (e.g.
//! BlackHole), which then lists as an ordinary input. A monitor is recognised by PulseAudio's
//! naming (`*.monitor`; PipeWire keeps it). Devices that cannot say what formats they take
//! cannot be opened either and are left out (ALSA lists plugins with nothing behind them).
//!
//! Devices are found afresh on every call: nothing here caches a device that may have gone.
//!
//! This module never runs on the audio thread and never panics because a device or the whole
//! sound system is missing: that is an error a user can read, naming what does exist.

use std::sync::atomic::{AtomicUsize, Ordering};

use cpal::traits::{DeviceTrait, HostTrait};

/// Whether a device records or plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A capture device: a microphone, a line in, or a monitor/loopback of an output.
    Input,
    /// A playback device.
    Output,
}

impl Direction {
    /// "input" or "output", for messages.
    #[must_use]
    pub fn word(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// One capture or playback device, as `booth devices` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    /// What to pass to `--*-device` to get exactly this device: the sound system's own name for
    /// it (`game.monitor` on PulseAudio, `hw:CARD=...` on ALSA). Windows loopback inputs are
    /// `loopback:<output id>`.
    pub id: String,
    /// The name people see in their system's sound settings.
    pub name: String,
    /// The sound system: `PulseAudio`, `ALSA`, `WASAPI`, `CoreAudio`...
    pub host: String,
    /// Records or plays.
    pub direction: Direction,
    /// The sound system's default for this direction.
    pub is_default: bool,
    /// A loopback input: what an output plays (a PulseAudio/PipeWire `*.monitor` source, or
    /// WASAPI loopback of an output). This is where game audio comes from.
    pub is_monitor: bool,
    /// The input for game audio Booth takes when none is named: the loopback of the default
    /// output.
    pub is_default_game_audio: bool,
    /// The format the device itself runs at (a PulseAudio source's sample spec), which Booth
    /// opens it with; `None` when the sound system does not say.
    pub native: Option<NativeFormat>,
    /// Channel counts the device opens with: ascending, non-overlapping spans.
    pub channels: Vec<Span<u16>>,
    /// Sample rates the device opens with: ascending, non-overlapping spans (a span of one
    /// rate where the device takes only listed rates).
    pub sample_rates: Vec<Span<u32>>,
}

impl DeviceInfo {
    /// Whether the device opens with `channels` channels.
    #[must_use]
    pub fn takes_channels(&self, channels: u16) -> bool {
        self.channels.iter().any(|s| s.holds(channels))
    }

    /// Whether the device opens at `rate` Hz.
    #[must_use]
    pub fn takes_rate(&self, rate: u32) -> bool {
        self.sample_rates.iter().any(|s| s.holds(rate))
    }
}

/// The format a device runs at.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NativeFormat {
    /// Channels per frame.
    pub channels: u16,
    /// Frames per second.
    pub sample_rate: u32,
    /// The sample type, as cpal names it: `i16`, `f32`...
    pub sample_format: String,
}

impl std::fmt::Display for NativeFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ch {} Hz {}",
            self.channels, self.sample_rate, self.sample_format
        )
    }
}

/// Every value from `min` to `max`, both included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Span<T> {
    /// The smallest value.
    pub min: T,
    /// The largest value.
    pub max: T,
}

impl<T: Copy + Ord> Span<T> {
    fn holds(&self, v: T) -> bool {
        (self.min..=self.max).contains(&v)
    }
}

impl<T: std::fmt::Display + PartialEq> std::fmt::Display for Span<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}-{}", self.min, self.max)
        }
    }
}

/// Spans as people read them: `1-31`, `44100/48000`.
#[must_use]
pub fn spans_text<T: std::fmt::Display + PartialEq>(spans: &[Span<T>]) -> String {
    spans
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("/")
}

/// Which input device to open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSelector {
    /// The sound system's default input.
    DefaultMic,
    /// What the default output plays: on PulseAudio `<default sink>.monitor`, on Windows the
    /// default output in loopback mode.
    DefaultGameMonitor,
    /// A device by id (exactly), else by name (exactly), else by a case-insensitive part of its
    /// id or name that only one input device has.
    Named(String),
}

impl std::fmt::Display for DeviceSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DefaultMic => f.write_str("the default microphone"),
            Self::DefaultGameMonitor => f.write_str("the monitor of the default output"),
            Self::Named(name) => write!(f, "'{name}'"),
        }
    }
}

/// A device that could not be listed, found or opened. Messages say what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// No sound system answered at all.
    #[error(
        "no sound system is available ({0}): start PulseAudio or PipeWire, or check that this \
         machine has a sound card"
    )]
    NoHost(String),
    /// The sound system Booth has been using stopped answering (a sound server restarting).
    #[error(
        "{0}, where Booth found its devices, is not answering (restarting?); it is used again once it is back"
    )]
    NotAnswering(String),
    /// The sound system answered but failed to list its devices.
    #[error("the sound system could not list its devices: {0}")]
    Backend(String),
    /// No device of the kind asked for matches the name.
    #[error(
        "no {kind} device matches '{wanted}'; the {kind} devices are: {}. Run `booth devices` \
         to see them all",
        quoted(available)
    )]
    NotFound {
        /// "input" or "output".
        kind: &'static str,
        /// What the user asked for.
        wanted: String,
        /// The ids of the input devices that do exist.
        available: Vec<String>,
    },
    /// More than one device of the kind asked for matches the name.
    #[error(
        "'{wanted}' matches more than one {kind} device: {}; give the full id",
        quoted(candidates)
    )]
    Ambiguous {
        /// "input" or "output".
        kind: &'static str,
        /// What the user asked for.
        wanted: String,
        /// The ids of the devices it matches.
        candidates: Vec<String>,
    },
    /// The sound system has no default device of the kind asked for.
    #[error("there is no {what}; pick an input device by name (see `booth devices`)")]
    NoDefault {
        /// What is missing, in words: "default microphone", "monitor of the default output".
        what: String,
    },
    /// The device cannot be opened with a configuration Booth can use.
    #[error("{0}")]
    StreamConfig(String),
    /// The stream could not be started, or stopped working (a device unplugged, the sound
    /// server gone).
    #[error("{0}")]
    Stream(String),
}

fn quoted(names: &[String]) -> String {
    if names.is_empty() {
        return "none".to_owned();
    }
    names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A device as found on the host, with what Booth shows of it.
struct Found {
    device: cpal::Device,
    info: DeviceInfo,
}

/// Where in the order of preference ([`host_named`]) the sound system that last answered
/// stands; `usize::MAX` before any has.
static ANSWERED: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The first sound system that answers, in cpal's order of preference for this platform
/// (PulseAudio before ALSA on Linux), and never one below the one that answered before in this
/// process: a sound server that stops answering (it restarts) is reported as such, not
/// replaced by the raw devices under it. A preferred one that starts later is taken.
/// cpal's `default_host()` would panic where none answers.
fn host() -> Result<cpal::Host, DeviceError> {
    host_named(None)
}

/// The sound system called `name` (cpal's host name: `PulseAudio`, `ALSA`, `WASAPI`...), and
/// no other; with `None`, the one Booth uses (see [`host`]). A device that went away is looked
/// for again on the sound system it was opened on: while a sound server restarts, the next one
/// down (raw ALSA under PulseAudio, say) may answer, and taking a device there would hold the
/// hardware the server needs when it comes back.
fn host_named(name: Option<&str>) -> Result<cpal::Host, DeviceError> {
    if let Some(name) = name {
        let id = cpal::available_hosts()
            .into_iter()
            .find(|id| id.name() == name)
            .ok_or_else(|| DeviceError::NoHost(format!("{name}: not built into Booth")))?;
        return cpal::host_from_id(id).map_err(|e| DeviceError::NoHost(format!("{name}: {e}")));
    }
    let mut failures = Vec::new();
    // BOOTH_AUDIO_HOST picks a host by name (`alsa`, `pulseaudio`, ...) when several exist.
    let wanted = std::env::var("BOOTH_AUDIO_HOST")
        .ok()
        .map(|w| w.to_lowercase());
    // The order of preference, among every sound system built in (a server that is down is not
    // among those cpal calls available).
    let rank = |id: &cpal::HostId| {
        let unwanted = wanted
            .as_ref()
            .is_some_and(|w| !id.name().to_lowercase().contains(w.as_str()));
        let built = cpal::ALL_HOSTS.iter().position(|h| h == id);
        usize::from(unwanted) * cpal::ALL_HOSTS.len() + built.unwrap_or(cpal::ALL_HOSTS.len())
    };
    let mut hosts = cpal::available_hosts();
    hosts.sort_by_key(rank);
    let floor = ANSWERED.load(Ordering::Relaxed);
    for id in hosts {
        if rank(&id) > floor {
            break;
        }
        match cpal::host_from_id(id) {
            Ok(host) => {
                ANSWERED.store(rank(&id), Ordering::Relaxed);
                return Ok(host);
            }
            Err(e) => failures.push(format!("{}: {e}", id.name())),
        }
    }
    // The one that answered before is restarting, not gone. Listing the next one down would
    // offer devices the server needs back (and wake JACK's errors, on ALSA).
    if let Some(before) = cpal::ALL_HOSTS.iter().find(|h| rank(h) == floor) {
        return Err(DeviceError::NotAnswering(before.name().to_owned()));
    }
    Err(DeviceError::NoHost(if failures.is_empty() {
        "cpal found none on this platform".to_owned()
    } else {
        failures.join("; ")
    }))
}

/// Lists every capture and playback device of the sound system Booth uses, inputs first.
///
/// # Errors
///
/// [`DeviceError::NoHost`] when no sound system answers; [`DeviceError::Backend`] when it
/// answers but cannot list its devices.
pub fn list_devices() -> Result<Vec<DeviceInfo>, DeviceError> {
    Ok(found_devices(&host()?)?
        .into_iter()
        .map(|f| f.info)
        .collect())
}

/// Finds and returns the input device the selector names, ready for
/// [`start_capture`](super::start_capture).
///
/// # Errors
///
/// [`DeviceError::NotFound`] (listing the input devices that exist) or
/// [`DeviceError::Ambiguous`] for a name, [`DeviceError::NoDefault`] when the sound system has
/// no such default, and the errors of [`list_devices`].
pub fn open_input(selector: &DeviceSelector) -> Result<(cpal::Device, DeviceInfo), DeviceError> {
    open_input_on(selector, None)
}

/// [`open_input`] on the sound system called `host` only (a [`DeviceInfo::host`]), or on the
/// one Booth uses with `None`.
///
/// # Errors
///
/// As [`open_input`]; [`DeviceError::NoHost`] when that sound system does not answer.
pub fn open_input_on(
    selector: &DeviceSelector,
    host: Option<&str>,
) -> Result<(cpal::Device, DeviceInfo), DeviceError> {
    open_picked(host, |infos| pick(infos, selector))
}

/// The device `choose` picks from the devices of the sound system called `host` (see
/// [`host_named`]), ready to open.
fn open_picked(
    host: Option<&str>,
    choose: impl FnOnce(&[DeviceInfo]) -> Result<usize, DeviceError>,
) -> Result<(cpal::Device, DeviceInfo), DeviceError> {
    let (devices, infos): (Vec<cpal::Device>, Vec<DeviceInfo>) = found_devices(&host_named(host)?)?
        .into_iter()
        .map(|f| (f.device, f.info))
        .unzip();
    let index = choose(&infos)?;
    match (devices.into_iter().nth(index), infos.into_iter().nth(index)) {
        (Some(device), Some(info)) => Ok((lean(device, &info), info)),
        _ => Err(DeviceError::Backend(
            "the device list changed while reading it".to_owned(),
        )),
    }
}

/// A PulseAudio source is recorded from, and a sink played to, on Booth's own lean connection
/// (see `audio::pulse`); any other device as cpal opens it. `BOOTH_CPAL_PULSE_STREAMS=1` keeps
/// cpal's own PulseAudio streams, `=input` or `=output` for that direction only (to compare).
fn lean(device: cpal::Device, info: &DeviceInfo) -> cpal::Device {
    #[cfg(target_os = "linux")]
    let cpal_own = match std::env::var("BOOTH_CPAL_PULSE_STREAMS").as_deref() {
        Err(_) => false,
        Ok("input") => info.direction == Direction::Input,
        Ok("output") => info.direction == Direction::Output,
        Ok(_) => true,
    };
    #[cfg(target_os = "linux")]
    if info.host == "PulseAudio" && !cpal_own {
        let own = match info.direction {
            Direction::Input => super::pulse::PulseDevice::source(&device, &info.id, &info.name),
            Direction::Output => super::pulse::PulseDevice::sink(&device, &info.id, &info.name),
        };
        if let Ok(own) = own {
            return own.into_cpal();
        }
    }
    let _ = info;
    device
}

/// Finds an output device by id, name or a unique part of either (as [`open_input`] does for
/// inputs), for playing the room's voices to the host.
///
/// # Errors
/// No sound system, or no output (or more than one) matches `wanted`; the error lists them.
pub fn open_output(wanted: &str) -> Result<(cpal::Device, DeviceInfo), DeviceError> {
    open_output_on(wanted, None)
}

/// [`open_output`] on the sound system called `host` only, or on the one Booth uses with
/// `None`.
///
/// # Errors
///
/// As [`open_output`]; [`DeviceError::NoHost`] when that sound system does not answer.
pub fn open_output_on(
    wanted: &str,
    host: Option<&str>,
) -> Result<(cpal::Device, DeviceInfo), DeviceError> {
    open_picked(host, |infos| pick_named(infos, wanted, Direction::Output))
}

/// Whether the sound system the device `info` describes was opened on still has it. Blocks for
/// a round trip to the sound server: never call it from an audio callback.
pub(crate) fn still_present(info: &DeviceInfo) -> Result<bool, DeviceError> {
    // Its own sound system gone is the device gone (another answering instead says nothing).
    let Ok(host) = host_named(Some(&info.host)) else {
        return Ok(false);
    };
    let id = info.id.strip_prefix("loopback:").unwrap_or(&info.id);
    let mut devices = host
        .devices()
        .map_err(|e| DeviceError::Backend(e.to_string()))?;
    Ok(devices.any(|d| d.id().is_ok_and(|d| d.id() == id)))
}

/// The index in `devices` of the input device `selector` names.
fn pick(devices: &[DeviceInfo], selector: &DeviceSelector) -> Result<usize, DeviceError> {
    let inputs = || {
        devices
            .iter()
            .enumerate()
            .filter(|(_, d)| d.direction == Direction::Input)
    };
    match selector {
        DeviceSelector::DefaultMic => {
            let (i, d) =
                inputs()
                    .find(|(_, d)| d.is_default)
                    .ok_or_else(|| DeviceError::NoDefault {
                        what: "default microphone".to_owned(),
                    })?;
            // A server without a microphone often makes an output's monitor the default
            // input; taking it as the voice would put the game into the mix twice.
            if d.is_monitor {
                return Err(DeviceError::NoDefault {
                    what: format!(
                        "default microphone (the default input '{}' is the monitor of an output)",
                        d.id
                    ),
                });
            }
            Ok(i)
        }
        DeviceSelector::DefaultGameMonitor => {
            let output = devices
                .iter()
                .find(|d| d.direction == Direction::Output && d.is_default)
                .ok_or_else(|| DeviceError::NoDefault {
                    what: "default output to capture game audio from".to_owned(),
                })?;
            let wanted = [
                format!("{}.monitor", output.id),
                format!("loopback:{}", output.id),
            ];
            inputs()
                .find(|(_, d)| d.is_monitor && wanted.contains(&d.id))
                .map(|(i, _)| i)
                .ok_or_else(|| DeviceError::NoDefault {
                    what: format!(
                        "monitor of the default output '{}' on {} (on macOS, install a loopback \
                         device such as BlackHole)",
                        output.id, output.host
                    ),
                })
        }
        DeviceSelector::Named(wanted) => pick_named(devices, wanted, Direction::Input),
    }
}

/// A device of one direction by id (exactly), else by name (exactly), else by a
/// case-insensitive part of its id or name that only one such device has.
fn pick_named(
    devices: &[DeviceInfo],
    wanted: &str,
    direction: Direction,
) -> Result<usize, DeviceError> {
    let of_kind = || {
        devices
            .iter()
            .enumerate()
            .filter(move |(_, d)| d.direction == direction)
    };
    let needle = wanted.to_lowercase();
    let matching = |test: &dyn Fn(&DeviceInfo) -> bool| -> Vec<usize> {
        of_kind().filter(|(_, d)| test(d)).map(|(i, _)| i).collect()
    };
    let tiers = [
        matching(&|d| d.id == wanted),
        matching(&|d| d.name == wanted),
        matching(&|d| {
            d.id.to_lowercase().contains(&needle) || d.name.to_lowercase().contains(&needle)
        }),
    ];
    for matches in tiers {
        match matches.as_slice() {
            [] => {}
            [one] => return Ok(*one),
            many => {
                return Err(DeviceError::Ambiguous {
                    kind: direction.word(),
                    wanted: wanted.to_owned(),
                    candidates: many.iter().map(|&i| devices[i].id.clone()).collect(),
                });
            }
        }
    }
    Err(DeviceError::NotFound {
        kind: direction.word(),
        wanted: wanted.to_owned(),
        available: of_kind().map(|(_, d)| d.id.clone()).collect(),
    })
}

/// Every device of `host`, inputs first. A device that vanishes while being read is left out.
/// What ALSA's plugins print while their devices are probed stays out of the terminal (see
/// `quiet_probe`).
fn found_devices(host: &cpal::Host) -> Result<Vec<Found>, DeviceError> {
    #[cfg(target_os = "linux")]
    if host.id() == cpal::HostId::Alsa {
        return super::quiet_probe::quietly(|| probe_devices(host));
    }
    probe_devices(host)
}

/// Asks every device of `host` what it is and what it takes (see [`found_devices`]).
fn probe_devices(host: &cpal::Host) -> Result<Vec<Found>, DeviceError> {
    let host_name = host.id().name();
    // WASAPI records what an output plays when an output device is opened for input.
    let loopback_outputs = host_name == "WASAPI";
    let defaults = Defaults::of(host);
    let devices: Vec<cpal::Device> = host
        .devices()
        .map_err(|e| DeviceError::Backend(e.to_string()))?
        .collect();

    let mut inputs = Vec::new();
    let mut outputs = Vec::new();
    for device in devices {
        let (Some(id), Ok(description)) = (device_id(&device), device.description()) else {
            continue;
        };
        let named = Named {
            id,
            name: description.name().to_owned(),
            host: host_name,
        };
        if let Some(info) = named.as_input(&device, &defaults) {
            inputs.push(Found {
                device: device.clone(),
                info,
            });
        }
        if let Some(info) = named.as_output(&device, &defaults) {
            if loopback_outputs {
                inputs.push(Found {
                    device: device.clone(),
                    info: loopback_of(&info),
                });
            }
            outputs.push(Found { device, info });
        }
    }
    inputs.extend(outputs);
    Ok(inputs)
}

fn device_id(device: &cpal::Device) -> Option<String> {
    device.id().ok().map(|id| id.id().to_owned())
}

/// The defaults a host's devices are compared with.
struct Defaults {
    input: Option<String>,
    output: Option<String>,
    /// The ids the default output's loopback goes by: `<sink>.monitor`, `loopback:<output>`.
    game: Option<[String; 2]>,
}

impl Defaults {
    fn of(host: &cpal::Host) -> Self {
        let input = host.default_input_device().as_ref().and_then(device_id);
        let output = host.default_output_device().as_ref().and_then(device_id);
        let game = output
            .as_ref()
            .map(|out| [format!("{out}.monitor"), format!("loopback:{out}")]);
        Self {
            input,
            output,
            game,
        }
    }
}

/// What a device's entries share: its id and name, and the sound system it is on.
struct Named<'a> {
    id: String,
    name: String,
    host: &'a str,
}

impl Named<'_> {
    /// The device as an input, when it can say what it records in. A device that cannot say
    /// what it supports cannot be opened either (on ALSA: a plugin with nothing behind it,
    /// such as `jack` with no JACK server): it is left out.
    fn as_input(&self, device: &cpal::Device, defaults: &Defaults) -> Option<DeviceInfo> {
        let ranges: Vec<_> = if device.supports_input() {
            device
                .supported_input_configs()
                .map(Iterator::collect)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        if ranges.is_empty() {
            return None;
        }
        let monitor = self.id.ends_with(".monitor");
        let is_default = defaults.input.as_deref() == Some(self.id.as_str());
        let mut found = self.info(
            Direction::Input,
            is_default,
            monitor,
            native_format(device.default_input_config()),
            &ranges,
        );
        found.is_default_game_audio =
            monitor && defaults.game.as_ref().is_some_and(|g| g.contains(&self.id));
        Some(found)
    }

    /// The device as an output, when it can say what it plays (as [`Self::as_input`]).
    fn as_output(&self, device: &cpal::Device, defaults: &Defaults) -> Option<DeviceInfo> {
        let ranges: Vec<_> = if device.supports_output() {
            device
                .supported_output_configs()
                .map(Iterator::collect)
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        if ranges.is_empty() {
            return None;
        }
        let is_default = defaults.output.as_deref() == Some(self.id.as_str());
        Some(self.info(
            Direction::Output,
            is_default,
            false,
            native_format(device.default_output_config()),
            &ranges,
        ))
    }

    fn info(
        &self,
        direction: Direction,
        is_default: bool,
        is_monitor: bool,
        native: Option<NativeFormat>,
        ranges: &[cpal::SupportedStreamConfigRange],
    ) -> DeviceInfo {
        let (channels, sample_rates) = compact(ranges);
        DeviceInfo {
            id: self.id.clone(),
            name: self.name.clone(),
            host: self.host.to_owned(),
            direction,
            is_default,
            is_monitor,
            is_default_game_audio: false,
            native,
            channels,
            sample_rates,
        }
    }
}

/// The input that records what `output` plays (WASAPI loopback).
fn loopback_of(output: &DeviceInfo) -> DeviceInfo {
    DeviceInfo {
        id: format!("loopback:{}", output.id),
        name: format!("{} (loopback)", output.name),
        direction: Direction::Input,
        is_default: false,
        is_monitor: true,
        is_default_game_audio: output.is_default,
        ..output.clone()
    }
}

/// The format a device runs at, where its sound system says.
fn native_format<E>(config: Result<cpal::SupportedStreamConfig, E>) -> Option<NativeFormat> {
    config.ok().map(|c| NativeFormat {
        channels: c.channels(),
        sample_rate: c.sample_rate(),
        sample_format: c.sample_format().to_string(),
    })
}

/// The channel counts and sample rates of all supported ranges, each merged into spans.
fn compact(ranges: &[cpal::SupportedStreamConfigRange]) -> (Vec<Span<u16>>, Vec<Span<u32>>) {
    let channels = merge(ranges.iter().map(|r| Span {
        min: u32::from(r.channels()),
        max: u32::from(r.channels()),
    }))
    .into_iter()
    .map(|s| Span {
        min: u16::try_from(s.min).unwrap_or(u16::MAX),
        max: u16::try_from(s.max).unwrap_or(u16::MAX),
    })
    .collect();
    let rates = merge(ranges.iter().map(|r| Span {
        min: r.min_sample_rate(),
        max: r.max_sample_rate(),
    }));
    (channels, rates)
}

/// The union of `spans` as ascending spans that neither overlap nor touch (`1-2` and `3-3`
/// are `1-3`).
fn merge(spans: impl Iterator<Item = Span<u32>>) -> Vec<Span<u32>> {
    let mut spans: Vec<Span<u32>> = spans.filter(|s| s.min <= s.max).collect();
    spans.sort_unstable_by_key(|s| s.min);
    let mut merged: Vec<Span<u32>> = Vec::with_capacity(spans.len());
    for s in spans {
        match merged.last_mut() {
            Some(last) if s.min <= last.max.saturating_add(1) => last.max = last.max.max(s.max),
            _ => merged.push(s),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_lists_what_exists() {
        let e = DeviceError::NotFound {
            kind: "input",
            wanted: "USB Mic".into(),
            available: vec!["game.monitor".into(), "mic".into()],
        };
        let msg = e.to_string();
        assert!(msg.contains("'USB Mic'"), "{msg}");
        assert!(msg.contains("'game.monitor', 'mic'"), "{msg}");
    }

    #[test]
    fn rates_are_compact() {
        let range = |lo, hi, ch| {
            cpal::SupportedStreamConfigRange::new(
                ch,
                lo,
                hi,
                cpal::SupportedBufferSize::Unknown,
                cpal::SampleFormat::F32,
            )
        };
        let (ch, rates) = compact(&[range(1, 384_000, 2), range(8_000, 44_100, 1)]);
        assert_eq!(spans_text(&ch), "1-2");
        assert_eq!(spans_text(&rates), "1-384000");
        // An ALSA card that takes listed rates, at 2 or 8 channels.
        let (ch, rates) = compact(&[
            range(48_000, 48_000, 2),
            range(44_100, 44_100, 2),
            range(96_000, 96_000, 8),
            range(48_000, 48_000, 8),
            range(32_000, 32_000, 4),
        ]);
        assert_eq!(spans_text(&ch), "2/4/8");
        assert_eq!(spans_text(&rates), "32000/44100/48000/96000");
        let (ch, _) = compact(&[range(8_000, 8_000, u16::MAX), range(1, 1, u16::MAX - 1)]);
        assert_eq!(
            ch,
            vec![Span {
                min: u16::MAX - 1,
                max: u16::MAX
            }]
        );
    }

    fn dev(id: &str, name: &str, direction: Direction, default: bool) -> DeviceInfo {
        DeviceInfo {
            id: id.into(),
            name: name.into(),
            host: "PulseAudio".into(),
            direction,
            is_default: default,
            is_monitor: id.ends_with(".monitor"),
            is_default_game_audio: id == "game.monitor",
            native: None,
            channels: vec![Span { min: 2, max: 2 }],
            sample_rates: vec![Span {
                min: 48_000,
                max: 48_000,
            }],
        }
    }

    fn pulse() -> Vec<DeviceInfo> {
        vec![
            dev("game.monitor", "Monitor of Game", Direction::Input, false),
            dev(
                "mic_feed.monitor",
                "Monitor of MicFeed",
                Direction::Input,
                false,
            ),
            dev("mic", "Mic", Direction::Input, true),
            dev("game", "Game", Direction::Output, true),
            dev("mic_feed", "MicFeed", Direction::Output, false),
        ]
    }

    fn picked(selector: DeviceSelector) -> Result<String, DeviceError> {
        let d = pulse();
        pick(&d, &selector).map(|i| d[i].id.clone())
    }

    #[test]
    fn selectors_pick_by_id_name_or_unique_part() {
        use DeviceSelector::*;
        assert_eq!(picked(DefaultMic).unwrap(), "mic");
        assert_eq!(picked(DefaultGameMonitor).unwrap(), "game.monitor");
        assert_eq!(picked(Named("mic".into())).unwrap(), "mic");
        assert_eq!(
            picked(Named("Monitor of Game".into())).unwrap(),
            "game.monitor"
        );
        // "game" is an output; among inputs only its monitor has the word.
        assert_eq!(picked(Named("GAME".into())).unwrap(), "game.monitor");
        match picked(Named("monitor".into())) {
            Err(DeviceError::Ambiguous { candidates, .. }) => {
                assert_eq!(candidates, ["game.monitor", "mic_feed.monitor"]);
            }
            other => panic!("expected Ambiguous, got {other:?}"),
        }
        match picked(Named("USB Mic".into())) {
            Err(DeviceError::NotFound { available, .. }) => {
                assert_eq!(available, ["game.monitor", "mic_feed.monitor", "mic"]);
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[test]
    fn a_monitor_is_no_default_microphone() {
        let mut d = pulse();
        d[2].is_default = false;
        d[0].is_default = true;
        let e = pick(&d, &DeviceSelector::DefaultMic).unwrap_err();
        assert!(
            e.to_string().contains("'game.monitor' is the monitor"),
            "{e}"
        );
    }

    #[test]
    fn selector_reads_as_words() {
        assert_eq!(DeviceSelector::Named("mic".into()).to_string(), "'mic'");
    }
}
