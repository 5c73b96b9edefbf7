//! What cpal sees of a PulseAudio device on Booth's own connection: its name, direction and
//! the formats it opens with, and the calls that open a stream on it.
//!
//! Never here: socket IO. Opening is handed to [`PulseStream::open`].

use std::time::Duration;

use cpal::traits::DeviceTrait;
use cpal::{
    Data, DeviceDescription, DeviceDescriptionBuilder, DeviceDirection, DeviceId, Error, ErrorKind,
    FrameCount, InputCallbackInfo, OutputCallbackInfo, SampleFormat, StreamConfig,
    SupportedBufferSize, SupportedStreamConfig, SupportedStreamConfigRange,
};

use super::format::Format;
use super::pump::Way;
use super::stream::PulseStream;

/// How long connecting and creating a stream may take when the caller gives no timeout.
const SETUP_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest period Booth asks for: two seconds at 48 kHz.
pub(super) const MAX_PERIOD_FRAMES: FrameCount = 96_000;

/// A PulseAudio device on Booth's own connection.
///
/// A source (a microphone, or the `*.monitor` of an output) is captured as 16-bit integers
/// when that is the source's own format (so the server converts nothing and half the bytes
/// cross the socket), else as `f32`; in its own channel count or, on request, in one (the
/// server downmixes, and sends half the bytes of a stereo microphone).
///
/// A sink (an output: headphones, speakers) is played in one or two channels at any rate, as
/// 16-bit integers or `f32`: the server converts to what the sink runs at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PulseDevice {
    /// The device's PulseAudio name (`game.monitor`, `phones`), as cpal's host lists it.
    id: String,
    /// What people see.
    name: String,
    /// A sink (played to), not a source (recorded from).
    output: bool,
    /// At most two: the server downmixes anything wider (game audio is stereo).
    channels: u16,
    /// The device's own rate: no resampling on the server.
    sample_rate: u32,
    /// The device's own format if that is 16-bit, else f32.
    format: Format,
}

impl PulseDevice {
    /// The source cpal's PulseAudio host lists as `device`, named `id`, in the channel count
    /// (at most two) and rate it has.
    ///
    /// # Errors
    /// The source cannot say its format (it went away while being asked).
    pub fn source(device: &cpal::Device, id: &str, name: &str) -> Result<Self, Error> {
        Self::of(device.default_input_config()?, id, name, false)
    }

    /// The sink cpal's PulseAudio host lists as `device`, named `id`.
    ///
    /// # Errors
    /// The sink cannot say its format (it went away while being asked).
    pub fn sink(device: &cpal::Device, id: &str, name: &str) -> Result<Self, Error> {
        Self::of(device.default_output_config()?, id, name, true)
    }

    fn of(own: SupportedStreamConfig, id: &str, name: &str, output: bool) -> Result<Self, Error> {
        Ok(Self {
            id: id.to_owned(),
            name: name.to_owned(),
            output,
            channels: own.channels().clamp(1, 2),
            sample_rate: own.sample_rate(),
            format: Format::of(own.sample_format()).unwrap_or(Format::F32),
        })
    }

    /// As a cpal device.
    pub fn into_cpal(self) -> cpal::Device {
        cpal::Device::from(cpal::platform::CustomDevice::from_device(self))
    }

    fn config(&self) -> SupportedStreamConfig {
        SupportedStreamConfig::new(
            self.channels,
            self.sample_rate,
            SupportedBufferSize::Range {
                min: 1,
                max: MAX_PERIOD_FRAMES,
            },
            self.format.sample_format(),
        )
    }

    /// The configurations in `channels` and `rates`, each in the device's own format or f32.
    fn ranges(&self, channels: [u16; 2], rates: (u32, u32)) -> Vec<SupportedStreamConfigRange> {
        let mut configs = Vec::new();
        for channels in channels {
            for format in [self.format.sample_format(), SampleFormat::F32] {
                let config = SupportedStreamConfigRange::new(
                    channels,
                    rates.0,
                    rates.1,
                    SupportedBufferSize::Range {
                        min: 1,
                        max: MAX_PERIOD_FRAMES,
                    },
                    format,
                );
                if !configs.contains(&config) {
                    configs.push(config);
                }
            }
        }
        configs
    }

    fn not_this_way(&self) -> Error {
        Error::with_message(
            ErrorKind::UnsupportedOperation,
            if self.output {
                "a PulseAudio sink is played to, not recorded from (record its .monitor)"
            } else {
                "a PulseAudio source is recorded from, not played to"
            },
        )
    }
}

impl std::fmt::Display for PulseDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

