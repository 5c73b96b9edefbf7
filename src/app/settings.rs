//! The overlay's settings: a TOML file in the platform's config directory
//! (`~/.config/booth/settings.toml` on Linux), read at start and written when something changes.
//!
//! A file that cannot be read or parsed is reported and replaced by defaults in memory; it is
//! not overwritten until the user changes a setting, so a hand-edited file with a typo is not
//! lost silently. Writes go to a temporary file renamed over the old one, so a full disk leaves
//! the previous settings in place.
//!
//! Nothing here draws (no GUI types) and nothing a file holds makes it panic: a bad value is
//! clamped or the file is reported as a [`SettingsError`].

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dsp::{DuckerParams, ProgramSettings};

/// Why settings could not be read or written. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The file exists but could not be read.
    #[error("cannot read the settings in {}: {source}", .path.display())]
    Read {
        /// The settings file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not TOML, or holds a value of the wrong kind.
    #[error(
        "the settings in {} are not valid ({}); using the defaults until you change one",
        .path.display(),
        .source.message()
    )]
    Invalid {
        /// The settings file.
        path: PathBuf,
        /// Where and why the file does not parse.
        source: toml::de::Error,
    },
    /// The settings could not be written as TOML.
    #[error("cannot save the settings to {}: {source}", .path.display())]
    Serialize {
        /// The settings file.
        path: PathBuf,
        /// Why TOML refused them.
        source: toml::ser::Error,
    },
    /// The directory or the file could not be written; the old file is as it was.
    #[error("cannot save the settings to {}: {source}", .path.display())]
    Write {
        /// The settings file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// Global hotkeys, as `global-hotkey` parses them ("Ctrl+Shift+M", "F9", "Alt+KeyT").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hotkeys {
    /// Mute and unmute the mic.
    pub mute: String,
    /// Hold to talk (when push-to-talk is on).
    pub push_to_talk: String,
    /// Mark a moment in the recording.
    pub mark_moment: String,
    /// Clicks go through the window, or not.
    pub click_through: String,
}

impl Default for Hotkeys {
    fn default() -> Self {
        Self {
            mute: "Ctrl+Shift+KeyM".into(),
            push_to_talk: "Ctrl+Shift+KeyT".into(),
            mark_moment: "Ctrl+Shift+KeyK".into(),
            click_through: "Ctrl+Shift+KeyO".into(),
        }
    }
}

/// Everything the overlay remembers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Your name on stage.
    pub name: String,
    /// The room's title.
    pub title: String,
    /// The game being played.
    pub game: String,
    /// Record each new room as a podcast episode.
    pub record_episode: bool,
    /// A remote room server's base URL; empty runs the server in this process.
    pub server: String,
    /// Push each new room to this Icecast server (`http://source:PASSWORD@host:8000/`); empty
    /// pushes nowhere (a remote server may still push to its own default).
    pub icecast: String,
    /// Where the in-process server listens.
    pub bind: String,
    /// Game audio: a capture device's name; empty is the monitor of the default output.
    pub game_device: String,
    /// The microphone's name; empty is the default input.
    pub mic_device: String,
    /// Where the room's voices play; empty is nowhere (the program still ducks under them).
    pub monitor_device: String,
    /// Game level, dB.
    pub game_gain_db: f32,
    /// Voice level, dB.
    pub mic_gain_db: f32,
    /// How far the game dips under a voice, dB.
    pub duck_depth_db: f32,
    /// ms to the full dip.
    pub duck_attack_ms: f32,
    /// ms the dip holds after the voice.
    pub duck_hold_ms: f32,
    /// ms back to full level.
    pub duck_release_ms: f32,
    /// ms the program waits so the dip is in place before the first word.
    pub duck_lookahead_ms: f32,
    /// Noise suppression on the mic.
    pub noise_suppression: bool,
    /// The mic is live only while the push-to-talk key is held.
    pub push_to_talk: bool,
    /// Global hotkeys.
    pub hotkeys: Hotkeys,
    /// The window shows everything (false: the compact strip).
    pub expanded: bool,
    /// Clicks go through the window to the game (toggle back with the hotkey or the tray).
    pub click_through: bool,
    /// Window position, logical pixels.
    pub window_pos: Option<[f32; 2]>,
    /// Expanded window size, logical pixels.
    pub window_size: Option<[f32; 2]>,
    /// How opaque the window's background is (0.3-1).
    pub opacity: f32,
}

