//! Controlling a running task: pause and resume, its processes, and changing its resource limits.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_client::services::v1::{
    ListPidsRequest, PauseTaskRequest, ResumeTaskRequest, UpdateTaskRequest,
};
use oci_spec::runtime::LinuxResources;
use prost::Message;

use crate::error::{Error, ErrorKind, Result};
use crate::runtime_failure::MemoryRefusal;
use crate::spec::MIN_MEMORY;
use crate::task::{Task, TaskStatus};

/// The `type_url` containerd's `typeurl` registers the OCI `LinuxResources` under (JSON payload).
pub const RESOURCES_TYPE_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// The runc shim's per-process detail attached to `ListPids` entries of exec'd processes.
const PROCESS_DETAILS_TYPE_URL: &str = "containerd.runc.v1.ProcessDetails";

/// `containerd.runc.v1.ProcessDetails` (declared here; the proto is not in containerd's API crate).
#[derive(Clone, PartialEq, Message)]
struct ProcessDetails {
    #[prost(string, tag = "1")]
    exec_id: String,
}

/// One process of a task, as containerd's `ListPids` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessInfo {
    /// Its pid on the host.
    pub pid: u32,
    /// The exec id, for a process started by an exec (the runc shim says so); `None` otherwise.
    pub exec_id: Option<String>,
    /// The runtime's detail as sent, for runtimes other than runc.
    pub info: Option<prost_types::Any>,
}

/// A process of a task with what `/proc` tells about it: the rows of `docker top`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProcessSummary {
    /// Its pid on the host.
    pub pid: u32,
    /// Its parent's pid on the host.
    pub ppid: u32,
    /// The exec id, for a process started by an exec.
    pub exec_id: Option<String>,
    /// Real user id.
    pub uid: u32,
    /// Scheduler state letter (`R`, `S`, `D`, `T`, `Z`, ...).
    pub state: char,
    /// The controlling terminal's device number; 0 for none.
    pub tty: u32,
    /// CPU time used, user and system.
    pub cpu_time: Duration,
    /// When it started.
    #[serde(serialize_with = "serialize_time")]
    pub started: SystemTime,
    /// Resident memory in bytes.
    pub rss_bytes: u64,
    /// Its command line, or `[name]` for a process without one (a kernel thread, a zombie).
    pub command: String,
}

fn serialize_time<S: serde::Serializer>(
    t: &SystemTime,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&crate::time::rfc3339(*t))
}

