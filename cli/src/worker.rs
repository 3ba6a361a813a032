//! `switchboard __worker`: the hidden mode in which the host runs an isolated plugin. The
//! host starts it and speaks to it over its standard input and output; nobody else should.

use std::process::ExitCode;

/// Runs the worker until the host says stop or goes away.
pub fn main(args: &[String]) -> ExitCode {
    die_with_parent();
    if let Some(mb) = flag(args, "--memory-mb").and_then(|v| v.parse::<u64>().ok()) {
        limit_memory(mb);
    }
    // The frames get the real standard output; everything the plugin prints goes to
    // standard error, which the host shows and quotes when the worker dies.
    let frames = match crate::process::claim_stdout() {
        Ok(frames) => frames,
        Err(error) => {
            eprintln!("error: the worker cannot set up its output: {error}");
            return ExitCode::from(1);
        }
    };
    let code = switchboard::isolate::serve(Box::new(std::io::stdin()), frames);
    end_own_group();
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// The worker leads a process group (the host starts it so): what the plugin started ends
/// with the worker. Asked with SIGTERM, so that the worker itself can still exit with its
/// own code; the host kills the group after the worker has exited, for the rest.
fn end_own_group() {
    #[cfg(unix)]
    // SAFETY: signal and kill have no memory preconditions; SIGTERM is ignored here first,
    // so that only the other members of the group receive it.
    unsafe {
        if libc::getpgrp() == libc::getpid() {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
            libc::kill(0, libc::SIGTERM);
        }
    }
}

/// What the worker does when its host dies: it ends its whole process group, itself and
/// whatever the plugin started, at once. Only async-signal-safe calls (getpgrp, getpid,
/// kill, _exit).
#[cfg(target_os = "linux")]
extern "C" fn on_host_death(_signal: libc::c_int) {
    // SAFETY: these calls are async-signal-safe and touch no memory of the process.
    unsafe {
        if libc::getpgrp() == libc::getpid() {
            libc::kill(0, libc::SIGKILL);
        }
        libc::_exit(1);
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).map(String::as_str)
}

/// A worker never outlives its host, even one killed with SIGKILL, and takes what the
/// plugin started with it: on Linux the kernel signals the worker when its parent dies,
/// and the worker then kills its process group; everywhere, the worker ends at the end of
/// its input (the host's side of the pipe closes when the host goes).
fn die_with_parent() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `on_host_death` makes only async-signal-safe calls; signal installs it,
        // prctl(PR_SET_PDEATHSIG) only sets this process's death signal, and getppid has no
        // preconditions.
        unsafe {
            let handler: extern "C" fn(libc::c_int) = on_host_death;
            libc::signal(libc::SIGUSR2, handler as libc::sighandler_t);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2);
            // The parent may have died before the prctl: then we were reparented.
            if libc::getppid() == 1 {
                libc::_exit(1);
            }
        }
    }
}

/// Caps the worker's address space, so that a plugin that allocates past `memory_mb`
/// fails its allocation (and aborts the worker, not the host).
fn limit_memory(mb: u64) {
    #[cfg(unix)]
    {
        let bytes = mb.saturating_mul(1 << 20) as libc::rlim_t;
        let limit = libc::rlimit {
            rlim_cur: bytes,
            rlim_max: bytes,
        };
        // SAFETY: setrlimit reads the struct passed by reference and changes only this
        // process's limit.
        let failed = unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } != 0;
        if failed {
            eprintln!(
                "warning: the worker cannot limit its memory to {mb} MiB: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    #[cfg(not(unix))]
    {
        eprintln!("warning: memory_mb is not enforced on this platform ({mb} MiB asked)");
    }
}
