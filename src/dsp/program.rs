//! The program chain: game and voice in, the finished program out. `booth mix` runs it on files;
//! the live engine runs it on devices. Same object, same sound.
//!
//! It never allocates after `new` and never blocks: the engine calls it once per 20 ms block.

use super::{
    DelayLine, DspError, Ducker, DuckerParams, Key, Limiter, LoudnessMeter, check_range,
    db_to_gain, mix_into,
};

/// Everything a user can set on the program chain.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProgramSettings {
    /// Ducking.
    pub duck: DuckerParams,
    /// Game level, dB.
    pub game_gain_db: f32,
    /// Voice level, dB.
    pub voice_gain_db: f32,
    /// A gain on the whole mix before the limiter, dB (loudness normalisation sets it).
    pub output_gain_db: f32,
    /// Limiter ceiling, dBFS.
    pub ceiling_db: f32,
    /// The voice is muted: silent in the mix, and it does not duck the game.
    pub voice_muted: bool,
    /// Voice gate: how far the voice is turned down between phrases, dB (0 = off). It opens
    /// with the ducker's lookahead, so no first syllable is clipped.
    pub voice_gate_db: f32,
}

impl Default for ProgramSettings {
    fn default() -> Self {
        Self {
            duck: DuckerParams::default(),
            game_gain_db: 0.0,
            voice_gain_db: 0.0,
            output_gain_db: 0.0,
            ceiling_db: -1.0,
            voice_muted: false,
            voice_gate_db: 0.0,
        }
    }
}

impl ProgramSettings {
    /// Checks every value against its range.
    ///
    /// # Errors
    /// The first value out of range.
    pub fn validate(&self) -> Result<(), DspError> {
        self.duck.validate()?;
        check_range(
            "game gain (dB)",
            self.game_gain_db,
            -60.0,
            24.0,
            "-60 to 24",
        )?;
        check_range(
            "voice gain (dB)",
            self.voice_gain_db,
            -60.0,
            24.0,
            "-60 to 24",
        )?;
        check_range(
            "output gain (dB)",
            self.output_gain_db,
            -60.0,
            40.0,
            "-60 to 40",
        )?;
        check_range("ceiling (dBFS)", self.ceiling_db, -30.0, 0.0, "-30 to 0")?;
        check_range("voice gate (dB)", self.voice_gate_db, 0.0, 60.0, "0 to 60")?;
        Ok(())
    }
}

/// Game (stereo) + voice (mono) -> ducked, mixed, limited, metered stereo program at 48 kHz.
#[derive(Debug)]
pub struct ProgramMix {
    settings: ProgramSettings,
    ducker: Ducker,
    voice_delay: DelayLine,
    limiter: Limiter,
    meters: LoudnessMeter,
    game: Vec<f32>,
    gains: Vec<f32>,
    gate: Vec<f32>,
    voice: Vec<f32>,
    max_block: usize,
}

impl ProgramMix {
    /// A chain for blocks of up to `max_block` frames (larger calls are cut internally).
    ///
    /// # Errors
    /// Settings out of range.
    pub fn new(settings: ProgramSettings, max_block: usize) -> Result<Self, DspError> {
        settings.validate()?;
        let max_block = max_block.max(1);
        // Two keys: the host's voice, and the remote voices the host hears (so guests duck the
        // game as the host does).
        let mut ducker = Ducker::new(settings.duck, 2)?;
        ducker.set_voice_gate(settings.voice_gate_db)?;
        let voice_delay = DelayLine::new(ducker.latency_frames(), 1);
        Ok(Self {
            settings,
            ducker,
            voice_delay,
            limiter: Limiter::new(settings.ceiling_db)?,
            meters: LoudnessMeter::new(),
            game: vec![0.0; max_block * 2],
            gains: vec![0.0; max_block],
            gate: vec![0.0; max_block],
            voice: vec![0.0; max_block],
            max_block,
        })
    }

    /// The settings in use.
    #[must_use]
    pub fn settings(&self) -> ProgramSettings {
        self.settings
    }