impl Task {
    /// Freeze every process of the task. A paused or stopped task is
    /// [`ErrorKind::FailedPrecondition`].
    pub async fn pause(&self) -> Result<()> {
        let client = self.container().client();
        let result = client
            .tasks()
            .pause(client.request(PauseTaskRequest {
                container_id: self.id().to_string(),
            }))
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(status) => Err(self.pause_state_error("pause", status).await),
        }
    }

    /// Thaw a paused task. A task that is not paused is [`ErrorKind::FailedPrecondition`].
    pub async fn resume(&self) -> Result<()> {
        let client = self.container().client();
        let result = client
            .tasks()
            .resume(client.request(ResumeTaskRequest {
                container_id: self.id().to_string(),
            }))
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(status) => Err(self.pause_state_error("resume", status).await),
        }
    }

    /// Classify a failed pause/resume. containerd 1.6's runc shim reports a wrong state as `Unknown`
    /// ("cannot pause a paused container"), so ask for the state rather than parse the text.
    async fn pause_state_error(&self, action: &str, status: tonic::Status) -> Error {
        let context = format!("cannot {action} container {}", self.id());
        if status.code() == tonic::Code::NotFound {
            return Error::not_found(format!("{context}: it has no task")).with_source(status);
        }
        let wanted = match action {
            "pause" => TaskStatus::Running,
            _ => TaskStatus::Paused,
        };
        match self.status().await {
            Ok(state) if state != wanted => Error::new(
                ErrorKind::FailedPrecondition,
                format!("{context}: {}", state_reason(action, state)),
            )
            .with_source(status),
            Ok(_) => Error::from_status(context, status),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Error::not_found(format!("{context}: it has no task")).with_source(status)
            }
            Err(_) => Error::from_status(context, status),
        }
    }

    /// The processes of the task, init first as containerd lists them.
    pub async fn pids(&self) -> Result<Vec<ProcessInfo>> {
        let client = self.container().client();
        let response = client
            .tasks()
            .list_pids(client.request(ListPidsRequest {
                container_id: self.id().to_string(),
            }))
            .await
            .map_err(|s| {
                if s.code() == tonic::Code::NotFound {
                    Error::not_found(format!(
                        "cannot list the processes of container {}: it has no task",
                        self.id()
                    ))
                    .with_source(s)
                } else {
                    Error::from_status(format!("list processes of container {}", self.id()), s)
                }
            })?
            .into_inner();
        Ok(response
            .processes
            .into_iter()
            .map(|p| ProcessInfo {
                pid: p.pid,
                exec_id: p.info.as_ref().and_then(exec_id_of),
                info: p.info,
            })
            .collect())
    }

    /// The processes of the task with their `/proc` details (user, parent, CPU time, command).
    /// Processes that exit between listing and reading are left out.
    pub async fn summary(&self) -> Result<Vec<ProcessSummary>> {
        let processes = self.pids().await?;
        // Reading /proc is blocking file IO; a task can have thousands of processes.
        tokio::task::spawn_blocking(move || {
            let clock = ProcClock::read()?;
            Ok(processes
                .into_iter()
                .filter_map(|p| read_process(Path::new("/proc"), &clock, p))
                .collect())
        })
        .await
        .map_err(|e| Error::internal(format!("read process details: {e}")).with_source(e))?
    }

    /// Change the resource limits of a running task (memory, memory+swap, CPU shares, quota, period,
    /// cpuset, pids...). Only the fields set in `resources` change. Malformed values are
    /// [`ErrorKind::InvalidArgument`]; a memory limit below what the container uses now is
    /// [`ErrorKind::FailedPrecondition`].
    pub async fn update_resources(&self, resources: &LinuxResources) -> Result<()> {
        validate_resources(resources)?;
        let value = serde_json::to_vec(resources).map_err(|e| {
            Error::internal(format!("encode resources as json: {e}")).with_source(e)
        })?;
        let client = self.container().client();
        client
            .tasks()
            .update(client.request(UpdateTaskRequest {
                container_id: self.id().to_string(),
                resources: Some(prost_types::Any {
                    type_url: RESOURCES_TYPE_URL.to_string(),
                    value,
                }),
                annotations: Default::default(),
            }))
            .await
            .map_err(|s| self.update_resources_error(s))?;
        Ok(())
    }

    fn update_resources_error(&self, status: tonic::Status) -> Error {
        let context = format!("cannot update the resources of container {}", self.id());
        let message = status.message();
        if status.code() == tonic::Code::NotFound {
            return Error::not_found(format!("{context}: it has no task (start it first)"))
                .with_source(status);
        }
        // The kernel refuses a limit below the cgroup's current usage (EBUSY), or one above the
        // memory+swap limit (EINVAL, cgroup v1); runc and crun say so in words of their own.
        match MemoryRefusal::classify(message) {
            Some(MemoryRefusal::BelowUsage) => {
                return Error::new(
                    ErrorKind::FailedPrecondition,
                    format!(
                        "{context}: the memory limit is below what the container uses ({}); free memory in it or choose a higher limit",
                        runtime_words(message)
                    ),
                )
                .with_source(status);
            }
            Some(MemoryRefusal::AboveSwapLimit) => {
                return Error::invalid(format!(
                    "{context}: the memory limit would exceed the memory+swap limit; raise memory+swap (--memory-swap) at the same time"
                ))
                .with_source(status);
            }
            None => {}
        }
        // containerd 1.6's shim: "cannot update a stopped container" (Unknown).
        if message.contains("stopped container") || message.contains("not running") {
            return Error::new(
                ErrorKind::FailedPrecondition,
                format!("{context}: it is not running"),
            )
            .with_source(status);
        }
        // Classified by containerd's code as usual, with runc's text on one line.
        let flattened = tonic::Status::new(status.code(), one_line(message));
        Error::from_status(context, flattened)
    }
}

