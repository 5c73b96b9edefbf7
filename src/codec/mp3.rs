//! MP3 encoding through the system's LAME (libmp3lame), linked dynamically.
//!
//! LAME is LGPL: Booth links the shared library the system provides (`libmp3lame.so.0`, Debian's
//! `libmp3lame0`; `libmp3lame-dev` to build) and never copies or modifies it, so anyone can
//! replace it with their own build. The README says so.
//!
//! This module is the only place that talks to LAME: a handful of FFI declarations, each call
//! wrapped in a safe method with its safety argument. Never here: files or sockets. Encoded bytes
//! go into the caller's `Vec<u8>`, and the caller writes them where it wants, then writes
//! [`Mp3Encoder::info_tag`] over the stream's first frame.

use std::ffi::{c_float, c_int, c_uchar};
use std::ptr::NonNull;

use super::CodecError;

/// LAME's `lame_global_flags`, never looked inside.
#[repr(C)]
struct LameFlags {
    _opaque: [u8; 0],
}

/// LAME's `MPEG_mode` values.
const MODE_JOINT_STEREO: c_int = 1;
const MODE_MONO: c_int = 3;
/// LAME's `vbr_off`: constant bitrate.
const VBR_OFF: c_int = 0;

#[link(name = "mp3lame")]
#[allow(unsafe_code)]
unsafe extern "C" {
    fn lame_init() -> *mut LameFlags;
    fn lame_close(gfp: *mut LameFlags) -> c_int;
    fn lame_set_in_samplerate(gfp: *mut LameFlags, rate: c_int) -> c_int;
    fn lame_set_out_samplerate(gfp: *mut LameFlags, rate: c_int) -> c_int;
    fn lame_set_num_channels(gfp: *mut LameFlags, channels: c_int) -> c_int;
    fn lame_set_mode(gfp: *mut LameFlags, mode: c_int) -> c_int;
    fn lame_set_VBR(gfp: *mut LameFlags, mode: c_int) -> c_int;
    fn lame_set_brate(gfp: *mut LameFlags, kbps: c_int) -> c_int;
    fn lame_set_quality(gfp: *mut LameFlags, quality: c_int) -> c_int;
    fn lame_set_bWriteVbrTag(gfp: *mut LameFlags, write: c_int) -> c_int;
    fn lame_set_write_id3tag_automatic(gfp: *mut LameFlags, automatic: c_int);
    fn lame_init_params(gfp: *mut LameFlags) -> c_int;
    fn lame_get_encoder_delay(gfp: *const LameFlags) -> c_int;
    fn lame_encode_buffer_interleaved_ieee_float(
        gfp: *mut LameFlags,
        pcm: *const c_float,
        frames: c_int,
        mp3buf: *mut c_uchar,
        mp3buf_size: c_int,
    ) -> c_int;
    fn lame_encode_buffer_ieee_float(
        gfp: *mut LameFlags,
        left: *const c_float,
        right: *const c_float,
        frames: c_int,
        mp3buf: *mut c_uchar,
        mp3buf_size: c_int,
    ) -> c_int;
    fn lame_encode_flush(gfp: *mut LameFlags, mp3buf: *mut c_uchar, size: c_int) -> c_int;
    fn lame_get_lametag_frame(gfp: *const LameFlags, buffer: *mut c_uchar, size: usize) -> usize;
}

/// What to encode and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mp3Settings {
    /// Input and output rate, Hz (MPEG-1 rates: 32,000, 44,100 or 48,000).
    pub sample_rate: u32,
    /// 1 or 2.
    pub channels: u8,
    /// Constant bitrate, kbit/s (an MPEG-1 layer III rate, e.g. 128).
    pub bitrate_kbps: u32,
    /// LAME's algorithm quality, 0 (best, slowest) to 9 (worst, fastest); LAME's own default is 3.
    pub quality: u8,
}

impl Default for Mp3Settings {
    /// What podcast apps expect: 128 kbit/s CBR stereo at 48 kHz, LAME's default quality.
    fn default() -> Self {
        Self {
            sample_rate: 48_000,
            channels: 2,
            bitrate_kbps: 128,
            quality: 3,
        }
    }
}

/// Frames handed to LAME at once: bounds the output buffer a call may need.
const CHUNK_FRAMES: usize = 4_608;
/// LAME's documented worst case for the output of `n` frames: 1.25 n + 7200 bytes.
const CHUNK_OUT_MAX: usize = CHUNK_FRAMES * 5 / 4 + 7_200;
/// The largest LAME/Info tag frame (one frame at 320 kbit/s, 32 kHz) with room to spare.
const INFO_TAG_MAX: usize = 2_880;

/// A constant-bitrate MP3 encoder (LAME) of interleaved `f32` samples, full scale 1.0.
pub struct Mp3Encoder {
    lame: NonNull<LameFlags>,
    settings: Mp3Settings,
    /// Output room for one chunk, reused.
    scratch: Vec<u8>,
    /// Frames per channel given so far.
    frames_in: u64,
}