/// Whether `device` is a [`PulseDevice`]: its stream reports a vanished device itself, and is
/// served by [`pump_now`].
pub fn is_lean(device: &cpal::Device) -> bool {
    device
        .id()
        .is_ok_and(|id| id.host() == cpal::HostId::Custom && id.id().starts_with("pulse:"))
}

impl DeviceTrait for PulseDevice {
    type SupportedInputConfigs = std::vec::IntoIter<SupportedStreamConfigRange>;
    type SupportedOutputConfigs = std::vec::IntoIter<SupportedStreamConfigRange>;
    type Stream = PulseStream;

    fn description(&self) -> Result<DeviceDescription, Error> {
        Ok(DeviceDescriptionBuilder::new(&self.name)
            .driver("PulseAudio")
            .direction(if self.output {
                DeviceDirection::Output
            } else {
                DeviceDirection::Input
            })
            .build())
    }

    fn id(&self) -> Result<DeviceId, Error> {
        Ok(DeviceId::new(
            cpal::HostId::Custom,
            format!("pulse:{}", self.id),
        ))
    }

    fn supported_input_configs(&self) -> Result<Self::SupportedInputConfigs, Error> {
        if self.output {
            return Ok(Vec::new().into_iter());
        }
        // Its own channels, or mono, at its own rate.
        Ok(self
            .ranges([self.channels, 1], (self.sample_rate, self.sample_rate))
            .into_iter())
    }

    fn supported_output_configs(&self) -> Result<Self::SupportedOutputConfigs, Error> {
        if !self.output {
            return Ok(Vec::new().into_iter());
        }
        // Mono or stereo, at any rate: the server converts.
        Ok(self
            .ranges([self.channels, 3 - self.channels], PLAY_RATES)
            .into_iter())
    }

    fn default_input_config(&self) -> Result<SupportedStreamConfig, Error> {
        if self.output {
            return Err(self.not_this_way());
        }
        Ok(self.config())
    }

    fn default_output_config(&self) -> Result<SupportedStreamConfig, Error> {
        if !self.output {
            return Err(self.not_this_way());
        }
        Ok(self.config())
    }

    fn build_input_stream_raw<D, E>(
        &self,
        config: StreamConfig,
        sample_format: SampleFormat,
        data_callback: D,
        error_callback: E,
        timeout: Option<Duration>,
    ) -> Result<Self::Stream, Error>
    where
        D: FnMut(&Data, &InputCallbackInfo) + Send + 'static,
        E: FnMut(Error) + Send + 'static,
    {
        if self.output {
            return Err(self.not_this_way());
        }
        let format = checked_format(&config, sample_format, "captured")?;
        PulseStream::open(
            &self.id,
            &config,
            format,
            timeout.unwrap_or(SETUP_TIMEOUT),
            Way::Record {
                data: Box::new(data_callback),
            },
            Box::new(error_callback),
        )
    }

    fn build_output_stream_raw<D, E>(
        &self,
        config: StreamConfig,
        sample_format: SampleFormat,
        data_callback: D,
        error_callback: E,
        timeout: Option<Duration>,
    ) -> Result<Self::Stream, Error>
    where
        D: FnMut(&mut Data, &OutputCallbackInfo) + Send + 'static,
        E: FnMut(Error) + Send + 'static,
    {
        if !self.output {
            return Err(self.not_this_way());
        }
        let format = checked_format(&config, sample_format, "played")?;
        if !(PLAY_RATES.0..=PLAY_RATES.1).contains(&config.sample_rate) {
            return Err(Error::with_message(
                ErrorKind::UnsupportedConfig,
                format!(
                    "a PulseAudio sink is played at {} to {} Hz, not {}",
                    PLAY_RATES.0, PLAY_RATES.1, config.sample_rate
                ),
            ));
        }
        PulseStream::open(
            &self.id,
            &config,
            format,
            timeout.unwrap_or(SETUP_TIMEOUT),
            Way::Play {
                data: Box::new(data_callback),
                outbox: Vec::new(),
                sent: 0,
            },
            Box::new(error_callback),
        )
    }
}

/// The rates a sink is played at (the server resamples to the sink's own).
const PLAY_RATES: (u32, u32) = (8_000, 192_000);

/// The format a stream of `config` in `sample_format` is carried in, if Booth carries it.
fn checked_format(
    config: &StreamConfig,
    sample_format: SampleFormat,
    how: &str,
) -> Result<Format, Error> {
    Format::of(sample_format)
        .filter(|_| (1..=2).contains(&config.channels))
        .ok_or_else(|| {
            Error::with_message(
                ErrorKind::UnsupportedConfig,
                format!(
                    "a PulseAudio device is {how} as 1 or 2 channels of i16 or f32, not {} of \
                     {sample_format}",
                    config.channels
                ),
            )
        })
}