/// What the runtime itself said, without the shim's wrapping ("runc did not terminate
/// successfully: exit status 1: ", as the shim calls any runtime binary), on one line.
fn runtime_words(message: &str) -> String {
    let line = one_line(message);
    match line.find("exit status ") {
        Some(at) => line[at..]
            .split_once(": ")
            .map_or(line.clone(), |(_, rest)| rest.to_string()),
        None => line,
    }
}

/// runc's multi-line text on one line, without the shim's ": unknown" suffix.
fn one_line(message: &str) -> String {
    let joined: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    joined
        .join(" ")
        .trim_end_matches(": unknown")
        .trim_end_matches(':')
        .trim()
        .to_string()
}

/// Why `action` (pause or resume) cannot be done to a task in `state`.
fn state_reason(action: &str, state: TaskStatus) -> String {
    match (action, state) {
        ("pause", TaskStatus::Paused | TaskStatus::Pausing) => "it is already paused".to_string(),
        ("pause", _) => format!("it is {state}, not running"),
        _ => format!("it is {state}, not paused"),
    }
}

/// The exec id in a runc shim `ProcessDetails`, if `info` is one.
fn exec_id_of(info: &prost_types::Any) -> Option<String> {
    // typeurl sends bare full names; be lenient about a `…/` prefix.
    let name = info.type_url.rsplit('/').next()?;
    if name != PROCESS_DETAILS_TYPE_URL {
        return None;
    }
    let details = ProcessDetails::decode(info.value.as_slice()).ok()?;
    (!details.exec_id.is_empty()).then_some(details.exec_id)
}

/// Refuse values that runc would reject with an obscure error or that would make no sense.
fn validate_resources(resources: &LinuxResources) -> Result<()> {
    if let Some(memory) = resources.memory() {
        if let Some(limit) = memory.limit() {
            if limit != -1 && !(MIN_MEMORY..).contains(&limit) {
                return Err(Error::invalid(format!(
                    "memory limit {limit} is too low: the minimum is {MIN_MEMORY} bytes (6MiB)"
                )));
            }
            if let Some(swap) = memory.swap() {
                if swap != -1 && limit != -1 && swap < limit {
                    return Err(Error::invalid(format!(
                        "the memory+swap limit ({swap}) must be at least the memory limit ({limit}); use -1 for unlimited swap"
                    )));
                }
            }
        }
        if let Some(swap) = memory.swap() {
            if swap < -1 || (1..MIN_MEMORY).contains(&swap) {
                return Err(Error::invalid(format!(
                    "memory+swap limit {swap} is invalid: use -1 for unlimited or at least 6MiB"
                )));
            }
        }
    }
    if let Some(cpu) = resources.cpu() {
        if let (Some(quota), Some(period)) = (cpu.quota(), cpu.period()) {
            if quota > 0 && !(1_000..=1_000_000).contains(&period) {
                return Err(Error::invalid(format!(
                    "cpu period {period} is out of range: it must be between 1000 and 1000000 microseconds"
                )));
            }
        }
        if let Some(cpus) = cpu.cpus() {
            validate_cpuset(cpus)?;
        }
    }
    Ok(())
}

/// A cpuset list as the kernel takes it: `0-3,5`.
fn validate_cpuset(list: &str) -> Result<()> {
    let invalid = || {
        Error::invalid(format!(
            "invalid cpuset {list:?}: expected a list of CPU numbers and ranges like 0-2,4"
        ))
    };
    if list.is_empty() {
        return Err(invalid());
    }
    for part in list.split(',') {
        let (low, high) = part.split_once('-').unwrap_or((part, part));
        let low: u32 = low.parse().map_err(|_| invalid())?;
        let high: u32 = high.parse().map_err(|_| invalid())?;
        if low > high {
            return Err(invalid());
        }
    }
    Ok(())
}

/// What turns `/proc/<pid>/stat` clock ticks into times.
struct ProcClock {
    ticks_per_second: u64,
    page_size: u64,
    boot_time: SystemTime,
}