impl std::fmt::Debug for Mp3Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mp3Encoder")
            .field("settings", &self.settings)
            .field("frames_in", &self.frames_in)
            .finish_non_exhaustive()
    }
}

// SAFETY (of the marker): the LAME state is owned by this value alone and only touched through
// `&mut self` (or `&self` for the read-only getters); LAME keeps no thread-local state, so moving
// the handle to another thread is sound.
#[allow(unsafe_code)]
unsafe impl Send for Mp3Encoder {}

fn check(what: &str, code: c_int) -> Result<(), CodecError> {
    if code < 0 {
        Err(CodecError::InvalidSettings(format!(
            "LAME refused {what} (error {code})"
        )))
    } else {
        Ok(())
    }
}

impl Mp3Encoder {
    /// An encoder with its parameters set; it writes an empty LAME/Info frame first, which
    /// [`info_tag`](Self::info_tag) replaces once the stream is complete.
    ///
    /// # Errors
    /// [`CodecError::InvalidSettings`] for a rate, channel count, bitrate or quality LAME
    /// does not take; [`CodecError::Mp3`] when LAME cannot start at all.
    pub fn new(settings: Mp3Settings) -> Result<Self, CodecError> {
        if !matches!(settings.channels, 1 | 2) {
            return Err(CodecError::UnsupportedChannels(settings.channels));
        }
        if settings.quality > 9 {
            return Err(CodecError::InvalidSettings(format!(
                "LAME quality {} is not 0 to 9",
                settings.quality
            )));
        }
        let rate = c_int::try_from(settings.sample_rate)
            .map_err(|_| CodecError::InvalidSettings("sample rate out of range".into()))?;
        let kbps = c_int::try_from(settings.bitrate_kbps)
            .map_err(|_| CodecError::InvalidSettings("bitrate out of range".into()))?;
        // SAFETY: `lame_init` takes nothing and returns a fresh state or null (checked below).
        #[allow(unsafe_code)]
        let raw = unsafe { lame_init() };
        let lame = NonNull::new(raw)
            .ok_or_else(|| CodecError::Mp3("LAME could not allocate its state".into()))?;
        // From here on Drop closes the state, whatever fails.
        let encoder = Self {
            lame,
            settings,
            scratch: vec![0; CHUNK_OUT_MAX],
            frames_in: 0,
        };
        let g = encoder.lame.as_ptr();
        let mode = if settings.channels == 1 {
            MODE_MONO
        } else {
            MODE_JOINT_STEREO
        };
        // SAFETY: `g` is the live state from `lame_init`, owned by `encoder`; the setters only
        // store plain integers in it.
        #[allow(unsafe_code)]
        unsafe {
            check("the sample rate", lame_set_in_samplerate(g, rate))?;
            check("the output rate", lame_set_out_samplerate(g, rate))?;
            check(
                "the channel count",
                lame_set_num_channels(g, c_int::from(settings.channels)),
            )?;
            check("the stereo mode", lame_set_mode(g, mode))?;
            check("constant bitrate", lame_set_VBR(g, VBR_OFF))?;
            check("the bitrate", lame_set_brate(g, kbps))?;
            check(
                "the quality",
                lame_set_quality(g, c_int::from(settings.quality)),
            )?;
            check("the Info tag", lame_set_bWriteVbrTag(g, 1))?;
            // Tags are Booth's job (ID3v2.4 with chapters), not LAME's.
            lame_set_write_id3tag_automatic(g, 0);
            check("these settings", lame_init_params(g))?;
        }
        Ok(encoder)
    }

    /// The settings it was made with.
    #[must_use]
    pub fn settings(&self) -> Mp3Settings {
        self.settings
    }

    /// Samples per channel LAME adds at the start (the Info tag tells decoders to drop them).
    #[must_use]
    pub fn encoder_delay(&self) -> u32 {
        // SAFETY: a getter on the live state.
        #[allow(unsafe_code)]
        let delay = unsafe { lame_get_encoder_delay(self.lame.as_ptr()) };
        u32::try_from(delay).unwrap_or(0)
    }

    /// Frames per channel encoded so far.
    #[must_use]
    pub fn frames_in(&self) -> u64 {
        self.frames_in
    }

