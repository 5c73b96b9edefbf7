//! The programs a test runs: external tools (skipped or required), and child processes that
//! never outlive the test, `booth` itself with its output followed. Also what the tests read of a
//! running Booth from outside: its `/metrics`, and how often its threads wake.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Whether an external program is on PATH. Tests that need one skip without it, unless
/// `BOOTH_REQUIRE_TOOLS=1` (as `tests/run` sets), where a missing tool fails the test.
pub fn have_tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var("BOOTH_REQUIRE_TOOLS").is_err(),
            "{name} is required (BOOTH_REQUIRE_TOOLS is set) but not installed"
        );
        eprintln!("skipping: {name} is not installed");
    }
    found
}

/// Runs a command, failing the test with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// This test binary, set to run one of its tests again in a child process, for a test that
/// needs a process of its own (another environment, another sound server) for part of its
/// work: `test` is that test's path as `module_path!()` and its name make it.
pub fn test_in_a_child(test: &str) -> Command {
    let (_binary, path) = test
        .split_once("::")
        .unwrap_or_else(|| panic!("not a test's path: {test}"));
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", path, "--nocapture"]);
    cmd
}

/// The `booth` binary under test.
pub fn booth() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_booth"))
}

/// The body of a GET, as text.
pub fn http_get(url: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { reqwest::get(url).await.unwrap().text().await.unwrap() })
}

/// One counter or gauge from a Booth server's `/metrics`.
pub fn metric(server: &str, name: &str) -> u64 {
    let text = http_get(&format!("{server}/metrics"));
    metric_of(&text, name).unwrap_or_else(|| panic!("no booth_{name} in /metrics:\n{text}"))
}

/// One counter or gauge, `booth_{name}`, in the text of `/metrics` (for tests already inside a
/// runtime, which fetch the text themselves).
pub fn metric_of(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("booth_{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

/// Voluntary context switches (wake-ups) so far of process `pid`'s thread named `name`.
pub fn thread_wakeups(pid: u32, name: &str) -> Option<u64> {
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            return status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok());
        }
    }
    None
}

/// A child process killed (and reaped) when the test ends, passing or failing, unless the test
/// waited for it: no player, recorder or `booth` outlives its test.
pub struct Process(Option<Child>);

impl Process {
    /// Starts `cmd`, with nothing on its stdin.
    pub fn spawn(cmd: &mut Command) -> Self {
        let child = cmd
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        Self(Some(child))
    }

    /// Waits for it to exit by itself; what it wrote to the pipes it was given.
    pub fn finish(mut self) -> Output {
        self.child_taken()
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait: {e}"))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    fn child(&mut self) -> &mut Child {
        self.0
            .as_mut()
            .expect("the process is still ours until finished")
    }

    fn child_taken(&mut self) -> Child {
        self.0
            .take()
            .expect("the process is still ours until finished")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `booth` as a child [`Process`]: its stdout followed line by line (the links and tokens it
/// prints), its stderr kept for the failure messages.
pub struct BoothProcess {
    process: Process,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl BoothProcess {
    /// `booth ARGS`, logging at debug level.
    pub fn spawn(args: &[&str]) -> Self {
        Self::start(
            Command::new(booth())
                .args(args)
                .env("BOOTH_LOG", "booth=debug,warn"),
        )
    }

    /// A `booth` command the caller prepared; its stdout and stderr are piped here.
    pub fn start(cmd: &mut Command) -> Self {
        let mut process = Process::spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()));
        let child = process.child();
        let (stdout, stderr_pipe) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let kept = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                let mut e = kept.lock().unwrap();
                e.push_str(&line);
                e.push('\n');
            }
        });
        Self {
            process,
            lines,
            stderr,
        }
    }

    /// The first stdout line starting with `prefix`, without it.
    pub fn line(&self, prefix: &str, within: Duration) -> String {
        let end = Instant::now() + within;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    if let Some(rest) = l.strip_prefix(prefix) {
                        return rest.trim().to_owned();
                    }
                }
                Err(_) => break,
            }
        }
        panic!(
            "no '{prefix}' line within {within:?}; stderr:\n{}",
            self.stderr()
        );
    }

    /// Waits for the exit; panics on failure with its stderr, which it returns otherwise.
    pub fn wait_ok(mut self, within: Duration) -> String {
        let end = Instant::now() + within;
        loop {
            if let Some(status) = self.process.child().try_wait().unwrap() {
                // The last lines of stderr may still be on their way.
                std::thread::sleep(Duration::from_millis(100));
                let err = self.stderr();
                assert!(status.success(), "booth failed ({status}):\n{err}");
                return err;
            }
            assert!(
                Instant::now() <= end,
                "booth did not finish within {within:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the exit, successful or not (within `within`, or panics with its stderr).
    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + within;
        loop {
            if let Some(status) = self.process.child().try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(
                Instant::now() <= end,
                "did not exit within {within:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }
}