impl ProcClock {
    fn read() -> Result<ProcClock> {
        // SAFETY: sysconf only reads a configuration value; it has no memory-safety preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let stat =
            std::fs::read_to_string("/proc/stat").map_err(|e| Error::io("read /proc/stat", e))?;
        let boot_time = parse_boot_time(&stat)
            .ok_or_else(|| Error::internal("/proc/stat has no btime line"))?;
        Ok(ProcClock {
            ticks_per_second: u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100),
            page_size: u64::try_from(page).ok().filter(|&p| p > 0).unwrap_or(4096),
            boot_time,
        })
    }
}

fn parse_boot_time(proc_stat: &str) -> Option<SystemTime> {
    let secs = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// The fields of `/proc/<pid>/stat` that `top` shows.
#[derive(Debug, Clone, PartialEq)]
struct ProcStat {
    comm: String,
    state: char,
    ppid: u32,
    tty: u32,
    cpu_ticks: u64,
    start_ticks: u64,
    rss_pages: u64,
}

/// Parse `/proc/<pid>/stat`. The command name is in parentheses and may itself contain spaces and
/// parentheses, so the fields start after the last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // Fields from 3 (state) on; field n is at index n - 3.
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    let number = |n: usize| field(n).and_then(|f| f.parse::<u64>().ok());
    Some(ProcStat {
        comm,
        state: field(3)?.chars().next()?,
        ppid: u32::try_from(number(4)?).ok()?,
        tty: field(7)?
            .parse::<i64>()
            .ok()
            .and_then(|t| u32::try_from(t).ok())?,
        cpu_ticks: number(14)?.saturating_add(number(15)?),
        start_ticks: number(22)?,
        rss_pages: field(24)?.parse::<i64>().ok()?.max(0).unsigned_abs(),
    })
}

