//! Child processes that cannot outlive us.
//!
//! Each component runs in its own session (setsid), so we can signal its whole
//! process group and a terminal Ctrl-C reaches only us (we then shut down in
//! order). PR_SET_PDEATHSIG makes the kernel SIGKILL it if we die without
//! running destructors (test binaries never drop statics; SIGKILL can't be
//! caught). The death signal fires when the *thread* that forked exits, so all
//! spawning happens on one helper thread that lives as long as the process.

use std::fs::{self, File};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

type SpawnRequest = (Command, Sender<io::Result<Child>>);

/// Spawns `cmd` from the long-lived spawner thread (see module docs).
fn spawn_from_helper_thread(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("devcluster-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the devcluster spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| io::Error::other("devcluster spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("devcluster spawner thread dropped the request"))?
}

/// One running component with its output captured in `log_path`.
pub struct Component {
    pub name: String,
    pub log_path: PathBuf,
    child: Child,
}

impl Component {
    /// Starts `program args...` in a new session, stdout+stderr to `log_path`.
    pub fn start(name: &str, program: &Path, args: &[String], log_path: &Path) -> Result<Self> {
        let log = File::create(log_path).with_context(|| format!("creating log file {}", log_path.display()))?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log);
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe libc calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setsid() == -1 {
                    return Err(io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(io::Error::last_os_error());
                }
                // We may have died between fork and prctl: then nobody would
                // ever deliver the death signal.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let child = spawn_from_helper_thread(cmd).with_context(|| format!("starting {name} ({})", program.display()))?;
        Ok(Component {
            name: name.to_string(),
            log_path: log_path.to_path_buf(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(description)` if the process has exited.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown state: {e}")),
        }
    }

    /// Sends `signal` to the component's whole process group.
    fn signal_group(&self, signal: libc::c_int) {
        // pgid == pid because of setsid(); a negative pid addresses the group.
        // SAFETY: plain syscall; ESRCH (already gone) is fine.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), signal);
        }
    }

    /// SIGKILL to the whole group and reap it: a crash, with no chance to
    /// clean up (fault tests).
    pub fn kill(&mut self) {
        self.signal_group(libc::SIGKILL);
        let _ = self.child.wait();
    }

    /// The last `lines` lines of the component's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_file(&self.log_path, lines)
    }
}

/// SIGTERM every group, wait up to `grace`, then SIGKILL what is left and
/// reap everything, so no process (or zombie) outlives the call.
pub fn stop_all(components: &mut [Component], grace: Duration) {
    for c in components.iter() {
        c.signal_group(libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && components.iter_mut().any(|c| c.exited().is_none()) {
        thread::sleep(Duration::from_millis(50));
    }
    for c in components.iter_mut() {
        // Kill the group even if the leader exited: it may have left children.
        c.signal_group(libc::SIGKILL);
        let _ = c.child.wait();
    }
}

/// The last `lines` lines of a text file (whole file read; logs are small).
pub fn tail_file(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}
