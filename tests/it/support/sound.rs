//! The test sound server (`tests/sound-server.sh`: a private PulseAudio with sink `game`, whose
//! monitor is game audio, sink `mic_feed` behind source `mic`, and sink `phones`), and what the
//! tests do with it: play into a sink, record what an output played, load a device for one
//! test, or run a server of a test's own. Never touches the desktop's own sound server.
//!
//! Without the sound server (`PULSE_SERVER` unset) the tests that need it skip, unless
//! `BOOTH_REQUIRE_SOUND=1` (as `tests/run` sets), where they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Process, run, tempdir};

/// Whether the test sound server is up. Skips (false) without it, or fails the test when
/// `BOOTH_REQUIRE_SOUND=1`.
pub fn sound_server() -> bool {
    if std::env::var_os("PULSE_SERVER").is_some() {
        return true;
    }
    assert!(
        std::env::var("BOOTH_REQUIRE_SOUND").map_or(true, |v| v != "1"),
        "BOOTH_REQUIRE_SOUND=1 but no sound server: source tests/sound-server.sh first"
    );
    eprintln!("skipping: no test sound server (PULSE_SERVER unset); run `. tests/sound-server.sh`");
    false
}

/// Held by a test while it plays into the sound server's sinks, so that no two tones mix: an
/// exclusive lock on a file beside the server's socket. It serialises threads and processes
/// alike (nextest runs each test in a process of its own). Released on drop.
pub fn sound_lock() -> std::fs::File {
    let server = std::env::var("PULSE_SERVER").unwrap_or_default();
    let dir = server
        .strip_prefix("unix:")
        .and_then(|socket| Path::new(socket).parent())
        .map_or_else(std::env::temp_dir, Path::to_path_buf);
    let path = dir.join("booth-tests.lock");
    let file = std::fs::File::options()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .unwrap_or_else(|e| panic!("{path:?}: {e}"));
    file.lock().unwrap_or_else(|e| panic!("lock {path:?}: {e}"));
    file
}

/// `paplay` of `wav` into `sink`, stopped when the test ends.
pub fn play(sink: &str, wav: &Path) -> Process {
    Process::spawn(
        Command::new("paplay")
            .arg(format!("--device={sink}"))
            .arg(wav)
            .stdout(Stdio::null()),
    )
}

/// What plays on an output, recorded from its monitor (`parec`, 48 kHz mono f32) into a file
/// until [`Ears::heard`] stops it (or it is dropped).
pub struct Ears {
    parec: Process,
    file: PathBuf,
}

impl Ears {
    /// Starts recording `sink`'s monitor into `file`.
    pub fn on(sink: &str, file: &Path) -> Self {
        let parec = Process::spawn(Command::new("sh").arg("-c").arg(format!(
            "exec parec --device={sink}.monitor --format=float32le --channels=1 \
             --rate=48000 --raw --latency-msec=20 > '{}'",
            file.display()
        )));
        Self {
            parec,
            file: file.to_owned(),
        }
    }

    /// Stops recording; what was heard.
    pub fn heard(self) -> Vec<f32> {
        drop(self.parec);
        std::fs::read(&self.file)
            .unwrap_or_default()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    }
}

/// A PulseAudio module loaded for one test and unloaded when it ends.
pub struct PulseModule(Option<String>);

impl PulseModule {
    pub fn load(args: &[&str]) -> Self {
        let out = run(Command::new("pactl").arg("load-module").args(args));
        Self(Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }

    /// A null sink named `name` at `rate`: an output a test can take away and give back.
    pub fn null_sink(name: &str, rate: u32) -> Self {
        Self::load(&[
            "module-null-sink",
            &format!("sink_name={name}"),
            &format!("rate={rate}"),
        ])
    }

    pub fn unload(&mut self) {
        if let Some(index) = self.0.take() {
            let _ = Command::new("pactl")
                .args(["unload-module", &index])
                .status();
        }
    }
}

impl Drop for PulseModule {
    fn drop(&mut self) {
        self.unload();
    }
}

/// A sound server of a test's own (`tests/sound-server.sh` in a directory of its own), for a
/// test that stops and restarts it, or changes its defaults: the shared one stays up, as every
/// other test expects it. Stopped, with its keep-alive players, when dropped.
pub struct OwnSoundServer {
    dir: tempfile::TempDir,
}

impl OwnSoundServer {
    pub fn start() -> Self {
        let server = Self { dir: tempdir() };
        server.up();
        server
    }

    /// `cmd` as a client of this server (PulseAudio clients, and ALSA's pulse plugin).
    pub fn client<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        let dir = self.dir.path();
        cmd.env("SOUND_DIR", dir)
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env(
                "PULSE_SERVER",
                format!("unix:{}", dir.join("pulse.sock").display()),
            )
            .env("PULSE_COOKIE", dir.join("cookie"))
    }

    /// Makes this process a client of this server (what `client` gives a command), for code
    /// that runs in the test itself. Only for a test in a process of its own (nextest runs
    /// each so); the caller checks.
    #[cfg(feature = "gui")]
    #[allow(unsafe_code)]
    pub fn serve_this_process(&self) {
        let mut cmd = Command::new("true");
        self.client(&mut cmd);
        for (key, value) in cmd.get_envs() {
            // SAFETY: set before the code under test starts a thread that reads the
            // environment, in a process that runs this one test (nextest); no other thread
            // of the test harness reads it meanwhile.
            unsafe {
                match value {
                    Some(v) => std::env::set_var(key, v),
                    None => std::env::remove_var(key),
                }
            }
        }
    }

    /// `paplay ARGS FILE` on this server.
    pub fn play(&self, file: &Path, args: &[&str]) -> Process {
        Process::spawn(self.client(Command::new("paplay").args(args).arg(file)))
    }

    /// Starts the server (again).
    pub fn up(&self) {
        assert!(self.script(false), "tests/sound-server.sh did not start");
    }

    /// Stops the server as a crash or a restart of the desktop's sound server would.
    pub fn down(&self) {
        run(self.client(Command::new("pulseaudio").arg("--kill")));
    }

    /// Runs `tests/sound-server.sh`: sourced to start (as its users do), run to stop.
    fn script(&self, stop: bool) -> bool {
        let mut cmd = Command::new("sh");
        if stop {
            cmd.args(["tests/sound-server.sh", "stop"]);
        } else {
            cmd.args(["-c", ". tests/sound-server.sh"]);
        }
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(Stdio::null());
        self.client(&mut cmd).status().is_ok_and(|s| s.success())
    }
}

impl Drop for OwnSoundServer {
    fn drop(&mut self) {
        self.script(true);
    }
}