    /// Encodes interleaved samples (whole frames), appending the MP3 bytes that are ready.
    ///
    /// # Errors
    /// [`CodecError::InvalidInput`] for samples that do not form whole frames;
    /// [`CodecError::Mp3`] if LAME fails.
    pub fn encode(&mut self, interleaved: &[f32], out: &mut Vec<u8>) -> Result<(), CodecError> {
        let ch = usize::from(self.settings.channels);
        if !interleaved.len().is_multiple_of(ch) {
            return Err(CodecError::InvalidInput(format!(
                "{} samples are not whole {ch}-channel frames",
                interleaved.len()
            )));
        }
        for chunk in interleaved.chunks(CHUNK_FRAMES * ch) {
            let frames = chunk.len() / ch;
            let g = self.lame.as_ptr();
            let buf = self.scratch.as_mut_ptr();
            // Both fit in c_int: CHUNK_FRAMES and CHUNK_OUT_MAX are small constants.
            let (n, cap) = (frames as c_int, self.scratch.len() as c_int);
            // SAFETY: `chunk` holds `frames * ch` initialised floats (interleaved for stereo;
            // for mono LAME reads `frames` from the "left" pointer and ignores "right");
            // `scratch` is `cap` writable bytes, LAME's documented worst case for `frames`
            // frames; both outlive the call and LAME keeps neither pointer.
            #[allow(unsafe_code)]
            let written = unsafe {
                if ch == 2 {
                    lame_encode_buffer_interleaved_ieee_float(g, chunk.as_ptr(), n, buf, cap)
                } else {
                    lame_encode_buffer_ieee_float(g, chunk.as_ptr(), chunk.as_ptr(), n, buf, cap)
                }
            };
            let written = usize::try_from(written)
                .map_err(|_| CodecError::Mp3(format!("LAME failed to encode (error {written})")))?;
            out.extend_from_slice(&self.scratch[..written]);
            self.frames_in += frames as u64;
        }
        Ok(())
    }

    /// Encodes what LAME still holds (padding the last frame) and appends the last bytes.
    /// Call once, at the end; then [`info_tag`](Self::info_tag).
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        let cap = self.scratch.len() as c_int;
        // SAFETY: `scratch` is `cap` writable bytes (more than the 7,200 LAME asks for a flush)
        // and outlives the call.
        #[allow(unsafe_code)]
        let written =
            unsafe { lame_encode_flush(self.lame.as_ptr(), self.scratch.as_mut_ptr(), cap) };
        // A negative count means LAME had nothing it could write: nothing to append.
        if let Ok(written) = usize::try_from(written) {
            out.extend_from_slice(&self.scratch[..written.min(self.scratch.len())]);
        }
    }

    /// The LAME/Info tag frame to write over the stream's first frame once the stream is
    /// flushed: it gives decoders the encoder delay, the padding and the exact length, so the
    /// MP3 decodes to exactly the samples that went in. Empty if LAME has none.
    #[must_use]
    pub fn info_tag(&self) -> Vec<u8> {
        let mut tag = vec![0u8; INFO_TAG_MAX];
        // SAFETY: `tag` is `INFO_TAG_MAX` writable bytes; LAME writes at most `size` bytes and
        // returns how many (or the size it needs, larger than `size`, writing nothing).
        #[allow(unsafe_code)]
        let n = unsafe { lame_get_lametag_frame(self.lame.as_ptr(), tag.as_mut_ptr(), tag.len()) };
        if n > tag.len() {
            return Vec::new();
        }
        tag.truncate(n);
        tag
    }
}

impl Drop for Mp3Encoder {
    fn drop(&mut self) {
        // SAFETY: the state came from `lame_init`, is closed exactly once, here, and nothing
        // uses it afterwards.
        #[allow(unsafe_code)]
        unsafe {
            lame_close(self.lame.as_ptr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(frames: usize) -> Vec<f32> {
        (0..frames)
            .flat_map(|i| {
                let x = (i as f32 * 2.0 * std::f32::consts::PI * 440.0 / 48_000.0).sin() * 0.5;
                [x, x]
            })
            .collect()
    }

    #[test]
    fn a_second_of_tone_makes_frames_of_the_bitrate_and_an_info_tag() {
        let mut enc = Mp3Encoder::new(Mp3Settings::default()).unwrap();
        let mut out = Vec::new();
        enc.encode(&tone(48_000), &mut out).unwrap();
        enc.flush(&mut out);
        // An MPEG-1 layer III frame header: sync, then 128 kbit/s at 48 kHz.
        assert_eq!(out[0], 0xFF);
        assert_eq!(out[1] & 0xE0, 0xE0);
        // 128 kbit/s for about a second, plus the Info frame and padding.
        assert!((15_000..20_000).contains(&out.len()), "{} bytes", out.len());
        let tag = enc.info_tag();
        assert_eq!(tag.len(), 384, "one 128 kbit/s frame at 48 kHz");
        assert!(tag.windows(4).any(|w| w == b"Info"));
        assert!(enc.encoder_delay() > 0);
        assert_eq!(enc.frames_in(), 48_000);
    }

    #[test]
    fn settings_lame_refuses_are_errors() {
        let bad = Mp3Settings {
            channels: 3,
            ..Mp3Settings::default()
        };
        assert!(matches!(
            Mp3Encoder::new(bad),
            Err(CodecError::UnsupportedChannels(3))
        ));
        let bad = Mp3Settings {
            quality: 12,
            ..Mp3Settings::default()
        };
        assert!(Mp3Encoder::new(bad).is_err());
        let half_frame = [0.0f32; 3];
        let mut enc = Mp3Encoder::new(Mp3Settings::default()).unwrap();
        assert!(enc.encode(&half_frame, &mut Vec::new()).is_err());
    }
}