/// The real uid from `/proc/<pid>/status`.
fn parse_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `/proc/<pid>/cmdline` as one line; empty for kernel threads and zombies.
fn format_cmdline(raw: &[u8]) -> String {
    raw.split(|&b| b == 0)
        .filter(|arg| !arg.is_empty())
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Everything `/proc` tells about `process`; `None` if it has gone.
fn read_process(proc: &Path, clock: &ProcClock, process: ProcessInfo) -> Option<ProcessSummary> {
    let dir = proc.join(process.pid.to_string());
    let stat = parse_stat(&std::fs::read_to_string(dir.join("stat")).ok()?)?;
    let uid = parse_uid(&std::fs::read_to_string(dir.join("status")).ok()?)?;
    let cmdline = format_cmdline(&std::fs::read(dir.join("cmdline")).unwrap_or_default());
    let ticks = clock.ticks_per_second;
    let from_ticks = |t: u64| {
        Duration::from_secs(t / ticks) + Duration::from_nanos((t % ticks) * 1_000_000_000 / ticks)
    };
    Some(ProcessSummary {
        pid: process.pid,
        ppid: stat.ppid,
        exec_id: process.exec_id,
        uid,
        state: stat.state,
        tty: stat.tty,
        cpu_time: from_ticks(stat.cpu_ticks),
        started: clock.boot_time + from_ticks(stat.start_ticks),
        rss_bytes: stat.rss_pages.saturating_mul(clock.page_size),
        command: if cmdline.is_empty() {
            format!("[{}]", stat.comm)
        } else {
            cmdline
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxCpu, LinuxMemory};

    #[test]
    fn the_runtime_s_own_words_without_the_shim_s_wrapping() {
        assert_eq!(
            runtime_words("runc did not terminate successfully: exit status 1: unable to set memory limit to 20971520 (current usage: 54525952, peak usage: 55123968)\n: unknown"),
            "unable to set memory limit to 20971520 (current usage: 54525952, peak usage: 55123968)"
        );
        assert_eq!(
            runtime_words("runc did not terminate successfully: exit status 1: writing file `memory.limit_in_bytes`: Device or resource busy"),
            "writing file `memory.limit_in_bytes`: Device or resource busy"
        );
        assert_eq!(runtime_words("something else"), "something else");
    }

    #[test]
    fn stat_lines_with_awkward_names_parse() {
        let line = "4242 (my (odd) name) S 4200 4242 4242 34816 4242 4194304 100 0 0 0 250 50 0 0 20 0 1 0 123456 1000000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.comm, "my (odd) name");
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.ppid, 4200);
        assert_eq!(stat.tty, 34816);
        assert_eq!(stat.cpu_ticks, 300);
        assert_eq!(stat.start_ticks, 123456);
        assert_eq!(stat.rss_pages, 300);
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S"), None);
    }

    #[test]
    fn status_uid_cmdline_and_btime_parse() {
        assert_eq!(
            parse_uid("Name:\tsh\nUid:\t1000\t1000\t1000\t1000\nGid:\t0\n"),
            Some(1000)
        );
        assert_eq!(parse_uid("Name: sh\n"), None);
        assert_eq!(format_cmdline(b"sleep\x00600\x00"), "sleep 600");
        assert_eq!(format_cmdline(b""), "");
        assert_eq!(
            parse_boot_time("cpu 1 2 3\nbtime 1700000000\nprocesses 5\n"),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
    }

    #[test]
    fn this_process_reads_from_proc() {
        let clock = ProcClock::read().unwrap();
        let me = read_process(
            Path::new("/proc"),
            &clock,
            ProcessInfo {
                pid: std::process::id(),
                exec_id: None,
                info: None,
            },
        )
        .unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.rss_bytes > 0);
        assert!(me.started <= SystemTime::now());
        assert!(!me.command.is_empty());
    }

    #[test]
    fn runc_messages_fit_on_one_line() {
        assert_eq!(
            one_line("runc did not terminate successfully: exit status 1: failed to write \"1\": invalid argument\n: unknown"),
            "runc did not terminate successfully: exit status 1: failed to write \"1\": invalid argument"
        );
        assert_eq!(one_line("plain"), "plain");
    }

    #[test]
    fn exec_ids_come_from_runc_process_details() {
        let any = prost_types::Any {
            type_url: PROCESS_DETAILS_TYPE_URL.to_string(),
            value: ProcessDetails {
                exec_id: "e1".into(),
            }
            .encode_to_vec(),
        };
        assert_eq!(exec_id_of(&any).as_deref(), Some("e1"));
        let other = prost_types::Any {
            type_url: "x.Other".into(),
            value: vec![],
        };
        assert_eq!(exec_id_of(&other), None);
    }

    #[test]
    fn resources_serialise_only_what_is_set() {
        let mut memory = LinuxMemory::default();
        memory.set_limit(Some(64 << 20));
        let mut resources = LinuxResources::default();
        resources.set_memory(Some(memory));
        let json: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(&resources).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"memory": {"limit": 67108864}}));
    }

    #[test]
    fn bad_resources_are_refused() {
        let with_memory = |limit: Option<i64>, swap: Option<i64>| {
            let mut memory = LinuxMemory::default();
            memory.set_limit(limit).set_swap(swap);
            let mut r = LinuxResources::default();
            r.set_memory(Some(memory));
            r
        };
        for (limit, swap) in [
            (Some(1024), None),
            (Some(64 << 20), Some(32 << 20)),
            (None, Some(-2)),
            (None, Some(1024)),
        ] {
            let err = validate_resources(&with_memory(limit, swap)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{limit:?} {swap:?}");
        }
        validate_resources(&with_memory(Some(64 << 20), Some(-1))).unwrap();
        validate_resources(&with_memory(Some(64 << 20), Some(128 << 20))).unwrap();
        validate_resources(&with_memory(Some(-1), None)).unwrap();

        let with_cpuset = |cpus: &str| {
            let mut cpu = LinuxCpu::default();
            cpu.set_cpus(Some(cpus.to_string()));
            let mut r = LinuxResources::default();
            r.set_cpu(Some(cpu));
            r
        };
        for good in ["0", "0-1", "0,1", "0-3,5"] {
            validate_resources(&with_cpuset(good)).unwrap();
        }
        for bad in ["", "a", "1-0", "0,", "-1"] {
            let err = validate_resources(&with_cpuset(bad)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
        }
    }
}