    /// Changes gains, mute and ducking on the fly (the lookahead and ceiling stay as built).
    ///
    /// # Errors
    /// Settings out of range.
    pub fn set_settings(&mut self, settings: ProgramSettings) -> Result<(), DspError> {
        settings.validate()?;
        self.ducker.set_params(settings.duck)?;
        self.ducker.set_voice_gate(settings.voice_gate_db)?;
        self.settings = ProgramSettings {
            ceiling_db: self.settings.ceiling_db,
            duck: self.ducker.params(),
            ..settings
        };
        Ok(())
    }

    /// How far the output lags the input, in frames (lookahead + limiter).
    #[must_use]
    pub fn latency_frames(&self) -> usize {
        self.ducker.latency_frames() + self.limiter.latency_frames()
    }

    /// The loudness meter on the output.
    pub fn meters(&mut self) -> &mut LoudnessMeter {
        &mut self.meters
    }

    /// The ducker (for its reduction and ducked-time readings).
    #[must_use]
    pub fn ducker(&self) -> &Ducker {
        &self.ducker
    }

    /// Runs one block: `game` stereo interleaved, `voice` mono, both 48 kHz and the same number of
    /// frames (the shorter one counts as silence after its end); writes as many stereo frames to
    /// `out` (which must hold them). Never allocates.
    pub fn process(&mut self, game: &[f32], voice: &[f32], out: &mut [f32]) {
        self.process_keyed(game, voice, &[], out);
    }

    /// As [`process`](Self::process), with `remote` (mono, 48 kHz): the room's other voices as
    /// the host hears them. They duck the game like the host's voice but are not mixed in (the
    /// room mixes everyone; this is the host's own program).
    pub fn process_keyed(&mut self, game: &[f32], voice: &[f32], remote: &[f32], out: &mut [f32]) {
        let frames = (game.len() / 2).max(voice.len()).min(out.len() / 2);
        let mut done = 0;
        while done < frames {
            let n = (frames - done).min(self.max_block);
            let remote = remote.get(done..).unwrap_or(&[]);
            self.run_block(
                game,
                voice,
                remote,
                done,
                n,
                &mut out[done * 2..(done + n) * 2],
            );
            done += n;
        }
    }

    fn run_block(
        &mut self,
        game: &[f32],
        voice: &[f32],
        remote: &[f32],
        start: usize,
        n: usize,
        out: &mut [f32],
    ) {
        let g = &mut self.game[..n * 2];
        let have = (game.len() / 2).saturating_sub(start).min(n);
        g[..have * 2].copy_from_slice(&game[start * 2..(start + have) * 2]);
        g[have * 2..].fill(0.0);

        let v = &mut self.voice[..n];
        let have = voice.len().saturating_sub(start).min(n);
        v[..have].copy_from_slice(&voice[start..start + have]);
        v[have..].fill(0.0);

        let muted = self.settings.voice_muted;
        let key = [
            Key { samples: v, muted },
            Key {
                samples: &remote[..remote.len().min(n)],
                muted: false,
            },
        ];
        let gated = self.settings.voice_gate_db > 0.0;
        let gate = if gated {
            &mut self.gate[..n]
        } else {
            &mut [][..]
        };
        self.ducker
            .process_gated(g, &key, &mut self.gains[..n], gate);
        self.voice_delay.process(v);
        if gated {
            for (s, &k) in v.iter_mut().zip(&self.gate[..n]) {
                *s *= k;
            }
        }

        let voice_gain = if muted {
            0.0
        } else {
            db_to_gain(self.settings.voice_gain_db)
        };
        mix_into(
            g,
            &self.gains[..n],
            db_to_gain(self.settings.game_gain_db),
            v,
            voice_gain,
            out,
        );
        let out_gain = db_to_gain(self.settings.output_gain_db);
        if out_gain != 1.0 {
            out.iter_mut().for_each(|s| *s *= out_gain);
        }
        self.limiter.process(out);
        self.meters.process(out);
    }

    /// Back to rest (silent delays, no dip, meters cleared).
    pub fn reset(&mut self) {
        self.ducker.reset();
        self.voice_delay.reset();
        self.limiter.reset();
        self.meters.reset();
    }
}