impl Default for Settings {
    fn default() -> Self {
        let duck = DuckerParams::default();
        Self {
            name: String::new(),
            title: "Live review".into(),
            game: String::new(),
            record_episode: false,
            server: String::new(),
            icecast: String::new(),
            bind: "0.0.0.0:8080".into(),
            game_device: String::new(),
            mic_device: String::new(),
            monitor_device: String::new(),
            game_gain_db: 0.0,
            mic_gain_db: 0.0,
            duck_depth_db: duck.depth_db,
            duck_attack_ms: duck.attack_ms,
            duck_hold_ms: duck.hold_ms,
            duck_release_ms: duck.release_ms,
            duck_lookahead_ms: duck.lookahead_ms,
            noise_suppression: true,
            push_to_talk: false,
            hotkeys: Hotkeys::default(),
            expanded: true,
            click_through: false,
            window_pos: None,
            window_size: None,
            opacity: 0.88,
        }
    }
}

impl Settings {
    /// The settings file in the platform's config directory.
    #[must_use]
    pub fn default_path() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "booth")
            .map(|d| d.config_dir().join("settings.toml"))
    }

    /// Reads `path`; a missing file is the defaults.
    ///
    /// # Errors
    /// The file exists but cannot be read or is not valid settings.
    pub fn load(path: &Path) -> Result<Self, SettingsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(source) => {
                return Err(SettingsError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        let mut s: Self = toml::from_str(&text).map_err(|source| SettingsError::Invalid {
            path: path.to_owned(),
            source,
        })?;
        s.clamp();
        Ok(s)
    }

    /// Writes to `path` (creating its directory).
    ///
    /// # Errors
    /// The directory or file cannot be written (the old file stays as it was).
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let write_failed = |source| SettingsError::Write {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(write_failed)?;
        }
        let text = toml::to_string_pretty(self).map_err(|source| SettingsError::Serialize {
            path: path.to_owned(),
            source,
        })?;
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            write_failed(e)
        })?;
        std::fs::rename(&tmp, path).map_err(write_failed)
    }

    /// Brings every value into the range the engine takes (a hand-edited file may not).
    pub fn clamp(&mut self) {
        let fix = |v: &mut f32, lo: f32, hi: f32, default: f32| {
            *v = if v.is_finite() {
                v.clamp(lo, hi)
            } else {
                default
            };
        };
        let d = Self::default();
        fix(&mut self.game_gain_db, -40.0, 20.0, 0.0);
        fix(&mut self.mic_gain_db, -40.0, 20.0, 0.0);
        fix(&mut self.duck_depth_db, 0.0, 40.0, d.duck_depth_db);
        fix(&mut self.duck_attack_ms, 1.0, 500.0, d.duck_attack_ms);
        fix(&mut self.duck_hold_ms, 0.0, 3000.0, d.duck_hold_ms);
        fix(&mut self.duck_release_ms, 10.0, 5000.0, d.duck_release_ms);
        fix(&mut self.duck_lookahead_ms, 0.0, 50.0, d.duck_lookahead_ms);
        fix(&mut self.opacity, 0.3, 1.0, d.opacity);
    }

    /// The engine's settings from these.
    #[must_use]
    pub fn program(&self, muted: bool) -> ProgramSettings {
        ProgramSettings {
            duck: DuckerParams {
                depth_db: self.duck_depth_db,
                attack_ms: self.duck_attack_ms,
                hold_ms: self.duck_hold_ms,
                release_ms: self.duck_release_ms,
                lookahead_ms: self.duck_lookahead_ms,
            },
            game_gain_db: self.game_gain_db,
            voice_gain_db: self.mic_gain_db,
            voice_muted: muted,
            ..ProgramSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_edited_file_out_of_range_is_brought_back() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, "duck_depth_db = 400.0\ntitle = \"Raid night\"\n")?;
        let s = Settings::load(&path)?;
        assert!((s.duck_depth_db - 40.0).abs() < f32::EPSILON);
        assert_eq!(s.title, "Raid night");
        assert_eq!(s.hotkeys, Hotkeys::default());
        Ok(())
    }

    #[test]
    fn a_broken_file_is_a_readable_error_and_is_left_alone()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("settings.toml");
        std::fs::write(&path, "title = [unclosed")?;
        let err = Settings::load(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("not valid"), "{err}");
        assert_eq!(std::fs::read_to_string(&path)?, "title = [unclosed");
        assert!(matches!(
            Settings::load(&path),
            Err(SettingsError::Invalid { .. })
        ));
        Ok(())
    }

    #[test]
    fn a_file_that_cannot_be_read_is_a_read_error_naming_it()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let err = Settings::load(dir.path()).err();
        assert!(
            matches!(&err, Some(SettingsError::Read { path, .. }) if path == dir.path()),
            "{err:?}"
        );
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("cannot read the settings in "), "{text}");
        Ok(())
    }

    #[test]
    fn a_place_that_cannot_be_written_is_a_write_error() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let blocker = dir.path().join("not-a-directory");
        std::fs::write(&blocker, "a file where the settings' directory would be")?;
        let err = Settings::default()
            .save(&blocker.join("settings.toml"))
            .err();
        assert!(matches!(&err, Some(SettingsError::Write { .. })), "{err:?}");
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.starts_with("cannot save the settings to "), "{text}");
        Ok(())
    }
}
